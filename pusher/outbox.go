package pusher

import (
	"context"
	"strings"
	"sync"

	"github.com/beehive-im/beehive/shared/wire"
)

// maxFramesPerDeliver bounds the frames of one collected Deliver (the
// gateway takes up to 1,000).
const maxFramesPerDeliver = 500

// outbox collects Deliver requests: the frames for the same users on one
// gateway (a conversation's records of a batch) go in one request, so each
// socket gets them in one write.
type outbox struct {
	pending  map[string]*pendingDelivery
	requests []*pendingDelivery // in first-seen order
}

// pendingDelivery is one Deliver being collected.
type pendingDelivery struct {
	gateway string
	req     wire.DeliverRequest
}

// add appends frame for users on gateway.
func (o *outbox) add(gateway string, users []string, frame []byte, exceptConn string) {
	key := gateway + "\x00" + strings.Join(users, ",")
	if d, ok := o.pending[key]; ok && len(d.req.More)+1 < maxFramesPerDeliver {
		d.req.More = append(d.req.More, wire.DeliverFrame{Frame: frame, ExceptConn: exceptConn})
		return
	}
	if o.pending == nil {
		o.pending = map[string]*pendingDelivery{}
	}
	d := &pendingDelivery{gateway: gateway, req: wire.DeliverRequest{UserIDs: users, Frame: frame, ExceptConn: exceptConn}}
	o.pending[key] = d
	o.requests = append(o.requests, d)
}

// flush sends the batch's deliveries; it runs before the batch is
// committed.
func (p *Pusher) flush(ctx context.Context, l *lookups) { p.send(ctx, &l.out) }

// send delivers o: each gateway's requests in order, gateways concurrently
// (at most maxParallelGateways), so a slow gateway instance delays only its
// own sockets.
func (p *Pusher) send(ctx context.Context, o *outbox) {
	byGateway := map[string][]*pendingDelivery{}
	var gateways []string
	for _, d := range o.requests {
		if _, ok := byGateway[d.gateway]; !ok {
			gateways = append(gateways, d.gateway)
		}
		byGateway[d.gateway] = append(byGateway[d.gateway], d)
	}
	if len(gateways) == 1 { // the common case needs no goroutine
		for _, d := range o.requests {
			p.deliverWithRetry(ctx, d.gateway, d.req)
		}
		return
	}
	sem := make(chan struct{}, maxParallelGateways)
	var wg sync.WaitGroup
	for _, gw := range gateways {
		sem <- struct{}{}
		wg.Add(1)
		go func(ds []*pendingDelivery) {
			defer func() { <-sem; wg.Done() }()
			for _, d := range ds {
				p.deliverWithRetry(ctx, d.gateway, d.req)
			}
		}(byGateway[gw])
	}
	wg.Wait()
}

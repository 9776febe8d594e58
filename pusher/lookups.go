package pusher

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/segmentio/kafka-go"
)

// lookups remembers, for one batch of the push consumer, what fanning out
// needs to look up: a conversation's recipients and who of them is online,
// a user's devices and mutes. A hot conversation's batch of records then
// costs one of each instead of one per record. A batch spans milliseconds,
// so the answers are as fresh as per record; a user connecting meanwhile
// catches up by sync, as between any two records. A nil *lookups looks
// everything up each time.
type lookups struct {
	users  map[string][]string
	online map[string]map[string][]PresenceDevice
	devs   map[string][]Device
	mutes  map[[2]string]bool

	// Deliveries collected for the batch (collect), in first-seen order,
	// and its offline tasks, in record order.
	pending    map[string]*pendingDelivery
	deliveries []*pendingDelivery
	offline    []kafka.Message
}

func newLookups() *lookups {
	return &lookups{
		users:   map[string][]string{},
		online:  map[string]map[string][]PresenceDevice{},
		devs:    map[string][]Device{},
		mutes:   map[[2]string]bool{},
		pending: map[string]*pendingDelivery{},
	}
}

// audience is conversationID's recipients and their online devices.
func (l *lookups) audience(ctx context.Context, p *Pusher, conversationID string) ([]string, map[string][]PresenceDevice, error) {
	if l != nil {
		if users, ok := l.users[conversationID]; ok {
			return users, l.online[conversationID], nil
		}
	}
	users, err := p.recipients(ctx, conversationID)
	if err != nil {
		return nil, nil, err
	}
	online := map[string][]PresenceDevice{}
	if len(users) > 0 {
		if online, err = p.presence.Lookup(ctx, users); err != nil {
			return nil, nil, fmt.Errorf("pusher: presence lookup: %w", err)
		}
	}
	if l != nil {
		l.users[conversationID], l.online[conversationID] = users, online
	}
	return users, online, nil
}

// devices are userID's registered push targets.
func (l *lookups) devices(ctx context.Context, p *Pusher, userID string) ([]Device, error) {
	if l != nil {
		if d, ok := l.devs[userID]; ok {
			return d, nil
		}
	}
	d, err := p.store.ListDevices(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("pusher: devices of %s: %w", userID, err)
	}
	if l != nil {
		l.devs[userID] = d
	}
	return d, nil
}

// muted reports whether userID muted conversationID.
func (l *lookups) muted(ctx context.Context, p *Pusher, userID, conversationID string) (bool, error) {
	key := [2]string{userID, conversationID}
	if l != nil {
		if m, ok := l.mutes[key]; ok {
			return m, nil
		}
	}
	m, err := p.settings.Muted(ctx, userID, conversationID)
	if err != nil {
		return false, fmt.Errorf("pusher: settings of %s: %w", userID, err)
	}
	if l != nil {
		l.mutes[key] = m
	}
	return m, nil
}

// maxFramesPerDeliver bounds the frames of one collected Deliver (the
// gateway takes up to 1,000).
const maxFramesPerDeliver = 500

// pendingDelivery is one Deliver being collected: the frames of a batch
// for the same users on one gateway, in record order.
type pendingDelivery struct {
	gateway string
	req     DeliverRequest
}

// collect adds frame for users on gateway to the batch's deliveries. The
// frames for the same users on the same gateway (a conversation's records)
// go out as one Deliver, so each socket gets them in one write.
func (l *lookups) collect(gateway string, users []string, frame []byte, exceptConn string) {
	key := gateway + "\x00" + strings.Join(users, ",")
	if d, ok := l.pending[key]; ok && len(d.req.More)+1 < maxFramesPerDeliver {
		d.req.More = append(d.req.More, DeliverFrame{Frame: frame, ExceptConn: exceptConn})
		return
	}
	d := &pendingDelivery{gateway: gateway, req: DeliverRequest{UserIDs: users, Frame: frame, ExceptConn: exceptConn}}
	l.pending[key] = d
	l.deliveries = append(l.deliveries, d)
}

// flush delivers what the batch collected: each gateway's requests in
// order, gateways concurrently. It runs before the batch is committed.
func (p *Pusher) flush(ctx context.Context, l *lookups) {
	byGateway := map[string][]*pendingDelivery{}
	var gateways []string
	for _, d := range l.deliveries {
		if _, ok := byGateway[d.gateway]; !ok {
			gateways = append(gateways, d.gateway)
		}
		byGateway[d.gateway] = append(byGateway[d.gateway], d)
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

package app

import (
	"context"
	"net/http"
	"sync"

	"github.com/go-kit/kit/sd"
	"github.com/gorilla/mux"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/gateway/gatewaypb"
	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/discovery"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/wire"
	"github.com/beehive-im/beehive/user"
)

type sdInstancer = sd.Instancer

// buildGateway is the public edge of the distributed mode: every domain's
// HTTP routes over gRPC clients, and the WebSocket endpoint.
//
// Two sets of clients: the HTTP routes forward only the caller's bearer
// token (a request without one is refused by the service, as in embedded
// mode); the WebSocket ops, made for a socket authenticated at upgrade,
// carry the service credential and name the user.
func (n *node) buildGateway(ctx context.Context) error {
	authn, err := n.authenticator()
	if err != nil {
		return err
	}
	public := func(service string) (sd.Instancer, error) { return n.resolver.Instancer(service) }
	mount := func(service string, fn func(in sd.Instancer) func(*mux.Router)) error {
		in, err := public(service)
		if err != nil {
			return err
		}
		n.mounts = append(n.mounts, fn(in))
		return nil
	}
	l := n.logger
	for _, m := range []struct {
		service string
		fn      func(in sd.Instancer) func(*mux.Router)
	}{
		{discovery.Auth, func(in sd.Instancer) func(*mux.Router) {
			e := auth.NewGRPCClient(in, n.conns, "", l).(auth.Endpoints)
			return func(r *mux.Router) { auth.MakeHTTPHandler(r, e, l) }
		}},
		{discovery.User, func(in sd.Instancer) func(*mux.Router) {
			e := user.NewGRPCClient(in, n.conns, "", l).(user.Endpoints)
			return func(r *mux.Router) { user.MakeHTTPHandler(r, e, l) }
		}},
		{discovery.Group, func(in sd.Instancer) func(*mux.Router) {
			e := group.NewGRPCClient(in, n.conns, "", l).(group.Endpoints)
			return func(r *mux.Router) { group.MakeHTTPHandler(r, e, l) }
		}},
		{discovery.Message, func(in sd.Instancer) func(*mux.Router) {
			e := message.NewGRPCClient(in, n.conns, "", l).(message.Endpoints)
			return func(r *mux.Router) { message.MakeHTTPHandler(r, e, l) }
		}},
		{discovery.Query, func(in sd.Instancer) func(*mux.Router) {
			e := query.NewGRPCClient(in, n.conns, "", l).(query.Endpoints)
			return func(r *mux.Router) { query.MakeHTTPHandler(r, e, l) }
		}},
		{discovery.Presence, func(in sd.Instancer) func(*mux.Router) {
			e := presence.NewGRPCClient(in, n.conns, "", l).(presence.Endpoints)
			return func(r *mux.Router) { presence.MakeHTTPHandler(r, e, l) }
		}},
		{discovery.Pusher, func(in sd.Instancer) func(*mux.Router) {
			e := pusher.NewGRPCClient(in, n.conns, "", l).(pusher.Endpoints)
			return func(r *mux.Router) { pusher.MakeHTTPHandler(r, e, l) }
		}},
	} {
		if err := mount(m.service, m.fn); err != nil {
			return err
		}
	}

	msgs, err := n.messageClient()
	if err != nil {
		return err
	}
	q, err := n.queryClient()
	if err != nil {
		return err
	}
	push, err := n.pusherClient()
	if err != nil {
		return err
	}
	pres, err := n.presenceClient()
	if err != nil {
		return err
	}
	gw := gateway.New(authn, gateway.Peers{
		Sender: msgs, Reader: reader{q}, Reads: msgs, Typing: push, Presence: pres,
	}, gatewayOptions(n.cfg, n.rateLimiter("send:", n.cfg.Message.SendPerUserPerSecond, n.cfg.Message.SendBurst), n.logger))
	n.wsHandler = gw
	n.bus.Subscribe(gw.HandleEvent)
	n.listenEvents(ctx, "gateway-"+n.cfg.Gateway.ID)
	n.actors = append(n.actors, func(ctx context.Context) error {
		<-ctx.Done()
		return gw.Shutdown(context.Background())
	})
	ep := gateway.MakeServerEndpoints(gw, n.cfg.ServiceToken, n.kit)
	gatewaypb.RegisterGatewayServiceServer(n.grpc, gateway.NewGRPCServer(ep, n.logger))
	return nil
}

// remoteGateways delivers to the gateway instance holding a socket, found
// by its id: in Consul (the instance id is the gateway id), or in static
// config under peers["gateway:<id>"].
type remoteGateways struct {
	n       *node
	mu      sync.Mutex
	clients map[string]gateway.Service // by address
}

func (r *remoteGateways) addr(ctx context.Context, id string) (string, error) {
	if r.n.consul != nil {
		return r.n.consul.InstanceAddr(ctx, discovery.Gateway, id)
	}
	if addrs := r.n.cfg.Peers["gateway:"+id]; len(addrs) > 0 {
		return addrs[0], nil
	}
	return "", errs.Newf(errs.NotFound, "no address for gateway %s", id)
}

func (r *remoteGateways) Deliver(ctx context.Context, gatewayID string, req wire.DeliverRequest) error {
	addr, err := r.addr(ctx, gatewayID)
	if err != nil {
		// An unknown gateway is gone: its clients sync on reconnect.
		return errs.Wrap(errs.NotFound, err, "gateway not found")
	}
	r.mu.Lock()
	if r.clients == nil {
		r.clients = map[string]gateway.Service{}
	}
	c, ok := r.clients[addr]
	if !ok {
		cc, err := r.n.conns.Get(addr)
		if err != nil {
			r.mu.Unlock()
			return errs.Wrap(errs.Unavailable, err, "dial gateway")
		}
		c = gateway.NewGRPCClient(cc, r.n.cfg.ServiceToken)
		r.clients[addr] = c
	}
	r.mu.Unlock()
	_, err = c.Deliver(ctx, req)
	return grpcx.FromStatus(err)
}

var _ http.Handler = (*gateway.Gateway)(nil)

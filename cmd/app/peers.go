package app

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/discovery"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/wire"
	"github.com/beehive-im/beehive/user"
)

// peers resolves the services a builder depends on. A service built in
// this process is its Endpoints, so an in-process call goes through the
// same endpoint chain (auth, limits, breakers, metrics) as a remote one;
// any other is a gRPC client of the instances discovery finds. In
// embedded mode every peer is local; `beehive serve` builds one service
// and finds the rest.
type peers struct {
	local  localPeers
	remote *remotePeers // nil in embedded mode: nothing is remote
}

// localPeers are the services built in this process, set by their
// builders.
type localPeers struct {
	auth     auth.Service
	user     user.Service
	group    group.Service
	message  message.Service
	query    query.Service
	presence presence.Service

	mu       sync.RWMutex
	gateways map[string]gateway.Service // by gateway id
}

// remotePeers are the clients of services in other processes.
type remotePeers struct {
	resolver discovery.Resolver
	consul   *discovery.Consul // nil with static peers
	static   map[string][]string
	conns    *grpcx.Conns
	token    string
	logger   log.Logger

	mu       sync.Mutex
	gateways map[string]gateway.Service // clients by address
}

// missing is the error of a peer that is neither built here nor remote:
// a builder ran before the builder of a service it depends on.
func missing(service string) error {
	return fmt.Errorf("wiring: %s is needed before it is built (build order)", service)
}

func (p *peers) instancer(service string) (sd.Instancer, error) {
	if p.remote == nil {
		return nil, missing(service)
	}
	return p.remote.resolver.Instancer(service)
}

// peer returns the local service if built here, else a client from mk.
func peer[S any](p *peers, local S, isLocal bool, service string, mk func(sd.Instancer, *grpcx.Conns, string, log.Logger) S) (S, error) {
	if isLocal {
		return local, nil
	}
	in, err := p.instancer(service)
	if err != nil {
		var zero S
		return zero, err
	}
	return mk(in, p.remote.conns, p.remote.token, p.remote.logger), nil
}

// authenticator verifies user tokens through the auth service's
// ValidateToken (wiring.authenticator verifies locally where it can).
func (p *peers) authenticator() (identity.Authenticator, error) {
	a, err := p.auth()
	if err != nil {
		return nil, err
	}
	return auth.ServiceAuthenticator(a), nil
}

func (p *peers) auth() (auth.Service, error) {
	return peer(p, p.local.auth, p.local.auth != nil, discovery.Auth, auth.NewGRPCClient)
}

func (p *peers) user() (user.Service, error) {
	return peer(p, p.local.user, p.local.user != nil, discovery.User, user.NewGRPCClient)
}

func (p *peers) group() (group.Service, error) {
	return peer(p, p.local.group, p.local.group != nil, discovery.Group, group.NewGRPCClient)
}

func (p *peers) message() (message.Service, error) {
	return peer(p, p.local.message, p.local.message != nil, discovery.Message, message.NewGRPCClient)
}

func (p *peers) query() (query.Service, error) {
	return peer(p, p.local.query, p.local.query != nil, discovery.Query, query.NewGRPCClient)
}

func (p *peers) presence() (presence.Service, error) {
	return peer(p, p.local.presence, p.local.presence != nil, discovery.Presence, presence.NewGRPCClient)
}

// addGateway makes a gateway built here reachable by its id.
func (p *peers) addGateway(id string, gw gateway.Service) {
	p.local.mu.Lock()
	defer p.local.mu.Unlock()
	if p.local.gateways == nil {
		p.local.gateways = map[string]gateway.Service{}
	}
	p.local.gateways[id] = gw
}

// Deliver delivers to the gateway holding a socket, by the gateway id
// presence recorded: in this process if it runs here, else the instance
// Consul knows under that id (or static peers["gateway:<id>"]). The
// pusher is built before the gateway it delivers to, so the lookup is at
// call time. An unknown gateway is gone (presence lags a crash): its
// clients catch up by sync when they reconnect.
func (p *peers) Deliver(ctx context.Context, gatewayID string, req wire.DeliverRequest) error {
	p.local.mu.RLock()
	gw, ok := p.local.gateways[gatewayID]
	p.local.mu.RUnlock()
	if !ok && p.remote != nil {
		c, err := p.remote.gateway(ctx, gatewayID)
		if err != nil {
			return err
		}
		gw, ok = c, true
	}
	if !ok {
		return errs.Newf(errs.NotFound, "gateway %s is not running", gatewayID)
	}
	_, err := gw.Deliver(identity.AsService(ctx), req)
	return grpcx.FromStatus(err)
}

// gateway is a client of the gateway instance with this id.
func (r *remotePeers) gateway(ctx context.Context, id string) (gateway.Service, error) {
	var addr string
	switch {
	case r.consul != nil:
		a, err := r.consul.InstanceAddr(ctx, discovery.Gateway, id)
		if err != nil {
			return nil, errs.Wrap(errs.NotFound, err, "gateway not found")
		}
		addr = a
	case len(r.static["gateway:"+id]) > 0:
		addr = r.static["gateway:"+id][0]
	default:
		return nil, errs.Newf(errs.NotFound, "no address for gateway %s", id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.gateways[addr]; ok {
		return c, nil
	}
	cc, err := r.conns.Get(addr)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "dial gateway")
	}
	if r.gateways == nil {
		r.gateways = map[string]gateway.Service{}
	}
	c := gateway.NewGRPCClient(cc, r.token)
	r.gateways[addr] = c
	return c, nil
}

// Package discovery answers "where does service X run?". Every client of a
// remote service gets a go-kit sd.Instancer from a Resolver; the Resolver is
// chosen once per process: Static (addresses from config) here, Consul in
// its own file. In embedded mode (beehive dev) nothing is resolved: go-kit
// is transport-agnostic, so a peer's client is simply the local service's
// Endpoints, wired in-process by cmd/app.
package discovery

import (
	"context"
	"fmt"

	"github.com/go-kit/kit/sd"
)

// Service names, as registered in Consul and used as config peer keys.
const (
	Auth     = "beehive-auth"
	User     = "beehive-user"
	Group    = "beehive-group"
	Message  = "beehive-message"
	Presence = "beehive-presence"
	Gateway  = "beehive-gateway"
	Pusher   = "beehive-pusher"
	Query    = "beehive-query"
)

// Resolver returns instancers of services' gRPC addresses.
type Resolver interface {
	Instancer(service string) (sd.Instancer, error)
}

// Registration describes one running instance.
type Registration struct {
	Service  string
	ID       string
	Host     string
	HTTPPort int
	GRPCPort int
	Tags     []string
}

// Registrar announces this process (no-op outside Consul).
type Registrar interface {
	Register(ctx context.Context, r Registration) error
	Deregister(ctx context.Context, r Registration) error
}

// Static resolves from a fixed map service -> addresses.
type Static struct {
	Peers map[string][]string
}

var _ Resolver = Static{}

// Instancer returns the configured addresses of service, or an error naming
// the missing config key.
func (s Static) Instancer(service string) (sd.Instancer, error) {
	addrs := s.Peers[service]
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no peers configured for %s (set peers.%s or BEEHIVE_PEERS)", service, service)
	}
	return sd.FixedInstancer(addrs), nil
}

// Rechecker is a Registrar that can tell whether a registration is still
// held, so a process re-registers after the registry forgot it.
type Rechecker interface {
	Registered(ctx context.Context, r Registration) (bool, error)
}

// NopRegistrar registers nothing (static and embedded modes).
type NopRegistrar struct{}

func (NopRegistrar) Register(context.Context, Registration) error   { return nil }
func (NopRegistrar) Deregister(context.Context, Registration) error { return nil }

package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"
	kitconsul "github.com/go-kit/kit/sd/consul"
	"github.com/go-kit/log"
	consul "github.com/hashicorp/consul/api"
)

// Consul resolves and registers through a Consul agent. Instancers are
// created once per service and shared (each holds one blocking query).
type Consul struct {
	api    *consul.Client
	client kitconsul.Client
	logger log.Logger

	mu         sync.Mutex
	instancers map[string]*kitconsul.Instancer
}

var (
	_ Resolver  = (*Consul)(nil)
	_ Registrar = (*Consul)(nil)
)

// NewConsul connects to the agent at addr (host:port of its HTTP API).
func NewConsul(addr string, logger log.Logger) (*Consul, error) {
	cfg := consul.DefaultConfig()
	cfg.Address = addr
	c, err := consul.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul client %s: %w", addr, err)
	}
	return &Consul{api: c, client: kitconsul.NewClient(c), logger: logger, instancers: map[string]*kitconsul.Instancer{}}, nil
}

// API exposes the raw client (health queries in tests and tools).
func (c *Consul) API() *consul.Client { return c.api }

// Instancer returns the passing instances of service (their gRPC address).
func (c *Consul) Instancer(service string) (sd.Instancer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in, ok := c.instancers[service]; ok {
		return in, nil
	}
	in := kitconsul.NewInstancer(c.client, log.With(c.logger, "component", "consul", "service", service), service, nil, true)
	c.instancers[service] = in
	return in, nil
}

// InstanceAddr returns the gRPC address of one registered instance by its
// id (gateways are addressed individually: the pusher must reach the
// instance holding a socket).
func (c *Consul) InstanceAddr(ctx context.Context, service, id string) (string, error) {
	entries, _, err := c.api.Health().Service(service, "", true, (&consul.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("consul lookup %s: %w", service, err)
	}
	for _, e := range entries {
		if e.Service.ID == id {
			host := e.Service.Address
			if host == "" {
				host = e.Node.Address
			}
			return net.JoinHostPort(host, strconv.Itoa(e.Service.Port)), nil
		}
	}
	return "", fmt.Errorf("instance %s of %s not found or not passing", id, service)
}

// Register announces r with an HTTP check on /ready and a gRPC health check.
// The service port is the gRPC port; the HTTP port travels in Meta.
func (c *Consul) Register(_ context.Context, r Registration) error {
	reg := &consul.AgentServiceRegistration{
		ID:      r.ID,
		Name:    r.Service,
		Address: r.Host,
		Port:    r.GRPCPort,
		Tags:    r.Tags,
		Meta:    map[string]string{"http_port": strconv.Itoa(r.HTTPPort)},
		Checks: consul.AgentServiceChecks{
			{
				CheckID:                        r.ID + ":ready",
				Name:                           "HTTP /ready",
				HTTP:                           "http://" + net.JoinHostPort(r.Host, strconv.Itoa(r.HTTPPort)) + "/ready",
				Interval:                       "2s",
				Timeout:                        "2s",
				DeregisterCriticalServiceAfter: "1m",
			},
			{
				CheckID:  r.ID + ":grpc",
				Name:     "gRPC health",
				GRPC:     net.JoinHostPort(r.Host, strconv.Itoa(r.GRPCPort)),
				Interval: "2s",
				Timeout:  "2s",
			},
		},
	}
	if err := c.api.Agent().ServiceRegister(reg); err != nil {
		return fmt.Errorf("consul register %s: %w", r.ID, err)
	}
	return nil
}

// Registered reports whether the agent still holds r: an agent restarted
// without its state (-dev mode), or one that reaped r after a long
// critical spell (DeregisterCriticalServiceAfter), has forgotten it.
func (c *Consul) Registered(ctx context.Context, r Registration) (bool, error) {
	svc, _, err := c.api.Agent().Service(r.ID, (&consul.QueryOptions{}).WithContext(ctx))
	var se consul.StatusError
	switch {
	case errors.As(err, &se) && se.Code == http.StatusNotFound:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("consul service %s: %w", r.ID, err)
	}
	return svc != nil, nil
}

// Deregister removes r.
func (c *Consul) Deregister(_ context.Context, r Registration) error {
	if err := c.api.Agent().ServiceDeregister(r.ID); err != nil {
		return fmt.Errorf("consul deregister %s: %w", r.ID, err)
	}
	return nil
}

// Close stops every instancer's watch.
func (c *Consul) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, in := range c.instancers {
		in.Stop()
		delete(c.instancers, k)
	}
}

// Ping checks the agent answers (for /ready).
func (c *Consul) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	leader, err := c.api.Status().LeaderWithQueryOptions((&consul.QueryOptions{}).WithContext(ctx))
	if err == nil && leader == "" {
		err = fmt.Errorf("consul has no leader")
	}
	return err
}

package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/beehive-im/beehive/shared/config"
	"github.com/beehive-im/beehive/shared/discovery"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/lifecycle"
)

// serveMode is the mode of a `beehive serve` process: distributed, or
// static (each process's state in its own store under the data dir).
func serveMode(cfg config.Config) (string, error) {
	switch cfg.Mode {
	case config.ModeDistributed:
		return config.ModeDistributed, nil
	case config.ModeStatic, "":
		return config.ModeStatic, nil
	}
	return "", fmt.Errorf("beehive serve runs mode %s or %s; mode is %q (beehive dev is the embedded mode)", config.ModeStatic, config.ModeDistributed, cfg.Mode)
}

// RunServe is `beehive serve <service>`: one service, built by its
// builder, with clients of its peers found through discovery.
//
// A dependency that is away at start does not stop the process: it
// serves /health, reports /ready 503 naming the dependency, and retries
// the build with jittered backoff until the dependency answers. Only
// then does it serve gRPC and register in discovery.
func RunServe(ctx context.Context, service string, cfg config.Config, logger log.Logger, out io.Writer) error {
	if _, ok := builders[service]; !ok {
		return fmt.Errorf("unknown service %q (one of %s)", service, strings.Join(Services, ", "))
	}
	mode, err := serveMode(cfg)
	if err != nil {
		return err
	}
	if cfg.ServiceToken == "" {
		return fmt.Errorf("service_token (BEEHIVE_SERVICE_TOKEN) must be set when services run as separate processes")
	}
	if mode == config.ModeDistributed && len(cfg.Auth.SigningKeys) == 0 {
		// Each instance would make keys of its own, and no token would
		// verify anywhere else.
		return fmt.Errorf("mode distributed needs auth.signing_keys (BEEHIVE_AUTH_SIGNING_KEYS) shared by every instance")
	}
	logger = log.With(logger, "service", service)
	remote, err := newRemotePeers(cfg, logger)
	if err != nil {
		return err
	}
	defer remote.close()
	ln, err := Listen(cfg.HTTP.Addr, cfg.GRPC.Addr)
	if err != nil {
		return err
	}

	// Until the service is built, HTTP answers /health and a /ready that
	// names what it waits for.
	starting := &startState{}
	var handler swapHandler
	handler.set(starting.handler(cfg, logger))

	g := lifecycle.New()
	g.HandleSignals()
	g.AddContext(func(gctx context.Context) error {
		select {
		case <-ctx.Done(): // the caller's stop, as a signal would
			return lifecycle.Signal{Signal: os.Interrupt}
		case <-gctx.Done():
			return nil
		}
	})
	serveHTTP(g, ln.HTTP, &handler, logger)
	if err := serveDebug(g, cfg.HTTP.DebugAddr, logger); err != nil {
		return err
	}
	g.AddContext(func(ctx context.Context) error {
		w, err := buildWithRetry(ctx, service, mode, cfg, logger, remote, starting)
		if err != nil {
			return err
		}
		defer w.close()
		h, err := w.handler()
		if err != nil {
			return err
		}
		handler.set(h)
		run := lifecycle.New()
		serveGRPC(run, ln.GRPC, w.grpcServer(), w.checks, logger)
		for _, a := range append(w.actors, w.be.actors...) {
			run.AddContext(a)
		}
		host, grpcPort := hostPort(cfg.GRPC.AdvertiseAddr, ln.GRPC)
		_, httpPort := hostPort(cfg.HTTP.AdvertiseAddr, ln.HTTP)
		reg := discovery.Registration{Service: "beehive-" + service, ID: instanceID(service, cfg, host, grpcPort), Host: host, HTTPPort: httpPort, GRPCPort: grpcPort}
		register(run, remote.registrar(), reg, logger)
		run.AddContext(func(rctx context.Context) error {
			select {
			case <-ctx.Done():
			case <-rctx.Done():
			}
			return nil
		})
		printf(out, "beehive serve %s (%s): HTTP http://%s  gRPC %s\n", service, mode, ln.HTTP.Addr(), ln.GRPC.Addr())
		return run.Run()
	})
	return stopped(g.Run(), logger)
}

// buildWithRetry builds service until it succeeds, ctx ends, or the
// failure is not a dependency's (a configuration that cannot work).
func buildWithRetry(ctx context.Context, service, mode string, cfg config.Config, logger log.Logger, remote *remotePeers, starting *startState) (*wiring, error) {
	for attempt := 0; ; attempt++ {
		be := newBackends(mode, storeName(mode, service), cfg, logger)
		w := newWiring(mode, cfg, logger, be, &peers{remote: remote})
		err := w.build(ctx, service)
		if err == nil {
			starting.set(nil)
			return w, nil
		}
		w.close()
		var dep *depError
		if !errors.As(err, &dep) {
			return nil, err
		}
		starting.set(dep)
		pause := retryPause(attempt)
		_ = level.Warn(logger).Log("msg", "dependency unavailable, retrying", "dependency", dep.dep, "in", pause, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// retryPause is a jittered exponential backoff: 0.5 s doubling to 30 s,
// each pause between half and all of its step, so restarted instances do
// not retry in step.
func retryPause(attempt int) time.Duration {
	step := 500 * time.Millisecond << min(attempt, 6)
	step = min(step, 30*time.Second)
	return step/2 + rand.N(step/2+1)
}

// startState is what a starting process waits for.
type startState struct {
	mu  sync.Mutex
	dep *depError
}

func (s *startState) set(dep *depError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dep = dep
}

// handler serves the operational routes while the service is not built.
func (s *startState) handler(cfg config.Config, logger log.Logger) http.Handler {
	r := httpx.NewRouter()
	httpx.MountOps(r, nil, func() []httpx.Check {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.dep == nil {
			return []httpx.Check{{Name: "starting", Check: func(context.Context) error { return errors.New("building the service") }}}
		}
		dep := s.dep
		return []httpx.Check{{Name: dep.dep, Check: func(context.Context) error { return dep.err }}}
	})
	return httpx.Harden(r, cfg.HTTP.BodyLimit, logger)
}

// swapHandler serves the handler of the moment.
type swapHandler struct {
	mu sync.RWMutex
	h  http.Handler
}

func (s *swapHandler) set(h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h = h
}

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h := s.h
	s.mu.RUnlock()
	h.ServeHTTP(w, r)
}

// newRemotePeers resolves peers from static config, else through Consul.
func newRemotePeers(cfg config.Config, logger log.Logger) (*remotePeers, error) {
	r := &remotePeers{conns: grpcx.NewConns(grpcx.CallMessageSize(cfg.GRPC.MaxMessageSize)), token: cfg.ServiceToken, logger: logger, static: cfg.Peers}
	if len(cfg.Peers) > 0 {
		r.resolver = discovery.Static{Peers: cfg.Peers}
		return r, nil
	}
	c, err := discovery.NewConsul(cfg.Consul.Addr, logger)
	if err != nil {
		return nil, err
	}
	r.consul, r.resolver = c, c
	return r, nil
}

func (r *remotePeers) registrar() discovery.Registrar {
	if r.consul != nil {
		return r.consul
	}
	return discovery.NopRegistrar{}
}

func (r *remotePeers) close() {
	if r.consul != nil {
		r.consul.Close()
	}
	_ = r.conns.Close()
}

// instanceID names this instance in Consul; a gateway's id is its
// configured gateway id, so the pusher can find the instance holding a
// socket.
func instanceID(service string, cfg config.Config, host string, port int) string {
	if service == "gateway" {
		return cfg.Gateway.ID
	}
	return fmt.Sprintf("beehive-%s-%s-%d", service, host, port)
}

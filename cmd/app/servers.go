package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/beehive-im/beehive/shared/discovery"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/lifecycle"
)

// Listeners are the bound HTTP and gRPC sockets of a process. Binding
// happens before anything is announced, so a port clash fails at start.
type Listeners struct {
	HTTP, GRPC net.Listener
}

// Listen binds both addresses.
func Listen(httpAddr, grpcAddr string) (*Listeners, error) {
	h, err := grpcx.Listen(httpAddr)
	if err != nil {
		return nil, err
	}
	g, err := grpcx.Listen(grpcAddr)
	if err != nil {
		_ = h.Close()
		return nil, err
	}
	return &Listeners{HTTP: h, GRPC: g}, nil
}

// serveHTTP adds an actor serving h on ln until shutdown.
func serveHTTP(g *lifecycle.Group, ln net.Listener, h http.Handler, logger log.Logger) {
	srv := httpx.NewServer(ln.Addr().String(), h, httpx.DefaultTimeouts)
	g.Add(func() error {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	}, func(error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = level.Info(logger).Log("msg", "http server stopped")
	})
}

// serveDebug adds an actor serving Go's profiles on addr until shutdown;
// nothing when addr is empty. The profiles stay off the public port.
func serveDebug(g *lifecycle.Group, addr string, logger log.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// Profiles take up to their ?seconds=, so no write timeout here.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	_ = level.Info(logger).Log("msg", "serving profiles", "addr", ln.Addr().String())
	g.Add(func() error {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			return fmt.Errorf("debug server: %w", err)
		}
		return nil
	}, func(error) { _ = srv.Close() })
	return nil
}

// serveGRPC adds an actor serving s on ln until shutdown. The health
// service follows readiness: SERVING while every check passes,
// NOT_SERVING while one fails.
func serveGRPC(g *lifecycle.Group, ln net.Listener, s *grpcx.Server, checks func() []httpx.Check, logger log.Logger) {
	g.Add(func() error { return s.Serve(ln) }, func(error) {
		s.Health.Shutdown()
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			s.Stop()
		}
		_ = level.Info(logger).Log("msg", "grpc server stopped")
	})
	g.AddContext(func(ctx context.Context) error {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			status := healthpb.HealthCheckResponse_SERVING
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			for _, c := range checks() {
				if c.Check(cctx) != nil {
					status = healthpb.HealthCheckResponse_NOT_SERVING
				}
			}
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			s.Health.SetServingStatus("", status)
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
	})
}

// register announces the process in discovery for as long as it runs,
// retrying with backoff while the registry is away: the service works
// meanwhile, it is only not found by new callers.
func register(g *lifecycle.Group, reg discovery.Registrar, r discovery.Registration, logger log.Logger) {
	g.AddContext(func(ctx context.Context) error {
		for attempt := 0; ; attempt++ {
			err := reg.Register(ctx, r)
			if err == nil {
				break
			}
			pause := retryPause(attempt)
			_ = level.Warn(logger).Log("msg", "register failed, retrying", "dependency", "consul", "in", pause, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(pause):
			}
		}
		_ = level.Info(logger).Log("msg", "registered", "service", r.Service, "id", r.ID)
		if rc, ok := reg.(discovery.Rechecker); ok {
			recheck(ctx, reg, rc, r, 5*time.Second, logger)
		}
		<-ctx.Done()
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := reg.Deregister(dctx, r); err != nil {
			_ = level.Warn(logger).Log("msg", "deregister failed", "err", err)
		} else {
			_ = level.Info(logger).Log("msg", "deregistered", "service", r.Service, "id", r.ID)
		}
		return nil
	})
}

// recheck re-registers r whenever the registry has forgotten it (a
// Consul agent restarted in -dev mode, or one that reaped r after a long
// outage of a dependency), until ctx ends.
func recheck(ctx context.Context, reg discovery.Registrar, rc discovery.Rechecker, r discovery.Registration, every time.Duration, logger log.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		held, err := rc.Registered(ctx, r)
		if err != nil || held {
			continue // the agent is away: check again later
		}
		if err := reg.Register(ctx, r); err != nil {
			_ = level.Warn(logger).Log("msg", "re-register failed, retrying", "dependency", "consul", "err", err)
			continue
		}
		_ = level.Info(logger).Log("msg", "re-registered: the registry had forgotten this instance", "service", r.Service, "id", r.ID)
	}
}

// hostPort splits an advertised address, defaulting the host to 127.0.0.1.
func hostPort(advertise string, ln net.Listener) (string, int) {
	addr := advertise
	if addr == "" {
		addr = ln.Addr().String()
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "127.0.0.1", 0
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

func printf(w io.Writer, format string, args ...any) {
	if w != nil {
		_, _ = fmt.Fprintf(w, format, args...)
	}
}

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

// serveGRPC adds an actor serving s on ln until shutdown; the health
// service reports SERVING while it runs.
func serveGRPC(g *lifecycle.Group, ln net.Listener, s *grpcx.Server, logger log.Logger) {
	g.Add(func() error {
		s.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		return s.Serve(ln)
	}, func(error) {
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
}

// register announces the process in discovery for as long as it runs.
func register(g *lifecycle.Group, reg discovery.Registrar, r discovery.Registration, logger log.Logger) error {
	if err := reg.Register(context.Background(), r); err != nil {
		return err
	}
	_ = level.Info(logger).Log("msg", "registered", "service", r.Service, "id", r.ID)
	stop := make(chan struct{})
	g.Add(func() error { <-stop; return nil }, func(error) {
		close(stop)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := reg.Deregister(ctx, r); err != nil {
			_ = level.Warn(logger).Log("msg", "deregister failed", "err", err)
		} else {
			_ = level.Info(logger).Log("msg", "deregistered", "service", r.Service, "id", r.ID)
		}
	})
	return nil
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

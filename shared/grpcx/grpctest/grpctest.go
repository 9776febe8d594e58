// Package grpctest serves a domain's gRPC server on a loopback port for a
// test and dials it: the scaffolding every domain's transport test needs.
// It is a package of its own (not shared/testinfra) because grpcx's own
// tests use testinfra.
package grpctest

import (
	"testing"

	"github.com/go-kit/log"
	"google.golang.org/grpc"

	"github.com/beehive-im/beehive/shared/grpcx"
)

// Serve runs srv, registered with register (the generated
// Register<D>ServiceServer), on a grpcx.NewServer listening on a loopback
// port until the test ends, and returns its address.
func Serve[S any](t testing.TB, register func(grpc.ServiceRegistrar, S), srv S) string {
	t.Helper()
	gs := grpcx.NewServer(log.NewNopLogger())
	register(gs.Server, srv)
	ln, err := grpcx.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}

// Dial opens a client connection to addr, closed when the test ends.
func Dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpcx.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// ServeAndDial is Serve, then Dial to the served address.
func ServeAndDial[S any](t testing.TB, register func(grpc.ServiceRegistrar, S), srv S) *grpc.ClientConn {
	t.Helper()
	return Dial(t, Serve(t, register, srv))
}

// Package lifecycle runs a process's actors in an oklog run.Group and stops
// them all, gracefully, on SIGINT/SIGTERM or when any one returns.
package lifecycle

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/oklog/run"
)

// Group is a run.Group with a shared context cancelled on shutdown.
type Group struct {
	run.Group
	ctx    context.Context
	cancel context.CancelFunc
}

// New returns a group whose context ends when the group stops.
func New() *Group {
	ctx, cancel := context.WithCancel(context.Background())
	return &Group{ctx: ctx, cancel: cancel}
}

// Context is cancelled when the group begins shutting down.
func (g *Group) Context() context.Context { return g.ctx }

// AddContext adds an actor that runs until ctx is done.
func (g *Group) AddContext(fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(g.ctx)
	g.Add(func() error { return fn(ctx) }, func(error) { cancel() })
}

// Signal is what Run returns when a signal stopped the group: the normal
// way for a process to end, not a failure.
type Signal struct{ os.Signal }

func (s Signal) Error() string { return "received " + s.Signal.String() }

// Stopped reports whether err is a clean stop: nil, or a Signal.
func Stopped(err error) bool {
	var s Signal
	return err == nil || errors.As(err, &s)
}

// HandleSignals adds an actor that returns a Signal on SIGINT or SIGTERM.
func (g *Group) HandleSignals() {
	sig := make(chan os.Signal, 2) // buffered: signal.Notify does not block
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	stop := make(chan struct{})
	g.Add(func() error {
		select {
		case s := <-sig:
			return Signal{s}
		case <-stop:
			return nil
		}
	}, func(error) {
		signal.Stop(sig)
		close(stop)
	})
}

// Run runs every actor; when the first returns, all are interrupted.
func (g *Group) Run() error {
	g.Add(func() error { <-g.ctx.Done(); return nil }, func(error) { g.cancel() })
	return g.Group.Run()
}

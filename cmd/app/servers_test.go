package app

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/shared/discovery"
	"github.com/beehive-im/beehive/shared/lifecycle"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// forgetfulRegistry is a registry that can forget registrations, as a
// Consul agent restarted in dev mode does, and be away for a while.
type forgetfulRegistry struct {
	mu        sync.Mutex
	held      map[string]bool
	away      bool
	registers int
}

func (f *forgetfulRegistry) Register(_ context.Context, r discovery.Registration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.away {
		return errors.New("registry away")
	}
	f.held[r.ID] = true
	f.registers++
	return nil
}

func (f *forgetfulRegistry) Deregister(_ context.Context, r discovery.Registration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.held, r.ID)
	return nil
}

func (f *forgetfulRegistry) Registered(_ context.Context, r discovery.Registration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.away {
		return false, errors.New("registry away")
	}
	return f.held[r.ID], nil
}

func (f *forgetfulRegistry) restart(away bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = map[string]bool{}
	f.away = away
}

func (f *forgetfulRegistry) holds(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.held[id] {
		return errors.New("not registered")
	}
	return nil
}

func TestRegisterAgainAfterTheRegistryForgetsAndDeregisterAtStop(t *testing.T) {
	prev := reregisterEvery
	reregisterEvery = 20 * time.Millisecond
	t.Cleanup(func() { reregisterEvery = prev })
	reg := &forgetfulRegistry{held: map[string]bool{}}
	r := discovery.Registration{ID: "svc-1", Service: "beehive-svc"}
	g := lifecycle.New()
	register(g, reg, r, log.NewNopLogger())
	stop := make(chan struct{})
	g.Add(func() error { <-stop; return nil }, func(error) {})
	done := make(chan error, 1)
	go func() { done <- g.Run() }()

	testinfra.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error { return reg.holds(r.ID) })
	// The registry restarts and forgets, and is away for a moment.
	reg.restart(true)
	time.Sleep(5 * reregisterEvery) // several checks fail while it is away; none may stop the actor
	reg.restart(false)
	testinfra.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error { return reg.holds(r.ID) })

	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if reg.holds(r.ID) == nil {
		t.Fatal("still registered after the process stopped")
	}
}

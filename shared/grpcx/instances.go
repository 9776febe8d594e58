package grpcx

import (
	"io"
	"sort"
	"sync"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
)

// Instance is one instance an instancer reports, by its identity (the
// address "host:port" as the instancer gives it: unique per instance and
// stable for its life), with its client endpoint.
type Instance struct {
	Addr     string
	Endpoint endpoint.Endpoint
}

// InstanceEndpointer is an sd.Endpointer that keeps each endpoint's
// instance, for balancers that choose by identity rather than by position
// in a list (go-kit's sd.Endpointer drops the instance strings). Like
// go-kit's default endpointer it subscribes to the instancer, builds one
// endpoint per new instance with the factory, keeps the endpoints of
// instances that stay, closes those of instances that leave, and on an
// instancer error keeps the last known set.
type InstanceEndpointer struct {
	factory   sd.Factory
	instancer sd.Instancer
	logger    log.Logger
	ch        chan sd.Event
	done      chan struct{}

	mu        sync.RWMutex
	closers   map[string]io.Closer
	instances []Instance // sorted by Addr
}

var _ sd.Endpointer = (*InstanceEndpointer)(nil)

// NewInstanceEndpointer subscribes to src. Like sd.NewEndpointer it learns
// the first set asynchronously, just after it returns.
func NewInstanceEndpointer(src sd.Instancer, f sd.Factory, logger log.Logger) *InstanceEndpointer {
	e := &InstanceEndpointer{
		factory:   f,
		instancer: src,
		logger:    logger,
		ch:        make(chan sd.Event),
		done:      make(chan struct{}),
		closers:   map[string]io.Closer{},
	}
	go e.receive()
	src.Register(e.ch)
	return e
}

func (e *InstanceEndpointer) receive() {
	defer close(e.done)
	for ev := range e.ch {
		if ev.Err != nil {
			_ = e.logger.Log("msg", "service discovery failed, keeping the last known instances", "err", ev.Err)
			continue
		}
		e.update(ev.Instances)
	}
}

func (e *InstanceEndpointer) update(addrs []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := make(map[string]Instance, len(e.instances))
	for _, in := range e.instances {
		old[in.Addr] = in
	}
	next := make([]Instance, 0, len(addrs))
	closers := make(map[string]io.Closer, len(addrs))
	seen := make(map[string]bool, len(addrs))
	for _, addr := range addrs {
		if seen[addr] {
			continue
		}
		seen[addr] = true
		if in, ok := old[addr]; ok {
			next = append(next, in)
			closers[addr] = e.closers[addr]
			delete(old, addr)
			continue
		}
		ep, closer, err := e.factory(addr)
		if err != nil {
			_ = e.logger.Log("msg", "cannot build an endpoint for an instance", "instance", addr, "err", err)
			continue
		}
		next = append(next, Instance{Addr: addr, Endpoint: ep})
		closers[addr] = closer
	}
	for addr := range old {
		if c := e.closers[addr]; c != nil {
			_ = c.Close()
		}
	}
	sort.Slice(next, func(i, j int) bool { return next[i].Addr < next[j].Addr })
	e.instances, e.closers = next, closers
}

// Instances returns the current instances sorted by address. The slice is
// shared: do not modify it.
func (e *InstanceEndpointer) Instances() ([]Instance, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.instances, nil
}

// Endpoints implements sd.Endpointer (in the order of Instances).
func (e *InstanceEndpointer) Endpoints() ([]endpoint.Endpoint, error) {
	ins, err := e.Instances()
	eps := make([]endpoint.Endpoint, len(ins))
	for i, in := range ins {
		eps[i] = in.Endpoint
	}
	return eps, err
}

// Close deregisters from the instancer and closes every endpoint.
func (e *InstanceEndpointer) Close() {
	e.instancer.Deregister(e.ch)
	close(e.ch)
	<-e.done
	e.update(nil)
}

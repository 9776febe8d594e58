package testinfra

import (
	"sort"
	"sync"

	"github.com/go-kit/kit/sd"
)

// Instancer is an event-driven sd.Instancer for tests of discovery
// clients: like go-kit's own (Consul's) instancers it sends the current
// set to a channel when it registers and the whole new set to every
// registered channel on each Set, so instances come and go while a client
// runs.
type Instancer struct {
	mu        sync.Mutex
	instances []string
	chans     map[chan<- sd.Event]bool
}

var _ sd.Instancer = (*Instancer)(nil)

// NewInstancer starts with instances.
func NewInstancer(instances ...string) *Instancer {
	return &Instancer{instances: sorted(instances), chans: map[chan<- sd.Event]bool{}}
}

// Set replaces the instances and notifies every registered channel (it
// returns once each has received the event).
func (in *Instancer) Set(instances ...string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.instances = sorted(instances)
	for ch := range in.chans {
		ch <- sd.Event{Instances: append([]string(nil), in.instances...)}
	}
}

// Register implements sd.Instancer.
func (in *Instancer) Register(ch chan<- sd.Event) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.chans[ch] = true
	ch <- sd.Event{Instances: append([]string(nil), in.instances...)}
}

// Deregister implements sd.Instancer.
func (in *Instancer) Deregister(ch chan<- sd.Event) {
	in.mu.Lock()
	defer in.mu.Unlock()
	delete(in.chans, ch)
}

// Stop implements sd.Instancer.
func (in *Instancer) Stop() {}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

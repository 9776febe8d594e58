package testinfra

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/identity"
)

// Clock is a settable time source for a service's Options.Now. Safe for
// concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Recorder is an events.Publisher that keeps what is published. Safe for
// concurrent use.
type Recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

var _ events.Publisher = (*Recorder)(nil)

// Publish records e.
func (r *Recorder) Publish(_ context.Context, e events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
	return nil
}

// OfType returns the events of type typ published so far, in order.
func (r *Recorder) OfType(typ string) []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []events.Event
	for _, e := range r.evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// Take returns the events published so far and forgets them.
func (r *Recorder) Take() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.evs
	r.evs = nil
	return out
}

// TokenAuth is a fake identity.Authenticator: each token stands for its
// principal; any other token is unauthenticated.
type TokenAuth map[string]identity.Principal

var _ identity.Authenticator = TokenAuth(nil)

// Authenticate implements identity.Authenticator.
func (a TokenAuth) Authenticate(_ context.Context, tok string) (identity.Principal, error) {
	if p, ok := a[tok]; ok {
		return p, nil
	}
	return identity.Principal{}, errs.New(errs.Unauthenticated, "bad token")
}

// LogBuffer collects what a logger writes, safe for the concurrent writes
// of the code under test and the test's reads.
type LogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

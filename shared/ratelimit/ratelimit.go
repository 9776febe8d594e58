// Package ratelimit holds keyed limiters for client-facing limits (per IP,
// per user, per login account). Local is the embedded mode's; the Redis one
// (shared by every instance) lives beside it.
package ratelimit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Keyed allows or refuses one event for key.
type Keyed interface {
	Allow(ctx context.Context, key string) (bool, error)
}

// Local is an in-memory token bucket per key; idle keys are evicted.
type Local struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	buckets map[string]*bucket
	now     func() time.Time
	lastGC  time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

var _ Keyed = (*Local)(nil)

// NewLocal allows perSecond events per key with burst.
func NewLocal(perSecond float64, burst int) *Local {
	if burst <= 0 {
		burst = 1
	}
	return &Local{limit: rate.Limit(perSecond), burst: burst, buckets: map[string]*bucket{}, now: time.Now}
}

// PerMinute is NewLocal for n events a minute (burst n).
func PerMinute(n int) *Local { return NewLocal(float64(n)/60, n) }

// Allow takes one token from key's bucket.
func (l *Local) Allow(_ context.Context, key string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.lastGC) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.lastGC = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1), nil
}

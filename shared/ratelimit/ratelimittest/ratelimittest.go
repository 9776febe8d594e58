// Package ratelimittest is the contract every ratelimit.Keyed
// implementation passes: Local in the unit tests, RedisLimiter in the
// integration tests. Each case asks for a fresh limiter, so a
// constructor that shares storage (Redis) must give each call its own key
// space.
package ratelimittest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beehive-im/beehive/shared/ratelimit"
)

// NewLimiter returns a limiter of perSecond events per key with burst,
// sharing no state with any other limiter it returned.
type NewLimiter func(t *testing.T, perSecond float64, burst int) ratelimit.Keyed

// slow refills one token every 1000 s: within a test, a bucket never
// refills, so counts are exact whatever the machine's speed.
const slow = 0.001

// Run runs the contract against newLimiter.
func Run(t *testing.T, newLimiter NewLimiter) {
	t.Run("BurstIsAllowedThenRefused", func(t *testing.T) { burstThenRefused(t, newLimiter) })
	t.Run("EachKeyHasItsOwnBudget", func(t *testing.T) { keysAreSeparate(t, newLimiter) })
	t.Run("ZeroBurstMeansOne", func(t *testing.T) { zeroBurstMeansOne(t, newLimiter) })
	t.Run("RefusalTakesNoToken", func(t *testing.T) { refusalTakesNoToken(t, newLimiter) })
	t.Run("ConcurrentCallersShareExactlyTheBurst", func(t *testing.T) { concurrentExact(t, newLimiter) })
	t.Run("TokensRefillOverTime", func(t *testing.T) { refills(t, newLimiter) })
}

func allow(t *testing.T, l ratelimit.Keyed, key string) bool {
	t.Helper()
	ok, err := l.Allow(context.Background(), key)
	if err != nil {
		t.Fatalf("Allow(%q): %v", key, err)
	}
	return ok
}

func burstThenRefused(t *testing.T, newLimiter NewLimiter) {
	for _, burst := range []int{1, 3, 50} {
		t.Run(fmt.Sprintf("burst%d", burst), func(t *testing.T) {
			l := newLimiter(t, slow, burst)
			for i := 0; i < burst; i++ {
				if !allow(t, l, "k") {
					t.Fatalf("call %d of a burst of %d refused", i+1, burst)
				}
			}
			for i := 0; i < 3; i++ {
				if allow(t, l, "k") {
					t.Fatalf("call %d past a burst of %d allowed", burst+i+1, burst)
				}
			}
		})
	}
}

func keysAreSeparate(t *testing.T, newLimiter NewLimiter) {
	l := newLimiter(t, slow, 2)
	for i := 0; i < 2; i++ {
		if !allow(t, l, "a") {
			t.Fatalf("call %d on a refused", i+1)
		}
	}
	if allow(t, l, "a") {
		t.Fatal("third call on a allowed")
	}
	for i := 0; i < 2; i++ {
		if !allow(t, l, "b") {
			t.Fatalf("call %d on b refused after a was exhausted", i+1)
		}
	}
	if allow(t, l, "b") {
		t.Fatal("third call on b allowed")
	}
	// Keys that share a prefix or differ only in case are distinct.
	for _, k := range []string{"a2", "A", "", "a:b", "192.0.2.1", "2001:db8::1"} {
		if !allow(t, l, k) {
			t.Fatalf("fresh key %q refused", k)
		}
	}
}

func zeroBurstMeansOne(t *testing.T, newLimiter NewLimiter) {
	l := newLimiter(t, slow, 0)
	if !allow(t, l, "k") {
		t.Fatal("first call refused with burst 0 (treated as 1)")
	}
	if allow(t, l, "k") {
		t.Fatal("second call allowed with burst 0 (treated as 1)")
	}
}

func refusalTakesNoToken(t *testing.T, newLimiter NewLimiter) {
	// 1 token per 20 ms, burst 1: if refused calls took tokens (or pushed
	// the next refill back), a caller hammering the limiter would never get
	// through again. It must, within a few intervals.
	l := newLimiter(t, 50, 1)
	var refused int
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if allow(t, l, "k") {
			if refused > 0 {
				return
			}
			continue
		}
		refused++
	}
	if refused == 0 {
		t.Fatal("never refused at 50/s with burst 1")
	}
	t.Fatalf("after %d refusals in a row nothing got through for 10 s at 50/s", refused)
}

func concurrentExact(t *testing.T, newLimiter NewLimiter) {
	const burst, workers, calls = 25, 10, 10
	l := newLimiter(t, slow, burst)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				ok, err := l.Allow(context.Background(), "shared")
				if err != nil {
					errc <- err
					return
				}
				if ok {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("Allow: %v", err)
	}
	if got := allowed.Load(); got != burst {
		t.Fatalf("%d concurrent calls allowed %d, want exactly the burst %d", workers*calls, got, burst)
	}
}

func refills(t *testing.T, newLimiter NewLimiter) {
	// 20 tokens a second, burst 2. Drain the bucket (calls outpace the
	// refill by orders of magnitude), then wait, polling, for a token.
	l := newLimiter(t, 20, 2)
	drained := false
	for i := 0; i < 10000; i++ {
		if !allow(t, l, "k") {
			drained = true
			break
		}
	}
	if !drained {
		t.Fatal("10000 calls at 20/s with burst 2 all allowed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !allow(t, l, "k") {
		if time.Now().After(deadline) {
			t.Fatal("no token refilled within 10 s at 20/s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package ratelimit

import (
	"testing"
	"time"
)

func TestLocalEvictsIdleKeysAndForgetsTheirUse(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLocal(0.001, 1)
	l.now = func() time.Time { return now }
	if ok, _ := l.Allow(t.Context(), "idle"); !ok {
		t.Fatal("first call refused")
	}
	now = now.Add(11 * time.Minute)
	if ok, _ := l.Allow(t.Context(), "other"); !ok {
		t.Fatal("other key refused")
	}
	l.mu.Lock()
	_, kept := l.buckets["idle"]
	n := len(l.buckets)
	l.mu.Unlock()
	if kept || n != 1 {
		t.Fatalf("after 11 idle minutes: idle kept=%v, %d buckets, want only \"other\"", kept, n)
	}
}

//go:build integration

package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/beehive-im/beehive/shared/ratelimit"
	"github.com/beehive-im/beehive/shared/ratelimit/ratelimittest"
	"github.com/beehive-im/beehive/shared/redisx"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func TestRedisContract(t *testing.T) {
	c := testinfra.Redis(t)
	ratelimittest.Run(t, func(t *testing.T, perSecond float64, burst int) ratelimit.Keyed {
		l, err := ratelimit.NewRedis(c, testinfra.KeyPrefix(t), perSecond, burst)
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

func TestRedisLimiterInstancesShareOneBudget(t *testing.T) {
	addr := testinfra.RedisAddr(t)
	prefix := testinfra.KeyPrefix(t)
	var limiters []*ratelimit.RedisLimiter
	for i := 0; i < 3; i++ {
		c := redisx.Open(addr) // one client per "instance"
		t.Cleanup(func() { _ = c.Close() })
		l, err := ratelimit.NewRedis(c, prefix, 0.001, 6)
		if err != nil {
			t.Fatal(err)
		}
		limiters = append(limiters, l)
	}
	allowed := 0
	for round := 0; round < 4; round++ {
		for _, l := range limiters {
			ok, err := l.Allow(context.Background(), "user-1")
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				allowed++
			}
		}
	}
	if allowed != 6 {
		t.Fatalf("3 instances x 4 calls allowed %d, want the shared burst 6", allowed)
	}
}

func TestRedisLimiterKeysLiveUnderPrefixAndExpire(t *testing.T) {
	c := testinfra.Redis(t)
	prefix := testinfra.KeyPrefix(t)
	// 2 events a second, burst 4: a drained bucket is full again after 2 s,
	// so the key must expire within 2 s.
	l, err := ratelimit.NewRedis(c, prefix, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		if ok, err := l.Allow(ctx, "10.0.0.1"); err != nil || !ok {
			t.Fatalf("call %d: %v %v", i+1, ok, err)
		}
	}
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != prefix+"10.0.0.1" {
		t.Fatalf("keys under prefix = %q, want [%q]", keys, prefix+"10.0.0.1")
	}
	ttl, err := c.PTTL(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 2*time.Second {
		t.Fatalf("TTL %v, want in (0, 2s]", ttl)
	}
	// A refused call changes nothing, not even the TTL's upper bound.
	if ok, _ := l.Allow(ctx, "10.0.0.1"); ok {
		t.Fatal("fifth call allowed")
	}
	if ttl2, _ := c.PTTL(ctx, keys[0]).Result(); ttl2 > ttl {
		t.Fatalf("refused call extended the TTL from %v to %v", ttl, ttl2)
	}
	// Once expired, the bucket is full again.
	testinfra.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		n, err := c.Exists(ctx, keys[0]).Result()
		if err != nil {
			return err
		}
		if n != 0 {
			return errString("bucket key still present")
		}
		return nil
	})
	for i := 0; i < 4; i++ {
		if ok, err := l.Allow(ctx, "10.0.0.1"); err != nil || !ok {
			t.Fatalf("after expiry, call %d: %v %v", i+1, ok, err)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

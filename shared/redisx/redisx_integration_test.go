//go:build integration

package redisx_test

import (
	"context"
	"testing"

	"github.com/beehive-im/beehive/shared/redisx"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func TestPingAnswersAndClientRoundTrips(t *testing.T) {
	c := redisx.Open(testinfra.RedisAddr(t))
	defer c.Close()
	ctx := context.Background()
	if err := redisx.Ping(ctx, c); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	key := testinfra.KeyPrefix(t) + "k"
	if err := c.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Get(ctx, key).Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v; want \"v\"", got, err)
	}
}

func TestClientRecoversAfterFailedCall(t *testing.T) {
	// A failed call must not poison the client: the next call on a
	// healthy server works without reopening (no restart to recover).
	c := redisx.Open(testinfra.RedisAddr(t))
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := redisx.Ping(ctx, c); err == nil {
		t.Fatal("Ping with a canceled context succeeded")
	}
	if err := redisx.Ping(context.Background(), c); err != nil {
		t.Fatalf("Ping after a failed call: %v", err)
	}
}

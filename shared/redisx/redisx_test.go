package redisx_test

import (
	"context"
	"testing"
	"time"

	"github.com/beehive-im/beehive/shared/redisx"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func TestOpenDoesNotDial(t *testing.T) {
	c := redisx.Open(testinfra.ClosedAddr(t))
	defer c.Close()
	if n := c.PoolStats().TotalConns; n != 0 {
		t.Fatalf("Open made %d connections before any call", n)
	}
}

// redisx.Open promises that an outage is a quick error per call, not a
// hang: a client to a closed port must fail well under a second.
func TestPingToClosedPortFailsFast(t *testing.T) {
	c := redisx.Open(testinfra.ClosedAddr(t))
	defer c.Close()
	start := time.Now()
	err := redisx.Ping(context.Background(), c)
	took := time.Since(start)
	if err == nil {
		t.Fatal("Ping to a closed port succeeded")
	}
	if took >= 500*time.Millisecond {
		t.Fatalf("Ping to a closed port took %v to fail (%v); want well under a second", took, err)
	}
}

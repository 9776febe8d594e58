package ratelimit_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ratelimit"
	"github.com/beehive-im/beehive/shared/redisx"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func TestNewRedisRejectsUnusableRates(t *testing.T) {
	c := redisx.Open(testinfra.ClosedAddr(t))
	defer c.Close()
	for _, tc := range []struct {
		perSecond float64
		burst     int
	}{
		{0, 1}, {-1, 1}, {math.NaN(), 1}, {math.Inf(1), 1}, {1e-9, 10},
	} {
		t.Run(fmt.Sprintf("%v_per_s_burst_%d", tc.perSecond, tc.burst), func(t *testing.T) {
			if _, err := ratelimit.NewRedis(c, "p:", tc.perSecond, tc.burst); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := ratelimit.NewRedis(c, "p:", 0.001, 4); err != nil {
		t.Fatalf("0.001/s burst 4 refused: %v", err)
	}
}

func TestRedisLimiterDownIsUnavailableFast(t *testing.T) {
	c := redisx.Open(testinfra.ClosedAddr(t))
	defer c.Close()
	l, err := ratelimit.NewRedis(c, "p:", 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ok, err := l.Allow(context.Background(), "k")
	took := time.Since(start)
	if ok || !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("Allow with Redis down = %v, %v; want false, unavailable", ok, err)
	}
	// The contract of redisx.Open: an outage is a quick error, not a hang.
	if took > time.Second {
		t.Fatalf("Allow took %v to fail with Redis down", took)
	}
}

func TestRedisLimiterCanceledContextKeepsItsCode(t *testing.T) {
	c := redisx.Open(testinfra.ClosedAddr(t))
	defer c.Close()
	l, err := ratelimit.NewRedis(c, "p:", 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Allow(ctx, "k"); !errs.HasCode(err, errs.Canceled) {
		t.Fatalf("Allow with canceled ctx: %v, want canceled", err)
	}
}

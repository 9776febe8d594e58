package ratelimit_test

import (
	"testing"

	"github.com/beehive-im/beehive/shared/ratelimit"
	"github.com/beehive-im/beehive/shared/ratelimit/ratelimittest"
)

func TestLocalContract(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T, perSecond float64, burst int) ratelimit.Keyed {
		return ratelimit.NewLocal(perSecond, burst)
	})
}

func TestPerMinuteAllowsNThenRefuses(t *testing.T) {
	l := ratelimit.PerMinute(2)
	for i := 0; i < 2; i++ {
		if ok, _ := l.Allow(t.Context(), "a"); !ok {
			t.Fatalf("call %d within burst refused", i)
		}
	}
	if ok, _ := l.Allow(t.Context(), "a"); ok {
		t.Fatal("third call in a minute allowed")
	}
}

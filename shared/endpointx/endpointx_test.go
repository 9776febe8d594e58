package endpointx

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/beehive-im/beehive/shared/errs"
)

func failing(err error) func(context.Context, any) (any, error) {
	return func(context.Context, any) (any, error) { return nil, err }
}

func TestBreakerOpensOnInfrastructureFailures(t *testing.T) {
	calls := 0
	e := Breaker("test.infra", BreakerSettings{ConsecutiveFailures: 3, OpenFor: time.Minute})(
		func(context.Context, any) (any, error) { calls++; return nil, errs.New(errs.Unavailable, "db down") })
	for i := 0; i < 3; i++ {
		_, _ = e(context.Background(), nil)
	}
	_, err := e(context.Background(), nil)
	if !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("breaker should be open, got %v", err)
	}
	if calls != 3 {
		t.Fatalf("open breaker must not call through: %d calls", calls)
	}
}

func TestBreakerOpensOnTimeouts(t *testing.T) {
	e := Breaker("test.timeout", BreakerSettings{ConsecutiveFailures: 2, OpenFor: time.Minute})(
		Timeout(time.Millisecond)(func(ctx context.Context, _ any) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}))
	for i := 0; i < 2; i++ {
		_, _ = e(context.Background(), nil)
	}
	if _, err := e(context.Background(), nil); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("timeouts must open the breaker, got %v", err)
	}
}

func TestBreakerIgnoresBusinessErrorsLimitsAndCancellation(t *testing.T) {
	notCounted := []error{
		errs.New(errs.NotFound, "no such user"),
		errs.New(errs.PermissionDenied, "blocked"),
		errs.Invalid("email", "malformed"),
		ErrLimited,
		context.Canceled,
	}
	for _, bad := range notCounted {
		e := Breaker("test.business."+string(errs.CodeOf(bad)), BreakerSettings{ConsecutiveFailures: 2, OpenFor: time.Minute})(failing(bad))
		for i := 0; i < 10; i++ {
			if _, err := e(context.Background(), nil); errors.Is(err, ErrBreakerOpen) {
				t.Fatalf("%v opened the breaker", bad)
			}
		}
	}
}

func TestLimiterOutsideBreakerNeverTripsIt(t *testing.T) {
	k := Kit{Policy: Policy{RatePerSec: 1, Burst: 1, Breaker: BreakerSettings{ConsecutiveFailures: 1, OpenFor: time.Minute}}}
	e := k.Chain("svc", "m", func(context.Context, any) (any, error) { return "ok", nil })
	if _, err := e(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		_, err := e(context.Background(), nil)
		if errors.Is(err, ErrBreakerOpen) {
			t.Fatal("rate-limit rejections opened the breaker")
		}
		if !errs.HasCode(err, errs.RateLimited) {
			t.Fatalf("want rate_limited, got %v", err)
		}
	}
}

func TestRateLimitAllowsBurstThenRejects(t *testing.T) {
	e := RateLimit(rate.NewLimiter(rate.Every(time.Hour), 2))(func(context.Context, any) (any, error) { return nil, nil })
	for i := 0; i < 2; i++ {
		if _, err := e(context.Background(), nil); err != nil {
			t.Fatalf("call %d within burst refused: %v", i, err)
		}
	}
	if _, err := e(context.Background(), nil); !errors.Is(err, ErrLimited) {
		t.Fatalf("want ErrLimited, got %v", err)
	}
}

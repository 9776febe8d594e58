package endpointx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// wait bounds the polls below; it only keeps a broken test from hanging.
const wait = 5 * time.Second

var (
	errDown = errs.New(errs.Unavailable, "db down")
	ok      = func(context.Context, any) (any, error) { return "ok", nil }
)

func failing(err error) endpoint.Endpoint {
	return func(context.Context, any) (any, error) { return nil, err }
}

// untilCancelled blocks until its context ends, the way a call to a hung
// dependency does.
func untilCancelled(ctx context.Context, _ any) (any, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// settings is a breaker that never rolls or reopens on its own during a
// test: only the outcomes the test feeds it move it.
func settings(minRequests uint32, ratio float64) BreakerSettings {
	return BreakerSettings{Window: time.Hour, Bucket: time.Hour, MinRequests: minRequests, FailureRatio: ratio, OpenFor: time.Hour, Probes: 3}
}

func TestClassifySaysWhatCountsAgainstTheBreaker(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	live := context.Background()
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		want verdict
	}{
		{"a call that answers is a success", live, nil, success},
		{"a business refusal is an answer, so a success", live, errs.New(errs.NotFound, "no such user"), success},
		{"an invalid request is an answer", live, errs.Invalid("email", "malformed"), success},
		{"a dependency down is a failure", live, errDown, failure},
		{"an internal error is a failure", live, errors.New("boom"), failure},
		{"the endpoint's own timeout firing is a failure", live, context.DeadlineExceeded, failure},
		{"a deadline_exceeded answer from the dependency is a failure", live, errs.New(errs.DeadlineExceeded, "slow"), failure},
		{"the caller cancelling is not counted", cancelled, context.Canceled, ignored},
		{"the caller's deadline passing is not counted", expired, context.DeadlineExceeded, ignored},
		{"any error after the caller left is not counted", cancelled, errDown, ignored},
		{"a cancellation reported by the dependency is not counted", live, errs.New(errs.Canceled, "request canceled"), ignored},
		{"our limiter refusing is not counted", live, ErrLimited, ignored},
		{"a dependency's limiter refusing is not counted", live, errs.New(errs.RateLimited, "slow down"), ignored},
		{"too many calls in flight is not counted", live, ErrBusy, ignored},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := classify(c.ctx, c.err); got != c.want {
				t.Fatalf("classify(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

func TestBreakerTripsOnFailureRatioAfterMinimumVolume(t *testing.T) {
	const F, S = false, true
	cases := []struct {
		name     string
		outcomes []bool // true: the call succeeds
		wantOpen bool
	}{
		{"failures below the minimum volume keep it closed", []bool{F, F, F, F, F, F, F, F, F}, false},
		{"the minimum volume of failures opens it", []bool{F, F, F, F, F, F, F, F, F, F}, true},
		{"a ratio below the threshold keeps it closed", []bool{S, S, S, S, S, S, F, F, F, F, F, S, F, S, S, F, S, F, S, F, S, S}, false},
		{"a ratio at the threshold opens it", []bool{S, S, S, S, S, F, F, F, F, F}, true},
		{"a ratio above the threshold opens it once the volume is there", []bool{S, F, F, F, S, F, F, F, S, F}, true},
		{"business refusals dilute the ratio like successes", []bool{S, S, S, S, S, S, F, F, F, F}, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var n int
			b := newBreaker(fmt.Sprintf("test.ratio.%d", i), settings(10, 0.5), nil)
			e := b.middleware(func(context.Context, any) (any, error) {
				if c.outcomes[n] {
					return nil, errs.New(errs.PermissionDenied, "blocked")
				}
				return nil, errDown
			})
			for n = range c.outcomes {
				_, err := e(context.Background(), nil)
				if errors.Is(err, ErrBreakerOpen) {
					t.Fatalf("call %d refused: the breaker opened before the outcomes were in", n)
				}
			}
			if got := b.cb.State() == gobreaker.StateOpen; got != c.wantOpen {
				t.Fatalf("open = %v, want %v (counts %+v)", got, c.wantOpen, b.cb.Counts())
			}
		})
	}
}

func TestOpenBreakerRefusesFastWithARetryHint(t *testing.T) {
	calls := 0
	s := settings(4, 0.5)
	s.OpenFor = time.Minute
	e := Breaker("test.open", s)(func(context.Context, any) (any, error) { calls++; return nil, errDown })
	for i := 0; i < 4; i++ {
		_, _ = e(context.Background(), nil)
	}
	_, err := e(context.Background(), nil)
	if !errors.Is(err, ErrBreakerOpen) || !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("want the open breaker's unavailable, got %v", err)
	}
	if calls != 4 {
		t.Fatalf("an open breaker must not call through: %d calls", calls)
	}
	if ra := errs.RetryAfter(err); ra <= 0 || ra > s.OpenFor {
		t.Fatalf("retry hint %v, want the time left until half-open, within (0, %v]", ra, s.OpenFor)
	}
	if errs.As(err).RetryAfter == 0 {
		t.Fatal("the open breaker's error names no retry hint of its own")
	}
}

func TestHalfOpenLetsSeveralProbesThroughAndClosesWhenTheySucceed(t *testing.T) {
	const probes = 3
	var healthy atomic.Bool
	var inside atomic.Int32
	gate := newGate(t)
	b := newBreaker("test.halfopen", BreakerSettings{Window: time.Hour, Bucket: time.Hour, MinRequests: 2, FailureRatio: 0.5, OpenFor: 10 * time.Millisecond, Probes: probes}, nil)
	e := b.middleware(func(context.Context, any) (any, error) {
		if !healthy.Load() {
			return nil, errDown
		}
		inside.Add(1)
		gate.wait()
		return "ok", nil
	})
	for i := 0; i < 2; i++ {
		_, _ = e(context.Background(), nil)
	}
	if st := b.cb.State(); st != gobreaker.StateOpen {
		t.Fatalf("state %v, want open", st)
	}
	healthy.Store(true)
	testinfra.Eventually(t, wait, "breaker half-open", func() bool { return b.cb.State() == gobreaker.StateHalfOpen })

	errc := make(chan error, probes)
	for i := 0; i < probes; i++ {
		go func() { _, err := e(context.Background(), nil); errc <- err }()
	}
	testinfra.Eventually(t, wait, "every probe in the dependency at once", func() bool { return inside.Load() == probes })
	_, err := e(context.Background(), nil)
	if !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("a call beyond the probes while half-open: want refused, got %v", err)
	}
	if errs.As(err).RetryAfter <= 0 {
		t.Fatal("the half-open refusal names no retry hint")
	}
	gate.open()
	for i := 0; i < probes; i++ {
		if err := <-errc; err != nil {
			t.Fatalf("probe %d failed: %v", i, err)
		}
	}
	if st := b.cb.State(); st != gobreaker.StateClosed {
		t.Fatalf("state %v after %d good probes, want closed", st, probes)
	}
}

func TestAFailedProbeReopensTheBreaker(t *testing.T) {
	b := newBreaker("test.reopen", BreakerSettings{Window: time.Hour, Bucket: time.Hour, MinRequests: 2, FailureRatio: 0.5, OpenFor: 10 * time.Millisecond, Probes: 3}, nil)
	e := b.middleware(failing(errDown))
	for i := 0; i < 2; i++ {
		_, _ = e(context.Background(), nil)
	}
	testinfra.Eventually(t, wait, "breaker half-open", func() bool { return b.cb.State() == gobreaker.StateHalfOpen })
	if _, err := e(context.Background(), nil); !errors.Is(err, errDown) {
		t.Fatalf("the probe should reach the dependency, got %v", err)
	}
	if st := b.cb.State(); st != gobreaker.StateOpen {
		t.Fatalf("state %v after a failed probe, want open", st)
	}
}

func TestCallsTheCallerGaveUpOnNeverTripTheBreaker(t *testing.T) {
	cases := []struct {
		name string
		call func(e endpoint.Endpoint) error
	}{
		{"context cancelled before the call", func(e endpoint.Endpoint) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := e(ctx, nil)
			return err
		}},
		{"caller's deadline already passed (queued too long)", func(e endpoint.Endpoint) error {
			ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
			defer cancel()
			_, err := e(ctx, nil)
			return err
		}},
		{"caller cancels during the call", func(e endpoint.Endpoint) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := e(context.WithValue(ctx, cancelKey{}, cancel), nil)
			return err
		}},
		{"caller's deadline, earlier than the endpoint's, passes during the call", func(e endpoint.Endpoint) error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			_, err := e(ctx, nil)
			return err
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBreaker(fmt.Sprintf("test.caller.%d", i), settings(2, 0.5), nil)
			e := b.middleware(Timeout(time.Hour)(func(ctx context.Context, req any) (any, error) {
				if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
					cancel()
				}
				return untilCancelled(ctx, req)
			}))
			for n := 0; n < 10; n++ {
				err := c.call(e)
				if errors.Is(err, ErrBreakerOpen) {
					t.Fatalf("call %d: the breaker opened on calls the caller gave up on", n)
				}
				if !errs.HasCode(err, errs.Canceled) && !errs.HasCode(err, errs.DeadlineExceeded) {
					t.Fatalf("call %d: want the caller's cancellation or deadline back, got %v", n, err)
				}
			}
			if st := b.cb.State(); st != gobreaker.StateClosed {
				t.Fatalf("state %v, want closed", st)
			}
			if c := b.cb.Counts(); c.TotalFailures != 0 {
				t.Fatalf("counted %d failures", c.TotalFailures)
			}
		})
	}
}

type cancelKey struct{}

// gate holds calls inside the dependency until opened; a failing test
// opens it on cleanup so no call is left hanging.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) wait() { <-g.ch }
func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

func TestTheEndpointsOwnTimeoutFiringTripsTheBreaker(t *testing.T) {
	b := newBreaker("test.timeout", settings(3, 0.5), nil)
	e := b.middleware(Timeout(time.Millisecond)(untilCancelled))
	for i := 0; i < 3; i++ {
		if _, err := e(context.Background(), nil); !errs.HasCode(err, errs.DeadlineExceeded) {
			t.Fatalf("call %d: want deadline_exceeded, got %v", i, err)
		}
	}
	if _, err := e(context.Background(), nil); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("a dependency slower than the endpoint's timeout must open the breaker, got %v", err)
	}
}

func TestRefusalsAndCancellationsFromTheDependencyNeverTripTheBreaker(t *testing.T) {
	notCounted := []error{ErrLimited, errs.New(errs.RateLimited, "slow down"), ErrBusy, context.Canceled}
	for _, bad := range notCounted {
		t.Run(bad.Error(), func(t *testing.T) {
			b := newBreaker("test.notcounted."+bad.Error(), settings(2, 0.5), nil)
			e := b.middleware(failing(bad))
			for i := 0; i < 10; i++ {
				if _, err := e(context.Background(), nil); errors.Is(err, ErrBreakerOpen) {
					t.Fatalf("%v opened the breaker", bad)
				}
			}
			if c := b.cb.Counts(); c.TotalFailures != 0 || c.TotalSuccesses != 0 {
				t.Fatalf("%v was counted: %+v", bad, c)
			}
		})
	}
}

func TestLimiterAndInFlightRefusalsNeverReachTheBreaker(t *testing.T) {
	k := Kit{Policy: Policy{RatePerSec: 1, Burst: 1, Breaker: settings(1, 0.01)}}
	e := k.Chain("svc", "m", ok)
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

func TestRateLimitRefusalCarriesTheLimitersDelay(t *testing.T) {
	e := RateLimit(rate.NewLimiter(rate.Every(time.Hour), 2))(ok)
	for i := 0; i < 2; i++ {
		if _, err := e(context.Background(), nil); err != nil {
			t.Fatalf("call %d within burst refused: %v", i, err)
		}
	}
	_, err := e(context.Background(), nil)
	if !errors.Is(err, ErrLimited) {
		t.Fatalf("want ErrLimited, got %v", err)
	}
	// The next token is an hour away; the hint says so rather than the 1 s
	// default (the bound is loose: it is not a timing assertion).
	if ra := errs.RetryAfter(err); ra < 30*time.Minute || ra > time.Hour {
		t.Fatalf("retry hint %v, want the reservation delay (about an hour)", ra)
	}
	// A refused call must not hold a token: with the reservation cancelled
	// the hint stays about an hour, never two.
	_, err = e(context.Background(), nil)
	if ra := errs.RetryAfter(err); ra > time.Hour {
		t.Fatalf("a refused call kept its reservation: hint %v", ra)
	}
}

func TestRateLimitThatCanNeverAdmitUsesTheDefaultHint(t *testing.T) {
	e := RateLimit(rate.NewLimiter(1, 0))(ok)
	_, err := e(context.Background(), nil)
	if !errors.Is(err, ErrLimited) || errs.RetryAfter(err) != errs.DefaultRetryAfter {
		t.Fatalf("want ErrLimited with the default hint, got %v (hint %v)", err, errs.RetryAfter(err))
	}
}

func TestMaxInFlightRefusesTheExcessFastThenAdmitsAgain(t *testing.T) {
	const limit = 2
	gate := newGate(t)
	var inside, calls atomic.Int32
	k := Kit{Policy: Policy{MaxInFlight: limit, Breaker: settings(1, 0.01)}}
	e := k.Chain("svc", "inflight", func(context.Context, any) (any, error) {
		if calls.Add(1) <= limit {
			inside.Add(1)
			gate.wait()
		}
		return "ok", nil
	})
	errc := make(chan error, limit)
	for i := 0; i < limit; i++ {
		go func() { _, err := e(context.Background(), nil); errc <- err }()
	}
	testinfra.Eventually(t, wait, "the first calls in flight", func() bool { return inside.Load() == limit })
	for i := 0; i < 5; i++ {
		_, err := e(context.Background(), nil)
		if !errors.Is(err, ErrBusy) || !errs.HasCode(err, errs.RateLimited) {
			t.Fatalf("call beyond %d in flight: want ErrBusy (rate_limited), got %v", limit, err)
		}
		if errs.RetryAfter(err) <= 0 {
			t.Fatal("the in-flight refusal names no retry hint")
		}
	}
	gate.open()
	for i := 0; i < limit; i++ {
		if err := <-errc; err != nil {
			t.Fatalf("admitted call %d failed: %v", i, err)
		}
	}
	if _, err := e(context.Background(), nil); err != nil {
		t.Fatalf("after the calls in flight ended: %v", err)
	}
	if n := calls.Load(); n != limit+1 {
		t.Fatalf("%d calls reached the endpoint, want %d (refusals must not)", n, limit+1)
	}
}

func TestZeroSettingsTakeTheDefaults(t *testing.T) {
	got := BreakerSettings{OpenFor: time.Second}.withDefaults()
	want := DefaultBreaker
	want.OpenFor = time.Second
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestAnOpeningIsLoggedOnceAndItsRefusalsNotAsErrors(t *testing.T) {
	var buf testinfra.LogBuffer
	k := Kit{Logger: level.NewFilter(log.NewLogfmtLogger(&buf), level.AllowInfo()), Policy: Policy{Breaker: settings(2, 0.5)}}
	e := k.Chain("svc", "logged", failing(errDown))
	for i := 0; i < 2; i++ {
		_, _ = e(context.Background(), nil)
	}
	for i := 0; i < 10; i++ {
		if _, err := e(context.Background(), nil); !errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("want the breaker open, got %v", err)
		}
	}
	out := buf.String()
	if n := strings.Count(out, "level=error"); n != 2 {
		t.Fatalf("%d error lines, want 2 (the failures, not the refusals):\n%s", n, out)
	}
	if n := strings.Count(out, `level=warn msg="breaker state changed" breaker=svc.logged from=closed to=open`); n != 1 {
		t.Fatalf("the opening logged %d times, want once:\n%s", n, out)
	}
}

// Package endpointx holds the endpoint middleware every service applies the
// same way: timeout, rate limit, in-flight limit, circuit breaker, logging
// and metrics.
//
// Overload is shed, not turned into an outage (DESIGN.md, "Behaviour under
// faults"): the limiters sit outside the breaker, so their refusals never
// reach it; the breaker trips on a failure ratio over a rolling window with
// a minimum volume, never on a few unlucky calls; it counts only failures of
// the dependency (classify), never business errors, refusals, or calls the
// caller gave up on; and every refusal carries a retry hint
// (errs.Error.RetryAfter) the transports pass on.
package endpointx

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/logging"
)

// Failer is implemented by responses that carry a business error, go-kit
// style: the endpoint itself succeeds, so breakers and retries ignore it.
type Failer interface {
	Failed() error
}

// ErrLimited is returned when the rate limiter rejects a call. The error a
// caller gets is a copy carrying the limiter's delay as its RetryAfter;
// errors.Is(err, ErrLimited) matches it.
var ErrLimited = errs.New(errs.RateLimited, "rate limit exceeded")

// ErrBusy is returned when an endpoint already has its maximum of calls in
// flight. It is rate_limited, not unavailable, on purpose: it is load shed
// by a healthy instance, so no breaker (ours, or a caller's in front of
// this instance) may count it as a failure.
var ErrBusy = errs.New(errs.RateLimited, "too many calls in flight")

// ErrBreakerOpen is returned while a breaker is open. The error a caller
// gets is a copy carrying the time until the breaker probes again as its
// RetryAfter; errors.Is(err, ErrBreakerOpen) matches it.
var ErrBreakerOpen = errs.New(errs.Unavailable, "dependency unavailable (circuit open)")

// Timeout bounds each call by d (the caller's earlier deadline wins).
func Timeout(d time.Duration) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			if d <= 0 {
				return next(ctx, req)
			}
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, req)
		}
	}
}

// RateLimit rejects calls beyond lim without waiting, telling the caller
// when the limiter will have a token for it.
func RateLimit(lim *rate.Limiter) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			now := time.Now()
			r := lim.ReserveN(now, 1)
			if !r.OK() {
				// The limiter can never admit a call (burst 0): no delay
				// to tell, so the code's default hint.
				return nil, ErrLimited
			}
			if d := r.DelayFrom(now); d > 0 {
				// Give the token back: a refused call must not push the
				// next caller's turn further away.
				r.CancelAt(now)
				e := *ErrLimited
				e.RetryAfter = d
				return nil, &e
			}
			return next(ctx, req)
		}
	}
}

// MaxInFlight refuses, at once and with ErrBusy, a call beyond n calls in
// flight on this endpoint, so that when the dependency slows down the
// excess is shed fast instead of queueing into timeouts. n <= 0 disables
// it.
func MaxInFlight(n int) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		if n <= 0 {
			return next
		}
		var inFlight atomic.Int64
		return func(ctx context.Context, req any) (any, error) {
			if inFlight.Add(1) > int64(n) {
				inFlight.Add(-1)
				return nil, ErrBusy
			}
			defer inFlight.Add(-1)
			return next(ctx, req)
		}
	}
}

// BreakerSettings configures a named circuit breaker. A zero field takes
// its value from DefaultBreaker.
type BreakerSettings struct {
	// Window is how far back the closed breaker counts outcomes; it rolls
	// forward one Bucket at a time, so an old blip ages out smoothly
	// instead of all at once.
	Window time.Duration
	Bucket time.Duration
	// MinRequests is the number of counted calls in the window below which
	// the breaker never opens, whatever the ratio.
	MinRequests uint32
	// FailureRatio (0..1] of the counted calls in the window that opens
	// the breaker.
	FailureRatio float64
	// OpenFor is how long the breaker stays open before it probes.
	OpenFor time.Duration
	// Probes is how many calls the half-open breaker lets through at once;
	// it closes when that many have succeeded in a row and reopens on any
	// failure among them.
	Probes uint32
}

// DefaultBreaker opens when at least half of at least 20 counted calls in
// the last 10 s failed, stays open 2 s, then lets 5 probes through.
//
// Why these numbers:
//   - 10 s window, rolling by 1 s: long enough that an endpoint called a
//     few times a second reaches the minimum volume while its dependency is
//     down; short enough that failures of a past blip stop counting within
//     seconds of recovery, and the 1 s buckets let them age out one second
//     at a time rather than in a cliff.
//   - 20 calls minimum: below it a ratio is noise (2 failures of 3 calls is
//     67%); at the load that matters (1,000 sends/s) 20 calls are 20 ms, so
//     the minimum delays nothing when a dependency is really down.
//   - 50%: a dependency that loses some calls to an overload (say a third
//     time out) is still doing most of the work and the breaker stays
//     closed, so the capacity it has is used while the limiters shed the
//     rest; one that fails most calls is down, and calling it only adds
//     load and latency. The 5-in-a-row rule it replaces opened on any short
//     burst of timeouts and turned an overload into an outage.
//   - 2 s open: refusing for longer than a dependency needs to recover is
//     the outage; 2 s is the order of a Redis or Kafka failover hiccup and
//     is the retry hint clients get, so they come back when it probes.
//   - 5 probes: one probe closes the breaker on a single lucky call and,
//     while it is in flight, refuses everything else; five at once both
//     let some traffic through while half-open and need five successes in
//     a row before the whole load is let back.
var DefaultBreaker = BreakerSettings{
	Window:       10 * time.Second,
	Bucket:       time.Second,
	MinRequests:  20,
	FailureRatio: 0.5,
	OpenFor:      2 * time.Second,
	Probes:       5,
}

func (s BreakerSettings) withDefaults() BreakerSettings {
	d := DefaultBreaker
	if s.Window <= 0 {
		s.Window = d.Window
	}
	if s.Bucket <= 0 {
		s.Bucket = d.Bucket
	}
	if s.Bucket > s.Window {
		s.Bucket = s.Window
	}
	if s.MinRequests == 0 {
		s.MinRequests = d.MinRequests
	}
	if s.FailureRatio <= 0 || s.FailureRatio > 1 {
		s.FailureRatio = d.FailureRatio
	}
	if s.OpenFor <= 0 {
		s.OpenFor = d.OpenFor
	}
	if s.Probes == 0 {
		s.Probes = d.Probes
	}
	return s
}

// verdict is what one call tells the breaker about the dependency.
type verdict int

const (
	// success: the dependency answered (a business refusal is an answer).
	success verdict = iota
	// failure: the dependency failed or was too slow for this endpoint.
	failure
	// ignored: the call says nothing about the dependency's health.
	ignored
)

func (v verdict) String() string {
	return [...]string{"success", "failure", "ignored"}[v]
}

// classify says what a call that ended with err, made for a caller whose
// context is ctx (the context the breaker received, outside the endpoint's
// own Timeout), tells about the dependency.
//
// A call the caller had given up on, by cancelling or by letting its own
// deadline pass, is ignored whatever it ended with: under overload that
// deadline is mostly spent queueing before the call (in the transport, the
// caller's goroutines, a busy CPU), and counting it would blame the
// dependency for our own backlog and open the breaker exactly when the
// capacity left should be served. The endpoint's own Timeout firing while
// the caller still waits is the dependency being too slow: a failure.
// Refusals by a limiter (ours or the dependency's: rate_limited) and
// cancellations are load shedding, not breakage: ignored.
func classify(ctx context.Context, err error) verdict {
	switch {
	case err == nil:
		return success
	case ctx.Err() != nil:
		return ignored
	case errors.Is(err, context.Canceled):
		return ignored
	}
	switch errs.CodeOf(err) {
	case errs.RateLimited, errs.Canceled:
		return ignored
	}
	if errs.IsInfrastructure(err) {
		return failure
	}
	return success
}

// answered and uncounted carry classify's verdict through gobreaker, whose
// IsSuccessful and IsExcluded see the error only.
type (
	answered  struct{ err error }
	uncounted struct{ err error }
)

func (a answered) Error() string  { return a.err.Error() }
func (u uncounted) Error() string { return u.err.Error() }

// minRetryHint keeps the open breaker's hint from reaching zero (the
// code's default) as it is about to probe.
const minRetryHint = 50 * time.Millisecond

// breaker is one named gobreaker and what its refusals need: when it opened.
// gobreaker reads the wall clock itself, so this does too.
type breaker struct {
	name    string
	cb      *gobreaker.CircuitBreaker[any]
	openFor time.Duration

	mu       sync.Mutex
	openedAt time.Time
}

// newBreaker builds the breaker; onChange, if not nil, hears every state
// change (it runs under gobreaker's lock: it must not call the breaker).
func newBreaker(name string, s BreakerSettings, onChange func(name string, from, to gobreaker.State)) *breaker {
	s = s.withDefaults()
	b := &breaker{name: name, openFor: s.OpenFor}
	b.cb = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:         name,
		MaxRequests:  s.Probes,
		Interval:     s.Window,
		BucketPeriod: s.Bucket,
		Timeout:      s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			counted := c.TotalSuccesses + c.TotalFailures
			return counted >= s.MinRequests && float64(c.TotalFailures) >= s.FailureRatio*float64(counted)
		},
		IsSuccessful: func(err error) bool {
			_, ok := err.(answered)
			return err == nil || ok
		},
		IsExcluded: func(err error) bool {
			_, ok := err.(uncounted)
			return ok
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.mu.Lock()
				b.openedAt = time.Now()
				b.mu.Unlock()
			}
			if onChange != nil {
				onChange(name, from, to)
			}
		},
	})
	return b
}

func (b *breaker) middleware(next endpoint.Endpoint) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		if err := ctx.Err(); err != nil {
			// The caller is gone: neither call through nor take a probe's
			// place for a call nobody waits for.
			return nil, err
		}
		resp, err := b.cb.Execute(func() (any, error) {
			resp, err := next(ctx, req)
			switch classify(ctx, err) {
			case ignored:
				return resp, uncounted{err}
			case success:
				if err != nil {
					return resp, answered{err}
				}
			}
			return resp, err
		})
		switch e := err.(type) {
		case answered:
			err = e.err
		case uncounted:
			err = e.err
		}
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			return nil, b.refusal(err)
		}
		return resp, err
	}
}

// refusal is ErrBreakerOpen with the hint of when to come back: open, the
// time left until the breaker probes; half-open with every probe slot
// taken, OpenFor (the probes settle it sooner, but if they fail it reopens
// for that long, and a crowd told "now" would only be refused again).
func (b *breaker) refusal(cause error) error {
	e := *ErrBreakerOpen
	e.Err = fmt.Errorf("breaker %s: %w", b.name, cause)
	e.RetryAfter = b.openFor
	if errors.Is(cause, gobreaker.ErrOpenState) {
		b.mu.Lock()
		left := time.Until(b.openedAt.Add(b.openFor))
		b.mu.Unlock()
		e.RetryAfter = max(min(left, b.openFor), minRetryHint)
	}
	return &e
}

// Breaker wraps next in a gobreaker named name (see BreakerSettings and
// classify for when it opens).
func Breaker(name string, s BreakerSettings) endpoint.Middleware {
	return newBreaker(name, s, nil).middleware
}

// Metrics are the Prometheus collectors of the endpoint layer.
type Metrics struct {
	duration       *prometheus.HistogramVec
	breakerChanges *prometheus.CounterVec
}

// NewMetrics registers endpoint metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "beehive",
			Name:      "endpoint_duration_seconds",
			Help:      "Endpoint latency by service, method and outcome code.",
			Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"service", "method", "code"}),
		breakerChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "beehive",
			Name:      "breaker_state_changes_total",
			Help:      "Endpoint circuit breaker state changes by breaker (service.method) and new state.",
		}, []string{"breaker", "state"}),
	}
	if reg != nil {
		m.duration = register(reg, m.duration)
		m.breakerChanges = register(reg, m.breakerChanges)
	}
	return m
}

// register registers c on reg, or returns the collector already there (a
// process builds the kit once, tests build it many times).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

// Outcome returns the error a call ended with, business (the response's
// Failed) or not. Client-side Endpoints use it to turn a response back
// into the Service method's error.
func Outcome(resp any, err error) error {
	if err != nil {
		return err
	}
	if f, ok := resp.(Failer); ok {
		return f.Failed()
	}
	return nil
}

// Instrument records latency by outcome code.
func (m *Metrics) Instrument(service, method string) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			start := time.Now()
			resp, err := next(ctx, req)
			code := string(errs.CodeOf(Outcome(resp, err)))
			if code == "" {
				code = "ok"
			}
			m.duration.WithLabelValues(service, method, code).Observe(time.Since(start).Seconds())
			return resp, err
		}
	}
}

// Logging logs every call at debug, failures of the system at error
// (refusals of an open breaker excepted: see breakerChanged).
func Logging(logger log.Logger, service, method string) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			start := time.Now()
			resp, err := next(ctx, req)
			out := Outcome(resp, err)
			l := log.With(logging.With(ctx, logger), "service", service, "method", method, "took", time.Since(start).String())
			switch {
			case out == nil:
				_ = level.Debug(l).Log("msg", "call")
			case errors.Is(out, ErrBreakerOpen):
				// Its opening was logged once at warn; a line per refused
				// call would add load exactly when there is too much.
				_ = level.Debug(l).Log("msg", "call refused", "code", errs.CodeOf(out), "err", out)
			case errs.IsInfrastructure(out):
				_ = level.Error(l).Log("msg", "call failed", "err", out)
			default:
				_ = level.Debug(l).Log("msg", "call refused", "code", errs.CodeOf(out))
			}
			return resp, err
		}
	}
}

// Policy is the resilience policy of one endpoint.
type Policy struct {
	Timeout time.Duration
	// RatePerSec and Burst bound calls on this instance; 0 disables.
	RatePerSec float64
	Burst      int
	// MaxInFlight bounds the calls of this endpoint running at once on
	// this instance; 0 disables.
	MaxInFlight int
	Breaker     BreakerSettings
}

// DefaultMaxInFlight is generous on purpose: it only ever refuses calls
// that are piling up behind a slow dependency, never a healthy load. By
// Little's law calls in flight = rate x latency: an endpoint at 1,000
// calls/s and a few milliseconds per call has a handful in flight, and
// 1,024 in flight means each call already takes about a second; the next
// ones would wait their way into the 5 s timeout while holding a goroutine
// and a request's memory, so refusing them at once is the better answer.
const DefaultMaxInFlight = 1024

// DefaultPolicy is applied where a service sets nothing else.
var DefaultPolicy = Policy{Timeout: 5 * time.Second, MaxInFlight: DefaultMaxInFlight, Breaker: DefaultBreaker}

// Kit bundles what Chain needs, built once per process.
type Kit struct {
	Logger  log.Logger
	Metrics *Metrics
	Policy  Policy
}

// Chain applies, outermost first: metrics, logging, rate limit, in-flight
// limit, breaker (named service.method), timeout. The limits sit outside
// the breaker so their refusals never reach it, and the timeout inside it
// so that the endpoint's own deadline firing counts as a failure while the
// caller's does not (classify).
func (k Kit) Chain(service, method string, e endpoint.Endpoint) endpoint.Endpoint {
	p := k.Policy
	name := service + "." + method
	if p.Timeout > 0 {
		e = Timeout(p.Timeout)(e)
	}
	e = newBreaker(name, p.Breaker, k.breakerChanged(name)).middleware(e)
	e = MaxInFlight(p.MaxInFlight)(e)
	if p.RatePerSec > 0 {
		burst := p.Burst
		if burst <= 0 {
			burst = int(p.RatePerSec) + 1
		}
		e = RateLimit(rate.NewLimiter(rate.Limit(p.RatePerSec), burst))(e)
	}
	if k.Logger != nil {
		e = Logging(k.Logger, service, method)(e)
	}
	if k.Metrics != nil {
		e = k.Metrics.Instrument(service, method)(e)
	}
	return e
}

// breakerChanged logs a breaker's state changes (an opening at warn: it is
// the moment callers start being refused) and counts them.
func (k Kit) breakerChanged(name string) func(string, gobreaker.State, gobreaker.State) {
	return func(_ string, from, to gobreaker.State) {
		if k.Metrics != nil {
			k.Metrics.breakerChanges.WithLabelValues(name, to.String()).Inc()
		}
		if k.Logger == nil {
			return
		}
		l := level.Info(k.Logger)
		if to == gobreaker.StateOpen {
			l = level.Warn(k.Logger)
		}
		_ = l.Log("msg", "breaker state changed", "breaker", name, "from", from.String(), "to", to.String())
	}
}

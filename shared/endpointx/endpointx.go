// Package endpointx holds the endpoint middleware every service applies the
// same way: timeout, rate limit, circuit breaker, logging and metrics.
//
// Order matters: the limiter sits outside the breaker (a rejection never
// reaches it) and the breaker only counts infrastructure failures
// (errs.IsInfrastructure), never business errors, rate-limit rejections or
// cancellations.
package endpointx

import (
	"context"
	"errors"
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

// ErrLimited is returned when the rate limiter rejects a call.
var ErrLimited = errs.New(errs.RateLimited, "rate limit exceeded")

// ErrBreakerOpen is returned while a breaker is open.
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

// RateLimit rejects calls beyond lim without waiting.
func RateLimit(lim *rate.Limiter) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			if !lim.Allow() {
				return nil, ErrLimited
			}
			return next(ctx, req)
		}
	}
}

// BreakerSettings configures a named circuit breaker.
type BreakerSettings struct {
	// Failures in a row that open the breaker.
	ConsecutiveFailures uint32
	// OpenFor is how long the breaker stays open before a trial call.
	OpenFor time.Duration
}

// DefaultBreaker opens after 5 infrastructure failures in a row for 5 s.
var DefaultBreaker = BreakerSettings{ConsecutiveFailures: 5, OpenFor: 5 * time.Second}

// Breaker wraps next in a gobreaker named name.
func Breaker(name string, s BreakerSettings) endpoint.Middleware {
	if s.ConsecutiveFailures == 0 {
		s.ConsecutiveFailures = DefaultBreaker.ConsecutiveFailures
	}
	cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:    name,
		Timeout: s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= s.ConsecutiveFailures
		},
		IsSuccessful: func(err error) bool { return !errs.IsInfrastructure(err) },
	})
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			resp, err := cb.Execute(func() (any, error) { return next(ctx, req) })
			if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
				return nil, ErrBreakerOpen
			}
			return resp, err
		}
	}
}

// Metrics are the Prometheus collectors of the endpoint layer.
type Metrics struct {
	duration *prometheus.HistogramVec
}

// NewMetrics registers endpoint metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "beehive",
		Name:      "endpoint_duration_seconds",
		Help:      "Endpoint latency by service, method and outcome code.",
		Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"service", "method", "code"})}
	if reg != nil {
		if err := reg.Register(m.duration); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				m.duration = are.ExistingCollector.(*prometheus.HistogramVec)
			}
		}
	}
	return m
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

// Logging logs every call at debug, failures of the system at error.
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
	Breaker    BreakerSettings
}

// DefaultPolicy is applied where a service sets nothing else.
var DefaultPolicy = Policy{Timeout: 5 * time.Second, Breaker: DefaultBreaker}

// Kit bundles what Chain needs, built once per process.
type Kit struct {
	Logger  log.Logger
	Metrics *Metrics
	Policy  Policy
}

// Chain applies, outermost first: metrics, logging, rate limit, breaker
// (named service.method), timeout.
func (k Kit) Chain(service, method string, e endpoint.Endpoint) endpoint.Endpoint {
	p := k.Policy
	if p.Timeout > 0 {
		e = Timeout(p.Timeout)(e)
	}
	e = Breaker(service+"."+method, p.Breaker)(e)
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

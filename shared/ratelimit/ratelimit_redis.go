package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/beehive-im/beehive/shared/errs"
)

//go:embed ratelimit.lua
var gcraSource string

var gcra = redis.NewScript(gcraSource)

// maxRefill bounds burst/perSecond: the script keeps microsecond times in
// Lua doubles, exact only below 2^53 µs; a bucket that takes longer than a
// year to refill is a configuration mistake anyway.
const maxRefill = 365 * 24 * time.Hour

// DefaultRedisTimeout bounds one Allow. A limiter sits on every request's
// path; with Redis gone, go-redis would otherwise spend its dial retries
// (five attempts 100 ms apart, then MaxRetries more) on each call.
const DefaultRedisTimeout = 300 * time.Millisecond

// RedisLimiter is a token bucket per key kept in Redis (GCRA in one Lua
// script), so every instance of a service shares the same budget. Keys
// live under a prefix and expire as soon as their bucket would be full.
type RedisLimiter struct {
	client     redis.Scripter
	prefix     string
	intervalUS float64 // emission interval in microseconds
	burst      int

	// Timeout bounds each Allow (DefaultRedisTimeout; <= 0: only ctx and
	// the client's own timeouts). Set it before use.
	Timeout time.Duration
}

var _ Keyed = (*RedisLimiter)(nil)

// NewRedis allows perSecond events per key with burst, counting in Redis
// under prefix (e.g. "beehive:rl:ip:"). client is typically
// redisx.Open(addr). perSecond must be positive, and the bucket must refill
// within a year.
func NewRedis(client redis.Scripter, prefix string, perSecond float64, burst int) (*RedisLimiter, error) {
	if burst <= 0 {
		burst = 1
	}
	if !(perSecond > 0) || math.IsInf(perSecond, 0) {
		return nil, fmt.Errorf("ratelimit: perSecond must be a positive number, got %v", perSecond)
	}
	if float64(burst)/perSecond > maxRefill.Seconds() {
		return nil, fmt.Errorf("ratelimit: %d events at %v/s take more than a year to refill", burst, perSecond)
	}
	return &RedisLimiter{client: client, prefix: prefix, intervalUS: 1e6 / perSecond, burst: burst, Timeout: DefaultRedisTimeout}, nil
}

// RedisPerMinute is NewRedis for n events a minute (burst n).
func RedisPerMinute(client redis.Scripter, prefix string, n int) (*RedisLimiter, error) {
	return NewRedis(client, prefix, float64(n)/60, n)
}

// Allow takes one token from key's bucket. A Redis failure is an
// errs.Unavailable error within Timeout (a canceled or expired ctx keeps
// its own code); the caller decides whether to fail open.
func (l *RedisLimiter) Allow(ctx context.Context, key string) (bool, error) {
	callCtx := ctx
	if l.Timeout > 0 {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, l.Timeout)
		defer cancel()
	}
	n, err := gcra.Run(callCtx, l.client, []string{l.prefix + key}, l.intervalUS, l.burst).Int()
	if err != nil {
		if ctx.Err() != nil {
			return false, errs.As(ctx.Err())
		}
		return false, errs.Wrap(errs.Unavailable, err, "rate limiter unavailable")
	}
	return n == 1, nil
}

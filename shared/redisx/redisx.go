// Package redisx holds the Redis plumbing: a client with sane timeouts and
// a readiness check. Domains own their keys (under Config.KeyPrefix) and
// their Lua scripts.
package redisx

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Open returns a client for addr. It does not dial: failures surface per
// call, fast (short timeouts), so a Redis outage means quick `unavailable`
// errors and recovery without a restart.
func Open(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:         addr,
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		PoolTimeout:  2 * time.Second,
		MaxRetries:   1,
		// go-redis v9.23 dials 5 times 100 ms apart by default; one dial
		// per attempt keeps a Redis outage a fast `unavailable`.
		DialerRetries: 1,
		// Honour callers' deadlines on the socket too, so a Redis that
		// accepts but never answers costs the caller's budget, not 1 s.
		ContextTimeoutEnabled: true,
	})
}

// Ping is the readiness check.
func Ping(ctx context.Context, c redis.UniversalClient) error {
	return c.Ping(ctx).Err()
}

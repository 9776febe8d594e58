package message

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/beehive-im/beehive/shared/errs"
)

var (
	//go:embed seq_redis_next.lua
	luaSeqNext string
	//go:embed seq_redis_raise.lua
	luaSeqRaise string

	scriptSeqNext  = redis.NewScript(luaSeqNext)
	scriptSeqRaise = redis.NewScript(luaSeqRaise)
)

// DefaultRedisTimeout bounds each round trip of the Redis backends of this
// package, so an outage is a quick `unavailable`. Every call is one small
// script: a healthy Redis answers in well under a millisecond. (A server
// that accepted the connection but does not answer is bounded by the
// client's ReadTimeout, 1 s with redisx.Open.)
const DefaultRedisTimeout = 500 * time.Millisecond

// seqRefillRounds bounds how often Next leases a block without getting a
// seq (other instances emptying each block first, Redis losing its keys
// again and again).
const seqRefillRounds = 8

// RedisSeqAllocator hands out seqs from one Redis counter per conversation,
// shared by every message-service instance, under a durable high-water
// mark kept by a SeqLeaser (CassandraSeqLeaser in distributed mode).
//
// Key under prefix: seq:<conversation id>, a hash with n (the last seq
// handed out) and hi (the last seq of the block in force). A script
// increments n only while n < hi. When the block is used up the caller
// leases the next one from the SeqLeaser — durable before any of its
// seqs is used — and raises hi to it (never lowering it; seqs between the
// old hi and the block, leased by someone else, are skipped).
//
// When the hash is missing (Redis flushed, or restarted without
// persistence) the caller leases a fresh block — after seeing the loss, so
// it lies above every block leased before, hence above every seq ever
// handed out — and seeds the hash at its start: allocation resumes above
// the recorded mark, never backwards, never twice. It seeds only when its
// block is still the latest lease (Mark equals its hi); a block leased
// before the loss was seen, or overtaken by a later lease, is only ever
// raised to, which a hash that is missing or already higher refuses. A
// block is put in force at most once, by the caller that leased it.
//
// Residual window: the keys vanishing twice within one Redis round trip
// (between the Mark check and the seed, while another instance leases,
// seeds and hands out in between) could seed below seqs handed out.
//
// Limits: a Redis failover to a replica that had not yet received the
// latest increments rolls n back without losing the hash; the seqs of that
// lag would be handed out again. Run a single primary with persistence, or
// fail over only to a replica in sync (e.g. WAIT before promotion).
// Redis Cluster is fine: every script touches one key.
//
// Errors are *errs.Error: unavailable for a Redis outage, the leaser's
// errors as they come, canceled/deadline_exceeded when ctx ended.
type RedisSeqAllocator struct {
	client  redis.UniversalClient
	prefix  string
	leaser  SeqLeaser
	block   int64
	timeout time.Duration
	// locks serialise leasing per conversation within this instance, so
	// concurrent senders that find the block used up lease one block, not
	// one each.
	locks stripes
}

var _ SeqAllocator = (*RedisSeqAllocator)(nil)

// NewRedisSeqAllocator returns an allocator keeping its counters under
// prefix (e.g. "beehive:msg:") through client (redisx.Open) and leasing
// blocks of block seqs (DefaultSeqBlock when block <= 0) from leaser. Every
// instance must use the same prefix and leaser store. It does not touch
// Redis.
func NewRedisSeqAllocator(client redis.UniversalClient, prefix string, leaser SeqLeaser, block int64) *RedisSeqAllocator {
	if block <= 0 {
		block = DefaultSeqBlock
	}
	return &RedisSeqAllocator{client: client, prefix: prefix, leaser: leaser, block: block, timeout: DefaultRedisTimeout}
}

func (a *RedisSeqAllocator) key(conversationID string) string {
	return a.prefix + "seq:" + conversationID
}

// Next implements SeqAllocator.
func (a *RedisSeqAllocator) Next(ctx context.Context, conversationID string) (int64, error) {
	key := a.key(conversationID)
	for round := 0; round < seqRefillRounds; round++ {
		s, err := a.incr(ctx, key)
		if err != nil || s > 0 {
			return s, err
		}
		s, err = a.refill(ctx, conversationID, key)
		if err != nil || s > 0 {
			return s, err
		}
	}
	return 0, errs.Newf(errs.Unavailable, "no seq for %s after %d leased blocks", conversationID, seqRefillRounds)
}

// refill leases a block and puts it in force, under the conversation's
// lock; it first tries once more for a seq, since another sender of this
// instance may have refilled while it waited for the lock.
func (a *RedisSeqAllocator) refill(ctx context.Context, conversationID, key string) (int64, error) {
	defer a.locks.lock(conversationID)()
	s, err := a.incr(ctx, key)
	if err != nil || s > 0 {
		return s, err
	}
	// s is 0 (block used up) or -1 (hash missing, seen before this lease).
	seed := s < 0
	hi, err := a.leaser.Lease(ctx, conversationID, a.block)
	if err != nil {
		return 0, fmt.Errorf("lease seq block for %s: %w", conversationID, err)
	}
	base := hi - a.block
	if seed {
		// Seeding is safe while no block leased after ours can have been
		// handed out from: check no lease came after ours. Otherwise put the
		// block in force only if someone seeded meanwhile (a raise), and
		// else try again with a fresh lease. This narrows "Redis lost its
		// keys twice while we were leasing" to one Redis round trip.
		mark, err := a.leaser.Mark(ctx, conversationID)
		if err != nil {
			return 0, fmt.Errorf("read seq mark for %s: %w", conversationID, err)
		}
		seed = mark == hi
	}
	if _, err := a.run(ctx, scriptSeqRaise, key, strconv.FormatInt(base, 10), strconv.FormatInt(hi, 10), seedFlag(seed)); err != nil {
		return 0, err
	}
	// Whatever the raise answered (in force, a higher block in force, or
	// the hash lost meanwhile), the next incr says what to do.
	return 0, nil
}

func seedFlag(seed bool) string {
	if seed {
		return "1"
	}
	return "0"
}

// incr runs the next script: a seq (> 0), 0 (block used up) or -1 (hash
// missing).
func (a *RedisSeqAllocator) incr(ctx context.Context, key string) (int64, error) {
	return a.run(ctx, scriptSeqNext, key)
}

func (a *RedisSeqAllocator) run(ctx context.Context, sc *redis.Script, key string, args ...any) (int64, error) {
	v, err := runScript(ctx, a.client, a.timeout, sc, []string{key}, args...)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, errs.Newf(errs.Internal, "seq script answered %T, want an integer", v)
	}
	return n, nil
}

// Last implements SeqAllocator: the counter when Redis has it, else the
// durable mark (Next resumes above it).
func (a *RedisSeqAllocator) Last(ctx context.Context, conversationID string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, errs.As(err)
	}
	callCtx, cancel := bound(ctx, a.timeout)
	vals, err := a.client.HMGet(callCtx, a.key(conversationID), "n", "hi").Result()
	cancel()
	if err != nil {
		return 0, redisErr(ctx, err, "seq counters")
	}
	if len(vals) == 2 && vals[0] != nil && vals[1] != nil {
		s, _ := vals[0].(string)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, errs.Wrap(errs.Internal, err, "seq counter is not an integer")
		}
		return n, nil
	}
	m, err := a.leaser.Mark(ctx, conversationID)
	if err != nil {
		return 0, fmt.Errorf("read seq mark for %s: %w", conversationID, err)
	}
	return m, nil
}

// bound applies a per-round-trip timeout (none when d <= 0).
func bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// runScript runs one script in one bounded round trip; redis.Nil is a nil
// answer, not an error.
func runScript(ctx context.Context, c redis.UniversalClient, timeout time.Duration, sc *redis.Script, keys []string, args ...any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, errs.As(err)
	}
	callCtx, cancel := bound(ctx, timeout)
	defer cancel()
	v, err := sc.Run(callCtx, c, keys, args...).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, redisErr(ctx, err, "scripts")
	}
	return v, nil
}

// redisErr turns a Redis failure into unavailable; when the caller's own
// ctx ended, its code (canceled, deadline_exceeded) is kept instead.
func redisErr(ctx context.Context, err error, what string) error {
	if ctx.Err() != nil {
		return errs.As(ctx.Err())
	}
	return errs.Wrap(errs.Unavailable, err, "message redis "+what+" unavailable")
}

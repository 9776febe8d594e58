package message

import (
	"context"
	_ "embed"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
)

// Leases keep one produce in flight per conversation across message
// instances. Conversations are routed to instances by rendezvous hashing
// (balancer.go); when instances come or go, gateways learn it at slightly
// different moments and two instances can get the same conversation for
// a while. A lease held around "allocate seq + produce" keeps the
// partition in seq order through that handover: the new owner waits for
// the old one's last produce. In one process the commit queue already
// serialises a conversation, so no lease is needed there.
type Leases interface {
	// Hold returns once this instance holds conversationID's lease, and a
	// release to call when its produce finished; it fails with
	// unavailable when the lease stays held elsewhere past ctx or
	// MaxWait.
	Hold(ctx context.Context, conversationID string) (release func(), err error)
}

var (
	//go:embed lease_redis_take.lua
	luaLeaseTake string
	//go:embed lease_redis_release.lua
	luaLeaseRelease string

	scriptLeaseTake    = redis.NewScript(luaLeaseTake)
	scriptLeaseRelease = redis.NewScript(luaLeaseRelease)
)

// RedisLeases are Leases in Redis, shared by every message instance: key
// lease:<conversation id> under prefix holds the holder's token for TTL,
// extended while its produce runs, so a holder that dies frees it after
// TTL at most.
type RedisLeases struct {
	client redis.UniversalClient
	prefix string
	token  string // this instance
	// TTL bounds how long a dead holder keeps a conversation (default
	// 3 s); MaxWait bounds how long Hold waits for another holder
	// (default 5 s); Poll is the pause between tries (default 5 ms).
	TTL, MaxWait, Poll time.Duration
}

var _ Leases = (*RedisLeases)(nil)

// NewRedisLeases returns the leases of one instance.
func NewRedisLeases(client redis.UniversalClient, prefix string) *RedisLeases {
	return &RedisLeases{client: client, prefix: prefix, token: ids.New(), TTL: 3 * time.Second, MaxWait: 5 * time.Second, Poll: 5 * time.Millisecond}
}

func (l *RedisLeases) key(conv string) string { return l.prefix + "lease:" + conv }

func (l *RedisLeases) take(ctx context.Context, key string) (bool, error) {
	n, err := runScript(ctx, l.client, DefaultRedisTimeout, scriptLeaseTake, []string{key}, l.token, l.TTL.Milliseconds())
	if err != nil {
		return false, redisErr(ctx, err, "take conversation lease")
	}
	return n.(int64) == 1, nil
}

// Hold implements Leases.
func (l *RedisLeases) Hold(ctx context.Context, conv string) (func(), error) {
	key := l.key(conv)
	deadline := time.Now().Add(l.MaxWait)
	for {
		held, err := l.take(ctx, key)
		if err != nil {
			return nil, err
		}
		if held {
			break
		}
		if time.Now().After(deadline) {
			return nil, errs.Newf(errs.Unavailable, "conversation %s is still being sent by another instance", conv)
		}
		select {
		case <-ctx.Done():
			return nil, errs.As(ctx.Err())
		case <-time.After(l.Poll):
		}
	}
	// Extend the lease while the produce runs: a slow broker must not
	// hand the conversation to another instance mid-produce.
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(l.TTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_, _ = l.take(context.Background(), key)
			}
		}
	}()
	return func() {
		close(done)
		_, _ = runScript(context.Background(), l.client, DefaultRedisTimeout, scriptLeaseRelease, []string{key}, l.token)
	}, nil
}

// holdAll takes the leases of a batch's conversations in a fixed order
// (two instances never wait for each other's second lease) and returns
// the release of those held and the error of each conversation it could
// not hold.
func holdAll(ctx context.Context, l Leases, convs []string) (release func(), failed map[string]error) {
	sort.Strings(convs)
	var releases []func()
	for _, c := range convs {
		rel, err := l.Hold(ctx, c)
		if err != nil {
			if failed == nil {
				failed = map[string]error{}
			}
			failed[c] = err
			continue
		}
		releases = append(releases, rel)
	}
	return func() {
		for _, r := range releases {
			r()
		}
	}, failed
}

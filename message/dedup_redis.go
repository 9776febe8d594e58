package message

import (
	"context"
	_ "embed"
	"encoding/json"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/beehive-im/beehive/shared/errs"
)

var (
	//go:embed dedup_redis_claim.lua
	luaDedupClaim string
	//go:embed dedup_redis_complete.lua
	luaDedupComplete string
	//go:embed dedup_redis_release.lua
	luaDedupRelease string

	scriptDedupClaim    = redis.NewScript(luaDedupClaim)
	scriptDedupComplete = redis.NewScript(luaDedupComplete)
	scriptDedupRelease  = redis.NewScript(luaDedupRelease)
)

// DefaultDedupRetention is how long RedisDedupStore keeps a completed
// entry: a retry of the same send within it returns the original message.
const DefaultDedupRetention = 7 * 24 * time.Hour

// RedisDedupStore keeps dedup claims in Redis, shared by every
// message-service instance, with the semantics of PebbleDedupStore: each
// method is one script, so claiming, completing and releasing are atomic
// across instances, and Complete/Release act only for the token that holds
// the claim.
//
// Key under prefix: dedup:<key>, a string "p:<expires ms>:<token>" while
// pending (expiring in Redis after the claim's ttl as well) or
// "m:<token>:<message json>" once completed (kept DefaultDedupRetention;
// a retry after that sends anew). Expiry of a pending claim is judged by
// the caller's clock (the now Claim takes), as in every backend.
//
// Replays are safe: when go-redis resends a script after losing its reply,
// Claim finds its own token (and still holds the key), Complete finds its
// own completion.
//
// Durability: a completion survives a Redis restart only with persistence
// (AOF); without it a retry after a Redis loss sends anew.
type RedisDedupStore struct {
	client    redis.UniversalClient
	prefix    string
	timeout   time.Duration
	retention time.Duration
}

var _ DedupStore = (*RedisDedupStore)(nil)

// NewRedisDedupStore returns a store keeping its keys under prefix (e.g.
// "beehive:msg:") through client (redisx.Open). Every instance must use
// the same prefix. It does not touch Redis.
func NewRedisDedupStore(client redis.UniversalClient, prefix string) *RedisDedupStore {
	return &RedisDedupStore{client: client, prefix: prefix, timeout: DefaultRedisTimeout, retention: DefaultDedupRetention}
}

func (s *RedisDedupStore) key(k string) string { return s.prefix + "dedup:" + k }

func (s *RedisDedupStore) run(ctx context.Context, sc *redis.Script, key string, args ...any) (any, error) {
	return runScript(ctx, s.client, s.timeout, sc, []string{s.key(key)}, args...)
}

// Claim implements DedupStore.
func (s *RedisDedupStore) Claim(ctx context.Context, key string, now time.Time, ttl time.Duration) (Claim, error) {
	if ttl < time.Millisecond {
		return Claim{}, errs.Newf(errs.Internal, "dedup claim ttl must be at least 1ms, got %v", ttl)
	}
	tok := newToken()
	v, err := s.run(ctx, scriptDedupClaim, key, tok,
		strconv.FormatInt(now.UnixMilli(), 10), strconv.FormatInt(now.Add(ttl).UnixMilli(), 10), strconv.FormatInt(ttl.Milliseconds(), 10))
	if err != nil {
		return Claim{}, err
	}
	res, _ := v.([]any)
	kind := ""
	if len(res) > 0 {
		kind, _ = res[0].(string)
	}
	switch kind {
	case "t":
		return Claim{Token: tok}, nil
	case "p":
		return Claim{}, ErrClaimPending
	case "m":
		var raw string
		if len(res) == 2 {
			raw, _ = res[1].(string)
		}
		var m Message
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return Claim{}, errs.Wrap(errs.Internal, err, "corrupt dedup record "+strconv.Quote(key))
		}
		return Claim{Original: &m}, nil
	}
	return Claim{}, errs.Newf(errs.Internal, "dedup claim script answered %v", v)
}

// Complete implements DedupStore.
func (s *RedisDedupStore) Complete(ctx context.Context, key, token string, m Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "encode dedup record")
	}
	v, err := s.run(ctx, scriptDedupComplete, key, token, string(b), strconv.FormatInt(s.retention.Milliseconds(), 10))
	if err != nil {
		return err
	}
	if n, _ := v.(int64); n != 1 {
		return ErrClaimLost
	}
	return nil
}

// Release implements DedupStore.
func (s *RedisDedupStore) Release(ctx context.Context, key, token string) error {
	_, err := s.run(ctx, scriptDedupRelease, key, token)
	return err
}

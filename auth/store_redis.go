package auth

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/redis/go-redis/v9"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
)

// The scripts share the helpers of store_redis_common.lua, prepended to each.
var (
	//go:embed store_redis_common.lua
	luaCommon string
	//go:embed store_redis_create.lua
	luaCreate string
	//go:embed store_redis_rotate.lua
	luaRotate string
	//go:embed store_redis_revoke.lua
	luaRevoke string
	//go:embed store_redis_revoke_user.lua
	luaRevokeUser string
	//go:embed store_redis_list.lua
	luaList string

	scriptCreate     = redis.NewScript(luaCommon + luaCreate)
	scriptRotate     = redis.NewScript(luaCommon + luaRotate)
	scriptRevoke     = redis.NewScript(luaCommon + luaRevoke)
	scriptRevokeUser = redis.NewScript(luaCommon + luaRevokeUser)
	scriptList       = redis.NewScript(luaCommon + luaList)
)

// Defaults of the Redis store.
const (
	// DefaultRedisStoreTimeout bounds each round trip to Redis, so an
	// outage is a quick `unavailable` rather than go-redis' retries. Every
	// call is one small command or script: a healthy Redis answers in
	// well under a millisecond. redisx.Open enables ContextTimeoutEnabled,
	// so the bound also cuts a read from a server that accepted the
	// connection but does not answer.
	DefaultRedisStoreTimeout = 500 * time.Millisecond
	// RevocationsChannel is the Pub/Sub channel (after the prefix) on which
	// revocations are announced.
	RevocationsChannel = "revocations"
)

// sessionGrace is how long a session's keys outlive its refresh expiry, so
// a late refresh still hears "session expired" (not "invalid refresh") and
// a revoked session is still listed for a while. After that the session is
// gone, which IsRevoked reports as revoked.
const sessionGrace = 24 * time.Hour

// Subscription upkeep: with no traffic for subscribePing the subscriber
// pings; with no answer by the next subscribePing it resubscribes. Failed
// subscriptions are retried with a backoff growing to subscribeMaxBackoff.
const (
	subscribePing       = 15 * time.Second
	subscribeMinBackoff = 100 * time.Millisecond
	subscribeMaxBackoff = 5 * time.Second
)

// RedisStore keeps sessions in Redis, shared by every auth instance (and
// read by every gateway through IsRevoked and SubscribeRevocations). Each
// write is one Lua script, so compare-and-rotate, reuse detection and
// revocation are atomic across instances.
//
// Keys under prefix:
//
//	s:<session id>  hash: user, device, hash (current refresh hash), gen,
//	                created, expires, revoked ("0"/"1"), revoked_at,
//	                create_op, revoke_op
//	x:<session id>  set: spent refresh-token hashes of the session
//	u:<user id>     set: session ids of the user
//
// and the Pub/Sub channel prefix+"revocations" carrying
// {"user_id":…,"session_id":…} (session_id "" = every session of the user)
// for each revocation. Times are nanoseconds of the service's clock (the
// times the methods take), never Redis' clock. The session keys expire
// sessionGrace after the refresh expiry (counted from the caller's now);
// the user index lives as long as its longest-lived session.
//
// Deployment: one Redis primary (replicas/Sentinel for failover are fine,
// Redis Cluster is not: scripts reach a user's index and sessions through
// keys they build, e.g. RevokeUserSessions revokes all of a user's
// sessions in one script). Revocations and rotations are
// acknowledged once Redis has applied them in memory; for them to survive
// a Redis restart, Redis MUST run with AOF on (appendonly yes, appendfsync
// everysec — at most a second of writes lost on a crash — or always, for
// none). Without AOF a restart forgets revocations and spent hashes: a
// stolen refresh token would work again. A failover to a replica may
// likewise lose the last writes not yet replicated.
//
// Every write is safe to replay: when go-redis sends a script again after
// losing its reply (redisx.Open allows one retry), the replay answers as
// the first run did — a create or revoke-all recognises its operation id,
// a rotation its new hash, a revocation is idempotent — instead of, say,
// taking the retried rotation for a reuse and revoking the session.
type RedisStore struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	logger  log.Logger
}

var _ Store = (*RedisStore)(nil)

// RedisStoreOption configures a RedisStore.
type RedisStoreOption func(*RedisStore)

// WithRedisStoreTimeout bounds each round trip to Redis (default
// DefaultRedisStoreTimeout; <= 0: only ctx and the client's timeouts).
func WithRedisStoreTimeout(d time.Duration) RedisStoreOption {
	return func(s *RedisStore) { s.timeout = d }
}

// WithRedisStoreLogger sets where SubscribeRevocations reports each
// (re)subscription ("subscribed to revocations"), lost subscriptions and
// malformed messages (default: nowhere).
func WithRedisStoreLogger(l log.Logger) RedisStoreOption {
	return func(s *RedisStore) {
		if l != nil {
			s.logger = l
		}
	}
}

// NewRedisStore returns a store keeping its keys under prefix (e.g.
// "beehive:auth:") through client, typically redisx.Open(addr). Every
// instance must use the same prefix. It does not touch Redis.
func NewRedisStore(client redis.UniversalClient, prefix string, opts ...RedisStoreOption) *RedisStore {
	s := &RedisStore{client: client, prefix: prefix, timeout: DefaultRedisStoreTimeout, logger: log.NewNopLogger()}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *RedisStore) sessionPrefix() string        { return s.prefix + "s:" }
func (s *RedisStore) sessionKey(id string) string  { return s.sessionPrefix() + id }
func (s *RedisStore) spentKey(id string) string    { return s.prefix + "x:" + id }
func (s *RedisStore) userPrefix() string           { return s.prefix + "u:" }
func (s *RedisStore) userKey(userID string) string { return s.userPrefix() + userID }

// Channel is the Pub/Sub channel revocations are announced on.
func (s *RedisStore) Channel() string { return s.prefix + RevocationsChannel }

// bound applies the per-round-trip timeout.
func (s *RedisStore) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout > 0 {
		return context.WithTimeout(ctx, s.timeout)
	}
	return context.WithCancel(ctx)
}

// redisFail turns a Redis failure into errs.Unavailable; when the caller's
// own ctx ended, its code (canceled, deadline_exceeded) is kept instead.
func redisFail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errs.As(ctx.Err())
	}
	return errs.Wrap(errs.Unavailable, err, "session store unavailable")
}

func redisMalformed(err error) error {
	return errs.Wrap(errs.Internal, err, "session store returned malformed data")
}

// run runs one script in one bounded round trip.
func (s *RedisStore) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, errs.As(err)
	}
	callCtx, cancel := s.bound(ctx)
	defer cancel()
	v, err := sc.Run(callCtx, s.client, keys, args...).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisFail(ctx, err)
	}
	return v, nil
}

// encodeTime writes t as decimal Unix nanoseconds, the form the scripts
// compare; times outside int64 nanoseconds (years 1678–2261) are refused.
func encodeTime(field string, t time.Time) (string, error) {
	if y := t.Year(); y < 1678 || y > 2261 {
		return "", errs.Invalid(field, "time out of range")
	}
	return strconv.FormatInt(t.UnixNano(), 10), nil
}

func decodeTime(v string) (time.Time, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, n).UTC(), nil
}

// keyTTL is how long a session's keys live when its refresh token expires
// at expires, seen at now.
func keyTTL(now, expires time.Time) int64 {
	return max(expires.Sub(now), 0).Milliseconds() + sessionGrace.Milliseconds()
}

// decodeSession reads a session hash (field -> value).
func decodeSession(id string, m map[string]string) (Session, error) {
	sess := Session{ID: id, UserID: m["user"], DeviceID: m["device"], RefreshHash: m["hash"], Revoked: m["revoked"] == "1"}
	var err error
	if sess.Generation, err = strconv.ParseUint(m["gen"], 10, 64); err != nil {
		return Session{}, redisMalformed(fmt.Errorf("session %s: gen: %w", id, err))
	}
	if sess.CreatedAt, err = decodeTime(m["created"]); err != nil {
		return Session{}, redisMalformed(fmt.Errorf("session %s: created: %w", id, err))
	}
	if sess.ExpiresAt, err = decodeTime(m["expires"]); err != nil {
		return Session{}, redisMalformed(fmt.Errorf("session %s: expires: %w", id, err))
	}
	if sess.Revoked {
		if sess.RevokedAt, err = decodeTime(m["revoked_at"]); err != nil {
			return Session{}, redisMalformed(fmt.Errorf("session %s: revoked_at: %w", id, err))
		}
	}
	if sess.UserID == "" {
		return Session{}, redisMalformed(fmt.Errorf("session %s has no user", id))
	}
	return sess, nil
}

// decodeFlat reads a session from a script's flat field/value array.
func decodeFlat(id string, v any) (Session, error) {
	arr, ok := v.([]any)
	if !ok || len(arr)%2 != 0 {
		return Session{}, redisMalformed(fmt.Errorf("session %s: reply %T", id, v))
	}
	m := make(map[string]string, len(arr)/2)
	for i := 0; i < len(arr); i += 2 {
		k, ok1 := arr[i].(string)
		val, ok2 := arr[i+1].(string)
		if !ok1 || !ok2 {
			return Session{}, redisMalformed(fmt.Errorf("session %s: field %v", id, arr[i]))
		}
		m[k] = val
	}
	return decodeSession(id, m)
}

func (s *RedisStore) CreateSession(ctx context.Context, sess Session) error {
	if sess.ID == "" || sess.UserID == "" {
		return errs.New(errs.InvalidArgument, "session needs an id and a user id")
	}
	created, err := encodeTime("created_at", sess.CreatedAt)
	if err != nil {
		return err
	}
	expires, err := encodeTime("expires_at", sess.ExpiresAt)
	if err != nil {
		return err
	}
	v, err := s.run(ctx, scriptCreate,
		[]string{s.sessionKey(sess.ID), s.spentKey(sess.ID), s.userKey(sess.UserID)},
		sess.ID, sess.UserID, sess.DeviceID, sess.RefreshHash, created, expires,
		keyTTL(sess.CreatedAt, sess.ExpiresAt), ids.New(), s.sessionPrefix())
	if err != nil {
		return err
	}
	switch v {
	case int64(1):
		return nil
	case int64(0):
		return errs.New(errs.AlreadyExists, "session exists")
	}
	return redisMalformed(fmt.Errorf("create: reply %v", v))
}

func (s *RedisStore) GetSession(ctx context.Context, id string) (Session, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, errs.As(err)
	}
	callCtx, cancel := s.bound(ctx)
	defer cancel()
	m, err := s.client.HGetAll(callCtx, s.sessionKey(id)).Result()
	if err != nil {
		return Session{}, redisFail(ctx, err)
	}
	if len(m) == 0 {
		return Session{}, ErrSessionNotFound
	}
	return decodeSession(id, m)
}

func (s *RedisStore) ListSessions(ctx context.Context, userID string) ([]Session, error) {
	v, err := s.run(ctx, scriptList, []string{s.userKey(userID)}, s.sessionPrefix())
	if err != nil {
		return nil, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr)%2 != 0 {
		return nil, redisMalformed(fmt.Errorf("list: reply %T", v))
	}
	out := make([]Session, 0, len(arr)/2)
	for i := 0; i < len(arr); i += 2 {
		id, ok := arr[i].(string)
		if !ok {
			return nil, redisMalformed(fmt.Errorf("list: id %v", arr[i]))
		}
		sess, err := decodeFlat(id, arr[i+1])
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	sortSessions(out)
	return out, nil
}

func (s *RedisStore) RotateRefresh(ctx context.Context, sessionID, presentedHash, newHash string, now, expiresAt time.Time) (Session, error) {
	nowS, err := encodeTime("now", now)
	if err != nil {
		return Session{}, err
	}
	expires, err := encodeTime("expires_at", expiresAt)
	if err != nil {
		return Session{}, err
	}
	v, err := s.run(ctx, scriptRotate, []string{s.sessionKey(sessionID), s.spentKey(sessionID)},
		presentedHash, newHash, nowS, expires, keyTTL(now, expiresAt), s.Channel(), sessionID, ids.New(), s.userPrefix())
	if err != nil {
		return Session{}, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return Session{}, redisMalformed(fmt.Errorf("rotate: reply %T", v))
	}
	switch arr[0] {
	case "ok":
		return decodeFlat(sessionID, arr[1:])
	case "invalid":
		return Session{}, ErrInvalidRefresh
	case "reused":
		return Session{}, ErrRefreshReused
	case "revoked":
		return Session{}, ErrSessionRevoked
	case "expired":
		return Session{}, ErrSessionExpired
	}
	return Session{}, redisMalformed(fmt.Errorf("rotate: status %v", arr[0]))
}

func (s *RedisStore) RevokeSession(ctx context.Context, id string, at time.Time) (Session, error) {
	atS, err := encodeTime("at", at)
	if err != nil {
		return Session{}, err
	}
	v, err := s.run(ctx, scriptRevoke, []string{s.sessionKey(id)}, atS, s.Channel(), id, ids.New())
	if err != nil {
		return Session{}, err
	}
	if arr, ok := v.([]any); ok && len(arr) == 0 {
		return Session{}, ErrSessionNotFound
	}
	return decodeFlat(id, v)
}

func (s *RedisStore) RevokeUserSessions(ctx context.Context, userID, exceptID string, at time.Time) ([]string, error) {
	atS, err := encodeTime("at", at)
	if err != nil {
		return nil, err
	}
	v, err := s.run(ctx, scriptRevokeUser, []string{s.userKey(userID)},
		exceptID, atS, s.sessionPrefix(), s.Channel(), userID, ids.New())
	if err != nil {
		return nil, err
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, redisMalformed(fmt.Errorf("revoke user: reply %T", v))
	}
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		id, ok := x.(string)
		if !ok {
			return nil, redisMalformed(fmt.Errorf("revoke user: id %v", x))
		}
		out = append(out, id)
	}
	return out, nil
}

func (s *RedisStore) IsRevoked(ctx context.Context, sessionID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, errs.As(err)
	}
	callCtx, cancel := s.bound(ctx)
	defer cancel()
	v, err := s.client.HGet(callCtx, s.sessionKey(sessionID), "revoked").Result()
	if errors.Is(err, redis.Nil) {
		return true, nil // unknown (or expired) session
	}
	if err != nil {
		return false, redisFail(ctx, err)
	}
	return v != "0", nil
}

// revocationMessage is the payload on the revocations channel.
type revocationMessage struct {
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id"`
}

// SubscribeRevocations calls fn for every revocation any RedisStore with
// this prefix makes from now on: fn(userID, sessionID) for one session,
// fn(userID, "") when every session of the user was revoked. It blocks
// until ctx ends (then returns nil), resubscribing after any failure. fn
// runs on the subscription's goroutine, one call at a time: keep it quick.
//
// Pub/Sub is at most once: revocations made while the subscription is
// down are not replayed, so a gateway must still check IsRevoked (for
// example when a socket authenticates and periodically) — the channel only
// makes the common case immediate.
func (s *RedisStore) SubscribeRevocations(ctx context.Context, fn func(userID, sessionID string)) error {
	backoff := subscribeMinBackoff
	for {
		subscribed, err := s.subscribeOnce(ctx, fn)
		if ctx.Err() != nil {
			return nil
		}
		if subscribed {
			backoff = subscribeMinBackoff
		}
		_ = level.Warn(s.logger).Log("msg", "revocation subscription lost", "channel", s.Channel(), "retryIn", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, subscribeMaxBackoff)
	}
}

// subscribeOnce holds one subscription until it fails or ctx ends, and
// reports whether the subscription was confirmed.
func (s *RedisStore) subscribeOnce(ctx context.Context, fn func(userID, sessionID string)) (bool, error) {
	ps := s.client.Subscribe(ctx)
	defer ps.Close()
	// A blocked receive does not watch ctx: closing the subscription
	// ends it when ctx does.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	subCtx, cancel := s.bound(ctx)
	err := ps.Subscribe(subCtx, s.Channel())
	if err == nil {
		// Wait for the confirmation: from here on no revocation is missed.
		_, err = ps.ReceiveTimeout(subCtx, max(s.timeout, time.Second))
	}
	cancel()
	if err != nil {
		return false, err
	}
	_ = level.Info(s.logger).Log("msg", "subscribed to revocations", "channel", s.Channel())
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, subscribePing)
		if err != nil {
			var ne net.Error
			if ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() && !pinged {
				if err := ps.Ping(ctx); err != nil {
					return true, err
				}
				pinged = true
				continue
			}
			return true, err
		}
		pinged = false
		m, ok := msg.(*redis.Message)
		if !ok {
			continue // pong, (re)subscription confirmation
		}
		var rm revocationMessage
		if err := json.Unmarshal([]byte(m.Payload), &rm); err != nil || rm.UserID == "" {
			_ = level.Warn(s.logger).Log("msg", "malformed revocation message", "channel", m.Channel, "err", err)
			continue
		}
		fn(rm.UserID, rm.SessionID)
	}
}

package presence

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/beehive-im/beehive/shared/errs"
)

// The scripts share the helpers of presence_common.lua, prepended to each.
var (
	//go:embed presence_common.lua
	luaCommon string
	//go:embed presence_add.lua
	luaAdd string
	//go:embed presence_remove.lua
	luaRemove string
	//go:embed presence_touch.lua
	luaTouch string
	//go:embed presence_get.lua
	luaGet string
	//go:embed presence_expire.lua
	luaExpire string

	scriptAdd    = redis.NewScript(luaCommon + luaAdd)
	scriptRemove = redis.NewScript(luaCommon + luaRemove)
	scriptTouch  = redis.NewScript(luaCommon + luaTouch)
	scriptGet    = redis.NewScript(luaCommon + luaGet)
	scriptExpire = redis.NewScript(luaCommon + luaExpire)
)

// Defaults of the Redis backend.
const (
	// DefaultRedisTimeout bounds each round trip to Redis. Presence sits on
	// every heartbeat and presence query; with Redis gone, go-redis would
	// otherwise spend its dial retries (five attempts 100 ms apart, then
	// MaxRetries more) on each call. An unresponsive server that accepted
	// the connection is bounded by the client's ReadTimeout instead
	// (redisx.Open: 1 s), unless the client has ContextTimeoutEnabled.
	DefaultRedisTimeout = 300 * time.Millisecond
	// DefaultLastSeenTTL is how long a user's last-seen time is kept after
	// the user was last seen.
	DefaultLastSeenTTL = 30 * 24 * time.Hour
	// DefaultShards is the number of index shards (see RedisBackend).
	DefaultShards = 16
)

// keyGrace is how long a user's session keys outlive the user's latest
// session expiry. Sweeps take users out of the index well before; the TTL
// only keeps Redis clean when no presence instance sweeps at all.
const keyGrace = 5 * time.Minute

// expireBatch is the most users one Expire script examines, so a sweep of
// a large backlog never blocks Redis for long; expireRounds bounds the
// batches of one Expire per shard, so one sweep's work is bounded too (the
// next sweep goes on where it stopped).
const (
	expireBatch  = 256
	expireRounds = 64
)

// RedisBackend keeps sessions in Redis, so every gateway and presence
// instance shares them. Each method is one Lua script, atomic per user.
//
// Keys, under prefix, for user u in shard k = fnv32a(u) mod shards:
//
//	{k}:index    sorted set: user id -> earliest expiry of its sessions
//	{k}:s:<u>    hash: conn id -> session JSON
//	{k}:e:<u>    sorted set: conn id -> expiry
//	{k}:seen:<u> last seen, expiring LastSeenTTL after it was written
//
// Times are microseconds of the service's clock (the now every method
// takes), never Redis' clock; key TTLs are set relative to that now. The
// {k} hash tag keeps a user's keys in its index's cluster slot, so the
// scripts work on Redis Cluster and shards spread over its nodes. Every
// instance must use the same prefix and shard count.
type RedisBackend struct {
	client      redis.UniversalClient
	prefix      string
	shards      int
	timeout     time.Duration
	lastSeenTTL time.Duration
}

var _ Backend = (*RedisBackend)(nil)

// RedisOption configures a RedisBackend.
type RedisOption func(*RedisBackend)

// WithRedisTimeout bounds each round trip to Redis (default
// DefaultRedisTimeout; <= 0: only ctx and the client's own timeouts).
func WithRedisTimeout(d time.Duration) RedisOption {
	return func(b *RedisBackend) { b.timeout = d }
}

// WithLastSeenTTL sets how long last-seen times are kept (default
// DefaultLastSeenTTL; values below a second are raised to a second).
func WithLastSeenTTL(d time.Duration) RedisOption {
	return func(b *RedisBackend) { b.lastSeenTTL = max(d, time.Second) }
}

// WithShards sets the number of index shards (default DefaultShards; <= 0
// keeps the default). Changing it strands the sessions stored under the
// old count until their keys expire.
func WithShards(n int) RedisOption {
	return func(b *RedisBackend) {
		if n > 0 {
			b.shards = n
		}
	}
}

// NewRedisBackend returns a backend storing its keys under prefix (e.g.
// "beehive:presence:") through client, typically redisx.Open(addr). It does
// not touch Redis.
func NewRedisBackend(client redis.UniversalClient, prefix string, opts ...RedisOption) *RedisBackend {
	b := &RedisBackend{
		client:      client,
		prefix:      prefix,
		shards:      DefaultShards,
		timeout:     DefaultRedisTimeout,
		lastSeenTTL: DefaultLastSeenTTL,
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// userKeys are the keys of one user.
type userKeys struct {
	index, sessions, expiries, seen string
}

func (b *RedisBackend) shard(userID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(userID))
	return int(h.Sum32() % uint32(b.shards))
}

// base is the key prefix of shard k; presence_expire.lua appends to it.
func (b *RedisBackend) base(k int) string {
	return b.prefix + "{" + strconv.Itoa(k) + "}:"
}

func (b *RedisBackend) keys(userID string) userKeys {
	base := b.base(b.shard(userID))
	return userKeys{
		index:    base + "index",
		sessions: base + "s:" + userID,
		expiries: base + "e:" + userID,
		seen:     base + "seen:" + userID,
	}
}

func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

func millis(d time.Duration) int64 { return d.Milliseconds() }

// bound applies the per-round-trip timeout.
func (b *RedisBackend) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if b.timeout > 0 {
		return context.WithTimeout(ctx, b.timeout)
	}
	return context.WithCancel(ctx)
}

// fail turns a Redis failure into errs.Unavailable; when the caller's own
// ctx ended, its code (canceled, deadline_exceeded) is kept instead.
func fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errs.As(ctx.Err())
	}
	return errs.Wrap(errs.Unavailable, err, "presence store unavailable")
}

func malformed(err error) error {
	return errs.Wrap(errs.Internal, err, "presence store returned malformed data")
}

// run runs one script in one bounded round trip.
func (b *RedisBackend) run(ctx context.Context, s *redis.Script, keys []string, args ...any) (*redis.Cmd, error) {
	callCtx, cancel := b.bound(ctx)
	defer cancel()
	cmd := s.Run(callCtx, b.client, keys, args...)
	if err := cmd.Err(); err != nil {
		return nil, fail(ctx, err)
	}
	return cmd, nil
}

func (b *RedisBackend) Add(ctx context.Context, s Session, expiresAt, now time.Time) (bool, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return false, errs.Wrap(errs.Internal, err, "encode session")
	}
	k := b.keys(s.UserID)
	cmd, err := b.run(ctx, scriptAdd, []string{k.index, k.sessions, k.expiries, k.seen},
		s.UserID, s.ConnID, data, micros(expiresAt), micros(now), millis(b.lastSeenTTL), millis(keyGrace))
	if err != nil {
		return false, err
	}
	n, err := cmd.Int()
	if err != nil {
		return false, malformed(err)
	}
	return n == 1, nil
}

func (b *RedisBackend) Remove(ctx context.Context, userID, connID string, now time.Time) (bool, error) {
	k := b.keys(userID)
	cmd, err := b.run(ctx, scriptRemove, []string{k.index, k.sessions, k.expiries, k.seen},
		userID, connID, micros(now), millis(b.lastSeenTTL), millis(keyGrace))
	if err != nil {
		return false, err
	}
	n, err := cmd.Int()
	if err != nil {
		return false, malformed(err)
	}
	return n == 1, nil
}

func (b *RedisBackend) Touch(ctx context.Context, userID, connID string, expiresAt, now time.Time) (bool, error) {
	k := b.keys(userID)
	cmd, err := b.run(ctx, scriptTouch, []string{k.index, k.sessions, k.expiries, k.seen},
		userID, connID, micros(expiresAt), micros(now), millis(b.lastSeenTTL), millis(keyGrace))
	if err != nil {
		return false, err
	}
	n, err := cmd.Int()
	if err != nil {
		return false, malformed(err)
	}
	return n == 1, nil
}

// scriptCall is one script invocation of a pipelined batch.
type scriptCall struct {
	keys []string
	args []any
}

// pipelined runs the calls of script s in one bounded round trip (the
// cluster client splits it per node). Calls refused with NOSCRIPT (script
// cache flushed, e.g. Redis restarted) did not run; they are sent again
// with the script's source.
func (b *RedisBackend) pipelined(ctx context.Context, s *redis.Script, calls []scriptCall) ([]*redis.Cmd, error) {
	callCtx, cancel := b.bound(ctx)
	defer cancel()
	cmds := make([]*redis.Cmd, len(calls))
	pipe := b.client.Pipeline()
	for i, c := range calls {
		cmds[i] = s.EvalSha(callCtx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(callCtx) // errors are read per command below
	var again []int
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			if !redis.HasErrorPrefix(err, "NOSCRIPT") {
				return nil, fail(ctx, err)
			}
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return cmds, nil
	}
	pipe = b.client.Pipeline()
	for _, i := range again {
		cmds[i] = s.Eval(callCtx, pipe, calls[i].keys, calls[i].args...)
	}
	_, _ = pipe.Exec(callCtx)
	for _, i := range again {
		if err := cmds[i].Err(); err != nil {
			return nil, fail(ctx, err)
		}
	}
	return cmds, nil
}

func (b *RedisBackend) Get(ctx context.Context, userIDs []string, now time.Time) (map[string]Record, error) {
	out := make(map[string]Record, len(userIDs))
	byShard := map[int][]string{}
	seen := make(map[string]struct{}, len(userIDs))
	for _, id := range userIDs {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		k := b.shard(id)
		byShard[k] = append(byShard[k], id)
	}
	if len(byShard) == 0 {
		return out, nil
	}
	shardIDs := make([]int, 0, len(byShard))
	for k := range byShard {
		shardIDs = append(shardIDs, k)
	}
	sort.Ints(shardIDs)
	calls := make([]scriptCall, len(shardIDs))
	for i, k := range shardIDs {
		users := byShard[k]
		keys := make([]string, 0, 3*len(users))
		for _, id := range users {
			uk := b.keys(id)
			keys = append(keys, uk.sessions, uk.expiries, uk.seen)
		}
		calls[i] = scriptCall{keys: keys, args: []any{micros(now)}}
	}
	cmds, err := b.pipelined(ctx, scriptGet, calls)
	if err != nil {
		return nil, err
	}
	for i, k := range shardIDs {
		users := byShard[k]
		recs, err := cmds[i].Slice()
		if err != nil {
			return nil, malformed(err)
		}
		if len(recs) != len(users) {
			return nil, malformed(fmt.Errorf("get returned %d records for %d users", len(recs), len(users)))
		}
		for j, raw := range recs {
			r, err := decodeRecord(raw)
			if err != nil {
				return nil, malformed(err)
			}
			if len(r.Sessions) > 0 || !r.LastSeen.IsZero() {
				out[users[j]] = r
			}
		}
	}
	return out, nil
}

// decodeRecord reads the {last seen (empty when never seen), session JSON...}
// list of presence_get.lua.
func decodeRecord(raw any) (Record, error) {
	var r Record
	fields, ok := raw.([]any)
	if !ok || len(fields) == 0 {
		return r, fmt.Errorf("record is %T", raw)
	}
	strs := make([]string, len(fields))
	for i, f := range fields {
		s, ok := f.(string)
		if !ok {
			return r, fmt.Errorf("record field %d is %T", i, f)
		}
		strs[i] = s
	}
	if strs[0] != "" {
		us, err := strconv.ParseInt(strs[0], 10, 64)
		if err != nil {
			return r, fmt.Errorf("last seen %q: %w", strs[0], err)
		}
		r.LastSeen = time.UnixMicro(us).UTC()
	}
	for _, s := range strs[1:] {
		var sess Session
		if err := json.Unmarshal([]byte(s), &sess); err != nil {
			return r, fmt.Errorf("session: %w", err)
		}
		r.Sessions = append(r.Sessions, sess)
	}
	sort.Slice(r.Sessions, func(i, j int) bool {
		a, c := r.Sessions[i], r.Sessions[j]
		if !a.Since.Equal(c.Since) {
			return a.Since.Before(c.Since)
		}
		return a.ConnID < c.ConnID
	})
	return r, nil
}

// Expire sweeps every shard: one pipelined round trip for the first batch
// of each, then more batches for shards that had a full one (at most
// expireRounds batches per shard; the next sweep goes on). Each batch is
// atomic and takes the users it reports out of the index, so concurrent
// sweeps by several instances report each user once. When a round trip
// fails, the users reported by earlier ones are returned with the error:
// Redis no longer lists them, and no later sweep will report them.
func (b *RedisBackend) Expire(ctx context.Context, now time.Time) ([]string, error) {
	pending := make([]int, b.shards)
	for k := range pending {
		pending[k] = k
	}
	var left []string
	for round := 0; len(pending) > 0 && round < expireRounds; round++ {
		calls := make([]scriptCall, len(pending))
		for i, k := range pending {
			base := b.base(k)
			calls[i] = scriptCall{
				keys: []string{base + "index"},
				args: []any{micros(now), base, expireBatch, millis(keyGrace)},
			}
		}
		cmds, err := b.pipelined(ctx, scriptExpire, calls)
		if err != nil {
			sort.Strings(left)
			return left, err
		}
		var full []int
		for i, k := range pending {
			examined, users, err := decodeExpire(cmds[i])
			if err != nil {
				sort.Strings(left)
				return left, malformed(err)
			}
			left = append(left, users...)
			if examined >= expireBatch {
				full = append(full, k)
			}
		}
		pending = full
	}
	sort.Strings(left)
	return left, nil
}

// decodeExpire reads { examined, { user ids } } of presence_expire.lua.
func decodeExpire(cmd *redis.Cmd) (int64, []string, error) {
	v, err := cmd.Slice()
	if err != nil {
		return 0, nil, err
	}
	if len(v) != 2 {
		return 0, nil, fmt.Errorf("expire returned %d values", len(v))
	}
	examined, ok := v[0].(int64)
	if !ok {
		return 0, nil, fmt.Errorf("expire count is %T", v[0])
	}
	list, ok := v[1].([]any)
	if !ok {
		return 0, nil, fmt.Errorf("expire list is %T", v[1])
	}
	users := make([]string, 0, len(list))
	for _, u := range list {
		s, ok := u.(string)
		if !ok {
			return 0, nil, errors.New("expire list holds a non-string")
		}
		users = append(users, s)
	}
	return examined, users, nil
}

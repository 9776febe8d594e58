package app

import (
	"context"

	"github.com/gocql/gocql"
	"github.com/redis/go-redis/v9"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/cassandra"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/pebblex"
	"github.com/beehive-im/beehive/shared/ratelimit"
	"github.com/beehive-im/beehive/shared/redisx"
	"github.com/beehive-im/beehive/user"
)

// Backends of a serve process. Static mode (the default) keeps each
// process's durable state in its own embedded store under the data dir;
// the distributed mode (mode: distributed) keeps it in Cassandra (history
// and everything durable) and Redis (presence, tokens, seq, dedup, limits).

func (n *node) distributed() bool { return n.cfg.Mode == "distributed" }

// cassandra opens the session once and adds its readiness check.
func (n *node) cassandra() (*gocql.Session, error) {
	if n.cass != nil {
		return n.cass, nil
	}
	s, err := cassandra.Connect(cassandraConfig(n.cfg))
	if err != nil {
		return nil, err
	}
	n.cass = s
	n.closers = append(n.closers, s.Close)
	n.checks = append(n.checks, httpx.Check{Name: "cassandra", Check: func(ctx context.Context) error {
		return s.Query(`SELECT release_version FROM system.local`).WithContext(ctx).Exec()
	}})
	return s, nil
}

// redis opens the client once and adds its readiness check.
func (n *node) redis() *redis.Client {
	if n.rdb != nil {
		return n.rdb
	}
	n.rdb = redisx.Open(n.cfg.Redis.Addr)
	n.closers = append(n.closers, func() { _ = n.rdb.Close() })
	n.checks = append(n.checks, httpx.Check{Name: "redis", Check: func(ctx context.Context) error { return redisx.Ping(ctx, n.rdb) }})
	return n.rdb
}

func (n *node) authStore() (auth.Store, error) {
	if n.distributed() {
		return auth.NewRedisStore(n.redis(), n.cfg.Redis.KeyPrefix+"auth:"), nil
	}
	db, err := n.store()
	if err != nil {
		return nil, err
	}
	st := auth.NewPebbleStore(db)
	// Pebble keeps what Redis would expire by TTL: sweep it.
	n.actors = append(n.actors, pebblex.Sweeper{Name: "auth sessions", Sweep: st.Sweep, Logger: n.logger}.Run)
	return st, nil
}

func (n *node) userStore() (user.Store, error) {
	if n.distributed() {
		s, err := n.cassandra()
		if err != nil {
			return nil, err
		}
		return user.NewCassandraStore(s), nil
	}
	db, err := n.store()
	if err != nil {
		return nil, err
	}
	return user.NewPebbleStore(db), nil
}

func (n *node) groupStore() (group.Store, error) {
	if n.distributed() {
		s, err := n.cassandra()
		if err != nil {
			return nil, err
		}
		return group.NewCassandraStore(s), nil
	}
	db, err := n.store()
	if err != nil {
		return nil, err
	}
	return group.NewPebbleStore(db), nil
}

func (n *node) queryStore() (query.Store, error) {
	if n.distributed() {
		s, err := n.cassandra()
		if err != nil {
			return nil, err
		}
		return query.NewCassandraStore(s), nil
	}
	db, err := n.store()
	if err != nil {
		return nil, err
	}
	return query.NewPebbleStore(db), nil
}

func (n *node) pusherStore() (pusher.Store, error) {
	if n.distributed() {
		s, err := n.cassandra()
		if err != nil {
			return nil, err
		}
		return pusher.NewCassandraStore(s), nil
	}
	db, err := n.store()
	if err != nil {
		return nil, err
	}
	return pusher.NewPebbleStore(db), nil
}

func (n *node) presenceBackend() (presence.Backend, error) {
	if n.distributed() {
		return presence.NewRedisBackend(n.redis(), n.cfg.Redis.KeyPrefix+"presence:"), nil
	}
	return presence.NewMemoryBackend(), nil
}

// messageState is seq allocation and send dedup: shared by every message
// instance through Redis under Cassandra-leased high-water marks when
// distributed.
func (n *node) messageState() (message.SeqAllocator, message.DedupStore, error) {
	if n.distributed() {
		s, err := n.cassandra()
		if err != nil {
			return nil, nil, err
		}
		prefix := n.cfg.Redis.KeyPrefix + "msg:"
		return message.NewRedisSeqAllocator(n.redis(), prefix, message.NewCassandraSeqLeaser(s), n.cfg.Message.SeqLeaseBlock),
			message.NewRedisDedupStore(n.redis(), prefix), nil
	}
	db, err := n.store()
	if err != nil {
		return nil, nil, err
	}
	dedup := message.NewPebbleDedupStore(db)
	n.actors = append(n.actors, pebblex.Sweeper{Name: "message dedup", Sweep: dedup.Sweep, Logger: n.logger}.Run)
	return message.NewLeasedAllocator(message.NewPebbleSeqLeaser(db), n.cfg.Message.SeqLeaseBlock), dedup, nil
}

// limiter is a per-key limit of perMinute events (login attempts).
func (n *node) limiter(prefix string, perMinute int) ratelimit.Keyed {
	return n.rateLimiter(prefix, float64(perMinute)/60, perMinute)
}

// rateLimiter is a client-facing per-key limit: local to this process in
// static mode, shared by every instance through Redis when distributed (a
// client cannot multiply its budget by spreading over gateways).
func (n *node) rateLimiter(prefix string, perSecond float64, burst int) ratelimit.Keyed {
	if n.distributed() {
		if l, err := ratelimit.NewRedis(n.redis(), n.cfg.Redis.KeyPrefix+"rl:"+prefix, perSecond, burst); err == nil {
			return l
		}
	}
	return ratelimit.NewLocal(perSecond, burst)
}

package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/go-kit/log"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/cassandra"
	"github.com/beehive-im/beehive/shared/config"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/kafkax"
	"github.com/beehive-im/beehive/shared/pebblex"
	"github.com/beehive-im/beehive/shared/ratelimit"
	"github.com/beehive-im/beehive/shared/redisx"
	"github.com/beehive-im/beehive/user"
)

// The dependencies a service can need to be ready, as /ready names them.
const (
	depStore     = "store" // the process's Pebble store
	depKafka     = "kafka"
	depRedis     = "redis"
	depCassandra = "cassandra"
)

// depError is a failure to reach one dependency: the process retries and
// reports not ready naming it, rather than exiting.
type depError struct {
	dep string
	err error
}

func (e *depError) Error() string { return e.dep + ": " + e.err.Error() }
func (e *depError) Unwrap() error { return e.err }

// backends opens, once each, what the services of one process store their
// state in, chosen by mode. A store getter is the only place that knows
// which backend a domain uses in which mode.
type backends struct {
	mode   string
	name   string // the store's file name under the data dir
	cfg    config.Config
	logger log.Logger

	db      *pebble.DB
	broker  *kafkax.Embedded
	brokers []string
	cass    *gocql.Session
	rdb     *redis.Client
	writers map[string]*kafka.Writer
	seqs    message.SeqAllocator
	auth    auth.Store

	checks  map[string]httpx.Check
	reg     prometheus.Registerer // the process's metrics (set by newWiring)
	actors  []func(context.Context) error
	closers []func()
}

// storeName is the Pebble store's name under the data dir: one store for
// the embedded process, one per service for a static one.
func storeName(mode, service string) string {
	if mode == config.ModeEmbedded {
		return "store"
	}
	return "store-" + service
}

// newBackends prepares the backends of a process; nothing is opened yet.
// storeName names the Pebble store under the data dir ("store" for the
// embedded process, "store-<service>" for a static one).
func newBackends(mode, storeName string, cfg config.Config, logger log.Logger) *backends {
	return &backends{mode: mode, name: storeName, cfg: cfg, logger: logger, writers: map[string]*kafka.Writer{}, checks: map[string]httpx.Check{}}
}

func (b *backends) distributed() bool { return b.mode == config.ModeDistributed }

// durable names the dependency a domain's durable state lives in.
func (b *backends) durable() string {
	if b.distributed() {
		return depCassandra
	}
	return depStore
}

// fast names the dependency of short-lived shared state (tokens, seq,
// dedup, presence, limits).
func (b *backends) fast() string {
	if b.distributed() {
		return depRedis
	}
	return depStore
}

// close releases everything opened, newest first.
func (b *backends) close() {
	for _, w := range b.writers {
		_ = w.Close()
	}
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

func (b *backends) check(name string, fn func(ctx context.Context) error) {
	b.checks[name] = httpx.Check{Name: name, Check: fn}
}

// store opens the process's Pebble store.
func (b *backends) store() (*pebble.DB, error) {
	if b.db != nil {
		return b.db, nil
	}
	if err := os.MkdirAll(b.cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", b.cfg.DataDir, err)
	}
	db, err := pebblex.Open(filepath.Join(b.cfg.DataDir, b.name))
	if err != nil {
		return nil, err
	}
	b.db = db
	b.closers = append(b.closers, func() { _ = db.Close() })
	b.check(depStore, func(context.Context) error {
		_, _, err := pebblex.Get(db, []byte("ready-probe"))
		return err
	})
	return db, nil
}

// kafka returns the brokers, with the topics ensured: the embedded broker
// in embedded mode, the configured cluster otherwise.
func (b *backends) kafka(ctx context.Context) ([]string, error) {
	if b.brokers != nil {
		return b.brokers, nil
	}
	brokers, replication := b.cfg.Kafka.Brokers, b.cfg.Kafka.ReplicationFactor
	if b.mode == config.ModeEmbedded {
		broker, err := kafkax.StartEmbedded(filepath.Join(b.cfg.DataDir, "kafka"), "127.0.0.1:0", log.With(b.logger, "component", "kfake"))
		if err != nil {
			return nil, err
		}
		b.broker = broker
		b.closers = append(b.closers, func() { _ = broker.Close() })
		brokers, replication = broker.Brokers(), 1
	}
	if len(brokers) == 0 {
		return nil, fmt.Errorf("mode %s needs Kafka: set kafka.brokers (BEEHIVE_KAFKA_BROKERS)", b.mode)
	}
	if err := kafkax.EnsureTopics(ctx, brokers, kafkax.DefaultTopics(b.cfg.Kafka.Partitions, replication)); err != nil {
		return nil, &depError{depKafka, err}
	}
	b.brokers = brokers
	b.check(depKafka, func(ctx context.Context) error { return kafkaPing(ctx, brokers) })
	return brokers, nil
}

// writer is the one producer of a topic in this process.
func (b *backends) writer(ctx context.Context, topic string) (*kafka.Writer, error) {
	if w, ok := b.writers[topic]; ok {
		return w, nil
	}
	brokers, err := b.kafka(ctx)
	if err != nil {
		return nil, err
	}
	w := kafkax.NewWriter(brokers, topic, b.cfg.Kafka.BatchTimeout)
	b.writers[topic] = w
	return w, nil
}

// consumerConfig is the base of every consumer group of this process. The
// consumers report their health as beehive_consumer_up and
// beehive_consumer_errors_total on the process's /metrics.
func (b *backends) consumerConfig(ctx context.Context) (kafkax.ConsumerConfig, error) {
	dead, err := b.writer(ctx, kafkax.TopicDeadLetter)
	if err != nil {
		return kafkax.ConsumerConfig{}, err
	}
	return kafkax.ConsumerConfig{Brokers: b.brokers, DeadLetter: dead, SessionTimeout: b.cfg.Kafka.SessionTimeout, Logger: b.logger, Registerer: b.reg}, nil
}

// cassandra opens the session once.
func (b *backends) cassandra() (*gocql.Session, error) {
	if b.cass != nil {
		return b.cass, nil
	}
	s, err := cassandra.Connect(cassandraConfig(b.cfg))
	if err != nil {
		return nil, &depError{depCassandra, err}
	}
	b.cass = s
	b.closers = append(b.closers, s.Close)
	b.check(depCassandra, func(ctx context.Context) error {
		return s.Query(`SELECT release_version FROM system.local`).WithContext(ctx).Exec()
	})
	return s, nil
}

// redis opens the client once. The client connects lazily, so a missing
// Redis shows in readiness and in the calls that need it.
func (b *backends) redis() *redis.Client {
	if b.rdb != nil {
		return b.rdb
	}
	rdb := redisx.Open(b.cfg.Redis.Addr)
	b.rdb = rdb
	b.closers = append(b.closers, func() { _ = rdb.Close() })
	b.check(depRedis, func(ctx context.Context) error { return redisx.Ping(ctx, rdb) })
	return rdb
}

func (b *backends) prefix(p string) string { return b.cfg.Redis.KeyPrefix + p }

// sweep runs a Pebble store's sweeper: Pebble keeps what Redis would
// expire by TTL.
func (b *backends) sweep(name string, fn func(context.Context, time.Time) (int, error)) {
	b.actors = append(b.actors, pebblex.Sweeper{Name: name, Sweep: fn, Logger: b.logger}.Run)
}

// The stores of each domain, by mode.

// authStore is opened once: the auth service and the token verifier of
// the same process share it (and a Pebble store gets one sweeper).
func (b *backends) authStore() (auth.Store, error) {
	if b.auth != nil {
		return b.auth, nil
	}
	if b.distributed() {
		b.auth = auth.NewRedisStore(b.redis(), b.prefix("auth:"))
		return b.auth, nil
	}
	db, err := b.store()
	if err != nil {
		return nil, err
	}
	st := auth.NewPebbleStore(db)
	b.sweep("auth sessions", st.Sweep)
	b.auth = st
	return st, nil
}

func (b *backends) userStore() (user.Store, error) {
	if b.distributed() {
		s, err := b.cassandra()
		if err != nil {
			return nil, err
		}
		return user.NewCassandraStore(s), nil
	}
	db, err := b.store()
	if err != nil {
		return nil, err
	}
	return user.NewPebbleStore(db), nil
}

func (b *backends) groupStore() (group.Store, error) {
	if b.distributed() {
		s, err := b.cassandra()
		if err != nil {
			return nil, err
		}
		return group.NewCassandraStore(s), nil
	}
	db, err := b.store()
	if err != nil {
		return nil, err
	}
	return group.NewPebbleStore(db), nil
}

func (b *backends) queryStore() (query.Store, error) {
	if b.distributed() {
		s, err := b.cassandra()
		if err != nil {
			return nil, err
		}
		return query.NewCassandraStore(s), nil
	}
	db, err := b.store()
	if err != nil {
		return nil, err
	}
	return query.NewPebbleStore(db), nil
}

func (b *backends) pusherStore() (pusher.Store, error) {
	if b.distributed() {
		s, err := b.cassandra()
		if err != nil {
			return nil, err
		}
		return pusher.NewCassandraStore(s), nil
	}
	db, err := b.store()
	if err != nil {
		return nil, err
	}
	return pusher.NewPebbleStore(db), nil
}

// presenceBackend is Redis when distributed; in one process presence
// lives in memory (it is rebuilt as sockets reconnect).
func (b *backends) presenceBackend() presence.Backend {
	if b.distributed() {
		return presence.NewRedisBackend(b.redis(), b.prefix("presence:"))
	}
	return presence.NewMemoryBackend()
}

// seqs is the process's one seq allocator: Redis under Cassandra-leased
// high-water marks when distributed (shared by every instance), leased
// from the Pebble store otherwise. The message service allocates from it;
// the group service reads a conversation's last seq from it for a new
// member's join seq, without calling back into the message service.
func (b *backends) seqAllocator() (message.SeqAllocator, error) {
	if b.seqs != nil {
		return b.seqs, nil
	}
	if b.distributed() {
		s, err := b.cassandra()
		if err != nil {
			return nil, err
		}
		b.seqs = message.NewRedisSeqAllocator(b.redis(), b.prefix("msg:"), message.NewCassandraSeqLeaser(s), b.cfg.Message.SeqLeaseBlock)
		return b.seqs, nil
	}
	db, err := b.store()
	if err != nil {
		return nil, err
	}
	b.seqs = message.NewLeasedAllocator(message.NewPebbleSeqLeaser(db), b.cfg.Message.SeqLeaseBlock)
	return b.seqs, nil
}

// conversationLeases keep one produce in flight per conversation across
// message instances: in Redis when distributed; none in one process or a
// static one (a single message instance).
func (b *backends) conversationLeases() message.Leases {
	if !b.distributed() {
		return nil
	}
	return message.NewRedisLeases(b.redis(), b.prefix("msg:"))
}

// dedupStore claims (sender, client_msg_id) before a produce.
func (b *backends) dedupStore() (message.DedupStore, error) {
	if b.distributed() {
		return message.NewRedisDedupStore(b.redis(), b.prefix("msg:")), nil
	}
	db, err := b.store()
	if err != nil {
		return nil, err
	}
	dedup := message.NewPebbleDedupStore(db)
	b.sweep("message dedup", dedup.Sweep)
	return dedup, nil
}

// limiter is a client-facing per-key limit: shared by every instance
// through Redis when distributed (a client cannot multiply its budget by
// spreading over instances), local to the process otherwise. There is no
// fallback from one to the other.
func (b *backends) limiter(prefix string, perSecond float64, burst int) (ratelimit.Keyed, error) {
	if !b.distributed() {
		return ratelimit.NewLocal(perSecond, burst), nil
	}
	l, err := ratelimit.NewRedis(b.redis(), b.prefix("rl:"+prefix), perSecond, burst)
	if err != nil {
		return nil, fmt.Errorf("rate limiter %s: %w", prefix, err)
	}
	return l, nil
}

// perMinute is a limit of n events a minute (login attempts).
func (b *backends) perMinute(prefix string, n int) (ratelimit.Keyed, error) {
	return b.limiter(prefix, float64(n)/60, n)
}

// kafkaPing checks that some broker answers a metadata request.
func kafkaPing(ctx context.Context, brokers []string) error {
	var last error
	for _, addr := range brokers {
		conn, err := kafka.DialContext(ctx, "tcp", addr)
		if err != nil {
			last = err
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, err = conn.Brokers()
		_ = conn.Close()
		if err == nil {
			return nil
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("no brokers configured")
	}
	return last
}

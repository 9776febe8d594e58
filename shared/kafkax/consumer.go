package kafkax

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// ErrPoison marks a message that can never be processed (it does not
// decode, its schema version is unknown, it is invalid): a handler error
// wrapping it sends the message to the dead-letter topic at once, and only
// such errors do. Any other handler error is taken for infrastructure (a
// store, a peer or Kafka away): the consumer holds its position and retries.
var ErrPoison = errors.New("kafkax: poison message")

// Poison wraps err (or a description) so that errors.Is(err, ErrPoison).
func Poison(err error) error { return fmt.Errorf("%w: %w", ErrPoison, err) }

// Headers a dead-lettered record carries besides its original headers.
const (
	HeaderOriginalTopic     = "x-original-topic"
	HeaderOriginalPartition = "x-original-partition"
	HeaderOriginalOffset    = "x-original-offset"
	HeaderConsumerGroup     = "x-consumer-group"
	HeaderError             = "x-error"
	HeaderAttempts          = "x-attempts"
)

// Handler processes one message. Returning nil commits it; an error
// wrapping ErrPoison dead-letters it at once; any other error retries it
// with backoff, without end, until it succeeds or the consumer stops: the
// partition waits for the dependency to return. Handlers must be
// idempotent (delivery is at least once).
type Handler func(ctx context.Context, m kafka.Message) error

// BatchHandler processes consecutive fetched messages at once (they may
// span partitions, each partition's messages in offset order). A batch
// failing with an infrastructure error is retried whole until it succeeds;
// when the error wraps ErrPoison its messages are handled one at a time so
// only the bad ones reach the dead-letter topic.
type BatchHandler func(ctx context.Context, ms []kafka.Message) error

// ConsumerConfig configures RunConsumer and RunBatchConsumer.
type ConsumerConfig struct {
	Brokers []string
	GroupID string
	Topic   string
	// Backoff is the delay before the first retry of anything that failed
	// (a handler's infrastructure error, a fetch, a commit, a dead-letter
	// write); it doubles up to MaxBackoff (defaults 100 ms and 10 s), and
	// each wait is jittered by +-50%.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// LogEvery: a failure that keeps repeating is logged at warn on its
	// first attempt and then every LogEvery-th (default 10), at debug in
	// between.
	LogEvery int
	// DeadLetter writes to TopicDeadLetter (required: without it a poison
	// record could only be dropped or block its partition).
	DeadLetter *kafka.Writer
	// SessionTimeout is how long the group coordinator waits for a silent
	// member before giving its partitions away (default 10 s); heartbeats
	// go at a fifth of it. A member that stops cleanly leaves the group at
	// once, so a restarted consumer resumes without waiting for it.
	SessionTimeout time.Duration
	// MaxBatch bounds RunBatchConsumer's batches (default 100).
	MaxBatch int
	// MaxWait is how long RunBatchConsumer waits for more messages after
	// the first one of a batch (default 5 ms).
	MaxWait time.Duration
	// StartOffset is where a group without committed offsets starts:
	// kafka.FirstOffset (default) or kafka.LastOffset.
	StartOffset int64
	Logger      log.Logger
	// Registerer receives the consumer's health metrics (see
	// consumerMetrics); nil keeps them unregistered.
	Registerer prometheus.Registerer
}

func (c *ConsumerConfig) defaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafkax: consumer without brokers")
	}
	if c.GroupID == "" || c.Topic == "" {
		return errors.New("kafkax: consumer needs GroupID and Topic")
	}
	if c.DeadLetter == nil {
		return errors.New("kafkax: consumer needs a DeadLetter writer")
	}
	if c.LogEvery <= 0 {
		c.LogEvery = 10
	}
	if c.Backoff <= 0 {
		c.Backoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 100
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 5 * time.Millisecond
	}
	if c.StartOffset == 0 {
		c.StartOffset = kafka.FirstOffset
	}
	if c.Logger == nil {
		c.Logger = log.NewNopLogger()
	}
	c.Logger = log.With(c.Logger, "group", c.GroupID, "topic", c.Topic)
	return nil
}

// newReader returns the group reader. Its own errors (group joins, fetches,
// commits failing while Kafka is away) go to onError: kafka-go retries
// them itself, the consumer only reports them.
func newReader(cfg ConsumerConfig, onError func(detail string)) *kafka.Reader {
	hb := cfg.SessionTimeout / 5
	if hb < 100*time.Millisecond {
		hb = 100 * time.Millisecond
	}
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:           cfg.Brokers,
		GroupID:           cfg.GroupID,
		Topic:             cfg.Topic,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		MaxWait:           500 * time.Millisecond,
		SessionTimeout:    cfg.SessionTimeout,
		HeartbeatInterval: hb,
		RebalanceTimeout:  cfg.SessionTimeout,
		JoinGroupBackoff:  500 * time.Millisecond,
		ReadBackoffMin:    20 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
		// Commits are synchronous: CommitMessages returns once the broker
		// stored the offsets.
		CommitInterval: 0,
		StartOffset:    cfg.StartOffset,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			onError(fmt.Sprintf(format, args...))
		}),
	})
}

// RunConsumer consumes cfg.Topic in consumer group cfg.GroupID until ctx is
// done, handing each message to h in partition order and committing its
// offset only after h succeeded or the message (poison) was dead-lettered.
//
// It never gives up because Kafka or a handler's dependency is away: dial,
// fetch and commit failures, rebalances and broker restarts are retried
// with jittered backoff, as are handler errors that do not wrap ErrPoison,
// while the position is held. It returns nil when ctx ends, and an error
// only for a configuration that cannot work (returned at once).
func RunConsumer(ctx context.Context, cfg ConsumerConfig, h Handler) error {
	if h == nil {
		return errors.New("kafkax: nil handler")
	}
	return run(ctx, cfg, 1, func(ctx context.Context, ms []kafka.Message) error { return h(ctx, ms[0]) })
}

// RunBatchConsumer is RunConsumer for handlers that write many messages at
// once (the persistence writer): each call gets up to MaxBatch consecutive
// fetched messages, and their offsets are committed together after it.
func RunBatchConsumer(ctx context.Context, cfg ConsumerConfig, h BatchHandler) error {
	if h == nil {
		return errors.New("kafkax: nil handler")
	}
	return run(ctx, cfg, 0, h)
}

// quietFetch bounds one wait for a record, so an idle consumer notices that
// Kafka is back (beehive_consumer_up returns to 1) without a record.
const quietFetch = 5 * time.Second

type consumer struct {
	cfg     ConsumerConfig
	h       BatchHandler
	metrics *consumerMetrics

	mu sync.Mutex
	// readerErrs counts the reader's own errors since the last success,
	// for the log throttle; lastReaderErr is when the latest came.
	readerErrs    int
	lastReaderErr time.Time
}

func run(ctx context.Context, cfg ConsumerConfig, maxBatch int, h BatchHandler) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	if maxBatch > 0 {
		cfg.MaxBatch = maxBatch
	}
	c := &consumer{cfg: cfg, h: h, metrics: newConsumerMetrics(cfg.Registerer, cfg.GroupID)}
	c.metrics.up.Set(1)
	defer c.metrics.up.Set(0)
	r := newReader(cfg, c.readerError)
	defer func() { _ = r.Close() }() // the latest reader
	fetchFailures := 0
	for {
		fctx, cancel := context.WithTimeout(ctx, quietFetch)
		m, err := r.FetchMessage(fctx)
		idle := fctx.Err() != nil
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if idle {
				// No record for a while: healthy again once the reader
				// stopped reporting errors (Kafka is back, the topic quiet).
				if c.readerQuietSince(quietFetch) {
					fetchFailures = 0
					c.recovered("kafka")
				}
				continue
			}
			fetchFailures++
			c.failed("fetch", fetchFailures, err)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
				// The reader is closed; a new one rejoins the group and
				// resumes from the committed offsets.
				_ = r.Close()
				r = newReader(cfg, c.readerError)
			}
			if sleep(ctx, c.backoff(fetchFailures)) != nil {
				return nil
			}
			continue
		}
		if fetchFailures > 0 {
			_ = level.Info(cfg.Logger).Log("msg", "fetching again", "failedAttempts", fetchFailures)
			fetchFailures = 0
		}
		c.recovered("kafka")
		batch := []kafka.Message{m}
		if cfg.MaxBatch > 1 {
			batch = c.fill(ctx, r, batch)
		}
		if err := c.process(ctx, batch); err != nil {
			// Only ctx ending stops processing; nothing is committed for
			// this batch, the next owner handles it again.
			return nil
		}
		c.commit(ctx, r, batch)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// commit commits batch's offsets, retrying until the broker stored them or
// ctx ends. Nothing is skipped either way: a commit that never lands only
// means the next owner handles the batch again (handlers are idempotent),
// and commits are cumulative per partition.
func (c *consumer) commit(ctx context.Context, r *kafka.Reader, batch []kafka.Message) {
	for attempt := 1; ; attempt++ {
		// Commit even when ctx just ended: the work is done, and
		// committing spares the next owner a redelivery.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := r.CommitMessages(cctx, batch...)
		cancel()
		if err == nil {
			if attempt > 1 {
				_ = level.Info(c.cfg.Logger).Log("msg", "commit succeeded after retries", "attempts", attempt)
				c.recovered("commit")
			}
			return
		}
		c.failed("commit", attempt, err, "batch", len(batch), "partition", batch[0].Partition, "offset", batch[0].Offset)
		if ctx.Err() != nil || sleep(ctx, c.backoff(attempt)) != nil {
			_ = level.Warn(c.cfg.Logger).Log("msg", "stopping with an uncommitted batch; it will be redelivered", "batch", len(batch))
			return
		}
	}
}

// fill adds the messages that arrive within MaxWait, up to MaxBatch.
func (c *consumer) fill(ctx context.Context, r *kafka.Reader, batch []kafka.Message) []kafka.Message {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.MaxWait)
	defer cancel()
	for len(batch) < c.cfg.MaxBatch {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			// A timed-out fetch loses nothing: the message stays queued
			// in the reader for the next FetchMessage.
			return batch
		}
		batch = append(batch, m)
	}
	return batch
}

// process handles batch until it succeeded or its poison messages were
// dead-lettered. It returns an error only when ctx ended first.
func (c *consumer) process(ctx context.Context, batch []kafka.Message) error {
	err := c.attempt(ctx, batch)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// err is poison.
	if len(batch) > 1 {
		// Isolate the bad messages: each one is handled alone.
		for i := range batch {
			if err := c.process(ctx, batch[i:i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	return c.deadLetter(ctx, batch[0], err)
}

// attempt calls the handler until it succeeds, returns a poison error
// (returned, wrapped in *attemptsError) or ctx ends (ctx's error). Any other
// error is infrastructure: the same batch is retried after a jittered,
// growing backoff, for as long as it takes.
func (c *consumer) attempt(ctx context.Context, batch []kafka.Message) error {
	for attempt := 1; ; attempt++ {
		err := c.h(ctx, batch)
		if err == nil {
			if attempt > 1 {
				_ = level.Info(c.cfg.Logger).Log("msg", "handler succeeded after retries", "partition", batch[0].Partition,
					"offset", batch[0].Offset, "batch", len(batch), "attempts", attempt)
				c.recovered("handler")
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrPoison) {
			return &attemptsError{err: err, attempts: attempt}
		}
		c.failed("handler", attempt, err, "partition", batch[0].Partition, "offset", batch[0].Offset, "batch", len(batch))
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			return err
		}
	}
}

type attemptsError struct {
	err      error
	attempts int
}

func (e *attemptsError) Error() string { return e.err.Error() }
func (e *attemptsError) Unwrap() error { return e.err }

// deadLetter writes m with its coordinates and the error to the dead-letter
// topic, retrying until the write succeeds or ctx ends: a message is
// committed only once it is processed or dead-lettered.
func (c *consumer) deadLetter(ctx context.Context, m kafka.Message, cause error) error {
	attempts := 1
	var ae *attemptsError
	if errors.As(cause, &ae) {
		attempts = ae.attempts
		cause = ae.err
	}
	headers := make([]kafka.Header, 0, len(m.Headers)+6)
	headers = append(headers, m.Headers...)
	headers = append(headers,
		kafka.Header{Key: HeaderOriginalTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderOriginalPartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: HeaderOriginalOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		kafka.Header{Key: HeaderConsumerGroup, Value: []byte(c.cfg.GroupID)},
		kafka.Header{Key: HeaderError, Value: []byte(cause.Error())},
		kafka.Header{Key: HeaderAttempts, Value: []byte(strconv.Itoa(attempts))},
	)
	dl := kafka.Message{Key: m.Key, Value: m.Value, Headers: headers}
	for attempt := 1; ; attempt++ {
		err := c.cfg.DeadLetter.WriteMessages(ctx, dl)
		if err == nil {
			c.metrics.deadLetters.Inc()
			_ = level.Error(c.cfg.Logger).Log("msg", "poison message dead-lettered", "partition", m.Partition, "offset", m.Offset,
				"key", string(m.Key), "attempts", attempts, "err", cause)
			if attempt > 1 {
				c.recovered("deadletter")
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.failed("deadletter", attempt, err, "partition", m.Partition, "offset", m.Offset)
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			return err
		}
	}
}

// backoff is the wait before retry number attempt (1 = the first retry):
// Backoff doubled per attempt, capped at MaxBackoff, jittered by +-50% so
// that consumers failing together do not retry together.
func (c *consumer) backoff(attempt int) time.Duration {
	d := c.cfg.Backoff
	for i := 1; i < attempt && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.MaxBackoff)
	return d/2 + rand.N(d+1) // [d/2, 3d/2]
}

// failed records a failure of stage and logs it: at warn on the first
// attempt and every LogEvery-th, at debug in between.
func (c *consumer) failed(stage string, attempt int, err error, kv ...any) {
	c.metrics.up.Set(0)
	c.metrics.errors.WithLabelValues(stage).Inc()
	lvl := level.Debug
	if attempt == 1 || attempt%c.cfg.LogEvery == 0 {
		lvl = level.Warn
	}
	msg := "retrying after an infrastructure failure"
	if stage == "fetch" || stage == "commit" {
		msg = "kafka unreachable, retrying"
	}
	_ = lvl(c.cfg.Logger).Log(append([]any{"msg", msg, "stage", stage, "attempt", attempt, "err", err}, kv...)...)
}

// recovered marks the consumer up after a success.
func (c *consumer) recovered(string) {
	c.mu.Lock()
	c.readerErrs = 0
	c.mu.Unlock()
	c.metrics.up.Set(1)
}

// readerError is the reader's own error log (a group join, a fetch or a
// commit failing inside kafka-go, which retries them).
func (c *consumer) readerError(detail string) {
	c.mu.Lock()
	c.readerErrs++
	n := c.readerErrs
	c.lastReaderErr = time.Now()
	c.mu.Unlock()
	c.metrics.up.Set(0)
	c.metrics.errors.WithLabelValues("reader").Inc()
	lvl := level.Debug
	if n == 1 || n%c.cfg.LogEvery == 0 {
		lvl = level.Warn
	}
	_ = lvl(c.cfg.Logger).Log("msg", "kafka reader", "attempt", n, "detail", detail)
}

// readerQuietSince reports whether the reader reported no error for d.
func (c *consumer) readerQuietSince(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Since(c.lastReaderErr) >= d
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// consumerMetrics are a consumer group's health, labelled by group:
//
//   - beehive_consumer_up: 1 while the consumer works, 0 from a failure
//     (Kafka unreachable, a handler's dependency away, a dead-letter write
//     failing) until the next success; an idle consumer returns to 1 once
//     the Kafka reader has reported no error for a while.
//   - beehive_consumer_errors_total{stage}: failures by stage: fetch,
//     commit, reader (kafka-go's own retries), handler (infrastructure
//     errors of the handler), deadletter.
//   - beehive_consumer_dead_letters_total: poison records dead-lettered.
type consumerMetrics struct {
	up          prometheus.Gauge
	errors      *prometheus.CounterVec
	deadLetters prometheus.Counter
}

var (
	upVec = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "beehive", Subsystem: "consumer", Name: "up",
		Help: "1 while the consumer group's loop works, 0 while it retries a failure (Kafka or a handler's dependency away).",
	}, []string{"group"})
	errorsVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "beehive", Subsystem: "consumer", Name: "errors_total",
		Help: "Failures the consumer retried, by stage (fetch, commit, reader, handler, deadletter).",
	}, []string{"group", "stage"})
	deadLettersVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "beehive", Subsystem: "consumer", Name: "dead_letters_total",
		Help: "Poison records sent to the dead-letter topic.",
	}, []string{"group"})
)

func newConsumerMetrics(reg prometheus.Registerer, group string) *consumerMetrics {
	up, errs, dl := upVec, errorsVec, deadLettersVec
	if reg != nil {
		up = register(reg, up)
		errs = register(reg, errs)
		dl = register(reg, dl)
	}
	return &consumerMetrics{
		up:          up.WithLabelValues(group),
		errors:      errs.MustCurryWith(prometheus.Labels{"group": group}),
		deadLetters: dl.WithLabelValues(group),
	}
}

// register registers c in reg, or returns the collector of the same name
// already there (several consumers of one process share the vectors).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

package kafkax

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/segmentio/kafka-go"
)

// ErrPoison marks a message that can never be processed (it does not
// decode, its schema version is unknown): a handler error wrapping it sends
// the message to the dead-letter topic at once instead of retrying.
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

// Handler processes one message. Returning nil commits it; an error retries
// it (or dead-letters it at once if it wraps ErrPoison).
type Handler func(ctx context.Context, m kafka.Message) error

// BatchHandler processes consecutive fetched messages at once (they may
// span partitions, each partition's messages in offset order). A failing
// batch is retried whole; after the retries, or at once when the error
// wraps ErrPoison, its messages are retried one at a time so only the bad
// ones reach the dead-letter topic.
type BatchHandler func(ctx context.Context, ms []kafka.Message) error

// ConsumerConfig configures RunConsumer and RunBatchConsumer.
type ConsumerConfig struct {
	Brokers []string
	GroupID string
	Topic   string
	// MaxAttempts is how many times a failing message is handled before
	// it is dead-lettered (default 5).
	MaxAttempts int
	// Backoff is the delay before the first retry; it doubles up to
	// MaxBackoff (defaults 100 ms and 10 s).
	Backoff    time.Duration
	MaxBackoff time.Duration
	// DeadLetter writes to TopicDeadLetter (required: without it a bad
	// message could only be dropped or block its partition).
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
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
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

func newReader(cfg ConsumerConfig) *kafka.Reader {
	hb := cfg.SessionTimeout / 5
	if hb < 100*time.Millisecond {
		hb = 100 * time.Millisecond
	}
	errLog := log.With(cfg.Logger, "component", "kafka-reader")
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
			_ = level.Warn(errLog).Log("msg", "kafka reader", "detail", fmt.Sprintf(format, args...))
		}),
	})
}

// RunConsumer consumes cfg.Topic in consumer group cfg.GroupID until ctx is
// done, handing each message to h in partition order and committing its
// offset only after h succeeded or the message was dead-lettered. It
// returns nil when ctx ends and an error only when the group cannot run.
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

type consumer struct {
	cfg ConsumerConfig
	h   BatchHandler
}

func run(ctx context.Context, cfg ConsumerConfig, maxBatch int, h BatchHandler) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	if maxBatch > 0 {
		cfg.MaxBatch = maxBatch
	}
	r := newReader(cfg)
	defer func() { _ = r.Close() }()
	c := &consumer{cfg: cfg, h: h}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("kafkax: consume %s as %s: %w", cfg.Topic, cfg.GroupID, err)
		}
		batch := []kafka.Message{m}
		if cfg.MaxBatch > 1 {
			batch = c.fill(ctx, r, batch)
		}
		if err := c.process(ctx, batch); err != nil {
			// Only ctx ending stops processing; nothing is committed for
			// this batch, the next owner handles it again.
			return nil
		}
		// Commit even when ctx just ended: the work is done, and
		// committing spares the next owner a redelivery.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err = r.CommitMessages(cctx, batch...)
		cancel()
		if err != nil {
			// After a rebalance the commit of the old generation is
			// refused; the new owner redelivers from the last commit.
			_ = level.Warn(cfg.Logger).Log("msg", "commit failed, messages may be redelivered", "err", err)
		}
		if ctx.Err() != nil {
			return nil
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

// process handles batch until it succeeded or its failing messages were
// dead-lettered. It returns an error only when ctx ended first.
func (c *consumer) process(ctx context.Context, batch []kafka.Message) error {
	err := c.attempt(ctx, batch)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(batch) > 1 {
		// Isolate the bad messages: each one gets its own retries.
		for i := range batch {
			if err := c.process(ctx, batch[i:i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	return c.deadLetter(ctx, batch[0], err)
}

// attempt calls the handler up to MaxAttempts times with backoff. It stops
// early on a poison error or when ctx ends, returning the last error.
func (c *consumer) attempt(ctx context.Context, batch []kafka.Message) error {
	delay := c.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := c.h(ctx, batch)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrPoison) || attempt >= c.cfg.MaxAttempts {
			return &attemptsError{err: err, attempts: attempt}
		}
		first := batch[0]
		_ = level.Warn(c.cfg.Logger).Log("msg", "handler failed, retrying", "partition", first.Partition, "offset", first.Offset,
			"batch", len(batch), "attempt", attempt, "retryIn", delay, "err", err)
		if err := sleep(ctx, delay); err != nil {
			return err
		}
		delay *= 2
		if delay > c.cfg.MaxBackoff {
			delay = c.cfg.MaxBackoff
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
	delay := c.cfg.Backoff
	for {
		err := c.cfg.DeadLetter.WriteMessages(ctx, dl)
		if err == nil {
			_ = level.Error(c.cfg.Logger).Log("msg", "message dead-lettered", "partition", m.Partition, "offset", m.Offset,
				"key", string(m.Key), "attempts", attempts, "poison", errors.Is(cause, ErrPoison), "err", cause)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = level.Error(c.cfg.Logger).Log("msg", "dead-letter write failed, retrying", "partition", m.Partition, "offset", m.Offset, "err", err)
		if err := sleep(ctx, delay); err != nil {
			return err
		}
		delay *= 2
		if delay > c.cfg.MaxBackoff {
			delay = c.cfg.MaxBackoff
		}
	}
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

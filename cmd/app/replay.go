package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-kit/log"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/config"
	"github.com/beehive-im/beehive/shared/kafkax"
)

// Replay re-consumes beehive.messages from a time (RFC 3339) or an offset
// (applied to every partition) up to the end as it is now, and with toStore
// writes every event into the history store (Cassandra when distributed,
// the data dir's store otherwise) through the persistence writer. Writes are idempotent (keyed by conversation and seq), so replay
// can run any number of times, also beside the running persist consumer.
func Replay(ctx context.Context, cfg config.Config, logger log.Logger, from string, toStore bool, out io.Writer) error {
	if from == "" {
		return fmt.Errorf("replay needs --from <RFC 3339 time | offset>")
	}
	var (
		startTime   time.Time
		startOffset int64 = -1
	)
	if t, err := time.Parse(time.RFC3339, from); err == nil {
		startTime = t
	} else if n, err := strconv.ParseInt(from, 10, 64); err == nil && n >= 0 {
		startOffset = n
	} else {
		return fmt.Errorf("--from %q is neither an RFC 3339 time nor an offset", from)
	}

	// The same backends the services of this mode use: the data dir's
	// broker log and store in embedded mode, the query service's store
	// otherwise.
	be := newBackends(cfg.Mode, storeName(cfg.Mode, "query"), cfg, logger)
	defer be.close()
	brokers, err := be.kafka(ctx)
	if err != nil {
		return err
	}
	var persister *query.Persister
	if toStore {
		store, err := be.queryStore()
		if err != nil {
			return err
		}
		persister = query.NewPersister(store, logger)
	}

	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return fmt.Errorf("kafka %s: %w", brokers[0], err)
	}
	parts, err := conn.ReadPartitions(kafkax.TopicMessages)
	_ = conn.Close()
	if err != nil {
		return fmt.Errorf("read partitions of %s: %w", kafkax.TopicMessages, err)
	}
	var total, applied int
	for _, p := range parts {
		n, a, err := replayPartition(ctx, brokers, p.ID, startTime, startOffset, persister)
		total += n
		applied += a
		if err != nil {
			return fmt.Errorf("partition %d: %w", p.ID, err)
		}
	}
	printf(out, "replayed %d records of %s from %d partitions; %d written to the store\n", total, kafkax.TopicMessages, len(parts), applied)
	return nil
}

func replayPartition(ctx context.Context, brokers []string, partition int, startTime time.Time, startOffset int64, p *query.Persister) (int, int, error) {
	leader, err := kafka.DialLeader(ctx, "tcp", brokers[0], kafkax.TopicMessages, partition)
	if err != nil {
		return 0, 0, err
	}
	first, last, err := leader.ReadOffsets()
	start := first
	switch {
	case err != nil:
	case !startTime.IsZero():
		start, err = leader.ReadOffset(startTime)
	case startOffset > first:
		start = startOffset
	}
	_ = leader.Close()
	if err != nil {
		return 0, 0, err
	}
	if start < 0 || start >= last {
		return 0, 0, nil // nothing at or after the start in this partition
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: kafkax.TopicMessages, Partition: partition, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return 0, 0, err
	}
	var n, applied int
	batch := make([]kafka.Message, 0, 500)
	flush := func() error {
		if p == nil || len(batch) == 0 {
			batch = batch[:0]
			return nil
		}
		err := p.Handle(ctx, batch)
		if err != nil && !errors.Is(err, kafkax.ErrPoison) {
			return err
		}
		applied += len(batch)
		batch = batch[:0]
		return nil
	}
	for {
		if r.Offset() >= last {
			break
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := r.ReadMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return n, applied, ctx.Err()
			}
			break // nothing more within the timeout: the partition's end
		}
		n++
		// What message.DecodeRecord refuses was dead-lettered by persist
		// and is neither replayed nor counted as written.
		if _, err := message.DecodeRecord(m.Key, m.Value); err == nil {
			batch = append(batch, m)
		}
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return n, applied, err
			}
		}
		if m.Offset+1 >= last {
			break
		}
	}
	return n, applied, flush()
}

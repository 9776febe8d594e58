package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/kafkax"
)

// PersistGroup is the consumer group of the persistence writer.
const PersistGroup = "persist"

// Persister is the persistence writer: it turns batches of
// beehive.messages records into one idempotent store Batch.
type Persister struct {
	store  Store
	logger log.Logger
}

// NewPersister returns a writer into store.
func NewPersister(store Store, logger log.Logger) *Persister {
	if logger == nil {
		logger = log.NewNopLogger()
	}
	return &Persister{store: store, logger: logger}
}

// Run consumes beehive.messages as group "persist" until ctx ends. cfg
// carries brokers, retries, dead letters and batching; its GroupID and
// Topic are set here. Offsets are committed by the consumer only after
// Handle returned nil, i.e. after the write.
func (p *Persister) Run(ctx context.Context, cfg kafkax.ConsumerConfig) error {
	cfg = persistDefaults(cfg)
	cfg.GroupID = PersistGroup
	cfg.Topic = kafkax.TopicMessages
	if cfg.Logger == nil {
		cfg.Logger = p.logger
	}
	return kafkax.RunBatchConsumer(ctx, cfg, p.Handle)
}

// Handle writes a batch. Records message.DecodeRecord accepts are written
// first, so that when it refuses some (the error then wraps
// kafkax.ErrPoison and the consumer dead-letters them; the push consumer
// skips the same records) nothing good in the batch is lost whatever the
// consumer does with the batch: re-applying it is harmless.
func (p *Persister) Handle(ctx context.Context, ms []kafka.Message) error {
	evs := make([]message.Event, 0, len(ms))
	var poison []error
	for _, m := range ms {
		ev, err := message.DecodeRecord(m.Key, m.Value)
		if err != nil {
			_ = level.Warn(p.logger).Log("msg", "refused record on beehive.messages", "partition", m.Partition, "offset", m.Offset, "err", err)
			poison = append(poison, fmt.Errorf("partition %d offset %d: %w", m.Partition, m.Offset, err))
			continue
		}
		evs = append(evs, ev)
	}
	if err := p.store.Apply(ctx, BatchOf(evs)); err != nil {
		err = fmt.Errorf("persist: write %d events: %w", len(evs), err)
		if !errs.IsInfrastructure(err) && !errs.HasCode(err, errs.Canceled) {
			// The store refused what the batch holds: the consumer
			// writes the records one by one and dead-letters the refused.
			return kafkax.Poison(err)
		}
		// The store is away: the consumer retries the batch, holding
		// its position, until it answers.
		return err
	}
	if len(poison) > 0 {
		// Each error wraps kafkax.ErrPoison: the consumer dead-letters.
		return errors.Join(poison...)
	}
	return nil
}

// BatchOf maps checked events to store writes: the entry itself, the
// recall mark, the conversation rows (both users of a 1:1, the shared state
// of a group) and read seqs (the reader's, and the sender's at its own
// entry, since sending implies having read).
func BatchOf(evs []message.Event) Batch {
	var b Batch
	entry := func(conv string, m message.Message) {
		b.Messages = append(b.Messages, m)
		kind, x, y, _ := ids.ParseConversation(conv)
		if kind == "p" {
			b.Conversations = append(b.Conversations,
				ConversationUpdate{UserID: x, ConversationID: conv, PeerID: y, LastMessage: m},
				ConversationUpdate{UserID: y, ConversationID: conv, PeerID: x, LastMessage: m})
		} else {
			b.Groups = append(b.Groups, GroupUpdate{ConversationID: conv, LastMessage: m})
		}
		b.ReadSeqs = append(b.ReadSeqs, ReadMark{UserID: m.SenderID, ConversationID: conv, Seq: m.Seq})
	}
	for _, ev := range evs {
		switch ev.Kind {
		case message.EventMessage:
			entry(ev.ConversationID, *ev.Message)
		case message.EventRecall:
			entry(ev.ConversationID, *ev.Message)
			b.Recalls = append(b.Recalls, RecallMark{ConversationID: ev.ConversationID, Seq: ev.RecalledSeq, MessageID: ev.RecalledID})
		case message.EventRead:
			b.ReadSeqs = append(b.ReadSeqs, ReadMark{UserID: ev.UserID, ConversationID: ev.ConversationID, Seq: ev.ReadSeq})
		}
	}
	return b
}

// persistDefaults are the consumer settings the writer wants unless the
// caller chose: large batches (one synced store write each) and a short
// wait, so a quiet conversation is persisted promptly.
func persistDefaults(cfg kafkax.ConsumerConfig) kafkax.ConsumerConfig {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 20 * time.Millisecond
	}
	return cfg
}

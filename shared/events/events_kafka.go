package events

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/kafkax"
)

// KafkaPublisher publishes events to beehive.events keyed by user id (the
// distributed mode's bus).
type KafkaPublisher struct {
	w *kafka.Writer
}

var _ Publisher = (*KafkaPublisher)(nil)

// NewKafkaPublisher writes with w (a kafkax.NewWriter on TopicEvents).
func NewKafkaPublisher(w *kafka.Writer) *KafkaPublisher { return &KafkaPublisher{w: w} }

// Publish writes e; the key keeps one user's events in order.
func (p *KafkaPublisher) Publish(ctx context.Context, e Event) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "encode event")
	}
	key := e.UserID
	if key == "" {
		key = e.GroupID
	}
	if err := p.w.WriteMessages(ctx, kafka.Message{Key: []byte(key), Value: raw}); err != nil {
		return errs.Wrap(errs.Unavailable, err, "publish event")
	}
	return nil
}

// ConsumeKafka feeds bus from beehive.events until ctx ends. In the
// distributed mode a process publishes only to Kafka and hears its own
// events back through here, so each subscriber sees each event once. Every process
// that must hear every event (gateways closing revoked sessions, pushers
// invalidating caches) uses its own consumer group, starting at the end of
// the topic: past events are of no use to a process that just started.
// Like every kafkax consumer it keeps running while Kafka is away and
// returns nil when ctx ends.
func ConsumeKafka(ctx context.Context, cfg kafkax.ConsumerConfig, instanceID string, bus *Bus) error {
	cfg.Topic = kafkax.TopicEvents
	cfg.GroupID = "events-" + instanceID
	cfg.StartOffset = kafka.LastOffset
	return kafkax.RunConsumer(ctx, cfg, func(ctx context.Context, m kafka.Message) error {
		var e Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			return kafkax.Poison(fmt.Errorf("decode event: %w", err))
		}
		return bus.Publish(ctx, e)
	})
}

package message

import (
	"context"

	"github.com/segmentio/kafka-go"
)

// Producer writes one record to beehive.messages and returns once the
// broker acknowledged it (acks from all in-sync replicas).
type Producer interface {
	Produce(ctx context.Context, key string, value []byte) error
}

// KafkaProducer is Producer over a kafka-go writer made by
// kafkax.NewWriter(brokers, kafkax.TopicMessages, ...).
type KafkaProducer struct{ w *kafka.Writer }

var _ Producer = (*KafkaProducer)(nil)

// NewKafkaProducer wraps w (the caller keeps closing it).
func NewKafkaProducer(w *kafka.Writer) *KafkaProducer { return &KafkaProducer{w: w} }

// Produce implements Producer.
func (p *KafkaProducer) Produce(ctx context.Context, key string, value []byte) error {
	return p.w.WriteMessages(ctx, kafka.Message{Key: []byte(key), Value: value})
}

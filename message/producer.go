package message

import (
	"context"
	"errors"

	"github.com/segmentio/kafka-go"
)

// Record is one record of beehive.messages: the conversation id as key.
type Record struct {
	Key   string
	Value []byte
}

// Producer writes records to beehive.messages, in order, and returns once
// the broker acknowledged them (acks from all in-sync replicas). When only
// some were written it returns a RecordErrors.
type Producer interface {
	Produce(ctx context.Context, records ...Record) error
}

// RecordErrors has one entry per record of a Produce: nil for the records
// written.
type RecordErrors []error

func (e RecordErrors) Error() string {
	for _, err := range e {
		if err != nil {
			return "some records were not written: " + err.Error()
		}
	}
	return "no record failed"
}

// recordErrors spreads the error of a Produce of n records over them.
func recordErrors(err error, n int) []error {
	out := make([]error, n)
	var re RecordErrors
	switch {
	case err == nil:
	case errors.As(err, &re) && len(re) == n:
		copy(out, re)
	default:
		for i := range out {
			out[i] = err
		}
	}
	return out
}

// KafkaProducer is Producer over a kafka-go writer made by
// kafkax.NewWriter(brokers, kafkax.TopicMessages, ...).
type KafkaProducer struct{ w *kafka.Writer }

var _ Producer = (*KafkaProducer)(nil)

// NewKafkaProducer wraps w (the caller keeps closing it).
func NewKafkaProducer(w *kafka.Writer) *KafkaProducer { return &KafkaProducer{w: w} }

// Produce implements Producer.
func (p *KafkaProducer) Produce(ctx context.Context, records ...Record) error {
	msgs := make([]kafka.Message, len(records))
	for i, r := range records {
		msgs[i] = kafka.Message{Key: []byte(r.Key), Value: r.Value}
	}
	err := p.w.WriteMessages(ctx, msgs...)
	var we kafka.WriteErrors
	if errors.As(err, &we) && len(we) == len(records) {
		return RecordErrors(we)
	}
	return err
}

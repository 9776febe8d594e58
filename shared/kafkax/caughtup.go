package kafkax

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// CaughtUp waits until consumer group `group` has committed, on every
// partition of topic, at least the log end offset as it is when CaughtUp is
// called: everything acknowledged to producers before the call has been
// processed by the group. The read side uses it so a `sync` right after
// sends cannot miss messages the persist consumer has not written yet (the
// push consumer may have found the device offline, so sync is its only way).
type CaughtUp struct {
	client *kafka.Client
	group  string
	topic  string
	every  time.Duration
}

// NewCaughtUp returns a waiter for group on topic.
func NewCaughtUp(brokers []string, group, topic string) *CaughtUp {
	return &CaughtUp{
		client: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second},
		group:  group, topic: topic, every: 2 * time.Millisecond,
	}
}

// Wait blocks until the group caught up with the end offsets seen at the
// call, or ctx ends (then it returns ctx's error).
func (c *CaughtUp) Wait(ctx context.Context) error {
	meta, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{c.topic}})
	if err != nil {
		return fmt.Errorf("metadata %s: %w", c.topic, err)
	}
	var parts []int
	for _, t := range meta.Topics {
		if t.Name == c.topic {
			for _, p := range t.Partitions {
				parts = append(parts, p.ID)
			}
		}
	}
	reqs := make([]kafka.OffsetRequest, 0, len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	ends, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{c.topic: reqs}})
	if err != nil {
		return fmt.Errorf("list offsets %s: %w", c.topic, err)
	}
	target := map[int]int64{}
	for _, po := range ends.Topics[c.topic] {
		if po.LastOffset > 0 {
			target[po.Partition] = po.LastOffset
		}
	}
	for {
		if len(target) == 0 {
			return nil
		}
		committed, err := c.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: c.group, Topics: map[string][]int{c.topic: parts}})
		if err == nil {
			for _, p := range committed.Topics[c.topic] {
				if end, ok := target[p.Partition]; ok && p.CommittedOffset >= end {
					delete(target, p.Partition)
				}
			}
			if len(target) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.every):
		}
	}
}

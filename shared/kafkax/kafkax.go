package kafkax

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// TopicSpec describes a topic EnsureTopics creates when it is missing.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int
	// RetentionMs is the topic's retention.ms; -1 keeps records forever
	// (beehive.messages, so history can be replayed); 0 leaves the
	// broker's default.
	RetentionMs int64
}

// DefaultTopics are Beehive's topics with the given partition count and
// replication factor: messages kept forever, typing notices an hour, the
// others for a week.
func DefaultTopics(partitions, replicationFactor int) []TopicSpec {
	week := int64(7 * 24 * time.Hour / time.Millisecond)
	return []TopicSpec{
		{Name: TopicMessages, Partitions: partitions, ReplicationFactor: replicationFactor, RetentionMs: -1},
		{Name: TopicPushOffline, Partitions: partitions, ReplicationFactor: replicationFactor, RetentionMs: week},
		{Name: TopicEvents, Partitions: partitions, ReplicationFactor: replicationFactor, RetentionMs: week},
		{Name: TopicDeadLetter, Partitions: 1, ReplicationFactor: replicationFactor, RetentionMs: -1},
		// A typing notice is worth seconds; an hour covers a consumer
		// that was away.
		{Name: TopicTyping, Partitions: partitions, ReplicationFactor: replicationFactor, RetentionMs: int64(time.Hour / time.Millisecond)},
	}
}

// EnsureTopics creates the topics that do not exist yet through the
// cluster's controller (existing ones are left as they are) and waits until
// every topic's partitions appear in the metadata, so a writer started
// afterwards does not race the creation.
func EnsureTopics(ctx context.Context, brokers []string, specs []TopicSpec) error {
	if len(brokers) == 0 {
		return errors.New("kafkax: no brokers")
	}
	if len(specs) == 0 {
		return nil
	}
	configs := make([]kafka.TopicConfig, 0, len(specs))
	for _, s := range specs {
		if s.Name == "" {
			return errors.New("kafkax: topic spec without a name")
		}
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: s.ReplicationFactor}
		if tc.NumPartitions <= 0 {
			tc.NumPartitions = 1
		}
		if tc.ReplicationFactor <= 0 {
			tc.ReplicationFactor = 1
		}
		if s.RetentionMs != 0 {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(s.RetentionMs, 10)})
		}
		configs = append(configs, tc)
	}

	dialer := &kafka.Dialer{Timeout: 10 * time.Second}
	var conn *kafka.Conn
	var err error
	for _, b := range brokers {
		if conn, err = dialer.DialContext(ctx, "tcp", b); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("kafkax: dial brokers %v: %w", brokers, err)
	}
	defer func() { _ = conn.Close() }()
	controller, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("kafkax: find controller: %w", err)
	}
	cconn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port)))
	if err != nil {
		return fmt.Errorf("kafkax: dial controller: %w", err)
	}
	defer func() { _ = cconn.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		_ = cconn.SetDeadline(dl)
	}
	if err := cconn.CreateTopics(configs...); err != nil {
		return fmt.Errorf("kafkax: create topics: %w", err)
	}

	// Wait for the metadata to show the topics.
	backoff := 20 * time.Millisecond
	for {
		missing, err := missingTopics(conn, specs)
		if err == nil && len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("topics %v not in metadata", missing)
			}
			return fmt.Errorf("kafkax: wait for topics: %w (%v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		if backoff < time.Second {
			backoff *= 2
		}
	}
}

func missingTopics(conn *kafka.Conn, specs []TopicSpec) ([]string, error) {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	parts, err := conn.ReadPartitions(names...)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(parts))
	for _, p := range parts {
		seen[p.Topic] = true
	}
	var missing []string
	for _, n := range names {
		if !seen[n] {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

// NewWriter returns the producer every service uses: acknowledged by all
// in-sync replicas, partitioned by a Murmur2 hash of the key (as Java
// clients do, so every client puts a conversation on the same partition),
// batches flushed after batchTimeout (a few milliseconds; kafka-go's default
// of one second would add a second to every synchronous send). The topic
// must exist (see EnsureTopics). Concurrent synchronous WriteMessages calls
// are batched together.
func NewWriter(brokers []string, topic string, batchTimeout time.Duration) *kafka.Writer {
	if batchTimeout <= 0 {
		batchTimeout = 2 * time.Millisecond
	}
	return &kafka.Writer{
		Addr:                   kafka.TCP(brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Murmur2Balancer{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           batchTimeout,
		AllowAutoTopicCreation: false,
		WriteBackoffMin:        10 * time.Millisecond,
		WriteBackoffMax:        500 * time.Millisecond,
	}
}

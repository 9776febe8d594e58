package kafkax_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/shared/kafkax"
)

// wait bounds every wait for asynchronous work; it is a failure deadline,
// not a timing assertion.
const wait = 30 * time.Second

func testLogger(t *testing.T) log.Logger {
	if os.Getenv("KAFKAX_TEST_LOG") != "" {
		return log.NewLogfmtLogger(log.NewSyncWriter(os.Stderr))
	}
	return log.NewNopLogger()
}

func startBroker(t *testing.T, dir string) *kafkax.Embedded {
	t.Helper()
	e, err := kafkax.StartEmbedded(dir, "127.0.0.1:0", testLogger(t))
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	return e
}

func ensure(t *testing.T, brokers []string, specs ...kafkax.TopicSpec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, brokers, specs); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
}

func produce(t *testing.T, w *kafka.Writer, msgs ...kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
}

// readAll reads every record of topic partition 0..n-1 without a group.
func readAll(t *testing.T, brokers []string, topic string, partitions int) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for p := 0; p < partitions; p++ {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p)
		cancel()
		if err != nil {
			t.Fatalf("DialLeader: %v", err)
		}
		last, err := conn.ReadLastOffset()
		_ = conn.Close()
		if err != nil {
			t.Fatalf("ReadLastOffset: %v", err)
		}
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		ctx, cancel = context.WithTimeout(context.Background(), wait)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				cancel()
				_ = r.Close()
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			out = append(out, m)
			if m.Offset == last-1 {
				break
			}
		}
		cancel()
		_ = r.Close()
	}
	return out
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

type setup struct {
	broker  *kafkax.Embedded
	brokers []string
	topic   string
	w       *kafka.Writer
	dlq     *kafka.Writer
}

func newSetup(t *testing.T, partitions int) *setup {
	t.Helper()
	e := startBroker(t, t.TempDir())
	t.Cleanup(func() { _ = e.Close() })
	s := &setup{broker: e, brokers: e.Brokers(), topic: "test.topic"}
	ensure(t, s.brokers,
		kafkax.TopicSpec{Name: s.topic, Partitions: partitions, ReplicationFactor: 1, RetentionMs: -1},
		kafkax.TopicSpec{Name: kafkax.TopicDeadLetter, Partitions: 1, ReplicationFactor: 1, RetentionMs: -1})
	s.w = kafkax.NewWriter(s.brokers, s.topic, 2*time.Millisecond)
	s.dlq = kafkax.NewWriter(s.brokers, kafkax.TopicDeadLetter, 2*time.Millisecond)
	t.Cleanup(func() { _ = s.w.Close(); _ = s.dlq.Close() })
	return s
}

func (s *setup) config(t *testing.T, group string) kafkax.ConsumerConfig {
	return kafkax.ConsumerConfig{
		Brokers:        s.brokers,
		GroupID:        group,
		Topic:          s.topic,
		MaxAttempts:    3,
		Backoff:        time.Millisecond,
		DeadLetter:     s.dlq,
		SessionTimeout: 2 * time.Second,
		Logger:         testLogger(t),
	}
}

// consumeUntil runs RunConsumer until stop reports true for a handled
// message, and returns what the handler saw.
func runConsumer(t *testing.T, cfg kafkax.ConsumerConfig, h kafkax.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kafkax.RunConsumer(ctx, cfg, h) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunConsumer: %v", err)
			}
		case <-time.After(wait):
			t.Errorf("RunConsumer did not return after cancel")
		}
	}
}

func TestEnsureTopicsCreatesMissingAndKeepsExisting(t *testing.T) {
	e := startBroker(t, t.TempDir())
	defer e.Close()
	specs := kafkax.DefaultTopics(3, 1)
	ensure(t, e.Brokers(), specs...)
	// Idempotent: a second call with more partitions changes nothing.
	ensure(t, e.Brokers(), kafkax.TopicSpec{Name: kafkax.TopicMessages, Partitions: 8, ReplicationFactor: 1})

	conn, err := kafka.Dial("tcp", e.Brokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(kafkax.TopicMessages, kafkax.TopicPushOffline, kafkax.TopicEvents, kafkax.TopicDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, p := range parts {
		count[p.Topic]++
	}
	want := map[string]int{kafkax.TopicMessages: 3, kafkax.TopicPushOffline: 3, kafkax.TopicEvents: 3, kafkax.TopicDeadLetter: 1}
	for topic, n := range want {
		if count[topic] != n {
			t.Errorf("topic %s has %d partitions, want %d", topic, count[topic], n)
		}
	}
}

func TestWriterPutsOneKeyOnOnePartitionInOrder(t *testing.T) {
	s := newSetup(t, 4)
	var msgs []kafka.Message
	for i := 0; i < 20; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte("p:a:b"), Value: []byte(strconv.Itoa(i))})
	}
	produce(t, s.w, msgs...)
	got := readAll(t, s.brokers, s.topic, 4)
	if len(got) != 20 {
		t.Fatalf("read %d records, want 20", len(got))
	}
	for i, m := range got {
		if m.Partition != got[0].Partition {
			t.Fatalf("record %d on partition %d, first on %d", i, m.Partition, got[0].Partition)
		}
		if string(m.Value) != strconv.Itoa(i) {
			t.Fatalf("record %d is %q", i, m.Value)
		}
	}
	// Murmur2 as the Java client computes it: the partition is a function
	// of the key alone.
	want := (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte("p:a:b")}, 0, 1, 2, 3)
	if got[0].Partition != want {
		t.Errorf("key on partition %d, murmur2 says %d", got[0].Partition, want)
	}
}

func TestConsumerHandlesInOrderAndCommits(t *testing.T) {
	s := newSetup(t, 1)
	for i := 0; i < 5; i++ {
		produce(t, s.w, kafka.Message{Key: []byte("k"), Value: []byte(strconv.Itoa(i))})
	}
	got := make(chan string, 10)
	stop := runConsumer(t, s.config(t, "g1"), func(ctx context.Context, m kafka.Message) error {
		got <- string(m.Value)
		return nil
	})
	for i := 0; i < 5; i++ {
		select {
		case v := <-got:
			if v != strconv.Itoa(i) {
				t.Fatalf("message %d is %q", i, v)
			}
		case <-time.After(wait):
			t.Fatalf("message %d not consumed", i)
		}
	}
	stop()
	offs := committed(t, s.brokers, "g1", s.topic, 1)
	if offs[0] != 5 {
		t.Errorf("committed offset %d, want 5", offs[0])
	}
}

func committed(t *testing.T, brokers []string, group, topic string, partitions int) map[int]int64 {
	t.Helper()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: wait}
	var ps []int
	for p := 0; p < partitions; p++ {
		ps = append(ps, p)
	}
	res, err := cl.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("OffsetFetch: %v", res.Error)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("OffsetFetch partition %d: %v", p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

func TestPoisonMessageGoesToDeadLetterAtOnceAndPartitionMovesOn(t *testing.T) {
	s := newSetup(t, 1)
	produce(t, s.w,
		kafka.Message{Key: []byte("k"), Value: []byte("ok-1")},
		kafka.Message{Key: []byte("k"), Value: []byte("poison"), Headers: []kafka.Header{{Key: "trace", Value: []byte("t1")}}},
		kafka.Message{Key: []byte("k"), Value: []byte("ok-2")},
	)
	var mu sync.Mutex
	calls := map[string]int{}
	handled := make(chan string, 10)
	stop := runConsumer(t, s.config(t, "g-poison"), func(ctx context.Context, m kafka.Message) error {
		mu.Lock()
		calls[string(m.Value)]++
		mu.Unlock()
		if string(m.Value) == "poison" {
			return kafkax.Poison(errors.New("cannot decode"))
		}
		handled <- string(m.Value)
		return nil
	})
	for _, want := range []string{"ok-1", "ok-2"} {
		select {
		case v := <-handled:
			if v != want {
				t.Fatalf("handled %q, want %q", v, want)
			}
		case <-time.After(wait):
			t.Fatalf("%s not handled: the partition is stuck", want)
		}
	}
	stop()
	mu.Lock()
	if calls["poison"] != 1 {
		t.Errorf("poison handled %d times, want 1 (no retries)", calls["poison"])
	}
	mu.Unlock()
	dl := readAll(t, s.brokers, kafkax.TopicDeadLetter, 1)
	if len(dl) != 1 {
		t.Fatalf("dead-letter topic has %d records, want 1", len(dl))
	}
	m := dl[0]
	checks := map[string]string{
		kafkax.HeaderOriginalTopic:     s.topic,
		kafkax.HeaderOriginalPartition: "0",
		kafkax.HeaderOriginalOffset:    "1",
		kafkax.HeaderConsumerGroup:     "g-poison",
		kafkax.HeaderAttempts:          "1",
		"trace":                        "t1",
	}
	for k, v := range checks {
		if got := header(m, k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if string(m.Value) != "poison" || string(m.Key) != "k" {
		t.Errorf("dead letter %q/%q, want the original key and value", m.Key, m.Value)
	}
	if e := header(m, kafkax.HeaderError); e == "" {
		t.Error("dead letter does not name the error")
	}
	if offs := committed(t, s.brokers, "g-poison", s.topic, 1); offs[0] != 3 {
		t.Errorf("committed offset %d, want 3 (past the poison message)", offs[0])
	}
}

func TestFailingMessageIsRetriedMaxAttemptsThenDeadLettered(t *testing.T) {
	s := newSetup(t, 1)
	produce(t, s.w,
		kafka.Message{Key: []byte("k"), Value: []byte("flaky")},
		kafka.Message{Key: []byte("k"), Value: []byte("bad")},
		kafka.Message{Key: []byte("k"), Value: []byte("ok")},
	)
	var mu sync.Mutex
	calls := map[string]int{}
	handled := make(chan string, 10)
	stop := runConsumer(t, s.config(t, "g-retry"), func(ctx context.Context, m kafka.Message) error {
		mu.Lock()
		calls[string(m.Value)]++
		n := calls[string(m.Value)]
		mu.Unlock()
		switch {
		case string(m.Value) == "bad":
			return errors.New("store down")
		case string(m.Value) == "flaky" && n < 2:
			return errors.New("transient")
		}
		handled <- string(m.Value)
		return nil
	})
	for _, want := range []string{"flaky", "ok"} {
		select {
		case v := <-handled:
			if v != want {
				t.Fatalf("handled %q, want %q", v, want)
			}
		case <-time.After(wait):
			t.Fatalf("%s not handled", want)
		}
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	if calls["bad"] != 3 || calls["flaky"] != 2 {
		t.Errorf("calls %v, want bad 3 (MaxAttempts) and flaky 2", calls)
	}
	dl := readAll(t, s.brokers, kafkax.TopicDeadLetter, 1)
	if len(dl) != 1 || string(dl[0].Value) != "bad" || header(dl[0], kafkax.HeaderAttempts) != "3" {
		t.Fatalf("dead letters %v, want only \"bad\" after 3 attempts", dl)
	}
}

func TestBatchConsumerGetsConsecutiveMessagesAndIsolatesPoison(t *testing.T) {
	s := newSetup(t, 1)
	var msgs []kafka.Message
	for i := 0; i < 50; i++ {
		v := strconv.Itoa(i)
		if i == 17 {
			v = "poison"
		}
		msgs = append(msgs, kafka.Message{Key: []byte("k"), Value: []byte(v)})
	}
	produce(t, s.w, msgs...)

	cfg := s.config(t, "g-batch")
	cfg.MaxBatch = 20
	cfg.MaxWait = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var seen []string
	maxBatch := 0
	done := make(chan error, 1)
	go func() {
		done <- kafkax.RunBatchConsumer(ctx, cfg, func(ctx context.Context, ms []kafka.Message) error {
			for _, m := range ms {
				if string(m.Value) == "poison" {
					return kafkax.Poison(fmt.Errorf("offset %d", m.Offset))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(ms) > maxBatch {
				maxBatch = len(ms)
			}
			for _, m := range ms {
				seen = append(seen, string(m.Value))
			}
			if len(seen) == 49 {
				cancel()
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		cancel()
		t.Fatal("batch consumer did not handle 49 messages")
	}
	mu.Lock()
	defer mu.Unlock()
	want := 0
	for _, v := range seen {
		if want == 17 {
			want++
		}
		if v != strconv.Itoa(want) {
			t.Fatalf("handled %v: out of order or duplicated", seen)
		}
		want++
	}
	if maxBatch < 2 || maxBatch > 20 {
		t.Errorf("largest batch %d, want within 2..20", maxBatch)
	}
	dl := readAll(t, s.brokers, kafkax.TopicDeadLetter, 1)
	if len(dl) != 1 || header(dl[0], kafkax.HeaderOriginalOffset) != "17" {
		t.Fatalf("dead letters %v, want exactly offset 17", dl)
	}
	if offs := committed(t, s.brokers, "g-batch", s.topic, 1); offs[0] != 50 {
		t.Errorf("committed %d, want 50", offs[0])
	}
}

func TestRestartOnSameDataDirKeepsTopicsRecordsAndCommittedOffsets(t *testing.T) {
	dir := t.TempDir()
	e := startBroker(t, dir)
	brokers := e.Brokers()
	ensure(t, brokers,
		kafkax.TopicSpec{Name: "restart.topic", Partitions: 2, ReplicationFactor: 1, RetentionMs: -1},
		kafkax.TopicSpec{Name: kafkax.TopicDeadLetter, Partitions: 1, ReplicationFactor: 1, RetentionMs: -1})
	w := kafkax.NewWriter(brokers, "restart.topic", time.Millisecond)
	for i := 0; i < 6; i++ {
		produce(t, w, kafka.Message{Key: []byte("conv"), Value: []byte(strconv.Itoa(i))})
	}
	_ = w.Close()
	dlq := kafkax.NewWriter(brokers, kafkax.TopicDeadLetter, time.Millisecond)
	cfg := kafkax.ConsumerConfig{Brokers: brokers, GroupID: "g-restart", Topic: "restart.topic", DeadLetter: dlq,
		SessionTimeout: 2 * time.Second, Backoff: time.Millisecond, Logger: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	var first []string
	err := kafkax.RunConsumer(ctx, cfg, func(ctx context.Context, m kafka.Message) error {
		first = append(first, string(m.Value))
		if len(first) == 4 {
			cancel() // this message is still committed
		}
		return nil
	})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	_ = dlq.Close()
	if len(first) != 4 {
		t.Fatalf("first run handled %v", first)
	}
	_ = e.Close()

	e2 := startBroker(t, dir)
	defer e2.Close()
	brokers = e2.Brokers()

	recs := readAll(t, brokers, "restart.topic", 2)
	if len(recs) != 6 {
		t.Fatalf("after restart the topic has %d records, want 6", len(recs))
	}
	var part int
	for i, m := range recs {
		if string(m.Value) != strconv.Itoa(i) {
			t.Fatalf("record %d is %q after restart", i, m.Value)
		}
		part = m.Partition
	}
	if offs := committed(t, brokers, "g-restart", "restart.topic", 2); offs[part] != 4 {
		t.Fatalf("committed offset after restart %d, want 4", offs[part])
	}

	dlq = kafkax.NewWriter(brokers, kafkax.TopicDeadLetter, time.Millisecond)
	defer dlq.Close()
	cfg.Brokers, cfg.DeadLetter = brokers, dlq
	ctx, cancel = context.WithTimeout(context.Background(), wait)
	defer cancel()
	var second []string
	err = kafkax.RunConsumer(ctx, cfg, func(ctx context.Context, m kafka.Message) error {
		second = append(second, string(m.Value))
		if len(second) == 2 {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(second) != "[4 5]" {
		t.Fatalf("resumed consumer handled %v, want [4 5]", second)
	}
}

func TestRunConsumerRefusesConfigWithoutDeadLetter(t *testing.T) {
	err := kafkax.RunConsumer(context.Background(), kafkax.ConsumerConfig{Brokers: []string{"127.0.0.1:1"}, GroupID: "g", Topic: "t"},
		func(context.Context, kafka.Message) error { return nil })
	if err == nil {
		t.Fatal("RunConsumer without DeadLetter returned nil")
	}
}

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
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/kafkax"
	"github.com/beehive-im/beehive/shared/testinfra"
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
		Backoff:        time.Millisecond,
		MaxBackoff:     20 * time.Millisecond,
		DeadLetter:     s.dlq,
		SessionTimeout: 2 * time.Second,
		Logger:         testLogger(t),
	}
}

// runConsumer runs RunConsumer until stop is called; stop fails the test
// unless it then returns nil.
func runConsumer(t *testing.T, cfg kafkax.ConsumerConfig, h kafkax.Handler) (stop func()) {
	t.Helper()
	return runUntilStopped(t, func(ctx context.Context) error { return kafkax.RunConsumer(ctx, cfg, h) })
}

// runBatchConsumer is runConsumer for RunBatchConsumer.
func runBatchConsumer(t *testing.T, cfg kafkax.ConsumerConfig, h kafkax.BatchHandler) (stop func()) {
	t.Helper()
	return runUntilStopped(t, func(ctx context.Context) error { return kafkax.RunBatchConsumer(ctx, cfg, h) })
}

func runUntilStopped(t *testing.T, run func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
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
	out, err := committedOffsets(brokers, group, topic, partitions)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// committedOffsets is group's committed offset per partition of topic
// (none for a group that never committed).
func committedOffsets(brokers []string, group, topic string, partitions int) (map[int]int64, error) {
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: wait}
	var ps []int
	for p := 0; p < partitions; p++ {
		ps = append(ps, p)
	}
	res, err := cl.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		return nil, fmt.Errorf("OffsetFetch: %w", err)
	}
	if errors.Is(res.Error, kafka.GroupIdNotFound) {
		return map[int]int64{}, nil // nothing committed yet
	}
	if res.Error != nil {
		return nil, fmt.Errorf("OffsetFetch: %w", res.Error)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("OffsetFetch partition %d: %w", p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// uniqueGroup names a consumer group no other test (or -count run) uses:
// the consumer metrics are per group name and process-wide.
func uniqueGroup(prefix string) string { return prefix + "-" + ids.New() }

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

// TestAnInfrastructureErrorHoldsThePositionUntilTheDependencyReturns: a
// handler failing with a non-poison error (a store away) is retried on the
// same record, with the committed offset never past it, until it succeeds;
// then the record counts as handled once and nothing is dead-lettered.
func TestAnInfrastructureErrorHoldsThePositionUntilTheDependencyReturns(t *testing.T) {
	const failures = 6
	for _, batch := range []bool{false, true} {
		t.Run(map[bool]string{false: "RunConsumer", true: "RunBatchConsumer"}[batch], func(t *testing.T) {
			s := newSetup(t, 1)
			produce(t, s.w,
				kafka.Message{Key: []byte("k"), Value: []byte("before")},
				kafka.Message{Key: []byte("k"), Value: []byte("flaky")},
				kafka.Message{Key: []byte("k"), Value: []byte("after")},
			)
			group := uniqueGroup("g-infra")
			reg := prometheus.NewRegistry()
			cfg := s.config(t, group)
			cfg.Registerer = reg
			var mu sync.Mutex
			var handled []string
			calls := 0
			var overtaken []int64 // committed offsets seen past "flaky" while it failed
			handle := func(ctx context.Context, m kafka.Message) error {
				if string(m.Value) != "flaky" {
					mu.Lock()
					handled = append(handled, string(m.Value))
					mu.Unlock()
					return nil
				}
				mu.Lock()
				calls++
				n := calls
				mu.Unlock()
				if n <= failures {
					if off := committed(t, s.brokers, group, s.topic, 1)[0]; off > m.Offset {
						mu.Lock()
						overtaken = append(overtaken, off)
						mu.Unlock()
					}
					return errs.Wrap(errs.Unavailable, errors.New("gocql: no hosts available in the pool"), "store unavailable")
				}
				mu.Lock()
				handled = append(handled, "flaky")
				mu.Unlock()
				return nil
			}
			var stop func()
			if batch {
				stop = runBatchConsumer(t, cfg, func(ctx context.Context, ms []kafka.Message) error {
					// The batch fails whole before handling anything, as
					// one store write of it would.
					for _, m := range ms {
						if string(m.Value) == "flaky" {
							if err := handle(ctx, m); err != nil {
								return err
							}
						}
					}
					for _, m := range ms {
						if string(m.Value) != "flaky" {
							_ = handle(ctx, m)
						}
					}
					return nil
				})
			} else {
				stop = runConsumer(t, cfg, handle)
			}
			testinfra.CheckFor(t, wait, 2*time.Millisecond, func() error {
				if offs := committed(t, s.brokers, group, s.topic, 1); offs[0] != 3 {
					return fmt.Errorf("committed %d, want 3", offs[0])
				}
				return nil
			})
			stop()
			mu.Lock()
			defer mu.Unlock()
			if calls != failures+1 {
				t.Errorf("flaky handled %d times, want %d failures and one success", calls, failures+1)
			}
			if len(overtaken) > 0 {
				t.Errorf("committed offsets %v passed the failing record (offset 1)", overtaken)
			}
			count := map[string]int{}
			for _, v := range handled {
				count[v]++
			}
			if count["flaky"] != 1 || count["after"] != 1 || count["before"] < 1 {
				t.Errorf("handled %v, want flaky and after once each", handled)
			}
			if !batch && fmt.Sprint(handled) != "[before flaky after]" {
				t.Errorf("handled %v, want [before flaky after]: order per partition", handled)
			}
			if dl := readAll(t, s.brokers, kafkax.TopicDeadLetter, 1); len(dl) != 0 {
				t.Errorf("%d dead letters, want none: an infrastructure error is not poison", len(dl))
			}
			if got := testinfra.MetricSum(t, reg, "beehive_consumer_errors_total", map[string]string{"group": group, "stage": "handler"}); got != failures {
				t.Errorf("handler errors counted %v, want %d", got, failures)
			}
			if got := testinfra.MetricSum(t, reg, "beehive_consumer_dead_letters_total", map[string]string{"group": group}); got != 0 {
				t.Errorf("dead letters counted %v, want 0", got)
			}
		})
	}
}

// TestConsumerSurvivesABrokerRestart closes the broker under a running
// consumer and starts it again on the same address and data dir: the
// consumer never returns, reports itself down meanwhile, and then consumes
// records produced after the restart.
func TestConsumerSurvivesABrokerRestart(t *testing.T) {
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", testinfra.FreePort(t))
	e, err := kafkax.StartEmbedded(dir, addr, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	brokers := e.Brokers()
	topic := "restart.live"
	ensure(t, brokers,
		kafkax.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1, RetentionMs: -1},
		kafkax.TopicSpec{Name: kafkax.TopicDeadLetter, Partitions: 1, ReplicationFactor: 1, RetentionMs: -1})
	w := kafkax.NewWriter(brokers, topic, time.Millisecond)
	defer w.Close()
	dlq := kafkax.NewWriter(brokers, kafkax.TopicDeadLetter, time.Millisecond)
	defer dlq.Close()
	reg := prometheus.NewRegistry()
	group := uniqueGroup("g-broker-restart")
	cfg := kafkax.ConsumerConfig{Brokers: brokers, GroupID: group, Topic: topic, DeadLetter: dlq, SessionTimeout: 2 * time.Second,
		Backoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Registerer: reg, Logger: testLogger(t)}

	var mu sync.Mutex
	var seen []string
	has := func(v string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range seen {
			if s == v {
				return true
			}
		}
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- kafkax.RunConsumer(ctx, cfg, func(ctx context.Context, m kafka.Message) error {
			mu.Lock()
			seen = append(seen, string(m.Value))
			mu.Unlock()
			return nil
		})
	}()
	running := func() {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("RunConsumer returned %v while its context is live", err)
		default:
		}
	}

	produce(t, w, kafka.Message{Key: []byte("k"), Value: []byte("before")})
	testinfra.Eventually(t, wait, "the record before the restart was consumed", func() bool { return has("before") })

	_ = e.Close()
	// FetchMessage itself failing (the group cannot be joined: dial
	// errors) is what used to end the loop and the process with it.
	// kafka-go reports a lost broker either from FetchMessage or through
	// the reader's own error log, depending on where it was; both count.
	testinfra.Eventually(t, wait, "the consumer saw the broker fail while it was away", func() bool {
		fetch := testinfra.MetricSum(t, reg, "beehive_consumer_errors_total", map[string]string{"group": group, "stage": "fetch"})
		reader := testinfra.MetricSum(t, reg, "beehive_consumer_errors_total", map[string]string{"group": group, "stage": "reader"})
		return fetch+reader >= 2
	})
	if up := testinfra.MetricSum(t, reg, "beehive_consumer_up", map[string]string{"group": group}); up != 0 {
		t.Errorf("beehive_consumer_up = %v while the broker is away, want 0", up)
	}
	running()

	e, err = kafkax.StartEmbedded(dir, addr, testLogger(t))
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	defer e.Close()
	produce(t, w, kafka.Message{Key: []byte("k"), Value: []byte("after")})
	testinfra.Eventually(t, wait, "the record after the restart was consumed", func() bool { return has("after") })
	// Its commit reached the restarted broker too (retried if it failed).
	testinfra.CheckFor(t, wait, 5*time.Millisecond, func() error {
		// An error is a pooled connection to the broker before the
		// restart: ask again.
		offs, err := committedOffsets(e.Brokers(), group, topic, 1)
		if err != nil {
			return err
		}
		if offs[0] != 2 {
			return fmt.Errorf("committed %d, want 2", offs[0])
		}
		return nil
	})
	testinfra.Eventually(t, wait, "the consumer reports itself up again", func() bool {
		return testinfra.MetricSum(t, reg, "beehive_consumer_up", map[string]string{"group": group}) == 1
	})
	running()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunConsumer: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("RunConsumer did not return after cancel")
	}
	if dl := readAll(t, e.Brokers(), kafkax.TopicDeadLetter, 1); len(dl) != 0 {
		t.Errorf("%d dead letters, want none", len(dl))
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

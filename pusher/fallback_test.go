package pusher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/kafkax"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// flakyStore fails ListDevices for the users marked down, as a Cassandra
// session with no live host does.
type flakyStore struct {
	pusher.Store
	mu   sync.Mutex
	down map[string]bool
}

func (s *flakyStore) ListDevices(ctx context.Context, userID string) ([]pusher.Device, error) {
	s.mu.Lock()
	down := s.down[userID]
	s.mu.Unlock()
	if down {
		return nil, errors.New("gocql: no hosts available in the pool")
	}
	return s.Store.ListDevices(ctx, userID)
}

func (s *flakyStore) setDown(userID string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down[userID] = down
}

// TestOneRecipientsFailedDeviceLookupBecomesADeferredOfflineTask runs the
// push and offline consumers on the embedded broker with one group member's
// device lookup failing with an infrastructure error: the other members are
// delivered live and pushed offline, the failing one gets a deferred offline
// task, nothing is dead-lettered, and once its store answers again the
// offline consumer (which held its position meanwhile) notifies it once.
func TestOneRecipientsFailedDeviceLookupBecomesADeferredOfflineTask(t *testing.T) {
	broker, err := kafkax.StartEmbedded(t.TempDir(), "127.0.0.1:0", log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	brokers := broker.Brokers()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, brokers, kafkax.DefaultTopics(1, 1)); err != nil {
		t.Fatal(err)
	}
	offline := kafkax.NewWriter(brokers, kafkax.TopicPushOffline, 2*time.Millisecond)
	defer offline.Close()
	dead := kafkax.NewWriter(brokers, kafkax.TopicDeadLetter, 2*time.Millisecond)
	defer dead.Close()

	r := newRig(t)
	store := &flakyStore{Store: r.store, down: map[string]bool{}}
	reg := prometheus.NewRegistry()
	p := newPusher(t, pusher.Deps{
		Store: store, Members: r.members, Presence: r.presence, Deliverer: r.deliverer,
		Acks: r.acks, Settings: r.settings, Friends: r.friends, Offline: offline,
		Notifiers: map[string]pusher.Notifier{pusher.PlatformWebhook: r.notifier},
	}, pusher.Options{DeliverBackoff: time.Millisecond, DeliverAttempts: 3, Registerer: reg})

	alice, bob, carol, dave := "alice-"+ids.New(), "bob-"+ids.New(), "carol-"+ids.New(), "dave-"+ids.New()
	g := ids.New()
	conv := ids.Group(g)
	r.members.set(g, alice, bob, carol, dave)
	for _, u := range []string{bob, carol, dave} {
		if _, err := p.RegisterDevice(ctx, u, pusher.DeviceRegistration{DeviceID: "phone", Platform: pusher.PlatformWebhook, PushToken: "tok"}); err != nil {
			t.Fatal(err)
		}
	}
	r.presence.connect(alice, "laptop", "gw-1", "c1")
	r.presence.connect(carol, "phone", "gw-2", "c2") // carol's phone gets it live
	store.setDown(bob, true)

	base := kafkax.ConsumerConfig{Brokers: brokers, DeadLetter: dead, SessionTimeout: time.Second,
		Backoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Registerer: reg}
	offlineRetries := func() float64 {
		return testinfra.MetricSum(t, reg, "beehive_consumer_errors_total", map[string]string{"group": pusher.OfflineGroup, "stage": "handler"})
	}
	retriesBefore := offlineRetries()
	var wg sync.WaitGroup
	cctx, stop := context.WithCancel(ctx)
	for _, run := range []func(context.Context, kafkax.ConsumerConfig) error{p.RunPushConsumer, p.RunOfflineConsumer} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(cctx, base); err != nil {
				t.Errorf("consumer: %v", err)
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()

	ev := textEvent(conv, alice, 1, "hello", "gw-1/c1")
	v, _ := json.Marshal(ev)
	messages := kafkax.NewWriter(brokers, kafkax.TopicMessages, 2*time.Millisecond)
	defer messages.Close()
	if err := messages.WriteMessages(ctx, kafka.Message{Key: []byte(conv), Value: v}); err != nil {
		t.Fatal(err)
	}

	// The others are delivered live, and bob's task is on the topic,
	// deferred: the push consumer did not wait for bob's store.
	testinfra.CheckFor(t, time.Minute, 5*time.Millisecond, func() error {
		delivered := false
		for _, d := range r.deliverer.deliveries() {
			if d.Gateway == "gw-2" && len(d.Users) == 1 && d.Users[0] == carol {
				delivered = true
			}
		}
		if !delivered {
			return fmt.Errorf("carol not delivered live: %+v", r.deliverer.deliveries())
		}
		return nil
	})
	var tasks []pusher.Task
	testinfra.CheckFor(t, time.Minute, 5*time.Millisecond, func() error {
		tasks = offlineTasks(t, ctx, brokers)
		if len(tasks) < 2 {
			return fmt.Errorf("offline tasks %+v, want bob's and dave's", tasks)
		}
		return nil
	})
	byUser := map[string]pusher.Task{}
	for _, task := range tasks {
		byUser[task.UserID] = task
	}
	if len(tasks) != 2 || !byUser[bob].Deferred || byUser[bob].DeviceID != "" || byUser[dave].Deferred || byUser[dave].DeviceID != "phone" {
		t.Fatalf("offline tasks %+v, want a deferred one for bob (all devices) and dave's phone", tasks)
	}
	if n := testinfra.MetricSum(t, reg, "beehive_pusher_lookup_fallbacks_total", map[string]string{"lookup": "devices"}); n != 1 {
		t.Errorf("lookup_fallbacks_total{lookup=devices} = %v, want 1", n)
	}

	// The offline consumer holds its position on bob's task while his
	// store is away: it retries, notifies nobody twice, dead-letters
	// nothing.
	testinfra.Eventually(t, time.Minute, "the offline consumer retried bob's task", func() bool { return offlineRetries()-retriesBefore >= 2 })
	if n := deadLetters(t, ctx, brokers); n != 0 {
		t.Fatalf("%d dead letters, want none: a failed lookup is no poison", n)
	}

	store.setDown(bob, false)
	notified := func() []string {
		r.notifier.mu.Lock()
		defer r.notifier.mu.Unlock()
		var out []string
		for _, task := range r.notifier.tasks {
			out = append(out, task.UserID+"/"+task.DeviceID)
		}
		sort.Strings(out)
		return out
	}
	want := []string{bob + "/phone", dave + "/phone"}
	sort.Strings(want)
	testinfra.CheckFor(t, time.Minute, 5*time.Millisecond, func() error {
		if got := notified(); fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("notified %v, want %v", got, want)
		}
		return nil
	})
	if n := deadLetters(t, ctx, brokers); n != 0 {
		t.Fatalf("%d dead letters, want none", n)
	}
}

// offlineTasks reads every task on beehive.push.offline (partition 0).
func offlineTasks(t *testing.T, ctx context.Context, brokers []string) []pusher.Task {
	t.Helper()
	conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], kafkax.TopicPushOffline, 0)
	if err != nil {
		t.Fatal(err)
	}
	first, last, err := conn.ReadOffsets()
	_ = conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if last == first {
		return nil
	}
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: kafkax.TopicPushOffline, Partition: 0, MaxWait: 50 * time.Millisecond})
	defer rd.Close()
	if err := rd.SetOffset(first); err != nil {
		t.Fatal(err)
	}
	var out []pusher.Task
	for {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var task pusher.Task
		if err := json.Unmarshal(m.Value, &task); err != nil {
			t.Fatal(err)
		}
		out = append(out, task)
		if m.Offset == last-1 {
			return out
		}
	}
}

// A recipient's failed mute or ack lookup also falls back to a deferred
// task for its unconnected devices; a failed members lookup (the whole
// record's) is an error the consumer retries, and a refusal is poison.
func TestPerRecipientAndSharedLookupFailures(t *testing.T) {
	down := errs.New(errs.Unavailable, "query unavailable")
	t.Run("settings fail: deferred task per device", func(t *testing.T) {
		r := newRig(t)
		r.p = newPusher(t, pusher.Deps{
			Store: r.store, Members: r.members, Presence: r.presence, Deliverer: r.deliverer,
			Acks: r.acks, Settings: failingSettings{err: down, user: "bob"}, Friends: r.friends, Offline: r.writer,
		}, pusher.Options{})
		r.register(t, "bob", "phone", pusher.PlatformWebhook)
		r.register(t, "carol", "phone", pusher.PlatformWebhook)
		g := ids.New()
		r.members.set(g, "alice", "bob", "carol")
		if err := push(t, r.p, textEvent(ids.Group(g), "alice", 3, "x", "")); err != nil {
			t.Fatalf("err = %v, want the record handled", err)
		}
		got := map[string]bool{}
		for _, task := range r.writer.tasks(t) {
			got[task.UserID+"/"+task.DeviceID] = task.Deferred
		}
		if len(got) != 2 || !got["bob/phone"] || got["carol/phone"] {
			t.Fatalf("tasks (deferred?) %v, want bob/phone deferred and carol/phone checked", got)
		}
	})
	t.Run("members fail: retried", func(t *testing.T) {
		r := newRig(t)
		r.members.failErr = down
		err := push(t, r.p, textEvent(ids.Group(ids.New()), "alice", 1, "x", ""))
		if err == nil || errors.Is(err, kafkax.ErrPoison) {
			t.Fatalf("err = %v, want an infrastructure error", err)
		}
	})
	t.Run("members refused: poison", func(t *testing.T) {
		r := newRig(t)
		r.members.failErr = errs.Invalid("group_id", "malformed")
		if err := push(t, r.p, textEvent(ids.Group(ids.New()), "alice", 1, "x", "")); !errors.Is(err, kafkax.ErrPoison) {
			t.Fatalf("err = %v, want poison", err)
		}
	})
	t.Run("group gone: nothing to push", func(t *testing.T) {
		r := newRig(t)
		if err := push(t, r.p, textEvent(ids.Group(ids.New()), "alice", 1, "x", "")); err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
	})
	t.Run("deferred task checks the mute, devices and acks", func(t *testing.T) {
		r := newRig(t)
		conv := ids.P2P("alice", "bob")
		r.register(t, "bob", "phone", pusher.PlatformWebhook)
		r.register(t, "bob", "tablet", pusher.PlatformWebhook)
		r.register(t, "bob", "laptop", pusher.PlatformWebhook)
		r.acks["bob/tablet/"+conv] = 5
		task := pusher.Task{UserID: "bob", MessageID: ids.New(), ConversationID: conv, Seq: 5, SenderID: "alice", Deferred: true, Connected: []string{"laptop"}}
		v, _ := json.Marshal(task)
		for range 2 { // a redelivery notifies nobody twice
			if err := r.p.HandleOffline(t.Context(), kafka.Message{Value: v}); err != nil {
				t.Fatal(err)
			}
		}
		if n := r.notifier.count(); n != 1 || r.notifier.tasks[0].DeviceID != "phone" {
			t.Fatalf("notified %+v, want bob's phone once (tablet acked, laptop connected)", r.notifier.tasks)
		}
		r.settings["bob/"+conv] = true
		task.MessageID = ids.New()
		v, _ = json.Marshal(task)
		if err := r.p.HandleOffline(t.Context(), kafka.Message{Value: v}); err != nil {
			t.Fatal(err)
		}
		if n := r.notifier.count(); n != 1 {
			t.Fatalf("a muted conversation was notified: %+v", r.notifier.tasks)
		}
	})
}

type failingSettings struct {
	err  error
	user string
}

func (f failingSettings) Muted(_ context.Context, user, _ string) (bool, error) {
	if user == f.user {
		return false, f.err
	}
	return false, nil
}

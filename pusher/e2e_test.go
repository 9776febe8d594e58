package pusher_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/kafkax"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// TestEndToEndThroughTheEmbeddedBroker produces message events to
// beehive.messages (the first one twice, as a redelivery would, and one
// message.DecodeRecord refuses), runs the push and offline consumers, and
// sees the webhook receive exactly one call per good message for the
// offline device, nothing of the refused one, and no dead letter from the
// push group (persist dead-letters refused records).
func TestEndToEndThroughTheEmbeddedBroker(t *testing.T) {
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

	var mu sync.Mutex
	calls := map[string]int{} // message id -> webhook calls
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Beehive-Signature") != pusher.SignWebhook("k", raw) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var b pusher.WebhookBody
		_ = json.Unmarshal(raw, &b)
		mu.Lock()
		calls[b.MessageID]++
		mu.Unlock()
	}))
	defer hook.Close()
	webhook, err := pusher.NewWebhook(pusher.WebhookConfig{URL: hook.URL, Secret: "k", Client: hook.Client(), Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}

	offline := kafkax.NewWriter(brokers, kafkax.TopicPushOffline, 5*time.Millisecond)
	defer offline.Close()
	dead := kafkax.NewWriter(brokers, kafkax.TopicDeadLetter, 5*time.Millisecond)
	defer dead.Close()

	r := newRig(t)
	p := newPusher(t, pusher.Deps{
		Store: r.store, Members: r.members, Presence: r.presence, Deliverer: r.deliverer,
		Offline: offline, Notifiers: map[string]pusher.Notifier{pusher.PlatformWebhook: webhook},
	}, pusher.Options{})
	alice, bob := ids.New(), ids.New()
	if _, err := p.RegisterDevice(ctx, bob, pusher.DeviceRegistration{DeviceID: "phone", Platform: pusher.PlatformWebhook, PushToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	r.presence.connect(alice, "laptop", "gw-1", "c1") // the sender is online; bob is not

	base := kafkax.ConsumerConfig{Brokers: brokers, DeadLetter: dead, SessionTimeout: time.Second, Backoff: 10 * time.Millisecond}
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

	conv := ids.P2P(alice, bob)
	first := textEvent(conv, alice, 1, "hello", "gw-1/c1")
	refused := textEvent(conv, alice, 2, "never", "gw-1/c1")
	refused.Version = 0
	marker := textEvent(conv, alice, 3, "again", "gw-1/c1")
	messages := kafkax.NewWriter(brokers, kafkax.TopicMessages, 5*time.Millisecond)
	defer messages.Close()
	var recs []kafka.Message
	for _, ev := range []any{first, first, refused, marker} {
		v, _ := json.Marshal(ev)
		recs = append(recs, kafka.Message{Key: []byte(conv), Value: v})
	}
	if err := messages.WriteMessages(ctx, recs...); err != nil {
		t.Fatal(err)
	}

	// One partition: once the marker's push arrived, everything before it
	// was processed.
	got := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return calls[first.Message.ID], calls[marker.Message.ID]
	}
	refusedCalls := func() int {
		mu.Lock()
		defer mu.Unlock()
		return calls[refused.Message.ID]
	}
	testinfra.Eventually(t, 60*time.Second, "the webhook received the marker message", func() bool { _, m := got(); return m > 0 })
	if n, m := got(); n != 1 || m != 1 {
		t.Fatalf("webhook calls: first message %d, marker %d; want exactly 1 each", n, m)
	}
	// The offline task of the marker was produced after the refused record
	// was handled, and offline tasks keep that order: none for it.
	if n := refusedCalls(); n != 0 {
		t.Fatalf("the refused record reached the webhook %d times", n)
	}
	// The push group handled the refused record before the marker, so a
	// dead letter of it would be written by now.
	if n := deadLetters(t, ctx, brokers); n != 0 {
		t.Fatalf("%d dead letters; the push group must skip refused records, not dead-letter them", n)
	}
	// Online delivery reached the sender's other socket, skipping none but
	// the sending one (which is on the same gateway: ExceptConn set).
	testinfra.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if got := r.deliverer.deliveries(); len(got) < 3 {
			return fmt.Errorf("online deliveries = %+v", got)
		}
		return nil
	})
	for _, d := range r.deliverer.deliveries() {
		if d.Gateway != "gw-1" || d.Except != "gw-1/c1" || len(d.Users) != 1 || d.Users[0] != alice {
			t.Fatalf("delivery = %+v", d)
		}
		if id := d.Frame["data"].(map[string]any)["message"].(map[string]any)["id"]; id == refused.Message.ID {
			t.Fatalf("the refused record was delivered: %+v", d)
		}
	}
}

// deadLetters is how many records the dead-letter topic holds.
func deadLetters(t *testing.T, ctx context.Context, brokers []string) int64 {
	t.Helper()
	conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], kafkax.TopicDeadLetter, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	if err != nil {
		t.Fatal(err)
	}
	return last - first
}

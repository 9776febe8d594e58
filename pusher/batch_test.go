package pusher_test

import (
	"context"
	"sync"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/shared/ids"
)

// countingStore counts ListDevices per user.
type countingStore struct {
	pusher.Store
	mu    sync.Mutex
	lists map[string]int
}

func (s *countingStore) ListDevices(ctx context.Context, userID string) ([]pusher.Device, error) {
	s.mu.Lock()
	s.lists[userID]++
	s.mu.Unlock()
	return s.Store.ListDevices(ctx, userID)
}

// orderedWriter notes how many deliver requests had been made when the
// offline tasks were written.
type orderedWriter struct {
	pusher.TaskWriter
	deliverer      *fakeDeliverer
	deliveredFirst []int
}

func (w *orderedWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	w.deliveredFirst = append(w.deliveredFirst, w.deliverer.requestCount())
	return w.TaskWriter.WriteMessages(ctx, msgs...)
}

func TestABatchOfAHotConversationLooksUpOnceAndDeliversInOneRequest(t *testing.T) {
	r := newRig(t)
	store := &countingStore{Store: r.store, lists: map[string]int{}}
	writer := &orderedWriter{TaskWriter: r.writer, deliverer: r.deliverer}
	r.p = newPusher(t, pusher.Deps{
		Store: store, Members: r.members, Presence: r.presence, Deliverer: r.deliverer,
		Acks: r.acks, Settings: r.settings, Friends: r.friends, Offline: writer,
		Notifiers: map[string]pusher.Notifier{pusher.PlatformWebhook: r.notifier},
	}, pusher.Options{})
	g := ids.New()
	conv := ids.Group(g)
	r.members.set(g, "sender", "online", "off")
	r.presence.connect("online", "phone", "gw", "c1")
	r.register(t, "off", "phone", pusher.PlatformWebhook)
	r.register(t, "online", "phone", pusher.PlatformWebhook)

	const n = 50
	var batch []kafka.Message
	for seq := int64(1); seq <= n; seq++ {
		batch = append(batch, record(t, textEvent(conv, "sender", seq, "hi", "")))
	}
	// One record of another conversation in the middle: its own lookups.
	other := ids.P2P("online", "sender")
	batch = append(batch[:n/2], append([]kafka.Message{record(t, textEvent(other, "sender", 1, "psst", ""))}, batch[n/2:]...)...)
	if err := r.p.HandleBatch(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if r.presence.lookups != 2 {
		t.Fatalf("%d presence lookups for a batch of two conversations, want 2", r.presence.lookups)
	}
	for _, u := range []string{"online", "off"} {
		if store.lists[u] != 1 {
			t.Fatalf("devices of %s listed %d times in one batch, want 1", u, store.lists[u])
		}
	}
	// Only "online" has a socket, so every frame of the batch, of both
	// conversations, went in one request: one write to that socket.
	if got := r.deliverer.requestCount(); got != 1 {
		t.Fatalf("%d deliver requests for one online user, want 1", got)
	}
	// Every record was delivered and pushed as if handled alone.
	var seqs []int64
	for _, d := range r.deliverer.deliveries() {
		m := d.Frame["data"].(map[string]any)["message"].(map[string]any)
		if m["conversation_id"] == conv {
			seqs = append(seqs, int64(m["seq"].(float64)))
		}
	}
	if len(seqs) != n {
		t.Fatalf("%d deliveries of the group's %d records", len(seqs), n)
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("delivery %d has seq %d: out of order", i, s)
		}
	}
	// The batch's offline tasks went in one produce, after the sockets had
	// their frames: offline work never delays online delivery.
	if len(writer.deliveredFirst) != 1 || writer.deliveredFirst[0] != 1 {
		t.Fatalf("offline produces after %v deliver requests, want one produce after 1", writer.deliveredFirst)
	}
	offTasks := 0
	for _, task := range r.writer.tasks(t) {
		if task.UserID == "off" && task.ConversationID == conv {
			offTasks++
		}
	}
	if offTasks != n {
		t.Fatalf("%d offline tasks for the offline member, want %d", offTasks, n)
	}
}

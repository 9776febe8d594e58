package pusher_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/kafkax"
)

func textEvent(conv, sender string, seq int64, text, origin string) message.Event {
	content, _ := json.Marshal(text)
	return message.Event{
		Version: message.EventVersion, Kind: message.EventMessage, ConversationID: conv, OriginConn: origin,
		Message: &message.Message{ID: ids.New(), ConversationID: conv, Seq: seq, SenderID: sender, Type: message.TypeText, Content: content, SentAt: time.Now().UTC()},
	}
}

// record is v as a record of beehive.messages: JSON, keyed by the
// conversation id when v is an event (as the producer writes it).
func record(t *testing.T, v any) kafka.Message {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	m := kafka.Message{Topic: "test", Value: b}
	if ev, ok := v.(message.Event); ok {
		m.Key = []byte(ev.ConversationID)
	}
	return m
}

// push hands ev to the push consumer's handler as its record.
func push(t *testing.T, p *pusher.Pusher, ev message.Event) error {
	t.Helper()
	return p.HandleMessage(t.Context(), record(t, ev))
}

func TestOneToOneMessageReachesBothUsersExceptTheSendingSocket(t *testing.T) {
	r := newRig(t)
	a, b := "alice", "bob"
	r.presence.connect(a, "phone", "gw-1", "c1")  // the sending socket
	r.presence.connect(a, "laptop", "gw-2", "c2") // the sender's other device
	r.presence.connect(b, "phone", "gw-1", "c3")
	ev := textEvent(ids.P2P(a, b), a, 7, "hi", "gw-1/c1")

	if err := r.p.HandleMessage(t.Context(), record(t, ev)); err != nil {
		t.Fatal(err)
	}
	got := r.deliverer.deliveries()
	if len(got) != 2 {
		t.Fatalf("deliveries = %+v", got)
	}
	if got[0].Gateway != "gw-1" || !reflect.DeepEqual(got[0].Users, []string{a, b}) || got[0].Except != "gw-1/c1" {
		t.Errorf("gw-1 delivery = %+v", got[0])
	}
	if got[1].Gateway != "gw-2" || !reflect.DeepEqual(got[1].Users, []string{a}) || got[1].Except != "gw-1/c1" {
		t.Errorf("gw-2 delivery = %+v", got[1])
	}
	fr := got[0].Frame
	msg := fr["data"].(map[string]any)["message"].(map[string]any)
	if fr["op"] != "message" || msg["id"] != ev.Message.ID || msg["seq"] != float64(7) || msg["content"] != "hi" || msg["conversation_id"] != ev.ConversationID {
		t.Errorf("frame = %v", fr)
	}
}

func TestGroupMessageGoesToOnlineMembersGroupedByGateway(t *testing.T) {
	r := newRig(t)
	g := ids.New()
	r.members.set(g, "m1", "m2", "m3", "m4")
	r.presence.connect("m1", "d", "gw-a", "c1")
	r.presence.connect("m2", "d", "gw-b", "c2")
	r.presence.connect("m3", "d", "gw-a", "c3")
	r.presence.connect("m3", "d2", "gw-a", "c4") // two sockets on one gateway: one entry
	// m4 is offline.
	if err := push(t, r.p, textEvent(ids.Group(g), "m1", 1, "yo", "gw-a/c1")); err != nil {
		t.Fatal(err)
	}
	got := r.deliverer.deliveries()
	want := []delivery{
		{Gateway: "gw-a", Users: []string{"m1", "m3"}, Except: "gw-a/c1"},
		{Gateway: "gw-b", Users: []string{"m2"}, Except: "gw-a/c1"},
	}
	if len(got) != len(want) {
		t.Fatalf("deliveries = %+v", got)
	}
	for i := range want {
		if got[i].Gateway != want[i].Gateway || !reflect.DeepEqual(got[i].Users, want[i].Users) || got[i].Except != want[i].Except {
			t.Errorf("delivery %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestGroupMembersAreCachedUntilAMembershipEvent(t *testing.T) {
	r := newRig(t)
	g := ids.New()
	r.members.set(g, "m1", "m2")
	r.presence.connect("m2", "d", "gw", "c2")
	r.presence.connect("m3", "d", "gw", "c3")
	ctx := t.Context()
	for seq := int64(1); seq <= 2; seq++ {
		if err := push(t, r.p, textEvent(ids.Group(g), "m1", seq, "x", "")); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.members.callCount(); n != 1 {
		t.Fatalf("ListMemberIDs called %d times for two messages, want 1 (cached)", n)
	}

	// m3 joins; until the event the cache still answers the old list.
	r.members.set(g, "m1", "m2", "m3")
	r.deliverer.reset()
	if err := push(t, r.p, textEvent(ids.Group(g), "m1", 3, "x", "")); err != nil {
		t.Fatal(err)
	}
	if got := r.deliverer.deliveries(); len(got) != 1 || !reflect.DeepEqual(got[0].Users, []string{"m2"}) {
		t.Fatalf("before the event: %+v", got)
	}

	r.p.HandleEvent(ctx, events.Event{Type: events.GroupMembership, GroupID: g})
	r.deliverer.reset()
	if err := push(t, r.p, textEvent(ids.Group(g), "m1", 4, "x", "")); err != nil {
		t.Fatal(err)
	}
	if got := r.deliverer.deliveries(); len(got) != 1 || !reflect.DeepEqual(got[0].Users, []string{"m2", "m3"}) {
		t.Fatalf("after the event: %+v", got)
	}
	if n := r.members.callCount(); n != 2 {
		t.Fatalf("ListMemberIDs called %d times, want 2", n)
	}

	r.p.HandleEvent(ctx, events.Event{Type: events.GroupDissolved, GroupID: g})
	r.members.set(g)
	r.deliverer.reset()
	if err := push(t, r.p, textEvent(ids.Group(g), "m1", 5, "x", "")); err != nil {
		t.Fatal(err)
	}
	if got := r.deliverer.deliveries(); len(got) != 0 {
		t.Fatalf("after dissolution: %+v", got)
	}
}

func TestAFailingGatewayIsRetriedThenSkippedWithoutBlockingOthers(t *testing.T) {
	r := newRig(t)
	a, b := "alice", "bob"
	r.presence.connect(a, "d", "gw-dead", "c1")
	r.presence.connect(b, "d", "gw-ok", "c2")
	r.deliverer.fail["gw-dead"] = errs.New(errs.Unavailable, "gateway down")
	if err := push(t, r.p, textEvent(ids.P2P(a, b), a, 1, "x", "")); err != nil {
		t.Fatalf("push failed although only delivery failed: %v", err)
	}
	if n := r.deliverer.attempts["gw-dead"]; n != 3 {
		t.Errorf("transient failure tried %d times, want 3", n)
	}
	if got := r.deliverer.deliveries(); len(got) != 1 || got[0].Gateway != "gw-ok" {
		t.Errorf("deliveries = %+v", got)
	}
}

func TestARefusedDeliveryIsNotRetried(t *testing.T) {
	r := newRig(t)
	r.presence.connect("bob", "d", "gw", "c")
	r.deliverer.fail["gw"] = errs.New(errs.InvalidArgument, "bad frame")
	if err := push(t, r.p, textEvent(ids.P2P("alice", "bob"), "alice", 1, "x", "")); err != nil {
		t.Fatal(err)
	}
	if n := r.deliverer.attempts["gw"]; n != 1 {
		t.Errorf("business refusal tried %d times, want 1", n)
	}
}

func TestRecallGoesToTheConversationAsRecalledFrame(t *testing.T) {
	r := newRig(t)
	r.presence.connect("bob", "d", "gw", "c")
	conv := ids.P2P("alice", "bob")
	content, _ := json.Marshal(message.RecallContent{MessageID: "m-old"})
	ev := message.Event{Version: message.EventVersion, Kind: message.EventRecall, ConversationID: conv, RecalledID: "m-old", RecalledSeq: 3,
		Message: &message.Message{ID: ids.New(), ConversationID: conv, Seq: 9, SenderID: "alice", Type: message.TypeRecall, Content: content}}
	if err := push(t, r.p, ev); err != nil {
		t.Fatal(err)
	}
	got := r.deliverer.deliveries()
	if len(got) != 1 {
		t.Fatalf("deliveries = %+v", got)
	}
	want := map[string]any{"op": "recalled", "data": map[string]any{"conversation_id": conv, "message_id": "m-old", "seq": float64(9)}}
	if !reflect.DeepEqual(got[0].Frame, want) {
		t.Errorf("frame = %v, want %v", got[0].Frame, want)
	}
	if len(r.writer.tasks(t)) != 0 {
		t.Error("a recall produced offline tasks")
	}
}

func TestReadReceiptGoesOnlyToTheOtherUserOfAOneToOne(t *testing.T) {
	r := newRig(t)
	r.presence.connect("alice", "d", "gw", "c1")
	r.presence.connect("bob", "d", "gw", "c2")
	conv := ids.P2P("alice", "bob")
	if err := push(t, r.p, message.Event{Version: message.EventVersion, Kind: message.EventRead, ConversationID: conv, UserID: "bob", ReadSeq: 5}); err != nil {
		t.Fatal(err)
	}
	got := r.deliverer.deliveries()
	if len(got) != 1 || !reflect.DeepEqual(got[0].Users, []string{"alice"}) {
		t.Fatalf("deliveries = %+v", got)
	}
	want := map[string]any{"op": "receipt", "data": map[string]any{"conversation_id": conv, "user_id": "bob", "read_seq": float64(5)}}
	if !reflect.DeepEqual(got[0].Frame, want) {
		t.Errorf("frame = %v", got[0].Frame)
	}

	g := ids.New()
	r.members.set(g, "alice", "bob")
	r.deliverer.reset()
	if err := push(t, r.p, message.Event{Version: message.EventVersion, Kind: message.EventRead, ConversationID: ids.Group(g), UserID: "bob", ReadSeq: 5}); err != nil {
		t.Fatal(err)
	}
	if got := r.deliverer.deliveries(); len(got) != 0 {
		t.Fatalf("group read sent receipts: %+v", got)
	}
}

// TestRecordsTheDecoderRefusesAreNeitherPushedNorDeadLettered: the push
// consumer skips what message.DecodeRecord refuses (persist dead-letters
// it), even a record with a whole message for online and offline users.
func TestRecordsTheDecoderRefusesAreNeitherPushedNorDeadLettered(t *testing.T) {
	r := newRig(t)
	reg := prometheus.NewRegistry()
	r.p = newPusher(t, pusher.Deps{
		Store: r.store, Members: r.members, Presence: r.presence, Deliverer: r.deliverer,
		Acks: r.acks, Settings: r.settings, Friends: r.friends, Offline: r.writer,
		Notifiers: map[string]pusher.Notifier{pusher.PlatformWebhook: r.notifier},
	}, pusher.Options{DeliverBackoff: time.Millisecond, DeliverAttempts: 3, Registerer: reg})
	a, b, c := "alice", "bob", "carol"
	conv := ids.P2P(a, b)
	r.presence.connect(a, "d", "gw", "c1")
	r.register(t, b, "phone", pusher.PlatformWebhook)
	edited := func(edit func(*message.Event)) kafka.Message {
		ev := textEvent(conv, a, 2, "never", "")
		edit(&ev)
		return record(t, ev)
	}
	keyed := func(key string, m kafka.Message) kafka.Message { m.Key = []byte(key); return m }
	cases := map[string]kafka.Message{
		"not json":                        {Key: []byte(conv), Value: []byte("{nope")},
		"no version":                      edited(func(ev *message.Event) { ev.Version = 0 }),
		"newer version":                   edited(func(ev *message.Event) { ev.Version = message.EventVersion + 1 }),
		"no key":                          keyed("", edited(func(*message.Event) {})),
		"key of another conversation":     keyed(ids.P2P(a, c), edited(func(*message.Event) {})),
		"bad conversation id":             keyed("x:1", edited(func(ev *message.Event) { ev.ConversationID, ev.Message.ConversationID = "x:1", "" })),
		"message without body":            edited(func(ev *message.Event) { ev.Message = nil }),
		"message with seq 0":              edited(func(ev *message.Event) { ev.Message.Seq = 0 }),
		"message with malformed sender":   edited(func(ev *message.Event) { ev.Message.SenderID = "al ice" }),
		"message of another conversation": edited(func(ev *message.Event) { ev.Message.ConversationID = ids.P2P(a, c) }),
		"recall of a later seq": edited(func(ev *message.Event) {
			ev.Kind, ev.RecalledID, ev.RecalledSeq = message.EventRecall, ids.New(), 7
		}),
		"read by a non-participant": edited(func(ev *message.Event) {
			ev.Kind, ev.Message, ev.UserID, ev.ReadSeq = message.EventRead, nil, c, 2
		}),
		"unknown kind": edited(func(ev *message.Event) { ev.Kind = "teleport" }),
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			if err := r.p.HandleMessage(t.Context(), m); err != nil {
				t.Fatalf("err = %v: the push consumer would retry or dead-letter it", err)
			}
			if got := r.deliverer.deliveries(); len(got) != 0 {
				t.Fatalf("refused record delivered: %+v", got)
			}
			if tasks := r.writer.tasks(t); len(tasks) != 0 {
				t.Fatalf("refused record made offline tasks: %+v", tasks)
			}
		})
	}
	if got := counter(t, reg, "beehive_pusher_refused_records_total"); got != float64(len(cases)) {
		t.Fatalf("refused_records_total = %v, want %d", got, len(cases))
	}

	// In a batch, the good records around a refused one are pushed.
	good1, good2 := textEvent(conv, a, 3, "x", ""), textEvent(conv, a, 4, "y", "")
	if err := r.p.HandleBatch(t.Context(), []kafka.Message{record(t, good1), cases["no version"], record(t, good2)}); err != nil {
		t.Fatal(err)
	}
	var seqs []float64
	for _, d := range r.deliverer.deliveries() {
		seqs = append(seqs, d.Frame["data"].(map[string]any)["message"].(map[string]any)["seq"].(float64))
	}
	if !reflect.DeepEqual(seqs, []float64{3, 4}) {
		t.Fatalf("delivered seqs %v, want [3 4]", seqs)
	}
	if tasks := r.writer.tasks(t); len(tasks) != 2 {
		t.Fatalf("offline tasks %+v, want the two good records'", tasks)
	}
}

// counter is the value of the counter named name in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}

func TestAMalformedOfflineTaskIsPoison(t *testing.T) {
	r := newRig(t)
	for name, m := range map[string]kafka.Message{
		"not json":    {Value: []byte("{nope")},
		"without ids": {Value: []byte(`{"user_id":"u"}`)},
	} {
		t.Run(name, func(t *testing.T) {
			if err := r.p.HandleOffline(t.Context(), m); !errors.Is(err, kafkax.ErrPoison) {
				t.Fatalf("err = %v, want ErrPoison", err)
			}
		})
	}
}

func TestMembersLookupFailureRetriesTheRecord(t *testing.T) {
	r := newRig(t)
	g := ids.New()
	r.members.failErr = errs.New(errs.Unavailable, "group service down")
	err := r.p.HandleMessage(t.Context(), record(t, textEvent(ids.Group(g), "m1", 1, "x", "")))
	if err == nil || errors.Is(err, kafkax.ErrPoison) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
}

func TestOfflineTasksGoToUnconnectedUnackedUnmutedDevicesOfRecipients(t *testing.T) {
	r := newRig(t)
	g := ids.New()
	conv := ids.Group(g)
	r.members.set(g, "sender", "off", "online", "acked", "muted", "nodevice")
	r.register(t, "sender", "phone", pusher.PlatformWebhook) // never pushed for own message
	r.register(t, "off", "phone", pusher.PlatformWebhook)
	r.register(t, "off", "tablet", pusher.PlatformFCM)
	r.register(t, "online", "phone", pusher.PlatformAPNs) // this device has a socket
	r.register(t, "online", "ipad", pusher.PlatformAPNs)  // this one does not
	r.presence.connect("online", "phone", "gw", "c1")
	r.register(t, "acked", "phone", pusher.PlatformWebhook)
	r.acks["acked/phone/"+conv] = 4 // acked up to the message's seq
	r.register(t, "muted", "phone", pusher.PlatformWebhook)
	r.settings["muted/"+conv] = true

	ev := textEvent(conv, "sender", 4, "hello there", "")
	if err := r.p.HandleMessage(t.Context(), record(t, ev)); err != nil {
		t.Fatal(err)
	}
	got := map[string]pusher.Task{}
	for _, task := range r.writer.tasks(t) {
		got[task.UserID+"/"+task.DeviceID] = task
	}
	want := []string{"off/phone", "off/tablet", "online/ipad"}
	if len(got) != len(want) {
		t.Fatalf("tasks = %v, want %v", got, want)
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Fatalf("no task for %s; tasks = %v", k, got)
		}
	}
	task := got["off/tablet"]
	wantTask := pusher.Task{UserID: "off", DeviceID: "tablet", Platform: pusher.PlatformFCM, PushToken: "tok-off-tablet",
		MessageID: ev.Message.ID, ConversationID: conv, Seq: 4, SenderID: "sender", Preview: "hello there"}
	if !reflect.DeepEqual(task, wantTask) {
		t.Errorf("task = %+v, want %+v", task, wantTask)
	}
}

func TestADeviceThatAckedAnOlderSeqStillGetsAPush(t *testing.T) {
	r := newRig(t)
	conv := ids.P2P("alice", "bob")
	r.register(t, "bob", "phone", pusher.PlatformWebhook)
	r.acks["bob/phone/"+conv] = 4
	if err := push(t, r.p, textEvent(conv, "alice", 5, "x", "")); err != nil {
		t.Fatal(err)
	}
	if n := len(r.writer.tasks(t)); n != 1 {
		t.Fatalf("tasks = %d, want 1", n)
	}
}

func TestPreviewIsTruncatedAndPlaceholdersForMedia(t *testing.T) {
	r := newRig(t)
	conv := ids.P2P("alice", "bob")
	r.register(t, "bob", "phone", pusher.PlatformWebhook)
	long := ""
	for i := 0; i < 150; i++ {
		long += "é"
	}
	ev := textEvent(conv, "alice", 1, long, "")
	img := textEvent(conv, "alice", 2, "", "")
	img.Message.Type, img.Message.Content = message.TypeImage, json.RawMessage(`{"url":"x"}`)
	for _, e := range []message.Event{ev, img} {
		if err := push(t, r.p, e); err != nil {
			t.Fatal(err)
		}
	}
	tasks := r.writer.tasks(t)
	if len(tasks) != 2 {
		t.Fatalf("tasks = %+v", tasks)
	}
	if want := long[:200] + "…"; tasks[0].Preview != want {
		t.Errorf("preview = %q, want 100 runes and an ellipsis", tasks[0].Preview)
	}
	if tasks[1].Preview != "[image]" {
		t.Errorf("image preview = %q", tasks[1].Preview)
	}
}

func TestOfflineTaskProcessedTwiceNotifiesOnce(t *testing.T) {
	r := newRig(t)
	r.register(t, "bob", "phone", pusher.PlatformWebhook)
	task := pusher.Task{UserID: "bob", DeviceID: "phone", Platform: pusher.PlatformWebhook, PushToken: "stale", MessageID: ids.New(), ConversationID: ids.P2P("alice", "bob"), Seq: 1, SenderID: "alice"}
	m := record(t, task)
	for i := 0; i < 2; i++ {
		if err := r.p.HandleOffline(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.notifier.count(); n != 1 {
		t.Fatalf("notified %d times, want 1", n)
	}
	if tok := r.notifier.tasks[0].PushToken; tok != "tok-bob-phone" {
		t.Errorf("push used token %q, want the current registration's", tok)
	}
	// Another user's device of the same name gets its own push.
	r.register(t, "carol", "phone", pusher.PlatformWebhook)
	task.UserID = "carol"
	if err := r.p.HandleOffline(t.Context(), record(t, task)); err != nil {
		t.Fatal(err)
	}
	if n := r.notifier.count(); n != 2 {
		t.Fatalf("notified %d times, want 2", n)
	}
}

func TestAFailedPushIsRetriedAndNotRecorded(t *testing.T) {
	r := newRig(t)
	r.register(t, "bob", "phone", pusher.PlatformWebhook)
	task := pusher.Task{UserID: "bob", DeviceID: "phone", MessageID: ids.New(), ConversationID: ids.P2P("alice", "bob"), Seq: 1}
	r.notifier.err = errors.New("connection refused")
	if err := r.p.HandleOffline(t.Context(), record(t, task)); err == nil {
		t.Fatal("transient failure was not returned for a retry")
	}
	r.notifier.err = nil
	if err := r.p.HandleOffline(t.Context(), record(t, task)); err != nil {
		t.Fatal(err)
	}
	if n := r.notifier.count(); n != 2 {
		t.Fatalf("notified %d times, want 2 (one failure, one success)", n)
	}
}

func TestAnUnregisteredTokenDropsTheDevice(t *testing.T) {
	r := newRig(t)
	r.register(t, "bob", "phone", pusher.PlatformWebhook)
	r.notifier.err = errors.Join(pusher.ErrUnregistered, errors.New("410"))
	task := pusher.Task{UserID: "bob", DeviceID: "phone", MessageID: ids.New(), ConversationID: ids.P2P("alice", "bob"), Seq: 1}
	if err := r.p.HandleOffline(t.Context(), record(t, task)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.store.GetDevice(t.Context(), "bob", "phone"); ok {
		t.Fatal("device still registered after the platform said the token is gone")
	}
}

func TestAPermanentRejectionIsNotRetried(t *testing.T) {
	r := newRig(t)
	r.register(t, "bob", "phone", pusher.PlatformWebhook)
	r.notifier.err = pusher.Permanent(errors.New("400"))
	task := pusher.Task{UserID: "bob", DeviceID: "phone", MessageID: ids.New(), ConversationID: ids.P2P("alice", "bob"), Seq: 1}
	if err := r.p.HandleOffline(t.Context(), record(t, task)); err != nil {
		t.Fatalf("permanent rejection returned %v; the consumer would retry it", err)
	}
	if _, ok, _ := r.store.GetDevice(t.Context(), "bob", "phone"); !ok {
		t.Fatal("a rejection that is not about the token dropped the device")
	}
}

func TestAnUnregisteredDeviceGetsNoPush(t *testing.T) {
	r := newRig(t)
	r.register(t, "bob", "phone", pusher.PlatformWebhook)
	if err := r.p.UnregisterDevice(t.Context(), "bob", "phone"); err != nil {
		t.Fatal(err)
	}
	task := pusher.Task{UserID: "bob", DeviceID: "phone", MessageID: ids.New(), ConversationID: ids.P2P("alice", "bob"), Seq: 1}
	if err := r.p.HandleOffline(t.Context(), record(t, task)); err != nil {
		t.Fatal(err)
	}
	if n := r.notifier.count(); n != 0 {
		t.Fatalf("notified %d times", n)
	}
}

// typingRecord is a beehive.typing record as the message service writes it.
func typingRecord(t *testing.T, user, conv string, at time.Time) kafka.Message {
	t.Helper()
	v, err := json.Marshal(message.TypingRecord{Version: message.EventVersion, ConversationID: conv, UserID: user, At: at})
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(conv), Value: v}
}

func TestTypingNoticesReachTheOtherParticipantsOnly(t *testing.T) {
	r := newRig(t)
	alice, bob, carol, mallory := ids.New(), ids.New(), ids.New(), ids.New()
	g := ids.New()
	r.members.set(g, alice, bob, carol)
	for _, u := range []string{alice, bob, carol, mallory} {
		r.presence.connect(u, "d", "gw", "c-"+u)
	}
	ctx := context.Background()
	now := time.Now()

	t.Run("1:1 participant reaches the peer only", func(t *testing.T) {
		r.deliverer.reset()
		conv := ids.P2P(alice, bob)
		if err := r.p.HandleTyping(ctx, typingRecord(t, alice, conv, now)); err != nil {
			t.Fatal(err)
		}
		got := r.deliverer.deliveries()
		want := map[string]any{"op": "typing", "data": map[string]any{"conversation_id": conv, "user_id": alice}}
		if len(got) != 1 || !reflect.DeepEqual(got[0].Users, []string{bob}) || !reflect.DeepEqual(got[0].Frame, want) {
			t.Fatalf("deliveries = %+v", got)
		}
	})
	t.Run("group member reaches the other members", func(t *testing.T) {
		r.deliverer.reset()
		if err := r.p.HandleTyping(ctx, typingRecord(t, bob, ids.Group(g), now)); err != nil {
			t.Fatal(err)
		}
		got := r.deliverer.deliveries()
		if len(got) != 1 || len(got[0].Users) != 2 {
			t.Fatalf("deliveries = %+v", got)
		}
	})
	t.Run("a member who left since is dropped", func(t *testing.T) {
		r.deliverer.reset()
		if err := r.p.HandleTyping(ctx, typingRecord(t, mallory, ids.Group(g), now)); err != nil {
			t.Fatalf("a notice of a non-member must be dropped, not retried: %v", err)
		}
		if got := r.deliverer.deliveries(); len(got) != 0 {
			t.Fatalf("delivered %+v", got)
		}
	})
	t.Run("a notice older than its use is dropped", func(t *testing.T) {
		r.deliverer.reset()
		if err := r.p.HandleTyping(ctx, typingRecord(t, alice, ids.P2P(alice, bob), now.Add(-time.Minute))); err != nil {
			t.Fatal(err)
		}
		if got := r.deliverer.deliveries(); len(got) != 0 {
			t.Fatalf("a minute-old notice delivered %+v", got)
		}
	})
	for _, c := range []struct {
		name string
		m    kafka.Message
	}{
		{"outsider of a 1:1", typingRecord(t, mallory, ids.P2P(alice, bob), now)},
		{"malformed conversation id", typingRecord(t, alice, "q:1", now)},
		{"key is not the conversation", kafka.Message{Key: []byte("other"), Value: typingRecord(t, alice, ids.P2P(alice, bob), now).Value}},
		{"not JSON", kafka.Message{Key: []byte(ids.P2P(alice, bob)), Value: []byte("{")}},
	} {
		t.Run(c.name+" is poison", func(t *testing.T) {
			r.deliverer.reset()
			if err := r.p.HandleTyping(ctx, c.m); !errors.Is(err, kafkax.ErrPoison) {
				t.Fatalf("err = %v, want poison", err)
			}
			if got := r.deliverer.deliveries(); len(got) != 0 {
				t.Fatalf("refused typing delivered %+v", got)
			}
		})
	}
}

func TestPresenceChangeReachesOnlineFriends(t *testing.T) {
	r := newRig(t)
	r.friends["alice"] = []string{"bob", "carol"}
	r.presence.connect("bob", "d", "gw", "c1") // carol is offline
	r.presence.connect("dave", "d", "gw", "c2")
	r.p.HandleEvent(t.Context(), events.Event{Type: events.PresenceChanged, UserID: "alice", Data: json.RawMessage(`{"user_id":"alice","online":true}`)})
	got := r.deliverer.deliveries()
	want := map[string]any{"op": "presence", "data": map[string]any{"user_id": "alice", "online": true}}
	if len(got) != 1 || !reflect.DeepEqual(got[0].Users, []string{"bob"}) || !reflect.DeepEqual(got[0].Frame, want) {
		t.Fatalf("deliveries = %+v", got)
	}
}

func TestRegisterDeviceValidation(t *testing.T) {
	r := newRig(t)
	long := make([]byte, 65)
	for i := range long {
		long[i] = 'x'
	}
	bigTok := make([]byte, 4097)
	for i := range bigTok {
		bigTok[i] = 't'
	}
	for _, c := range []struct {
		name  string
		reg   pusher.DeviceRegistration
		field string
	}{
		{"missing device id", pusher.DeviceRegistration{Platform: "fcm", PushToken: "t"}, "device_id"},
		{"device id over 64 bytes", pusher.DeviceRegistration{DeviceID: string(long), Platform: "fcm", PushToken: "t"}, "device_id"},
		{"device id with control character", pusher.DeviceRegistration{DeviceID: "a\nb", Platform: "fcm", PushToken: "t"}, "device_id"},
		{"unknown platform", pusher.DeviceRegistration{DeviceID: "d", Platform: "sms", PushToken: "t"}, "platform"},
		{"missing platform", pusher.DeviceRegistration{DeviceID: "d", PushToken: "t"}, "platform"},
		{"missing token", pusher.DeviceRegistration{DeviceID: "d", Platform: "apns"}, "push_token"},
		{"token over 4096 bytes", pusher.DeviceRegistration{DeviceID: "d", Platform: "apns", PushToken: string(bigTok)}, "push_token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.p.RegisterDevice(t.Context(), "bob", c.reg)
			e := errs.As(err)
			if err == nil || e.Code != errs.InvalidArgument || e.Field != c.field {
				t.Fatalf("err = %v, want invalid_argument on %s", err, c.field)
			}
		})
	}
	d, err := r.p.RegisterDevice(t.Context(), "bob", pusher.DeviceRegistration{DeviceID: string(long[:64]), Platform: "apns", PushToken: string(bigTok[:4096])})
	if err != nil || d.Platform != "apns" || d.UpdatedAt.IsZero() {
		t.Fatalf("limits exactly: %+v, %v", d, err)
	}
}

func TestNewNamesTheMissingRequiredDependency(t *testing.T) {
	r := newRig(t)
	full := pusher.Deps{Store: r.store, Members: r.members, Presence: r.presence, Deliverer: r.deliverer}
	for name, drop := range map[string]func(*pusher.Deps){
		"Deps.Store":     func(d *pusher.Deps) { d.Store = nil },
		"Deps.Members":   func(d *pusher.Deps) { d.Members = nil },
		"Deps.Presence":  func(d *pusher.Deps) { d.Presence = nil },
		"Deps.Deliverer": func(d *pusher.Deps) { d.Deliverer = nil },
	} {
		t.Run(name, func(t *testing.T) {
			deps := full
			drop(&deps)
			if _, err := pusher.New(deps, pusher.Options{}); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want one naming %s", err, name)
			}
		})
	}
	if _, err := pusher.New(full, pusher.Options{}); err != nil {
		t.Fatalf("the required dependencies alone: %v", err)
	}
}

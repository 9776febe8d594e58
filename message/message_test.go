package message_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func TestSendProducesOneEventPerMessageWithSeqFromOne(t *testing.T) {
	e := newEnv(t)
	var sent []message.Message
	for i := 0; i < 3; i++ {
		sent = append(sent, e.sendText(t, e.alice, e.bob, "c"+strconv.Itoa(i), "hello "+strconv.Itoa(i)))
	}
	conv := ids.P2P(e.alice, e.bob)
	for i, m := range sent {
		if m.Seq != int64(i+1) || m.ConversationID != conv || m.ID == "" || m.SenderID != e.alice || m.ToUserID != e.bob {
			t.Fatalf("message %d = %+v", i, m)
		}
		if !m.SentAt.Equal(e.clock.Now()) {
			t.Errorf("sent_at %v, want the injected clock", m.SentAt)
		}
	}
	evs := e.events(t)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for i, ev := range evs {
		if ev.Version != message.EventVersion || ev.Kind != message.EventMessage || ev.Message == nil || ev.Message.Seq != int64(i+1) || ev.Message.ID != sent[i].ID {
			t.Fatalf("event %d = %+v", i, ev)
		}
		var s string
		if err := json.Unmarshal(ev.Message.Content, &s); err != nil || s != "hello "+strconv.Itoa(i) {
			t.Errorf("event %d content %s", i, ev.Message.Content)
		}
	}
}

func TestRetriedClientMsgIDReturnsOriginalAndProducesNothing(t *testing.T) {
	e := newEnv(t)
	first := e.sendText(t, e.alice, e.bob, "same", "hi")
	e.clock.Advance(time.Second)
	again := e.sendText(t, e.alice, e.bob, "same", "hi (edited retry)")
	if again.ID != first.ID || again.Seq != first.Seq || string(again.Content) != string(first.Content) {
		t.Fatalf("retry returned %+v, want the original %+v", again, first)
	}
	// The same client id from another sender is another message.
	other := e.sendText(t, e.bob, e.alice, "same", "mine")
	if other.ID == first.ID || other.Seq != 2 {
		t.Fatalf("bob's message %+v", other)
	}
	if n := len(e.events(t)); n != 2 {
		t.Fatalf("%d events in the topic, want 2", n)
	}
}

func TestConcurrentRetriesOfOneSendProduceOneMessage(t *testing.T) {
	e := newEnv(t)
	const n = 8
	var wg sync.WaitGroup
	got := make([]message.Message, n)
	errsOut := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got[i], errsOut[i] = e.svc.SendMessage(context.Background(), message.SendRequest{SenderID: e.alice, ToUserID: e.bob, ClientMsgID: "dup", Type: message.TypeText, Content: textContent("x")})
		}(i)
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		// A retry may give up waiting (conflict) but never gets another message.
		if errsOut[i] != nil {
			if !errs.HasCode(errsOut[i], errs.Conflict) {
				t.Fatalf("send %d: %v", i, errsOut[i])
			}
			continue
		}
		if got[i].ID != got[0].ID && errsOut[0] == nil {
			t.Fatalf("send %d got message %s, send 0 got %s", i, got[i].ID, got[0].ID)
		}
	}
	if evs := e.events(t); len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
}

func TestConcurrentSendsInOneConversationGetIncreasingSeqInPartitionOrder(t *testing.T) {
	e := newEnv(t)
	const n = 60
	var wg sync.WaitGroup
	seqs := make(chan int64, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			from, to := e.alice, e.bob
			if i%2 == 1 {
				from, to = e.bob, e.alice
			}
			m, err := e.svc.SendMessage(context.Background(), message.SendRequest{SenderID: from, ToUserID: to, ClientMsgID: "m" + strconv.Itoa(i), Type: message.TypeText, Content: textContent("x")})
			if err != nil {
				t.Error(err)
				return
			}
			seqs <- m.Seq
		}(i)
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d handed out twice", s)
		}
		seen[s] = true
	}
	evs := e.events(t)
	if len(evs) != n {
		t.Fatalf("%d events, want %d", len(evs), n)
	}
	for i, ev := range evs {
		if ev.Message.Seq != int64(i+1) {
			t.Fatalf("partition position %d holds seq %d: partition order differs from seq order", i, ev.Message.Seq)
		}
	}
}

func TestPipelinedSendsOfOneSenderGetIncreasingSeq(t *testing.T) {
	e := newEnv(t)
	var last int64
	for i := 0; i < 20; i++ {
		m := e.sendText(t, e.alice, e.bob, "p"+strconv.Itoa(i), "x")
		if m.Seq <= last {
			t.Fatalf("seq %d after %d", m.Seq, last)
		}
		last = m.Seq
	}
}

func TestNotPermittedSendsAreRefused(t *testing.T) {
	e := newEnv(t)
	e.relations.blocked[[2]string{e.alice, e.bob}] = true
	e.groups.muted[e.carol] = true
	outsider := ids.New()
	cases := []struct {
		name string
		send func() error
		code errs.Code
	}{
		{"blocked 1:1", func() error {
			_, err := e.svc.SendMessage(context.Background(), message.SendRequest{SenderID: e.alice, ToUserID: e.bob, ClientMsgID: "a", Type: "text", Content: textContent("x")})
			return err
		}, errs.PermissionDenied},
		{"muted member", func() error {
			_, err := e.svc.SendGroupMessage(context.Background(), message.SendRequest{SenderID: e.carol, GroupID: e.group, ClientMsgID: "b", Type: "text", Content: textContent("x")})
			return err
		}, errs.PermissionDenied},
		{"not a member", func() error {
			_, err := e.svc.SendGroupMessage(context.Background(), message.SendRequest{SenderID: outsider, GroupID: e.group, ClientMsgID: "c", Type: "text", Content: textContent("x")})
			return err
		}, errs.PermissionDenied},
		{"unknown group", func() error {
			_, err := e.svc.SendGroupMessage(context.Background(), message.SendRequest{SenderID: e.alice, GroupID: ids.New(), ClientMsgID: "d", Type: "text", Content: textContent("x")})
			return err
		}, errs.NotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.send(); !errs.HasCode(err, c.code) {
				t.Fatalf("got %v, want %s", err, c.code)
			}
		})
	}
	e.relations.err = errors.New("connection refused")
	if _, err := e.svc.SendMessage(context.Background(), message.SendRequest{SenderID: e.bob, ToUserID: e.alice, ClientMsgID: "e", Type: "text", Content: textContent("x")}); !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("user service down: got %v, want unavailable", err)
	}
	if n := len(e.events(t)); n != 0 {
		t.Fatalf("%d events produced by refused sends", n)
	}
}

func TestMentionAllOnlyForOwnerAndAdmins(t *testing.T) {
	e := newEnv(t)
	send := func(from, cmid string) error {
		_, err := e.svc.SendGroupMessage(context.Background(), message.SendRequest{SenderID: from, GroupID: e.group, ClientMsgID: cmid, Type: "text", Content: textContent("@all"), Mentions: []string{"all", e.carol, e.carol}})
		return err
	}
	if err := send(e.carol, "m1"); !errs.HasCode(err, errs.PermissionDenied) {
		t.Fatalf("member mentioning all: %v", err)
	}
	for _, u := range []string{e.alice, e.bob} {
		if err := send(u, "m-"+u); err != nil {
			t.Fatalf("owner/admin mentioning all: %v", err)
		}
	}
	evs := e.events(t)
	if len(evs) != 2 || len(evs[0].Message.Mentions) != 2 || evs[0].Message.GroupID != e.group || evs[0].ConversationID != ids.Group(e.group) {
		t.Fatalf("events %+v", evs)
	}
}

func TestSendValidation(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("a", message.DefaultTextLimit+1)
	big := `{"k":"` + strings.Repeat("a", message.DefaultObjectLimit) + `"}`
	base := func() message.SendRequest {
		return message.SendRequest{SenderID: e.alice, ToUserID: e.bob, ClientMsgID: "v", Type: "text", Content: textContent("ok")}
	}
	cases := []struct {
		name  string
		mod   func(*message.SendRequest)
		field string
		code  errs.Code
	}{
		{"no recipient", func(r *message.SendRequest) { r.ToUserID = "" }, "to_user_id", errs.InvalidArgument},
		{"bad recipient", func(r *message.SendRequest) { r.ToUserID = "a/b" }, "to_user_id", errs.InvalidArgument},
		{"to self", func(r *message.SendRequest) { r.ToUserID = e.alice }, "to_user_id", errs.InvalidArgument},
		{"both recipient kinds", func(r *message.SendRequest) { r.GroupID = e.group }, "group_id", errs.InvalidArgument},
		{"no client id", func(r *message.SendRequest) { r.ClientMsgID = "" }, "client_msg_id", errs.InvalidArgument},
		{"client id too long", func(r *message.SendRequest) { r.ClientMsgID = strings.Repeat("x", 65) }, "client_msg_id", errs.InvalidArgument},
		{"no type", func(r *message.SendRequest) { r.Type = "" }, "type", errs.InvalidArgument},
		{"unknown type", func(r *message.SendRequest) { r.Type = "video" }, "type", errs.InvalidArgument},
		{"recall type from client", func(r *message.SendRequest) { r.Type = "recall" }, "type", errs.InvalidArgument},
		{"no content", func(r *message.SendRequest) { r.Content = nil }, "content", errs.InvalidArgument},
		{"null content", func(r *message.SendRequest) { r.Content = json.RawMessage("null") }, "content", errs.InvalidArgument},
		{"text as object", func(r *message.SendRequest) { r.Content = json.RawMessage(`{"a":1}`) }, "content", errs.InvalidArgument},
		{"empty text", func(r *message.SendRequest) { r.Content = textContent("") }, "content", errs.InvalidArgument},
		{"blank text", func(r *message.SendRequest) { r.Content = textContent(" \n\t") }, "content", errs.InvalidArgument},
		{"invalid utf-8", func(r *message.SendRequest) { r.Content = json.RawMessage("\"\xff\xfe\"") }, "content", errs.InvalidArgument},
		{"text too long", func(r *message.SendRequest) { r.Content = textContent(long) }, "content", errs.TooLarge},
		{"image as string", func(r *message.SendRequest) { r.Type = "image"; r.Content = textContent("x") }, "content", errs.InvalidArgument},
		{"broken json object", func(r *message.SendRequest) { r.Type = "custom"; r.Content = json.RawMessage(`{"a":`) }, "content", errs.InvalidArgument},
		{"object too large", func(r *message.SendRequest) { r.Type = "file"; r.Content = json.RawMessage(big) }, "content", errs.TooLarge},
		{"bad mention", func(r *message.SendRequest) { r.Mentions = []string{"not an id"} }, "mentions", errs.InvalidArgument},
		{"all in 1:1", func(r *message.SendRequest) { r.Mentions = []string{"all"} }, "mentions", errs.InvalidArgument},
		{"too many mentions", func(r *message.SendRequest) {
			for i := 0; i <= message.DefaultMaxMentions; i++ {
				r.Mentions = append(r.Mentions, ids.New())
			}
		}, "mentions", errs.InvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := base()
			c.mod(&r)
			_, err := e.svc.SendMessage(context.Background(), r)
			var ce *errs.Error
			if !errors.As(err, &ce) || ce.Code != c.code || ce.Field != c.field {
				t.Fatalf("got %v, want %s naming %s", err, c.code, c.field)
			}
		})
	}
	t.Run("group without group id", func(t *testing.T) {
		r := base()
		r.ToUserID = ""
		if _, err := e.svc.SendGroupMessage(context.Background(), r); !errs.HasCode(err, errs.InvalidArgument) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("valid kinds are accepted and normalised", func(t *testing.T) {
		r := base()
		r.ClientMsgID = "img"
		r.Type = "image"
		r.Content = json.RawMessage("{ \"url\" : \"https://x/y.png\" }")
		m, err := e.svc.SendMessage(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Content) != `{"url":"https://x/y.png"}` {
			t.Errorf("content %s not compacted", m.Content)
		}
		r.ClientMsgID = "txt"
		r.Type = "text"
		r.Content = json.RawMessage(`"a<b> \u00e9"`)
		m, err = e.svc.SendMessage(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Content) != `"a<b> é"` || m.Mentions == nil {
			t.Errorf("text content %s mentions %v", m.Content, m.Mentions)
		}
	})
	if n := len(e.events(t)); n != 2 {
		t.Fatalf("%d events, want only the 2 valid sends", n)
	}
}

func TestFilterIsAppliedToTextContent(t *testing.T) {
	words := []string{"darn", "混蛋"}
	t.Run("mask", func(t *testing.T) {
		e := newEnv(t, func(o *message.Options) { o.Filter = message.NewFilter(words, message.FilterMask) })
		m := e.sendText(t, e.alice, e.bob, "f1", "DARN you 混蛋!")
		if string(m.Content) != `"**** you **!"` {
			t.Fatalf("content %s", m.Content)
		}
	})
	t.Run("reject", func(t *testing.T) {
		e := newEnv(t, func(o *message.Options) { o.Filter = message.NewFilter(words, message.FilterReject) })
		_, err := e.svc.SendMessage(context.Background(), message.SendRequest{SenderID: e.alice, ToUserID: e.bob, ClientMsgID: "f2", Type: "text", Content: textContent("oh darn")})
		var ce *errs.Error
		if !errors.As(err, &ce) || ce.Code != errs.InvalidArgument || ce.Message != "content contains a forbidden word" {
			t.Fatalf("got %v", err)
		}
		if n := len(e.events(t)); n != 0 {
			t.Fatalf("%d events", n)
		}
	})
}

func TestRecall(t *testing.T) {
	e := newEnv(t)
	sendGroup := func(from, cmid string) message.Message {
		m, err := e.svc.SendGroupMessage(context.Background(), message.SendRequest{SenderID: from, GroupID: e.group, ClientMsgID: cmid, Type: "text", Content: textContent("x")})
		if err != nil {
			t.Fatal(err)
		}
		e.reader.put(m)
		return m
	}
	p2p := e.sendText(t, e.alice, e.bob, "r1", "oops")
	e.reader.put(p2p)

	t.Run("the recipient may not recall", func(t *testing.T) {
		if _, err := e.svc.Recall(context.Background(), e.bob, p2p.ID); !errs.HasCode(err, errs.PermissionDenied) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("an outsider may not recall", func(t *testing.T) {
		if _, err := e.svc.Recall(context.Background(), e.carol, p2p.ID); !errs.HasCode(err, errs.PermissionDenied) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unknown message", func(t *testing.T) {
		if _, err := e.svc.Recall(context.Background(), e.alice, ids.New()); !errs.HasCode(err, errs.NotFound) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("sender within the window, once", func(t *testing.T) {
		e.clock.Advance(message.DefaultRecallWindow) // exactly at the edge: still allowed
		rc, err := e.svc.Recall(context.Background(), e.alice, p2p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var c message.RecallContent
		if rc.Type != message.TypeRecall || rc.Seq != p2p.Seq+1 || rc.ConversationID != p2p.ConversationID || json.Unmarshal(rc.Content, &c) != nil || c.MessageID != p2p.ID {
			t.Fatalf("recall entry %+v", rc)
		}
		if _, err := e.svc.Recall(context.Background(), e.alice, p2p.ID); !errs.HasCode(err, errs.Conflict) {
			t.Fatalf("second recall: %v, want conflict", err)
		}
	})
	t.Run("sender after the window", func(t *testing.T) {
		m := e.sendText(t, e.alice, e.bob, "r2", "late")
		e.reader.put(m)
		e.clock.Advance(message.DefaultRecallWindow + time.Millisecond)
		if _, err := e.svc.Recall(context.Background(), e.alice, m.ID); !errs.HasCode(err, errs.PermissionDenied) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("group admin any time, member only own", func(t *testing.T) {
		m := sendGroup(e.carol, "g1")
		e.clock.Advance(24 * time.Hour)
		if _, err := e.svc.Recall(context.Background(), e.carol, m.ID); !errs.HasCode(err, errs.PermissionDenied) {
			t.Fatalf("member after window: %v", err)
		}
		rc, err := e.svc.Recall(context.Background(), e.bob, m.ID)
		if err != nil {
			t.Fatalf("admin recall: %v", err)
		}
		if rc.GroupID != e.group || rc.SenderID != e.bob {
			t.Fatalf("recall entry %+v", rc)
		}
		own := sendGroup(e.alice, "g2")
		if _, err := e.svc.Recall(context.Background(), e.carol, own.ID); !errs.HasCode(err, errs.PermissionDenied) {
			t.Fatalf("member recalling the owner's message: %v", err)
		}
	})
	t.Run("already recalled in the store", func(t *testing.T) {
		m := e.sendText(t, e.alice, e.bob, "r3", "x")
		m.Recalled = true
		e.reader.put(m)
		if _, err := e.svc.Recall(context.Background(), e.alice, m.ID); !errs.HasCode(err, errs.Conflict) {
			t.Fatalf("got %v", err)
		}
	})

	var recalls []message.Event
	for _, ev := range e.events(t) {
		if ev.Kind == message.EventRecall {
			recalls = append(recalls, ev)
		}
	}
	// Partitions are read one after the other: find the 1:1 recall by id.
	found := false
	for _, ev := range recalls {
		if ev.RecalledID == p2p.ID {
			found = ev.RecalledSeq == p2p.Seq && ev.Message.Type == message.TypeRecall && ev.Message.Seq == p2p.Seq+1
		}
	}
	if len(recalls) != 2 || !found {
		t.Fatalf("recall events %+v", recalls)
	}
}

func TestMarkAsRead(t *testing.T) {
	e := newEnv(t)
	m := e.sendText(t, e.alice, e.bob, "x1", "hi")
	ctx := context.Background()
	cases := []struct {
		name string
		user string
		conv string
		seq  int64
		code errs.Code
	}{
		{"bad conversation id", e.bob, "x:y", 1, errs.InvalidArgument},
		{"seq zero", e.bob, m.ConversationID, 0, errs.InvalidArgument},
		{"seq beyond the last", e.bob, m.ConversationID, 2, errs.InvalidArgument},
		{"not a participant", e.carol, m.ConversationID, 1, errs.PermissionDenied},
		{"not a group member", ids.New(), ids.Group(e.group), 1, errs.PermissionDenied},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := e.svc.MarkAsRead(ctx, c.user, c.conv, c.seq); !errs.HasCode(err, c.code) {
				t.Fatalf("got %v, want %s", err, c.code)
			}
		})
	}
	if err := e.svc.MarkAsRead(ctx, e.bob, m.ConversationID, 1); err != nil {
		t.Fatal(err)
	}
	evs := e.events(t)
	if len(evs) != 2 || evs[1].Kind != message.EventRead || evs[1].UserID != e.bob || evs[1].ReadSeq != 1 || evs[1].Message != nil {
		t.Fatalf("events %+v", evs)
	}
	if last, err := e.svc.LastSeq(ctx, m.ConversationID); err != nil || last != 1 {
		t.Fatalf("LastSeq = %d, %v", last, err)
	}
	if last, err := e.svc.LastSeq(ctx, ids.Group(e.group)); err != nil || last != 0 {
		t.Fatalf("LastSeq of an empty conversation = %d, %v", last, err)
	}
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	db := testinfra.OpenPebble(t, t.TempDir())
	t.Cleanup(func() { _ = db.Close() })
	full := message.Deps{
		Relations: &relations{blocked: map[[2]string]bool{}}, Groups: &groups{}, Reader: &reader{msgs: map[string]message.Message{}},
		Seqs: message.NewLeasedAllocator(message.NewPebbleSeqLeaser(db), 0), Dedup: message.NewPebbleDedupStore(db), Producer: &flakyProducer{}, Signals: &flakyProducer{},
	}
	for name, drop := range map[string]func(*message.Deps){
		"Deps.Relations": func(d *message.Deps) { d.Relations = nil },
		"Deps.Groups":    func(d *message.Deps) { d.Groups = nil },
		"Deps.Reader":    func(d *message.Deps) { d.Reader = nil },
		"Deps.Seqs":      func(d *message.Deps) { d.Seqs = nil },
		"Deps.Dedup":     func(d *message.Deps) { d.Dedup = nil },
		"Deps.Producer":  func(d *message.Deps) { d.Producer = nil },
		"Deps.Signals":   func(d *message.Deps) { d.Signals = nil },
	} {
		t.Run(name, func(t *testing.T) {
			deps := full
			drop(&deps)
			if _, err := message.New(deps, message.Options{}); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want one naming %s", err, name)
			}
		})
	}
}

// A typing notice goes out only for someone who may message the
// conversation, as a beehive.typing record, never into history.
func TestTypingIsCheckedLikeASendAndNeverStored(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	outsider := ids.New()
	e.relations.blocked[[2]string{e.carol, e.alice}] = true // alice blocked carol
	for _, c := range []struct {
		name, user, conv string
		code             errs.Code
	}{
		{"1:1 participant", e.alice, ids.P2P(e.alice, e.bob), ""},
		{"group member", e.carol, ids.Group(e.group), ""},
		{"someone the peer blocked", e.carol, ids.P2P(e.alice, e.carol), errs.PermissionDenied},
		{"outsider of a 1:1", outsider, ids.P2P(e.alice, e.bob), errs.PermissionDenied},
		{"non-member of a group", outsider, ids.Group(e.group), errs.PermissionDenied},
		{"malformed conversation", e.alice, "q:1", errs.InvalidArgument},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := e.svc.Typing(ctx, c.user, c.conv)
			if errs.CodeOf(err) != c.code && !(c.code == "" && err == nil) {
				t.Fatalf("Typing: %v, want %q", err, c.code)
			}
		})
	}
	got := e.typings(t)
	if len(got) != 2 {
		t.Fatalf("typing records %+v, want the two allowed", got)
	}
	for _, r := range got {
		if r.UserID == e.carol && r.ConversationID != ids.Group(e.group) {
			t.Fatalf("a refused notice was written: %+v", r)
		}
	}
	if evs := e.events(t); len(evs) != 0 {
		t.Fatalf("typing wrote %d records to beehive.messages", len(evs))
	}
}

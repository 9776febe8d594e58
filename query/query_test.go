package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/kafkax"
)

// fakeGroups is the group service as the read side sees it.
type fakeGroups struct {
	mu      sync.Mutex
	members map[string]map[string]int64 // group -> user -> joined seq
}

func newGroups() *fakeGroups { return &fakeGroups{members: map[string]map[string]int64{}} }

func (g *fakeGroups) join(gid, uid string, seq int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.members[gid] == nil {
		g.members[gid] = map[string]int64{}
	}
	g.members[gid][uid] = seq
}

func (g *fakeGroups) leave(gid, uid string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.members[gid], uid)
}

func (g *fakeGroups) Membership(_ context.Context, gid, uid string) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if j, ok := g.members[gid][uid]; ok {
		return j, nil
	}
	return 0, errs.New(errs.PermissionDenied, "not a member")
}

func (g *fakeGroups) ListUserGroups(_ context.Context, uid string) ([]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for gid, ms := range g.members {
		if _, ok := ms[uid]; ok {
			out = append(out, gid)
		}
	}
	return out, nil
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type env struct {
	t       *testing.T
	store   *query.PebbleStore
	groups  *fakeGroups
	svc     query.Service
	persist *query.Persister
}

func newEnv(t *testing.T) *env {
	store := openPebble(t)
	groups := newGroups()
	return &env{t: t, store: store, groups: groups, svc: newReadSide(t, query.Deps{Store: store, Groups: groups}, query.Options{}), persist: query.NewPersister(store, nil)}
}

func newReadSide(t *testing.T, deps query.Deps, opts query.Options) *query.ReadSide {
	t.Helper()
	svc, err := query.New(deps, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	for want, deps := range map[string]query.Deps{
		"Deps.Store":  {Groups: newGroups()},
		"Deps.Groups": {Store: openPebble(t)},
	} {
		t.Run(want, func(t *testing.T) {
			if _, err := query.New(deps, query.Options{}); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want one naming %s", err, want)
			}
		})
	}
}

func users(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = ids.New()
	}
	return out
}

func msgEvent(conv, sender string, seq int64) message.Event {
	m := &message.Message{ID: ids.New(), ConversationID: conv, Seq: seq, SenderID: sender, Type: message.TypeText,
		Content: json.RawMessage(fmt.Sprintf(`"m%d"`, seq)), Mentions: []string{}, SentAt: t0.Add(time.Duration(seq) * time.Second)}
	return message.Event{Version: message.EventVersion, Kind: message.EventMessage, ConversationID: conv, Message: m, At: m.SentAt}
}

func recallEvent(conv, sender string, seq int64, of message.Event) message.Event {
	m := &message.Message{ID: ids.New(), ConversationID: conv, Seq: seq, SenderID: sender, Type: message.TypeRecall,
		Content: json.RawMessage(`{"message_id":"` + of.Message.ID + `"}`), Mentions: []string{}, SentAt: t0.Add(time.Duration(seq) * time.Second)}
	return message.Event{Version: message.EventVersion, Kind: message.EventRecall, ConversationID: conv, Message: m,
		RecalledID: of.Message.ID, RecalledSeq: of.Message.Seq, At: m.SentAt}
}

func readEvent(conv, user string, seq int64) message.Event {
	return message.Event{Version: message.EventVersion, Kind: message.EventRead, ConversationID: conv, UserID: user, ReadSeq: seq, At: t0}
}

func records(t *testing.T, evs ...message.Event) []kafka.Message {
	t.Helper()
	out := make([]kafka.Message, 0, len(evs))
	for i, ev := range evs {
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kafka.Message{Key: []byte(ev.ConversationID), Value: raw, Offset: int64(i)})
	}
	return out
}

func (e *env) apply(evs ...message.Event) {
	e.t.Helper()
	if err := e.persist.Handle(context.Background(), records(e.t, evs...)); err != nil {
		e.t.Fatal(err)
	}
}

func seqsOf(ms []message.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func eqSeqs(a, b []int64) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func ptr[T any](v T) *T { return &v }

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, code errs.Code, field string) {
	t.Helper()
	e := errs.As(err)
	if err == nil || e.Code != code || (field != "" && e.Field != field) {
		t.Fatalf("err = %v (field %q), want %s on %q", err, errs.As(err).Field, code, field)
	}
}

func TestPersistingTheSameBatchTwiceChangesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := users(3)
	a, b, c := u[0], u[1], u[2]
	conv := ids.P2P(a, b)
	gid := ids.New()
	gconv := ids.Group(gid)
	e.groups.join(gid, a, 0)
	e.groups.join(gid, c, 0)
	m1, m2 := msgEvent(conv, a, 1), msgEvent(conv, b, 2)
	batch := []message.Event{m1, m2, recallEvent(conv, a, 3, m1), readEvent(conv, b, 3),
		msgEvent(gconv, a, 1), msgEvent(gconv, c, 2), readEvent(gconv, a, 2)}
	snapshot := func() string {
		var parts []any
		for _, uid := range []string{a, b, c} {
			page, err := e.svc.Conversations(ctx, uid, "", 0)
			mustNil(t, err)
			unread, err := e.svc.Unread(ctx, uid)
			mustNil(t, err)
			parts = append(parts, page, unread)
		}
		h1, err := e.svc.History(ctx, a, conv, nil, nil, 0)
		mustNil(t, err)
		h2, err := e.svc.History(ctx, c, gconv, nil, nil, 0)
		mustNil(t, err)
		raw, err := json.Marshal(append(parts, h1, h2))
		mustNil(t, err)
		return string(raw)
	}
	e.apply(batch...)
	first := snapshot()
	e.apply(batch...)
	if again := snapshot(); again != first {
		t.Fatalf("re-applying the batch changed the read side:\n%s\n%s", first, again)
	}
	// And a replay of a prefix (a crash before the commit) too.
	e.apply(batch[:2]...)
	if again := snapshot(); again != first {
		t.Fatalf("re-applying a prefix changed the read side:\n%s\n%s", first, again)
	}
	h, err := e.svc.History(ctx, b, conv, nil, nil, 0)
	mustNil(t, err)
	if !eqSeqs(seqsOf(h.Messages), []int64{1, 2, 3}) {
		t.Fatalf("history = %v", seqsOf(h.Messages))
	}
}

func TestRecallKeepsTheRowWithoutContentAndStoresTheRecallEntry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := users(2)
	conv := ids.P2P(u[0], u[1])
	m1, m2 := msgEvent(conv, u[0], 1), msgEvent(conv, u[1], 2)
	rc := recallEvent(conv, u[0], 3, m1)
	e.apply(m1, m2)
	e.apply(rc)
	h, err := e.svc.History(ctx, u[1], conv, nil, nil, 0)
	mustNil(t, err)
	if len(h.Messages) != 3 {
		t.Fatalf("history = %+v", h.Messages)
	}
	got := h.Messages[0]
	if got.ID != m1.Message.ID || !got.Recalled || got.Content != nil || got.SenderID != u[0] {
		t.Fatalf("recalled message = %+v", got)
	}
	if h.Messages[1].Recalled || string(h.Messages[1].Content) != `"m2"` {
		t.Fatalf("untouched message = %+v", h.Messages[1])
	}
	entry := h.Messages[2]
	if entry.Type != message.TypeRecall || entry.Seq != 3 || string(entry.Content) != `{"message_id":"`+m1.Message.ID+`"}` {
		t.Fatalf("recall entry = %+v", entry)
	}
	byID, err := e.svc.GetMessage(ctx, m1.Message.ID)
	mustNil(t, err)
	if !byID.Recalled || byID.Content != nil || byID.Seq != 1 {
		t.Fatalf("GetMessage = %+v", byID)
	}
	conv1, err := e.svc.Conversation(ctx, u[1], conv)
	mustNil(t, err)
	if conv1.LastSeq != 3 || conv1.LastMessage == nil || conv1.LastMessage.Type != message.TypeRecall {
		t.Fatalf("conversation after recall = %+v", conv1)
	}
	_, err = e.svc.GetMessage(ctx, ids.New())
	wantCode(t, err, errs.NotFound, "")
	_, err = e.svc.GetMessage(ctx, "no/such")
	wantCode(t, err, errs.InvalidArgument, "message_id")
}

func TestReadSeqNeverMovesBackwardsAndSendingMovesTheSendersReadSeq(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := users(2)
	a, b := u[0], u[1]
	conv := ids.P2P(a, b)
	e.apply(msgEvent(conv, a, 1), msgEvent(conv, a, 2), msgEvent(conv, a, 3), msgEvent(conv, a, 4), msgEvent(conv, a, 5))
	e.apply(readEvent(conv, b, 4))
	e.apply(readEvent(conv, b, 2))
	cb, err := e.svc.Conversation(ctx, b, conv)
	mustNil(t, err)
	if cb.ReadSeq != 4 || cb.Unread != 1 || cb.LastSeq != 5 || cb.PeerID != a || cb.Type != query.TypeP2P {
		t.Fatalf("b's conversation = %+v", cb)
	}
	ca, err := e.svc.Conversation(ctx, a, conv)
	mustNil(t, err)
	if ca.ReadSeq != 5 || ca.Unread != 0 || ca.PeerID != b {
		t.Fatalf("sender's conversation = %+v", ca)
	}
	// b answers: b has read everything up to its own message.
	e.apply(msgEvent(conv, b, 6))
	cb, err = e.svc.Conversation(ctx, b, conv)
	mustNil(t, err)
	if cb.ReadSeq != 6 || cb.Unread != 0 {
		t.Fatalf("b after sending = %+v", cb)
	}
}

func TestUnreadCountsForOneToOneAndGroup(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := users(3)
	a, b, c := u[0], u[1], u[2]
	conv := ids.P2P(a, b)
	gid := ids.New()
	gconv := ids.Group(gid)
	e.groups.join(gid, a, 0)
	e.groups.join(gid, b, 0)
	e.apply(msgEvent(conv, a, 1), msgEvent(conv, a, 2), msgEvent(conv, a, 3), readEvent(conv, b, 1))
	e.apply(msgEvent(gconv, a, 1), msgEvent(gconv, b, 2))
	e.groups.join(gid, c, 2) // c joins after seq 2
	e.apply(msgEvent(gconv, a, 3), msgEvent(gconv, a, 4), msgEvent(gconv, b, 5))

	for _, tc := range []struct {
		name  string
		user  string
		total int64
		per   map[string]int64
	}{
		{"a: others' group message after its own", a, 1, map[string]int64{gconv: 1}},
		{"b: its own group message was last, so only the 1:1", b, 2, map[string]int64{conv: 2}},
		{"c: only what came after joining", c, 3, map[string]int64{gconv: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.svc.Unread(ctx, tc.user)
			mustNil(t, err)
			per := map[string]int64{}
			for _, cu := range got.Conversations {
				per[cu.ConversationID] = cu.Unread
			}
			if got.Total != tc.total || fmt.Sprint(per) != fmt.Sprint(tc.per) {
				t.Fatalf("unread = %+v, want total %d %v", got, tc.total, tc.per)
			}
		})
	}
	gc, err := e.svc.Conversation(ctx, c, gconv)
	mustNil(t, err)
	if gc.Type != query.TypeGroup || gc.GroupID != gid || gc.ReadSeq != 2 || gc.LastSeq != 5 || gc.Unread != 3 || gc.LastMessage == nil {
		t.Fatalf("c's group conversation = %+v", gc)
	}
	e.apply(readEvent(gconv, c, 4))
	got, err := e.svc.Unread(ctx, c)
	mustNil(t, err)
	if got.Total != 1 {
		t.Fatalf("c after reading to 4: %+v", got)
	}
}

func TestHistoryPagesAndPermissions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := users(4)
	a, b, c, d := u[0], u[1], u[2], u[3]
	conv := ids.P2P(a, b)
	var evs []message.Event
	for seq := int64(1); seq <= 7; seq++ {
		evs = append(evs, msgEvent(conv, a, seq))
	}
	e.apply(evs...)
	for _, tc := range []struct {
		name          string
		before, after *int64
		limit         int
		want          []int64
		more          bool
	}{
		{"newest page", nil, nil, 3, []int64{5, 6, 7}, true},
		{"everything", nil, nil, 0, []int64{1, 2, 3, 4, 5, 6, 7}, false},
		{"before", ptr[int64](5), nil, 3, []int64{2, 3, 4}, true},
		{"before, last page", ptr[int64](3), nil, 3, []int64{1, 2}, false},
		{"after", nil, ptr[int64](2), 3, []int64{3, 4, 5}, true},
		{"after, last page", nil, ptr[int64](4), 3, []int64{5, 6, 7}, false},
		{"after zero is from the start", nil, ptr[int64](0), 2, []int64{1, 2}, true},
		{"before one is empty", ptr[int64](1), nil, 2, []int64{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := e.svc.History(ctx, b, conv, tc.before, tc.after, tc.limit)
			mustNil(t, err)
			if !eqSeqs(seqsOf(h.Messages), tc.want) || h.HasMore != tc.more {
				t.Fatalf("page = %v more %v, want %v more %v", seqsOf(h.Messages), h.HasMore, tc.want, tc.more)
			}
		})
	}

	gid := ids.New()
	gconv := ids.Group(gid)
	e.groups.join(gid, a, 0)
	evs = nil
	for seq := int64(1); seq <= 6; seq++ {
		evs = append(evs, msgEvent(gconv, a, seq))
	}
	e.apply(evs...)
	e.groups.join(gid, c, 4)
	h, err := e.svc.History(ctx, c, gconv, nil, nil, 0)
	mustNil(t, err)
	if !eqSeqs(seqsOf(h.Messages), []int64{5, 6}) || h.HasMore {
		t.Fatalf("late member sees %v more %v", seqsOf(h.Messages), h.HasMore)
	}
	h, err = e.svc.History(ctx, c, gconv, nil, ptr[int64](0), 0)
	mustNil(t, err)
	if !eqSeqs(seqsOf(h.Messages), []int64{5, 6}) {
		t.Fatalf("late member from start sees %v", seqsOf(h.Messages))
	}
	h, err = e.svc.History(ctx, c, gconv, ptr[int64](6), nil, 0)
	mustNil(t, err)
	if !eqSeqs(seqsOf(h.Messages), []int64{5}) || h.HasMore {
		t.Fatalf("late member before 6 sees %v more %v", seqsOf(h.Messages), h.HasMore)
	}

	_, err = e.svc.History(ctx, d, gconv, nil, nil, 0)
	wantCode(t, err, errs.PermissionDenied, "")
	_, err = e.svc.History(ctx, c, conv, nil, nil, 0)
	wantCode(t, err, errs.PermissionDenied, "")
	e.groups.leave(gid, c)
	_, err = e.svc.History(ctx, c, gconv, nil, nil, 0)
	wantCode(t, err, errs.PermissionDenied, "")

	for _, tc := range []struct {
		name          string
		conv          string
		before, after *int64
		limit         int
		field         string
	}{
		{"malformed id", "x:1", nil, nil, 0, "conversation_id"},
		{"unsorted p2p id", "p:" + b + ":" + a, nil, nil, 0, "conversation_id"},
		{"both bounds", conv, ptr[int64](3), ptr[int64](1), 0, "before_seq"},
		{"negative before", conv, ptr[int64](-1), nil, 0, "before_seq"},
		{"negative after", conv, nil, ptr[int64](-1), 0, "after_seq"},
		{"limit above max", conv, nil, nil, 201, "limit"},
		{"negative limit", conv, nil, nil, -1, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.History(ctx, a, tc.conv, tc.before, tc.after, tc.limit)
			wantCode(t, err, errs.InvalidArgument, tc.field)
		})
	}
}

func TestSyncPagesWithHasMoreAndIncludesMissingConversations(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := users(4)
	a, b, c, d := u[0], u[1], u[2], u[3]
	ab, ac := ids.P2P(a, b), ids.P2P(a, c)
	gid, left := ids.New(), ids.New()
	gconv, leftConv := ids.Group(gid), ids.Group(left)
	e.groups.join(gid, b, 0)
	e.groups.join(left, a, 0)
	e.apply(msgEvent(ab, b, 1), msgEvent(ab, b, 2), msgEvent(ab, a, 3), msgEvent(ab, b, 4), msgEvent(ab, b, 5))
	e.apply(msgEvent(ac, c, 1))
	e.apply(msgEvent(gconv, b, 1), msgEvent(gconv, b, 2), msgEvent(gconv, b, 3))
	e.apply(msgEvent(leftConv, a, 1))
	e.apply(msgEvent(ids.P2P(b, d), d, 1)) // not a's
	e.groups.join(gid, a, 1)
	e.groups.leave(left, a)

	res, err := e.svc.Sync(ctx, a, map[string]int64{ab: 1, leftConv: 0}, 2)
	mustNil(t, err)
	got := map[string][]int64{}
	more := map[string]bool{}
	for _, sc := range res.Conversations {
		got[sc.ConversationID] = seqsOf(sc.Messages)
		more[sc.ConversationID] = sc.HasMore
	}
	want := map[string][]int64{ab: {2, 3}, ac: {1}, gconv: {2, 3}}
	if fmt.Sprint(got) != fmt.Sprint(want) || !res.HasMore || !more[ab] || more[ac] || more[gconv] {
		t.Fatalf("sync = %v more %v (%v), want %v with more only on %s", got, more, res.HasMore, want, ab)
	}
	for i := 1; i < len(res.Conversations); i++ {
		if res.Conversations[i-1].ConversationID >= res.Conversations[i].ConversationID {
			t.Fatalf("conversations not ordered by id: %+v", res.Conversations)
		}
	}
	// Next round from the new cursors.
	res, err = e.svc.Sync(ctx, a, map[string]int64{ab: 3, ac: 1, gconv: 3}, 2)
	mustNil(t, err)
	if len(res.Conversations) != 1 || res.Conversations[0].ConversationID != ab || !eqSeqs(seqsOf(res.Conversations[0].Messages), []int64{4, 5}) || res.HasMore {
		t.Fatalf("second round = %+v", res)
	}
	res, err = e.svc.Sync(ctx, a, map[string]int64{ab: 5, ac: 1, gconv: 3}, 0)
	mustNil(t, err)
	if len(res.Conversations) != 0 || res.HasMore {
		t.Fatalf("up to date sync = %+v", res)
	}

	for _, tc := range []struct {
		name    string
		cursors map[string]int64
		limit   int
		field   string
	}{
		{"malformed conversation", map[string]int64{"nope": 1}, 0, "cursors"},
		{"negative cursor", map[string]int64{ab: -1}, 0, "cursors"},
		{"limit above max", nil, query.MaxSyncLimit + 1, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Sync(ctx, a, tc.cursors, tc.limit)
			wantCode(t, err, errs.InvalidArgument, tc.field)
		})
	}
}

func TestConversationsOrderByActivityWithCursorPaging(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := users(5)
	me := u[0]
	gid := ids.New()
	gconv := ids.Group(gid)
	e.groups.join(gid, me, 0)
	c1, c2, c3 := ids.P2P(me, u[1]), ids.P2P(me, u[2]), ids.P2P(me, u[3])
	e.apply(msgEvent(c1, u[1], 1))   // t0+1s
	e.apply(msgEvent(c2, u[2], 5))   // t0+5s
	e.apply(msgEvent(c3, u[3], 3))   // t0+3s
	e.apply(msgEvent(gconv, me, 4))  // t0+4s
	emptyGroup := ids.New()          // joined, no message yet: listed last
	e.groups.join(emptyGroup, me, 0) //
	_, err := e.svc.UpdateSettings(ctx, me, c1, nil, ptr(true))
	mustNil(t, err)
	muted, err := e.svc.UpdateSettings(ctx, me, c3, ptr(true), nil)
	mustNil(t, err)
	if !muted.Muted || muted.Pinned || muted.ID != c3 || muted.LastSeq != 3 {
		t.Fatalf("UpdateSettings answer = %+v", muted)
	}

	want := []string{c2, gconv, c3, c1, ids.Group(emptyGroup)}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		page, err := e.svc.Conversations(ctx, me, cursor, 2)
		mustNil(t, err)
		for _, c := range page.Conversations {
			got = append(got, c.ID)
		}
		if page.NextCursor == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		cursor = page.NextCursor
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	page, err := e.svc.Conversations(ctx, me, "", 0)
	mustNil(t, err)
	byID := map[string]query.Conversation{}
	for _, c := range page.Conversations {
		byID[c.ID] = c
	}
	if !byID[c1].Pinned || !byID[c3].Muted || byID[c2].Muted || byID[gconv].Unread != 0 || byID[c2].Unread != 5 || byID[c2].PeerID != u[2] ||
		byID[ids.Group(emptyGroup)].LastMessage != nil || byID[ids.Group(emptyGroup)].Type != query.TypeGroup {
		t.Fatalf("conversations = %+v", page.Conversations)
	}

	_, err = e.svc.Conversations(ctx, me, "garbage!", 0)
	wantCode(t, err, errs.InvalidArgument, "cursor")
	_, err = e.svc.Conversations(ctx, me, "", 201)
	wantCode(t, err, errs.InvalidArgument, "limit")
	_, err = e.svc.UpdateSettings(ctx, me, c1, nil, nil)
	wantCode(t, err, errs.InvalidArgument, "muted")
	_, err = e.svc.UpdateSettings(ctx, me, ids.P2P(u[1], u[2]), ptr(true), nil)
	wantCode(t, err, errs.PermissionDenied, "")
	_, err = e.svc.Conversation(ctx, me, ids.Group(ids.New()))
	wantCode(t, err, errs.PermissionDenied, "")
	// A conversation of the user without messages answers with zero state.
	fresh, err := e.svc.Conversation(ctx, me, ids.P2P(me, u[4]))
	mustNil(t, err)
	if fresh.LastSeq != 0 || fresh.LastMessage != nil || fresh.PeerID != u[4] || fresh.Unread != 0 {
		t.Fatalf("fresh conversation = %+v", fresh)
	}
}

func TestPersistDeadLettersRefusedRecordsStoresNoneOfThemAndWritesTheRest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := users(2)
	conv := ids.P2P(u[0], u[1])
	good := records(t, msgEvent(conv, u[0], 1))
	// Entries message.DecodeRecord refuses though they carry a whole
	// message (seqs 2..): none may reach history.
	refused := func(seq int64, edit func(*message.Event)) kafka.Message {
		ev := msgEvent(conv, u[0], seq)
		edit(&ev)
		return records(t, ev)[0]
	}
	keyed := func(key []byte, m kafka.Message) kafka.Message { m.Key = key; return m }
	bad := []kafka.Message{
		{Key: []byte(conv), Value: []byte("{not json")},
		{Key: []byte(conv), Value: []byte(`{"v":1,"kind":"message","conversation_id":"` + conv + `"}`)},
		{Key: []byte(conv), Value: []byte(`{"v":99,"kind":"message","conversation_id":"` + conv + `"}`)},
		{Key: []byte(conv), Value: []byte(`{"v":1,"kind":"teleport","conversation_id":"` + conv + `"}`)},
		{Key: []byte(conv), Value: []byte(`{"v":1,"kind":"read","conversation_id":"` + conv + `","user_id":"` + ids.New() + `","read_seq":3}`)},
		refused(2, func(ev *message.Event) { ev.Version = 0 }),
		keyed([]byte(ids.P2P(u[0], ids.New())), refused(3, func(*message.Event) {})),
		keyed(nil, refused(4, func(*message.Event) {})),
		refused(5, func(ev *message.Event) { ev.Message.SenderID = "not an id" }),
		refused(6, func(ev *message.Event) { ev.Message.ConversationID = ids.Group(ids.New()) }),
	}
	for i, rec := range bad {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			err := e.persist.Handle(ctx, append(append([]kafka.Message(nil), good...), rec))
			if !errors.Is(err, kafkax.ErrPoison) || !errors.Is(err, message.ErrBadRecord) {
				t.Fatalf("err = %v, want poison", err)
			}
		})
	}
	h, err := e.svc.History(ctx, u[1], conv, nil, nil, 0)
	mustNil(t, err)
	if !eqSeqs(seqsOf(h.Messages), []int64{1}) {
		t.Fatalf("history %v: want only the good record, none of the refused ones", seqsOf(h.Messages))
	}
}

func TestAckedIsPerDeviceAndNeverBackwards(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := users(2)
	conv := ids.P2P(u[0], u[1])
	mustNil(t, e.svc.Ack(ctx, u[0], "phone", conv, 7))
	mustNil(t, e.svc.Ack(ctx, u[0], "phone", conv, 3))
	got, err := e.svc.Acked(ctx, u[0], "phone", conv)
	mustNil(t, err)
	if got != 7 {
		t.Fatalf("acked = %d", got)
	}
	got, err = e.svc.Acked(ctx, u[0], "laptop", conv)
	mustNil(t, err)
	if got != 0 {
		t.Fatalf("other device acked = %d", got)
	}
	wantCode(t, e.svc.Ack(ctx, u[0], "phone", conv, 0), errs.InvalidArgument, "seq")
	wantCode(t, e.svc.Ack(ctx, u[0], "", conv, 1), errs.InvalidArgument, "device_id")
	wantCode(t, e.svc.Ack(ctx, u[0], "phone", "p:x", 1), errs.InvalidArgument, "conversation_id")
}

func TestPageSizesComeFromOptions(t *testing.T) {
	e := newEnv(t)
	e.svc = newReadSide(t, query.Deps{Store: e.store, Groups: e.groups}, query.Options{PageSize: 2, MaxPageSize: 3})
	ctx := context.Background()
	u := users(2)
	ab := ids.P2P(u[0], u[1])
	e.apply(msgEvent(ab, u[0], 1), msgEvent(ab, u[0], 2), msgEvent(ab, u[0], 3), msgEvent(ab, u[0], 4))

	page, err := e.svc.History(ctx, u[0], ab, nil, nil, 0)
	if err != nil || len(page.Messages) != 2 {
		t.Fatalf("default page: %d messages, %v; want Options.PageSize 2", len(page.Messages), err)
	}
	if page, err = e.svc.History(ctx, u[0], ab, nil, nil, 3); err != nil || len(page.Messages) != 3 {
		t.Fatalf("page at the max: %d messages, %v", len(page.Messages), err)
	}
	_, err = e.svc.History(ctx, u[0], ab, nil, nil, 4)
	wantCode(t, err, errs.InvalidArgument, "limit")
	_, err = e.svc.Conversations(ctx, u[0], "", 4)
	wantCode(t, err, errs.InvalidArgument, "limit")
}

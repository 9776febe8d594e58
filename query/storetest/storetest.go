// Package storetest is the contract every query.Store passes: the Pebble
// backend runs it in unit tests, a Cassandra backend in integration tests,
// unchanged.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/ids"
)

// Run runs the contract against stores made by newStore. Every test uses
// fresh ids, so a shared store is fine.
func Run(t *testing.T, newStore func(t *testing.T) query.Store) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ctx := context.Background()
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	msg := func(conv, sender string, seq int64) message.Message {
		return message.Message{ID: ids.New(), ConversationID: conv, Seq: seq, SenderID: sender, Type: message.TypeText,
			Content: json.RawMessage(fmt.Sprintf(`"hello %d"`, seq)), Mentions: []string{}, SentAt: t0.Add(time.Duration(seq) * time.Second),
			ClientMsgID: "c" + fmt.Sprint(seq)}
	}
	seqs := func(ms []message.Message) []int64 {
		out := make([]int64, len(ms))
		for i, m := range ms {
			out[i] = m.Seq
		}
		return out
	}
	eq := func(a, b []int64) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	p2p := func() (conv, a, b string) {
		a, b = ids.New(), ids.New()
		if b < a {
			a, b = b, a
		}
		return ids.P2P(a, b), a, b
	}

	t.Run("messages read back field for field, by range and by id", func(t *testing.T) {
		s := newStore(t)
		conv, a, b := p2p()
		m := msg(conv, a, 1)
		m.Mentions = []string{b}
		m.ToUserID = b
		must(t, s.Apply(ctx, query.Batch{Messages: []message.Message{m}}))
		got, err := s.Messages(ctx, conv, query.SeqRange{Limit: 10})
		must(t, err)
		if len(got) != 1 {
			t.Fatalf("messages = %+v", got)
		}
		g := got[0]
		if g.ID != m.ID || g.ConversationID != conv || g.Seq != 1 || g.SenderID != a || g.Type != m.Type ||
			string(g.Content) != string(m.Content) || len(g.Mentions) != 1 || g.Mentions[0] != b || !g.SentAt.Equal(m.SentAt) ||
			g.ClientMsgID != m.ClientMsgID || g.Recalled || g.ToUserID != b {
			t.Fatalf("message = %+v, want %+v", g, m)
		}
		byID, found, err := s.MessageByID(ctx, m.ID)
		must(t, err)
		if !found || byID.ID != m.ID || byID.Seq != 1 || string(byID.Content) != string(m.Content) {
			t.Fatalf("by id = %+v, %v", byID, found)
		}
		if _, found, err := s.MessageByID(ctx, ids.New()); err != nil || found {
			t.Fatalf("unknown id found=%v err=%v", found, err)
		}
	})

	t.Run("ranges cross buckets in seq order, exclusive bounds, limit and descending", func(t *testing.T) {
		s := newStore(t)
		conv, a, _ := p2p()
		other, _, _ := p2p()
		var all []int64
		var b query.Batch
		for _, seq := range []int64{1, 2, 999, 1000, 1001, 1999, 2000, 2001, 5003} {
			b.Messages = append(b.Messages, msg(conv, a, seq))
			all = append(all, seq)
		}
		b.Messages = append(b.Messages, msg(other, a, 1500))
		must(t, s.Apply(ctx, b))
		for _, c := range []struct {
			name string
			r    query.SeqRange
			want []int64
		}{
			{"all", query.SeqRange{Limit: 100}, all},
			{"after", query.SeqRange{After: 999, Limit: 100}, []int64{1000, 1001, 1999, 2000, 2001, 5003}},
			{"after with limit", query.SeqRange{After: 2, Limit: 3}, []int64{999, 1000, 1001}},
			{"before", query.SeqRange{Before: 1000, Limit: 100}, []int64{1, 2, 999}},
			{"between", query.SeqRange{After: 999, Before: 2001, Limit: 100}, []int64{1000, 1001, 1999, 2000}},
			{"desc newest", query.SeqRange{Limit: 2, Desc: true}, []int64{5003, 2001}},
			{"desc before", query.SeqRange{Before: 2000, Limit: 3, Desc: true}, []int64{1999, 1001, 1000}},
			{"desc above floor", query.SeqRange{After: 1000, Before: 2000, Limit: 10, Desc: true}, []int64{1999, 1001}},
			{"empty range", query.SeqRange{After: 2001, Before: 5003, Limit: 10}, nil},
			{"zero limit", query.SeqRange{Limit: 0}, nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				got, err := s.Messages(ctx, conv, c.r)
				must(t, err)
				if !eq(seqs(got), c.want) {
					t.Fatalf("seqs = %v, want %v", seqs(got), c.want)
				}
			})
		}
		got, err := s.Messages(ctx, other, query.SeqRange{Limit: 10})
		must(t, err)
		if !eq(seqs(got), []int64{1500}) {
			t.Fatalf("other conversation = %v", seqs(got))
		}
	})

	t.Run("applying the same batch twice leaves the same state", func(t *testing.T) {
		s := newStore(t)
		conv, a, b := p2p()
		gconv := ids.Group(ids.New())
		m1, m2, g1 := msg(conv, a, 1), msg(conv, b, 2), msg(gconv, a, 7)
		batch := query.Batch{
			Messages:      []message.Message{m1, m2, g1},
			Conversations: []query.ConversationUpdate{{UserID: a, ConversationID: conv, PeerID: b, LastMessage: m2}, {UserID: b, ConversationID: conv, PeerID: a, LastMessage: m2}},
			Groups:        []query.GroupUpdate{{ConversationID: gconv, LastMessage: g1}},
			ReadSeqs:      []query.ReadMark{{UserID: a, ConversationID: conv, Seq: 1}, {UserID: b, ConversationID: conv, Seq: 2}, {UserID: a, ConversationID: gconv, Seq: 7}},
		}
		snapshot := func() string {
			msgs, err := s.Messages(ctx, conv, query.SeqRange{Limit: 10})
			must(t, err)
			gm, err := s.Messages(ctx, gconv, query.SeqRange{Limit: 10})
			must(t, err)
			ra, err := s.UserConversations(ctx, a)
			must(t, err)
			rb, err := s.UserConversations(ctx, b)
			must(t, err)
			gs, err := s.GroupStates(ctx, []string{gconv})
			must(t, err)
			out, err := json.Marshal([]any{msgs, gm, ra, rb, gs})
			must(t, err)
			return string(out)
		}
		must(t, s.Apply(ctx, batch))
		first := snapshot()
		must(t, s.Apply(ctx, batch))
		if again := snapshot(); again != first {
			t.Fatalf("state changed on re-apply:\n%s\n%s", first, again)
		}
		ra, err := s.UserConversations(ctx, a)
		must(t, err)
		if len(ra) != 2 || ra[0].ConversationID > ra[1].ConversationID {
			t.Fatalf("rows of a = %+v", ra)
		}
	})

	t.Run("a recalled message keeps its row without content, whichever arrives first", func(t *testing.T) {
		s := newStore(t)
		conv, a, _ := p2p()
		m1, m2 := msg(conv, a, 1), msg(conv, a, 2)
		recall := message.Message{ID: ids.New(), ConversationID: conv, Seq: 3, SenderID: a, Type: message.TypeRecall,
			Content: json.RawMessage(`{"message_id":"` + m1.ID + `"}`), SentAt: t0}
		must(t, s.Apply(ctx, query.Batch{Messages: []message.Message{m1, m2}}))
		must(t, s.Apply(ctx, query.Batch{Messages: []message.Message{recall}, Recalls: []query.RecallMark{{ConversationID: conv, Seq: 1, MessageID: m1.ID}}}))
		// A replay re-applies the message after its recall: it stays recalled.
		must(t, s.Apply(ctx, query.Batch{Messages: []message.Message{m1}}))
		got, err := s.Messages(ctx, conv, query.SeqRange{Limit: 10})
		must(t, err)
		if len(got) != 3 || !got[0].Recalled || got[0].Content != nil || got[0].ID != m1.ID || got[0].SenderID != a ||
			got[1].Recalled || string(got[1].Content) != string(m2.Content) ||
			got[2].Type != message.TypeRecall || string(got[2].Content) != string(recall.Content) {
			t.Fatalf("messages = %+v", got)
		}
		byID, found, err := s.MessageByID(ctx, m1.ID)
		must(t, err)
		if !found || !byID.Recalled || byID.Content != nil {
			t.Fatalf("by id = %+v", byID)
		}

		// Mark before message.
		conv2, c, _ := p2p()
		early := msg(conv2, c, 5)
		must(t, s.Apply(ctx, query.Batch{Recalls: []query.RecallMark{{ConversationID: conv2, Seq: 5, MessageID: early.ID}}}))
		must(t, s.Apply(ctx, query.Batch{Messages: []message.Message{early}}))
		got, err = s.Messages(ctx, conv2, query.SeqRange{Limit: 10})
		must(t, err)
		if len(got) != 1 || !got[0].Recalled || got[0].Content != nil || got[0].SenderID != c || got[0].Type != message.TypeText {
			t.Fatalf("message recalled before it arrived = %+v", got)
		}
	})

	t.Run("last seq of 1:1 rows and group state never moves backwards", func(t *testing.T) {
		s := newStore(t)
		conv, a, b := p2p()
		gconv := ids.Group(ids.New())
		m5, m3 := msg(conv, a, 5), msg(conv, b, 3)
		g9, g4 := msg(gconv, a, 9), msg(gconv, b, 4)
		must(t, s.Apply(ctx, query.Batch{
			Conversations: []query.ConversationUpdate{{UserID: a, ConversationID: conv, PeerID: b, LastMessage: m5}},
			Groups:        []query.GroupUpdate{{ConversationID: gconv, LastMessage: g9}},
		}))
		must(t, s.Apply(ctx, query.Batch{
			Conversations: []query.ConversationUpdate{{UserID: a, ConversationID: conv, PeerID: b, LastMessage: m3}},
			Groups:        []query.GroupUpdate{{ConversationID: gconv, LastMessage: g4}},
		}))
		row, found, err := s.UserConversation(ctx, a, conv)
		must(t, err)
		if !found || row.LastSeq != 5 || row.LastMessage == nil || row.LastMessage.ID != m5.ID || row.PeerID != b {
			t.Fatalf("row = %+v", row)
		}
		gs, err := s.GroupStates(ctx, []string{gconv, ids.Group(ids.New())})
		must(t, err)
		if len(gs) != 1 || gs[gconv].LastSeq != 9 || gs[gconv].LastMessage.ID != g9.ID {
			t.Fatalf("group states = %+v", gs)
		}
		// Within one batch the highest wins too, in any order.
		m7 := msg(conv, b, 7)
		must(t, s.Apply(ctx, query.Batch{Conversations: []query.ConversationUpdate{
			{UserID: b, ConversationID: conv, PeerID: a, LastMessage: m7},
			{UserID: b, ConversationID: conv, PeerID: a, LastMessage: m3},
		}}))
		row, _, err = s.UserConversation(ctx, b, conv)
		must(t, err)
		if row.LastSeq != 7 || row.PeerID != a {
			t.Fatalf("row of b = %+v", row)
		}
	})

	t.Run("read seq never moves backwards", func(t *testing.T) {
		s := newStore(t)
		conv, a, _ := p2p()
		must(t, s.Apply(ctx, query.Batch{ReadSeqs: []query.ReadMark{{UserID: a, ConversationID: conv, Seq: 8}, {UserID: a, ConversationID: conv, Seq: 6}}}))
		must(t, s.Apply(ctx, query.Batch{ReadSeqs: []query.ReadMark{{UserID: a, ConversationID: conv, Seq: 2}}}))
		row, found, err := s.UserConversation(ctx, a, conv)
		must(t, err)
		if !found || row.ReadSeq != 8 || row.LastSeq != 0 {
			t.Fatalf("row = %+v found %v", row, found)
		}
		must(t, s.Apply(ctx, query.Batch{ReadSeqs: []query.ReadMark{{UserID: a, ConversationID: conv, Seq: 9}}}))
		row, _, err = s.UserConversation(ctx, a, conv)
		must(t, err)
		if row.ReadSeq != 9 {
			t.Fatalf("read seq = %d, want 9", row.ReadSeq)
		}
	})

	t.Run("settings update field by field and join the user's rows", func(t *testing.T) {
		s := newStore(t)
		conv, a, b := p2p()
		gconv := ids.Group(ids.New())
		yes, no := true, false
		row, found, err := s.UserConversation(ctx, a, gconv)
		must(t, err)
		if found || row.ConversationID != gconv || row.Muted || row.Pinned {
			t.Fatalf("row before anything = %+v found %v", row, found)
		}
		st, err := s.UpdateSettings(ctx, a, gconv, &yes, nil)
		must(t, err)
		if !st.Muted || st.Pinned {
			t.Fatalf("settings = %+v", st)
		}
		st, err = s.UpdateSettings(ctx, a, gconv, nil, &yes)
		must(t, err)
		if !st.Muted || !st.Pinned {
			t.Fatalf("settings = %+v", st)
		}
		st, err = s.UpdateSettings(ctx, a, gconv, &no, nil)
		must(t, err)
		if st.Muted || !st.Pinned {
			t.Fatalf("settings = %+v", st)
		}
		must(t, s.Apply(ctx, query.Batch{
			Conversations: []query.ConversationUpdate{{UserID: a, ConversationID: conv, PeerID: b, LastMessage: msg(conv, b, 4)}},
			ReadSeqs:      []query.ReadMark{{UserID: a, ConversationID: gconv, Seq: 3}},
		}))
		rows, err := s.UserConversations(ctx, a)
		must(t, err)
		byConv := map[string]query.UserConversation{}
		for _, r := range rows {
			byConv[r.ConversationID] = r
		}
		if len(rows) != 2 || byConv[conv].LastSeq != 4 || byConv[conv].PeerID != b || byConv[conv].Muted ||
			byConv[gconv].ReadSeq != 3 || !byConv[gconv].Pinned || byConv[gconv].Muted || byConv[gconv].LastSeq != 0 {
			t.Fatalf("rows = %+v", rows)
		}
		if rows[0].ConversationID > rows[1].ConversationID {
			t.Fatalf("rows not ordered by conversation id: %+v", rows)
		}
		other, err := s.UserConversations(ctx, ids.New())
		must(t, err)
		if len(other) != 0 {
			t.Fatalf("rows of a stranger = %+v", other)
		}
	})

	t.Run("acked seq is per device and never moves backwards", func(t *testing.T) {
		s := newStore(t)
		conv, a, _ := p2p()
		phone, web := "phone/1", "phone"
		must(t, s.SetAcked(ctx, a, phone, conv, 10))
		must(t, s.SetAcked(ctx, a, phone, conv, 4))
		must(t, s.SetAcked(ctx, a, web, conv, 2))
		for _, c := range []struct {
			device string
			want   int64
		}{{phone, 10}, {web, 2}, {"tablet", 0}} {
			got, err := s.Acked(ctx, a, c.device, conv)
			must(t, err)
			if got != c.want {
				t.Fatalf("acked(%s) = %d, want %d", c.device, got, c.want)
			}
		}
		got, err := s.Acked(ctx, ids.New(), phone, conv)
		must(t, err)
		if got != 0 {
			t.Fatalf("acked of another user = %d", got)
		}
	})
}

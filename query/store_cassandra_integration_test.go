//go:build integration

package query_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/query/storetest"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func TestCassandraStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) query.Store { return query.NewCassandraStore(testinfra.CassandraSession(t)) })
}

func cassandraMsg(conv, sender string, seq int64, content string) message.Message {
	return message.Message{ID: ids.New(), ConversationID: conv, Seq: seq, SenderID: sender, Type: message.TypeText,
		Content: json.RawMessage(fmt.Sprintf("%q", content)), Mentions: []string{}, SentAt: time.Now().UTC(), ClientMsgID: fmt.Sprint("c", seq)}
}

// CQL timestamps keep milliseconds; a message must read back with the
// nanoseconds it was sent with, as from the Pebble backend.
func TestCassandraStoreKeepsSentAtNanoseconds(t *testing.T) {
	ctx := t.Context()
	s := query.NewCassandraStore(testinfra.CassandraSession(t))
	a, b := ids.New(), ids.New()
	conv := ids.P2P(min(a, b), max(a, b))
	m := cassandraMsg(conv, a, 1, "hi")
	m.SentAt = time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if err := s.Apply(ctx, query.Batch{Messages: []message.Message{m}, Conversations: []query.ConversationUpdate{{UserID: a, ConversationID: conv, PeerID: b, LastMessage: m}}}); err != nil {
		t.Fatal(err)
	}
	got, found, err := s.MessageByID(ctx, m.ID)
	if err != nil || !found || !got.SentAt.Equal(m.SentAt) {
		t.Fatalf("by id = %+v found %v err %v, want sent_at %v", got, found, err, m.SentAt)
	}
	row, _, err := s.UserConversation(ctx, a, conv)
	if err != nil || row.LastMessage == nil || !row.LastMessage.SentAt.Equal(m.SentAt) {
		t.Fatalf("row = %+v err %v", row, err)
	}
}

// One Apply with more writes to a partition than one batch holds, and
// partitions beyond the write parallelism, lands completely; a page read
// walks the buckets in both directions.
func TestCassandraStoreLargeApply(t *testing.T) {
	ctx := t.Context()
	s := query.NewCassandraStore(testinfra.CassandraSession(t))
	a, b := ids.New(), ids.New()
	conv := ids.P2P(min(a, b), max(a, b))
	big := strings.Repeat("x", 2<<10)
	var batch query.Batch
	const n = 2300 // buckets 0, 1, 2; ~2 MB of content in bucket 0 alone, 200 KB a batch
	for seq := int64(1); seq <= n; seq++ {
		m := cassandraMsg(conv, a, seq, big)
		batch.Messages = append(batch.Messages, m)
		batch.ReadSeqs = append(batch.ReadSeqs, query.ReadMark{UserID: a, ConversationID: conv, Seq: seq})
	}
	if err := s.Apply(ctx, batch); err != nil {
		t.Fatal(err)
	}
	asc, err := s.Messages(ctx, conv, query.SeqRange{After: 990, Limit: 1100})
	if err != nil {
		t.Fatal(err)
	}
	if len(asc) != 1100 || asc[0].Seq != 991 || asc[1099].Seq != 2090 {
		t.Fatalf("ascending page: %d messages, first %d", len(asc), asc[0].Seq)
	}
	for i, m := range asc {
		if m.Seq != int64(991+i) || len(m.Content) != len(big)+2 {
			t.Fatalf("message %d = seq %d, content %d bytes", i, m.Seq, len(m.Content))
		}
	}
	desc, err := s.Messages(ctx, conv, query.SeqRange{Limit: 1500, Desc: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc) != 1500 || desc[0].Seq != n || desc[1499].Seq != n-1499 {
		t.Fatalf("descending page: %d messages", len(desc))
	}
	row, _, err := s.UserConversation(ctx, a, conv)
	if err != nil || row.ReadSeq != n {
		t.Fatalf("read seq = %d err %v", row.ReadSeq, err)
	}
	for _, seq := range []int64{1, 1000, n} {
		m, found, err := s.MessageByID(ctx, batch.Messages[seq-1].ID)
		if err != nil || !found || m.Seq != seq {
			t.Fatalf("by id of seq %d = %+v found %v err %v", seq, m, found, err)
		}
	}
}

// Stores in separate processes share nothing but Cassandra: whichever
// applies last, the highest seq stays.
func TestCassandraStoreNeverBackwardsAcrossSessions(t *testing.T) {
	ctx := t.Context()
	s1 := query.NewCassandraStore(testinfra.CassandraSession(t))
	s2 := query.NewCassandraStore(testinfra.CassandraSession(t))
	a, b := ids.New(), ids.New()
	conv := ids.P2P(min(a, b), max(a, b))
	gconv := ids.Group(ids.New())
	hi, lo := cassandraMsg(conv, a, 20, "new"), cassandraMsg(conv, a, 10, "old")
	ghi, glo := cassandraMsg(gconv, a, 20, "new"), cassandraMsg(gconv, a, 10, "old")
	batch := func(m, g message.Message) query.Batch {
		return query.Batch{
			Conversations: []query.ConversationUpdate{{UserID: a, ConversationID: conv, PeerID: b, LastMessage: m}},
			Groups:        []query.GroupUpdate{{ConversationID: gconv, LastMessage: g}},
			ReadSeqs:      []query.ReadMark{{UserID: a, ConversationID: conv, Seq: m.Seq}},
		}
	}
	if err := s1.Apply(ctx, batch(hi, ghi)); err != nil {
		t.Fatal(err)
	}
	if err := s1.SetAcked(ctx, a, "phone", conv, 20); err != nil {
		t.Fatal(err)
	}
	if err := s2.Apply(ctx, batch(lo, glo)); err != nil {
		t.Fatal(err)
	}
	if err := s2.SetAcked(ctx, a, "phone", conv, 10); err != nil {
		t.Fatal(err)
	}
	row, _, err := s2.UserConversation(ctx, a, conv)
	if err != nil || row.LastSeq != 20 || row.LastMessage.ID != hi.ID || row.ReadSeq != 20 {
		t.Fatalf("row = %+v err %v", row, err)
	}
	gs, err := s2.GroupStates(ctx, []string{gconv, gconv})
	if err != nil || gs[gconv].LastSeq != 20 || gs[gconv].LastMessage.ID != ghi.ID {
		t.Fatalf("group state = %+v err %v", gs, err)
	}
	if acked, err := s2.Acked(ctx, a, "phone", conv); err != nil || acked != 20 {
		t.Fatalf("acked = %d err %v", acked, err)
	}
}

func TestCassandraStoreRefusesNonPositiveSeqWritingNothing(t *testing.T) {
	ctx := t.Context()
	s := query.NewCassandraStore(testinfra.CassandraSession(t))
	a, b := ids.New(), ids.New()
	conv := ids.P2P(min(a, b), max(a, b))
	good := cassandraMsg(conv, a, 1, "ok")
	err := s.Apply(ctx, query.Batch{Messages: []message.Message{good}, ReadSeqs: []query.ReadMark{{UserID: a, ConversationID: conv, Seq: 0}}})
	if err == nil {
		t.Fatal("batch with read seq 0 was accepted")
	}
	if got, err := s.Messages(ctx, conv, query.SeqRange{Limit: 10}); err != nil || len(got) != 0 {
		t.Fatalf("messages after a refused batch = %+v err %v", got, err)
	}
	if err := s.SetAcked(ctx, a, "phone", conv, -1); err == nil {
		t.Fatal("acked seq -1 was accepted")
	}
}

func TestCassandraStoreOnClosedSessionFailsUnavailable(t *testing.T) {
	ctx := t.Context()
	session := testinfra.CassandraSession(t)
	s := query.NewCassandraStore(session)
	session.Close()
	a, b := ids.New(), ids.New()
	conv := ids.P2P(min(a, b), max(a, b))
	yes := true
	checks := map[string]error{
		"Apply":    s.Apply(ctx, query.Batch{Messages: []message.Message{cassandraMsg(conv, a, 1, "x")}}),
		"SetAcked": s.SetAcked(ctx, a, "phone", conv, 3),
	}
	_, checks["Messages"] = s.Messages(ctx, conv, query.SeqRange{Limit: 10})
	_, _, checks["MessageByID"] = s.MessageByID(ctx, ids.New())
	_, checks["UserConversations"] = s.UserConversations(ctx, a)
	_, _, checks["UserConversation"] = s.UserConversation(ctx, a, conv)
	_, checks["GroupStates"] = s.GroupStates(ctx, []string{ids.Group(ids.New())})
	_, checks["UpdateSettings"] = s.UpdateSettings(ctx, a, conv, &yes, nil)
	_, checks["Acked"] = s.Acked(ctx, a, "phone", conv)
	for op, err := range checks {
		if !errs.HasCode(err, errs.Unavailable) {
			t.Errorf("%s on a closed session: err = %v, want code unavailable", op, err)
		}
	}
}

// A recall overwrites content with a live empty cell above the message's
// timestamp instead of deleting it: a tombstone would be purged after
// gc_grace_seconds, and a later replay of the message would bring the
// content back. WRITETIME is null for a deleted cell.
func TestCassandraStoreRecallLeavesNoTombstoneToPurge(t *testing.T) {
	ctx := t.Context()
	session := testinfra.CassandraSession(t)
	s := query.NewCassandraStore(session)
	a, b := ids.New(), ids.New()
	conv := ids.P2P(min(a, b), max(a, b))
	m := cassandraMsg(conv, a, 1234, "secret")
	recall := query.Batch{Recalls: []query.RecallMark{{ConversationID: conv, Seq: m.Seq, MessageID: m.ID}}}
	for _, batch := range []query.Batch{{Messages: []message.Message{m}}, recall, {Messages: []message.Message{m}}} {
		if err := s.Apply(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	var (
		content           []byte
		contentTS, flagTS *int64
		idTS              *int64
		recalled          bool
	)
	err := session.Query(`SELECT content, recalled, WRITETIME(content), WRITETIME(recalled), WRITETIME(id) FROM messages WHERE conversation_id = ? AND bucket = ? AND seq = ?`,
		conv, query.Bucket(m.Seq), m.Seq).WithContext(ctx).Scan(&content, &recalled, &contentTS, &flagTS, &idTS)
	if err != nil {
		t.Fatal(err)
	}
	if len(content) != 0 || !recalled || contentTS == nil || *contentTS != 2*m.Seq+1 || flagTS == nil || *flagTS != 2*m.Seq+1 {
		t.Fatalf("content %q (written at %v), recalled %v (at %v): want a live empty content and the flag at %d", content, contentTS, recalled, flagTS, 2*m.Seq+1)
	}
	if idTS == nil || *idTS != 2*m.Seq {
		t.Fatalf("id written at %v, want the message's own timestamp %d", idTS, 2*m.Seq)
	}
}

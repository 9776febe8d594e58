package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/cassandra"
)

// CassandraStore keeps the read side in the tables of migration
// shared/cassandra/migrations/0030_history.cql, the same shapes as the
// Pebble keys:
//
//	messages              ((conversation_id, bucket), seq)  the history
//	message_buckets       ((conversation_id), bucket)       buckets that hold rows
//	messages_by_id        (id) -> conversation_id, seq
//	conversations_by_user ((user_id), conversation_id)      1:1 peer/last message/last seq,
//	                                                        read seq, muted, pinned
//	group_conversations   (conversation_id)                 a group's shared last message
//	delivered_seqs        ((user_id, device_id), conversation_id) -> seq
//
// Nothing is read before it is written. "Never backwards" comes from write
// timestamps: last message/last seq cells are written USING TIMESTAMP
// last_seq, read seq cells at read_seq, delivered seq cells at seq, so the
// cell with the highest seq wins in any order of arrival, within one Apply,
// across processes and on replay (equal timestamps carry equal values).
// Message cells are written at 2*seq and a recall's recalled = true and
// empty content at 2*seq+1, so "recall wins" whichever arrives first. The
// recall writes an empty content value rather than deleting the cell: a
// tombstone is purged after gc_grace_seconds, and a replay of the log after
// that would bring the content back; a live empty cell is never purged.
// A recall mark that precedes its message also writes the message id at
// 2*seq-1, beneath the message's own cells.
//
// Settings (muted, pinned) are plain last-write-wins cells stamped from a
// per-process monotonic microsecond clock; two processes updating the same
// setting within their clock skew may resolve in either order.
//
// Apply groups its writes by partition: the writes of one partition go in
// UNLOGGED batches (never across partitions), partitions are written in
// parallel. Apply is not atomic across partitions: a failed Apply may
// leave part of the batch written, which the retry (every write being
// idempotent) completes. Every statement uses bind markers, so gocql
// prepares it once per connection; consistency is the session's.
//
// UserConversations reads the user's whole partition (paged, 500 rows a
// page) and orders it in memory: its cost is linear in the number of
// conversations the user ever had (every 1:1 peer plus each group with a
// read seq or settings), each row holding at most one last message. The
// service orders the conversation list in memory from the same set, so the
// store adds no further bound.
type CassandraStore struct {
	s *gocql.Session
	// lastMicros is the last settings timestamp issued (monotonic clock).
	lastMicros atomic.Int64
}

var _ Store = (*CassandraStore)(nil)

// NewCassandraStore returns a store over session, which must be on a
// keyspace migrated with shared/cassandra.Migrate.
func NewCassandraStore(session *gocql.Session) *CassandraStore {
	return &CassandraStore{s: session}
}

const (
	// parallelism bounds the partitions written (Apply) or read
	// (GroupStates) at once by one call.
	parallelism = 16
	// maxBatchStatements and maxBatchBytes bound one UNLOGGED batch (all
	// in one partition), well below Cassandra's mutation size limit.
	maxBatchStatements = 100
	maxBatchBytes      = 1 << 20
	// userConversationsPage is the page size of a user's partition read.
	userConversationsPage = 500
)

const (
	cqlInsertMessage = `INSERT INTO messages (conversation_id, bucket, seq, id, sender_id, type, content, mentions, sent_at_ns, client_msg_id, group_id, to_user_id) ` +
		`VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	cqlRecallMessage = `UPDATE messages USING TIMESTAMP ? SET recalled = true, content = ? WHERE conversation_id = ? AND bucket = ? AND seq = ?`
	cqlPlaceholderID = `UPDATE messages USING TIMESTAMP ? SET id = ? WHERE conversation_id = ? AND bucket = ? AND seq = ?`
	cqlInsertBucket  = `INSERT INTO message_buckets (conversation_id, bucket) VALUES (?, ?)`
	cqlInsertByID    = `INSERT INTO messages_by_id (id, conversation_id, seq) VALUES (?, ?, ?)`
	cqlSetUserConv   = `UPDATE conversations_by_user USING TIMESTAMP ? SET peer_id = ?, last_message = ?, last_seq = ? WHERE user_id = ? AND conversation_id = ?`
	cqlSetGroupState = `UPDATE group_conversations USING TIMESTAMP ? SET last_message = ?, last_seq = ? WHERE conversation_id = ?`
	cqlSetReadSeq    = `UPDATE conversations_by_user USING TIMESTAMP ? SET read_seq = ? WHERE user_id = ? AND conversation_id = ?`
	cqlSetMuted      = `UPDATE conversations_by_user USING TIMESTAMP ? SET muted = ? WHERE user_id = ? AND conversation_id = ?`
	cqlSetPinned     = `UPDATE conversations_by_user USING TIMESTAMP ? SET pinned = ? WHERE user_id = ? AND conversation_id = ?`
	cqlSetSettings   = `UPDATE conversations_by_user USING TIMESTAMP ? SET muted = ?, pinned = ? WHERE user_id = ? AND conversation_id = ?`
	cqlSettings      = `SELECT muted, pinned FROM conversations_by_user WHERE user_id = ? AND conversation_id = ?`
	cqlSetAcked      = `UPDATE delivered_seqs USING TIMESTAMP ? SET seq = ? WHERE user_id = ? AND device_id = ? AND conversation_id = ?`
	cqlAcked         = `SELECT seq FROM delivered_seqs WHERE user_id = ? AND device_id = ? AND conversation_id = ?`
	cqlMessageByID   = `SELECT conversation_id, seq FROM messages_by_id WHERE id = ?`
	cqlGroupState    = `SELECT last_message, last_seq FROM group_conversations WHERE conversation_id = ?`
	cqlUserConvRow   = `SELECT peer_id, last_message, last_seq, read_seq, muted, pinned FROM conversations_by_user WHERE user_id = ? AND conversation_id = ?`
	cqlUserConvRows  = `SELECT conversation_id, peer_id, last_message, last_seq, read_seq, muted, pinned FROM conversations_by_user WHERE user_id = ?`
	cqlBucketsAsc    = `SELECT bucket FROM message_buckets WHERE conversation_id = ? AND bucket >= ? AND bucket <= ? ORDER BY bucket ASC`
	cqlBucketsDesc   = `SELECT bucket FROM message_buckets WHERE conversation_id = ? AND bucket >= ? AND bucket <= ? ORDER BY bucket DESC`
	messageColumns   = `seq, id, sender_id, type, content, mentions, sent_at_ns, client_msg_id, recalled, group_id, to_user_id`
	cqlMessagesAsc   = `SELECT ` + messageColumns + ` FROM messages WHERE conversation_id = ? AND bucket = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?`
	cqlMessagesDesc  = `SELECT ` + messageColumns + ` FROM messages WHERE conversation_id = ? AND bucket = ? AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?`
	cqlMessageAtSeq  = `SELECT ` + messageColumns + ` FROM messages WHERE conversation_id = ? AND bucket = ? AND seq = ?`
)

// Write timestamps of a message row's cells (see CassandraStore).
func messageTS(seq int64) int64     { return 2 * seq }
func recallTS(seq int64) int64      { return 2*seq + 1 }
func placeholderTS(seq int64) int64 { return 2*seq - 1 }

// nextMicros is a wall-clock microsecond timestamp, strictly above the last
// one this store issued.
func (c *CassandraStore) nextMicros() int64 {
	now := time.Now().UnixMicro()
	for {
		last := c.lastMicros.Load()
		next := max(now, last+1)
		if c.lastMicros.CompareAndSwap(last, next) {
			return next
		}
	}
}

// stmt is one write of an Apply.
type stmt struct {
	cql  string
	args []any
	size int // rough bytes, for batch sizing
}

// writePlan collects an Apply's writes by partition, in first-seen order.
type writePlan struct {
	order []string
	parts map[string][]stmt
}

func (p *writePlan) add(partition, cql string, args ...any) {
	if p.parts == nil {
		p.parts = map[string][]stmt{}
	}
	if _, ok := p.parts[partition]; !ok {
		p.order = append(p.order, partition)
	}
	size := len(cql)
	for _, a := range args {
		switch v := a.(type) {
		case string:
			size += len(v)
		case []byte:
			size += len(v)
		case []string:
			for _, s := range v {
				size += len(s)
			}
		default:
			size += 8
		}
	}
	p.parts[partition] = append(p.parts[partition], stmt{cql: cql, args: args, size: size})
}

// batches splits each partition's writes into UNLOGGED batches.
func (p *writePlan) batches() [][]stmt {
	var out [][]stmt
	for _, key := range p.order {
		var cur []stmt
		bytes := 0
		for _, st := range p.parts[key] {
			if len(cur) > 0 && (len(cur) == maxBatchStatements || bytes+st.size > maxBatchBytes) {
				out = append(out, cur)
				cur, bytes = nil, 0
			}
			cur = append(cur, st)
			bytes += st.size
		}
		if len(cur) > 0 {
			out = append(out, cur)
		}
	}
	return out
}

func partKey(table string, keys ...any) string {
	k := table
	for _, v := range keys {
		k += fmt.Sprintf("\x00%v", v)
	}
	return k
}

// unsetIfEmpty binds an absent value as "unset", so no null (tombstone) is
// written for it.
func unsetIfEmpty[T ~[]E, E any](v T) any {
	if v == nil {
		return gocql.UnsetValue
	}
	return v
}

// Apply writes b. A batch with a non-positive seq is refused before
// anything is written.
func (c *CassandraStore) Apply(ctx context.Context, b Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.Empty() {
		return nil
	}
	if err := validateBatch(b); err != nil {
		return err
	}
	var p writePlan
	buckets := map[string]bool{}
	bucket := func(conv string, seq int64) {
		bk := Bucket(seq)
		key := partKey("message_buckets", conv, bk)
		if !buckets[key] {
			buckets[key] = true
			p.add(partKey("message_buckets", conv), cqlInsertBucket, conv, bk)
		}
	}
	for _, m := range b.Messages {
		bk := Bucket(m.Seq)
		part := partKey("messages", m.ConversationID, bk)
		var sentAt any = gocql.UnsetValue
		if !m.SentAt.IsZero() {
			sentAt = m.SentAt.UnixNano()
		}
		p.add(part, cqlInsertMessage, m.ConversationID, bk, m.Seq, m.ID, m.SenderID, m.Type,
			unsetIfEmpty(m.Content), unsetIfEmpty(m.Mentions), sentAt, m.ClientMsgID, m.GroupID, m.ToUserID, messageTS(m.Seq))
		if m.Recalled {
			p.add(part, cqlRecallMessage, recallTS(m.Seq), []byte{}, m.ConversationID, bk, m.Seq)
		}
		bucket(m.ConversationID, m.Seq)
		if m.ID != "" {
			p.add(partKey("messages_by_id", m.ID), cqlInsertByID, m.ID, m.ConversationID, m.Seq)
		}
	}
	for _, r := range b.Recalls {
		bk := Bucket(r.Seq)
		part := partKey("messages", r.ConversationID, bk)
		p.add(part, cqlRecallMessage, recallTS(r.Seq), []byte{}, r.ConversationID, bk, r.Seq)
		bucket(r.ConversationID, r.Seq)
		if r.MessageID != "" {
			p.add(part, cqlPlaceholderID, placeholderTS(r.Seq), r.MessageID, r.ConversationID, bk, r.Seq)
			p.add(partKey("messages_by_id", r.MessageID), cqlInsertByID, r.MessageID, r.ConversationID, r.Seq)
		}
	}
	for _, u := range b.Conversations {
		last, err := json.Marshal(u.LastMessage)
		if err != nil {
			return fmt.Errorf("query store: encode last message: %w", err)
		}
		p.add(partKey("conversations_by_user", u.UserID), cqlSetUserConv,
			u.LastMessage.Seq, u.PeerID, string(last), u.LastMessage.Seq, u.UserID, u.ConversationID)
	}
	for _, g := range b.Groups {
		last, err := json.Marshal(g.LastMessage)
		if err != nil {
			return fmt.Errorf("query store: encode last message: %w", err)
		}
		p.add(partKey("group_conversations", g.ConversationID), cqlSetGroupState,
			g.LastMessage.Seq, string(last), g.LastMessage.Seq, g.ConversationID)
	}
	for _, r := range b.ReadSeqs {
		p.add(partKey("conversations_by_user", r.UserID), cqlSetReadSeq, r.Seq, r.Seq, r.UserID, r.ConversationID)
	}
	batches := p.batches()
	return forEach(ctx, len(batches), func(ctx context.Context, i int) error {
		return c.exec(ctx, batches[i])
	})
}

// exec runs one partition's statements: a single statement alone, more as
// one UNLOGGED batch.
func (c *CassandraStore) exec(ctx context.Context, sts []stmt) error {
	if len(sts) == 1 {
		err := c.s.Query(sts[0].cql, sts[0].args...).WithContext(ctx).Idempotent(true).Exec()
		return storeErr("apply", err)
	}
	b := c.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
	for _, st := range sts {
		b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: st.cql, Args: st.args, Idempotent: true})
	}
	return storeErr("apply batch", c.s.ExecuteBatch(b))
}

// forEach runs f(0..n-1) with at most parallelism at once and returns the
// first error; the others are cancelled through ctx.
func forEach(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	if n == 1 {
		return f(ctx, 0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		sem   = make(chan struct{}, parallelism)
	)
	fail := func(err error) {
		once.Do(func() {
			first = err
			cancel()
		})
	}
loop:
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			fail(ctx.Err())
			break loop
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(ctx, i); err != nil {
				fail(err)
			}
		}(i)
	}
	wg.Wait()
	return first
}

// Messages reads the conversation's buckets that intersect r, from the
// message_buckets index, one partition after another in the order of r
// until Limit messages are found.
func (c *CassandraStore) Messages(ctx context.Context, conv string, r SeqRange) ([]message.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.Limit <= 0 {
		return nil, nil
	}
	lo := max(r.After, 0) // exclusive
	hi := int64(math.MaxInt64)
	if r.Before > 0 {
		hi = r.Before // exclusive
	}
	if lo >= hi-1 {
		return nil, nil
	}
	bucketsCQL, msgsCQL := cqlBucketsAsc, cqlMessagesAsc
	if r.Desc {
		bucketsCQL, msgsCQL = cqlBucketsDesc, cqlMessagesDesc
	}
	bit := c.s.Query(bucketsCQL, conv, Bucket(lo+1), Bucket(hi-1)).WithContext(ctx).Idempotent(true).PageSize(100).Iter()
	var (
		out []message.Message
		bk  int64
	)
	for len(out) < r.Limit && bit.Scan(&bk) {
		iter := c.s.Query(msgsCQL, conv, bk, lo, hi, r.Limit-len(out)).WithContext(ctx).Idempotent(true).Iter()
		for {
			m, ok := scanMessage(iter, conv)
			if !ok {
				break
			}
			out = append(out, m)
		}
		if err := iter.Close(); err != nil {
			_ = bit.Close()
			return nil, storeErr("read messages", err)
		}
	}
	if err := bit.Close(); err != nil {
		return nil, storeErr("read message buckets", err)
	}
	return out, nil
}

// scanMessage reads the next row of messageColumns.
func scanMessage(iter *gocql.Iter, conv string) (message.Message, bool) {
	m := message.Message{ConversationID: conv}
	var (
		content  []byte
		sentAtNs *int64
	)
	if !iter.Scan(&m.Seq, &m.ID, &m.SenderID, &m.Type, &content, &m.Mentions, &sentAtNs,
		&m.ClientMsgID, &m.Recalled, &m.GroupID, &m.ToUserID) {
		return message.Message{}, false
	}
	if len(content) > 0 {
		m.Content = json.RawMessage(content)
	}
	if m.Mentions == nil {
		m.Mentions = []string{}
	}
	if sentAtNs != nil {
		m.SentAt = time.Unix(0, *sentAtNs).UTC()
	}
	return m, true
}

func (c *CassandraStore) MessageByID(ctx context.Context, id string) (message.Message, bool, error) {
	if err := ctx.Err(); err != nil {
		return message.Message{}, false, err
	}
	var (
		conv string
		seq  int64
	)
	err := c.s.Query(cqlMessageByID, id).WithContext(ctx).Idempotent(true).Scan(&conv, &seq)
	if errors.Is(err, gocql.ErrNotFound) {
		return message.Message{}, false, nil
	}
	if err != nil {
		return message.Message{}, false, storeErr("read message id", err)
	}
	iter := c.s.Query(cqlMessageAtSeq, conv, Bucket(seq), seq).WithContext(ctx).Idempotent(true).Iter()
	m, found := scanMessage(iter, conv)
	if err := iter.Close(); err != nil {
		return message.Message{}, false, storeErr("read message", err)
	}
	return m, found, nil
}

// userRow is the scan target of a conversations_by_user row.
type userRow struct {
	peer, last       string
	lastSeq, readSeq int64
	muted, pinned    bool
}

func (r userRow) conversation(conv string) (UserConversation, error) {
	out := UserConversation{ConversationID: conv, PeerID: r.peer, LastSeq: r.lastSeq, ReadSeq: r.readSeq, Muted: r.muted, Pinned: r.pinned}
	if r.last != "" {
		var m message.Message
		if err := json.Unmarshal([]byte(r.last), &m); err != nil {
			return out, fmt.Errorf("query store: decode last message of %s: %w", conv, err)
		}
		out.LastMessage = &m
	}
	return out, nil
}

func (c *CassandraStore) UserConversations(ctx context.Context, userID string) ([]UserConversation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	iter := c.s.Query(cqlUserConvRows, userID).WithContext(ctx).Idempotent(true).PageSize(userConversationsPage).Iter()
	var (
		out  []UserConversation
		conv string
		r    userRow
	)
	for iter.Scan(&conv, &r.peer, &r.last, &r.lastSeq, &r.readSeq, &r.muted, &r.pinned) {
		row, err := r.conversation(conv)
		if err != nil {
			_ = iter.Close()
			return nil, err
		}
		out = append(out, row)
		r = userRow{}
	}
	if err := iter.Close(); err != nil {
		return nil, storeErr("read conversations", err)
	}
	// Clustering order is already UTF-8 byte order, which is Go's string
	// order; sorting keeps the contract independent of the table option.
	sort.Slice(out, func(i, j int) bool { return out[i].ConversationID < out[j].ConversationID })
	return out, nil
}

func (c *CassandraStore) UserConversation(ctx context.Context, userID, conv string) (UserConversation, bool, error) {
	zero := UserConversation{ConversationID: conv}
	if err := ctx.Err(); err != nil {
		return zero, false, err
	}
	var r userRow
	err := c.s.Query(cqlUserConvRow, userID, conv).WithContext(ctx).Idempotent(true).
		Scan(&r.peer, &r.last, &r.lastSeq, &r.readSeq, &r.muted, &r.pinned)
	if errors.Is(err, gocql.ErrNotFound) {
		return zero, false, nil
	}
	if err != nil {
		return zero, false, storeErr("read conversation", err)
	}
	row, err := r.conversation(conv)
	if err != nil {
		return zero, false, err
	}
	return row, true, nil
}

// GroupStates reads each listed group's partition, several at once.
func (c *CassandraStore) GroupStates(ctx context.Context, convs []string) (map[string]GroupState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	uniq := make([]string, 0, len(convs))
	seen := make(map[string]bool, len(convs))
	for _, conv := range convs {
		if !seen[conv] {
			seen[conv] = true
			uniq = append(uniq, conv)
		}
	}
	states := make([]*GroupState, len(uniq))
	err := forEach(ctx, len(uniq), func(ctx context.Context, i int) error {
		var (
			last string
			seq  int64
		)
		err := c.s.Query(cqlGroupState, uniq[i]).WithContext(ctx).Idempotent(true).Scan(&last, &seq)
		if errors.Is(err, gocql.ErrNotFound) {
			return nil
		}
		if err != nil {
			return storeErr("read group state", err)
		}
		st := GroupState{ConversationID: uniq[i], LastSeq: seq}
		if last != "" {
			var m message.Message
			if err := json.Unmarshal([]byte(last), &m); err != nil {
				return fmt.Errorf("query store: decode last message of %s: %w", uniq[i], err)
			}
			st.LastMessage = &m
		}
		states[i] = &st
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]GroupState, len(uniq))
	for _, st := range states {
		if st != nil {
			out[st.ConversationID] = *st
		}
	}
	return out, nil
}

// UpdateSettings writes the given fields at a fresh timestamp, then reads
// both back (the read, at the session's consistency, sees the write).
func (c *CassandraStore) UpdateSettings(ctx context.Context, userID, conv string, muted, pinned *bool) (Settings, error) {
	if err := ctx.Err(); err != nil {
		return Settings{}, err
	}
	var q *gocql.Query
	switch {
	case muted != nil && pinned != nil:
		q = c.s.Query(cqlSetSettings, c.nextMicros(), *muted, *pinned, userID, conv)
	case muted != nil:
		q = c.s.Query(cqlSetMuted, c.nextMicros(), *muted, userID, conv)
	case pinned != nil:
		q = c.s.Query(cqlSetPinned, c.nextMicros(), *pinned, userID, conv)
	}
	if q != nil {
		if err := q.WithContext(ctx).Idempotent(true).Exec(); err != nil {
			return Settings{}, storeErr("update settings", err)
		}
	}
	var st Settings
	err := c.s.Query(cqlSettings, userID, conv).WithContext(ctx).Idempotent(true).Scan(&st.Muted, &st.Pinned)
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return Settings{}, storeErr("read settings", err)
	}
	return st, nil
}

func (c *CassandraStore) SetAcked(ctx context.Context, userID, deviceID, conv string, seq int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validSeq("acked", seq); err != nil {
		return err
	}
	err := c.s.Query(cqlSetAcked, seq, seq, userID, deviceID, conv).WithContext(ctx).Idempotent(true).Exec()
	return storeErr("set acked", err)
}

func (c *CassandraStore) Acked(ctx context.Context, userID, deviceID, conv string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var seq int64
	err := c.s.Query(cqlAcked, userID, deviceID, conv).WithContext(ctx).Idempotent(true).Scan(&seq)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, storeErr("read acked", err)
	}
	return seq, nil
}

// storeErr maps a Cassandra failure (shared/cassandra.Err).
func storeErr(op string, err error) error {
	return cassandra.Err(context.Background(), err, "history store: "+op)
}

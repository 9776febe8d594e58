package query

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/pebblex"
)

// PebbleStore keeps the read side in the embedded Pebble database under
// "query/", mirroring the Cassandra tables:
//
//	query/m/<conv>/<bucket:u64>/<seq:u64>   -> message (JSON)          messages
//	query/id/<message_id>                   -> {conversation_id, seq}  messages_by_id
//	query/uc/<user>/<conv>                  -> {peer, last message, last seq}  conversations_by_user (1:1)
//	query/rs/<user>/<conv>                  -> read seq (u64)          conversations_by_user.read_seq
//	query/st/<user>/<conv>                  -> {muted, pinned}         conversations_by_user settings
//	query/gs/<conv>                         -> {last message, last seq} group state (once per group)
//	query/ack/<user>/<hex(device)>/<conv>   -> delivered seq (u64)     per-device delivered seq
//
// Ids and conversation ids never contain "/"; device ids may, hence hex.
// Read-modify-writes (max of seqs, recall merge, settings) are serialised by
// one mutex: there is one Pebble store per process.
type PebbleStore struct {
	db *pebble.DB
	mu sync.Mutex
}

var _ Store = (*PebbleStore)(nil)

// NewPebbleStore returns a store on db (shared with the other domains).
func NewPebbleStore(db *pebble.DB) *PebbleStore { return &PebbleStore{db: db} }

func msgPrefix(conv string) []byte { return append(pebblex.Key("query", "m", conv), '/') }
func msgKey(conv string, seq int64) []byte {
	return pebblex.Key("query", "m", conv, pebblex.Uint64(uint64(Bucket(seq))), pebblex.Uint64(uint64(seq)))
}
func idKey(id string) []byte               { return pebblex.Key("query", "id", id) }
func ucKey(user, conv string) []byte       { return pebblex.Key("query", "uc", user, conv) }
func rsKey(user, conv string) []byte       { return pebblex.Key("query", "rs", user, conv) }
func stKey(user, conv string) []byte       { return pebblex.Key("query", "st", user, conv) }
func userPrefix(table, user string) []byte { return append(pebblex.Key("query", table, user), '/') }
func gsKey(conv string) []byte             { return pebblex.Key("query", "gs", conv) }
func ackKey(user, device, conv string) []byte {
	return pebblex.Key("query", "ack", user, hex.EncodeToString([]byte(device)), conv)
}

type idRecord struct {
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
}

type ucRecord struct {
	PeerID      string           `json:"peer_id,omitempty"`
	LastMessage *message.Message `json:"last_message,omitempty"`
	LastSeq     int64            `json:"last_seq"`
}

type gsRecord struct {
	LastMessage *message.Message `json:"last_message,omitempty"`
	LastSeq     int64            `json:"last_seq"`
}

type stRecord struct {
	Muted  bool `json:"muted,omitempty"`
	Pinned bool `json:"pinned,omitempty"`
}

func getJSON(r pebble.Reader, key []byte, v any) (bool, error) {
	raw, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("query store: decode %q: %w", key, err)
	}
	return true, nil
}

func getSeq(r pebble.Reader, key []byte) (int64, error) {
	raw, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	return int64(pebblex.ParseUint64(string(raw))), nil
}

func setJSON(b *pebble.Batch, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Set(key, raw, nil)
}

func setSeq(b *pebble.Batch, key []byte, seq int64) error {
	return b.Set(key, []byte(pebblex.Uint64(uint64(seq))), nil)
}

// Apply writes b in one synced batch. The batch is indexed so that several
// writes of one key within b see each other.
func (s *PebbleStore) Apply(ctx context.Context, b Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.Empty() {
		return nil
	}
	if err := validateBatch(b); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wb := s.db.NewIndexedBatch()
	defer wb.Close()

	for _, m := range b.Messages {
		key := msgKey(m.ConversationID, m.Seq)
		var old message.Message
		found, err := getJSON(wb, key, &old)
		if err != nil {
			return err
		}
		if found && old.Recalled {
			m.Recalled = true
		}
		if m.Recalled {
			m.Content = nil
		}
		if err := setJSON(wb, key, m); err != nil {
			return err
		}
		if err := setJSON(wb, idKey(m.ID), idRecord{ConversationID: m.ConversationID, Seq: m.Seq}); err != nil {
			return err
		}
	}
	for _, r := range b.Recalls {
		key := msgKey(r.ConversationID, r.Seq)
		var m message.Message
		found, err := getJSON(wb, key, &m)
		if err != nil {
			return err
		}
		if !found {
			// The mark may precede its message (a replay of a partial log):
			// keep a recalled placeholder the message will merge into.
			m = message.Message{ID: r.MessageID, ConversationID: r.ConversationID, Seq: r.Seq}
		}
		m.Recalled = true
		m.Content = nil
		if err := setJSON(wb, key, m); err != nil {
			return err
		}
		if r.MessageID != "" {
			if err := setJSON(wb, idKey(r.MessageID), idRecord{ConversationID: r.ConversationID, Seq: r.Seq}); err != nil {
				return err
			}
		}
	}
	for _, c := range b.Conversations {
		key := ucKey(c.UserID, c.ConversationID)
		var old ucRecord
		if _, err := getJSON(wb, key, &old); err != nil {
			return err
		}
		if old.LastSeq > c.LastMessage.Seq {
			continue
		}
		last := c.LastMessage
		if err := setJSON(wb, key, ucRecord{PeerID: c.PeerID, LastMessage: &last, LastSeq: last.Seq}); err != nil {
			return err
		}
	}
	for _, g := range b.Groups {
		key := gsKey(g.ConversationID)
		var old gsRecord
		if _, err := getJSON(wb, key, &old); err != nil {
			return err
		}
		if old.LastSeq > g.LastMessage.Seq {
			continue
		}
		last := g.LastMessage
		if err := setJSON(wb, key, gsRecord{LastMessage: &last, LastSeq: last.Seq}); err != nil {
			return err
		}
	}
	for _, r := range b.ReadSeqs {
		key := rsKey(r.UserID, r.ConversationID)
		old, err := getSeq(wb, key)
		if err != nil {
			return err
		}
		if old >= r.Seq {
			continue
		}
		if err := setSeq(wb, key, r.Seq); err != nil {
			return err
		}
	}
	return wb.Commit(pebble.Sync)
}

// Messages scans one conversation's keys between the bounds; buckets are
// part of the key, so the scan crosses them in seq order.
func (s *PebbleStore) Messages(ctx context.Context, conv string, r SeqRange) ([]message.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.Limit <= 0 {
		return nil, nil
	}
	opts := &pebble.IterOptions{LowerBound: msgPrefix(conv), UpperBound: pebblex.PrefixEnd(msgPrefix(conv))}
	if r.After > 0 {
		opts.LowerBound = msgKey(conv, r.After+1)
	}
	if r.Before > 0 {
		opts.UpperBound = msgKey(conv, r.Before)
	}
	it, err := s.db.NewIter(opts)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []message.Message
	step := it.Next
	ok := it.First()
	if r.Desc {
		step = it.Prev
		ok = it.Last()
	}
	for ; ok && len(out) < r.Limit; ok = step() {
		var m message.Message
		if err := json.Unmarshal(it.Value(), &m); err != nil {
			return nil, fmt.Errorf("query store: decode message: %w", err)
		}
		out = append(out, m)
	}
	return out, it.Error()
}

func (s *PebbleStore) MessageByID(ctx context.Context, id string) (message.Message, bool, error) {
	if err := ctx.Err(); err != nil {
		return message.Message{}, false, err
	}
	var ref idRecord
	found, err := getJSON(s.db, idKey(id), &ref)
	if err != nil || !found {
		return message.Message{}, false, err
	}
	var m message.Message
	found, err = getJSON(s.db, msgKey(ref.ConversationID, ref.Seq), &m)
	return m, found, err
}

func (s *PebbleStore) UserConversations(ctx context.Context, userID string) ([]UserConversation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows := map[string]*UserConversation{}
	row := func(conv string) *UserConversation {
		r, ok := rows[conv]
		if !ok {
			r = &UserConversation{ConversationID: conv}
			rows[conv] = r
		}
		return r
	}
	var ferr error
	scan := func(table string, fn func(r *UserConversation, v []byte) error) error {
		prefix := userPrefix(table, userID)
		err := pebblex.Scan(s.db, prefix, false, func(k, v []byte) bool {
			ferr = fn(row(string(k[len(prefix):])), v)
			return ferr == nil
		})
		if err != nil {
			return err
		}
		return ferr
	}
	if err := scan("uc", func(r *UserConversation, v []byte) error {
		var rec ucRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		r.PeerID, r.LastMessage, r.LastSeq = rec.PeerID, rec.LastMessage, rec.LastSeq
		return nil
	}); err != nil {
		return nil, err
	}
	if err := scan("rs", func(r *UserConversation, v []byte) error {
		r.ReadSeq = int64(pebblex.ParseUint64(string(v)))
		return nil
	}); err != nil {
		return nil, err
	}
	if err := scan("st", func(r *UserConversation, v []byte) error {
		var rec stRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		r.Muted, r.Pinned = rec.Muted, rec.Pinned
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]UserConversation, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ConversationID < out[j].ConversationID })
	return out, nil
}

func (s *PebbleStore) UserConversation(ctx context.Context, userID, conv string) (UserConversation, bool, error) {
	out := UserConversation{ConversationID: conv}
	if err := ctx.Err(); err != nil {
		return out, false, err
	}
	var uc ucRecord
	f1, err := getJSON(s.db, ucKey(userID, conv), &uc)
	if err != nil {
		return out, false, err
	}
	out.PeerID, out.LastMessage, out.LastSeq = uc.PeerID, uc.LastMessage, uc.LastSeq
	raw, f2, err := pebblex.Get(s.db, rsKey(userID, conv))
	if err != nil {
		return out, false, err
	}
	out.ReadSeq = int64(pebblex.ParseUint64(string(raw)))
	var st stRecord
	f3, err := getJSON(s.db, stKey(userID, conv), &st)
	if err != nil {
		return out, false, err
	}
	out.Muted, out.Pinned = st.Muted, st.Pinned
	return out, f1 || f2 || f3, nil
}

func (s *PebbleStore) GroupStates(ctx context.Context, convs []string) (map[string]GroupState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[string]GroupState, len(convs))
	for _, c := range convs {
		var rec gsRecord
		found, err := getJSON(s.db, gsKey(c), &rec)
		if err != nil {
			return nil, err
		}
		if found {
			out[c] = GroupState{ConversationID: c, LastMessage: rec.LastMessage, LastSeq: rec.LastSeq}
		}
	}
	return out, nil
}

func (s *PebbleStore) UpdateSettings(ctx context.Context, userID, conv string, muted, pinned *bool) (Settings, error) {
	if err := ctx.Err(); err != nil {
		return Settings{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var rec stRecord
	if _, err := getJSON(s.db, stKey(userID, conv), &rec); err != nil {
		return Settings{}, err
	}
	if muted != nil {
		rec.Muted = *muted
	}
	if pinned != nil {
		rec.Pinned = *pinned
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return Settings{}, err
	}
	if err := s.db.Set(stKey(userID, conv), raw, pebble.Sync); err != nil {
		return Settings{}, err
	}
	return Settings(rec), nil
}

func (s *PebbleStore) SetAcked(ctx context.Context, userID, deviceID, conv string, seq int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validSeq("acked", seq); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ackKey(userID, deviceID, conv)
	old, err := getSeq(s.db, key)
	if err != nil || old >= seq {
		return err
	}
	// Not synced: a lost ack only costs a redundant offline push.
	return s.db.Set(key, []byte(pebblex.Uint64(uint64(seq))), pebble.NoSync)
}

func (s *PebbleStore) Acked(ctx context.Context, userID, deviceID, conv string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return getSeq(s.db, ackKey(userID, deviceID, conv))
}

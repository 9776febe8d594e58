package message

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/beehive-im/beehive/shared/pebblex"
)

// Keys under the domain's prefix in the process's Pebble database:
//
//	msg/seq/<conversation id>  -> 8-byte big-endian high-water mark
//	msg/dedup/<key>            -> JSON dedupRecord
const (
	seqPrefix   = "msg/seq/"
	dedupPrefix = "msg/dedup/"
)

// stripes serialises read-modify-write cycles per key: the process owns
// its Pebble database, so a per-key lock makes them atomic.
type stripes [256]sync.Mutex

func (s *stripes) lock(key string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	m := &s[h.Sum32()%uint32(len(s))]
	m.Lock()
	return m.Unlock
}

// PebbleSeqLeaser records seq marks in Pebble with synced writes.
type PebbleSeqLeaser struct {
	db    *pebble.DB
	locks stripes
}

var _ SeqLeaser = (*PebbleSeqLeaser)(nil)

// NewPebbleSeqLeaser returns a leaser over db.
func NewPebbleSeqLeaser(db *pebble.DB) *PebbleSeqLeaser { return &PebbleSeqLeaser{db: db} }

// Lease implements SeqLeaser.
func (l *PebbleSeqLeaser) Lease(ctx context.Context, conversationID string, block int64) (int64, error) {
	if block <= 0 {
		return 0, fmt.Errorf("seq lease block must be positive, got %d", block)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	defer l.locks.lock(conversationID)()
	mark, err := l.mark(conversationID)
	if err != nil {
		return 0, err
	}
	hi := mark + block
	if err := l.db.Set([]byte(seqPrefix+conversationID), []byte(pebblex.Uint64(uint64(hi))), pebble.Sync); err != nil {
		return 0, fmt.Errorf("record seq mark: %w", err)
	}
	return hi, nil
}

// Mark implements SeqLeaser.
func (l *PebbleSeqLeaser) Mark(ctx context.Context, conversationID string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	defer l.locks.lock(conversationID)()
	return l.mark(conversationID)
}

func (l *PebbleSeqLeaser) mark(conversationID string) (int64, error) {
	v, ok, err := pebblex.Get(l.db, []byte(seqPrefix+conversationID))
	if err != nil {
		return 0, fmt.Errorf("read seq mark: %w", err)
	}
	if !ok {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("corrupt seq mark for %s", conversationID)
	}
	return int64(pebblex.ParseUint64(string(v))), nil
}

// PebbleDedupStore keeps dedup claims in Pebble with synced writes.
// Completed entries are kept (a retry may come after any delay).
type PebbleDedupStore struct {
	db    *pebble.DB
	locks stripes
}

var _ DedupStore = (*PebbleDedupStore)(nil)

// NewPebbleDedupStore returns a dedup store over db.
func NewPebbleDedupStore(db *pebble.DB) *PebbleDedupStore { return &PebbleDedupStore{db: db} }

type dedupRecord struct {
	// Token is set while the claim is pending.
	Token   string   `json:"t,omitempty"`
	Expires int64    `json:"exp,omitempty"` // unix ms
	Message *Message `json:"m,omitempty"`
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *PebbleDedupStore) get(key string) (*dedupRecord, error) {
	v, ok, err := pebblex.Get(s.db, []byte(dedupPrefix+key))
	if err != nil || !ok {
		return nil, err
	}
	var r dedupRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("corrupt dedup record %q: %w", key, err)
	}
	return &r, nil
}

func (s *PebbleDedupStore) put(key string, r dedupRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Set([]byte(dedupPrefix+key), v, pebble.Sync)
}

// Claim implements DedupStore.
func (s *PebbleDedupStore) Claim(ctx context.Context, key string, now time.Time, ttl time.Duration) (Claim, error) {
	if err := ctx.Err(); err != nil {
		return Claim{}, err
	}
	defer s.locks.lock(key)()
	r, err := s.get(key)
	if err != nil {
		return Claim{}, err
	}
	if r != nil {
		if r.Message != nil {
			return Claim{Original: r.Message}, nil
		}
		if now.UnixMilli() < r.Expires {
			return Claim{}, ErrClaimPending
		}
	}
	tok := newToken()
	if err := s.put(key, dedupRecord{Token: tok, Expires: now.Add(ttl).UnixMilli()}); err != nil {
		return Claim{}, fmt.Errorf("write dedup claim: %w", err)
	}
	return Claim{Token: tok}, nil
}

// Complete implements DedupStore.
func (s *PebbleDedupStore) Complete(ctx context.Context, key, token string, m Message) error {
	defer s.locks.lock(key)()
	r, err := s.get(key)
	if err != nil {
		return err
	}
	if r == nil || r.Message != nil || r.Token != token {
		return ErrClaimLost
	}
	return s.put(key, dedupRecord{Message: &m})
}

// Release implements DedupStore.
func (s *PebbleDedupStore) Release(ctx context.Context, key, token string) error {
	defer s.locks.lock(key)()
	r, err := s.get(key)
	if err != nil {
		return err
	}
	if r == nil || r.Message != nil || r.Token != token {
		return nil
	}
	return s.db.Delete([]byte(dedupPrefix+key), pebble.Sync)
}

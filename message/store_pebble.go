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
//	msg/seq/<conversation id>     -> 8-byte big-endian high-water mark
//	msg/dedup/<key>               -> JSON dedupRecord
//	msg/dedupdue/<due>/<key>      -> "" (due: 8-byte big-endian unix ms)
//	msg/dedupdue-backfilled       -> "" (see indexEarlierRecords)
//
// A dedupdue entry says the record at key may be swept from due on. It
// is a hint, written with every record: a record rewritten later (claimed
// again, completed) gets a later entry and leaves the old one behind,
// which Sweep drops once it is due.
const (
	seqPrefix        = "msg/seq/"
	dedupPrefix      = "msg/dedup/"
	duePrefix        = "msg/dedupdue/"
	dueBackfilledKey = "msg/dedupdue-backfilled"
)

// pendingGrace is how long Sweep keeps a pending claim past its expiry:
// Complete does not check expiry, so a send that outlived its claim still
// records its message as long as nobody claimed the key meanwhile.
const pendingGrace = 5 * time.Minute

func dueKey(due int64, key string) []byte {
	return []byte(duePrefix + pebblex.Uint64(uint64(max(due, 0))) + "/" + key)
}

// stripes serialises read-modify-write cycles per key: the process owns
// its Pebble database, so a per-key lock makes them atomic.
type stripes [256]sync.Mutex

func (s *stripes) index(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(len(s)))
}

func (s *stripes) lock(key string) func() {
	m := &s[s.index(key)]
	m.Lock()
	return m.Unlock
}

// lockAll locks the stripes of every key in ascending order, so it cannot
// deadlock with another lockAll; lock takes only one stripe.
func (s *stripes) lockAll(keys []string) func() {
	var held [len(s)]bool
	for _, k := range keys {
		held[s.index(k)] = true
	}
	for i := range held {
		if held[i] {
			s[i].Lock()
		}
	}
	return func() {
		for i := range held {
			if held[i] {
				s[i].Unlock()
			}
		}
	}
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
// Completed entries are kept until Sweep removes them,
// DefaultDedupRetention after their claim expired, as RedisDedupStore
// keeps them; a retry after that sends anew.
type PebbleDedupStore struct {
	db         *pebble.DB
	locks      stripes
	retention  time.Duration
	sweepBatch int
}

var _ DedupStore = (*PebbleDedupStore)(nil)

// NewPebbleDedupStore returns a dedup store over db.
func NewPebbleDedupStore(db *pebble.DB) *PebbleDedupStore {
	return &PebbleDedupStore{db: db, retention: DefaultDedupRetention, sweepBatch: pebblex.SweepBatch}
}

type dedupRecord struct {
	// Token is set while the claim is pending.
	Token   string   `json:"t,omitempty"`
	Expires int64    `json:"exp,omitempty"` // unix ms
	Message *Message `json:"m,omitempty"`
	// Until is when a completed entry may be swept (unix ms); 0 in
	// entries completed before it existed.
	Until int64 `json:"u,omitempty"`
}

// due is when Sweep may delete r (unix ms).
func (r dedupRecord) due(retention time.Duration) int64 {
	switch {
	case r.Message == nil:
		return r.Expires + pendingGrace.Milliseconds()
	case r.Until != 0:
		return r.Until
	}
	return r.Message.SentAt.UnixMilli() + retention.Milliseconds()
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

// put writes r with its due entry in one synced batch.
func (s *PebbleDedupStore) put(key string, r dedupRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set([]byte(dedupPrefix+key), v, nil); err != nil {
		return err
	}
	if err := b.Set(dueKey(r.due(s.retention), key), nil, nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
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
	return s.put(key, dedupRecord{Message: &m, Until: r.Expires + s.retention.Milliseconds()})
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

// Sweep deletes the dedup records due at now — pending claims
// pendingGrace past their expiry, completed entries retention after
// their claim expired — at most sweepBatch per batch, and returns how
// many it removed. Neither is still needed: Claim treats an expired
// pending claim as absent, and a completed entry answers retries only
// within the retention (RedisDedupStore's too). Each record is re-read
// under its key's lock, so an unexpired claim or a fresh completion is
// never deleted.
//
// Cost: only the due entries are read (a range scan of msg/dedupdue/ up
// to now), except once per data dir, when the records of earlier
// versions get their entries (indexEarlierRecords).
func (s *PebbleDedupStore) Sweep(ctx context.Context, now time.Time) (removed int, err error) {
	if err := s.indexEarlierRecords(ctx); err != nil {
		return 0, err
	}
	end := dueKey(now.UnixMilli()+1, "")
	var bad error // a corrupt record is left alone and reported
	for from := []byte(duePrefix); from != nil; {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		var entries [][]byte
		from, err = pebblex.ScanRange(s.db, from, end, func(k, _ []byte) bool {
			entries = append(entries, append([]byte(nil), k...))
			return len(entries) < s.sweepBatch
		})
		if err != nil {
			return removed, fmt.Errorf("scan dedup due index: %w", err)
		}
		n, err := s.deleteDue(entries, now.UnixMilli())
		removed += n
		if err != nil {
			bad = err
		}
	}
	return removed, bad
}

// deleteDue drops the due entries and deletes the records they name that
// are due at now (unix ms). It holds the records' locks until the batch
// is committed: a claim must not slip in between the check and the
// delete.
func (s *PebbleDedupStore) deleteDue(entries [][]byte, now int64) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = string(e[len(duePrefix)+8+1:])
	}
	defer s.locks.lockAll(keys)()
	b := s.db.NewBatch()
	defer b.Close()
	var bad error
	n, deleted := 0, map[string]bool{}
	for i, key := range keys {
		if deleted[key] {
			// A second due entry of a record this batch deletes.
			if err := b.Delete(entries[i], nil); err != nil {
				return 0, err
			}
			continue
		}
		r, err := s.get(key)
		if err != nil {
			bad = err // keep the entry: the next sweep reports it again
			continue
		}
		if err := b.Delete(entries[i], nil); err != nil {
			return 0, err
		}
		if r == nil || r.due(s.retention) > now {
			continue // released, or rewritten with a later entry of its own
		}
		if err := b.Delete([]byte(dedupPrefix+key), nil); err != nil {
			return 0, err
		}
		deleted[key] = true
		n++
	}
	// Not synced: no answer depends on it, and a sweep lost in a crash is
	// done again by the next one.
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, fmt.Errorf("sweep dedup records: %w", err)
	}
	return n, bad
}

// indexEarlierRecords writes the due entries of records written before
// the index existed, once per data dir: a full scan of msg/dedup/. Claims
// running meanwhile write their own entries, so an entry written here
// for a record they replace is merely stale.
func (s *PebbleDedupStore) indexEarlierRecords(ctx context.Context) error {
	if _, done, err := pebblex.Get(s.db, []byte(dueBackfilledKey)); err != nil || done {
		return err
	}
	end := pebblex.PrefixEnd([]byte(dedupPrefix))
	for from := []byte(dedupPrefix); from != nil; {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := s.db.NewBatch()
		var setErr error
		next, err := pebblex.ScanRange(s.db, from, end, func(k, v []byte) bool {
			var r dedupRecord
			if json.Unmarshal(v, &r) != nil {
				return true // corrupt: Claim reports it; nothing to sweep
			}
			setErr = b.Set(dueKey(r.due(s.retention), string(k[len(dedupPrefix):])), nil, nil)
			return setErr == nil && int(b.Count()) < s.sweepBatch
		})
		if err == nil {
			err = setErr
		}
		if err == nil {
			err = b.Commit(pebble.NoSync)
		}
		_ = b.Close()
		if err != nil {
			return fmt.Errorf("index dedup records: %w", err)
		}
		from = next
	}
	return s.db.Set([]byte(dueBackfilledKey), nil, pebble.Sync)
}

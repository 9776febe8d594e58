package message_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/message/storetest"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/pebblex"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// pebbleDir opens a Pebble database in a temporary directory; reopen
// closes it (as a crash would, dropping every in-memory state built on it)
// and opens it again. The last one is closed when the test ends.
type pebbleDir struct {
	dir string
	db  *pebble.DB
}

func newPebbleDir(t *testing.T) *pebbleDir {
	p := &pebbleDir{dir: t.TempDir()}
	p.db = testinfra.OpenPebble(t, p.dir)
	t.Cleanup(func() { _ = p.db.Close() })
	return p
}

func (p *pebbleDir) reopen(t *testing.T) *pebble.DB {
	if err := p.db.Close(); err != nil {
		t.Fatal(err)
	}
	p.db = testinfra.OpenPebble(t, p.dir)
	return p.db
}

func TestPebbleDedupStoreContract(t *testing.T) {
	storetest.RunDedupStore(t, func(t *testing.T) (message.DedupStore, storetest.Reopen[message.DedupStore]) {
		p := newPebbleDir(t)
		return message.NewPebbleDedupStore(p.db), func(t *testing.T) message.DedupStore {
			return message.NewPebbleDedupStore(p.reopen(t))
		}
	})
}

func TestPebbleSeqLeaserContract(t *testing.T) {
	storetest.RunSeqLeaser(t, func(t *testing.T) (message.SeqLeaser, storetest.Reopen[message.SeqLeaser]) {
		p := newPebbleDir(t)
		return message.NewPebbleSeqLeaser(p.db), func(t *testing.T) message.SeqLeaser {
			return message.NewPebbleSeqLeaser(p.reopen(t))
		}
	})
}

func TestLeasedAllocatorOverPebbleContract(t *testing.T) {
	storetest.RunSeqAllocator(t, func(t *testing.T) (message.SeqAllocator, storetest.Reopen[message.SeqAllocator]) {
		p := newPebbleDir(t)
		return message.NewLeasedAllocator(message.NewPebbleSeqLeaser(p.db), 10), func(t *testing.T) message.SeqAllocator {
			return message.NewLeasedAllocator(message.NewPebbleSeqLeaser(p.reopen(t)), 10)
		}
	})
}

// backwardsLeaser simulates a store that lost its marks.
type backwardsLeaser struct{ hi int64 }

func (l *backwardsLeaser) Lease(context.Context, string, int64) (int64, error) { return l.hi, nil }
func (l *backwardsLeaser) Mark(context.Context, string) (int64, error)         { return l.hi, nil }

func TestLeasedAllocatorRefusesToGoBackwards(t *testing.T) {
	l := &backwardsLeaser{hi: 2}
	a := message.NewLeasedAllocator(l, 2)
	for i := 0; i < 2; i++ {
		if _, err := a.Next(context.Background(), "p:a:b"); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := a.Next(context.Background(), "p:a:b"); err == nil {
		t.Fatalf("allocator handed out %d again after the leaser went backwards", s)
	}
}

// flakyProducer fails its first produce.
type flakyProducer struct {
	mu    sync.Mutex
	fail  int
	count int
}

func (p *flakyProducer) Produce(_ context.Context, recs ...message.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail > 0 {
		p.fail--
		return errors.New("broker down")
	}
	p.count += len(recs)
	return nil
}

func TestFailedProduceReleasesTheClaimAndAnswersUnavailable(t *testing.T) {
	db := testinfra.OpenPebble(t, t.TempDir())
	defer db.Close()
	prod := &flakyProducer{fail: 1}
	svc := newMessages(t, message.Deps{
		Relations: &relations{blocked: map[[2]string]bool{}}, Groups: &groups{}, Reader: &reader{msgs: map[string]message.Message{}},
		Seqs: message.NewLeasedAllocator(message.NewPebbleSeqLeaser(db), 0), Dedup: message.NewPebbleDedupStore(db), Producer: prod, Signals: prod,
	}, message.Options{})
	req := message.SendRequest{SenderID: ids.New(), ToUserID: ids.New(), ClientMsgID: "c", Type: "text", Content: textContent("x")}
	if _, err := svc.SendMessage(context.Background(), req); !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("got %v, want unavailable", err)
	}
	m, err := svc.SendMessage(context.Background(), req)
	if err != nil {
		t.Fatalf("retry after a failed produce: %v", err)
	}
	// The failed attempt's seq is skipped, never reused.
	if m.Seq != 2 || prod.count != 1 {
		t.Fatalf("retry got seq %d, %d produced", m.Seq, prod.count)
	}
}

// dedupSweepKit drives a PebbleDedupStore with explicit times.
type dedupSweepKit struct {
	s   *message.PebbleDedupStore
	db  *pebble.DB
	ttl time.Duration
}

func (k dedupSweepKit) claim(t *testing.T, key string, at time.Time) message.Claim {
	t.Helper()
	c, err := k.s.Claim(context.Background(), key, at, k.ttl)
	if err != nil {
		t.Fatal(err)
	}
	if c.Token == "" {
		t.Fatalf("claim of %s at %v = %+v, want a token", key, at, c)
	}
	return c
}

func (k dedupSweepKit) complete(t *testing.T, key string, at time.Time) message.Message {
	t.Helper()
	c := k.claim(t, key, at)
	m := message.Message{
		ID: ids.New(), ConversationID: ids.P2P(ids.New(), ids.New()), Seq: 1, SenderID: ids.New(), Type: message.TypeText,
		Content: json.RawMessage(`"hi"`), Mentions: []string{}, SentAt: at, ClientMsgID: "c",
	}
	if err := k.s.Complete(context.Background(), key, c.Token, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (k dedupSweepKit) wantOriginal(t *testing.T, key string, at time.Time, want message.Message) {
	t.Helper()
	c, err := k.s.Claim(context.Background(), key, at, k.ttl)
	if err != nil {
		t.Fatal(err)
	}
	if c.Original == nil || !reflect.DeepEqual(*c.Original, want) {
		t.Fatalf("retried claim of %s = %+v, want the original %+v", key, c, want)
	}
}

func (k dedupSweepKit) wantPending(t *testing.T, key string, at time.Time) {
	t.Helper()
	if _, err := k.s.Claim(context.Background(), key, at, k.ttl); !errors.Is(err, message.ErrClaimPending) {
		t.Fatalf("claim of %s at %v: %v, want ErrClaimPending", key, at, err)
	}
}

// wantNoKeys fails when any key under msg/ still names one of keys.
func (k dedupSweepKit) wantNoKeys(t *testing.T, keys ...string) {
	t.Helper()
	err := pebblex.Scan(k.db, []byte("msg/"), false, func(raw, _ []byte) bool {
		for _, key := range keys {
			if strings.Contains(string(raw), key) {
				t.Errorf("key %q of swept %s left behind", raw, key)
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}

func sweep(t *testing.T, s *message.PebbleDedupStore, now time.Time, want int) {
	t.Helper()
	n, err := s.Sweep(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("sweep at %v removed %d records, want %d", now, n, want)
	}
}

func TestPebbleDedupSweepRemovesExactlyTheExpiredRecords(t *testing.T) {
	p := newPebbleDir(t)
	k := dedupSweepKit{s: message.NewPebbleDedupStore(p.db), db: p.db, ttl: 30 * time.Second}
	k.s.SetSweepBatch(2) // several batches
	now := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	retention := message.DefaultDedupRetention
	newKey := func() string { return "send/" + ids.New() + "/c" }

	// Due at now: pending claims expired PendingGrace ago, completed ones
	// retention after their claim expired.
	expiredPending, oldCompleted := newKey(), newKey()
	k.claim(t, expiredPending, now.Add(-k.ttl-message.PendingGrace))
	k.complete(t, oldCompleted, now.Add(-k.ttl-retention))
	due := []string{expiredPending, oldCompleted}
	for i := 0; i < 4; i++ {
		key := newKey()
		k.claim(t, key, now.Add(-time.Duration(i)*time.Hour-k.ttl-message.PendingGrace))
		due = append(due, key)
	}
	// Not yet due.
	livePending, inGrace, recent, almostOld, released := newKey(), newKey(), newKey(), newKey(), newKey()
	live := k.claim(t, livePending, now.Add(-10*time.Second))
	graced := k.claim(t, inGrace, now.Add(-k.ttl-time.Minute))
	recentMsg := k.complete(t, recent, now.Add(-24*time.Hour))
	almostOldMsg := k.complete(t, almostOld, now.Add(-k.ttl-retention+time.Millisecond))
	// Claimed again after its first claim expired: the first claim's due
	// entry is due, the record is not.
	reclaimed := newKey()
	k.claim(t, reclaimed, now.Add(-2*time.Hour))
	k.claim(t, reclaimed, now.Add(-10*time.Second))
	rel := k.claim(t, released, now.Add(-time.Hour))
	if err := k.s.Release(context.Background(), released, rel.Token); err != nil {
		t.Fatal(err)
	}

	sweep(t, k.s, now, len(due))

	t.Run("swept keys are gone and free", func(t *testing.T) {
		k.wantNoKeys(t, due...)
		k.claim(t, expiredPending, now)
		k.claim(t, oldCompleted, now)
	})
	t.Run("an unexpired claim still deduplicates and completes", func(t *testing.T) {
		k.wantPending(t, livePending, now)
		k.wantPending(t, reclaimed, now)
		m := k.complete(t, newKey(), now) // any message will do
		if err := k.s.Complete(context.Background(), livePending, live.Token, m); err != nil {
			t.Fatalf("complete of the live claim after the sweep: %v", err)
		}
		k.wantOriginal(t, livePending, now, m)
	})
	t.Run("a claim expired within the grace can still complete", func(t *testing.T) {
		m := k.complete(t, newKey(), now)
		if err := k.s.Complete(context.Background(), inGrace, graced.Token, m); err != nil {
			t.Fatalf("late complete within the grace: %v", err)
		}
		k.wantOriginal(t, inGrace, now, m)
	})
	t.Run("completed keys within retention still return the original", func(t *testing.T) {
		k.wantOriginal(t, recent, now, recentMsg)
		k.wantOriginal(t, almostOld, now, almostOldMsg)
	})
	t.Run("sweeping again removes nothing", func(t *testing.T) {
		sweep(t, k.s, now, 0)
	})
	t.Run("in the end everything goes, index entries too", func(t *testing.T) {
		n, err := k.s.Sweep(context.Background(), now.Add(retention+time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("nothing swept after the retention")
		}
		k.wantNoKeys(t, append(due, livePending, inGrace, recent, almostOld, released, reclaimed)...)
	})
}

// A data dir written before the sweep existed has records but no index
// of when they fall due; the first sweep must find them too.
func TestPebbleDedupSweepFindsRecordsOfEarlierVersions(t *testing.T) {
	p := newPebbleDir(t)
	now := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	ms := func(at time.Time) string { return strconv.FormatInt(at.UnixMilli(), 10) }
	msgAt := func(at time.Time) message.Message {
		return message.Message{ID: ids.New(), ConversationID: ids.P2P(ids.New(), ids.New()), Seq: 3, SenderID: ids.New(),
			Type: message.TypeText, Content: json.RawMessage(`"old"`), Mentions: []string{}, SentAt: at, ClientMsgID: "c"}
	}
	newKey := func() string { return "send/" + ids.New() + "/c" }
	expiredPending, livePending, oldDone, recentDone := newKey(), newKey(), newKey(), newKey()
	recentMsg := msgAt(now.Add(-time.Hour))
	oldJSON, _ := json.Marshal(msgAt(now.Add(-message.DefaultDedupRetention - time.Second)))
	recentJSON, _ := json.Marshal(recentMsg)
	for key, v := range map[string]string{
		expiredPending: `{"t":"a","exp":` + ms(now.Add(-message.PendingGrace-time.Second)) + `}`,
		livePending:    `{"t":"b","exp":` + ms(now.Add(10*time.Second)) + `}`,
		oldDone:        `{"m":` + string(oldJSON) + `}`,
		recentDone:     `{"m":` + string(recentJSON) + `}`,
	} {
		if err := p.db.Set([]byte("msg/dedup/"+key), []byte(v), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	k := dedupSweepKit{s: message.NewPebbleDedupStore(p.db), db: p.db, ttl: 30 * time.Second}
	k.s.SetSweepBatch(2)

	sweep(t, k.s, now, 2)
	k.wantNoKeys(t, expiredPending, oldDone)
	k.wantPending(t, livePending, now)
	k.wantOriginal(t, recentDone, now, recentMsg)

	// After a restart the old records are still found when they fall due.
	k.s = message.NewPebbleDedupStore(p.reopen(t))
	k.db = p.db
	sweep(t, k.s, now.Add(message.DefaultDedupRetention), 2)
	k.wantNoKeys(t, livePending, recentDone)
}

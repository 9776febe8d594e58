package message_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
)

func TestSeqSurvivesAllocatorRestartOnSamePebbleDir(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	conv := ids.P2P(ids.New(), ids.New())
	other := ids.Group(ids.New())

	db := openPebble(t, dir)
	a := message.NewLeasedAllocator(message.NewPebbleSeqLeaser(db), 10)
	var last int64
	for i := 1; i <= 25; i++ { // crosses two block boundaries
		s, err := a.Next(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		if s != int64(i) {
			t.Fatalf("seq %d, want %d", s, i)
		}
		last = s
	}
	if l, _ := a.Last(ctx, conv); l != 25 {
		t.Fatalf("Last = %d, want 25", l)
	}
	if s, _ := a.Next(ctx, other); s != 1 {
		t.Fatalf("another conversation starts at %d", s)
	}
	// Crash: the allocator's memory is gone, only Pebble remains.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openPebble(t, dir)
	defer db.Close()
	b := message.NewLeasedAllocator(message.NewPebbleSeqLeaser(db), 10)
	l, err := b.Last(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if l < last {
		t.Fatalf("Last after restart %d is below the last handed out %d", l, last)
	}
	s, err := b.Next(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if s <= last || s <= l {
		t.Fatalf("after restart Next = %d, not above %d (Last %d)", s, last, l)
	}
	if s2, _ := b.Next(ctx, conv); s2 != s+1 {
		t.Fatalf("next after %d is %d", s, s2)
	}
}

func TestLeasedAllocatorConcurrentNextIsUnique(t *testing.T) {
	db := openPebble(t, t.TempDir())
	defer db.Close()
	a := message.NewLeasedAllocator(message.NewPebbleSeqLeaser(db), 7)
	conv := ids.Group(ids.New())
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				s, err := a.Next(context.Background(), conv)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[s] {
					t.Errorf("seq %d twice", s)
				}
				seen[s] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for s := int64(1); s <= 400; s++ {
		if !seen[s] {
			t.Fatalf("seq %d skipped without a restart", s)
		}
	}
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

func TestPebbleDedupStore(t *testing.T) {
	dir := t.TempDir()
	db := openPebble(t, dir)
	s := message.NewPebbleDedupStore(db)
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := "send/" + ids.New() + "/c1"

	c, err := s.Claim(ctx, key, now, 30*time.Second)
	if err != nil || c.Token == "" || c.Original != nil {
		t.Fatalf("first claim %+v %v", c, err)
	}
	if _, err := s.Claim(ctx, key, now.Add(29*time.Second), 30*time.Second); !errors.Is(err, message.ErrClaimPending) {
		t.Fatalf("claim while pending: %v", err)
	}
	// The pending claim expired: someone else takes it; the old token lost it.
	c2, err := s.Claim(ctx, key, now.Add(31*time.Second), 30*time.Second)
	if err != nil || c2.Token == "" || c2.Token == c.Token {
		t.Fatalf("claim after expiry %+v %v", c2, err)
	}
	if err := s.Complete(ctx, key, c.Token, message.Message{ID: "stale"}); !errors.Is(err, message.ErrClaimLost) {
		t.Fatalf("complete with a lost token: %v", err)
	}
	if err := s.Release(ctx, key, c.Token); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, key, c2.Token, message.Message{ID: "m1", Seq: 7}); err != nil {
		t.Fatal(err)
	}
	// Completed entries survive a restart.
	_ = db.Close()
	db = openPebble(t, dir)
	defer db.Close()
	s = message.NewPebbleDedupStore(db)
	c3, err := s.Claim(ctx, key, now.Add(time.Hour), 30*time.Second)
	if err != nil || c3.Original == nil || c3.Original.ID != "m1" || c3.Original.Seq != 7 {
		t.Fatalf("claim of a completed key %+v %v", c3, err)
	}
	// A released claim can be claimed again at once.
	k2 := "send/x/released"
	c4, _ := s.Claim(ctx, k2, now, 30*time.Second)
	if err := s.Release(ctx, k2, c4.Token); err != nil {
		t.Fatal(err)
	}
	if c5, err := s.Claim(ctx, k2, now, 30*time.Second); err != nil || c5.Token == "" {
		t.Fatalf("claim after release %+v %v", c5, err)
	}
}

// flakyProducer fails its first produce.
type flakyProducer struct {
	mu    sync.Mutex
	fail  int
	count int
}

func (p *flakyProducer) Produce(context.Context, string, []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail > 0 {
		p.fail--
		return errors.New("broker down")
	}
	p.count++
	return nil
}

func TestFailedProduceReleasesTheClaimAndAnswersUnavailable(t *testing.T) {
	db := openPebble(t, t.TempDir())
	defer db.Close()
	prod := &flakyProducer{fail: 1}
	svc := message.New(&relations{blocked: map[[2]string]bool{}}, &groups{}, &reader{msgs: map[string]message.Message{}},
		message.NewLeasedAllocator(message.NewPebbleSeqLeaser(db), 0), message.NewPebbleDedupStore(db), prod, message.Options{})
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

// Package storetest is the contract every backend of the message send path
// passes: DedupStore, SeqLeaser and SeqAllocator. The Pebble backends run
// it in unit tests, the Redis and Cassandra backends in integration tests,
// unchanged.
//
// Every factory returns the backend for one test and a reopen func that
// simulates a crash and restart: the old instance is dropped (with
// whatever it held in memory) and a new one comes up over the same
// storage. Every test uses fresh ids, so a shared storage is fine.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
)

// Reopen drops an instance as a crash would and returns a new one over
// the same storage.
type Reopen[T any] func(t *testing.T) T

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errs.HasCode(err, errs.Canceled)
}

// RunDedupStore runs the DedupStore contract.
func RunDedupStore(t *testing.T, newStore func(t *testing.T) (message.DedupStore, Reopen[message.DedupStore])) {
	ctx := context.Background()
	ttl := 30 * time.Second
	key := func() string { return "send/" + ids.New() + "/c-1" }
	msg := func(seq int64) message.Message {
		return message.Message{
			ID: ids.New(), ConversationID: ids.P2P(ids.New(), ids.New()), Seq: seq, SenderID: ids.New(),
			Type: "text", Content: json.RawMessage(`"hi: \"there\" ✓"`), Mentions: []string{ids.New()},
			SentAt: t0.Add(time.Duration(seq) * time.Millisecond), ClientMsgID: "c-1", ToUserID: ids.New(),
		}
	}
	claim := func(t *testing.T, s message.DedupStore, k string, now time.Time) message.Claim {
		t.Helper()
		c, err := s.Claim(ctx, k, now, ttl)
		must(t, err)
		if c.Token == "" || c.Original != nil {
			t.Fatalf("claim of a free key = %+v, want a token", c)
		}
		return c
	}
	wantOriginal := func(t *testing.T, s message.DedupStore, k string, now time.Time, want message.Message) {
		t.Helper()
		c, err := s.Claim(ctx, k, now, ttl)
		must(t, err)
		if c.Original == nil || c.Token != "" {
			t.Fatalf("claim of a completed key = %+v, want the original", c)
		}
		if !reflect.DeepEqual(*c.Original, want) {
			t.Fatalf("original = %+v, want %+v", *c.Original, want)
		}
	}

	t.Run("a pending claim blocks others until it expires", func(t *testing.T) {
		s, _ := newStore(t)
		k := key()
		c := claim(t, s, k, t0)
		for _, at := range []time.Time{t0, t0.Add(ttl - time.Second)} {
			if _, err := s.Claim(ctx, k, at, ttl); !errors.Is(err, message.ErrClaimPending) {
				t.Fatalf("claim at %v while pending: %v, want ErrClaimPending", at.Sub(t0), err)
			}
		}
		c2 := claim(t, s, k, t0.Add(ttl+time.Second))
		if c2.Token == c.Token {
			t.Fatal("a new claim reused the expired claim's token")
		}
	})

	t.Run("the expired claim's token lost the key", func(t *testing.T) {
		s, _ := newStore(t)
		k := key()
		old := claim(t, s, k, t0)
		cur := claim(t, s, k, t0.Add(ttl+time.Second))
		if err := s.Complete(ctx, k, old.Token, msg(1)); !errors.Is(err, message.ErrClaimLost) {
			t.Fatalf("complete with a lost token: %v, want ErrClaimLost", err)
		}
		// Releasing with the lost token leaves the current claim alone.
		must(t, s.Release(ctx, k, old.Token))
		if _, err := s.Claim(ctx, k, t0.Add(ttl+2*time.Second), ttl); !errors.Is(err, message.ErrClaimPending) {
			t.Fatalf("claim after a stale release: %v, want ErrClaimPending", err)
		}
		m := msg(7)
		must(t, s.Complete(ctx, k, cur.Token, m))
		wantOriginal(t, s, k, t0.Add(ttl+3*time.Second), m)
	})

	t.Run("a completed key returns the original message, also much later", func(t *testing.T) {
		s, _ := newStore(t)
		k := key()
		c := claim(t, s, k, t0)
		m := msg(42)
		must(t, s.Complete(ctx, k, c.Token, m))
		wantOriginal(t, s, k, t0, m)
		wantOriginal(t, s, k, t0.Add(24*time.Hour), m)
		// Releasing a completed claim does nothing.
		must(t, s.Release(ctx, k, c.Token))
		wantOriginal(t, s, k, t0.Add(time.Minute), m)
	})

	t.Run("a completed key survives a restart", func(t *testing.T) {
		s, reopen := newStore(t)
		k, pending := key(), key()
		c := claim(t, s, k, t0)
		m := msg(3)
		must(t, s.Complete(ctx, k, c.Token, m))
		claim(t, s, pending, t0)
		s = reopen(t)
		wantOriginal(t, s, k, t0.Add(time.Hour), m)
		// A pending claim of before the restart still blocks until it
		// expires.
		if _, err := s.Claim(ctx, pending, t0.Add(time.Second), ttl); !errors.Is(err, message.ErrClaimPending) {
			t.Fatalf("claim of a key pending before the restart: %v, want ErrClaimPending", err)
		}
	})

	t.Run("a released key can be claimed at once", func(t *testing.T) {
		s, _ := newStore(t)
		k := key()
		c := claim(t, s, k, t0)
		must(t, s.Release(ctx, k, c.Token))
		c2 := claim(t, s, k, t0)
		if c2.Token == c.Token {
			t.Fatal("token reused")
		}
		if err := s.Complete(ctx, k, c.Token, msg(1)); !errors.Is(err, message.ErrClaimLost) {
			t.Fatalf("complete with the released token: %v, want ErrClaimLost", err)
		}
		must(t, s.Complete(ctx, k, c2.Token, msg(2)))
	})

	t.Run("complete and release of an unknown key", func(t *testing.T) {
		s, _ := newStore(t)
		k := key()
		if err := s.Complete(ctx, k, "no-such-token", msg(1)); !errors.Is(err, message.ErrClaimLost) {
			t.Fatalf("complete of an unclaimed key: %v, want ErrClaimLost", err)
		}
		must(t, s.Release(ctx, k, "no-such-token"))
		claim(t, s, k, t0)
	})

	t.Run("keys are independent", func(t *testing.T) {
		s, _ := newStore(t)
		sender := ids.New()
		a, b := "send/"+sender+"/a", "send/"+sender+"/a:b c/ü"
		ca := claim(t, s, a, t0)
		cb := claim(t, s, b, t0)
		ma, mb := msg(1), msg(2)
		must(t, s.Complete(ctx, a, ca.Token, ma))
		if _, err := s.Claim(ctx, b, t0, ttl); !errors.Is(err, message.ErrClaimPending) {
			t.Fatalf("claim of the other key: %v, want ErrClaimPending", err)
		}
		must(t, s.Complete(ctx, b, cb.Token, mb))
		wantOriginal(t, s, a, t0, ma)
		wantOriginal(t, s, b, t0, mb)
	})

	t.Run("concurrent claims of one key have one winner", func(t *testing.T) {
		s, _ := newStore(t)
		for round := 0; round < 10; round++ {
			k := key()
			const n = 8
			var wg sync.WaitGroup
			start := make(chan struct{})
			results := make(chan error, n)
			tokens := make(chan string, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					c, err := s.Claim(ctx, k, t0, ttl)
					if err == nil {
						tokens <- c.Token
					}
					results <- err
				}()
			}
			close(start)
			wg.Wait()
			close(results)
			close(tokens)
			won := 0
			for err := range results {
				switch {
				case err == nil:
					won++
				case errors.Is(err, message.ErrClaimPending):
				default:
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d claims won, want 1", round, won)
			}
			must(t, s.Complete(ctx, k, <-tokens, msg(int64(round+1))))
		}
	})

	t.Run("canceled context", func(t *testing.T) {
		s, _ := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Claim(cctx, key(), t0, ttl); !isCanceled(err) {
			t.Fatalf("claim with a canceled context: %v, want canceled", err)
		}
	})
}

// RunSeqLeaser runs the SeqLeaser contract.
func RunSeqLeaser(t *testing.T, newLeaser func(t *testing.T) (message.SeqLeaser, Reopen[message.SeqLeaser])) {
	ctx := context.Background()
	conv := func() string { return ids.P2P(ids.New(), ids.New()) }
	lease := func(t *testing.T, l message.SeqLeaser, c string, block, want int64) {
		t.Helper()
		hi, err := l.Lease(ctx, c, block)
		must(t, err)
		if hi != want {
			t.Fatalf("lease of %d = %d, want %d", block, hi, want)
		}
	}
	mark := func(t *testing.T, l message.SeqLeaser, c string, want int64) {
		t.Helper()
		m, err := l.Mark(ctx, c)
		must(t, err)
		if m != want {
			t.Fatalf("mark = %d, want %d", m, want)
		}
	}

	t.Run("leases raise the mark by their block", func(t *testing.T) {
		l, _ := newLeaser(t)
		c := conv()
		mark(t, l, c, 0)
		lease(t, l, c, 10, 10)
		mark(t, l, c, 10)
		lease(t, l, c, 5, 15)
		lease(t, l, c, 1, 16)
		mark(t, l, c, 16)
	})

	t.Run("a block must be positive", func(t *testing.T) {
		l, _ := newLeaser(t)
		c := conv()
		lease(t, l, c, 3, 3)
		for _, b := range []int64{0, -5} {
			if hi, err := l.Lease(ctx, c, b); err == nil {
				t.Fatalf("lease of %d = %d, want an error", b, hi)
			}
		}
		mark(t, l, c, 3)
	})

	t.Run("conversations are independent", func(t *testing.T) {
		l, _ := newLeaser(t)
		a, b := conv(), ids.Group(ids.New())
		lease(t, l, a, 100, 100)
		mark(t, l, b, 0)
		lease(t, l, b, 7, 7)
		mark(t, l, a, 100)
	})

	t.Run("marks survive a restart", func(t *testing.T) {
		l, reopen := newLeaser(t)
		c := conv()
		lease(t, l, c, 10, 10)
		lease(t, l, c, 10, 20)
		l = reopen(t)
		mark(t, l, c, 20)
		lease(t, l, c, 10, 30)
	})

	t.Run("concurrent leases get disjoint blocks", func(t *testing.T) {
		l, _ := newLeaser(t)
		c := conv()
		const workers, each, block = 6, 5, 3
		var mu sync.Mutex
		seen := map[int64]bool{}
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					hi, err := l.Lease(ctx, c, block)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if seen[hi] {
						t.Errorf("block ending at %d granted twice", hi)
					}
					seen[hi] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i := int64(1); i <= workers*each; i++ {
			if !seen[i*block] {
				t.Fatalf("no block ends at %d: blocks overlap or leave gaps (%v)", i*block, seen)
			}
		}
		mark(t, l, c, workers*each*block)
	})

	t.Run("canceled context", func(t *testing.T) {
		l, _ := newLeaser(t)
		c := conv()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := l.Lease(cctx, c, 5); !isCanceled(err) {
			t.Fatalf("lease with a canceled context: %v, want canceled", err)
		}
		if _, err := l.Mark(cctx, c); !isCanceled(err) {
			t.Fatalf("mark with a canceled context: %v, want canceled", err)
		}
		mark(t, l, c, 0)
	})
}

// RunSeqAllocator runs the SeqAllocator contract. Allocators should lease
// small blocks (about 10) so the suite crosses block boundaries.
func RunSeqAllocator(t *testing.T, newAlloc func(t *testing.T) (message.SeqAllocator, Reopen[message.SeqAllocator])) {
	ctx := context.Background()
	next := func(t *testing.T, a message.SeqAllocator, c string) int64 {
		t.Helper()
		s, err := a.Next(ctx, c)
		must(t, err)
		return s
	}
	last := func(t *testing.T, a message.SeqAllocator, c string) int64 {
		t.Helper()
		l, err := a.Last(ctx, c)
		must(t, err)
		return l
	}

	t.Run("seqs count up from 1 without gaps", func(t *testing.T) {
		a, _ := newAlloc(t)
		c := ids.P2P(ids.New(), ids.New())
		if l := last(t, a, c); l != 0 {
			t.Fatalf("Last of a new conversation = %d", l)
		}
		for i := int64(1); i <= 35; i++ {
			if s := next(t, a, c); s != i {
				t.Fatalf("seq %d, want %d", s, i)
			}
			if l := last(t, a, c); l != i {
				t.Fatalf("Last = %d after handing out %d", l, i)
			}
		}
	})

	t.Run("conversations are independent", func(t *testing.T) {
		a, _ := newAlloc(t)
		x, y := ids.P2P(ids.New(), ids.New()), ids.Group(ids.New())
		for i := 0; i < 12; i++ {
			next(t, a, x)
		}
		if s := next(t, a, y); s != 1 {
			t.Fatalf("another conversation starts at %d", s)
		}
		if s := next(t, a, x); s != 13 {
			t.Fatalf("first conversation went on at %d, want 13", s)
		}
	})

	t.Run("after a restart seqs resume above everything handed out", func(t *testing.T) {
		a, reopen := newAlloc(t)
		c := ids.Group(ids.New())
		var s int64
		for i := 0; i < 25; i++ {
			s = next(t, a, c)
		}
		a = reopen(t)
		l := last(t, a, c)
		if l < s {
			t.Fatalf("Last after restart = %d, below the last seq handed out %d", l, s)
		}
		s2 := next(t, a, c)
		if s2 <= s || s2 <= l {
			t.Fatalf("Next after restart = %d, not above %d (Last %d)", s2, s, l)
		}
		if s3 := next(t, a, c); s3 != s2+1 {
			t.Fatalf("seq after %d is %d", s2, s3)
		}
		if l := last(t, a, c); l != s2+1 {
			t.Fatalf("Last = %d after handing out %d", l, s2+1)
		}
	})

	t.Run("concurrent Next hands out every seq once", func(t *testing.T) {
		a, _ := newAlloc(t)
		c := ids.Group(ids.New())
		const workers, each = 8, 50
		var mu sync.Mutex
		seen := map[int64]bool{}
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				prev := int64(0)
				for i := 0; i < each; i++ {
					s, err := a.Next(ctx, c)
					if err != nil {
						t.Error(err)
						return
					}
					if s <= prev {
						t.Errorf("one caller got %d after %d", s, prev)
					}
					prev = s
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
		if t.Failed() {
			return
		}
		for s := int64(1); s <= workers*each; s++ {
			if !seen[s] {
				t.Fatalf("seq %d skipped without a restart", s)
			}
		}
		if l := last(t, a, c); l != workers*each {
			t.Fatalf("Last = %d, want %d", l, workers*each)
		}
	})

	t.Run("canceled context", func(t *testing.T) {
		a, _ := newAlloc(t)
		c := ids.Group(ids.New())
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if s, err := a.Next(cctx, c); !isCanceled(err) {
			t.Fatalf("Next with a canceled context = %d, %v; want canceled", s, err)
		}
		if s := next(t, a, c); s != 1 {
			t.Fatalf("first seq after a canceled Next = %d, want 1", s)
		}
	})
}

// Seqs is a helper for backend tests that collect seqs from many callers:
// it records each and reports a seq handed out twice.
type Seqs struct {
	mu   sync.Mutex
	seen map[int64]string
}

// Add records s as handed out to who; it returns an error when s was
// handed out before.
func (r *Seqs) Add(s int64, who string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[int64]string{}
	}
	if prev, ok := r.seen[s]; ok {
		return fmt.Errorf("seq %d handed out twice (to %s and %s)", s, prev, who)
	}
	r.seen[s] = who
	return nil
}

// Max returns the highest seq recorded (0 if none).
func (r *Seqs) Max() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var m int64
	for s := range r.seen {
		m = max(m, s)
	}
	return m
}

// Len returns how many seqs were recorded.
func (r *Seqs) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

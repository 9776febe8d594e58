//go:build integration

package message

import (
	"context"
	"testing"
	"time"

	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// go-redis resends a script whose reply it lost (redisx.Open allows one
// retry). These run each script twice with the same arguments, as such a
// resend does, and check the second run answers as the first did.
func TestRedisScriptsAnswerReplaysAsTheFirstRun(t *testing.T) {
	c := testinfra.Redis(t)
	prefix := testinfra.KeyPrefix(t)
	ctx := context.Background()
	t.Run("claim", func(t *testing.T) {
		s := NewRedisDedupStore(c, prefix)
		key := "send/" + ids.New() + "/c"
		now := time.Now()
		args := []any{"tok-1", now.UnixMilli(), now.Add(time.Minute).UnixMilli(), time.Minute.Milliseconds()}
		for i := 0; i < 2; i++ {
			v, err := s.run(ctx, scriptDedupClaim, key, args...)
			if err != nil {
				t.Fatal(err)
			}
			if r, _ := v.([]any); len(r) != 1 || r[0] != "t" {
				t.Fatalf("run %d answered %v, want the claim", i+1, v)
			}
		}
		// Anyone else still finds it pending.
		if _, err := s.Claim(ctx, key, now, time.Minute); err != ErrClaimPending {
			t.Fatalf("claim by another: %v, want ErrClaimPending", err)
		}
	})

	t.Run("complete", func(t *testing.T) {
		s := NewRedisDedupStore(c, prefix)
		key := "send/" + ids.New() + "/c"
		cl, err := s.Claim(ctx, key, time.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		m := Message{ID: ids.New(), Seq: 9}
		for i := 0; i < 2; i++ {
			if err := s.Complete(ctx, key, cl.Token, m); err != nil {
				t.Fatalf("run %d: %v", i+1, err)
			}
		}
		if err := s.Complete(ctx, key, "another-token", m); err != ErrClaimLost {
			t.Fatalf("complete by another token: %v, want ErrClaimLost", err)
		}
	})

	t.Run("raise", func(t *testing.T) {
		a := NewRedisSeqAllocator(c, prefix, nil, 10)
		key := a.key(ids.Group(ids.New()))
		// Seed 0..10, hand out 1..3, then raise to 20 twice: the replay
		// must neither move n back nor apply the block again.
		if v, err := a.run(ctx, scriptSeqRaise, key, "0", "10", "1"); err != nil || v != 1 {
			t.Fatalf("seed = %d, %v", v, err)
		}
		for want := int64(1); want <= 10; want++ {
			if v, err := a.incr(ctx, key); err != nil || v != want {
				t.Fatalf("incr = %d, %v; want %d", v, err, want)
			}
		}
		if v, err := a.incr(ctx, key); err != nil || v != 0 {
			t.Fatalf("incr past the block = %d, %v; want 0", v, err)
		}
		if v, err := a.run(ctx, scriptSeqRaise, key, "10", "20", "0"); err != nil || v != 1 {
			t.Fatalf("raise = %d, %v", v, err)
		}
		if v, err := a.incr(ctx, key); err != nil || v != 11 {
			t.Fatalf("incr = %d, %v; want 11", v, err)
		}
		if v, err := a.run(ctx, scriptSeqRaise, key, "10", "20", "0"); err != nil || v != 0 {
			t.Fatalf("replayed raise = %d, %v; want 0 (no-op)", v, err)
		}
		// A replayed seed finds the hash and does not reset it either.
		if v, err := a.run(ctx, scriptSeqRaise, key, "0", "10", "1"); err != nil || v != 0 {
			t.Fatalf("replayed seed = %d, %v; want 0 (no-op)", v, err)
		}
		if v, err := a.incr(ctx, key); err != nil || v != 12 {
			t.Fatalf("incr = %d, %v; want 12", v, err)
		}
	})
}

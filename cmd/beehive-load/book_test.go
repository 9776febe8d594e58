package main

import (
	"io"
	"testing"
	"time"
)

func TestCursorIsTheSeqBelowWhichNothingIsMissing(t *testing.T) {
	var c seqCursor
	steps := []struct {
		seq   int64
		fresh bool
		upTo  int64
	}{
		{1, true, 1},
		{3, true, 1}, // 2 not seen yet: syncing from 3 would skip it
		{3, false, 1},
		{2, true, 3}, // the hole closes: the cursor jumps over what was seen
		{2, false, 3},
		{5, true, 3},
		{4, true, 5},
		{0, false, 5},
		{-1, false, 5},
	}
	for i, s := range steps {
		if got := c.see(s.seq); got != s.fresh || c.upTo != s.upTo {
			t.Fatalf("step %d see(%d) = %v, upTo %d; want %v, %d", i, s.seq, got, c.upTo, s.fresh, s.upTo)
		}
	}
	if len(c.seen) != 5 {
		t.Fatalf("seen %v, want 1..5", c.seen)
	}
}

func TestCursorJumpsOverSkippedSeqsOnlyAfterACompleteSync(t *testing.T) {
	// A restart skipped 4..1000: the conversation goes 1 2 3 1001 1002.
	var b deviceBook
	b.syncDone() // the first sync of the first socket
	b.live("c", 1)
	b.live("c", 2)
	b.live("c", 3)
	b.reconnected()
	// Before the new socket synced, a push proves nothing: it may be the
	// first thing the new socket got, with a lost message below it.
	b.live("c", 1002)
	if got := b.cursors()["c"]; got != 3 {
		t.Fatalf("cursor %d after a push on an unsynced socket, want 3", got)
	}
	// The sync answer from 3 holds everything stored above it.
	if k := b.synced("c", 1001); k != firstSeen {
		t.Fatalf("%v", k)
	}
	if k := b.synced("c", 1002); k != seenBefore {
		t.Fatalf("%v", k)
	}
	if got := b.cursors()["c"]; got != 3 {
		t.Fatalf("cursor %d before the sync completed, want 3", got)
	}
	b.syncDone()
	if got := b.cursors()["c"]; got != 1002 {
		t.Fatalf("cursor %d after the sync, want 1002 (over the skipped seqs)", got)
	}
	// On a synced socket a push moves the cursor over a skip too.
	b.live("c", 2005)
	if got := b.cursors()["c"]; got != 2005 {
		t.Fatalf("cursor %d after a push on a synced socket, want 2005", got)
	}
}

func TestOwnSentDoesNotJumpTheCursor(t *testing.T) {
	var b deviceBook
	b.syncDone()
	b.live("c", 1)
	b.own("c", 3) // `sent` for 3 overtook the push of 2
	if got := b.cursors()["c"]; got != 1 {
		t.Fatalf("cursor %d, want 1: the push of 2 may still be lost", got)
	}
	// The own message pushed to a synced socket (its `sent` was lost with
	// the old one) is proof like any push.
	b.ownCopy("c", 3, false)
	if got := b.cursors()["c"]; got != 3 {
		t.Fatalf("cursor %d after the own copy was pushed, want 3", got)
	}
}

func TestCursorsIncludeOwnSeqsAndStopAtTheFirstHole(t *testing.T) {
	var b deviceBook
	b.own("p:a:b", 1)  // own `sent`
	b.live("p:a:b", 2) // the peer's message
	b.own("p:a:b", 4)  // own `sent` overtook the push of 3
	b.synced("g:x", 1) // another conversation, from a sync
	got := b.cursors()
	if got["p:a:b"] != 2 || got["g:x"] != 1 || len(got) != 2 {
		t.Fatalf("cursors %v, want p:a:b=2 g:x=1", got)
	}
	if k, _ := b.live("p:a:b", 3); k != firstSeen {
		t.Fatalf("the push of 3 after the own 4: %v, want firstSeen", k)
	}
	if got := b.cursors()["p:a:b"]; got != 4 {
		t.Fatalf("cursor %d after 3 arrived, want 4", got)
	}
}

func TestLiveTwiceOnOneSocketLifeIsADuplicate(t *testing.T) {
	var b deviceBook
	if k, ooo := b.live("c", 1); k != firstSeen || ooo {
		t.Fatalf("first live: %v %v", k, ooo)
	}
	if k, _ := b.live("c", 1); k != liveTwice {
		t.Fatalf("second live on the same socket: %v, want liveTwice", k)
	}
	// The same seq in another conversation is another message.
	if k, _ := b.live("d", 1); k != firstSeen {
		t.Fatalf("seq 1 of another conversation: %v", k)
	}
}

func TestSeenLiveThenAgainAfterAReconnectIsNotADuplicate(t *testing.T) {
	var b deviceBook
	b.live("c", 1)
	b.live("c", 2)
	b.reconnected()
	// The sync after the reconnect returns what the old socket had (the
	// cursor is conservative) and what it missed.
	if k := b.synced("c", 2); k != seenBefore {
		t.Fatalf("sync repeat of 2: %v, want seenBefore", k)
	}
	if k := b.synced("c", 3); k != firstSeen {
		t.Fatalf("sync of the missed 3: %v, want firstSeen", k)
	}
	// The server pushes 2 again on the new socket (it cannot know what the
	// dead one got): not a duplicate, not a delivery either.
	if k, ooo := b.live("c", 2); k != seenBefore || ooo {
		t.Fatalf("2 live on the new socket: %v %v, want seenBefore in order", k, ooo)
	}
	// ...but twice live on this socket is.
	if k, _ := b.live("c", 2); k != liveTwice {
		t.Fatalf("2 live twice on the new socket: %v, want liveTwice", k)
	}
}

func TestSyncNeverCountsAsADuplicateButLiveAfterSyncOnceIsFine(t *testing.T) {
	var b deviceBook
	if k := b.synced("c", 5); k != firstSeen {
		t.Fatalf("%v", k)
	}
	if k := b.synced("c", 5); k != seenBefore {
		t.Fatalf("%v", k)
	}
	// Pushed live after the sync answer had it (the push raced the sync).
	if k, _ := b.live("c", 5); k != seenBefore {
		t.Fatalf("live after sync: %v, want seenBefore", k)
	}
}

func TestLiveOutOfOrderIsPerSocketLife(t *testing.T) {
	var b deviceBook
	b.live("c", 5)
	if _, ooo := b.live("c", 4); !ooo {
		t.Fatalf("4 after 5 on one socket is out of order")
	}
	b.reconnected()
	// A new socket starts over: the server re-pushes from where it was.
	if _, ooo := b.live("c", 3); ooo {
		t.Fatalf("3 as the first push of a new socket is not out of order")
	}
	if _, ooo := b.live("c", 6); ooo {
		t.Fatalf("6 after 3 is in order")
	}
}

func TestSeqHolesAndDoubles(t *testing.T) {
	holes, doubles := seqHoles([]int64{1, 2, 2, 5, 1001})
	if holes != 2+995 || doubles != 1 {
		t.Fatalf("holes %d doubles %d", holes, doubles)
	}
}

func TestSameCursors(t *testing.T) {
	a := map[string]int64{"x": 1, "y": 2}
	if !sameCursors(a, map[string]int64{"y": 2, "x": 1}) {
		t.Fatal("equal maps")
	}
	for _, b := range []map[string]int64{nil, {"x": 1}, {"x": 1, "y": 3}, {"x": 1, "z": 2}} {
		if sameCursors(a, b) {
			t.Fatalf("%v reported equal to %v", b, a)
		}
	}
}

func TestBackoffDoublesToTheLimitWithJitter(t *testing.T) {
	base, limit := 100*time.Millisecond, 5*time.Second
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for attempt, ms := range want {
		d := ms * time.Millisecond
		if lo := backoff(attempt, base, limit, 0); lo != d/2 {
			t.Errorf("attempt %d: low end %v, want %v", attempt, lo, d/2)
		}
		if hi := backoff(attempt, base, limit, 0.999999); hi < d*99/100 || hi > d {
			t.Errorf("attempt %d: high end %v, want about %v", attempt, hi, d)
		}
	}
	if d := backoff(1000, base, limit, 0.5); d > limit {
		t.Errorf("attempt 1000: %v over the limit", d)
	}
}

func TestSortedKeys(t *testing.T) {
	got := sortedKeys(map[int64]struct{}{9: {}, 2: {}, 5: {}})
	if len(got) != 3 || got[0] != 2 || got[1] != 5 || got[2] != 9 {
		t.Fatalf("%v", got)
	}
}

func TestParseFlagsResyncIsForChat(t *testing.T) {
	if _, err := parseFlags([]string{"--scenario", "group", "--resync"}, io.Discard); err == nil {
		t.Fatal("--resync accepted for group")
	}
	o, err := parseFlags([]string{"--scenario", "chat", "--resync"}, io.Discard)
	if err != nil || !o.Resync {
		t.Fatalf("%+v %v", o, err)
	}
	if o, _ := parseFlags([]string{"--scenario", "chat"}, io.Discard); o.Resync {
		t.Fatal("--resync on by default")
	}
}

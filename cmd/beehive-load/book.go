package main

import (
	"sort"
	"time"
)

// The bookkeeping of a --resync device: what it has seen of each
// conversation (the cursor it syncs from) and whether a `message` frame
// is a first delivery, a duplicate, or a copy it may legitimately see
// again after a reconnect. Pure: no sockets, no clock, no locks.

// seqCursor is what one device has seen of one conversation: the seqs
// (exactly), and upTo, the cursor it syncs from: every seq at or below
// upTo has been seen or never existed.
//
// Seqs only increase; they are not contiguous: the server's allocator
// leases blocks of seqs and a restart skips the rest of a block. So upTo
// moves two ways. It follows seqs seen one after another (see). And it
// jumps to a seq when the protocol proves nothing below it is missing
// (jump): after a complete sync, everything stored above the request's
// cursor was in the answer, and every later message is pushed to the
// socket in seq order. It does not follow the device's own `sent`: that
// answer can overtake the push of a lower seq (the push goes through
// Kafka), and a socket lost between the two would never get the lower one
// back from a sync from the higher.
type seqCursor struct {
	upTo int64
	seen map[int64]struct{}
}

// see records seq; false when it had been seen already (or is not a seq).
func (c *seqCursor) see(seq int64) bool {
	if seq <= 0 {
		return false
	}
	if _, ok := c.seen[seq]; ok {
		return false
	}
	if c.seen == nil {
		c.seen = map[int64]struct{}{}
	}
	c.seen[seq] = struct{}{}
	c.advance()
	return true
}

// jump moves the cursor up to seq: nothing below it is missing.
func (c *seqCursor) jump(seq int64) {
	c.upTo = max(c.upTo, seq)
	c.advance()
}

func (c *seqCursor) advance() {
	for {
		if _, ok := c.seen[c.upTo+1]; !ok {
			return
		}
		c.upTo++
	}
}

// deliveryKind is what a `message` frame is to the device that read it.
type deliveryKind uint8

const (
	// firstSeen: the first copy of this seq on the device — a delivery.
	firstSeen deliveryKind = iota
	// liveTwice: pushed live a second time over the same socket life — a
	// duplicate.
	liveTwice
	// seenBefore: seen already on an earlier socket life, by a sync or as
	// the device's own `sent`; a client that syncs from a cursor gets
	// these, and they are not counted again.
	seenBefore
)

// convBook is one conversation of a device.
type convBook struct {
	seqCursor
	// liveLife maps a seq to the socket life it last came live on.
	liveLife map[int64]int
	// maxLive is the highest seq pushed live in socket life maxLiveLife.
	maxLive     int64
	maxLiveLife int
	// syncMax is the highest seq of a `message` frame read while the
	// current sync was outstanding.
	syncMax int64
}

// deviceBook is what one device has seen, over every socket it had.
// life counts its sockets: 0 is the first, each reconnect adds one;
// lifeSynced is set once the first sync of the life completed.
type deviceBook struct {
	life       int
	lifeSynced bool
	convs      map[string]*convBook
}

func (b *deviceBook) conv(id string) *convBook {
	if b.convs == nil {
		b.convs = map[string]*convBook{}
	}
	c := b.convs[id]
	if c == nil {
		c = &convBook{liveLife: map[int64]int{}}
		b.convs[id] = c
	}
	return c
}

// reconnected starts a new socket life; it has not synced yet.
func (b *deviceBook) reconnected() {
	b.life++
	b.lifeSynced = false
	for _, c := range b.convs {
		c.syncMax = 0
	}
}

// note moves the cursor for a `message` frame of seq (anyone's).
func (b *deviceBook) note(c *convBook, seq int64, inSync bool) {
	switch {
	case inSync:
		c.syncMax = max(c.syncMax, seq)
	case b.lifeSynced:
		// Pushed on a socket that synced: what was stored before the sync
		// was in its answer, what came after is pushed in order.
		c.jump(seq)
	}
}

// live classifies a `message` frame pushed live (read while no sync was
// outstanding). outOfOrder is set when it came below a seq pushed earlier
// on the same socket life: pushes over one socket ascend.
func (b *deviceBook) live(conv string, seq int64) (kind deliveryKind, outOfOrder bool) {
	c := b.conv(conv)
	if l, ok := c.liveLife[seq]; ok && l == b.life {
		return liveTwice, false
	}
	c.liveLife[seq] = b.life
	if c.maxLiveLife == b.life && seq < c.maxLive {
		outOfOrder = true
	} else {
		c.maxLive, c.maxLiveLife = seq, b.life
	}
	fresh := c.see(seq)
	b.note(c, seq, false)
	if fresh {
		return firstSeen, outOfOrder
	}
	return seenBefore, outOfOrder
}

// synced classifies a `message` frame read while a sync was outstanding:
// the answer may repeat what the socket had live, so never a duplicate.
func (b *deviceBook) synced(conv string, seq int64) deliveryKind {
	c := b.conv(conv)
	fresh := c.see(seq)
	b.note(c, seq, true)
	if fresh {
		return firstSeen
	}
	return seenBefore
}

// own records the seq of the device's own message from its `sent`: part
// of the conversation, not a delivery, and no proof about lower seqs.
func (b *deviceBook) own(conv string, seq int64) { b.conv(conv).see(seq) }

// ownCopy records the device's own message read as a `message` frame (in
// a sync answer, or pushed to a new socket): it moves the cursor like
// anyone's.
func (b *deviceBook) ownCopy(conv string, seq int64, inSync bool) {
	c := b.conv(conv)
	c.see(seq)
	b.note(c, seq, inSync)
}

// syncDone ends a sync whose last page (has_more false) was answered:
// everything up to the highest seq read meanwhile has been seen.
func (b *deviceBook) syncDone() {
	for _, c := range b.convs {
		c.jump(c.syncMax)
		c.syncMax = 0
	}
	b.lifeSynced = true
}

// cursors are the `sync` cursors: per conversation the seq up to which
// nothing is missing.
func (b *deviceBook) cursors() map[string]int64 {
	out := make(map[string]int64, len(b.convs))
	for id, c := range b.convs {
		out[id] = c.upTo
	}
	return out
}

// sameCursors tells a sync page that moved no cursor: paging again from
// the same cursors would return the same page forever (a hole in a
// conversation's seqs holds the cursor back).
func sameCursors(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// sortedKeys returns the keys of m in ascending order.
func sortedKeys(m map[int64]struct{}) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// backoff is the delay before reconnect attempt number attempt (0 for
// the first): base doubling per failed attempt up to limit, with "equal
// jitter" (half fixed, half random) so a fleet of clients dropped together
// does not come back together. r is in [0, 1).
func backoff(attempt int, base, limit time.Duration, r float64) time.Duration {
	d := base
	for i := 0; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + time.Duration(r*float64(d/2))
}

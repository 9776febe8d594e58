package main

import (
	"sort"
	"time"
)

// The bookkeeping of a --resync device: what it has seen of each
// conversation (the cursor it syncs from) and whether a `message` frame
// is a first delivery, a duplicate, or a copy it may legitimately see
// again after a reconnect. Pure: no sockets, no clock, no locks.

// seqCursor is what one device has seen of one conversation: every seq up
// to upTo, and the seqs above it seen out of turn.
//
// The cursor a device syncs from is upTo, the highest seq below which
// nothing is missing, not the highest seq seen: a `sent` answer for seq 8
// can arrive before the push of seq 7 (the push goes through Kafka), and a
// socket lost between the two would never get 7 back from a sync from 8.
// Syncing from upTo may return seqs seen already; they are not counted
// again.
type seqCursor struct {
	upTo  int64
	above map[int64]struct{}
}

// see records seq; false when it had been seen already (or is not a seq).
func (c *seqCursor) see(seq int64) bool {
	if seq <= c.upTo {
		return false
	}
	if _, ok := c.above[seq]; ok {
		return false
	}
	if seq != c.upTo+1 {
		if c.above == nil {
			c.above = map[int64]struct{}{}
		}
		c.above[seq] = struct{}{}
		return true
	}
	c.upTo = seq
	for {
		if _, ok := c.above[c.upTo+1]; !ok {
			return true
		}
		delete(c.above, c.upTo+1)
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
}

// deviceBook is what one device has seen, over every socket it had.
// life counts its sockets: 0 is the first, each reconnect adds one.
type deviceBook struct {
	life  int
	convs map[string]*convBook
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

// reconnected starts a new socket life.
func (b *deviceBook) reconnected() { b.life++ }

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
	if c.see(seq) {
		return firstSeen, outOfOrder
	}
	return seenBefore, outOfOrder
}

// synced classifies a `message` frame read while a sync was outstanding:
// the answer may repeat what the socket had live, so never a duplicate.
func (b *deviceBook) synced(conv string, seq int64) deliveryKind {
	if b.conv(conv).see(seq) {
		return firstSeen
	}
	return seenBefore
}

// own records a seq of the device's own message (its `sent`, or its own
// copy in a sync): part of the conversation, not a delivery.
func (b *deviceBook) own(conv string, seq int64) { b.conv(conv).see(seq) }

// cursors are the `sync` cursors: per conversation the seq up to which
// everything has been seen.
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

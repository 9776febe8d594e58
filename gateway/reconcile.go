package gateway

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/beehive-im/beehive/shared/wire"
)

// Reconciling live pushes with sync answers, per socket.
//
// A device gets a message from two sources that do not know of each
// other: the push consumer (live `message` and `recalled` frames, through
// Deliver) and the read side (the `message` frames of a `sync` answer). A
// device that reconnects while the push consumer is still working through
// what was sent while it was away would get the newest messages live, then
// again in its sync answer, and out of order. The gateway is the one place
// that sees both streams of a socket, so it reconciles them there:
//
//   - A new socket holds its live seq-carrying frames until the client's
//     first complete sync (a `synced` with has_more false) has been
//     queued, or until Options.SyncHold passed without one (clients that
//     never sync; each `synced` with has_more true gives the client
//     another SyncHold for its next page). Any later sync holds them too
//     while it is in flight. Held frames count against the send queue
//     like queued ones: past it the socket is closed with 4009.
//   - Per conversation the socket remembers which seqs it was sent (live,
//     in sync answers, or as `sent`) or the client said it has (its sync
//     cursors): everything up to a high mark, minus the gaps the live
//     stream skipped. A frame for a seq the socket already has is dropped,
//     live or in a sync answer; held frames are released after the sync
//     answer, in seq order per conversation.
//
// A gap (a push lost upstream, or a hold that ended before the client
// synced) is filled by the client's next sync, which then arrives after
// the higher seqs the socket already got: clients order by seq.

// Bounds of the per-socket state.
const (
	// maxTrackedConversations bounds the conversations a socket
	// remembers; frames of any further conversation pass unreconciled
	// (a duplicate is possible there, a loss is not).
	maxTrackedConversations = 2048
	// maxGaps bounds the gaps remembered per conversation; beyond it the
	// two lowest merge into one, which may count a seq the socket got as
	// missing (a later sync may then repeat it; nothing is lost).
	maxGaps = 8
)

// liveFrame is a server frame with the conversation seq it carries, if
// any (conv empty: none, the frame is never held or dropped).
type liveFrame struct {
	b    []byte
	conv string
	seq  int64
}

// seqProbe reads what reconciling needs of a server frame.
type seqProbe struct {
	Op   string `json:"op"`
	Data struct {
		ConversationID string `json:"conversation_id"`
		Seq            int64  `json:"seq"`
		Message        *struct {
			ConversationID string `json:"conversation_id"`
			Seq            int64  `json:"seq"`
		} `json:"message"`
	} `json:"data"`
}

// probeFrame returns the conversation seq frame carries (`message` and
// `recalled`; a recall is an event with its own seq, which sync returns as
// a `message` of type recall), and whether frame is JSON at all.
func probeFrame(frame []byte) (conv string, seq int64, valid bool) {
	var p seqProbe
	if err := json.Unmarshal(frame, &p); err != nil {
		return "", 0, json.Valid(frame) // valid JSON of another shape
	}
	switch p.Op {
	case wire.OpMessage:
		if p.Data.Message != nil {
			conv, seq = p.Data.Message.ConversationID, p.Data.Message.Seq
		}
	case wire.OpRecalled:
		conv, seq = p.Data.ConversationID, p.Data.Seq
	}
	if conv == "" || seq <= 0 {
		return "", 0, true
	}
	return conv, seq, true
}

// reconciler is a socket's reconciling state, under conn.mu.
type reconciler struct {
	convs map[string]convSeqs
	held  []liveFrame
	// initial: the hold of a new socket, until its first complete sync or
	// holdUntil; syncing: a sync is in flight.
	initial   bool
	syncing   bool
	holdUntil time.Time
	timer     *time.Timer
}

// convSeqs is what a socket has of one conversation: every seq up to hi
// but those in gaps (ascending, disjoint, below hi).
type convSeqs struct {
	hi   int64
	gaps []span
}

type span struct{ lo, hi int64 }

// has reports whether the socket has seq.
func (s *convSeqs) has(seq int64) bool {
	if seq > s.hi {
		return false
	}
	for _, g := range s.gaps {
		if g.lo <= seq && seq <= g.hi {
			return false
		}
	}
	return true
}

// add records seq as sent; false if the socket had it.
func (s *convSeqs) add(seq int64) bool {
	if seq > s.hi {
		if seq > s.hi+1 {
			s.gaps = append(s.gaps, span{s.hi + 1, seq - 1})
			s.bound()
		}
		s.hi = seq
		return true
	}
	for i, g := range s.gaps {
		if seq < g.lo || seq > g.hi {
			continue
		}
		switch {
		case g.lo == g.hi:
			s.gaps = append(s.gaps[:i], s.gaps[i+1:]...)
		case seq == g.lo:
			s.gaps[i].lo++
		case seq == g.hi:
			s.gaps[i].hi--
		default:
			s.gaps = append(s.gaps[:i+1], s.gaps[i:]...)
			s.gaps[i].hi, s.gaps[i+1].lo = seq-1, seq+1
			s.bound()
		}
		if len(s.gaps) == 0 {
			s.gaps = nil
		}
		return true
	}
	return false
}

// claim records that the client has everything up to cursor.
func (s *convSeqs) claim(cursor int64) {
	if cursor >= s.hi {
		s.hi, s.gaps = cursor, nil
		return
	}
	kept := s.gaps[:0]
	for _, g := range s.gaps {
		if g.hi <= cursor {
			continue
		}
		g.lo = max(g.lo, cursor+1)
		kept = append(kept, g)
	}
	s.gaps = kept
	if len(s.gaps) == 0 {
		s.gaps = nil
	}
}

func (s *convSeqs) bound() {
	if len(s.gaps) > maxGaps {
		s.gaps[1].lo = s.gaps[0].lo
		s.gaps = s.gaps[1:]
	}
}

// admit records that the socket is sent seq of conv; false when it
// already has it (drop the frame).
func (r *reconciler) admit(conv string, seq int64) bool {
	s, ok := r.convs[conv]
	if !ok && len(r.convs) >= maxTrackedConversations {
		return true
	}
	if !s.add(seq) {
		return false
	}
	r.convs[conv] = s
	return true
}

func (r *reconciler) covered(conv string, seq int64) bool {
	s, ok := r.convs[conv]
	return ok && s.has(seq)
}

func (r *reconciler) claim(conv string, cursor int64) {
	s, ok := r.convs[conv]
	if !ok && (cursor == 0 || len(r.convs) >= maxTrackedConversations) {
		return
	}
	s.claim(cursor)
	r.convs[conv] = s
}

// drop forgets the held frames and the timer of a closed socket.
func (r *reconciler) drop() {
	r.held = nil
	if r.timer != nil {
		r.timer.Stop()
	}
}

// recLocked returns the socket's reconciler, made on first use. Under mu.
func (c *conn) recLocked(now time.Time) *reconciler {
	if c.rec == nil {
		hold := c.g.opts.SyncHold
		c.rec = &reconciler{convs: map[string]convSeqs{}, holdUntil: c.since.Add(hold)}
		c.rec.initial = hold > 0 && now.Before(c.rec.holdUntil)
	}
	return c.rec
}

// holding reports whether live seq frames wait now, ending the initial
// hold once past its time. Under mu.
func (r *reconciler) holding(now time.Time) bool {
	if r.initial && !r.syncing && !now.Before(r.holdUntil) {
		r.initial = false
	}
	return r.initial || r.syncing
}

// releaseLocked takes the held frames the socket does not have, in seq
// order per conversation, and stops counting them as queued (the caller
// queues them as part of a new entry). Under mu.
func (c *conn) releaseLocked() [][]byte {
	r := c.rec
	if len(r.held) == 0 {
		return nil
	}
	sort.SliceStable(r.held, func(i, j int) bool {
		if r.held[i].conv != r.held[j].conv {
			return r.held[i].conv < r.held[j].conv
		}
		return r.held[i].seq < r.held[j].seq
	})
	var out [][]byte
	for _, f := range r.held {
		if r.admit(f.conv, f.seq) {
			out = append(out, f.b)
		}
	}
	c.pending -= len(r.held)
	r.held = nil
	return out
}

// purgeLocked drops held frames the socket got meanwhile. Under mu.
func (c *conn) purgeLocked() {
	r := c.rec
	kept := r.held[:0]
	for _, f := range r.held {
		if !r.covered(f.conv, f.seq) {
			kept = append(kept, f)
		}
	}
	clear(r.held[len(kept):])
	c.pending -= len(r.held) - len(kept)
	r.held = kept
}

// armLocked makes sure the initial hold ends at holdUntil even if nothing
// else happens on the socket. Under mu.
func (c *conn) armLocked(now time.Time) {
	r := c.rec
	if !r.initial || len(r.held) == 0 {
		return
	}
	if r.timer == nil {
		r.timer = time.AfterFunc(r.holdUntil.Sub(now), c.holdExpired)
		return
	}
	r.timer.Reset(r.holdUntil.Sub(now))
}

// holdExpired ends the initial hold of a client that did not sync in
// time (a timer's goroutine).
func (c *conn) holdExpired() {
	c.mu.Lock()
	r := c.rec
	if c.closed.Load() || r == nil || !r.initial || r.syncing {
		c.mu.Unlock() // a sync in flight releases them when it ends
		return
	}
	now := c.g.opts.Now()
	if now.Before(r.holdUntil) {
		r.timer.Reset(r.holdUntil.Sub(now))
		c.mu.Unlock()
		return
	}
	r.initial = false
	c.queueLocked(c.releaseLocked())
}

// queueLocked queues frames as one entry (one write) counting each, or
// nothing; it releases mu.
func (c *conn) queueLocked(frames [][]byte) bool {
	switch len(frames) {
	case 0:
		c.mu.Unlock()
		return true
	case 1:
		return c.enqueueLocked(textItem(frames[0]))
	}
	return c.enqueueLocked(item{batch: frames, weight: len(frames)})
}

// deliver queues a Deliver's frames for this socket, holding or dropping
// the seq-carrying ones as reconciling says. False when the socket is
// closed (or closes now, its queue full).
func (c *conn) deliver(frames []liveFrame) bool {
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return false
	}
	now := c.g.opts.Now()
	var out [][]byte
	if r := c.rec; r != nil && !r.holding(now) && len(r.held) > 0 {
		out = c.releaseLocked() // a hold that ended unnoticed: older frames first
	}
	for _, f := range frames {
		if f.conv == "" {
			out = append(out, f.b)
			continue
		}
		r := c.recLocked(now)
		if !r.holding(now) {
			if r.admit(f.conv, f.seq) {
				out = append(out, f.b)
			}
			continue
		}
		if r.covered(f.conv, f.seq) {
			continue
		}
		if c.pending >= c.g.opts.SendQueue {
			c.mu.Unlock()
			c.closeWith(wire.CloseTooSlow, "too slow: send queue full")
			return false
		}
		r.held = append(r.held, f)
		c.pending++
		c.armLocked(now)
	}
	return c.queueLocked(out)
}

// syncBegins holds live seq frames while the sync runs and records the
// client's cursors as what it has.
func (c *conn) syncBegins(cursors map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.recLocked(c.g.opts.Now())
	r.syncing = true
	for conv, cursor := range cursors {
		r.claim(conv, cursor)
	}
}

// syncEnds queues the sync answer (answer, then synced; both nil when the
// sync failed) without what the socket has, then the held frames it did
// not cover, unless the initial hold goes on (more pages to come).
func (c *conn) syncEnds(answer []liveFrame, synced []byte, hasMore bool) {
	c.mu.Lock()
	r := c.rec
	r.syncing = false
	now := c.g.opts.Now()
	var out [][]byte
	for _, f := range answer {
		if f.conv == "" || f.seq <= 0 || r.admit(f.conv, f.seq) {
			out = append(out, f.b)
		}
	}
	extra := 0
	if synced != nil {
		out = append(out, synced)
		// The answer to the client's own request counts once, however
		// many messages it holds.
		extra = 1 - len(out)
	}
	if r.initial {
		switch {
		case synced != nil && !hasMore:
			r.initial = false
		case synced != nil:
			r.holdUntil = now.Add(c.g.opts.SyncHold) // time for the next page
		case !now.Before(r.holdUntil):
			r.initial = false
		}
	}
	if r.initial {
		c.purgeLocked()
		c.armLocked(now)
	} else {
		out = append(out, c.releaseLocked()...)
		if r.timer != nil {
			r.timer.Stop()
		}
	}
	if len(out) == 0 {
		c.mu.Unlock()
		return
	}
	if len(out) == 1 && extra == 0 {
		c.enqueueLocked(textItem(out[0]))
		return
	}
	c.enqueueLocked(item{batch: out, weight: max(len(out)+extra, 1)})
}

// noteSent records that the socket got seq of conv as `sent`.
func (c *conn) noteSent(conv string, seq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recLocked(c.g.opts.Now()).admit(conv, seq)
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/beehive-im/beehive/shared/wire"
)

// The chat scenario with --resync: every device behaves like a real
// client. A socket the server closes or that drops is reopened with
// jittered exponential backoff (logging in again when the token is
// refused); every (re)connect sends `sync` from the device's cursors and
// counts the messages of the answer as deliveries, once per (conversation,
// seq); sends left unanswered by a lost socket are sent again, with their
// client_msg_id, after the sync. At the end every device syncs once more,
// and a message acknowledged but absent from its recipient then is lost.

const (
	reconnectBase = 100 * time.Millisecond
	reconnectMax  = 5 * time.Second
	// finalSyncMax bounds the final sync of the drain (on top of --drain).
	finalSyncMax = 30 * time.Second
)

// resyncStats is what reconnecting and syncing did in one worker.
type resyncStats struct {
	// Reconnects counts sockets reopened after one was lost.
	Reconnects int64 `json:"reconnects"`
	// ReconnectErrors counts failed reconnect attempts by class.
	ReconnectErrors map[string]int `json:"reconnect_errors,omitempty"`
	// Relogins counts logins after a refused token (401 or 4001).
	Relogins int64 `json:"relogins"`
	// DisconnectedSeconds sums, over devices, the time from losing a socket
	// to having the next one open; MaxOutageSeconds is the longest one.
	DisconnectedSeconds float64 `json:"disconnected_seconds"`
	MaxOutageSeconds    float64 `json:"max_outage_seconds"`
	// Syncs counts `sync` requests (pages included); SyncErrors their
	// error answers by code; SyncStalled pages that moved no cursor.
	Syncs       int64          `json:"syncs"`
	SyncErrors  map[string]int `json:"sync_errors,omitempty"`
	SyncStalled int64          `json:"sync_stalled,omitempty"`
	// Recovered counts messages a device first got while a sync was
	// outstanding: what the syncs recovered. RecoveredLatency is their
	// send->delivery time (also in the delivery latency).
	Recovered        int64 `json:"sync_recovered"`
	RecoveredLatency *hist `json:"sync_recovered_latency,omitempty"`
	// SyncRepeats counts messages a sync returned that the device had.
	SyncRepeats int64 `json:"sync_repeats"`
	// Redelivered counts messages pushed live again on a later socket life
	// than the one that first had them (not duplicates: the server cannot
	// know what a dead socket got).
	Redelivered int64 `json:"redelivered_live"`
	// Retried counts sends written again after a reconnect (same
	// client_msg_id); WriteFailures sends whose write failed.
	Retried       int64 `json:"retried_sends"`
	WriteFailures int64 `json:"write_failures"`
	// RetryConflicts counts retries answered `conflict` (the first attempt
	// still in progress), which are retried again.
	RetryConflicts int64 `json:"retry_conflicts,omitempty"`
	// AckedLate counts sends whose `sent` was lost with the socket and that
	// were acknowledged by their own copy in a sync or a push instead.
	AckedLate int64 `json:"acked_late"`
	// Unanswered counts sends with neither `sent` nor `error` when the run
	// ended: counted as refused (send error "unanswered").
	Unanswered int64 `json:"unanswered"`
	// SeqSkipped counts seqs no acknowledged message holds below a
	// conversation's highest: a restart skips the rest of a leased block
	// of seqs, so --resync's seq_gaps counts only seqs held twice.
	SeqSkipped int64 `json:"seq_skipped"`
	// FinalSyncs counts devices whose final sync completed, of Devices.
	Devices          int     `json:"devices"`
	FinalSyncs       int     `json:"final_syncs"`
	FinalSyncSeconds float64 `json:"final_sync_seconds"`
}

func newResyncStats() *resyncStats {
	return &resyncStats{ReconnectErrors: map[string]int{}, SyncErrors: map[string]int{}, RecoveredLatency: newHist()}
}

func (s *resyncStats) merge(o *resyncStats) {
	if o == nil {
		return
	}
	s.Reconnects += o.Reconnects
	for k, v := range o.ReconnectErrors {
		s.ReconnectErrors[k] += v
	}
	s.Relogins += o.Relogins
	s.DisconnectedSeconds += o.DisconnectedSeconds
	s.MaxOutageSeconds = max(s.MaxOutageSeconds, o.MaxOutageSeconds)
	s.Syncs += o.Syncs
	for k, v := range o.SyncErrors {
		s.SyncErrors[k] += v
	}
	s.SyncStalled += o.SyncStalled
	s.Recovered += o.Recovered
	s.RecoveredLatency.merge(o.RecoveredLatency)
	s.SyncRepeats += o.SyncRepeats
	s.Redelivered += o.Redelivered
	s.Retried += o.Retried
	s.WriteFailures += o.WriteFailures
	s.RetryConflicts += o.RetryConflicts
	s.AckedLate += o.AckedLate
	s.Unanswered += o.Unanswered
	s.SeqSkipped += o.SeqSkipped
	s.Devices += o.Devices
	s.FinalSyncs += o.FinalSyncs
	s.FinalSyncSeconds = max(s.FinalSyncSeconds, o.FinalSyncSeconds)
}

// device is one simulated client: a user's "chat" device. Everything but
// wmu is guarded by the worker's mu.
type device struct {
	i    int // socket index: 2*pair + side
	u    user
	wmu  sync.Mutex      // one writer per socket
	ws   *websocket.Conn // nil while down
	book deviceBook
	// downAt is when the last socket was lost; relogin asks for a login
	// before the next dial.
	downAt  time.Time
	relogin bool
	// The outstanding sync: its frame id ("" when none), its cursors, and
	// the channel closed when its last page is answered.
	nSync       int
	syncID      string
	syncCursors map[string]int64
	syncDone    chan struct{}
	// resend: send the unanswered again once the sync is done.
	resend     bool
	unanswered map[int64]struct{}
}

type resyncChat struct {
	w      *worker
	a      assignment
	api    *api
	dialer *websocket.Dialer
	devs   []*device
	msgs   []msgState
	st     *resyncStats

	sentLat, delivLat *hist
}

func (w *worker) chatResync() error {
	a := w.a
	c := &resyncChat{w: w, a: a, api: newAPI(a.HTTPAddr, 4), st: newResyncStats(),
		dialer: &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: a.BufferSize, WriteBufferSize: a.BufferSize}}
	c.sentLat, c.delivLat = newHist(), newHist()
	w.res.SentLatency, w.res.DeliveryLatency, w.res.Resync = c.sentLat, c.delivLat, c.st
	specs := make([]sockSpec, 0, 2*len(a.Pairs))
	for _, p := range a.Pairs {
		specs = append(specs, sockSpec{User: p.A, Device: "chat"}, sockSpec{User: p.B, Device: "chat"})
	}
	for i, s := range specs {
		c.devs = append(c.devs, &device{i: i, u: s.User, unanswered: map[int64]struct{}{}})
	}
	c.st.Devices = len(c.devs)
	w.onOpen = func(i int, ws *websocket.Conn) {
		d := c.devs[i]
		w.mu.Lock()
		d.ws = ws
		w.mu.Unlock()
		go c.read(d, ws, 0)
	}
	conns := w.dialAll(specs, nil)
	for i, cn := range conns {
		if cn == nil {
			w.ready()
			return fmt.Errorf("socket %d of %d could not be opened: %v", i, len(conns), w.res.DialErrors)
		}
	}
	// The first sync of every device (fresh users: an empty answer).
	var wg sync.WaitGroup
	for _, d := range c.devs {
		wg.Add(1)
		go func() { defer wg.Done(); c.syncOnce(d, time.Now().Add(30*time.Second)) }()
	}
	wg.Wait()
	w.ready()
	start, ok := w.awaitStart()
	if !ok {
		return nil
	}
	n, lag := pace(start, a.Rate, a.Duration, c.send)
	runEnd := time.Now()

	// Drain: every send answered, every acknowledged one delivered; the
	// devices go on reconnecting, syncing and retrying meanwhile.
	timedOut := !waitUntil(a.Drain, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for i := int64(0); i < n; i++ {
			st := &c.msgs[i]
			if !st.acked && !st.errored || st.acked && st.recv == 0 {
				return false
			}
		}
		return true
	})
	drainEnd := time.Now()
	// The final sync of every device: what it does not have then is lost.
	deadline := time.Now().Add(min(max(a.Drain, 10*time.Second), finalSyncMax))
	var finals int
	var fmu sync.Mutex
	for _, d := range c.devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.syncOnce(d, deadline) {
				fmu.Lock()
				finals++
				fmu.Unlock()
			}
		}()
	}
	wg.Wait()
	w.stopping.Store(true)

	w.mu.Lock()
	c.st.FinalSyncs = finals
	c.st.FinalSyncSeconds = time.Since(drainEnd).Seconds()
	w.res.RunSeconds = runEnd.Sub(start).Seconds()
	w.res.DrainSeconds = drainEnd.Sub(runEnd).Seconds()
	w.res.DrainTimedOut = timedOut
	w.res.MaxLagMS = float64(lag.Microseconds()) / 1000
	seqs := make([][]int64, len(a.Pairs))
	for i := range c.msgs {
		st := &c.msgs[i]
		if !st.acked && !st.errored {
			// Never answered, even after retries: refused, not expected.
			st.errored = true
			c.st.Unanswered++
			w.res.SendErrors["unanswered"]++
		}
		switch {
		case st.acked && st.recv == 0:
			w.res.Missing++ // lost: acknowledged, absent after the final sync
		case st.acked && st.recv > 1:
			w.res.Duplicates += int64(st.recv - 1) // one message under two seqs
		case !st.acked && st.recv > 0:
			w.res.Unexpected++
		}
		if st.acked {
			seqs[st.pair] = append(seqs[st.pair], st.seq)
		}
	}
	for _, s := range seqs {
		// Seqs skipped by a server restart are no fault; one seq twice is.
		holes, doubles := seqHoles(s)
		w.res.SeqGaps += doubles
		c.st.SeqSkipped += holes
	}
	w.mu.Unlock()
	w.finish()
	return nil
}

// send is the pacer's message k: written now if the device's socket is
// up, else after its next reconnect.
func (c *resyncChat) send(k int64) {
	w := c.w
	np := int64(len(c.a.Pairs))
	p, side := int(k%np), int((k/np)%2)
	d := c.devs[2*p+side]
	now := time.Now()
	w.mu.Lock()
	c.msgs = append(c.msgs, msgState{pair: int32(p), side: int8(side), sentAt: now.UnixNano()})
	w.res.Sent++
	d.unanswered[k] = struct{}{}
	ws := d.ws
	w.mu.Unlock()
	if ws != nil {
		c.write(d, ws, k, now)
	}
}

// write sends message k over ws. A failed write closes the socket (its
// reader then reconnects); the message stays unanswered and is retried.
func (c *resyncChat) write(d *device, ws *websocket.Conn, k int64, sentAt time.Time) {
	p := c.a.Pairs[d.i/2]
	to := p.B.ID
	if d.i%2 == 1 {
		to = p.A.ID
	}
	d.wmu.Lock()
	err := writeSend(ws, k, wire.SendData{
		ToUserID: to, ClientMsgID: fmt.Sprintf("w%d-%d", c.a.Worker, k), Type: "text",
	}, encodeContent(sentAt, k, c.a.Pad))
	d.wmu.Unlock()
	if err != nil {
		c.w.mu.Lock()
		c.st.WriteFailures++
		c.w.mu.Unlock()
		_ = ws.Close()
	}
}

func (c *resyncChat) read(d *device, ws *websocket.Conn, life int) {
	c.w.opened.Add(1)
	defer c.w.opened.Add(-1)
	for {
		_, raw, err := ws.ReadMessage()
		at := time.Now()
		if err != nil {
			c.lost(d, ws, err)
			return
		}
		var f wire.Frame
		if json.Unmarshal(raw, &f) == nil {
			c.frame(d, life, f, at)
		}
	}
}

// lost handles the end of a device's socket: count it, reconnect.
func (c *resyncChat) lost(d *device, ws *websocket.Conn, err error) {
	w := c.w
	_ = ws.Close()
	w.mu.Lock()
	if d.ws != ws {
		w.mu.Unlock()
		return
	}
	d.ws, d.syncID = nil, ""
	d.downAt = time.Now()
	if w.stopping.Load() {
		w.mu.Unlock()
		return
	}
	key := netClass(err)
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		key = strconv.Itoa(ce.Code)
		if ce.Code == 4001 {
			d.relogin = true // session revoked: only a new login helps
		}
	}
	w.res.Closed[key]++
	w.mu.Unlock()
	go c.reconnect(d)
}

// reconnect reopens d's socket with jittered exponential backoff, logging
// in again when the token is refused, then syncs.
func (c *resyncChat) reconnect(d *device) {
	w := c.w
	for attempt := 0; ; attempt++ {
		time.Sleep(backoff(attempt, reconnectBase, reconnectMax, rand.Float64()))
		if w.stopping.Load() {
			return
		}
		w.mu.Lock()
		relogin, u := d.relogin, d.u
		w.mu.Unlock()
		if relogin {
			nu, err := c.api.login(context.Background(), u.Email, u.Password, "load")
			w.mu.Lock()
			if err != nil {
				c.st.ReconnectErrors["login_"+errKey(err)]++
				w.mu.Unlock()
				continue
			}
			d.u.Token, d.relogin, u.Token = nu.Token, false, nu.Token
			c.st.Relogins++
			w.mu.Unlock()
		}
		h := http.Header{}
		h.Set("Authorization", "Bearer "+u.Token)
		ws, resp, err := c.dialer.Dial(c.a.WSURL+"?device_id=chat", h)
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		if err != nil {
			key := netClass(err)
			if resp != nil {
				key = "http_" + strconv.Itoa(resp.StatusCode)
			}
			w.mu.Lock()
			c.st.ReconnectErrors[key]++
			if resp != nil && resp.StatusCode == http.StatusUnauthorized {
				d.relogin = true
			}
			w.mu.Unlock()
			continue
		}
		w.mu.Lock()
		if w.stopping.Load() {
			w.mu.Unlock()
			_ = ws.Close()
			return
		}
		out := time.Since(d.downAt).Seconds()
		c.st.Reconnects++
		c.st.DisconnectedSeconds += out
		c.st.MaxOutageSeconds = max(c.st.MaxOutageSeconds, out)
		d.ws = ws
		d.book.reconnected()
		d.resend = true
		life := d.book.life
		w.socks[d.i] = ws
		w.mu.Unlock()
		go c.read(d, ws, life)
		c.startSync(d, nil, false)
		return
	}
}

// startSync sends a `sync` from d's cursors; done is nil for a new sync
// (a channel is made), else the channel of the sync this continues: its
// next page (page) or a retry after an error. It returns the channel
// closed when the last page is answered, nil when the socket is down.
func (c *resyncChat) startSync(d *device, done chan struct{}, page bool) chan struct{} {
	w := c.w
	w.mu.Lock()
	ws := d.ws
	if ws == nil || w.stopping.Load() {
		w.mu.Unlock()
		return nil
	}
	cursors := d.book.cursors()
	if page && sameCursors(cursors, d.syncCursors) {
		// has_more, but the last page moved no cursor: stop paging.
		c.st.SyncStalled++
		c.endSyncLocked(d, false)
		w.mu.Unlock()
		return done
	}
	if done == nil {
		done = make(chan struct{})
	}
	d.nSync++
	id := "s" + strconv.Itoa(d.nSync)
	d.syncID, d.syncCursors, d.syncDone = id, cursors, done
	c.st.Syncs++
	w.mu.Unlock()
	raw, err := wire.Encode(wire.OpSync, json.RawMessage(strconv.Quote(id)), wire.SyncData{Cursors: cursors})
	if err == nil {
		d.wmu.Lock()
		_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		err = ws.WriteMessage(websocket.TextMessage, raw)
		d.wmu.Unlock()
	}
	if err != nil {
		_ = ws.Close() // the reader reconnects, and syncs again
	}
	return done
}

// endSyncLocked ends d's outstanding sync (w.mu held) and, after a
// reconnect, sends the unanswered sends again.
func (c *resyncChat) endSyncLocked(d *device, complete bool) {
	d.syncID = ""
	close(d.syncDone)
	if complete {
		d.book.syncDone()
	}
	if !d.resend {
		return
	}
	d.resend = false
	ws := d.ws
	ks := sortedKeys(d.unanswered)
	at := make([]time.Time, len(ks))
	for i, k := range ks {
		at[i] = time.Unix(0, c.msgs[k].sentAt)
	}
	c.st.Retried += int64(len(ks))
	go func() {
		for i, k := range ks {
			c.write(d, ws, k, at[i])
		}
	}()
}

// syncOnce runs one complete sync on d before deadline, waiting for the
// socket (and the sync of its reconnect) first; false if it could not.
func (c *resyncChat) syncOnce(d *device, deadline time.Time) bool {
	w := c.w
	for time.Now().Before(deadline) {
		w.mu.Lock()
		ready := d.ws != nil && d.syncID == ""
		life := d.book.life
		w.mu.Unlock()
		if !ready {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		done := c.startSync(d, nil, false)
		if done == nil {
			continue
		}
		for time.Now().Before(deadline) {
			select {
			case <-done:
				return true
			case <-time.After(50 * time.Millisecond):
			}
			w.mu.Lock()
			moved := d.book.life != life
			w.mu.Unlock()
			if moved {
				break // the socket was lost mid-sync: sync on the next one
			}
		}
	}
	return false
}

// frame handles one frame read by d's socket of life life.
func (c *resyncChat) frame(d *device, life int, f wire.Frame, at time.Time) {
	w := c.w
	switch f.Op {
	case wire.OpSent, wire.OpMessage:
		var md msgData
		if json.Unmarshal(f.Data, &md) != nil {
			return
		}
		t0, k, ok := decodeContent(md.Message.Content)
		m := md.Message
		w.mu.Lock()
		defer w.mu.Unlock()
		if !ok || k < 0 || k >= int64(len(c.msgs)) {
			w.res.Unexpected++
			return
		}
		st := &c.msgs[k]
		tl := timelineAt(&w.res.Timeline, w.runStart, at)
		if f.Op == wire.OpSent {
			c.sentLat.add(at.Sub(t0))
			tl.sent(at.Sub(t0))
			c.ackLocked(d, st, k, m)
			return
		}
		if int(st.pair) != d.i/2 {
			w.res.Unexpected++ // another pair's message
			return
		}
		if int(st.side) == d.i%2 {
			// The device's own message, from a sync or pushed to the new
			// socket of a sender whose `sent` was lost with the old one:
			// the server has it.
			if !st.acked {
				c.st.AckedLate++
			}
			c.ackLocked(d, st, k, m)
			d.book.ownCopy(m.ConversationID, m.Seq, d.syncID != "" && life == d.book.life)
			return
		}
		inSync := d.syncID != "" && life == d.book.life
		var kind deliveryKind
		if inSync {
			kind = d.book.synced(m.ConversationID, m.Seq)
		} else {
			var ooo bool
			kind, ooo = d.book.live(m.ConversationID, m.Seq)
			if ooo {
				w.res.OutOfOrder++
			}
		}
		switch kind {
		case liveTwice:
			w.res.Duplicates++
		case seenBefore:
			if inSync {
				c.st.SyncRepeats++
			} else {
				c.st.Redelivered++
			}
		case firstSeen:
			lat := at.Sub(t0)
			c.delivLat.add(lat)
			tl.delivered(lat)
			w.res.Received++
			st.recv++
			if inSync {
				c.st.Recovered++
				c.st.RecoveredLatency.add(lat)
			}
		}
	case wire.OpSynced:
		var id string
		_ = json.Unmarshal(f.ID, &id)
		var sd wire.SyncedData
		_ = json.Unmarshal(f.Data, &sd)
		w.mu.Lock()
		defer w.mu.Unlock()
		if id == "" || id != d.syncID || life != d.book.life {
			return
		}
		if sd.HasMore {
			go c.startSync(d, d.syncDone, true) // the next page, from the new cursors
			return
		}
		c.endSyncLocked(d, true)
	case wire.OpError:
		var ed wire.ErrorData
		_ = json.Unmarshal(f.Data, &ed)
		var id string
		_ = json.Unmarshal(f.ID, &id)
		w.mu.Lock()
		defer w.mu.Unlock()
		if strings.HasPrefix(id, "s") {
			c.st.SyncErrors[ed.Code]++
			if id == d.syncID && life == d.book.life {
				// Ask again after the hint (or a moment) on this socket.
				done, wait := d.syncDone, time.Duration(max(ed.RetryAfterMS, 200))*time.Millisecond
				d.syncID = "pending"
				time.AfterFunc(wait, func() {
					w.mu.Lock()
					still := d.syncID == "pending" && d.book.life == life
					w.mu.Unlock()
					if still {
						c.startSync(d, done, false)
					}
				})
			}
			return
		}
		k, err := strconv.ParseInt(id, 10, 64)
		if err != nil || k < 0 || k >= int64(len(c.msgs)) {
			w.res.SendErrors[ed.Code]++
			return
		}
		st := &c.msgs[k]
		if st.acked || st.errored {
			return
		}
		if ed.Code == "conflict" {
			// A retry met its first attempt still in progress: again later.
			c.st.RetryConflicts++
			ws, sentAt := d.ws, time.Unix(0, st.sentAt)
			time.AfterFunc(500*time.Millisecond, func() {
				w.mu.Lock()
				_, open := d.unanswered[k]
				same := d.ws == ws && ws != nil
				w.mu.Unlock()
				if open && same {
					c.write(d, ws, k, sentAt)
				}
			})
			return
		}
		w.res.SendErrors[ed.Code]++
		st.errored = true
		delete(d.unanswered, k)
	}
}

// ackLocked records that the server has d's own message k as m (w.mu held).
func (c *resyncChat) ackLocked(d *device, st *msgState, k int64, m loadMessage) {
	d.book.own(m.ConversationID, m.Seq)
	delete(d.unanswered, k)
	if !st.acked {
		st.acked = true
		st.seq = m.Seq
		c.w.res.Acked++
	}
}

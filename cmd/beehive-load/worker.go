package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/beehive-im/beehive/shared/wire"
)

// worker holds one process's share of the sockets.
type worker struct {
	a    assignment
	cmds chan command

	outMu sync.Mutex
	out   *json.Encoder

	stopping atomic.Bool

	mu       sync.Mutex // guards res, runStart and the scenario state below
	res      workerResult
	runStart time.Time
	socks    []*websocket.Conn
	opened   atomic.Int64
	// onOpen, when set, takes over a socket dialAll opened (it starts the
	// reader and counts it in opened); --resync uses it.
	onOpen func(i int, ws *websocket.Conn)
}

// runWorker is the hidden `worker` subcommand: an assignment on stdin,
// events on stdout.
func runWorker(in io.Reader, out io.Writer) error {
	raiseNoFile()
	rd := bufio.NewReader(in)
	line, err := rd.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return fmt.Errorf("reading assignment: %w", err)
	}
	w := &worker{cmds: make(chan command, 4), out: json.NewEncoder(out)}
	if err := json.Unmarshal(line, &w.a); err != nil {
		return fmt.Errorf("decoding assignment: %w", err)
	}
	w.res = workerResult{Worker: w.a.Worker, DialErrors: map[string]int{}, Closed: map[string]int{},
		SendErrors: map[string]int{}, DialLatency: newHist()}
	go func() {
		defer close(w.cmds)
		for {
			line, err := rd.ReadBytes('\n')
			if len(line) > 0 {
				var c command
				if json.Unmarshal(line, &c) == nil {
					w.cmds <- c
				}
			}
			if err != nil {
				return
			}
		}
	}()
	var runErr error
	switch w.a.Scenario {
	case "sockets":
		runErr = w.sockets()
	case "chat":
		runErr = w.chat()
	case "group":
		runErr = w.group()
	default:
		runErr = fmt.Errorf("unknown scenario %q", w.a.Scenario)
	}
	if runErr != nil {
		w.emit(event{Event: "fatal", Error: runErr.Error()})
	}
	return runErr
}

func (w *worker) emit(e event) {
	e.Worker = w.a.Worker
	w.outMu.Lock()
	defer w.outMu.Unlock()
	_ = w.out.Encode(e)
}

// await returns the next command named cmd; false when the parent is gone.
func (w *worker) await(cmd string) (command, bool) {
	for c := range w.cmds {
		if c.Cmd == cmd {
			return c, true
		}
		if c.Cmd == "stop" {
			return c, false
		}
	}
	return command{}, false
}

// syncOnOpen is the sync every socket sends when it opens.
var syncOnOpen = []byte(`{"op":"sync","id":"open","data":{"cursors":{}}}`)

// awaitStart waits for the coordinator's start and its moment, and marks
// the run's start; false (the worker already finished) when told to stop.
func (w *worker) awaitStart() (time.Time, bool) {
	cmd, ok := w.await("start")
	if !ok {
		w.finish()
		return time.Time{}, false
	}
	time.Sleep(time.Until(cmd.At))
	start := time.Now()
	w.mu.Lock()
	w.runStart = start
	w.mu.Unlock()
	return start, true
}

// frameHandler sees every frame socket i reads, with the time it was read.
type frameHandler func(i int, f wire.Frame, at time.Time)

// dialAll opens one socket per spec with DialConcurrency handshakes in
// flight and starts a reader on each. Sockets that fail stay nil.
func (w *worker) dialAll(specs []sockSpec, onFrame frameHandler) []*websocket.Conn {
	d := &websocket.Dialer{
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   w.a.BufferSize,
		WriteBufferSize:  w.a.BufferSize,
	}
	conns := make([]*websocket.Conn, len(specs))
	start := time.Now()
	next := make(chan int)
	var wg sync.WaitGroup
	for c := 0; c < max(1, w.a.DialConcurrency); c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				spec := specs[i]
				h := http.Header{}
				h.Set("Authorization", "Bearer "+spec.User.Token)
				t0 := time.Now()
				ws, resp, err := d.Dial(w.a.WSURL+"?device_id="+spec.Device, h)
				took := time.Since(t0)
				if resp != nil && resp.Body != nil {
					_ = resp.Body.Close()
				}
				w.mu.Lock()
				if err != nil {
					key := netClass(err)
					if resp != nil {
						key = "http_" + strconv.Itoa(resp.StatusCode)
					}
					w.res.DialFailed++
					w.res.DialErrors[key]++
					if w.res.DialSample == "" {
						w.res.DialSample = err.Error()
					}
					w.mu.Unlock()
					continue
				}
				w.res.Connected++
				w.res.DialLatency.add(took)
				conns[i] = ws
				w.mu.Unlock()
				if w.onOpen != nil {
					w.onOpen(i, ws)
					continue
				}
				// A real client syncs as its socket opens; the gateway
				// holds live pushes until it does (gateway.sync_hold), so a
				// socket that never synced would see its first pushes late.
				// The tool's users are new: the answer is a bare `synced`.
				if err := ws.WriteMessage(websocket.TextMessage, syncOnOpen); err != nil {
					w.mu.Lock()
					w.res.DialFailed++
					w.res.DialErrors["sync_write"]++
					w.mu.Unlock()
					continue
				}
				w.opened.Add(1)
				go w.readLoop(i, ws, onFrame)
			}
		}()
	}
	for i := range specs {
		next <- i
	}
	close(next)
	wg.Wait()
	w.mu.Lock()
	w.res.DialSeconds = time.Since(start).Seconds()
	w.socks = conns
	w.mu.Unlock()
	return conns
}

func (w *worker) readLoop(i int, ws *websocket.Conn, onFrame frameHandler) {
	defer w.opened.Add(-1)
	for {
		_, raw, err := ws.ReadMessage()
		at := time.Now()
		if err != nil {
			if !w.stopping.Load() {
				key := netClass(err)
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					key = strconv.Itoa(ce.Code)
				}
				w.mu.Lock()
				w.res.Closed[key]++
				w.mu.Unlock()
			}
			return
		}
		if onFrame == nil {
			continue
		}
		var f wire.Frame
		if json.Unmarshal(raw, &f) == nil {
			onFrame(i, f, at)
		}
	}
}

// finish reports and closes every socket. The report is encoded under
// w.mu: readers still running add to the same histograms.
func (w *worker) finish() {
	w.stopping.Store(true)
	w.mu.Lock()
	w.res.OpenAtEnd = int(w.opened.Load())
	socks := w.socks
	w.emit(event{Event: "result", Result: &w.res})
	w.mu.Unlock()
	for _, s := range socks {
		if s != nil {
			_ = s.Close()
		}
	}
}

func (w *worker) ready() {
	w.mu.Lock()
	w.res.OpenAtEnd = int(w.opened.Load())
	w.emit(event{Event: "ready", Result: &w.res})
	w.mu.Unlock()
}

// sockets: open every socket, report, hold until told to stop.
func (w *worker) sockets() error {
	w.dialAll(w.a.Sockets, nil)
	w.ready()
	w.await("stop")
	w.finish()
	return nil
}

// writeSend sends the `send` frame of message k (its frame id) with
// content text; a socket has one writer (the pacer), and gorilla allows
// control frames (pongs) beside it.
func writeSend(ws *websocket.Conn, k int64, d wire.SendData, text string) error {
	content, err := json.Marshal(text)
	if err != nil {
		return err
	}
	d.Content = content
	raw, err := wire.Encode(wire.OpSend, json.RawMessage(strconv.Quote(strconv.FormatInt(k, 10))), d)
	if err != nil {
		return err
	}
	_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return ws.WriteMessage(websocket.TextMessage, raw)
}

// pace calls send(k) for k = 0, 1, ... at rate per second from start
// until start+d, open loop: a late send is not skipped, and the worst lag
// behind the schedule is reported so a saturated client is visible.
func pace(start time.Time, rate float64, d time.Duration, send func(k int64)) (n int64, maxLag time.Duration) {
	end := start.Add(d)
	for k := int64(0); ; k++ {
		due := start.Add(time.Duration(float64(k) * float64(time.Second) / rate))
		if !due.Before(end) {
			// The run lasts d, so rates divide by d, not by the time of
			// the last send.
			time.Sleep(time.Until(end))
			return k, maxLag
		}
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		} else if -wait > maxLag {
			maxLag = -wait
		}
		send(k)
	}
}

// msgState is one chat message: who sent it and what became of it.
type msgState struct {
	pair    int32
	side    int8 // 0: A sent to B, 1: B sent to A
	acked   bool
	errored bool
	recv    int32
	seq     int64
	sentAt  int64 // unix ns of the first send; a retry sends the same content
}

// chat: pairs exchange 1:1 messages at the worker's share of the rate.
func (w *worker) chat() error {
	a := w.a
	if len(a.Pairs) == 0 || a.Rate <= 0 {
		return fmt.Errorf("chat needs pairs and a positive rate")
	}
	if a.Resync {
		return w.chatResync()
	}
	specs := make([]sockSpec, 0, 2*len(a.Pairs))
	for _, p := range a.Pairs {
		specs = append(specs, sockSpec{User: p.A, Device: "chat"}, sockSpec{User: p.B, Device: "chat"})
	}
	var msgs []msgState
	lastRecv := make([][2]int64, len(a.Pairs))
	sentLat, delivLat := newHist(), newHist()
	w.res.SentLatency, w.res.DeliveryLatency = sentLat, delivLat

	onFrame := func(i int, f wire.Frame, at time.Time) {
		p, side := i/2, i%2
		switch f.Op {
		case wire.OpSent, wire.OpMessage:
			var md msgData
			if json.Unmarshal(f.Data, &md) != nil {
				return
			}
			t0, k, ok := decodeContent(md.Message.Content)
			w.mu.Lock()
			defer w.mu.Unlock()
			if !ok || k < 0 || k >= int64(len(msgs)) {
				w.res.Unexpected++
				return
			}
			st := &msgs[k]
			tl := timelineAt(&w.res.Timeline, w.runStart, at)
			if f.Op == wire.OpSent {
				sentLat.add(at.Sub(t0))
				tl.sent(at.Sub(t0))
				if !st.acked {
					st.acked = true
					st.seq = md.Message.Seq
					w.res.Acked++
				}
				return
			}
			delivLat.add(at.Sub(t0))
			tl.delivered(at.Sub(t0))
			w.res.Received++
			st.recv++
			if int(st.pair) != p || int(st.side) == side {
				w.res.Unexpected++ // delivered to the wrong socket
			}
			if md.Message.Seq <= lastRecv[p][side] {
				w.res.OutOfOrder++
			} else {
				lastRecv[p][side] = md.Message.Seq
			}
		case wire.OpError:
			var ed wire.ErrorData
			_ = json.Unmarshal(f.Data, &ed)
			var idStr string
			_ = json.Unmarshal(f.ID, &idStr)
			w.mu.Lock()
			defer w.mu.Unlock()
			w.res.SendErrors[ed.Code]++
			if k, err := strconv.ParseInt(idStr, 10, 64); err == nil && k >= 0 && k < int64(len(msgs)) {
				msgs[k].errored = true
			}
		}
	}
	conns := w.dialAll(specs, onFrame)
	for i, c := range conns {
		if c == nil {
			w.ready()
			return fmt.Errorf("socket %d of %d could not be opened: %v", i, len(conns), w.res.DialErrors)
		}
	}
	w.ready()
	start, ok := w.awaitStart()
	if !ok {
		return nil
	}
	pad := a.Pad
	n, lag := pace(start, a.Rate, a.Duration, func(k int64) {
		p := int(k % int64(len(a.Pairs)))
		side := int((k / int64(len(a.Pairs))) % 2)
		to := a.Pairs[p].B.ID
		if side == 1 {
			to = a.Pairs[p].A.ID
		}
		w.mu.Lock()
		msgs = append(msgs, msgState{pair: int32(p), side: int8(side)})
		w.res.Sent++
		w.mu.Unlock()
		err := writeSend(conns[2*p+side], k, wire.SendData{
			ToUserID: to, ClientMsgID: fmt.Sprintf("w%d-%d", a.Worker, k), Type: "text",
		}, encodeContent(time.Now(), k, pad))
		if err != nil {
			w.mu.Lock()
			w.res.SendErrors["write_"+netClass(err)]++
			msgs[k].errored = true
			w.mu.Unlock()
		}
	})
	runEnd := time.Now()
	// Drain: every message answered, every acknowledged one delivered.
	settled := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for i := int64(0); i < n; i++ {
			st := &msgs[i]
			if !st.acked && !st.errored || st.acked && st.recv == 0 {
				return false
			}
		}
		return true
	}
	timedOut := !waitUntil(a.Drain, settled)
	drainEnd := time.Now()

	w.mu.Lock()
	w.res.RunSeconds = runEnd.Sub(start).Seconds()
	w.res.DrainSeconds = drainEnd.Sub(runEnd).Seconds()
	w.res.DrainTimedOut = timedOut
	w.res.MaxLagMS = float64(lag.Microseconds()) / 1000
	seqs := make([][]int64, len(a.Pairs))
	for i := range msgs {
		st := &msgs[i]
		switch {
		case st.acked && st.recv == 0:
			w.res.Missing++
		case st.acked && st.recv > 1:
			w.res.Duplicates += int64(st.recv - 1)
		case !st.acked && st.recv > 0:
			w.res.Unexpected++
		}
		if st.acked {
			seqs[st.pair] = append(seqs[st.pair], st.seq)
		}
	}
	for _, s := range seqs {
		w.res.SeqGaps += seqGaps(s)
	}
	w.mu.Unlock()
	w.finish()
	return nil
}

// seqGaps counts the seqs in 1..max(seqs) that no acknowledged message
// holds, plus seqs held twice: a fresh conversation written only by the
// tool must be exactly 1..n.
func seqGaps(seqs []int64) int64 {
	holes, doubles := seqHoles(seqs)
	return holes + doubles
}

// seqHoles counts apart the seqs in 1..max(seqs) no message holds and the
// seqs held twice. Across a server restart holes are expected (the seq
// allocator leases blocks and skips the rest of a block), doubles never.
func seqHoles(seqs []int64) (holes, doubles int64) {
	if len(seqs) == 0 {
		return 0, 0
	}
	s := append([]int64(nil), seqs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	prev := int64(0)
	for _, v := range s {
		switch {
		case v == prev:
			doubles++ // two messages with one seq
		case v > prev+1:
			holes += v - prev - 1
		}
		if v > prev {
			prev = v
		}
	}
	return holes, doubles
}

// waitUntil polls cond until it holds or d passes. The load tool waits on
// a server it does not control; polling is the only signal it has.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// group: the senders post into a group in turn; every member socket
// measures the delivery (sender sockets only count their answers).
func (w *worker) group() error {
	a := w.a
	specs := make([]sockSpec, 0, len(a.Members)+len(a.Senders))
	for _, m := range a.Members {
		specs = append(specs, sockSpec{User: m, Device: "group"})
	}
	firstSender := len(specs)
	for _, s := range a.Senders {
		specs = append(specs, sockSpec{User: s, Device: "group"})
	}
	isSender := func(i int) bool { return i >= firstSender }
	sentLat, delivLat := newHist(), newHist()
	w.res.SentLatency, w.res.DeliveryLatency = sentLat, delivLat
	w.res.FanOut = map[int64][2]int64{}
	lastSeq := make([]int64, len(specs))
	recv := make([]int64, len(specs))
	acked := map[int64]bool{}
	answered := map[int64]bool{}

	onFrame := func(i int, f wire.Frame, at time.Time) {
		switch {
		case isSender(i) && f.Op == wire.OpSent:
			var md msgData
			if json.Unmarshal(f.Data, &md) != nil {
				return
			}
			t0, k, ok := decodeContent(md.Message.Content)
			if !ok {
				return
			}
			w.mu.Lock()
			sentLat.add(at.Sub(t0))
			timelineAt(&w.res.Timeline, w.runStart, at).sent(at.Sub(t0))
			if !acked[k] {
				acked[k] = true
				answered[k] = true
				w.res.Acked++
				w.res.AckedIdx = append(w.res.AckedIdx, k)
			}
			w.mu.Unlock()
		case isSender(i) && f.Op == wire.OpError:
			var ed wire.ErrorData
			_ = json.Unmarshal(f.Data, &ed)
			var idStr string
			_ = json.Unmarshal(f.ID, &idStr)
			w.mu.Lock()
			w.res.SendErrors[ed.Code]++
			if k, err := strconv.ParseInt(idStr, 10, 64); err == nil {
				answered[k] = true
			}
			w.mu.Unlock()
		case !isSender(i) && f.Op == wire.OpMessage:
			var md msgData
			if json.Unmarshal(f.Data, &md) != nil {
				return
			}
			t0, k, ok := decodeContent(md.Message.Content)
			w.mu.Lock()
			defer w.mu.Unlock()
			if !ok || md.Message.ConversationID != "g:"+a.GroupID {
				w.res.Unexpected++
				return
			}
			lat := at.Sub(t0)
			delivLat.add(lat)
			timelineAt(&w.res.Timeline, w.runStart, at).delivered(lat)
			w.res.Received++
			switch {
			case md.Message.Seq == lastSeq[i]:
				w.res.Duplicates++
				return
			case md.Message.Seq < lastSeq[i]:
				w.res.OutOfOrder++
				return
			}
			lastSeq[i] = md.Message.Seq
			recv[i]++
			fo := w.res.FanOut[k]
			fo[0]++
			fo[1] = max(fo[1], lat.Microseconds())
			w.res.FanOut[k] = fo
		}
	}
	conns := w.dialAll(specs, onFrame)
	for i, c := range conns {
		if c == nil {
			w.ready()
			return fmt.Errorf("socket %d of %d could not be opened: %v", i, len(conns), w.res.DialErrors)
		}
	}
	w.ready()
	start, ok := w.awaitStart()
	if !ok {
		return nil
	}
	if len(a.Senders) > 0 {
		n, lag := pace(start, a.Rate, a.Duration, func(k int64) {
			ws := conns[firstSender+int(k%int64(len(a.Senders)))]
			w.mu.Lock()
			w.res.Sent++
			w.mu.Unlock()
			err := writeSend(ws, k, wire.SendData{
				GroupID: a.GroupID, ClientMsgID: fmt.Sprintf("g%d", k), Type: "text",
			}, encodeContent(time.Now(), k, a.Pad))
			if err != nil {
				w.mu.Lock()
				w.res.SendErrors["write_"+netClass(err)]++
				answered[k] = true
				w.mu.Unlock()
			}
		})
		w.mu.Lock()
		w.res.MaxLagMS = float64(lag.Microseconds()) / 1000
		w.mu.Unlock()
		waitUntil(a.Drain, func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return int64(len(answered)) >= n
		})
		w.mu.Lock()
		idx := append([]int64(nil), w.res.AckedIdx...)
		w.mu.Unlock()
		w.emit(event{Event: "sender_done", Result: &workerResult{AckedIdx: idx}})
	}
	runEnd := time.Now()
	cmd, ok := w.await("drain")
	if !ok {
		w.finish()
		return nil
	}
	expect := int64(len(cmd.Expect))
	drainStart := time.Now()
	timedOut := !waitUntil(a.Drain, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for i := range specs {
			if !isSender(i) && recv[i] < expect {
				return false
			}
		}
		return true
	})
	w.mu.Lock()
	w.res.RunSeconds = runEnd.Sub(start).Seconds()
	w.res.DrainSeconds = time.Since(drainStart).Seconds()
	w.res.DrainTimedOut = timedOut
	for i := range specs {
		if !isSender(i) && recv[i] < expect {
			w.res.Missing += expect - recv[i]
		}
	}
	w.mu.Unlock()
	w.finish()
	return nil
}

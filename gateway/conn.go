package gateway

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-kit/log/level"

	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/wire"
)

// conn is one client socket. An idle socket holds no goroutine: the poller
// starts a reader when it turns readable (readReady), and a writer runs
// only while frames wait (writeLoop); a frame to an idle socket is written
// by the caller without waiting (writeNow). What an idle socket costs is
// this struct, its net.Conn and its entries in the gateway's maps.
type conn struct {
	g     *Gateway
	nc    net.Conn
	id    string
	p     identity.Principal
	since time.Time

	// Set once by poller.attach before the socket is published; nil rc:
	// not polled, read by readLoop.
	rc    syscall.RawConn
	token uint32

	// lastSeen is when the client last showed a sign of life (unix nanos);
	// the pinger drops sockets silent for PongWait.
	lastSeen atomic.Int64

	// Read side: held by whichever goroutine reads the socket. Readers of
	// one socket never overlap (see poller), the lock makes that visible.
	rmu      sync.Mutex
	partial  []byte // the start of a frame that has not fully arrived
	msg      []byte // a fragmented text message being assembled
	inMsg    bool
	lastBeat time.Time
	invalid  int

	// Write side. wmu serialises writes to the socket; mu guards the queue
	// and is a leaf: it is never held while taking wmu.
	wmu          sync.Mutex
	unsent       []byte // the tail of a write writeNow could not finish; under wmu
	unsentWeight int    // the frames it finishes; under wmu

	mu       sync.Mutex
	rec      *reconciler // live pushes vs sync answers; nil until needed (reconcile.go)
	queue    []item
	pending  int // frames queued or half-written, not yet fully written
	writing  bool
	closed   atomic.Bool // set under mu
	finished atomic.Bool
}

// item is one queue entry: a text frame, a batch of text frames, or a
// control frame (op set, data its payload). weight is how many frames it
// counts for in the send queue: 1 unless set (a sync answer counts once,
// a delivery of several frames counts each).
type item struct {
	op     byte
	data   []byte
	batch  [][]byte
	weight int
}

func (it item) frameCount() int { return max(it.weight, 1) }

func textItem(b []byte) item { return item{op: opText, data: b} }

// frames renders it as buffers for one vectored write: each frame's
// header, then its payload.
func (it item) frames() [][]byte {
	if it.batch == nil {
		return [][]byte{appendFrameHeader(make([]byte, 0, 10), it.op, len(it.data)), it.data}
	}
	bufs := make([][]byte, 0, 2*len(it.batch))
	for _, f := range it.batch {
		bufs = append(bufs, appendFrameHeader(make([]byte, 0, 10), opText, len(f)), f)
	}
	return bufs
}

func newConn(g *Gateway, nc net.Conn, p identity.Principal, now time.Time) *conn {
	c := &conn{g: g, nc: nc, id: ids.New(), p: p, since: now.UTC(), lastBeat: now}
	c.lastSeen.Store(time.Now().UnixNano())
	return c
}

// origin is the "<gateway_id>/<conn_id>" of this socket.
func (c *conn) origin() string { return c.g.opts.GatewayID + "/" + c.id }

// ---- writing

// enqueue hands it to the socket without blocking. An idle socket gets it
// written at once, without waiting (a socket that can take it, as idle
// ones can, needs no writer goroutine); otherwise it is queued for the
// writer. A full queue means the client does not read fast enough: the
// socket is closed (4009) rather than slowing the caller or buffering
// without bound.
func (c *conn) enqueue(it item) bool {
	c.mu.Lock()
	return c.enqueueLocked(it)
}

// enqueueLocked is enqueue for a caller that holds c.mu and decided what
// to queue under it (reconcile.go); it releases c.mu.
func (c *conn) enqueueLocked(it item) bool {
	if c.closed.Load() {
		c.mu.Unlock()
		return false
	}
	if c.pending >= c.g.opts.SendQueue {
		c.mu.Unlock()
		c.closeWith(wire.CloseTooSlow, "too slow: send queue full")
		return false
	}
	c.pending += it.frameCount()
	if c.writing {
		c.queue = append(c.queue, it)
		c.mu.Unlock()
		return true
	}
	c.writing = true
	c.mu.Unlock()
	if c.rc != nil && len(it.batch) < 256 {
		c.writeFirst(it)
		return true
	}
	c.mu.Lock()
	c.queue = append(c.queue, it)
	c.mu.Unlock()
	go c.writeLoop()
	return true
}

// writeFirst writes it to a socket nobody is writing to, as far as the
// socket takes it now; a writer goroutine finishes the rest, if any.
func (c *conn) writeFirst(it item) {
	bufs := it.frames()
	c.wmu.Lock()
	n, err := writeNow(c.rc, bufs)
	if err == nil {
		c.unsent, c.unsentWeight = rest(bufs, n), it.frameCount()
	}
	whole := c.unsent == nil
	c.wmu.Unlock()
	if err != nil {
		c.broken(err)
		return
	}
	c.mu.Lock()
	if whole {
		c.pending -= it.frameCount()
	}
	idle := whole && len(c.queue) == 0
	if idle || c.closed.Load() {
		c.writing = false
	}
	c.mu.Unlock()
	if !idle && !c.closed.Load() {
		go c.writeLoop()
	}
}

// rest is what remains of bufs after n bytes were written: nil if nothing,
// else one copied slice (bufs may be shared with other sockets).
func rest(bufs [][]byte, n int) []byte {
	var out []byte
	for _, b := range bufs {
		if n >= len(b) {
			n -= len(b)
			continue
		}
		out = append(out, b[n:]...)
		n = 0
	}
	return out
}

// writeLoop writes the half-written frame and the queue, then exits when
// nothing waits.
func (c *conn) writeLoop() {
	c.wmu.Lock()
	half := c.unsent != nil
	c.wmu.Unlock()
	if half && !c.writeCounted(nil, 0) {
		return
	}
	for {
		c.mu.Lock()
		if c.closed.Load() || len(c.queue) == 0 {
			c.writing = false
			c.queue = nil
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue = nil
		c.mu.Unlock()
		for i := range batch {
			if c.closed.Load() {
				return // writing stays true: nothing is queued on a closed socket
			}
			ok := c.writeCounted(batch[i].frames(), batch[i].frameCount())
			batch[i] = item{}
			if !ok {
				return
			}
		}
	}
}

// writeCounted writes one queue entry, bufs of weight frames, or the
// half-written one when bufs is nil, and counts it written; false once
// the socket broke.
func (c *conn) writeCounted(bufs [][]byte, weight int) bool {
	c.wmu.Lock()
	if bufs == nil {
		bufs, weight = [][]byte{c.unsent}, c.unsentWeight
		c.unsent = nil
	}
	err := c.writeBlocking(bufs)
	c.wmu.Unlock()
	if err != nil {
		c.broken(err)
		return false
	}
	c.mu.Lock()
	c.pending -= weight
	c.mu.Unlock()
	return true
}

// writeBlocking writes bufs, waiting at most WriteWait. Under wmu. The
// deadline is cleared afterwards: writeNow goes through the same fd, and a
// deadline left behind would fail it once passed.
func (c *conn) writeBlocking(bufs [][]byte) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.g.opts.WriteWait)); err != nil {
		return err
	}
	nb := net.Buffers(bufs)
	_, err := nb.WriteTo(c.nc)
	if err == nil {
		err = c.nc.SetWriteDeadline(time.Time{})
	}
	return err
}

// markClosed flips the socket to closed; false if it already was.
func (c *conn) markClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return false
	}
	c.closed.Store(true)
	c.queue = nil
	if c.rec != nil {
		c.rec.drop()
	}
	return true
}

// closeWith sends a close frame with code and reason, then closes the
// connection. It never blocks the caller.
func (c *conn) closeWith(code int, reason string) {
	if !c.markClosed() {
		return
	}
	c.g.remove(c)
	go func() {
		// Waits for the frame being written (at most WriteWait) and
		// finishes a half-written one: a close frame in the middle of a
		// frame would garble the stream.
		c.wmu.Lock()
		bufs := append(net.Buffers{c.unsent}, closeFrame(code, reason)...)
		c.unsent = nil
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.g.opts.CloseGrace))
		_, _ = bufs.WriteTo(c.nc)
		c.wmu.Unlock()
		c.finish()
	}()
}

// refuse closes a socket that was never registered (the gateway is
// shutting down), on the caller's goroutine.
func (c *conn) refuse(code int, reason string) {
	if c.rc != nil {
		c.g.poller.remove(c)
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.g.opts.CloseGrace))
	bufs := net.Buffers(closeFrame(code, reason))
	_, _ = bufs.WriteTo(c.nc)
	_ = c.nc.Close()
}

// broken drops a connection whose writes fail: no close frame can follow.
// It may run on a caller of enqueue (Deliver, the pinger), so finish, which
// calls presence, runs on a goroutine of its own.
func (c *conn) broken(err error) {
	if c.markClosed() {
		_ = level.Debug(c.g.logger).Log("msg", "socket write failed", "connId", c.id, "err", err)
	}
	go c.finish()
}

// finish ends the socket once, whoever notices first (reader, writer,
// close, pinger): unregister, close, leave presence.
func (c *conn) finish() {
	if !c.finished.CompareAndSwap(false, true) {
		return
	}
	c.markClosed()
	c.g.remove(c)
	if c.rc != nil {
		c.g.poller.remove(c)
	}
	_ = c.nc.Close()
	c.g.offline(c)
	c.g.wg.Done()
}

// ---- reading

// alive records a sign of life, and beats presence at most every
// HeartbeatEvery. Under rmu.
func (c *conn) alive() {
	c.lastSeen.Store(time.Now().UnixNano())
	now := c.g.opts.Now()
	if now.Sub(c.lastBeat) >= c.g.opts.HeartbeatEvery {
		c.lastBeat = now
		c.g.heartbeat(c)
	}
}

// readReady runs when the poller finds the socket readable: it reads what
// is there, handles every complete frame, keeps the start of an incomplete
// one, and re-arms the socket. The buffer is pooled, so an idle socket
// keeps none (only the rare half-arrived frame is copied out).
func (c *conn) readReady() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed.Load() {
		return
	}
	pooled := readBuffers.Get().(*[]byte)
	buf := (*pooled)[:0]
	if c.partial != nil {
		buf = append(buf, c.partial...)
		c.partial = nil
	}
	need := 0
	for {
		if need > cap(buf) {
			buf = append(make([]byte, 0, need), buf...)
		}
		space := buf[len(buf):cap(buf)]
		n, err := readNow(c.rc, space)
		if err != nil {
			readBuffers.Put(pooled)
			c.finish()
			return
		}
		if n == 0 {
			break // drained
		}
		var ok bool
		var left []byte
		left, need, ok = c.consume(buf[:len(buf)+n])
		if !ok {
			readBuffers.Put(pooled)
			return
		}
		buf = buf[:copy(buf[:cap(buf)], left)]
		if n < len(space) && need <= cap(buf) {
			break // the socket held less than there was room for
		}
	}
	if len(buf) > 0 {
		c.partial = append([]byte(nil), buf...)
	}
	readBuffers.Put(pooled)
	if err := c.g.poller.rearm(c); err != nil && !c.closed.Load() {
		c.finish()
	}
}

// readBuffers are the buffers readReady reads into, shared by all sockets.
var readBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// readLoop reads a socket the poller cannot watch, on a goroutine of its
// own, until the socket ends. When a frame closes the socket, the close
// path finishes it after writing the close frame.
func (c *conn) readLoop() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	buf := make([]byte, 0, c.g.opts.ReadBufferSize)
	need := 0
	for {
		if need > cap(buf) {
			buf = append(make([]byte, 0, need), buf...)
		} else if len(buf) == cap(buf) {
			buf = append(make([]byte, 0, 2*cap(buf)), buf...)
		}
		n, err := c.nc.Read(buf[len(buf):cap(buf)])
		if n > 0 {
			left, nd, ok := c.consume(buf[:len(buf)+n])
			if !ok {
				return
			}
			need = nd
			buf = buf[:copy(buf[:cap(buf)], left)]
		}
		if err != nil {
			c.finish()
			return
		}
	}
}

// consume handles the complete frames at the start of b. It returns the
// bytes of an incomplete frame that follows, the size that frame needs
// (see parseFrame), and false when the socket is closing.
func (c *conn) consume(b []byte) (left []byte, need int, ok bool) {
	limit := c.g.opts.FrameLimit
	for {
		f, n, need, ferr := parseFrame(b, limit)
		if ferr != nil {
			c.closeWith(ferr.code, ferr.reason)
			return nil, 0, false
		}
		if n == 0 {
			return b, need, true
		}
		if !c.onFrame(f) {
			return nil, 0, false
		}
		b = b[n:]
	}
}

// onFrame acts on one frame: control frames at once, data frames once
// their message is whole. False when the socket is closing.
func (c *conn) onFrame(f wsFrame) bool {
	limit := c.g.opts.FrameLimit
	switch f.op {
	case opText, opBinary:
		if c.inMsg {
			c.closeWith(wire.CloseProtocolError, "a new message began before the previous one ended")
			return false
		}
		if f.op == opBinary {
			c.closeWith(wire.CloseInvalidFrameStream, "binary frames are not accepted: send JSON text frames")
			return false
		}
		if f.fin {
			return c.onMessage(f.payload)
		}
		c.inMsg = true
		c.msg = append(c.msg[:0], f.payload...)
	case opContinuation:
		if !c.inMsg {
			c.closeWith(wire.CloseProtocolError, "continuation frame without a message to continue")
			return false
		}
		if int64(len(c.msg)+len(f.payload)) > limit {
			c.closeWith(wire.CloseInvalidFrameStream, fmt.Sprintf("frame exceeds %d bytes", limit))
			return false
		}
		c.msg = append(c.msg, f.payload...)
		if f.fin {
			msg := c.msg
			c.msg, c.inMsg = nil, false
			return c.onMessage(msg)
		}
	case opPing:
		c.alive()
		c.enqueue(item{op: opPong, data: append([]byte(nil), f.payload...)})
	case opPong:
		c.alive()
	case opClose:
		if len(f.payload) == 1 {
			c.closeWith(wire.CloseProtocolError, "close frame payload of one byte")
		} else {
			c.closeWith(echoCloseCode(f.payload), "")
		}
		return false
	}
	return true
}

// onMessage handles one whole client message.
func (c *conn) onMessage(data []byte) bool {
	c.alive()
	if ok, _ := c.g.opts.FrameLimiter.Allow(context.Background(), c.id); !ok {
		c.closeWith(wire.ClosePolicy, "too many frames: slow down")
		return false
	}
	c.handle(data)
	return !c.closed.Load()
}

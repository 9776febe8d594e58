package gateway

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log/level"
	"github.com/gorilla/websocket"

	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
)

// conn is one client socket. Its reader runs on the HTTP handler's
// goroutine; a writer goroutine exists only while frames are queued, so an
// idle socket costs one goroutine, its read buffer and this struct.
type conn struct {
	g     *Gateway
	ws    *websocket.Conn
	id    string
	p     identity.Principal
	since time.Time

	// Reader goroutine only.
	lastBeat time.Time
	invalid  int

	mu      sync.Mutex // guards the fields below; a leaf lock
	queue   []item
	pending int // queued plus taken by the writer, not yet written
	writing bool
	closed  atomic.Bool // set under mu
}

// item is one queue entry: a frame, a batch of frames (a sync answer,
// counted once), or a ping.
type item struct {
	data  []byte
	batch [][]byte
	ping  bool
}

func newConn(g *Gateway, ws *websocket.Conn, p identity.Principal, now time.Time) *conn {
	return &conn{g: g, ws: ws, id: ids.New(), p: p, since: now.UTC(), lastBeat: now}
}

// origin is the "<gateway_id>/<conn_id>" of this socket.
func (c *conn) origin() string { return c.g.opts.GatewayID + "/" + c.id }

// enqueue queues it without blocking. A full queue means the client does
// not read fast enough: the socket is closed (4009) rather than slowing
// the caller or buffering without bound.
func (c *conn) enqueue(it item) bool {
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return false
	}
	if c.pending >= c.g.opts.SendQueue {
		c.mu.Unlock()
		c.closeWith(CloseTooSlow, "too slow: send queue full")
		return false
	}
	c.queue = append(c.queue, it)
	c.pending++
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
	return true
}

// writeLoop writes queued items and exits when the queue is empty.
func (c *conn) writeLoop() {
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
			err := c.write(batch[i])
			batch[i] = item{}
			c.mu.Lock()
			c.pending--
			c.mu.Unlock()
			if err != nil {
				c.broken(err)
				return
			}
		}
	}
}

func (c *conn) write(it item) error {
	now := time.Now()
	if it.ping {
		return c.ws.WriteControl(websocket.PingMessage, nil, now.Add(c.g.opts.WriteWait))
	}
	if err := c.ws.SetWriteDeadline(now.Add(c.g.opts.WriteWait)); err != nil {
		return err
	}
	if it.data != nil {
		return c.ws.WriteMessage(websocket.TextMessage, it.data)
	}
	for _, f := range it.batch {
		if err := c.ws.WriteMessage(websocket.TextMessage, f); err != nil {
			return err
		}
	}
	return nil
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
	return true
}

// closeWith sends a close frame with code and reason, then closes the
// connection. It never blocks the caller; the reader then finishes.
func (c *conn) closeWith(code int, reason string) {
	if !c.markClosed() {
		return
	}
	c.g.remove(c)
	go func() {
		// Waits for a frame being written, at most CloseGrace.
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(c.g.opts.CloseGrace))
		_ = c.ws.Close()
	}()
}

// broken drops a connection whose writes fail: no close frame can follow.
func (c *conn) broken(err error) {
	if c.markClosed() {
		_ = level.Debug(c.g.logger).Log("msg", "socket write failed", "connId", c.id, "err", err)
		c.g.remove(c)
		_ = c.ws.Close()
	}
}

// alive records a sign of life: it moves the read deadline and beats
// presence at most every HeartbeatEvery. Reader goroutine only.
func (c *conn) alive() {
	now := c.g.opts.Now()
	_ = c.ws.SetReadDeadline(time.Now().Add(c.g.opts.PongWait))
	if now.Sub(c.lastBeat) >= c.g.opts.HeartbeatEvery {
		c.lastBeat = now
		c.g.heartbeat(c)
	}
}

// readLoop reads client frames until the socket ends, then finishes.
func (c *conn) readLoop() {
	defer c.finish()
	limit := c.g.opts.FrameLimit
	_ = c.ws.SetReadDeadline(time.Now().Add(c.g.opts.PongWait))
	c.ws.SetPongHandler(func(string) error { c.alive(); return nil })
	c.ws.SetPingHandler(func(msg string) error {
		c.alive()
		err := c.ws.WriteControl(websocket.PongMessage, []byte(msg), time.Now().Add(c.g.opts.WriteWait))
		var ne interface{ Timeout() bool }
		if err == nil || errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil
		}
		return err
	})
	for {
		mt, r, err := c.ws.NextReader()
		if err != nil {
			return
		}
		if mt != websocket.TextMessage {
			c.closeWith(CloseInvalidFrameStream, "binary frames are not accepted: send JSON text frames")
			return
		}
		// Read at most limit+1 bytes: a huge frame costs no more than that,
		// and the rest of it is never read, so the stream cannot go on.
		data, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil {
			return
		}
		if int64(len(data)) > limit {
			c.closeWith(CloseInvalidFrameStream, fmt.Sprintf("frame exceeds %d bytes", limit))
			return
		}
		c.alive()
		if ok, _ := c.g.opts.FrameLimiter.Allow(c.g.ctxBackground(), c.id); !ok {
			c.closeWith(ClosePolicy, "too many frames: slow down")
			return
		}
		c.handle(data)
		if c.closed.Load() {
			return
		}
	}
}

// finish runs when the reader ends: unregister, close, leave presence.
func (c *conn) finish() {
	c.g.remove(c)
	if c.markClosed() {
		_ = c.ws.Close()
	}
	c.g.offline(c)
	c.g.wg.Done()
}

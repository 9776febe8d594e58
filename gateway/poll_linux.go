//go:build linux

package gateway

import (
	"errors"
	"io"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller watches idle sockets with one epoll instance, so a socket waiting
// for its client holds no goroutine: a goroutine parked in a read keeps a
// stack of 4 KB or more, which at 19k sockets was most of their memory.
// When a socket turns readable the poller starts one goroutine for it
// (conn.readReady), which reads what is there, handles every complete
// frame and re-arms the socket. EPOLLONESHOT means the socket is not
// reported again until then, so one socket's frames are handled one at a
// time and in order, exactly as a reader goroutine per socket would.
//
// The socket also stays registered with Go's own netpoller; the writer
// and the close path use it as before.
type poller struct {
	epfd   int
	wakefd int // an eventfd that ends run

	mu    sync.Mutex
	conns map[uint32]*conn // by token: a token, unlike an fd, is never reused while its socket lives
	next  uint32
}

// wakeToken marks the eventfd's events; sockets get tokens from 1 on.
const wakeToken = 0

func newPoller(onError func(error)) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeToken}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wakefd)
		return nil, err
	}
	p := &poller{epfd: epfd, wakefd: wakefd, conns: map[uint32]*conn{}}
	go p.run(onError)
	return p, nil
}

// attach prepares c for the poller: false when its socket cannot be
// watched (not a plain socket, e.g. TLS), and a goroutine reads it
// instead. Call it before c is published, then watch once it is.
func (p *poller) attach(c *conn) bool {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	p.mu.Lock()
	for {
		p.next++
		if _, taken := p.conns[p.next]; p.next != wakeToken && !taken {
			break
		}
	}
	c.rc, c.token = rc, p.next
	p.conns[c.token] = c
	p.mu.Unlock()
	return true
}

// watch starts reporting c's socket when it is readable.
func (p *poller) watch(c *conn) error { return p.ctl(c, unix.EPOLL_CTL_ADD) }

// rearm reports c's socket again the next time it is readable (or at once
// if it already is).
func (p *poller) rearm(c *conn) error { return p.ctl(c, unix.EPOLL_CTL_MOD) }

// remove stops watching c; call it before closing the socket.
func (p *poller) remove(c *conn) {
	p.mu.Lock()
	delete(p.conns, c.token)
	p.mu.Unlock()
	_ = p.ctl(c, unix.EPOLL_CTL_DEL)
}

// ctl runs epoll_ctl on c's fd while Go holds a reference to it, so the
// fd cannot be closed (and its number reused) meanwhile.
func (p *poller) ctl(c *conn, op int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(c.token)}
	var cerr error
	err := c.rc.Control(func(fd uintptr) { cerr = unix.EpollCtl(p.epfd, op, int(fd), &ev) })
	if err != nil {
		return err
	}
	return cerr
}

func (p *poller) run(onError func(error)) {
	defer func() {
		_ = unix.Close(p.epfd)
		_ = unix.Close(p.wakefd)
	}()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			onError(err)
			return
		}
		for _, ev := range events[:n] {
			tok := uint32(ev.Fd)
			if tok == wakeToken {
				return
			}
			p.mu.Lock()
			c := p.conns[tok]
			p.mu.Unlock()
			if c != nil {
				go c.readReady()
			}
		}
	}
}

// close ends run; sockets still registered are no longer read.
func (p *poller) close() {
	var one [8]byte
	one[0] = 1 // an eventfd counter is a native-endian uint64; 1 is nonzero either way
	_, _ = unix.Write(p.wakefd, one[:])
}

// readNow reads what the socket holds without waiting: (0, nil) when
// nothing is there, io.EOF when the client has gone.
func readNow(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), p)
		return true // never park: the poller does the waiting
	})
	switch {
	case err != nil:
		return 0, err
	case rerr == unix.EAGAIN || rerr == unix.EINTR:
		return 0, nil
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// writeNow writes what the socket takes without waiting and returns how
// many bytes that was; the caller queues the rest for a writer goroutine.
func writeNow(rc syscall.RawConn, bufs [][]byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		n, werr = unix.Writev(int(fd), bufs)
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case werr == unix.EAGAIN || werr == unix.EINTR:
		return 0, nil
	case werr != nil:
		return 0, werr
	}
	return n, nil
}

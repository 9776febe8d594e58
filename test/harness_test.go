// Package test holds black-box end-to-end tests: they build the beehive
// binary, start it as a child process (`beehive dev` on a temp data dir,
// or several `beehive serve` processes), and talk to it only through its
// public HTTP, WebSocket and gRPC interfaces — as a client would.
package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/beehive-im/beehive/shared/testinfra"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "beehive-e2e-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "beehive")
	build := exec.Command("go", "build", "-o", binary, "../cmd/beehive")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building beehive:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// Proc is one running beehive child process.
type Proc struct {
	t        testing.TB
	cmd      *exec.Cmd
	HTTPAddr string
	GRPCAddr string
	log      *lockedBuffer
	done     chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartProc runs `beehive <args...>` with fresh HTTP and gRPC ports and
// waits until /ready answers 200.
func StartProc(t testing.TB, env []string, args ...string) *Proc {
	t.Helper()
	return StartProcAt(t, env, freeAddr(t), freeAddr(t), args...)
}

// StartProcAt is StartProc on given addresses.
func StartProcAt(t testing.TB, env []string, httpAddr, grpcAddr string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, HTTPAddr: httpAddr, GRPCAddr: grpcAddr, log: &lockedBuffer{}, done: make(chan struct{})}
	args = append(args, "--http-addr", p.HTTPAddr, "--grpc-addr", p.GRPCAddr)
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = append(append(os.Environ(), "BEEHIVE_LOG_LEVEL=warn"), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("beehive %v output:\n%s", args, tail(p.log.String(), 60))
		}
	})
	p.WaitReady(60 * time.Second)
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitReady polls /ready.
func (p *Proc) WaitReady(wait time.Duration) {
	p.t.Helper()
	testinfra.CheckFor(p.t, wait, 50*time.Millisecond, func() error {
		select {
		case <-p.done:
			p.t.Fatalf("beehive exited before it was ready:\n%s", tail(p.log.String(), 60))
		default:
		}
		resp, err := http.Get("http://" + p.HTTPAddr + "/ready")
		if err != nil {
			return fmt.Errorf("beehive not ready: %v\n%s", err, tail(p.log.String(), 60))
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("beehive not ready: /ready answers %d\n%s", resp.StatusCode, tail(p.log.String(), 60))
		}
		return nil
	})
}

// Kill sends SIGKILL: no graceful shutdown, nothing flushed.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.Kill()
	}
}

// URL of an HTTP path.
func (p *Proc) URL(path string) string { return "http://" + p.HTTPAddr + path }

// Client is a user of the API.
type Client struct {
	t        testing.TB
	base     string
	ID       string
	Email    string
	Password string
	Token    string
	Refresh  string
}

// Call does an HTTP request and decodes the JSON answer into a map.
func Call(t testing.TB, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			raw, _ := json.Marshal(b)
			rd = bytes.NewReader(raw)
		}
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d non-JSON body %q", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

// MustCall is Call that fails the test unless the status is want.
func MustCall(t testing.TB, want int, method, url, token string, body any) map[string]any {
	t.Helper()
	status, out := Call(t, method, url, token, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %v", method, url, status, want, out)
	}
	return out
}

var userSeq struct {
	sync.Mutex
	n int
}

// NewUser registers and logs in a fresh user on device "d1".
func NewUser(t testing.TB, p *Proc, nickname string) *Client {
	t.Helper()
	userSeq.Lock()
	userSeq.n++
	n := userSeq.n
	userSeq.Unlock()
	c := &Client{t: t, base: "http://" + p.HTTPAddr, Email: fmt.Sprintf("%s-%d-%d@example.com", nickname, n, time.Now().UnixNano()), Password: "password-" + nickname}
	out := MustCall(t, 201, "POST", c.base+"/v1/auth/register", "", map[string]any{"nickname": nickname, "email": c.Email, "password": c.Password})
	c.ID = str(out, "user", "id")
	c.Login("d1")
	return c
}

// Login starts a session on device and keeps its tokens.
func (c *Client) Login(device string) {
	c.t.Helper()
	out := MustCall(c.t, 200, "POST", c.base+"/v1/auth/login", "", map[string]any{"email": c.Email, "password": c.Password, "device_id": device})
	c.Token = str(out, "access_token")
	c.Refresh = str(out, "refresh_token")
}

// Do calls the API as this user.
func (c *Client) Do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	return Call(c.t, method, c.base+path, c.Token, body)
}

// Must calls the API as this user and checks the status.
func (c *Client) Must(want int, method, path string, body any) map[string]any {
	c.t.Helper()
	return MustCall(c.t, want, method, c.base+path, c.Token, body)
}

func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, k := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[k]
	}
	s, _ := cur.(string)
	return s
}

func num(m map[string]any, path ...string) int64 {
	var cur any = m
	for _, k := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return 0
		}
		cur = mm[k]
	}
	f, _ := cur.(float64)
	return int64(f)
}

// Frame is one WebSocket frame.
type Frame struct {
	Op   string          `json:"op"`
	ID   json.RawMessage `json:"id,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Msg is a message as frames carry it.
type Msg struct {
	ID             string          `json:"id"`
	ConversationID string          `json:"conversation_id"`
	Seq            int64           `json:"seq"`
	SenderID       string          `json:"sender_id"`
	Type           string          `json:"type"`
	Content        json.RawMessage `json:"content"`
	ClientMsgID    string          `json:"client_msg_id"`
	Recalled       bool            `json:"recalled"`
}

// WS is a WebSocket client with a reader goroutine.
type WS struct {
	t        testing.TB
	conn     *websocket.Conn
	frames   chan Frame
	closed   chan struct{}
	mu       sync.Mutex
	closeErr error
}

// Dial opens /v1/ws for the client on device.
func (c *Client) Dial(device string) *WS {
	c.t.Helper()
	u := strings.Replace(c.base, "http://", "ws://", 1) + "/v1/ws?device_id=" + device
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.Token)
	conn, resp, err := websocket.DefaultDialer.Dial(u, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		c.t.Fatalf("dial ws: %v (status %d)", err, status)
	}
	w := &WS{t: c.t, conn: conn, frames: make(chan Frame, 100000), closed: make(chan struct{})}
	go w.readLoop()
	c.t.Cleanup(func() { _ = conn.Close() })
	return w
}

// DialSynced opens /v1/ws as a client does on connect: it syncs from its
// cursors (none: a fresh install) and returns once `synced` arrived, its
// answer read and dropped. Until a socket's first sync, the gateway holds
// live pushes for it (WEBSOCKET.md, "Delivery").
func (c *Client) DialSynced(device string) *WS {
	c.t.Helper()
	w := c.Dial(device)
	w.SyncAll(map[string]int64{}, 0, nil)
	return w
}

// SyncAll syncs from cursors (advanced in place) page by page until
// `synced` says there is no more, passing every message frame of the
// answers to each (nil: dropped); limit 0 leaves the server's default.
func (w *WS) SyncAll(cursors map[string]int64, limit int, each func(Msg)) {
	w.t.Helper()
	for page := 0; ; page++ {
		data := map[string]any{"cursors": cursors}
		if limit > 0 {
			data["limit"] = limit
		}
		id := fmt.Sprintf("sync-%d", page)
		w.Send("sync", id, data)
		for {
			f := w.Next(wait, "message", "synced", "error")
			if f.Op == "error" {
				w.t.Fatalf("sync refused: %s", f.Data)
			}
			if f.Op == "synced" {
				if string(f.ID) != `"`+id+`"` {
					w.t.Fatalf("synced %s answers another sync than %s", f.ID, id)
				}
				var d struct {
					HasMore bool `json:"has_more"`
				}
				_ = json.Unmarshal(f.Data, &d)
				if !d.HasMore {
					return
				}
				break
			}
			m := f.Message(w.t)
			cursors[m.ConversationID] = max(cursors[m.ConversationID], m.Seq)
			if each != nil {
				each(m)
			}
		}
	}
}

func (w *WS) readLoop() {
	defer close(w.closed)
	for {
		_, raw, err := w.conn.ReadMessage()
		if err != nil {
			w.mu.Lock()
			w.closeErr = err
			w.mu.Unlock()
			return
		}
		var f Frame
		if json.Unmarshal(raw, &f) == nil {
			w.frames <- f
		}
	}
}

// Send writes one client frame.
func (w *WS) Send(op, id string, data any) {
	w.t.Helper()
	f := map[string]any{"op": op}
	if id != "" {
		f["id"] = id
	}
	if data != nil {
		f["data"] = data
	}
	w.mu.Lock()
	err := w.conn.WriteJSON(f)
	w.mu.Unlock()
	if err != nil {
		w.t.Fatalf("ws send %s: %v", op, err)
	}
}

// Next returns the next frame whose op is one of ops (others are
// skipped), failing after wait.
func (w *WS) Next(wait time.Duration, ops ...string) Frame {
	w.t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case f := <-w.frames:
			if len(ops) == 0 {
				return f
			}
			for _, op := range ops {
				if f.Op == op {
					return f
				}
			}
		case <-timer.C:
			w.t.Fatalf("no %v frame within %s", ops, wait)
			return Frame{}
		}
	}
}

// NextWithNoneBefore returns the next frame with op, failing if a frame
// with one of unwanted arrives before it, or op not within wait. When op
// comes through the same ordered path after the unwanted frame would have,
// this proves the unwanted frame never came, without waiting out a timer.
func (w *WS) NextWithNoneBefore(wait time.Duration, op string, unwanted ...string) Frame {
	w.t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case f := <-w.frames:
			if f.Op == op {
				return f
			}
			for _, u := range unwanted {
				if f.Op == u {
					w.t.Fatalf("unexpected %s frame before %s: %s", f.Op, op, f.Data)
				}
			}
		case <-timer.C:
			w.t.Fatalf("no %s frame within %s", op, wait)
			return Frame{}
		}
	}
}

// Message decodes a sent/message frame's message.
func (f Frame) Message(t testing.TB) Msg {
	t.Helper()
	var d struct {
		Message Msg `json:"message"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil || d.Message.ID == "" {
		t.Fatalf("frame %s carries no message: %s", f.Op, f.Data)
	}
	return d.Message
}

// CloseCode waits for the server to close the socket and returns the code.
func (w *WS) CloseCode(wait time.Duration) int {
	w.t.Helper()
	select {
	case <-w.closed:
	case <-time.After(wait):
		w.t.Fatalf("socket not closed within %s", wait)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ce, ok := w.closeErr.(*websocket.CloseError); ok {
		return ce.Code
	}
	return -1
}

var _ = context.Background

package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/wire"
)

// fakeAuth maps tokens to principals.
type fakeAuth struct {
	mu     sync.Mutex
	tokens map[string]identity.Principal
}

func (a *fakeAuth) Authenticate(_ context.Context, tok string) (identity.Principal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.tokens[tok]; ok {
		return p, nil
	}
	return identity.Principal{}, errs.New(errs.Unauthenticated, "invalid token")
}

// login returns a token for user in a new session.
func (a *fakeAuth) login(user, session string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	tok := "tok-" + ids.New()
	a.tokens[tok] = identity.Principal{UserID: user, SessionID: session, DeviceID: "dev-" + session}
	return tok
}

// fakeSender assigns per-conversation seq in call order and records
// which of message.Service's send methods each send took.
type fakeSender struct {
	mu    sync.Mutex
	seq   map[string]int64
	calls []sendCall
	fail  error
}

type sendCall struct {
	Req   message.SendRequest
	Group bool // SendGroupMessage, not SendMessage
}

func (s *fakeSender) SendMessage(ctx context.Context, req message.SendRequest) (message.Message, error) {
	return s.send(ctx, req, false)
}

func (s *fakeSender) SendGroupMessage(ctx context.Context, req message.SendRequest) (message.Message, error) {
	return s.send(ctx, req, true)
}

func (s *fakeSender) send(ctx context.Context, req message.SendRequest, group bool) (message.Message, error) {
	if identity.UserID(ctx) != req.SenderID {
		return message.Message{}, errs.New(errs.PermissionDenied, "context principal differs from sender")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return message.Message{}, s.fail
	}
	conv := ids.Group(req.GroupID)
	if !group {
		conv = ids.P2P(req.SenderID, req.ToUserID)
	}
	s.seq[conv]++
	s.calls = append(s.calls, sendCall{Req: req, Group: group})
	return message.Message{ID: ids.New(), ConversationID: conv, Seq: s.seq[conv], SenderID: req.SenderID,
		Type: req.Type, Content: req.Content, Mentions: []string{}, SentAt: time.Now().UTC(), ClientMsgID: req.ClientMsgID, ToUserID: req.ToUserID, GroupID: req.GroupID}, nil
}

type ackCall struct {
	User, Device, Conv string
	Seq                int64
}

// fakeReader answers sync from a fixed set and records acks.
type fakeReader struct {
	mu       sync.Mutex
	messages []message.Message
	hasMore  bool
	acks     []ackCall
	limits   []int
	// gate, when set, holds each Sync in flight: Sync sends on entered,
	// then waits for release before reading messages.
	gate *syncGate
}

type syncGate struct {
	entered chan struct{}
	release chan struct{}
}

// holdSyncs makes every Sync wait until the returned gate is released.
func (r *fakeReader) holdSyncs() *syncGate {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gate = &syncGate{entered: make(chan struct{}, 16), release: make(chan struct{})}
	return r.gate
}

func (r *fakeReader) setMessages(msgs ...message.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages = msgs
}

func (r *fakeReader) Sync(_ context.Context, _ string, cursors map[string]int64, limit int) (query.SyncResult, error) {
	r.mu.Lock()
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		gate.entered <- struct{}{}
		<-gate.release
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limits = append(r.limits, limit)
	byConv := map[string]int{}
	var out []query.SyncedConversation
	for _, m := range r.messages {
		if m.Seq <= cursors[m.ConversationID] {
			continue
		}
		i, ok := byConv[m.ConversationID]
		if !ok {
			i = len(out)
			byConv[m.ConversationID] = i
			out = append(out, query.SyncedConversation{ConversationID: m.ConversationID})
		}
		out[i].Messages = append(out[i].Messages, m)
	}
	return query.SyncResult{Conversations: out, HasMore: r.hasMore}, nil
}

func (r *fakeReader) Ack(_ context.Context, user, device, conv string, seq int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acks = append(r.acks, ackCall{user, device, conv, seq})
	return nil
}

type fakeReads struct {
	mu    sync.Mutex
	calls []ackCall
}

func (f *fakeReads) MarkAsRead(_ context.Context, user, conv string, seq int64) error {
	if strings.HasPrefix(conv, "g:") {
		return errs.New(errs.PermissionDenied, "not a member of this group")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, ackCall{User: user, Conv: conv, Seq: seq})
	return nil
}

type fakeTyping struct {
	mu    sync.Mutex
	calls []ackCall
}

func (f *fakeTyping) Typing(_ context.Context, user, conv string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, ackCall{User: user, Conv: conv})
	return nil
}

type env struct {
	t        *testing.T
	gw       *gateway.Gateway
	srv      *httptest.Server
	auth     *fakeAuth
	sender   *fakeSender
	reader   *fakeReader
	reads    *fakeReads
	typing   *fakeTyping
	presence *presence.Presence
}

func newEnv(t testing.TB, opts gateway.Options) *env {
	e := &env{
		auth:   &fakeAuth{tokens: map[string]identity.Principal{}},
		sender: &fakeSender{seq: map[string]int64{}},
		reader: &fakeReader{},
		reads:  &fakeReads{},
		typing: &fakeTyping{},
	}
	pres, err := presence.New(presence.Deps{Backend: presence.NewMemoryBackend(), Events: events.Nop{}}, presence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.presence = pres
	if tt, ok := t.(*testing.T); ok {
		e.t = tt
	}
	if opts.GatewayID == "" {
		opts.GatewayID = "gw-test"
	}
	if goroutineReads() {
		opts.GoroutinePerSocket = true
	}
	e.gw, err = gateway.New(gateway.Deps{
		Authenticator: e.auth, Sender: e.sender, Reader: e.reader, Reads: e.reads, Typing: e.typing, Presence: e.presence,
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(gateway.NewHTTPHandler(gateway.HTTPOptions{WS: e.gw}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.gw.Shutdown(ctx)
		e.srv.Close()
	})
	return e
}

func (e *env) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/v1/ws" + query
}

// client is a test WebSocket client.
type client struct {
	t    *testing.T
	ws   *websocket.Conn
	next int
}

// dial connects with token and waits for a pong, which proves the socket
// is registered (registration happens before the read loop starts).
func (e *env) dial(t *testing.T, token, query string) *client {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	ws, resp, err := websocket.DefaultDialer.Dial(e.wsURL(query), h)
	if err != nil {
		t.Fatalf("dial: %v (resp %v)", err, resp)
	}
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { _ = ws.Close() })
	c.ping()
	return c
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(op string, id any, data any) {
	c.t.Helper()
	f := map[string]any{"op": op}
	if id != nil {
		f["id"] = id
	}
	if data != nil {
		f["data"] = data
	}
	b, _ := json.Marshal(f)
	c.sendRaw(string(b))
}

type frame struct {
	Op   string          `json:"op"`
	ID   json.RawMessage `json:"id"`
	Data json.RawMessage `json:"data"`
}

// read returns the next frame. The deadline only keeps a broken test from
// hanging; nothing is asserted on time.
func (c *client) read() frame {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("server frame %q: %v", b, err)
	}
	return f
}

// ping sends a ping with a fresh id and returns the frames that arrived
// before its pong.
func (c *client) ping() []frame {
	c.t.Helper()
	c.next++
	id := fmt.Sprintf("ping-%d", c.next)
	c.send("ping", id, nil)
	var before []frame
	for {
		f := c.read()
		if f.Op == "pong" && string(f.ID) == `"`+id+`"` {
			return before
		}
		before = append(before, f)
	}
}

// closeCode reads until the server closes and returns the close code and
// reason.
func (c *client) closeCode() (int, string) {
	c.t.Helper()
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if ok := asCloseError(err, &ce); ok {
			return ce.Code, ce.Text
		}
		c.t.Fatalf("connection ended without a close frame: %v", err)
	}
}

func asCloseError(err error, target **websocket.CloseError) bool {
	ce, ok := err.(*websocket.CloseError)
	if ok {
		*target = ce
	}
	return ok
}

func errorOf(t *testing.T, f frame) wire.ErrorData {
	t.Helper()
	if f.Op != "error" {
		t.Fatalf("frame %s %s %s, want error", f.Op, f.ID, f.Data)
	}
	var d wire.ErrorData
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// goroutineReadsEnv set to 1 runs the suite with a goroutine reading each
// socket (the portable path) instead of the poller.
const goroutineReadsEnv = "BEEHIVE_TEST_GOROUTINE_READS"

func goroutineReads() bool { return os.Getenv(goroutineReadsEnv) == "1" }

// TestSuiteOnGoroutineReadPath runs every other test of the package again
// in a child process whose gateways read each socket on a goroutine, so
// both read paths are held to the same tests.
func TestSuiteOnGoroutineReadPath(t *testing.T) {
	if goroutineReads() {
		t.Skip("this is the child run")
	}
	if testing.Short() {
		t.Skip("-short: the poller path only")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^Test", "-test.skip=^TestSuiteOnGoroutineReadPath$", "-test.count=1")
	cmd.Env = append(os.Environ(), goroutineReadsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("suite on the goroutine read path: %v\n%s", err, out)
	}
}

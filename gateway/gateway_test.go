package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/ratelimit"
	"github.com/beehive-im/beehive/shared/testinfra"
	"github.com/beehive-im/beehive/shared/wire"
)

func TestUpgradeRefusedBeforeHandshake(t *testing.T) {
	e := newEnv(t, gateway.Options{AllowedOrigins: []string{"https://app.example"}})
	good := e.auth.login(ids.New(), "s1")
	cases := []struct {
		name   string
		query  string
		header map[string]string
		status int
		code   string
	}{
		{"no token", "", nil, 401, "unauthenticated"},
		{"bad bearer token", "", map[string]string{"Authorization": "Bearer nope"}, 401, "unauthenticated"},
		{"bad query token", "?token=nope", nil, 401, "unauthenticated"},
		{"device id too long", "?token=" + good + "&device_id=" + strings.Repeat("d", 65), nil, 400, "invalid_argument"},
		{"foreign origin", "?token=" + good, map[string]string{"Origin": "https://evil.example"}, 403, "permission_denied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range c.header {
				h.Set(k, v)
			}
			ws, resp, err := websocket.DefaultDialer.Dial(e.wsURL(c.query), h)
			if err == nil {
				ws.Close()
				t.Fatal("upgrade succeeded")
			}
			defer resp.Body.Close()
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			raw, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %q is not the JSON error: %v", raw, err)
			}
			if resp.StatusCode != c.status || body.Error.Code != c.code {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, raw, c.status, c.code)
			}
		})
	}
	t.Run("query token and allowed origin are accepted", func(t *testing.T) {
		h := http.Header{"Origin": []string{"https://app.example"}}
		ws, _, err := websocket.DefaultDialer.Dial(e.wsURL("?token="+good), h)
		if err != nil {
			t.Fatal(err)
		}
		ws.Close()
	})
	t.Run("plain GET without upgrade is a JSON 400", func(t *testing.T) {
		resp, err := http.Get(e.srv.URL + "/v1/ws?token=" + good)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func TestSendAnswersSentWithSameID(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	alice, bob := ids.New(), ids.New()
	c := e.dial(t, e.auth.login(alice, "s1"), "?device_id=phone")
	c.send("send", "f-1", map[string]any{"to_user_id": bob, "client_msg_id": "cm-1", "type": "text", "content": "hi"})
	f := c.read()
	if f.Op != "sent" || string(f.ID) != `"f-1"` {
		t.Fatalf("got %s %s %s", f.Op, f.ID, f.Data)
	}
	var d wire.MessageData[message.Message]
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Message.ConversationID != ids.P2P(alice, bob) || d.Message.Seq != 1 || string(d.Message.Content) != `"hi"` || d.Message.ClientMsgID != "cm-1" {
		t.Fatalf("message = %+v", d.Message)
	}
	e.sender.mu.Lock()
	call := e.sender.calls[0]
	e.sender.mu.Unlock()
	conns := e.gw.UserConnections(alice)
	if req := call.Req; call.Group || req.SenderID != alice || len(conns) != 1 || req.OriginConn != "gw-test/"+conns[0] {
		t.Fatalf("send call %+v (conns %v), want SendMessage from alice's socket", call, conns)
	}
	// Numeric ids are echoed too; a group send goes to SendGroupMessage.
	group := ids.New()
	c.send("send", 7, map[string]any{"group_id": group, "client_msg_id": "cm-2", "type": "custom", "content": map[string]any{"k": 1}})
	if f := c.read(); f.Op != "sent" || string(f.ID) != "7" {
		t.Fatalf("got %s %s %s", f.Op, f.ID, f.Data)
	}
	e.sender.mu.Lock()
	call = e.sender.calls[1]
	e.sender.mu.Unlock()
	if !call.Group || call.Req.GroupID != group || call.Req.ToUserID != "" {
		t.Fatalf("send call %+v, want SendGroupMessage to %s", call, group)
	}
}

func TestPipelinedSendsGetIncreasingSeqInOrder(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	alice, bob := ids.New(), ids.New()
	c := e.dial(t, e.auth.login(alice, "s1"), "")
	const n = 100
	var all strings.Builder
	for i := 0; i < n; i++ {
		b, _ := json.Marshal(map[string]any{"op": "send", "id": fmt.Sprint(i), "data": map[string]any{"to_user_id": bob, "client_msg_id": fmt.Sprint("cm", i), "type": "text", "content": "x"}})
		c.sendRaw(string(b))
		all.Write(b)
	}
	var last int64
	for i := 0; i < n; i++ {
		f := c.read()
		var d wire.MessageData[message.Message]
		_ = json.Unmarshal(f.Data, &d)
		if f.Op != "sent" || string(f.ID) != fmt.Sprintf("%q", fmt.Sprint(i)) || d.Message.Seq <= last || d.Message.ClientMsgID != fmt.Sprint("cm", i) {
			t.Fatalf("answer %d: %s %s seq %d after %d", i, f.Op, f.ID, d.Message.Seq, last)
		}
		last = d.Message.Seq
	}
}

func TestBadFramesGetErrorFramesAndSocketStaysOpen(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	alice, bob, carol := ids.New(), ids.New(), ids.New()
	c := e.dial(t, e.auth.login(alice, "s1"), "")
	cases := []struct {
		name  string
		raw   string
		id    string
		code  string
		field string
	}{
		{"malformed JSON", `{"op":`, "", "invalid_argument", ""},
		{"not an object", `[1,2]`, "", "invalid_argument", ""},
		{"unknown op", `{"op":"dance","id":"u1"}`, `"u1"`, "invalid_argument", "op"},
		{"object id", `{"op":"ping","id":{"a":1}}`, "", "invalid_argument", "id"},
		{"send without data", `{"op":"send","id":"s1"}`, `"s1"`, "invalid_argument", "data"},
		{"send with both targets", `{"op":"send","id":"s2","data":{"to_user_id":"` + bob + `","group_id":"g1","client_msg_id":"c","type":"text","content":"x"}}`, `"s2"`, "invalid_argument", "to_user_id"},
		{"send without client_msg_id", `{"op":"send","id":"s3","data":{"to_user_id":"` + bob + `","type":"text","content":"x"}}`, `"s3"`, "invalid_argument", "client_msg_id"},
		{"send with content of wrong type in field", `{"op":"send","id":"s4","data":{"to_user_id":5}}`, `"s4"`, "invalid_argument", "to_user_id"},
		{"read of someone else's conversation", `{"op":"read","id":"r1","data":{"conversation_id":"` + ids.P2P(bob, carol) + `","seq":3}}`, `"r1"`, "permission_denied", ""},
		{"read of a group refused by the peer", `{"op":"read","id":"r2","data":{"conversation_id":"g:` + ids.New() + `","seq":3}}`, `"r2"`, "permission_denied", ""},
		{"ack with a bad conversation id", `{"op":"ack","id":"a1","data":{"conversation_id":"x:1","seq":1}}`, `"a1"`, "invalid_argument", "conversation_id"},
		{"ack without seq", `{"op":"ack","id":"a2","data":{"conversation_id":"` + ids.P2P(alice, bob) + `"}}`, `"a2"`, "invalid_argument", "seq"},
		{"typing in someone else's conversation", `{"op":"typing","id":"t1","data":{"conversation_id":"` + ids.P2P(bob, carol) + `"}}`, `"t1"`, "permission_denied", ""},
		{"sync limit out of range", `{"op":"sync","id":"y1","data":{"cursors":{},"limit":0}}`, `"y1"`, "invalid_argument", "limit"},
		{"sync cursor of a bad conversation", `{"op":"sync","id":"y2","data":{"cursors":{"nope":1}}}`, `"y2"`, "invalid_argument", "cursors"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.sendRaw(tc.raw)
			f := c.read()
			d := errorOf(t, f)
			if string(f.ID) != tc.id || string(d.Code) != tc.code || d.Field != tc.field || d.Message == "" {
				t.Fatalf("got id %s %+v, want id %s code %s field %q", f.ID, d, tc.id, tc.code, tc.field)
			}
			c.ping() // still open
		})
	}
}

func TestFloodOfInvalidFramesCloses4400(t *testing.T) {
	e := newEnv(t, gateway.Options{MaxInvalidFrames: 3})
	c := e.dial(t, e.auth.login(ids.New(), "s1"), "")
	for i := 0; i < 3; i++ {
		c.sendRaw("garbage")
	}
	if code, reason := c.closeCode(); code != wire.CloseInvalidFrameStream || reason == "" {
		t.Fatalf("close %d %q, want 4400 with a reason", code, reason)
	}
}

func TestOversizedAndBinaryFramesClose4400(t *testing.T) {
	e := newEnv(t, gateway.Options{FrameLimit: 1024})
	tok := e.auth.login(ids.New(), "s1")
	t.Run("oversized", func(t *testing.T) {
		c := e.dial(t, tok, "")
		c.sendRaw(`{"op":"ping","id":"` + strings.Repeat("x", 2000) + `"}`)
		if code, reason := c.closeCode(); code != wire.CloseInvalidFrameStream || !strings.Contains(reason, "1024") {
			t.Fatalf("close %d %q", code, reason)
		}
	})
	t.Run("at the limit is fine", func(t *testing.T) {
		c := e.dial(t, tok, "")
		f := `{"op":"ping","id":"p"}`
		c.sendRaw(f + strings.Repeat(" ", 1024-len(f)))
		if f := c.read(); f.Op != "pong" {
			t.Fatalf("got %s", f.Op)
		}
	})
	t.Run("binary", func(t *testing.T) {
		c := e.dial(t, tok, "")
		if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"op":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		if code, _ := c.closeCode(); code != wire.CloseInvalidFrameStream {
			t.Fatalf("close %d", code)
		}
	})
}

func TestSendRateLimitAnswersRateLimitedAndKeepsSocket(t *testing.T) {
	e := newEnv(t, gateway.Options{SendLimiter: ratelimit.NewLocal(0.001, 2)})
	alice, bob := ids.New(), ids.New()
	c := e.dial(t, e.auth.login(alice, "s1"), "")
	for i := 0; i < 3; i++ {
		c.send("send", fmt.Sprint("m", i), map[string]any{"to_user_id": bob, "client_msg_id": fmt.Sprint(i), "type": "text", "content": "x"})
	}
	for i := 0; i < 2; i++ {
		if f := c.read(); f.Op != "sent" {
			t.Fatalf("send %d: %s %s", i, f.Op, f.Data)
		}
	}
	f := c.read()
	if d := errorOf(t, f); d.Code != "rate_limited" || string(f.ID) != `"m2"` || d.RetryAfterMS != errs.DefaultRetryAfter.Milliseconds() {
		t.Fatalf("third send: %s %+v (want rate_limited with retry_after_ms)", f.ID, d)
	}
	c.ping()
}

func TestFrameFloodCloses4008(t *testing.T) {
	e := newEnv(t, gateway.Options{FrameLimiter: ratelimit.NewLocal(0.001, 5)})
	c := e.dial(t, e.auth.login(ids.New(), "s1"), "") // dial's ping is frame 1
	for i := 0; i < 5; i++ {
		c.send("ping", i, nil)
	}
	if code, _ := c.closeCode(); code != wire.ClosePolicy {
		t.Fatalf("close %d, want 4008", code)
	}
}

func TestAckReadTypingReachPeers(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	alice, bob := ids.New(), ids.New()
	conv := ids.P2P(alice, bob)
	c := e.dial(t, e.auth.login(alice, "s1"), "?device_id=tablet")
	c.send("ack", "a", map[string]any{"conversation_id": conv, "seq": 4})
	c.send("read", "r", map[string]any{"conversation_id": conv, "seq": 3})
	c.send("typing", "t", map[string]any{"conversation_id": conv})
	if got := c.ping(); len(got) != 0 {
		t.Fatalf("unexpected frames %+v", got)
	}
	e.reader.mu.Lock()
	acks := e.reader.acks
	e.reader.mu.Unlock()
	if len(acks) != 1 || acks[0] != (ackCall{alice, "tablet", conv, 4}) {
		t.Fatalf("acks %+v", acks)
	}
	e.reads.mu.Lock()
	reads := e.reads.calls
	e.reads.mu.Unlock()
	if len(reads) != 1 || reads[0] != (ackCall{User: alice, Conv: conv, Seq: 3}) {
		t.Fatalf("reads %+v", reads)
	}
	e.typing.mu.Lock()
	typing := e.typing.calls
	e.typing.mu.Unlock()
	if len(typing) != 1 || typing[0] != (ackCall{User: alice, Conv: conv}) {
		t.Fatalf("typing %+v", typing)
	}
}

func TestSyncSendsMessagesAscendingPerConversationThenSynced(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	alice, bob := ids.New(), ids.New()
	p, g := ids.P2P(alice, bob), ids.Group(ids.New())
	mk := func(conv string, seq int64) message.Message {
		return message.Message{ID: ids.New(), ConversationID: conv, Seq: seq, SenderID: bob, Type: "text", Content: json.RawMessage(`"x"`)}
	}
	e.reader.messages = []message.Message{mk(p, 3), mk(g, 9), mk(p, 1), mk(g, 7), mk(p, 2), mk(g, 8)}
	e.reader.hasMore = true
	c := e.dial(t, e.auth.login(alice, "s1"), "")
	c.send("sync", "y", map[string]any{"cursors": map[string]int64{p: 1}, "limit": 50})
	last := map[string]int64{}
	count := 0
	for {
		f := c.read()
		if f.Op == "synced" {
			var d wire.SyncedData
			_ = json.Unmarshal(f.Data, &d)
			if string(f.ID) != `"y"` || !d.HasMore {
				t.Fatalf("synced %s %s", f.ID, f.Data)
			}
			break
		}
		var d wire.MessageData[message.Message]
		_ = json.Unmarshal(f.Data, &d)
		if f.Op != "message" || d.Message.Seq <= last[d.Message.ConversationID] {
			t.Fatalf("frame %s %s after seq %d", f.Op, f.Data, last[d.Message.ConversationID])
		}
		last[d.Message.ConversationID] = d.Message.Seq
		count++
	}
	if count != 5 || last[p] != 3 || last[g] != 9 {
		t.Fatalf("got %d messages, last %v", count, last)
	}
	c.send("sync", "z", nil) // a fresh install may send no data
	for f := c.read(); f.Op != "synced"; f = c.read() {
	}
	e.reader.mu.Lock()
	limits := e.reader.limits
	e.reader.mu.Unlock()
	if len(limits) != 2 || limits[0] != 50 || limits[1] != 200 {
		t.Fatalf("limits %v, want [50 200]", limits)
	}
}

func TestDeliverReachesEveryDeviceButExceptConn(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	alice, bob, carol := ids.New(), ids.New(), ids.New()
	a1 := e.dial(t, e.auth.login(alice, "s1"), "?device_id=phone")
	a2 := e.dial(t, e.auth.login(alice, "s2"), "?device_id=laptop")
	a3 := e.dial(t, e.auth.login(alice, "s3"), "?device_id=tablet")
	b1 := e.dial(t, e.auth.login(bob, "s4"), "")
	c1 := e.dial(t, e.auth.login(carol, "s5"), "")
	conns := e.gw.UserConnections(alice)
	if len(conns) != 3 {
		t.Fatalf("alice has %d sockets", len(conns))
	}
	// Find a2's connection id: deliver to each alone until a2 hears it.
	var except string
	for _, id := range conns {
		frame, _ := wire.EncodeFrame("typing", wire.TypingData{ConversationID: "probe", UserID: id})
		n, err := e.gw.Deliver(context.Background(), wire.DeliverRequest{UserIDs: []string{alice}, Frame: frame, ExceptConn: "gw-test/" + id})
		if err != nil || n != 2 {
			t.Fatalf("probe delivered %d, %v", n, err)
		}
		if len(a2.ping()) == 1 { // a2 heard every probe but the one skipping it
			continue
		}
		except = id
	}
	a1.ping()
	a3.ping()
	if except == "" {
		t.Fatal("no probe skipped a2")
	}
	frame, _ := wire.EncodeFrame("message", wire.MessageData[message.Message]{Message: message.Message{ID: "m1"}})
	n, err := e.gw.Deliver(context.Background(), wire.DeliverRequest{UserIDs: []string{alice, bob}, Frame: frame, ExceptConn: "gw-test/" + except})
	if err != nil || n != 3 {
		t.Fatalf("delivered %d, %v; want 3", n, err)
	}
	for name, c := range map[string]*client{"a1": a1, "a3": a3, "b1": b1} {
		if got := c.ping(); len(got) != 1 || got[0].Op != "message" {
			t.Fatalf("%s got %+v", name, got)
		}
	}
	if got := a2.ping(); len(got) != 0 {
		t.Fatalf("the excepted socket got %+v", got)
	}
	if got := c1.ping(); len(got) != 0 {
		t.Fatalf("an unrelated user got %+v", got)
	}
	// Another gateway's except id skips nothing here.
	n, _ = e.gw.Deliver(context.Background(), wire.DeliverRequest{UserIDs: []string{alice}, Frame: frame, ExceptConn: "gw-other/" + except})
	if n != 3 {
		t.Fatalf("delivered %d with a foreign except, want 3", n)
	}
	for _, bad := range []wire.DeliverRequest{{Frame: frame}, {UserIDs: []string{alice}}, {UserIDs: []string{alice}, Frame: []byte("{nope")}} {
		if _, err := e.gw.Deliver(context.Background(), bad); err == nil {
			t.Fatalf("bad deliver %+v accepted", bad)
		}
	}
}

func TestSlowConsumerClosed4009WhileOthersKeepReceiving(t *testing.T) {
	e := newEnv(t, gateway.Options{SendQueue: 8})
	slowUser, fastUser := ids.New(), ids.New()
	slow := e.dial(t, e.auth.login(slowUser, "s1"), "")
	fast := e.dial(t, e.auth.login(fastUser, "s2"), "")
	big := make([]byte, 32<<10)
	for i := range big {
		big[i] = 'x'
	}
	frame, _ := wire.EncodeFrame("message", map[string]string{"pad": string(big)})
	small, _ := wire.EncodeFrame("typing", wire.TypingData{ConversationID: "c", UserID: "u"})
	// slow never reads: the kernel buffers fill, then its queue, then it is
	// closed. Deliver never blocks meanwhile.
	for i := 0; len(e.gw.UserConnections(slowUser)) > 0; i++ {
		if i > 100000 {
			t.Fatal("slow socket never closed")
		}
		if _, err := e.gw.Deliver(context.Background(), wire.DeliverRequest{UserIDs: []string{slowUser}, Frame: frame}); err != nil {
			t.Fatal(err)
		}
		if i%64 == 0 {
			if _, err := e.gw.Deliver(context.Background(), wire.DeliverRequest{UserIDs: []string{fastUser}, Frame: small}); err != nil {
				t.Fatal(err)
			}
			fast.read()
		}
	}
	if code, reason := slow.closeCode(); code != wire.CloseTooSlow || reason == "" {
		t.Fatalf("slow closed %d %q, want 4009", code, reason)
	}
	n, _ := e.gw.Deliver(context.Background(), wire.DeliverRequest{UserIDs: []string{fastUser}, Frame: small})
	if n != 1 || fast.read().Op != "typing" {
		t.Fatal("fast socket stopped receiving")
	}
}

func TestSessionRevokedCloses4001(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	bus := events.NewBus()
	bus.Subscribe(e.gw.HandleEvent)
	alice, bob := ids.New(), ids.New()
	s1 := e.dial(t, e.auth.login(alice, "sess-1"), "")
	s2 := e.dial(t, e.auth.login(alice, "sess-2"), "")
	b := e.dial(t, e.auth.login(bob, "sess-3"), "")

	_ = bus.Publish(context.Background(), events.Event{Type: events.SessionRevoked, UserID: alice, SessionID: "sess-1"})
	if code, reason := s1.closeCode(); code != wire.CloseSessionRevoked || reason == "" {
		t.Fatalf("revoked session closed %d %q", code, reason)
	}
	s2.ping() // the other session stays
	_ = bus.Publish(context.Background(), events.Event{Type: events.SessionRevoked, UserID: alice})
	if code, _ := s2.closeCode(); code != wire.CloseSessionRevoked {
		t.Fatalf("all-sessions revocation closed %d", code)
	}
	_ = bus.Publish(context.Background(), events.Event{Type: events.SessionRevoked, SessionID: "sess-3"})
	if code, _ := b.closeCode(); code != wire.CloseSessionRevoked {
		t.Fatalf("revocation by session id alone closed %d", code)
	}
}

func TestPresenceFollowsSockets(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	alice := ids.New()
	ctx := context.Background()
	c1 := e.dial(t, e.auth.login(alice, "s1"), "?device_id=phone")
	c2 := e.dial(t, e.auth.login(alice, "s2"), "?device_id=laptop")
	ps, err := e.presence.GetUserPresence(ctx, []string{alice})
	if err != nil || !ps[0].Online || len(ps[0].Devices) != 2 || ps[0].Devices[0].GatewayID != "gw-test" {
		t.Fatalf("presence %+v, %v", ps, err)
	}
	devices := map[string]bool{ps[0].Devices[0].DeviceID: true, ps[0].Devices[1].DeviceID: true}
	if !devices["phone"] || !devices["laptop"] {
		t.Fatalf("devices %+v", ps[0].Devices)
	}
	c1.ws.Close()
	testinfra.Eventually(t, 10*time.Second, "one device left", func() bool {
		ps, _ := e.presence.GetUserPresence(ctx, []string{alice})
		return len(ps[0].Devices) == 1
	})
	c2.ws.Close()
	testinfra.Eventually(t, 10*time.Second, "alice offline", func() bool {
		on, _ := e.presence.IsUserOnline(ctx, alice)
		return !on
	})
}

func TestShutdownCloses1001AndRefusesNewSockets(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	tok := e.auth.login(ids.New(), "s1")
	c := e.dial(t, tok, "")
	done := make(chan error, 1)
	go func() { done <- e.gw.Shutdown(context.Background()) }()
	if code, reason := c.closeCode(); code != wire.CloseGoingAway || reason == "" {
		t.Fatalf("close %d %q", code, reason)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, resp, err := websocket.DefaultDialer.Dial(e.wsURL("?token="+tok), nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("dial after shutdown: %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	full := gateway.Deps{Authenticator: e.auth, Sender: e.sender, Reader: e.reader, Reads: e.reads, Typing: e.typing, Presence: e.presence}
	for name, drop := range map[string]func(*gateway.Deps){
		"Deps.Authenticator": func(d *gateway.Deps) { d.Authenticator = nil },
		"Deps.Sender":        func(d *gateway.Deps) { d.Sender = nil },
		"Deps.Reader":        func(d *gateway.Deps) { d.Reader = nil },
		"Deps.Reads":         func(d *gateway.Deps) { d.Reads = nil },
		"Deps.Typing":        func(d *gateway.Deps) { d.Typing = nil },
		"Deps.Presence":      func(d *gateway.Deps) { d.Presence = nil },
	} {
		t.Run(name, func(t *testing.T) {
			deps := full
			drop(&deps)
			if _, err := gateway.New(deps, gateway.Options{}); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want one naming %s", err, name)
			}
		})
	}
}

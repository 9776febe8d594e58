package gateway_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
	"github.com/beehive-im/beehive/shared/wire"
)

// Tests of the WebSocket wire itself: the gateway parses frames from the
// bytes that have arrived, so these write raw frames under the test client.

func rawFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	key := [4]byte{9, 8, 7, 6}
	b := []byte{b0}
	if n := len(payload); n <= 125 {
		b = append(b, 0x80|byte(n))
	} else {
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

func (c *client) writeRaw(b []byte) {
	c.t.Helper()
	if _, err := c.ws.NetConn().Write(b); err != nil {
		c.t.Fatalf("raw write: %v", err)
	}
}

func TestFrameArrivingByteByByteIsHandled(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	c := e.dial(t, e.auth.login(ids.New(), "s"), "")
	b := rawFrame(true, 0x1, []byte(`{"op":"ping","id":"slow"}`))
	for i := range b {
		c.writeRaw(b[i : i+1])
		time.Sleep(time.Millisecond) // let each byte arrive on its own
	}
	if f := c.read(); f.Op != "pong" || string(f.ID) != `"slow"` {
		t.Fatalf("got %s %s", f.Op, f.ID)
	}
}

func TestFragmentedMessageWithControlFrameBetween(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	c := e.dial(t, e.auth.login(ids.New(), "s"), "")
	pongs := make(chan string, 1)
	c.ws.SetPongHandler(func(s string) error { pongs <- s; return nil })
	msg := `{"op":"ping","id":"frag"}`
	var b []byte
	b = append(b, rawFrame(false, 0x1, []byte(msg[:5]))...)
	b = append(b, rawFrame(true, 0x9, []byte("hello"))...) // a ping between fragments
	b = append(b, rawFrame(false, 0x0, []byte(msg[5:12]))...)
	b = append(b, rawFrame(true, 0x0, []byte(msg[12:]))...)
	c.writeRaw(b)
	if f := c.read(); f.Op != "pong" || string(f.ID) != `"frag"` {
		t.Fatalf("got %s %s", f.Op, f.ID)
	}
	if got := <-pongs; got != "hello" {
		t.Fatalf("pong payload %q", got)
	}
}

func TestProtocolViolationsClose1002(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	cases := map[string][]byte{
		"unmasked frame":       {0x81, 0x02, 'h', 'i'},
		"stray continuation":   rawFrame(true, 0x0, []byte("x")),
		"new message mid-way":  append(rawFrame(false, 0x1, []byte("{")), rawFrame(true, 0x1, []byte("{}"))...),
		"fragmented ping":      rawFrame(false, 0x9, nil),
		"one-byte close frame": rawFrame(true, 0x8, []byte{3}),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			c := e.dial(t, e.auth.login(ids.New(), "s"), "")
			c.writeRaw(b)
			if code, reason := c.closeCode(); code != wire.CloseProtocolError || reason == "" {
				t.Fatalf("close %d %q, want 1002 with a reason", code, reason)
			}
		})
	}
}

func TestClientCloseIsEchoedAndSocketFinishes(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	user := ids.New()
	c := e.dial(t, e.auth.login(user, "s"), "")
	payload := binary.BigEndian.AppendUint16(nil, 4321)
	c.writeRaw(rawFrame(true, 0x8, append(payload, "bye"...)))
	if code, _ := c.closeCode(); code != 4321 {
		t.Fatalf("close echoed %d, want 4321", code)
	}
	testinfra.Eventually(t, 10*time.Second, "socket unregistered", func() bool { return len(e.gw.UserConnections(user)) == 0 })
}

func TestSilentSocketDroppedAndLiveOneKept(t *testing.T) {
	const pingInterval, pongWait = 20 * time.Millisecond, 100 * time.Millisecond
	e := newEnv(t, gateway.Options{PingInterval: pingInterval, PongWait: pongWait})
	silentUser, liveUser := ids.New(), ids.New()
	silent := e.dial(t, e.auth.login(silentUser, "s1"), "")
	live := e.dial(t, e.auth.login(liveUser, "s2"), "")
	// live reads and answers every server ping with a pong, counting them;
	// silent never reads again after dialing, so it never answers.
	pings := make(chan struct{}, 1024)
	live.ws.SetPingHandler(func(data string) error {
		pings <- struct{}{}
		err := live.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		if err == websocket.ErrCloseSent {
			return nil
		}
		return err
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := live.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	testinfra.Eventually(t, 10*time.Second, "silent socket dropped", func() bool { return len(e.gw.UserConnections(silentUser)) == 0 })
	// The pinger drops a silent socket in the round it would ping it, so
	// each ping live gets says it was kept that round. Rounds follow the
	// ticker, pingInterval apart, so ping number `rounds` comes at least
	// (rounds-2) x pingInterval after live connected, well past pongWait:
	// had its pongs not counted, it would have been dropped before that
	// ping. No sleep: the pings are the pinger's own progress.
	rounds := int(2*pongWait/pingInterval) + 1
	for i := 0; i < rounds; i++ {
		select {
		case <-pings:
		case <-done:
			t.Fatalf("a socket answering pings was dropped after %d pings", i)
		case <-time.After(10 * time.Second):
			t.Fatalf("ping %d never came", i+1)
		}
	}
	if len(e.gw.UserConnections(liveUser)) != 1 {
		t.Fatal("a socket answering pings was dropped")
	}
	_ = silent.ws.Close()
	_ = live.ws.Close()
	<-done
}

func TestIdleSocketsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the poller is Linux only; elsewhere a goroutine reads each socket")
	}
	if goroutineReads() {
		t.Skip("this run reads each socket on a goroutine on purpose")
	}
	e := newEnv(t, gateway.Options{PingInterval: time.Hour})
	e.dial(t, e.auth.login(ids.New(), "warm"), "") // starts the pinger and the poller
	settle := func() int {
		var n int
		for range 50 {
			runtime.GC()
			n = runtime.NumGoroutine()
			time.Sleep(5 * time.Millisecond)
			if runtime.NumGoroutine() == n {
				break
			}
		}
		return n
	}
	before := settle()
	const sockets = 200
	for i := range sockets {
		c := e.dial(t, e.auth.login(ids.New(), "s"), "?device_id=d"+strings.Repeat("x", i%3))
		_ = c
	}
	// The test's own clients start no goroutines (gorilla reads only when
	// asked), so what grew is the server's.
	if grew := settle() - before; grew > sockets/10 {
		t.Fatalf("%d idle sockets added %d goroutines", sockets, grew)
	}
	if n := e.gw.Connections(); n != sockets+1 {
		t.Fatalf("%d connections, want %d", n, sockets+1)
	}
}

// A frame too large for the socket's buffers is finished by the writer
// goroutine, under a write deadline. That deadline must not outlive the
// write: a frame written directly much later would fail on it and drop a
// healthy socket (found by the load tool at 2,000 msgs/s).
func TestDirectWriteAfterAnExpiredWriteDeadline(t *testing.T) {
	e := newEnv(t, gateway.Options{WriteWait: 100 * time.Millisecond})
	user := ids.New()
	c := e.dial(t, e.auth.login(user, "s"), "")
	big, _ := wire.EncodeFrame("message", map[string]string{"pad": strings.Repeat("x", 8<<20)})
	if n, err := e.gw.Deliver(context.Background(), wire.DeliverRequest{UserIDs: []string{user}, Frame: big}); n != 1 || err != nil {
		t.Fatalf("deliver big: %d %v", n, err)
	}
	if f := c.read(); f.Op != "message" {
		t.Fatalf("got %s", f.Op)
	}
	time.Sleep(300 * time.Millisecond) // past the big frame's write deadline
	small, _ := wire.EncodeFrame("typing", wire.TypingData{ConversationID: "c", UserID: "u"})
	if n, err := e.gw.Deliver(context.Background(), wire.DeliverRequest{UserIDs: []string{user}, Frame: small}); n != 1 || err != nil {
		t.Fatalf("deliver small: %d %v", n, err)
	}
	if f := c.read(); f.Op != "typing" {
		t.Fatalf("got %s", f.Op)
	}
}

func TestDeliverWithMoreFramesKeepsOrderAndEachFramesSkippedSocket(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	alice, bob := ids.New(), ids.New()
	a1 := e.dial(t, e.auth.login(alice, "s1"), "?device_id=one")
	a2 := e.dial(t, e.auth.login(alice, "s2"), "?device_id=two")
	b := e.dial(t, e.auth.login(bob, "s3"), "")
	conns := e.gw.UserConnections(alice)
	if len(conns) != 2 {
		t.Fatalf("alice has %d sockets", len(conns))
	}
	f := func(n int) []byte {
		b, _ := wire.EncodeFrame("typing", wire.TypingData{ConversationID: fmt.Sprint("c", n), UserID: "u"})
		return b
	}
	n, err := e.gw.Deliver(context.Background(), wire.DeliverRequest{
		UserIDs: []string{alice, bob}, Frame: f(1), ExceptConn: "gw-test/" + conns[0],
		More: []wire.DeliverFrame{{Frame: f(2), ExceptConn: conns[1]}, {Frame: f(3)}},
	})
	if err != nil || n != 3 {
		t.Fatalf("delivered to %d sockets, err %v; want 3", n, err)
	}
	seq := func(c *client, frames int) string {
		var out []string
		for range frames {
			var d wire.TypingData
			fr := c.read()
			_ = json.Unmarshal(fr.Data, &d)
			out = append(out, d.ConversationID)
		}
		return strings.Join(out, ",")
	}
	got := []string{seq(a1, 2), seq(a2, 2)}
	sort.Strings(got)
	if got[0] != "c1,c3" || got[1] != "c2,c3" {
		t.Fatalf("alice's sockets got %v, want c1,c3 and c2,c3", got)
	}
	if s := seq(b, 3); s != "c1,c2,c3" {
		t.Fatalf("bob got %s, want c1,c2,c3", s)
	}
	if _, err := e.gw.Deliver(context.Background(), wire.DeliverRequest{UserIDs: []string{bob}, Frame: f(1), More: []wire.DeliverFrame{{Frame: []byte("{nope")}}}); err == nil {
		t.Fatal("a malformed extra frame was accepted")
	}
}

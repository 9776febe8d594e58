package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/wire"
)

// The tests of this file prove the per-device guarantee of WEBSOCKET.md
// ("Delivery"): a socket gets each conversation seq once, in seq order,
// whether it comes live or in a sync answer.

func histMsg(conv string, seq int64) message.Message {
	return message.Message{ID: fmt.Sprintf("m-%s-%d", conv, seq), ConversationID: conv, Seq: seq, SenderID: "x", Type: "text", Content: json.RawMessage(`"x"`)}
}

func liveMsg(conv string, seq int64) []byte {
	b, _ := wire.EncodeFrame(wire.OpMessage, wire.MessageData[message.Message]{Message: histMsg(conv, seq)})
	return b
}

func liveRecalled(conv string, seq int64) []byte {
	b, _ := wire.EncodeFrame(wire.OpRecalled, wire.RecalledData{ConversationID: conv, MessageID: "m", Seq: seq})
	return b
}

// push delivers frames to user as one Deliver, as the pusher does with a
// batch, and fails unless it reached a socket.
func (e *env) push(user string, frames ...[]byte) {
	e.t.Helper()
	req := wire.DeliverRequest{UserIDs: []string{user}, Frame: frames[0]}
	for _, f := range frames[1:] {
		req.More = append(req.More, wire.DeliverFrame{Frame: f})
	}
	if n, err := e.gw.Deliver(context.Background(), req); err != nil || n != 1 {
		e.t.Fatalf("deliver: %d sockets, %v", n, err)
	}
}

// labels names frames "op" or "op conv seq" (conversations by the names
// given) so a test can compare a socket's stream with what it wants.
func labels(t *testing.T, frames []frame, names map[string]string) []string {
	t.Helper()
	out := []string{}
	for _, f := range frames {
		var d struct {
			ConversationID string `json:"conversation_id"`
			Seq            int64  `json:"seq"`
			Message        *struct {
				ConversationID string `json:"conversation_id"`
				Seq            int64  `json:"seq"`
			} `json:"message"`
		}
		_ = json.Unmarshal(f.Data, &d)
		if d.Message != nil {
			d.ConversationID, d.Seq = d.Message.ConversationID, d.Message.Seq
		}
		if d.Seq == 0 {
			out = append(out, f.Op)
			continue
		}
		out = append(out, fmt.Sprintf("%s %s %d", f.Op, names[d.ConversationID], d.Seq))
	}
	return out
}

func wantFrames(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func TestLivePushesToANewSocketWaitForItsSyncAndOnlyTheUncoveredFollow(t *testing.T) {
	e := newEnv(t, gateway.Options{SyncHold: time.Minute})
	alice, bob := ids.New(), ids.New()
	p, g := ids.P2P(alice, bob), ids.Group(ids.New())
	names := map[string]string{p: "p", g: "g"}
	e.reader.setMessages(histMsg(p, 2), histMsg(p, 3), histMsg(p, 4), histMsg(p, 5), histMsg(p, 6))
	c := e.dial(t, e.auth.login(alice, "s1"), "")

	// The push consumer is still working through what was sent while the
	// device was away: those pushes wait, a typing notice does not.
	typing, _ := wire.EncodeFrame(wire.OpTyping, wire.TypingData{ConversationID: p, UserID: bob})
	e.push(alice, liveMsg(p, 5), liveMsg(p, 6), liveMsg(p, 7), typing, liveRecalled(p, 8), liveMsg(g, 3))
	wantFrames(t, "before the sync", labels(t, c.ping(), names), []string{"typing"})

	// The sync answer, then what it did not cover, in seq order.
	c.send("sync", "s", map[string]any{"cursors": map[string]int64{p: 1}})
	wantFrames(t, "sync and released pushes", labels(t, c.ping(), names), []string{
		"message p 2", "message p 3", "message p 4", "message p 5", "message p 6", "synced",
		"message g 3", "message p 7", "recalled p 8",
	})

	// A late copy of what the socket has is dropped; the next seq goes
	// out at once.
	e.push(alice, liveMsg(p, 6), liveRecalled(p, 8), liveMsg(p, 9))
	wantFrames(t, "after the hold", labels(t, c.ping(), names), []string{"message p 9"})
}

func TestPushesDuringALaterSyncThatItAlsoReturnsAreSentOnce(t *testing.T) {
	e := newEnv(t, gateway.Options{SyncHold: time.Minute})
	alice, bob := ids.New(), ids.New()
	p := ids.P2P(alice, bob)
	names := map[string]string{p: "p"}
	c := e.dial(t, e.auth.login(alice, "s1"), "")
	c.send("sync", "s0", nil)
	wantFrames(t, "first sync", labels(t, c.ping(), names), []string{"synced"})
	e.push(alice, liveMsg(p, 1))
	wantFrames(t, "live", labels(t, c.ping(), names), []string{"message p 1"})

	e.reader.setMessages(histMsg(p, 1), histMsg(p, 2), histMsg(p, 3), histMsg(p, 4))
	gate := e.reader.holdSyncs()
	c.send("sync", "s1", map[string]any{"cursors": map[string]int64{p: 1}})
	<-gate.entered
	e.push(alice, liveMsg(p, 2), liveMsg(p, 3)) // while the sync reads: it returns them too
	close(gate.release)
	wantFrames(t, "sync with pushes in flight", labels(t, c.ping(), names), []string{
		"message p 2", "message p 3", "message p 4", "synced",
	})
	e.push(alice, liveMsg(p, 3), liveMsg(p, 4), liveMsg(p, 5))
	wantFrames(t, "pushes after the sync", labels(t, c.ping(), names), []string{"message p 5"})
}

func TestHeldPushesGoOutAfterTheHoldForAClientThatNeverSyncs(t *testing.T) {
	e := newEnv(t, gateway.Options{SyncHold: time.Second})
	alice, bob := ids.New(), ids.New()
	p := ids.P2P(alice, bob)
	names := map[string]string{p: "p"}
	c := e.dial(t, e.auth.login(alice, "s1"), "")
	// Seq 3 was lost upstream: a gap above what the socket has still goes
	// out (the client orders by seq and asks sync for the gap).
	e.push(alice, liveMsg(p, 1), liveMsg(p, 2), liveMsg(p, 4))
	wantFrames(t, "released by the hold's end", labels(t, []frame{c.read(), c.read(), c.read()}, names), []string{
		"message p 1", "message p 2", "message p 4",
	})
	// A sync fills the gap and repeats nothing the socket got.
	e.reader.setMessages(histMsg(p, 1), histMsg(p, 2), histMsg(p, 3), histMsg(p, 4), histMsg(p, 5))
	c.send("sync", "s", map[string]any{"cursors": map[string]int64{p: 0}})
	wantFrames(t, "sync after the hold", labels(t, c.ping(), names), []string{"message p 3", "message p 5", "synced"})
}

func TestCursorsAndOwnSendsCountAsReceived(t *testing.T) {
	e := newEnv(t, gateway.Options{SyncHold: time.Minute})
	alice, bob, carol := ids.New(), ids.New(), ids.New()
	p, q := ids.P2P(alice, bob), ids.P2P(alice, carol)
	names := map[string]string{p: "p", q: "q"}
	c := e.dial(t, e.auth.login(alice, "s1"), "")
	e.push(alice, liveMsg(p, 3)) // a late push of what the device already has
	c.send("sync", "s", map[string]any{"cursors": map[string]int64{p: 5}})
	wantFrames(t, "sync from a cursor above the held push", labels(t, c.ping(), names), []string{"synced"})

	c.send("send", "x", map[string]any{"to_user_id": carol, "client_msg_id": "c1", "type": "text", "content": "hi"})
	wantFrames(t, "own send", labels(t, c.ping(), names), []string{"sent q 1"})
	e.push(alice, liveMsg(q, 1), liveMsg(q, 2))
	wantFrames(t, "pushes after the own send", labels(t, c.ping(), names), []string{"message q 2"})
}

func TestSyncWithMoreToComeKeepsHoldingUntilTheLastPage(t *testing.T) {
	e := newEnv(t, gateway.Options{SyncHold: time.Minute})
	alice, bob := ids.New(), ids.New()
	p := ids.P2P(alice, bob)
	names := map[string]string{p: "p"}
	e.reader.setMessages(histMsg(p, 1), histMsg(p, 2))
	e.reader.hasMore = true
	c := e.dial(t, e.auth.login(alice, "s1"), "")
	e.push(alice, liveMsg(p, 2), liveMsg(p, 3), liveMsg(p, 4))
	c.send("sync", "s1", map[string]any{})
	wantFrames(t, "first page", labels(t, c.ping(), names), []string{"message p 1", "message p 2", "synced"})

	e.reader.mu.Lock()
	e.reader.messages = append(e.reader.messages, histMsg(p, 3))
	e.reader.hasMore = false
	e.reader.mu.Unlock()
	c.send("sync", "s2", map[string]any{"cursors": map[string]int64{p: 2}})
	wantFrames(t, "last page", labels(t, c.ping(), names), []string{"message p 3", "synced", "message p 4"})
}

func TestHeldPushesCountAgainstTheSendQueue(t *testing.T) {
	e := newEnv(t, gateway.Options{SendQueue: 8, SyncHold: time.Minute})
	alice, bob := ids.New(), ids.New()
	p := ids.P2P(alice, bob)
	c := e.dial(t, e.auth.login(alice, "s1"), "")
	for seq := int64(1); len(e.gw.UserConnections(alice)) > 0; seq++ {
		if seq > 100 {
			t.Fatal("holding 100 pushes did not close a socket with a send queue of 8")
		}
		if _, err := e.gw.Deliver(context.Background(), wire.DeliverRequest{UserIDs: []string{alice}, Frame: liveMsg(p, seq)}); err != nil {
			t.Fatal(err)
		}
	}
	if code, reason := c.closeCode(); code != wire.CloseTooSlow || reason == "" {
		t.Fatalf("closed %d %q, want 4009", code, reason)
	}
}

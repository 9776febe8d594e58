package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/beehive-im/beehive/shared/testinfra"
)

const wait = 10 * time.Second

// devEnv is the environment of a test `beehive dev`: generous send limits
// so the ordering tests measure ordering, not the rate limiter.
var devEnv = []string{
	"BEEHIVE_MESSAGE_SEND_PER_USER_PER_SECOND=100000",
	"BEEHIVE_MESSAGE_SEND_BURST=100000",
	"BEEHIVE_GATEWAY_PER_IP_PER_SECOND=100000",
	"BEEHIVE_AUTH_LOGIN_PER_IP_PER_MINUTE=100000",
	"BEEHIVE_AUTH_BCRYPT_COST=4",
}

func startDev(t *testing.T, dataDir string, env ...string) *Proc {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	return StartProc(t, append(append([]string{}, devEnv...), env...), "dev", "--data-dir", dataDir)
}

// chatEnv says where a test's users connect: the same `beehive dev` for
// both in embedded mode, gateway 1 and gateway 2 in the distributed suite
// (test/distributed_integration_test.go runs the same tests there).
type chatEnv struct {
	A, B *Proc
}

func embeddedEnv(t *testing.T) chatEnv {
	p := startDev(t, "")
	return chatEnv{A: p, B: p}
}

func conv(a, b *Client) string {
	if a.ID < b.ID {
		return "p:" + a.ID + ":" + b.ID
	}
	return "p:" + b.ID + ":" + a.ID
}

func text(to *Client, clientMsgID, body string) map[string]any {
	return map[string]any{"to_user_id": to.ID, "client_msg_id": clientMsgID, "type": "text", "content": body}
}

func TestOneToOneSendReceiveAckReadTypingRecall(t *testing.T) {
	oneToOneSendReceiveAckReadTypingRecall(t, embeddedEnv(t))
}

func oneToOneSendReceiveAckReadTypingRecall(t *testing.T, e chatEnv) {
	alice, bob := NewUser(t, e.A, "alice"), NewUser(t, e.B, "bob")
	aws, bws := alice.Dial("d1"), bob.DialSynced("d1")
	// Alice's second device sees her own message as `message`.
	alice.Login("d2")
	aws2 := alice.DialSynced("d2")

	aws.Send("send", "s1", text(bob, "c1", "hello bob"))
	sent := aws.Next(wait, "sent", "error")
	if sent.Op != "sent" || string(sent.ID) != `"s1"` {
		t.Fatalf("want sent s1, got %s %s %s", sent.Op, sent.ID, sent.Data)
	}
	m := sent.Message(t)
	if m.Seq != 1 || m.ConversationID != conv(alice, bob) || m.SenderID != alice.ID {
		t.Fatalf("sent message: %+v", m)
	}
	got := bws.Next(wait, "message").Message(t)
	if got.ID != m.ID || got.Seq != 1 || string(got.Content) != `"hello bob"` {
		t.Fatalf("bob got %+v", got)
	}
	if other := aws2.Next(wait, "message").Message(t); other.ID != m.ID {
		t.Fatalf("sender's other device got %+v", other)
	}

	// ack, read -> receipt to alice, typing -> bob sees alice typing.
	bws.Send("ack", "", map[string]any{"conversation_id": m.ConversationID, "seq": 1})
	bws.Send("read", "", map[string]any{"conversation_id": m.ConversationID, "seq": 1})
	var rc struct {
		ConversationID string `json:"conversation_id"`
		UserID         string `json:"user_id"`
		ReadSeq        int64  `json:"read_seq"`
	}
	// The receipt is pushed after the message, through the same ordered
	// path (the conversation's partition, the push consumer, the socket's
	// write queue): had the sending socket got its own message as
	// `message`, that frame would come before the receipt.
	_ = json.Unmarshal(aws.NextWithNoneBefore(wait, "receipt", "message").Data, &rc)
	if rc.UserID != bob.ID || rc.ReadSeq != 1 || rc.ConversationID != m.ConversationID {
		t.Fatalf("receipt %+v", rc)
	}
	aws.Send("typing", "", map[string]any{"conversation_id": m.ConversationID})
	var ty struct {
		UserID string `json:"user_id"`
	}
	_ = json.Unmarshal(bws.Next(wait, "typing").Data, &ty)
	if ty.UserID != alice.ID {
		t.Fatalf("typing from %q", ty.UserID)
	}

	// Recall: bob's socket gets `recalled`; history shows recalled with no
	// content. Reads see every message acknowledged before them, so the
	// recall and the history read need no retry.
	if st, body := alice.Do("POST", "/v1/messages/"+m.ID+"/recall", nil); st != 200 {
		t.Fatalf("recall status %d: %s", st, body)
	}
	var rec struct {
		MessageID string `json:"message_id"`
		Seq       int64  `json:"seq"`
	}
	_ = json.Unmarshal(bws.Next(wait, "recalled").Data, &rec)
	if rec.MessageID != m.ID || rec.Seq != 2 {
		t.Fatalf("recalled %+v", rec)
	}
	h := bob.Must(200, "GET", "/v1/conversations/"+m.ConversationID+"/messages", nil)
	msgs, _ := h["messages"].([]any)
	if len(msgs) != 2 {
		t.Fatalf("history has %d entries, want the message and its recall", len(msgs))
	}
	if first := msgs[0].(map[string]any); first["recalled"] != true || first["content"] != nil {
		t.Fatalf("first entry not recalled: %v", first)
	}
	if msgs[1].(map[string]any)["type"] != "recall" {
		t.Fatalf("second entry is not the recall event: %v", msgs[1])
	}
}

func TestRetriedClientMsgIDCreatesNothingNew(t *testing.T) {
	retriedClientMsgIDCreatesNothingNew(t, embeddedEnv(t))
}

func retriedClientMsgIDCreatesNothingNew(t *testing.T, e chatEnv) {
	alice, bob := NewUser(t, e.A, "alice"), NewUser(t, e.B, "bob")
	first := alice.Must(200, "POST", "/v1/messages", text(bob, "same", "once"))
	again := alice.Must(200, "POST", "/v1/messages", text(bob, "same", "once"))
	if str(first, "message", "id") != str(again, "message", "id") || num(again, "message", "seq") != 1 {
		t.Fatalf("retry made a new message: %v vs %v", first, again)
	}
	aws := alice.Dial("d1")
	aws.Send("send", "x", text(bob, "same", "once"))
	if m := aws.Next(wait, "sent").Message(t); m.ID != str(first, "message", "id") {
		t.Fatalf("WebSocket retry made a new message %+v", m)
	}
	next := alice.Must(200, "POST", "/v1/messages", text(bob, "other", "twice"))
	if num(next, "message", "seq") != 2 {
		t.Fatalf("next message seq %d, want 2 (the retries took no seq)", num(next, "message", "seq"))
	}
}

func TestBlockedUserCannotMessage(t *testing.T) { blockedUserCannotMessage(t, embeddedEnv(t)) }

func blockedUserCannotMessage(t *testing.T, e chatEnv) {
	alice, bob := NewUser(t, e.A, "alice"), NewUser(t, e.B, "bob")
	bob.Must(200, "PUT", "/v1/blocks/"+alice.ID, nil)
	st, body := alice.Do("POST", "/v1/messages", text(bob, "b1", "let me in"))
	if st != 403 || str(body, "error", "code") != "permission_denied" {
		t.Fatalf("blocked send: %d %v", st, body)
	}
	aws := alice.Dial("d1")
	aws.Send("send", "1", text(bob, "b2", "ws"))
	f := aws.Next(wait, "sent", "error")
	if f.Op != "error" || !json.Valid(f.Data) {
		t.Fatalf("blocked ws send: %s %s", f.Op, f.Data)
	}
}

func TestThousandMessagesArriveInSeqOrderOnTwoDevices(t *testing.T) {
	thousandMessagesArriveInSeqOrderOnTwoDevices(t, embeddedEnv(t))
}

func thousandMessagesArriveInSeqOrderOnTwoDevices(t *testing.T, e chatEnv) {
	alice, bob := NewUser(t, e.A, "alice"), NewUser(t, e.B, "bob")
	b1 := bob.DialSynced("d1")
	bob.Login("d2")
	b2 := bob.DialSynced("d2")
	aws := alice.Dial("d1")
	const n = 1000
	for i := 0; i < n; i++ {
		aws.Send("send", strconv.Itoa(i), text(bob, "m"+strconv.Itoa(i), "n"+strconv.Itoa(i)))
	}
	var lastSent int64
	for i := 0; i < n; i++ {
		f := aws.Next(wait, "sent", "error")
		if f.Op != "sent" {
			t.Fatalf("send %d: %s", i, f.Data)
		}
		m := f.Message(t)
		if m.Seq <= lastSent {
			t.Fatalf("pipelined sends got non-increasing seq %d after %d", m.Seq, lastSent)
		}
		lastSent = m.Seq
	}
	for _, dev := range []*WS{b1, b2} {
		for i := 1; i <= n; i++ {
			m := dev.Next(wait, "message").Message(t)
			if m.Seq != int64(i) || string(m.Content) != strconv.Quote("n"+strconv.Itoa(i-1)) {
				t.Fatalf("device got seq %d content %s at position %d", m.Seq, m.Content, i)
			}
		}
	}
}

func TestOfflineDeviceCatchesUpBySyncWithoutGapOrDuplicate(t *testing.T) {
	offlineDeviceCatchesUpBySyncWithoutGapOrDuplicate(t, embeddedEnv(t))
}

func offlineDeviceCatchesUpBySyncWithoutGapOrDuplicate(t *testing.T, e chatEnv) {
	alice, bob := NewUser(t, e.A, "alice"), NewUser(t, e.B, "bob")
	for i := 0; i < 200; i++ {
		alice.Must(200, "POST", "/v1/messages", text(bob, "o"+strconv.Itoa(i), strconv.Itoa(i)))
	}
	bws := bob.Dial("d1")
	// The client of PROTOCOL.md: it advances its cursor only on the next
	// seq. Once online, the device may also get live pushes of messages
	// the pusher had not handled yet; those arrive ahead of the cursor and
	// their later copy from sync is expected. Anything else at or below the
	// cursor is a duplicate, and the cursor reaching 200 through sync
	// answers alone proves there was no gap.
	var cursor int64
	var conv string
	live := map[int64]bool{}
	for round := 0; round < 10 && cursor < 200; round++ {
		cursors := map[string]int64{}
		if conv != "" {
			cursors[conv] = cursor
		}
		bws.Send("sync", "s", map[string]any{"cursors": cursors, "limit": 70})
		for {
			f := bws.Next(wait, "message", "synced", "error")
			if f.Op == "error" {
				t.Fatalf("sync refused: %s", f.Data)
			}
			if f.Op == "synced" {
				break
			}
			m := f.Message(t)
			conv = m.ConversationID
			switch {
			case m.Seq == cursor+1:
				cursor = m.Seq
			case m.Seq > cursor+1:
				live[m.Seq] = true
			case !live[m.Seq]:
				t.Fatalf("duplicate seq %d (cursor %d)", m.Seq, cursor)
			}
		}
	}
	if cursor != 200 {
		t.Fatalf("synced up to seq %d of 200", cursor)
	}
}

func TestReconnectingDeviceGetsEachSeqOnceInOrderWhilePushesFlow(t *testing.T) {
	reconnectingDeviceGetsEachSeqOnceInOrderWhilePushesFlow(t, embeddedEnv(t))
}

// A device reconnects while messages sent during its absence are still
// being sent and pushed: its sync answers and the live pushes together
// carry every seq exactly once, in order (WEBSOCKET.md, "Delivery").
func reconnectingDeviceGetsEachSeqOnceInOrderWhilePushesFlow(t *testing.T, e chatEnv) {
	alice, bob := NewUser(t, e.A, "alice"), NewUser(t, e.B, "bob")
	c := conv(alice, bob)
	aws := alice.Dial("d1")
	bws := bob.DialSynced("d1")
	alice.Must(200, "POST", "/v1/messages", text(bob, "before", "0"))
	if m := bws.Next(wait, "message").Message(t); m.Seq != 1 {
		t.Fatalf("bob got seq %d live, want 1", m.Seq)
	}
	_ = bws.conn.Close()

	const n = 300
	for i := 1; i <= n; i++ {
		aws.Send("send", strconv.Itoa(i), text(bob, "r"+strconv.Itoa(i), strconv.Itoa(i)))
	}
	sent := 0
	ack := func() {
		if f := aws.Next(wait, "sent", "error"); f.Op != "sent" {
			t.Fatalf("send refused: %s", f.Data)
		}
		sent++
	}
	for sent < n/3 {
		ack()
	}

	// Back online with its cursor, while the rest is sent and pushed; the
	// sync goes in small pages so pushes arrive while it runs.
	bws = bob.Dial("d1")
	last := int64(1)
	got := func(m Msg, how string) {
		if m.ConversationID != c || m.Seq != last+1 {
			t.Fatalf("%s: seq %d of %s after seq %d: want each seq once, in order", how, m.Seq, m.ConversationID, last)
		}
		last = m.Seq
	}
	bws.SyncAll(map[string]int64{c: 1}, 40, func(m Msg) { got(m, "sync answer") })
	for sent < n {
		ack()
	}
	for last < n+1 {
		got(bws.Next(wait, "message").Message(t), "live")
	}
	// Nothing queued for the socket by now repeats a seq.
	bws.Send("ping", "p", nil)
	bws.NextWithNoneBefore(wait, "pong", "message", "recalled")
}

func TestGroupWithAdminMuteKickAndLeave(t *testing.T) {
	groupWithAdminMuteKickAndLeave(t, embeddedEnv(t))
}

func groupWithAdminMuteKickAndLeave(t *testing.T, e chatEnv) {
	owner, admin, member := NewUser(t, e.A, "owner"), NewUser(t, e.B, "admin"), NewUser(t, e.B, "member")
	outsider := NewUser(t, e.A, "outsider")
	g := owner.Must(201, "POST", "/v1/groups", map[string]any{"name": "team", "member_ids": []string{admin.ID, member.ID}})
	gid := str(g, "group", "id")
	owner.Must(200, "PUT", "/v1/groups/"+gid+"/members/"+admin.ID+"/role", map[string]any{"role": "admin"})
	mws := member.DialSynced("d1")
	aws := admin.DialSynced("d1")

	send := func(c *Client, id string) (int, map[string]any) {
		return c.Do("POST", "/v1/messages", map[string]any{"group_id": gid, "client_msg_id": id, "type": "text", "content": "hi from " + id})
	}
	if st, body := send(owner, "g1"); st != 200 {
		t.Fatalf("owner send: %d %v", st, body)
	}
	if m := mws.Next(wait, "message").Message(t); m.ConversationID != "g:"+gid {
		t.Fatalf("member got %+v", m)
	}
	// The admin mutes the member: the member's send is refused, then allowed after unmute.
	admin.Must(200, "PUT", "/v1/groups/"+gid+"/members/"+member.ID+"/mute", map[string]any{"seconds": 3600})
	if st, body := send(member, "g2"); st != 403 {
		t.Fatalf("muted member send: %d %v", st, body)
	}
	admin.Must(200, "PUT", "/v1/groups/"+gid+"/members/"+member.ID+"/mute", map[string]any{"seconds": 0})
	if st, body := send(member, "g3"); st != 200 {
		t.Fatalf("unmuted member send: %d %v", st, body)
	}
	aws.Next(wait, "message")
	// Non-members cannot read history.
	if st, _ := outsider.Do("GET", "/v1/conversations/g:"+gid+"/messages", nil); st != 403 {
		t.Fatalf("outsider history: %d", st)
	}
	// Kick: the member can neither post nor read.
	admin.Must(204, "DELETE", "/v1/groups/"+gid+"/members/"+member.ID, nil)
	if st, _ := send(member, "g4"); st != 403 {
		t.Fatalf("kicked member send: %d", st)
	}
	if st, _ := member.Do("GET", "/v1/conversations/g:"+gid+"/messages", nil); st != 403 {
		t.Fatalf("kicked member history: %d", st)
	}
	// The owner must transfer before leaving; the admin leaves.
	if st, body := owner.Do("DELETE", "/v1/groups/"+gid+"/members/"+owner.ID, nil); st != 409 {
		t.Fatalf("owner leave: %d %v", st, body)
	}
	admin.Must(204, "DELETE", "/v1/groups/"+gid+"/members/"+admin.ID, nil)
	if st, _ := send(admin, "g5"); st != 403 {
		t.Fatalf("left admin send: %d", st)
	}
}

func TestNoAcknowledgedMessageIsLostWhenTheProcessIsKilled(t *testing.T) {
	dir := t.TempDir()
	p := startDev(t, dir)
	alice, bob := NewUser(t, p, "alice"), NewUser(t, p, "bob")
	aws := alice.Dial("d1")
	acked := map[int64]string{}
	const n = 300
	for i := 0; i < n; i++ {
		aws.Send("send", strconv.Itoa(i), text(bob, "k"+strconv.Itoa(i), strconv.Itoa(i)))
	}
	// Kill mid-stream: after some acknowledgements, before all.
	for len(acked) < 100 {
		f := aws.Next(wait, "sent", "error")
		if f.Op == "sent" {
			m := f.Message(t)
			acked[m.Seq] = m.ID
		}
	}
	p.Kill()
	for {
		select {
		case f := <-aws.frames:
			if f.Op == "sent" {
				m := f.Message(t)
				acked[m.Seq] = m.ID
			}
			continue
		default:
		}
		break
	}

	p2 := StartProc(t, devEnv, "dev", "--data-dir", dir)
	bob.base = "http://" + p2.HTTPAddr
	bob.Login("d1")
	bws := bob.Dial("d1")
	got := map[string]bool{}
	var maxSeq int64
	testinfra.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		bws.Send("sync", "s", map[string]any{"cursors": map[string]int64{}, "limit": 500})
		for {
			f := bws.Next(wait, "message", "synced", "error")
			if f.Op == "error" {
				t.Fatalf("sync refused: %s", f.Data)
			}
			if f.Op == "synced" {
				break
			}
			m := f.Message(t)
			got[m.ID] = true
			if m.Seq > maxSeq {
				maxSeq = m.Seq
			}
		}
		for seq, id := range acked {
			if !got[id] {
				return fmt.Errorf("acknowledged message seq %d (%s) missing after restart (%d of %d acked found)", seq, id, len(got), len(acked))
			}
		}
		return nil
	})
	// Seq never goes backwards: a new message lands above everything before.
	alice.base = bob.base
	alice.Login("d1")
	next := alice.Must(200, "POST", "/v1/messages", text(bob, "after-restart", "x"))
	if s := num(next, "message", "seq"); s <= maxSeq {
		t.Fatalf("seq after restart %d, not above %d", s, maxSeq)
	}
}

func TestWebhookOncePerMessageAndDeviceAndNoneWhenAcked(t *testing.T) {
	hook := newWebhookServer(t)
	p := startDev(t, "", "BEEHIVE_PUSHER_WEBHOOK_URL="+hook.URL, "BEEHIVE_PUSHER_WEBHOOK_SECRET=s3cret")
	alice, bob := NewUser(t, p, "alice"), NewUser(t, p, "bob")
	bob.Must(200, "PUT", "/v1/devices/phone", map[string]any{"platform": "webhook", "push_token": "tok-phone"})
	bob.Must(200, "PUT", "/v1/devices/tablet", map[string]any{"platform": "webhook", "push_token": "tok-tablet"})

	// Both devices offline: one call per device.
	m1 := alice.Must(200, "POST", "/v1/messages", text(bob, "w1", "wake up"))
	id1 := str(m1, "message", "id")
	testinfra.CheckFor(t, wait, 20*time.Millisecond, func() error {
		if n := hook.count(id1); n != 2 {
			return fmt.Errorf("%d webhook calls for the message, want 2", n)
		}
		return nil
	})

	// The phone comes online, receives and acks; then goes offline. A
	// message it has acked gets no push; the tablet still gets one.
	bob.Login("phone")
	ph := bob.DialSynced("phone")
	m2 := alice.Must(200, "POST", "/v1/messages", text(bob, "w2", "online now"))
	id2 := str(m2, "message", "id")
	got := ph.Next(wait, "message").Message(t)
	ph.Send("ack", "", map[string]any{"conversation_id": got.ConversationID, "seq": got.Seq})
	testinfra.CheckFor(t, wait, 20*time.Millisecond, func() error {
		if n := hook.countDevice(id2, "tablet"); n != 1 {
			return fmt.Errorf("tablet calls %d", n)
		}
		return nil
	})
	// A later marker message proves the pusher moved past m2.
	_ = ph.conn.Close()
	m3 := alice.Must(200, "POST", "/v1/messages", text(bob, "w3", "marker"))
	testinfra.CheckFor(t, wait, 20*time.Millisecond, func() error {
		if n := hook.countDevice(str(m3, "message", "id"), "tablet"); n != 1 {
			return fmt.Errorf("marker not pushed yet")
		}
		return nil
	})
	if n := hook.countDevice(id2, "phone"); n != 0 {
		t.Fatalf("the phone was online and acked, yet got %d pushes", n)
	}
	if n := hook.count(id1); n != 2 {
		t.Fatalf("first message pushed %d times in total, want exactly 2", n)
	}
}

func TestServeAuthAndUserAsTwoProcesses(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "beehive.yaml")
	userGRPC, authGRPC := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf("service_token: test-internal-token\nauth:\n  bcrypt_cost: 4\n  active_kid: k1\n  signing_keys:\n    k1: %s\npeers:\n  beehive-user: [%q]\n  beehive-auth: [%q]\n", testSeed, userGRPC, authGRPC)
	if err := os.WriteFile(keys, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	users := startServe(t, "user", keys, filepath.Join(dir, "user"), userGRPC)
	authp := startServe(t, "auth", keys, filepath.Join(dir, "auth"), authGRPC)

	reg := MustCall(t, 201, "POST", users.URL("/v1/auth/register"), "", map[string]any{"nickname": "carol", "email": "carol@example.com", "password": "long-password"})
	login := MustCall(t, 200, "POST", authp.URL("/v1/auth/login"), "", map[string]any{"email": "carol@example.com", "password": "long-password"})
	if str(login, "user", "id") != str(reg, "user", "id") || str(login, "access_token") == "" {
		t.Fatalf("login through the auth process: %v", login)
	}
	// The user process verifies the auth process's token locally.
	me := MustCall(t, 200, "GET", users.URL("/v1/users/me"), str(login, "access_token"), nil)
	if str(me, "user", "email") != "carol@example.com" {
		t.Fatalf("me: %v", me)
	}
}

// testSeed is a fixed Ed25519 seed (base64) shared by the test processes.
const testSeed = "bm90LWEtcmVhbC1rZXktanVzdC1mb3ItdGVzdHMhISE="

func startServe(t *testing.T, service, cfgPath, dataDir, grpcAddr string) *Proc {
	t.Helper()
	return StartProcAt(t, devEnv, freeAddr(t), grpcAddr, "serve", service, "--config", cfgPath, "--data-dir", dataDir)
}

func TestGroupOfMoreThanOnePresenceBatchGetsDelivered(t *testing.T) {
	p := startDev(t, "")
	owner := NewUser(t, p, "owner")
	var ids []string
	var last *Client
	for i := 0; i < 250; i++ {
		last = NewUser(t, p, "m"+strconv.Itoa(i))
		ids = append(ids, last.ID)
	}
	g := owner.Must(201, "POST", "/v1/groups", map[string]any{"name": "big", "member_ids": ids})
	gid := str(g, "group", "id")
	ws := last.DialSynced("d1")
	owner.Must(200, "POST", "/v1/messages", map[string]any{"group_id": gid, "client_msg_id": "big1", "type": "text", "content": "hello all"})
	if m := ws.Next(wait, "message").Message(t); m.ConversationID != "g:"+gid {
		t.Fatalf("member of a 251-member group got %+v", m)
	}
}

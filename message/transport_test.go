package message_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/message/messagepb"
	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/grpcx/grpctest"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/testinfra"
)

const serviceToken = "internal-secret"

func TestHTTPRoutes(t *testing.T) {
	e := newEnv(t)
	auth := testinfra.TokenAuth{"alice": {UserID: e.alice}, "bob": {UserID: e.bob}, "carol": {UserID: e.carol}}
	eps := message.MakeServerEndpoints(e.svc, auth, serviceToken, endpointx.Kit{})
	r := httpx.NewRouter()
	message.MakeHTTPHandler(r, eps, log.NewNopLogger())
	srv := httptest.NewServer(httpx.Harden(r, 1<<20, log.NewNopLogger()))
	defer srv.Close()

	do := func(method, path, token, body string) (int, map[string]json.RawMessage) {
		t.Helper()
		return testinfra.CallHTTP(t, method, srv.URL+path, token, strings.NewReader(body))
	}
	errCode := testinfra.HTTPError

	status, body := do("POST", "/v1/messages", "alice", `{"to_user_id":"`+e.bob+`","client_msg_id":"h1","type":"text","content":"hi bob","sender_id":"`+e.carol+`"}`)
	if status != http.StatusOK {
		t.Fatalf("send: %d %s", status, body)
	}
	var m message.Message
	if err := json.Unmarshal(body["message"], &m); err != nil {
		t.Fatal(err)
	}
	if m.SenderID != e.alice || m.Seq != 1 || string(m.Content) != `"hi bob"` {
		t.Fatalf("sent %+v: the sender must be the token's user", m)
	}
	for _, k := range []string{"id", "conversation_id", "seq", "sender_id", "type", "content", "mentions", "sent_at", "client_msg_id"} {
		if !strings.Contains(string(body["message"]), `"`+k+`"`) {
			t.Errorf("message JSON lacks %q: %s", k, body["message"])
		}
	}

	status, body = do("POST", "/v1/messages", "carol", `{"group_id":"`+e.group+`","client_msg_id":"g1","type":"custom","content":{"k":1}}`)
	if status != http.StatusOK {
		t.Fatalf("group send: %d %s", status, body)
	}

	cases := []struct {
		name, token, body string
		status            int
		code, field       string
	}{
		{"no token", "", `{"to_user_id":"` + e.bob + `","client_msg_id":"x","type":"text","content":"x"}`, 401, "unauthenticated", ""},
		{"no recipient", "alice", `{"client_msg_id":"x","type":"text","content":"x"}`, 400, "invalid_argument", "to_user_id"},
		{"both recipients", "alice", `{"to_user_id":"` + e.bob + `","group_id":"` + e.group + `","client_msg_id":"x","type":"text","content":"x"}`, 400, "invalid_argument", "group_id"},
		{"content of wrong JSON type", "alice", `{"to_user_id":"` + e.bob + `","client_msg_id":"x","type":"text","content":5}`, 400, "invalid_argument", "content"},
		{"mentions not a list", "alice", `{"to_user_id":"` + e.bob + `","client_msg_id":"x","type":"text","content":"x","mentions":"all"}`, 400, "invalid_argument", "mentions"},
		{"malformed body", "alice", `{"to_user_id":`, 400, "invalid_argument", ""},
		{"text too large", "alice", `{"to_user_id":"` + e.bob + `","client_msg_id":"x","type":"text","content":"` + strings.Repeat("a", 17000) + `"}`, 413, "too_large", "content"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := do("POST", "/v1/messages", c.token, c.body)
			code, field := errCode(body)
			if status != c.status || code != c.code || field != c.field {
				t.Fatalf("got %d %s %s (%s), want %d %s %s", status, code, field, body["error"], c.status, c.code, c.field)
			}
		})
	}

	// Read marks.
	if status, _ := do("POST", "/v1/conversations/"+m.ConversationID+"/read", "bob", `{"seq":1}`); status != http.StatusNoContent {
		t.Fatalf("read: %d", status)
	}
	if status, body := do("POST", "/v1/conversations/"+m.ConversationID+"/read", "bob", `{}`); status != 400 {
		t.Fatalf("read without seq: %d %s", status, body)
	}
	if status, body := do("POST", "/v1/conversations/"+m.ConversationID+"/read", "carol", `{"seq":1}`); status != 403 {
		t.Fatalf("read by an outsider: %d %s", status, body)
	}

	// Recall.
	e.reader.put(m)
	if status, body := do("POST", "/v1/messages/"+m.ID+"/recall", "bob", ""); status != 403 {
		t.Fatalf("recall by the recipient: %d %s", status, body)
	}
	status, body = do("POST", "/v1/messages/"+m.ID+"/recall", "alice", "")
	if status != 200 {
		t.Fatalf("recall: %d %s", status, body)
	}
	var rc message.Message
	_ = json.Unmarshal(body["message"], &rc)
	if rc.Type != "recall" || rc.Seq != 2 {
		t.Fatalf("recall entry %+v", rc)
	}
	if status, _ := do("POST", "/v1/messages/"+m.ID+"/recall", "alice", ""); status != 409 {
		t.Fatalf("second recall: %d", status)
	}
}

func TestGRPCRoundTripAndLastSeqIsInternal(t *testing.T) {
	e := newEnv(t)
	auth := testinfra.TokenAuth{"alice": {UserID: e.alice}, "bob": {UserID: e.bob}}
	eps := message.MakeServerEndpoints(e.svc, auth, serviceToken, endpointx.Kit{})
	cc := grpctest.ServeAndDial(t, messagepb.RegisterMessageServiceServer, message.NewGRPCServer(eps, nil, log.NewNopLogger()))

	asUser := message.NewGRPCClientConn(cc, "")
	internal := message.NewGRPCClientConn(cc, serviceToken)
	ctx := context.Background()
	aliceCtx := identity.WithToken(ctx, "alice")

	m, err := asUser.SendMessage(aliceCtx, message.SendRequest{ToUserID: e.bob, ClientMsgID: "c1", Type: "text", Content: textContent("over grpc"), OriginConn: "gw1/c9"})
	if err != nil {
		t.Fatal(err)
	}
	if m.SenderID != e.alice || m.Seq != 1 || string(m.Content) != `"over grpc"` || m.SentAt.IsZero() {
		t.Fatalf("message %+v", m)
	}
	again, err := asUser.SendMessage(aliceCtx, message.SendRequest{ToUserID: e.bob, ClientMsgID: "c1", Type: "text", Content: textContent("over grpc")})
	if err != nil || again.ID != m.ID {
		t.Fatalf("retry: %+v %v", again, err)
	}
	// Internal callers act for the user they name.
	gm, err := internal.SendGroupMessage(ctx, message.SendRequest{SenderID: e.bob, GroupID: e.group, ClientMsgID: "c2", Type: "image", Content: json.RawMessage(`{"url":"u"}`)})
	if err != nil || gm.SenderID != e.bob || gm.GroupID != e.group {
		t.Fatalf("internal group send: %+v %v", gm, err)
	}
	forged := message.NewGRPCClientConn(cc, "wrong-secret")
	if _, err := forged.SendMessage(ctx, message.SendRequest{SenderID: e.alice, ToUserID: e.bob, ClientMsgID: "c4", Type: "text", Content: textContent("x")}); !errs.HasCode(err, errs.PermissionDenied) {
		t.Fatalf("send with a wrong service credential: %v", err)
	}
	if _, err := asUser.SendMessage(aliceCtx, message.SendRequest{ToUserID: e.bob, ClientMsgID: "c3", Type: "text"}); errs.As(err).Field != "content" || !errs.HasCode(err, errs.InvalidArgument) {
		t.Fatalf("invalid send over grpc: %v (field %q)", err, errs.As(err).Field)
	}
	if _, err := asUser.LastSeq(aliceCtx, m.ConversationID); !errs.HasCode(err, errs.PermissionDenied) {
		t.Fatalf("LastSeq with a user token: %v", err)
	}
	if last, err := internal.LastSeq(ctx, m.ConversationID); err != nil || last != 1 {
		t.Fatalf("LastSeq = %d %v", last, err)
	}
	if err := asUser.MarkAsRead(identity.WithToken(ctx, "bob"), "", m.ConversationID, 1); err != nil {
		t.Fatal(err)
	}
	e.reader.put(m)
	rc, err := asUser.Recall(aliceCtx, "", m.ID)
	if err != nil || rc.Type != message.TypeRecall {
		t.Fatalf("recall %+v %v", rc, err)
	}
	// The read RPCs belong to the query package: without it they are unimplemented.
	if _, err := messagepb.NewMessageServiceClient(cc).GetConversations(ctx, &messagepb.GetConversationsRequest{}); err == nil {
		t.Fatal("GetConversations answered without a read side")
	}
	evs := e.events(t)
	var origin string
	for _, ev := range evs {
		if ev.Message != nil && ev.Message.ID == m.ID {
			origin = ev.OriginConn
		}
	}
	if origin != "gw1/c9" {
		t.Fatalf("origin conn %q not carried to the event", origin)
	}
}

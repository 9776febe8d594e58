package query_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/query/querypb"
	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/grpcx/grpctest"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

const serviceToken = "internal-secret"

func TestHTTPRoutes(t *testing.T) {
	e := newEnv(t)
	u := users(3)
	a, b, c := u[0], u[1], u[2]
	conv := ids.P2P(a, b)
	e.apply(msgEvent(conv, a, 1), msgEvent(conv, a, 2), msgEvent(conv, b, 3))
	eps := query.MakeServerEndpoints(e.svc, testinfra.TokenAuth{"tok-b": {UserID: b}, "tok-c": {UserID: c}}, serviceToken, endpointx.Kit{})
	r := httpx.NewRouter()
	query.MakeHTTPHandler(r, eps, log.NewNopLogger())
	srv := httptest.NewServer(httpx.Harden(r, 0, log.NewNopLogger()))
	defer srv.Close()

	do := func(method, path, body, token string) (int, map[string]json.RawMessage) {
		t.Helper()
		return testinfra.CallHTTP(t, method, srv.URL+path, token, strings.NewReader(body))
	}

	status, body := do("GET", "/v1/conversations/"+conv+"/messages?before_seq=3&limit=1", "", "tok-b")
	var page struct {
		Messages []struct {
			Seq     int64           `json:"seq"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
		HasMore *bool `json:"has_more"`
	}
	raw, _ := json.Marshal(body)
	_ = json.Unmarshal(raw, &page)
	if status != 200 || len(page.Messages) != 1 || page.Messages[0].Seq != 2 || string(page.Messages[0].Content) != `"m2"` || page.HasMore == nil || !*page.HasMore {
		t.Fatalf("history: %d %s", status, raw)
	}

	status, body = do("GET", "/v1/conversations?limit=10", "", "tok-b")
	var list []query.Conversation
	_ = json.Unmarshal(body["conversations"], &list)
	if status != 200 || len(list) != 1 || list[0].ID != conv || list[0].PeerID != a || list[0].Type != "p2p" || list[0].ReadSeq != 3 || list[0].LastSeq != 3 {
		t.Fatalf("conversations: %d %s", status, body)
	}
	if _, ok := body["next_cursor"]; !ok {
		t.Fatalf("no next_cursor key: %s", body)
	}

	status, body = do("PUT", "/v1/conversations/"+conv+"/settings", `{"muted": true}`, "tok-b")
	var one query.Conversation
	_ = json.Unmarshal(body["conversation"], &one)
	if status != 200 || !one.Muted || one.Pinned || one.ID != conv {
		t.Fatalf("settings: %d %s", status, body)
	}
	status, body = do("GET", "/v1/conversations/"+conv, "", "tok-b")
	one = query.Conversation{}
	_ = json.Unmarshal(body["conversation"], &one)
	if status != 200 || !one.Muted || one.LastMessage == nil || one.LastMessage.Seq != 3 {
		t.Fatalf("conversation: %d %s", status, body)
	}

	for _, tc := range []struct {
		name, method, path, body, token string
		status                          int
		code, field                     string
	}{
		{"no token", "GET", "/v1/conversations", "", "", 401, "unauthenticated", ""},
		{"non-participant", "GET", "/v1/conversations/" + conv + "/messages", "", "tok-c", 403, "permission_denied", ""},
		{"non-participant settings", "PUT", "/v1/conversations/" + conv + "/settings", `{"pinned":true}`, "tok-c", 403, "permission_denied", ""},
		{"bad conversation id", "GET", "/v1/conversations/zz:1/messages", "", "tok-b", 400, "invalid_argument", "id"},
		{"both seqs", "GET", "/v1/conversations/" + conv + "/messages?before_seq=3&after_seq=1", "", "tok-b", 400, "invalid_argument", "before_seq"},
		{"non-numeric seq", "GET", "/v1/conversations/" + conv + "/messages?after_seq=x", "", "tok-b", 400, "invalid_argument", "after_seq"},
		{"negative seq", "GET", "/v1/conversations/" + conv + "/messages?before_seq=-2", "", "tok-b", 400, "invalid_argument", "before_seq"},
		{"limit above max", "GET", "/v1/conversations/" + conv + "/messages?limit=201", "", "tok-b", 400, "invalid_argument", "limit"},
		{"limit zero", "GET", "/v1/conversations?limit=0", "", "tok-b", 400, "invalid_argument", "limit"},
		{"bad cursor", "GET", "/v1/conversations?cursor=%25%25", "", "tok-b", 400, "invalid_argument", "cursor"},
		{"settings not json", "PUT", "/v1/conversations/" + conv + "/settings", `{"muted":`, "tok-b", 400, "invalid_argument", ""},
		{"settings wrong type", "PUT", "/v1/conversations/" + conv + "/settings", `{"muted":"yes"}`, "tok-b", 400, "invalid_argument", "muted"},
		{"settings empty", "PUT", "/v1/conversations/" + conv + "/settings", `{}`, "tok-b", 400, "invalid_argument", "muted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(tc.method, tc.path, tc.body, tc.token)
			var er struct{ Code, Field string }
			_ = json.Unmarshal(body["error"], &er)
			if status != tc.status || er.Code != tc.code || er.Field != tc.field {
				t.Fatalf("got %d %s, want %d %s on %q", status, body, tc.status, tc.code, tc.field)
			}
		})
	}
}

func TestGRPCRoundTripAndInternalMethodsNeedServiceToken(t *testing.T) {
	e := newEnv(t)
	u := users(3)
	a, b, c := u[0], u[1], u[2]
	conv := ids.P2P(a, b)
	gid := ids.New()
	gconv := ids.Group(gid)
	e.groups.join(gid, b, 0)
	m1 := msgEvent(conv, a, 1)
	e.apply(m1, msgEvent(conv, a, 2), recallEvent(conv, a, 3, m1), msgEvent(gconv, b, 1))

	eps := query.MakeServerEndpoints(e.svc, testinfra.TokenAuth{"tok-b": {UserID: b}, "tok-c": {UserID: c}}, serviceToken, endpointx.Kit{})
	cc := grpctest.ServeAndDial(t, querypb.RegisterQueryServiceServer, query.NewGRPCServer(eps, log.NewNopLogger()))

	internal := query.NewGRPCClientConn(cc, serviceToken)
	asUser := query.NewGRPCClientConn(cc, "")
	ctx := context.Background()
	bctx := identity.WithToken(ctx, "tok-b")

	// A user acts for themself whatever user id the request names.
	h, err := asUser.History(bctx, c, conv, nil, ptr[int64](1), 0)
	mustNil(t, err)
	if !eqSeqs(seqsOf(h.Messages), []int64{2, 3}) || h.HasMore || string(h.Messages[0].Content) != `"m2"` || h.Messages[0].SentAt.IsZero() {
		t.Fatalf("history = %+v", h)
	}
	h, err = asUser.History(bctx, b, conv, nil, nil, 0)
	mustNil(t, err)
	if !h.Messages[0].Recalled || h.Messages[0].Content != nil {
		t.Fatalf("recalled over gRPC = %+v", h.Messages[0])
	}
	sync, err := asUser.Sync(bctx, "", map[string]int64{conv: 2}, 0)
	mustNil(t, err)
	if len(sync.Conversations) != 2 || sync.HasMore {
		t.Fatalf("sync = %+v", sync)
	}
	page, err := asUser.Conversations(bctx, "", "", 0)
	mustNil(t, err)
	if len(page.Conversations) != 2 || page.NextCursor != "" {
		t.Fatalf("conversations = %+v", page)
	}
	conv1, err := asUser.UpdateSettings(bctx, "", conv, nil, ptr(true))
	mustNil(t, err)
	if !conv1.Pinned || conv1.LastMessage == nil || conv1.LastMessage.Seq != 3 || conv1.Unread != 3 {
		t.Fatalf("settings = %+v", conv1)
	}
	got, err := asUser.Conversation(bctx, "", gconv)
	mustNil(t, err)
	if got.GroupID != gid || got.Type != query.TypeGroup || got.LastSeq != 1 {
		t.Fatalf("group conversation = %+v", got)
	}
	unread, err := asUser.Unread(bctx, "")
	mustNil(t, err)
	if unread.Total != 3 || len(unread.Conversations) != 1 {
		t.Fatalf("unread = %+v", unread)
	}
	_, err = asUser.History(identity.WithToken(ctx, "tok-c"), "", conv, nil, nil, 0)
	wantCode(t, err, errs.PermissionDenied, "")
	_, err = asUser.History(bctx, "", conv, ptr[int64](2), ptr[int64](1), 0)
	wantCode(t, err, errs.InvalidArgument, "before_seq")
	_, err = asUser.Conversations(ctx, "", "", 0)
	wantCode(t, err, errs.Unauthenticated, "")

	// Internal methods.
	_, err = asUser.GetMessage(bctx, m1.Message.ID)
	wantCode(t, err, errs.PermissionDenied, "")
	wantCode(t, asUser.Ack(bctx, b, "phone", conv, 3), errs.PermissionDenied, "")
	msg, err := internal.GetMessage(ctx, m1.Message.ID)
	mustNil(t, err)
	if msg.ID != m1.Message.ID || !msg.Recalled {
		t.Fatalf("GetMessage = %+v", msg)
	}
	mustNil(t, internal.Ack(ctx, b, "phone", conv, 3))
	seq, err := internal.Acked(ctx, b, "phone", conv)
	mustNil(t, err)
	if seq != 3 {
		t.Fatalf("acked = %d", seq)
	}
	wantCode(t, internal.Ack(ctx, "", "phone", conv, 3), errs.InvalidArgument, "user_id")
	// An internal caller acts for the user it names.
	h, err = internal.History(ctx, b, gconv, nil, nil, 0)
	mustNil(t, err)
	if len(h.Messages) != 1 {
		t.Fatalf("internal history = %+v", h)
	}
	_, err = query.NewGRPCClientConn(cc, "wrong-secret").Unread(bctx, b)
	wantCode(t, err, errs.PermissionDenied, "")
}

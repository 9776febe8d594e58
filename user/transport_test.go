package user_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/grpcx/grpctest"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
	"github.com/beehive-im/beehive/user"
	"github.com/beehive-im/beehive/user/userpb"
)

// tokens is a fake identity.Authenticator: token -> user id.
type tokens struct {
	mu sync.Mutex
	m  map[string]string
}

func (a *tokens) set(tok, userID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]string{}
	}
	a.m[tok] = userID
}

func (a *tokens) Authenticate(_ context.Context, tok string) (identity.Principal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if id, ok := a.m[tok]; ok {
		return identity.Principal{UserID: id}, nil
	}
	return identity.Principal{}, errs.New(errs.Unauthenticated, "bad token")
}

const serviceToken = "internal-secret"

const testBodyLimit = 64 << 10

func newHTTP(t *testing.T) (*httptest.Server, *tokens) {
	t.Helper()
	svc, _ := newService(t, user.PolicyFriends)
	authn := &tokens{}
	eps := user.MakeServerEndpoints(svc, authn, serviceToken, endpointx.Kit{Policy: endpointx.DefaultPolicy})
	r := httpx.NewRouter()
	user.MakeHTTPHandler(r, eps, log.NewNopLogger())
	srv := httptest.NewServer(httpx.Harden(r, testBodyLimit, log.NewNopLogger()))
	t.Cleanup(srv.Close)
	return srv, authn
}

type httpResult struct {
	status int
	body   map[string]json.RawMessage
}

func (r httpResult) errCode(t *testing.T) (string, string) {
	t.Helper()
	if _, ok := r.body["error"]; !ok {
		t.Fatalf("no error body in %v", r.body)
	}
	return testinfra.HTTPError(r.body)
}

func (r httpResult) decode(t *testing.T, key string, v any) {
	t.Helper()
	raw, ok := r.body[key]
	if !ok {
		t.Fatalf("no %q in body %v", key, r.body)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}

func do(t *testing.T, srv *httptest.Server, method, path, token string, body io.Reader) httpResult {
	t.Helper()
	status, out := testinfra.CallHTTP(t, method, srv.URL+path, token, body)
	return httpResult{status: status, body: out}
}

func jsonBody(v any) io.Reader {
	raw, _ := json.Marshal(v)
	return bytes.NewReader(raw)
}

// registerHTTP registers a user and gives it a token named after nick.
func registerHTTP(t *testing.T, srv *httptest.Server, authn *tokens, nick string) user.User {
	t.Helper()
	res := do(t, srv, http.MethodPost, "/v1/auth/register", "", jsonBody(map[string]string{
		"nickname": nick, "email": nick + "-" + ids.New() + "@example.com", "password": "long enough",
	}))
	if res.status != http.StatusCreated {
		t.Fatalf("register: status %d body %v", res.status, res.body)
	}
	var u user.User
	res.decode(t, "user", &u)
	authn.set(nick, u.ID)
	return u
}

func TestHTTPRegisterAndBadInput(t *testing.T) {
	srv, _ := newHTTP(t)
	res := do(t, srv, http.MethodPost, "/v1/auth/register", "", strings.NewReader(
		`{"nickname":"Ann","email":"Ann@Example.com","password":"long enough","description":"hi"}`))
	if res.status != http.StatusCreated {
		t.Fatalf("status %d body %v", res.status, res.body)
	}
	var u user.User
	res.decode(t, "user", &u)
	if u.Email != "ann@example.com" || u.Nickname != "Ann" || u.Description != "hi" || u.ID == "" || u.CreatedAt.IsZero() {
		t.Fatalf("user = %+v", u)
	}
	for _, k := range []string{"id", "nickname", "email", "avatar", "description", "created_at", "updated_at"} {
		var m map[string]json.RawMessage
		res.decode(t, "user", &m)
		if _, ok := m[k]; !ok {
			t.Fatalf("user JSON lacks %q: %v", k, m)
		}
	}

	cases := []struct {
		name   string
		body   string
		status int
		code   string
		field  string
	}{
		{"duplicate email", `{"nickname":"B","email":" ANN@example.com","password":"long enough"}`, 409, "already_exists", ""},
		{"malformed JSON", `{"nickname":`, 400, "invalid_argument", ""},
		{"not an object", `[1,2]`, 400, "invalid_argument", ""},
		{"empty body", ``, 400, "invalid_argument", ""},
		{"wrong type", `{"nickname":5}`, 400, "invalid_argument", "nickname"},
		{"missing nickname", `{"email":"x@example.com","password":"long enough"}`, 400, "invalid_argument", "nickname"},
		{"missing email", `{"nickname":"x","password":"long enough"}`, 400, "invalid_argument", "email"},
		{"missing password", `{"nickname":"x","email":"x@example.com"}`, 400, "invalid_argument", "password"},
		{"invalid email", `{"nickname":"x","email":"not-an-email","password":"long enough"}`, 400, "invalid_argument", "email"},
		{"oversized body", `{"nickname":"` + strings.Repeat("x", testBodyLimit) + `"}`, 413, "too_large", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := do(t, srv, http.MethodPost, "/v1/auth/register", "", strings.NewReader(c.body))
			if res.status != c.status {
				t.Fatalf("status %d, want %d; body %v", res.status, c.status, res.body)
			}
			code, field := res.errCode(t)
			if code != c.code || field != c.field {
				t.Fatalf("error %s field %q, want %s field %q", code, field, c.code, c.field)
			}
		})
	}
}

func TestHTTPProfilesShowEmailOnlyToTheOwner(t *testing.T) {
	srv, authn := newHTTP(t)
	ann := registerHTTP(t, srv, authn, "ann")
	registerHTTP(t, srv, authn, "bob")

	if res := do(t, srv, http.MethodGet, "/v1/users/me", "", nil); res.status != http.StatusUnauthorized {
		t.Fatalf("no token: status %d", res.status)
	}
	if res := do(t, srv, http.MethodGet, "/v1/users/me", "forged", nil); res.status != http.StatusUnauthorized {
		t.Fatalf("bad token: status %d", res.status)
	}
	res := do(t, srv, http.MethodGet, "/v1/users/me", "ann", nil)
	var me user.User
	res.decode(t, "user", &me)
	if res.status != 200 || me.ID != ann.ID || me.Email != ann.Email {
		t.Fatalf("me: %d %+v", res.status, me)
	}
	res = do(t, srv, http.MethodGet, "/v1/users/"+ann.ID, "bob", nil)
	var view map[string]json.RawMessage
	res.decode(t, "user", &view)
	if _, ok := view["email"]; ok || res.status != 200 {
		t.Fatalf("bob sees ann as %d %v", res.status, view)
	}
	if res := do(t, srv, http.MethodGet, "/v1/users/"+ids.New(), "bob", nil); res.status != 404 {
		t.Fatalf("unknown user: %d", res.status)
	}
	res = do(t, srv, http.MethodGet, "/v1/users/bad%21id", "bob", nil)
	if code, field := res.errCode(t); res.status != 400 || code != "invalid_argument" || field != "id" {
		t.Fatalf("bad id: %d %s %s", res.status, code, field)
	}

	res = do(t, srv, http.MethodPatch, "/v1/users/me", "ann", strings.NewReader(`{"nickname":"Anna","description":"about me"}`))
	var upd user.User
	res.decode(t, "user", &upd)
	if res.status != 200 || upd.Nickname != "Anna" || upd.Description != "about me" || upd.Email != ann.Email {
		t.Fatalf("patch: %d %+v", res.status, upd)
	}
	res = do(t, srv, http.MethodPatch, "/v1/users/me", "ann", strings.NewReader(`{"description":"`+strings.Repeat("d", 513)+`"}`))
	if code, field := res.errCode(t); res.status != 400 || code != "invalid_argument" || field != "description" {
		t.Fatalf("long description: %d %s %s", res.status, code, field)
	}
}

func TestHTTPFriendsAndBlocks(t *testing.T) {
	srv, authn := newHTTP(t)
	ann := registerHTTP(t, srv, authn, "ann")
	bob := registerHTTP(t, srv, authn, "bob")

	res := do(t, srv, http.MethodPost, "/v1/friends/requests", "ann", jsonBody(map[string]string{"user_id": bob.ID, "message": "hi"}))
	var fr user.FriendRequest
	res.decode(t, "friend_request", &fr)
	if res.status != http.StatusCreated || fr.State != user.StatePending || fr.FromUserID != ann.ID || fr.ToUserID != bob.ID {
		t.Fatalf("send: %d %+v", res.status, fr)
	}
	res = do(t, srv, http.MethodPost, "/v1/friends/requests", "ann", jsonBody(map[string]string{"message": "hi"}))
	if code, field := res.errCode(t); res.status != 400 || code != "invalid_argument" || field != "user_id" {
		t.Fatalf("missing user_id: %d %s %s", res.status, code, field)
	}

	res = do(t, srv, http.MethodGet, "/v1/friends/requests", "bob", nil)
	var in, out []user.FriendRequest
	res.decode(t, "incoming", &in)
	res.decode(t, "outgoing", &out)
	if len(in) != 1 || in[0].ID != fr.ID || len(out) != 0 {
		t.Fatalf("bob's requests: in %+v out %+v", in, out)
	}

	// The message policy is friends: not yet.
	res = do(t, srv, http.MethodPost, "/v1/friends/requests/"+fr.ID+"/accept", "ann", nil)
	if res.status != http.StatusForbidden {
		t.Fatalf("sender accepting: %d", res.status)
	}
	res = do(t, srv, http.MethodPost, "/v1/friends/requests/"+fr.ID+"/accept", "bob", nil)
	res.decode(t, "friend_request", &fr)
	if res.status != 200 || fr.State != user.StateAccepted {
		t.Fatalf("accept: %d %+v", res.status, fr)
	}

	res = do(t, srv, http.MethodGet, "/v1/friends", "ann", nil)
	var friends []struct {
		ID    string `json:"id"`
		Email string `json:"email"`
		Since string `json:"since"`
	}
	res.decode(t, "friends", &friends)
	var cursor string
	res.decode(t, "next_cursor", &cursor)
	if res.status != 200 || len(friends) != 1 || friends[0].ID != bob.ID || friends[0].Since == "" || friends[0].Email != "" || cursor != "" {
		t.Fatalf("friends: %d %+v cursor %q", res.status, friends, cursor)
	}
	res = do(t, srv, http.MethodGet, "/v1/friends?limit=abc", "ann", nil)
	if code, field := res.errCode(t); res.status != 400 || field != "limit" {
		t.Fatalf("bad limit: %d %s %s", res.status, code, field)
	}

	if res := do(t, srv, http.MethodDelete, "/v1/friends/"+bob.ID, "ann", nil); res.status != http.StatusNoContent {
		t.Fatalf("unfriend: %d %v", res.status, res.body)
	}
	if res := do(t, srv, http.MethodDelete, "/v1/friends/"+bob.ID, "ann", nil); res.status != http.StatusNotFound {
		t.Fatalf("unfriend again: %d", res.status)
	}

	res = do(t, srv, http.MethodPut, "/v1/blocks/"+bob.ID, "ann", nil)
	var blk user.Block
	res.decode(t, "block", &blk)
	if res.status != 200 || blk.UserID != bob.ID {
		t.Fatalf("block: %d %+v", res.status, blk)
	}
	res = do(t, srv, http.MethodPost, "/v1/friends/requests", "bob", jsonBody(map[string]string{"user_id": ann.ID}))
	if code, _ := res.errCode(t); res.status != http.StatusForbidden || code != "permission_denied" {
		t.Fatalf("request to a blocker: %d %s", res.status, code)
	}
	res = do(t, srv, http.MethodGet, "/v1/blocks", "ann", nil)
	var blocks []user.Block
	res.decode(t, "blocks", &blocks)
	if _, ok := res.body["next_cursor"]; !ok || len(blocks) != 1 || blocks[0].UserID != bob.ID {
		t.Fatalf("blocks: %v", res.body)
	}
	if res := do(t, srv, http.MethodDelete, "/v1/blocks/"+bob.ID, "ann", nil); res.status != http.StatusNoContent {
		t.Fatalf("unblock: %d", res.status)
	}
	res = do(t, srv, http.MethodGet, "/v1/blocks", "ann", nil)
	res.decode(t, "blocks", &blocks)
	if len(blocks) != 0 {
		t.Fatalf("blocks after unblock: %+v", blocks)
	}
	res = do(t, srv, http.MethodPut, "/v1/blocks/"+ann.ID, "ann", nil)
	if code, field := res.errCode(t); res.status != 400 || field != "user_id" {
		t.Fatalf("self block: %d %s %s", res.status, code, field)
	}
}

// grpcWorld serves the user service on a real listener.
type grpcWorld struct {
	addr  string
	authn *tokens
	svc   *user.Users
}

func newGRPC(t *testing.T) grpcWorld {
	t.Helper()
	svc, _ := newService(t, user.PolicyAnyone)
	authn := &tokens{}
	eps := user.MakeServerEndpoints(svc, authn, serviceToken, endpointx.Kit{Policy: endpointx.DefaultPolicy})
	addr := grpctest.Serve(t, userpb.RegisterUserServiceServer, user.NewGRPCServer(eps, log.NewNopLogger()))
	return grpcWorld{addr: addr, authn: authn, svc: svc}
}

func (w grpcWorld) client(t *testing.T, serviceToken string) user.Service {
	t.Helper()
	return user.NewGRPCClientConn(grpctest.Dial(t, w.addr), serviceToken)
}

func asUser(tok string) context.Context { return identity.WithToken(context.Background(), tok) }

func TestGRPCInternalMethodsRequireTheServiceCredential(t *testing.T) {
	w := newGRPC(t)
	public := w.client(t, "")
	internal := w.client(t, serviceToken)
	wrong := w.client(t, "not-the-secret")

	ann, err := public.Register(context.Background(), user.Registration{Nickname: "ann", Email: "ann@example.com", Password: "long enough"})
	must(t, err)
	w.authn.set("ann", ann.ID)

	a, err := internal.GetUserByID(context.Background(), ann.ID)
	must(t, err)
	if a.ID != ann.ID || a.Email != "ann@example.com" || !strings.HasPrefix(a.PasswordHash, "$2") || !a.CreatedAt.Equal(ann.CreatedAt) {
		t.Fatalf("account = %+v", a)
	}
	a, err = internal.LookupByEmail(context.Background(), "ANN@example.com")
	must(t, err)
	if a.ID != ann.ID || a.PasswordHash == "" {
		t.Fatalf("lookup = %+v", a)
	}

	refused := []struct {
		name string
		call func(ctx context.Context, c user.Service) error
	}{
		{"GetUserByID", func(ctx context.Context, c user.Service) error { _, err := c.GetUserByID(ctx, ann.ID); return err }},
		{"LookupByEmail", func(ctx context.Context, c user.Service) error {
			_, err := c.LookupByEmail(ctx, "ann@example.com")
			return err
		}},
		{"SetPasswordHash", func(ctx context.Context, c user.Service) error { return c.SetPasswordHash(ctx, ann.ID, "$2a$04$x") }},
		{"CanMessage", func(ctx context.Context, c user.Service) error {
			_, err := c.CanMessage(ctx, ann.ID, ann.ID)
			return err
		}},
		{"ListFriendIDs", func(ctx context.Context, c user.Service) error { _, err := c.ListFriendIDs(ctx, ann.ID); return err }},
	}
	for _, r := range refused {
		t.Run(r.name+" refuses a valid user token", func(t *testing.T) {
			wantErr(t, r.call(asUser("ann"), public), errs.PermissionDenied, "")
		})
		t.Run(r.name+" refuses no credential", func(t *testing.T) {
			wantErr(t, r.call(context.Background(), public), errs.PermissionDenied, "")
		})
		t.Run(r.name+" refuses a wrong service credential", func(t *testing.T) {
			wantErr(t, r.call(asUser("ann"), wrong), errs.PermissionDenied, "")
		})
	}
	t.Run("the hash never leaves GetUser", func(t *testing.T) {
		u, err := public.GetUser(asUser("ann"), "", "")
		must(t, err)
		raw, _ := json.Marshal(u)
		if strings.Contains(string(raw), "$2") || u.Email != "ann@example.com" {
			t.Fatalf("GetUser = %s", raw)
		}
	})
}

func TestGRPCUserFlowsAndErrorCodes(t *testing.T) {
	w := newGRPC(t)
	public := w.client(t, "")
	internal := w.client(t, serviceToken)
	ctx := context.Background()

	_, err := public.Register(ctx, user.Registration{Nickname: "x", Email: "bad", Password: "long enough"})
	wantErr(t, err, errs.InvalidArgument, "email")

	ann, err := public.Register(ctx, user.Registration{Nickname: "ann", Email: "ann@example.com", Password: "long enough"})
	must(t, err)
	bob, err := public.Register(ctx, user.Registration{Nickname: "bob", Email: "bob@example.com", Password: "long enough"})
	must(t, err)
	_, err = public.Register(ctx, user.Registration{Nickname: "ann2", Email: "Ann@example.com", Password: "long enough"})
	wantErr(t, err, errs.AlreadyExists, "")
	w.authn.set("ann", ann.ID)
	w.authn.set("bob", bob.ID)

	_, err = public.GetUser(ctx, "", ann.ID)
	wantErr(t, err, errs.Unauthenticated, "")
	seen, err := public.GetUser(asUser("bob"), "", ann.ID)
	must(t, err)
	if seen.Email != "" || seen.Nickname != "ann" {
		t.Fatalf("bob sees %+v", seen)
	}

	nick, empty := "Anna", ""
	upd, err := public.UpdateUser(asUser("ann"), "", user.ProfileUpdate{Nickname: &nick, Avatar: &empty})
	must(t, err)
	if upd.Nickname != "Anna" || upd.Email != ann.Email {
		t.Fatalf("update = %+v", upd)
	}

	// A user token wins over the user id the request names.
	fr, err := public.SendFriendRequest(asUser("ann"), bob.ID, bob.ID, "hi")
	must(t, err)
	if fr.FromUserID != ann.ID || fr.ToUserID != bob.ID || fr.State != user.StatePending || fr.CreatedAt.IsZero() {
		t.Fatalf("request = %+v", fr)
	}
	reqs, err := public.ListFriendRequests(asUser("bob"), "")
	must(t, err)
	if len(reqs.Incoming) != 1 || reqs.Incoming[0].ID != fr.ID {
		t.Fatalf("bob's requests = %+v", reqs)
	}
	_, err = public.AcceptFriendRequest(asUser("ann"), "", fr.ID)
	wantErr(t, err, errs.PermissionDenied, "")
	fr, err = public.AcceptFriendRequest(asUser("bob"), "", fr.ID)
	must(t, err)
	if fr.State != user.StateAccepted {
		t.Fatalf("accepted = %+v", fr)
	}

	page, err := public.ListFriends(asUser("ann"), "", user.Page{})
	must(t, err)
	if len(page.Friends) != 1 || page.Friends[0].ID != bob.ID || page.Friends[0].Since.IsZero() {
		t.Fatalf("friends = %+v", page)
	}
	fids, err := internal.ListFriendIDs(ctx, bob.ID)
	must(t, err)
	if len(fids) != 1 || fids[0] != ann.ID {
		t.Fatalf("friend ids = %v", fids)
	}

	ok, err := internal.CanMessage(ctx, ann.ID, bob.ID)
	must(t, err)
	if !ok {
		t.Fatal("friends cannot message")
	}
	blk, err := public.Block(asUser("bob"), "", ann.ID)
	must(t, err)
	if blk.UserID != ann.ID || blk.CreatedAt.IsZero() {
		t.Fatalf("block = %+v", blk)
	}
	ok, err = internal.CanMessage(ctx, ann.ID, bob.ID)
	must(t, err)
	if ok {
		t.Fatal("blocked sender may message")
	}
	blocks, err := public.ListBlocks(asUser("bob"), "", user.Page{Limit: 10})
	must(t, err)
	if len(blocks.Blocks) != 1 || blocks.Blocks[0].UserID != ann.ID {
		t.Fatalf("blocks = %+v", blocks)
	}
	must(t, public.Unblock(asUser("bob"), "", ann.ID))
	wantErr(t, public.RemoveFriend(asUser("bob"), "", ann.ID), errs.NotFound, "")

	// The service credential alone does not open public methods: a
	// gateway client carries it on every call, also for requests that
	// came without a user token.
	_, err = internal.SendFriendRequest(ctx, bob.ID, ann.ID, "again")
	wantErr(t, err, errs.Unauthenticated, "")
	_, err = internal.GetUser(ctx, "", ann.ID)
	wantErr(t, err, errs.Unauthenticated, "")
	fr, err = internal.SendFriendRequest(asUser("bob"), "", ann.ID, "again")
	must(t, err)
	if fr.FromUserID != bob.ID {
		t.Fatalf("send with both credentials = %+v", fr)
	}
	_, err = public.DeclineFriendRequest(asUser("ann"), "", fr.ID)
	must(t, err)

	h := "$2a$04$abcdefghijklmnopqrstuu5s9S7Qd0Gk7F4oX5qzYhA3mH8n3bHjS"
	must(t, internal.SetPasswordHash(ctx, ann.ID, h))
	a, err := internal.GetUserByID(ctx, ann.ID)
	must(t, err)
	if a.PasswordHash != h {
		t.Fatalf("hash = %q", a.PasswordHash)
	}
}

func TestGRPCBalancedClientReachesTheServer(t *testing.T) {
	w := newGRPC(t)
	conns := grpcx.NewConns()
	t.Cleanup(func() { _ = conns.Close() })
	c := user.NewGRPCClient(sd.FixedInstancer{w.addr}, conns, serviceToken, log.NewNopLogger())
	u, err := c.Register(context.Background(), user.Registration{Nickname: "ann", Email: "ann@example.com", Password: "long enough"})
	must(t, err)
	a, err := c.GetUserByID(context.Background(), u.ID)
	must(t, err)
	if a.ID != u.ID || a.PasswordHash == "" {
		t.Fatalf("account = %+v", a)
	}
	_, err = c.GetUserByID(context.Background(), ids.New())
	wantErr(t, err, errs.NotFound, "")
}

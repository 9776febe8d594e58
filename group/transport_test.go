package group_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/group/grouppb"
	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/grpcx/grpctest"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

const serviceToken = "internal-secret"

type people struct {
	owner, member, outsider string
	auth                    testinfra.TokenAuth
}

func (f *fixture) people() people {
	p := people{owner: f.users.newUser(), member: f.users.newUser(), outsider: f.users.newUser()}
	p.auth = testinfra.TokenAuth{"owner": {UserID: p.owner}, "member": {UserID: p.member}, "outsider": {UserID: p.outsider}}
	return p
}

type httpClient struct {
	t   *testing.T
	url string
}

// do sends body (raw JSON, or "" for none) with the token and returns the
// status and the decoded top-level object (nil for an empty body).
func (c httpClient) do(method, path, token, body string) (int, map[string]json.RawMessage) {
	c.t.Helper()
	return testinfra.CallHTTP(c.t, method, c.url+path, token, strings.NewReader(body))
}

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

func keys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	m := decode[map[string]json.RawMessage](t, raw)
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestHTTPRoutesShapesAndStatuses(t *testing.T) {
	f := newFixture(t, group.Options{})
	p := f.people()
	eps := group.MakeServerEndpoints(f.svc, p.auth, serviceToken, endpointx.Kit{})
	r := httpx.NewRouter()
	group.MakeHTTPHandler(r, eps, log.NewNopLogger())
	srv := httptest.NewServer(httpx.Harden(r, 0, log.NewNopLogger()))
	defer srv.Close()
	c := httpClient{t: t, url: srv.URL}

	status, body := c.do("POST", "/v1/groups", "owner", `{"name":"Hive","member_ids":["`+p.member+`"],"announcement":"hi"}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	wantKeys := []string{"announcement", "created_at", "id", "member_count", "members_can_invite", "muted_all", "name", "owner_id", "updated_at"}
	if got := keys(t, body["group"]); !slices.Equal(got, wantKeys) {
		t.Fatalf("group keys = %v, want %v", got, wantKeys)
	}
	g := decode[group.Group](t, body["group"])
	if g.Name != "Hive" || g.OwnerID != p.owner || g.MemberCount != 2 || g.Announcement != "hi" {
		t.Fatalf("created group = %+v", g)
	}
	base := "/v1/groups/" + g.ID

	status, body = c.do("GET", base, "member", "")
	if status != 200 || decode[group.Group](t, body["group"]).ID != g.ID {
		t.Fatalf("get: %d %s", status, body)
	}

	status, body = c.do("PATCH", base, "owner", `{"announcement":"news","members_can_invite":true}`)
	if g2 := decode[group.Group](t, body["group"]); status != 200 || g2.Announcement != "news" || !g2.MembersCanInvite || g2.Name != "Hive" {
		t.Fatalf("patch: %d %s", status, body)
	}

	status, body = c.do("POST", base+"/members", "member", `{"user_ids":["`+p.outsider+`"]}`)
	if status != 200 {
		t.Fatalf("add members: %d %s", status, body)
	}
	added := decode[[]json.RawMessage](t, body["members"])
	if len(added) != 1 {
		t.Fatalf("added = %s", body["members"])
	}
	if got, want := keys(t, added[0]), []string{"joined_at", "joined_seq", "role", "user_id"}; !slices.Equal(got, want) {
		t.Fatalf("member keys = %v, want %v", got, want)
	}

	status, body = c.do("GET", base+"/members?limit=2", "outsider", "")
	page := decode[group.MemberPage](t, mustJSON(t, body))
	if status != 200 || len(page.Members) != 2 || page.NextCursor == "" {
		t.Fatalf("members page 1: %d %s", status, body)
	}
	status, body = c.do("GET", base+"/members?limit=2&cursor="+page.NextCursor, "outsider", "")
	page2 := decode[group.MemberPage](t, mustJSON(t, body))
	if status != 200 || len(page2.Members) != 1 || page2.NextCursor != "" || page2.Members[0].UserID <= page.NextCursor {
		t.Fatalf("members page 2: %d %s", status, body)
	}
	if _, ok := body["next_cursor"]; !ok {
		t.Fatalf("next_cursor missing on the last page: %s", body)
	}

	status, body = c.do("PUT", base+"/members/"+p.outsider+"/mute", "owner", `{"seconds":60}`)
	if m := decode[group.Member](t, body["member"]); status != 200 || m.MutedUntil == nil || !m.MutedUntil.Equal(f.clk.Now().Add(time.Minute)) {
		t.Fatalf("mute: %d %s", status, body)
	}
	status, body = c.do("PUT", base+"/members/"+p.member+"/role", "owner", `{"role":"admin"}`)
	if m := decode[group.Member](t, body["member"]); status != 200 || m.Role != group.RoleAdmin {
		t.Fatalf("role: %d %s", status, body)
	}
	status, body = c.do("PUT", base+"/mute", "member", `{"muted":true}`)
	if g2 := decode[group.Group](t, body["group"]); status != 200 || !g2.MutedAll {
		t.Fatalf("mute all: %d %s", status, body)
	}

	status, body = c.do("GET", "/v1/groups", "outsider", "")
	if gp := decode[group.GroupPage](t, mustJSON(t, body)); status != 200 || len(gp.Groups) != 1 || gp.Groups[0].ID != g.ID {
		t.Fatalf("my groups: %d %s", status, body)
	}

	wantError := func(name string, status int, body map[string]json.RawMessage, wantStatus int, code errs.Code, field string) {
		t.Helper()
		e := decode[errs.Error](t, body["error"])
		if status != wantStatus || e.Code != code || e.Field != field || e.Message == "" {
			t.Fatalf("%s: got %d %s, want %d %s field %q", name, status, body, wantStatus, code, field)
		}
	}
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		code                            errs.Code
		field                           string
	}{
		{"malformed JSON", "POST", "/v1/groups", "owner", `{"name":`, 400, errs.InvalidArgument, ""},
		{"empty body", "POST", "/v1/groups", "owner", "", 400, errs.InvalidArgument, ""},
		{"missing name", "POST", "/v1/groups", "owner", `{}`, 400, errs.InvalidArgument, "name"},
		{"name of the wrong type", "POST", "/v1/groups", "owner", `{"name":5}`, 400, errs.InvalidArgument, "name"},
		{"no token", "POST", "/v1/groups", "", `{"name":"x"}`, 401, errs.Unauthenticated, ""},
		{"unknown group", "GET", "/v1/groups/" + ids.New(), "owner", "", 404, errs.NotFound, ""},
		{"malformed group id", "GET", "/v1/groups/not%20an%20id", "owner", "", 400, errs.InvalidArgument, "group_id"},
		{"bad limit", "GET", base + "/members?limit=abc", "owner", "", 400, errs.InvalidArgument, "limit"},
		{"limit too big", "GET", base + "/members?limit=201", "owner", "", 400, errs.InvalidArgument, "limit"},
		{"missing seconds", "PUT", base + "/members/" + p.outsider + "/mute", "owner", `{}`, 400, errs.InvalidArgument, "seconds"},
		{"missing muted", "PUT", base + "/mute", "owner", `{}`, 400, errs.InvalidArgument, "muted"},
		{"unknown role", "PUT", base + "/members/" + p.member + "/role", "owner", `{"role":"king"}`, 400, errs.InvalidArgument, "role"},
		{"missing transfer target", "POST", base + "/transfer", "owner", `{}`, 400, errs.InvalidArgument, "user_id"},
		{"empty patch", "PATCH", base, "owner", `{}`, 400, errs.InvalidArgument, ""},
		{"owner leaving", "DELETE", base + "/members/" + p.owner, "owner", "", 409, errs.Conflict, ""},
		{"member posting a role change", "PUT", base + "/members/" + p.outsider + "/role", "outsider", `{"role":"admin"}`, 403, errs.PermissionDenied, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := c.do(tc.method, tc.path, tc.token, tc.body)
			wantError(tc.name, status, body, tc.status, tc.code, tc.field)
		})
	}

	status, body = c.do("POST", base+"/transfer", "owner", `{"user_id":"`+p.member+`"}`)
	if g2 := decode[group.Group](t, body["group"]); status != 200 || g2.OwnerID != p.member {
		t.Fatalf("transfer: %d %s", status, body)
	}
	if status, body = c.do("DELETE", base+"/members/"+p.outsider, "member", ""); status != http.StatusNoContent || body != nil {
		t.Fatalf("kick: %d %s", status, body)
	}
	status, body = c.do("GET", base, "outsider", "")
	wantError("kicked member reads the group", status, body, 403, errs.PermissionDenied, "")
	if status, body = c.do("DELETE", base, "member", ""); status != http.StatusNoContent {
		t.Fatalf("dissolve: %d %s", status, body)
	}
	status, body = c.do("GET", base, "member", "")
	wantError("dissolved group", status, body, 404, errs.NotFound, "")
}

// mustJSON re-encodes a decoded top-level object.
func mustJSON(t *testing.T, m map[string]json.RawMessage) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGRPCRoundTripAndInternalMethodsNeedServiceToken(t *testing.T) {
	f := newFixture(t, group.Options{})
	p := f.people()
	eps := group.MakeServerEndpoints(f.svc, p.auth, serviceToken, endpointx.Kit{})
	cc := grpctest.ServeAndDial(t, grouppb.RegisterGroupServiceServer, group.NewGRPCServer(eps, log.NewNopLogger()))

	internal := group.NewGRPCClientConn(cc, serviceToken)
	users := group.NewGRPCClientConn(cc, "")
	owner := identity.WithToken(ctx, "owner")
	member := identity.WithToken(ctx, "member")
	outsider := identity.WithToken(ctx, "outsider")

	g, err := users.CreateGroup(owner, "", group.CreateInput{Name: "Hive", MemberIDs: []string{p.member}})
	must(t, err)
	if g.OwnerID != p.owner || g.MemberCount != 2 || g.CreatedAt.IsZero() || !g.CreatedAt.Equal(f.clk.Now()) {
		t.Fatalf("created = %+v", g)
	}
	// A user token always wins over the actor a caller names.
	got, err := users.GetGroup(member, p.outsider, g.ID)
	must(t, err)
	if got.ID != g.ID {
		t.Fatalf("get = %+v", got)
	}
	_, err = users.GetGroup(outsider, p.member, g.ID)
	wantCode(t, err, errs.PermissionDenied)
	_, err = users.GetGroup(ctx, "", g.ID)
	wantCode(t, err, errs.Unauthenticated)
	_, err = users.CreateGroup(owner, "", group.CreateInput{})
	wantField(t, err, "name")

	ann, yes := "news", true
	g, err = users.UpdateGroup(owner, "", g.ID, group.Update{Announcement: &ann, MembersCanInvite: &yes})
	must(t, err)
	if g.Announcement != "news" || !g.MembersCanInvite || g.Name != "Hive" {
		t.Fatalf("updated = %+v", g)
	}
	f.seqs.set(ids.Group(g.ID), 9)
	added, err := users.AddMembers(member, "", g.ID, []string{p.outsider})
	must(t, err)
	if len(added) != 1 || added[0].UserID != p.outsider || added[0].JoinedSeq != 9 || added[0].JoinedAt.IsZero() {
		t.Fatalf("added = %+v", added)
	}
	page, err := users.ListMembers(owner, "", g.ID, "", 2)
	must(t, err)
	rest, err := users.ListMembers(owner, "", g.ID, page.NextCursor, 2)
	must(t, err)
	if len(page.Members) != 2 || page.NextCursor == "" || len(rest.Members) != 1 || rest.NextCursor != "" {
		t.Fatalf("pages = %+v / %+v", page, rest)
	}
	_, err = users.ListMembers(owner, "", g.ID, "", 1<<40)
	wantField(t, err, "limit")

	m, err := users.SetRole(owner, "", g.ID, p.member, group.RoleAdmin)
	must(t, err)
	if m.Role != group.RoleAdmin {
		t.Fatalf("role = %+v", m)
	}
	m, err = users.MuteMember(member, "", g.ID, p.outsider, 30)
	must(t, err)
	if m.MutedUntil == nil || !m.MutedUntil.Equal(f.clk.Now().Add(30*time.Second)) {
		t.Fatalf("muted = %+v", m)
	}
	err = internal.CanPost(ctx, p.outsider, g.ID)
	wantCode(t, err, errs.PermissionDenied)
	if msg := errs.As(err).Message; !strings.Contains(msg, "muted") || !strings.Contains(msg, "until") {
		t.Fatalf("CanPost message = %q", errs.As(err).Message)
	}
	must(t, internal.CanPost(ctx, p.member, g.ID))
	ms, err := internal.Membership(ctx, g.ID, p.outsider)
	must(t, err)
	if ms.JoinedSeq != 9 || ms.Role != group.RoleMember || ms.MutedUntil == nil {
		t.Fatalf("membership = %+v", ms)
	}
	all, err := internal.ListMemberIDs(ctx, g.ID)
	must(t, err)
	want := []string{p.owner, p.member, p.outsider}
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Fatalf("member ids = %v, want %v", all, want)
	}

	// Internal methods refuse user tokens, even valid ones.
	wantCode(t, users.CanPost(owner, p.owner, g.ID), errs.PermissionDenied)
	_, err = users.ListMemberIDs(owner, g.ID)
	wantCode(t, err, errs.PermissionDenied)
	_, err = users.Membership(owner, g.ID, p.owner)
	wantCode(t, err, errs.PermissionDenied)

	g, err = users.MuteAll(owner, "", g.ID, true)
	must(t, err)
	if !g.MutedAll {
		t.Fatal("muted_all not set")
	}
	wantCode(t, users.RemoveMember(owner, "", g.ID, p.owner), errs.Conflict)
	g, err = users.TransferOwnership(owner, "", g.ID, p.member)
	must(t, err)
	if g.OwnerID != p.member {
		t.Fatalf("owner after transfer = %s", g.OwnerID)
	}
	must(t, users.RemoveMember(member, "", g.ID, p.outsider))
	wantCode(t, internal.CanPost(ctx, p.outsider, g.ID), errs.PermissionDenied)
	mine, err := users.ListMyGroups(owner, "", "", 0)
	must(t, err)
	if len(mine.Groups) != 1 || mine.Groups[0].ID != g.ID {
		t.Fatalf("my groups = %+v", mine)
	}
	must(t, users.DissolveGroup(member, "", g.ID))
	wantCode(t, internal.CanPost(ctx, p.member, g.ID), errs.NotFound)
	_, err = users.GetGroup(member, "", g.ID)
	wantCode(t, err, errs.NotFound)
}

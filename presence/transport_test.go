package presence_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/presence/presencepb"
	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/grpcx/grpctest"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

const serviceToken = "internal-secret"

func TestHTTPGetPresence(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := context.Background()
	alice, bob := ids.New(), ids.New()
	if err := svc.UserOnline(ctx, session(alice, "c1", "phone")); err != nil {
		t.Fatal(err)
	}
	eps := presence.MakeServerEndpoints(svc, testinfra.TokenAuth{"tok": {UserID: bob}}, serviceToken, endpointx.Kit{})
	r := httpx.NewRouter()
	presence.MakeHTTPHandler(r, eps, log.NewNopLogger())
	srv := httptest.NewServer(r)
	defer srv.Close()

	get := func(query, token string) (int, map[string]json.RawMessage) {
		t.Helper()
		return testinfra.CallHTTP(t, http.MethodGet, srv.URL+"/v1/presence"+query, token, nil)
	}

	status, body := get("?user_ids="+alice+","+bob, "tok")
	if status != http.StatusOK {
		t.Fatalf("status %d body %s", status, body)
	}
	var ps []presence.UserPresence
	if err := json.Unmarshal(body["presence"], &ps); err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || !ps[0].Online || ps[0].Devices[0].DeviceID != "phone" || ps[1].Online {
		t.Fatalf("presence = %+v", ps)
	}

	many := make([]string, presence.MaxBatch+1)
	for i := range many {
		many[i] = ids.New()
	}
	for _, c := range []struct {
		name, query, token string
		status             int
		code               string
	}{
		{"no token", "?user_ids=" + alice, "", 401, "unauthenticated"},
		{"missing ids", "", "tok", 400, "invalid_argument"},
		{"empty ids", "?user_ids=", "tok", 400, "invalid_argument"},
		{"bad id", "?user_ids=a%20b", "tok", 400, "invalid_argument"},
		{"too many", "?user_ids=" + strings.Join(many, ","), "tok", 400, "invalid_argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := get(c.query, c.token)
			var e struct{ Code string }
			_ = json.Unmarshal(body["error"], &e)
			if status != c.status || e.Code != c.code {
				t.Fatalf("got %d %s, want %d %s", status, body, c.status, c.code)
			}
		})
	}
}

func TestGRPCRoundTripAndInternalMethodsNeedServiceToken(t *testing.T) {
	svc, _, _ := newService(t)
	alice, bob := ids.New(), ids.New()
	eps := presence.MakeServerEndpoints(svc, testinfra.TokenAuth{"tok": {UserID: bob}}, serviceToken, endpointx.Kit{})
	cc := grpctest.ServeAndDial(t, presencepb.RegisterPresenceServiceServer, presence.NewGRPCServer(eps, log.NewNopLogger()))

	internal := presence.NewGRPCClientConn(cc, serviceToken)
	asUser := presence.NewGRPCClientConn(cc, "")
	ctx := context.Background()
	userCtx := identity.WithToken(ctx, "tok")

	if err := asUser.UserOnline(userCtx, session(alice, "c1", "phone")); !errs.HasCode(err, errs.PermissionDenied) {
		t.Fatalf("UserOnline with a user token: %v, want permission_denied", err)
	}
	if err := internal.UserOnline(ctx, session(alice, "c1", "phone")); err != nil {
		t.Fatal(err)
	}
	if err := internal.Heartbeat(ctx, alice, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := internal.Heartbeat(ctx, alice, "nope"); !errs.HasCode(err, errs.NotFound) {
		t.Fatalf("heartbeat of unknown session: %v, want not_found", err)
	}
	on, err := asUser.IsUserOnline(userCtx, alice)
	if err != nil || !on {
		t.Fatalf("IsUserOnline = %v, %v", on, err)
	}
	online, err := asUser.GetOnlineUsers(userCtx, []string{bob, alice})
	if err != nil || len(online) != 1 || online[0] != alice {
		t.Fatalf("GetOnlineUsers = %v, %v", online, err)
	}
	ps, err := asUser.GetUserPresence(userCtx, []string{alice, bob})
	if err != nil || len(ps) != 2 || !ps[0].Online || len(ps[0].Devices) != 1 || ps[0].Devices[0].ConnID != "c1" || ps[0].Devices[0].Since.IsZero() || ps[1].LastSeen != nil {
		t.Fatalf("GetUserPresence = %+v, %v", ps, err)
	}
	if _, err := asUser.GetUserPresence(userCtx, []string{"bad id"}); errs.As(err).Field != "user_ids" {
		t.Fatalf("bad id over gRPC: %v, want invalid_argument on user_ids", err)
	}
	if _, err := asUser.GetUserPresence(ctx, []string{alice}); !errs.HasCode(err, errs.Unauthenticated) {
		t.Fatalf("query without token: %v", err)
	}
	if err := internal.UserOffline(ctx, alice, "c1"); err != nil {
		t.Fatal(err)
	}
	if on, _ := asUser.IsUserOnline(userCtx, alice); on {
		t.Fatal("online after UserOffline")
	}
}

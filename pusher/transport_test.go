package pusher_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/pusher/pusherpb"
	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/grpcx/grpctest"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

const serviceToken = "internal-secret"

func TestHTTPDeviceRoutes(t *testing.T) {
	r := newRig(t)
	bob := ids.New()
	eps := pusher.MakeServerEndpoints(r.p, testinfra.TokenAuth{"tok": {UserID: bob}}, serviceToken, endpointx.Kit{})
	router := httpx.NewRouter()
	pusher.MakeHTTPHandler(router, eps, log.NewNopLogger())
	srv := httptest.NewServer(httpx.Harden(router, 0, log.NewNopLogger()))
	defer srv.Close()

	do := func(method, path, token, body string) (int, map[string]json.RawMessage) {
		t.Helper()
		return testinfra.CallHTTP(t, method, srv.URL+path, token, strings.NewReader(body))
	}
	errCode := testinfra.HTTPError

	status, body := do(http.MethodPut, "/v1/devices/phone-1", "tok", `{"platform":"apns","push_token":"abc"}`)
	if status != http.StatusOK {
		t.Fatalf("PUT status %d body %v", status, body)
	}
	var dev map[string]any
	if err := json.Unmarshal(body["device"], &dev); err != nil {
		t.Fatal(err)
	}
	if dev["device_id"] != "phone-1" || dev["platform"] != "apns" || dev["push_token"] != "abc" {
		t.Fatalf("device = %v", dev)
	}
	if d, ok, _ := r.store.GetDevice(t.Context(), bob, "phone-1"); !ok || d.PushToken != "abc" {
		t.Fatalf("stored = %+v %v", d, ok)
	}

	for _, c := range []struct {
		name, method, path, token, body string
		status                          int
		code, field                     string
	}{
		{"no token", http.MethodPut, "/v1/devices/x", "", `{"platform":"fcm","push_token":"t"}`, 401, "unauthenticated", ""},
		{"bad token", http.MethodPut, "/v1/devices/x", "nope", `{"platform":"fcm","push_token":"t"}`, 401, "unauthenticated", ""},
		{"bad platform", http.MethodPut, "/v1/devices/x", "tok", `{"platform":"sms","push_token":"t"}`, 400, "invalid_argument", "platform"},
		{"empty token", http.MethodPut, "/v1/devices/x", "tok", `{"platform":"fcm","push_token":""}`, 400, "invalid_argument", "push_token"},
		{"long device id", http.MethodPut, "/v1/devices/" + strings.Repeat("d", 65), "tok", `{"platform":"fcm","push_token":"t"}`, 400, "invalid_argument", "device_id"},
		{"malformed json", http.MethodPut, "/v1/devices/x", "tok", `{"platform":`, 400, "invalid_argument", ""},
		{"wrong type", http.MethodPut, "/v1/devices/x", "tok", `{"platform":1}`, 400, "invalid_argument", "platform"},
		{"empty body", http.MethodPut, "/v1/devices/x", "tok", ``, 400, "invalid_argument", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := do(c.method, c.path, c.token, c.body)
			code, field := errCode(body)
			if status != c.status || code != c.code || field != c.field {
				t.Fatalf("status %d code %q field %q; want %d %q %q (body %v)", status, code, field, c.status, c.code, c.field, body)
			}
		})
	}

	status, _ = do(http.MethodDelete, "/v1/devices/phone-1", "tok", "")
	if status != http.StatusNoContent {
		t.Fatalf("DELETE status %d", status)
	}
	if _, ok, _ := r.store.GetDevice(t.Context(), bob, "phone-1"); ok {
		t.Fatal("device still stored after DELETE")
	}
	if status, _ = do(http.MethodDelete, "/v1/devices/phone-1", "tok", ""); status != http.StatusNoContent {
		t.Fatalf("second DELETE status %d", status)
	}
}

func TestGRPCRoundTrip(t *testing.T) {
	r := newRig(t)
	alice, bob := ids.New(), ids.New()
	r.presence.connect(bob, "d", "gw", "c")
	eps := pusher.MakeServerEndpoints(r.p, testinfra.TokenAuth{"alice-tok": {UserID: alice}}, serviceToken, endpointx.Kit{})
	cc := grpctest.ServeAndDial(t, pusherpb.RegisterPusherServiceServer, pusher.NewGRPCServer(eps, log.NewNopLogger()))

	userClient := pusher.NewGRPCClientConn(cc, "")
	userCtx := identity.WithToken(context.Background(), "alice-tok")

	// A user token acts for its user, whatever user id the request names.
	d, err := userClient.RegisterDevice(userCtx, bob, pusher.DeviceRegistration{DeviceID: "phone", Platform: "fcm", PushToken: "t1"})
	if err != nil || d.DeviceID != "phone" || d.UpdatedAt.IsZero() {
		t.Fatalf("register: %+v %v", d, err)
	}
	if _, ok, _ := r.store.GetDevice(t.Context(), alice, "phone"); !ok {
		t.Fatal("device not stored for the token's user")
	}
	if _, ok, _ := r.store.GetDevice(t.Context(), bob, "phone"); ok {
		t.Fatal("a user registered a device for someone else")
	}

	_, err = userClient.RegisterDevice(userCtx, "", pusher.DeviceRegistration{DeviceID: "phone", Platform: "bogus", PushToken: "t1"})
	if e := errs.As(err); e.Code != errs.InvalidArgument || e.Field != "platform" {
		t.Fatalf("bad platform over gRPC: %v", err)
	}

	if err := userClient.UnregisterDevice(userCtx, "", "phone"); err != nil {
		t.Fatal(err)
	}

	// Internal callers name the user.
	internal := pusher.NewGRPCClientConn(cc, serviceToken)
	if _, err := internal.RegisterDevice(context.Background(), bob, pusher.DeviceRegistration{DeviceID: "tab", Platform: "apns", PushToken: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.store.GetDevice(t.Context(), bob, "tab"); !ok {
		t.Fatal("internal call did not act for the named user")
	}
	if err := internal.UnregisterDevice(context.Background(), "", "tab"); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("internal call without user id: %v", err)
	}
	wrong := pusher.NewGRPCClientConn(cc, "not-the-secret")
	if err := wrong.UnregisterDevice(context.Background(), bob, "tab"); errs.CodeOf(err) != errs.PermissionDenied {
		t.Fatalf("wrong service credential: %v", err)
	}
	if err := pusher.NewGRPCClientConn(cc, "").UnregisterDevice(context.Background(), bob, "tab"); errs.CodeOf(err) != errs.Unauthenticated {
		t.Fatalf("no credential: %v", err)
	}
}

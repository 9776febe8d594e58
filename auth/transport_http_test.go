package auth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/ratelimit"
)

func newHTTPServer(t *testing.T, f *fixture) *httptest.Server {
	t.Helper()
	e := auth.MakeServerEndpoints(f.svc, f.verifier, serviceToken, endpointx.Kit{Policy: endpointx.DefaultPolicy})
	r := httpx.NewRouter()
	auth.MakeHTTPHandler(r, e, log.NewNopLogger())
	srv := httptest.NewServer(httpx.Harden(r, 1<<10, log.NewNopLogger()))
	t.Cleanup(srv.Close)
	return srv
}

type httpResult struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, srv *httptest.Server, method, path, bearer, body string) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return httpResult{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func errorOf(t *testing.T, r httpResult) (code, field string) {
	t.Helper()
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &b); err != nil || b.Error.Code == "" {
		t.Fatalf("not an error body (%d): %s", r.status, r.body)
	}
	return b.Error.Code, b.Error.Field
}

func TestHTTPLoginAnswersTheProtocolShape(t *testing.T) {
	f := newFixture(t)
	acct := f.accounts.add(t, "qa@example.com", testPassword)
	srv := newHTTPServer(t, f)
	r := do(t, srv, http.MethodPost, "/v1/auth/login", "", `{"email":"qa@example.com","password":"`+testPassword+`","device_id":"web"}`)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control = %q", r.header.Get("Cache-Control"))
	}
	var body struct {
		AccessToken  string          `json:"access_token"`
		RefreshToken string          `json:"refresh_token"`
		ExpiresIn    int64           `json:"expires_in"`
		DeviceID     string          `json:"device_id"`
		User         json.RawMessage `json:"user"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	if body.AccessToken == "" || body.RefreshToken == "" || body.ExpiresIn != 900 || body.DeviceID != "web" || string(body.User) != string(acct.Profile) {
		t.Fatalf("body = %s", r.body)
	}

	// Refresh gives a new pair; the spent token then revokes the session.
	r2 := do(t, srv, http.MethodPost, "/v1/auth/refresh", "", `{"refresh_token":"`+body.RefreshToken+`"}`)
	if r2.status != http.StatusOK || !strings.Contains(r2.body, `"access_token"`) || strings.Contains(r2.body, `"user"`) {
		t.Fatalf("refresh: %d %s", r2.status, r2.body)
	}
	r3 := do(t, srv, http.MethodPost, "/v1/auth/refresh", "", `{"refresh_token":"`+body.RefreshToken+`"}`)
	if code, _ := errorOf(t, r3); r3.status != http.StatusUnauthorized || code != "unauthenticated" {
		t.Fatalf("reuse: %d %s", r3.status, r3.body)
	}
	var fresh auth.Tokens
	_ = json.Unmarshal([]byte(r2.body), &fresh)
	r4 := do(t, srv, http.MethodPost, "/v1/auth/logout", fresh.AccessToken, "")
	if r4.status != http.StatusUnauthorized {
		t.Fatalf("access token of a revoked family: %d %s", r4.status, r4.body)
	}
}

func TestHTTPWrongPasswordAndUnknownAccountAreIdentical401s(t *testing.T) {
	f := newFixture(t)
	f.accounts.add(t, "rb@example.com", testPassword)
	srv := newHTTPServer(t, f)
	wrong := do(t, srv, http.MethodPost, "/v1/auth/login", "", `{"email":"rb@example.com","password":"guess guess"}`)
	unknown := do(t, srv, http.MethodPost, "/v1/auth/login", "", `{"email":"nobody@example.com","password":"guess guess"}`)
	if wrong.status != http.StatusUnauthorized || unknown.status != http.StatusUnauthorized || wrong.body != unknown.body {
		t.Fatalf("wrong: %d %s; unknown: %d %s", wrong.status, wrong.body, unknown.status, unknown.body)
	}
	if code, _ := errorOf(t, wrong); code != "unauthenticated" || !strings.Contains(wrong.body, "invalid credentials") {
		t.Fatalf("body = %s", wrong.body)
	}
}

func TestHTTPBadInputIs4xxNamingTheField(t *testing.T) {
	f := newFixture(t)
	f.accounts.add(t, "sc@example.com", testPassword)
	srv := newHTTPServer(t, f)
	tok := f.login(t, "sc@example.com", testPassword, "")
	for _, tc := range []struct {
		name, method, path, bearer, body string
		status                           int
		code, field                      string
	}{
		{"malformed login JSON", "POST", "/v1/auth/login", "", `{"email":`, 400, "invalid_argument", ""},
		{"login body not an object", "POST", "/v1/auth/login", "", `[1]`, 400, "invalid_argument", ""},
		{"empty login body", "POST", "/v1/auth/login", "", ``, 400, "invalid_argument", ""},
		{"login without account", "POST", "/v1/auth/login", "", `{"password":"x"}`, 400, "invalid_argument", "email"},
		{"login without password", "POST", "/v1/auth/login", "", `{"email":"sc@example.com"}`, 400, "invalid_argument", "password"},
		{"login password wrong type", "POST", "/v1/auth/login", "", `{"email":"a@b","password":5}`, 400, "invalid_argument", "password"},
		{"login device too long", "POST", "/v1/auth/login", "", `{"email":"a@b","password":"x","device_id":"` + strings.Repeat("d", 65) + `"}`, 400, "invalid_argument", "device_id"},
		{"refresh without token", "POST", "/v1/auth/refresh", "", `{}`, 400, "invalid_argument", "refresh_token"},
		{"malformed refresh JSON", "POST", "/v1/auth/refresh", "", `{{`, 400, "invalid_argument", ""},
		{"password without old", "PUT", "/v1/auth/password", tok.AccessToken, `{"new_password":"long enough"}`, 400, "invalid_argument", "old_password"},
		{"password without new", "PUT", "/v1/auth/password", tok.AccessToken, `{"old_password":"x"}`, 400, "invalid_argument", "new_password"},
		{"password wrong old", "PUT", "/v1/auth/password", tok.AccessToken, `{"old_password":"wrong one","new_password":"long enough"}`, 400, "invalid_argument", "old_password"},
		{"logout bad all", "POST", "/v1/auth/logout?all=maybe", tok.AccessToken, ``, 400, "invalid_argument", "all"},
		{"oversized body", "POST", "/v1/auth/login", "", `{"email":"a@b","password":"` + strings.Repeat("p", 2000) + `"}`, 413, "too_large", ""},
		{"logout without token", "POST", "/v1/auth/logout", "", ``, 401, "unauthenticated", ""},
		{"password without token", "PUT", "/v1/auth/password", "", `{"old_password":"a","new_password":"long enough"}`, 401, "unauthenticated", ""},
		{"logout with garbage token", "POST", "/v1/auth/logout", "garbage", ``, 401, "unauthenticated", ""},
		{"no register route here", "POST", "/v1/auth/register", "", `{}`, 404, "not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, srv, tc.method, tc.path, tc.bearer, tc.body)
			code, field := errorOf(t, r)
			if r.status != tc.status || code != tc.code || field != tc.field {
				t.Fatalf("got %d %s field %q, want %d %s field %q: %s", r.status, code, field, tc.status, tc.code, tc.field, r.body)
			}
		})
	}
}

func TestHTTPLoginRateLimitIs429(t *testing.T) {
	f := newFixture(t, func(o *auth.Options) { o.LoginPerIP = ratelimit.NewLocal(1e-6, 3) })
	f.accounts.add(t, "td@example.com", testPassword)
	srv := newHTTPServer(t, f)
	for i := 0; i < 3; i++ {
		if r := do(t, srv, "POST", "/v1/auth/login", "", `{"email":"td@example.com","password":"bad password"}`); r.status != 401 {
			t.Fatalf("attempt %d: %d %s", i, r.status, r.body)
		}
	}
	r := do(t, srv, "POST", "/v1/auth/login", "", `{"email":"td@example.com","password":"`+testPassword+`"}`)
	if code, _ := errorOf(t, r); r.status != http.StatusTooManyRequests || code != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
}

func TestHTTPLogoutPasswordAndKeys(t *testing.T) {
	f := newFixture(t)
	f.accounts.add(t, "ue@example.com", testPassword)
	srv := newHTTPServer(t, f)
	a := f.login(t, "ue@example.com", testPassword, "")
	b := f.login(t, "ue@example.com", testPassword, "")

	if r := do(t, srv, "PUT", "/v1/auth/password", a.AccessToken, `{"old_password":"`+testPassword+`","new_password":"another secret"}`); r.status != http.StatusNoContent {
		t.Fatalf("password: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "POST", "/v1/auth/logout", b.AccessToken, ""); r.status != http.StatusUnauthorized {
		t.Fatalf("other session after password change: %d", r.status)
	}
	if r := do(t, srv, "POST", "/v1/auth/logout", a.AccessToken, ""); r.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "POST", "/v1/auth/logout", a.AccessToken, ""); r.status != http.StatusUnauthorized {
		t.Fatalf("second logout with the revoked token: %d", r.status)
	}
	d := f.login(t, "ue@example.com", "another secret", "")
	e := f.login(t, "ue@example.com", "another secret", "")
	if r := do(t, srv, "POST", "/v1/auth/logout?all=true", d.AccessToken, ""); r.status != http.StatusNoContent {
		t.Fatalf("logout all: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "POST", "/v1/auth/logout", e.AccessToken, ""); r.status != http.StatusUnauthorized {
		t.Fatalf("session survived logout all: %d", r.status)
	}

	r := do(t, srv, "GET", "/v1/auth/keys", "", "")
	var jwks auth.JWKS
	if err := json.Unmarshal([]byte(r.body), &jwks); err != nil || r.status != 200 || len(jwks.Keys) != 1 || jwks.Keys[0].Kid != "k1" {
		t.Fatalf("keys: %d %s", r.status, r.body)
	}
	if strings.Contains(r.body, `"d"`) {
		t.Fatalf("private key material in JWKS: %s", r.body)
	}
}

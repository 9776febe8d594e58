package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/shared/errs"
)

type echoReq struct {
	Name string `json:"name"`
	Age  int    `json:"age"`
}

func handler() http.Handler {
	r := NewRouter()
	r.Methods(http.MethodPost).Path("/echo").HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req echoReq
		if err := DecodeJSON(r, &req); err != nil {
			EncodeError(r.Context(), err, w)
			return
		}
		_ = WriteJSON(w, http.StatusOK, req)
	})
	r.Methods(http.MethodGet).Path("/panic").HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })
	MountOps(r, nil, func() []Check {
		return []Check{{Name: "redis", Check: func(context.Context) error { return errors.New("connection refused") }}}
	})
	return Harden(r, 64, log.NewNopLogger())
}

func do(t *testing.T, method, path, body string) (int, errs.Body) {
	t.Helper()
	srv := httptest.NewServer(handler())
	defer srv.Close()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b errs.Body
	_ = json.NewDecoder(resp.Body).Decode(&b)
	return resp.StatusCode, b
}

func TestBadInputGetsCodedJSONErrors(t *testing.T) {
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     errs.Code
	}{
		{"malformed json", "POST", "/echo", "{nope", 400, errs.InvalidArgument},
		{"empty body", "POST", "/echo", "", 400, errs.InvalidArgument},
		{"wrong type names field", "POST", "/echo", `{"age":"x"}`, 400, errs.InvalidArgument},
		{"trailing data", "POST", "/echo", `{} {}`, 400, errs.InvalidArgument},
		{"oversized body", "POST", "/echo", `{"name":"` + strings.Repeat("x", 100) + `"}`, 413, errs.TooLarge},
		{"unknown route", "GET", "/nope", "", 404, errs.NotFound},
		{"panic becomes 500 json, not a crash", "GET", "/panic", "", 500, errs.Internal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := do(t, c.method, c.path, c.body)
			if status != c.status || body.Error == nil || body.Error.Code != c.code {
				t.Fatalf("got %d %+v, want %d %s", status, body.Error, c.status, c.code)
			}
		})
	}
	_, b := do(t, "POST", "/echo", `{"age":"x"}`)
	if b.Error.Field != "age" {
		t.Fatalf("type error must name the field, got %+v", b.Error)
	}
}

func TestReadyNamesFailingDependency(t *testing.T) {
	srv := httptest.NewServer(handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Failing map[string]string `json:"failing"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 503 || body.Failing["redis"] == "" {
		t.Fatalf("ready: %d %+v", resp.StatusCode, body)
	}
	h, _ := http.Get(srv.URL + "/health")
	h.Body.Close()
	if h.StatusCode != 200 {
		t.Fatalf("health: %d", h.StatusCode)
	}
}

// Every failure a retry can get past tells the client when, in whole
// seconds rounded up; others do not.
func TestRetryAfterHeaderFollowsTheRetryHint(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{errs.New(errs.Unavailable, "dependency unavailable"), "1"},
		{errs.New(errs.RateLimited, "slow down"), "1"},
		{&errs.Error{Code: errs.Unavailable, Message: "kafka away", RetryAfter: 2500 * time.Millisecond}, "3"},
		{errs.New(errs.DeadlineExceeded, "too slow"), "1"},
		{errs.Invalid("email", "malformed"), ""},
		{errs.New(errs.Internal, "bug"), ""},
	} {
		rec := httptest.NewRecorder()
		EncodeError(context.Background(), c.err, rec)
		if got := rec.Header().Get("Retry-After"); got != c.want {
			t.Errorf("%v: Retry-After %q, want %q", c.err, got, c.want)
		}
	}
}

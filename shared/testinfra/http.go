package testinfra

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// CallHTTP sends method url with body (nil for none) and, when token is
// not "", "Authorization: Bearer <token>". It returns the status and the
// response's top-level JSON object, nil for an empty body; a call that
// fails or a body that is not a JSON object fails the test. Every
// domain's HTTP route tests use it.
func CallHTTP(t testing.TB, method, url, token string, body io.Reader) (int, map[string]json.RawMessage) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 {
		return resp.StatusCode, nil
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: status %d, body %q is not a JSON object: %v", method, url, resp.StatusCode, raw, err)
	}
	return resp.StatusCode, out
}

// HTTPError returns the code and field of the "error" object of a
// response body ("" for what is absent).
func HTTPError(body map[string]json.RawMessage) (code, field string) {
	var e struct {
		Code  string `json:"code"`
		Field string `json:"field"`
	}
	_ = json.Unmarshal(body["error"], &e)
	return e.Code, e.Field
}

package pusher_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/shared/ids"
)

var fastRetry = pusher.Retry{Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}

func sampleTask() pusher.Task {
	return pusher.Task{UserID: "bob", DeviceID: "phone", Platform: pusher.PlatformWebhook, PushToken: "device-token-1",
		MessageID: ids.New(), ConversationID: ids.P2P("alice", "bob"), Seq: 42, SenderID: "alice", Preview: "hello"}
}

// scripted answers each request with the next status (the last repeats)
// after check inspected it.
type scripted struct {
	mu       sync.Mutex
	statuses []int
	bodies   []string
	calls    int
	problems []string
}

func (s *scripted) next() (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(s.calls, len(s.statuses)-1)
	s.calls++
	body := ""
	if i < len(s.bodies) {
		body = s.bodies[i]
	}
	return s.statuses[i], body
}

func (s *scripted) problem(format string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, format)
}

func (s *scripted) result(t *testing.T) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.problems {
		t.Error(p)
	}
	return s.calls
}

func TestWebhookSignsAndKeysTheRequest(t *testing.T) {
	const secret = "s3cret"
	task := sampleTask()
	sc := &scripted{statuses: []int{http.StatusOK}}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(r.Header.Get("X-Beehive-Signature")), []byte(want)) {
			sc.problem("signature does not verify: " + r.Header.Get("X-Beehive-Signature"))
		}
		if got, want := r.Header.Get("Idempotency-Key"), task.MessageID+":bob:phone"; got != want {
			sc.problem("Idempotency-Key = " + got + ", want " + want)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/hook" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			sc.problem("request " + r.Method + " " + r.URL.Path)
		}
		var b pusher.WebhookBody
		if err := json.Unmarshal(body, &b); err != nil || b.MessageID != task.MessageID || b.Seq != 42 || b.PushToken != "device-token-1" || b.Preview != "hello" || b.UserID != "bob" || b.DeviceID != "phone" {
			sc.problem("body = " + string(body))
		}
		st, _ := sc.next()
		w.WriteHeader(st)
	}))
	defer srv.Close()
	n, err := pusher.NewWebhook(pusher.WebhookConfig{URL: srv.URL + "/hook", Secret: secret, Client: srv.Client(), Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(t.Context(), task); err != nil {
		t.Fatal(err)
	}
	if calls := sc.result(t); calls != 1 {
		t.Fatalf("calls = %d", calls)
	}
}

func TestWebhookRetries(t *testing.T) {
	for _, c := range []struct {
		name      string
		statuses  []int
		wantCalls int
		wantErr   bool
		permanent bool
	}{
		{"5xx then success is retried", []int{503, 500, 200}, 3, false, false},
		{"5xx every time gives up after the attempts", []int{502}, 3, true, false},
		{"4xx is not retried", []int{400}, 1, true, true},
		{"429 is retried", []int{429, 204}, 2, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc := &scripted{statuses: c.statuses}
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				st, _ := sc.next()
				w.WriteHeader(st)
			}))
			defer srv.Close()
			n, _ := pusher.NewWebhook(pusher.WebhookConfig{URL: srv.URL, Secret: "k", Client: srv.Client(), Retry: fastRetry})
			err := n.Notify(t.Context(), sampleTask())
			if (err != nil) != c.wantErr || (err != nil && pusher.IsPermanent(err) != c.permanent) {
				t.Fatalf("err = %v (permanent %v)", err, pusher.IsPermanent(err))
			}
			if calls := sc.result(t); calls != c.wantCalls {
				t.Fatalf("calls = %d, want %d", calls, c.wantCalls)
			}
		})
	}
}

func TestWebhookRetriesNetworkErrors(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	url, client := srv.URL, srv.Client()
	srv.Close() // nothing listens any more
	n, _ := pusher.NewWebhook(pusher.WebhookConfig{URL: url, Secret: "k", Client: client, Retry: fastRetry})
	err := n.Notify(t.Context(), sampleTask())
	if err == nil || pusher.IsPermanent(err) {
		t.Fatalf("err = %v, want a transient error", err)
	}
}

func TestFCMSendsV1MessageWithBearerToken(t *testing.T) {
	task := sampleTask()
	task.Platform = pusher.PlatformFCM
	sc := &scripted{statuses: []int{200}, bodies: []string{`{"name":"projects/p1/messages/1"}`}}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/projects/p1/messages:send" {
			sc.problem("request " + r.Method + " " + r.URL.Path)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer access-123" {
			sc.problem("Authorization = " + got)
		}
		var body struct {
			Message struct {
				Token        string            `json:"token"`
				Notification map[string]string `json:"notification"`
				Data         map[string]string `json:"data"`
			} `json:"message"`
		}
		raw, _ := io.ReadAll(r.Body)
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			sc.problem("body " + string(raw) + ": " + err.Error())
		}
		m := body.Message
		if m.Token != "device-token-1" || m.Notification["body"] != "hello" || m.Notification["title"] == "" ||
			m.Data["message_id"] != task.MessageID || m.Data["seq"] != "42" || m.Data["conversation_id"] != task.ConversationID || m.Data["sender_id"] != "alice" {
			sc.problem("message = " + string(raw))
		}
		st, b := sc.next()
		w.WriteHeader(st)
		_, _ = io.WriteString(w, b)
	}))
	defer srv.Close()
	n, err := pusher.NewFCM(pusher.FCMConfig{Endpoint: srv.URL, ProjectID: "p1", Tokens: pusher.StaticToken("access-123"), Client: srv.Client(), Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(t.Context(), task); err != nil {
		t.Fatal(err)
	}
	if calls := sc.result(t); calls != 1 {
		t.Fatalf("calls = %d", calls)
	}
}

func TestFCMErrors(t *testing.T) {
	unregistered := `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`
	invalid := `{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}`
	for _, c := range []struct {
		name                    string
		statuses                []int
		bodies                  []string
		calls                   int
		unregistered, permanent bool
	}{
		{"UNREGISTERED means the token is gone", []int{404}, []string{unregistered}, 1, true, true},
		{"INVALID_ARGUMENT is permanent", []int{400}, []string{invalid}, 1, false, true},
		{"503 is retried", []int{503, 200}, nil, 2, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc := &scripted{statuses: c.statuses, bodies: c.bodies}
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				st, b := sc.next()
				w.WriteHeader(st)
				_, _ = io.WriteString(w, b)
			}))
			defer srv.Close()
			n, _ := pusher.NewFCM(pusher.FCMConfig{Endpoint: srv.URL, ProjectID: "p1", Tokens: pusher.StaticToken("x"), Client: srv.Client(), Retry: fastRetry})
			err := n.Notify(t.Context(), sampleTask())
			if errors.Is(err, pusher.ErrUnregistered) != c.unregistered || pusher.IsPermanent(err) != c.permanent {
				t.Fatalf("err = %v", err)
			}
			if calls := sc.result(t); calls != c.calls {
				t.Fatalf("calls = %d, want %d", calls, c.calls)
			}
		})
	}
}

func newAPNsKey(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestAPNsSendsHTTP2WithES256ProviderToken(t *testing.T) {
	key, p8 := newAPNsKey(t)
	parsed, err := pusher.ParseAPNsKey(p8)
	if err != nil {
		t.Fatal(err)
	}
	task := sampleTask()
	task.Platform = pusher.PlatformAPNs
	now := time.Now()
	sc := &scripted{statuses: []int{200}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			sc.problem("protocol " + r.Proto + ", want HTTP/2")
		}
		if r.Method != http.MethodPost || r.URL.EscapedPath() != "/3/device/device-token-1" {
			sc.problem("request " + r.Method + " " + r.URL.EscapedPath())
		}
		if r.Header.Get("apns-topic") != "im.beehive.app" || r.Header.Get("apns-push-type") != "alert" || !uuidRE.MatchString(r.Header.Get("apns-id")) {
			sc.problem("headers topic=" + r.Header.Get("apns-topic") + " type=" + r.Header.Get("apns-push-type") + " id=" + r.Header.Get("apns-id"))
		}
		auth := r.Header.Get("authorization")
		if !strings.HasPrefix(auth, "bearer ") {
			sc.problem("authorization = " + auth)
		}
		tok, err := jwt.Parse(strings.TrimPrefix(auth, "bearer "), func(tok *jwt.Token) (any, error) {
			if tok.Header["kid"] != "KEY123" {
				return nil, errors.New("kid mismatch")
			}
			return &key.PublicKey, nil
		}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer("TEAM42"), jwt.WithIssuedAt())
		if err != nil {
			sc.problem("provider token: " + err.Error())
		} else if iat, _ := tok.Claims.GetIssuedAt(); iat == nil || iat.Unix() != now.Unix() {
			sc.problem("iat missing or wrong")
		}
		var payload struct {
			APS struct {
				Alert struct{ Title, Body string } `json:"alert"`
			} `json:"aps"`
			MessageID string `json:"message_id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&payload); err != nil || payload.APS.Alert.Body != "hello" || payload.MessageID != task.MessageID {
			sc.problem("payload")
		}
		st, _ := sc.next()
		w.WriteHeader(st)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	n, err := pusher.NewAPNs(pusher.APNsConfig{Endpoint: srv.URL, Topic: "im.beehive.app", KeyID: "KEY123", TeamID: "TEAM42", Key: parsed,
		Client: srv.Client(), Retry: fastRetry, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(t.Context(), task); err != nil {
		t.Fatal(err)
	}
	if calls := sc.result(t); calls != 1 {
		t.Fatalf("calls = %d", calls)
	}
}

func TestAPNsErrors(t *testing.T) {
	key, _ := newAPNsKey(t)
	for _, c := range []struct {
		name                    string
		statuses                []int
		bodies                  []string
		calls                   int
		unregistered, permanent bool
		ok                      bool
	}{
		{"410 Unregistered drops the token", []int{410}, []string{`{"reason":"Unregistered"}`}, 1, true, true, false},
		{"400 BadDeviceToken drops the token", []int{400}, []string{`{"reason":"BadDeviceToken"}`}, 1, true, true, false},
		{"400 PayloadTooLarge is permanent", []int{400}, []string{`{"reason":"PayloadTooLarge"}`}, 1, false, true, false},
		{"expired provider token is renewed and retried", []int{403, 200}, []string{`{"reason":"ExpiredProviderToken"}`}, 2, false, false, true},
		{"503 is retried", []int{503, 200}, nil, 2, false, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc := &scripted{statuses: c.statuses, bodies: c.bodies}
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				st, b := sc.next()
				w.WriteHeader(st)
				_, _ = io.WriteString(w, b)
			}))
			srv.EnableHTTP2 = true
			srv.StartTLS()
			defer srv.Close()
			n, _ := pusher.NewAPNs(pusher.APNsConfig{Endpoint: srv.URL, Topic: "t", KeyID: "k", TeamID: "team", Key: key, Client: srv.Client(), Retry: fastRetry})
			err := n.Notify(t.Context(), sampleTask())
			if (err == nil) != c.ok || errors.Is(err, pusher.ErrUnregistered) != c.unregistered || pusher.IsPermanent(err) != c.permanent {
				t.Fatalf("err = %v", err)
			}
			if calls := sc.result(t); calls != c.calls {
				t.Fatalf("calls = %d, want %d", calls, c.calls)
			}
		})
	}
}

func TestRouterRefusesAnUnknownPlatformPermanently(t *testing.T) {
	err := pusher.Router{}.Notify(t.Context(), sampleTask())
	if err == nil || !pusher.IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
}

package test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// webhookServer is a push receiver that checks every request's signature
// and counts successful calls per message and device.
type webhookServer struct {
	*httptest.Server
	mu    sync.Mutex
	calls []webhookCall
}

type webhookCall struct {
	MessageID string `json:"message_id"`
	DeviceID  string `json:"device_id"`
	UserID    string `json:"user_id"`
}

func newWebhookServer(t *testing.T) *webhookServer {
	w := &webhookServer{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte("s3cret"))
		mac.Write(body)
		if r.Header.Get("X-Beehive-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			t.Errorf("webhook with a bad signature: %q", r.Header.Get("X-Beehive-Signature"))
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		var c webhookCall
		if err := json.Unmarshal(body, &c); err != nil || c.MessageID == "" || c.DeviceID == "" {
			t.Errorf("webhook body without message/device: %s", body)
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.calls = append(w.calls, c)
		w.mu.Unlock()
		rw.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhookServer) count(messageID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.calls {
		if c.MessageID == messageID {
			n++
		}
	}
	return n
}

func (w *webhookServer) countDevice(messageID, deviceID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.calls {
		if c.MessageID == messageID && c.DeviceID == deviceID {
			n++
		}
	}
	return n
}

package pusher

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// APNsConfig configures the APNs notifier (token-based provider
// authentication).
type APNsConfig struct {
	// Endpoint defaults to https://api.push.apple.com (the sandbox is
	// https://api.sandbox.push.apple.com).
	Endpoint string
	// Topic is the app's bundle id (apns-topic).
	Topic string
	// KeyID and TeamID name the .p8 key and its team.
	KeyID  string
	TeamID string
	// Key is the .p8 signing key (ParseAPNsKey).
	Key *ecdsa.PrivateKey
	// Title is the alert title (default "New message").
	Title string
	// Client must speak HTTP/2 (the default does, over TLS).
	Client *http.Client
	Retry  Retry
	Now    func() time.Time
}

// APNs sends pushes to Apple: HTTP/2 POST {endpoint}/3/device/{token}
// authenticated by an ES256 provider token.
type APNs struct {
	cfg APNsConfig

	mu    sync.Mutex
	jwt   string
	jwtAt time.Time
}

var _ Notifier = (*APNs)(nil)

// apnsTokenLifetime: Apple refuses provider tokens older than an hour and
// throttles refreshing more often than every 20 minutes.
const apnsTokenLifetime = 50 * time.Minute

// ParseAPNsKey parses the PEM (PKCS#8) contents of an APNs .p8 key.
func ParseAPNsKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	k, err := jwt.ParseECPrivateKeyFromPEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("pusher: parse apns key: %w", err)
	}
	return k, nil
}

// NewAPNs returns an APNs notifier.
func NewAPNs(cfg APNsConfig) (*APNs, error) {
	switch {
	case cfg.Topic == "":
		return nil, errors.New("pusher: apns topic is required")
	case cfg.KeyID == "" || cfg.TeamID == "":
		return nil, errors.New("pusher: apns key id and team id are required")
	case cfg.Key == nil:
		return nil, errors.New("pusher: apns signing key is required")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "https://api.push.apple.com"
	}
	if cfg.Title == "" {
		cfg.Title = "New message"
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true}}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &APNs{cfg: cfg}, nil
}

// providerToken returns the cached ES256 token, minting a new one when it
// is old or was refused.
func (a *APNs) providerToken() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	if a.jwt != "" && now.Sub(a.jwtAt) < apnsTokenLifetime {
		return a.jwt, nil
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": a.cfg.TeamID, "iat": now.Unix()})
	tok.Header["kid"] = a.cfg.KeyID
	s, err := tok.SignedString(a.cfg.Key)
	if err != nil {
		return "", Permanent(fmt.Errorf("pusher: sign apns token: %w", err))
	}
	a.jwt, a.jwtAt = s, now
	return s, nil
}

func (a *APNs) dropToken(refused string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.jwt == refused {
		a.jwt = ""
	}
}

// apnsID derives a stable UUID from the task's idempotency key, so a
// repeated push carries the same apns-id.
func apnsID(t Task) string {
	h := sha256.Sum256([]byte(t.IdempotencyKey()))
	h[6] = h[6]&0x0f | 0x50 // name-based layout
	h[8] = h[8]&0x3f | 0x80
	s := hex.EncodeToString(h[:16])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// APNsPayload is the JSON body of an APNs push.
type APNsPayload struct {
	APS            APS    `json:"aps"`
	MessageID      string `json:"message_id"`
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	SenderID       string `json:"sender_id"`
}

// APS is the aps dictionary.
type APS struct {
	Alert    APSAlert `json:"alert"`
	Sound    string   `json:"sound,omitempty"`
	ThreadID string   `json:"thread-id,omitempty"`
}

// APSAlert is the visible alert.
type APSAlert struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// Notify implements Notifier.
func (a *APNs) Notify(ctx context.Context, t Task) error {
	body, err := json.Marshal(APNsPayload{
		APS:       APS{Alert: APSAlert{Title: a.cfg.Title, Body: t.Preview}, Sound: "default", ThreadID: t.ConversationID},
		MessageID: t.MessageID, ConversationID: t.ConversationID, Seq: t.Seq, SenderID: t.SenderID,
	})
	if err != nil {
		return Permanent(err)
	}
	u := strings.TrimRight(a.cfg.Endpoint, "/") + "/3/device/" + url.PathEscape(t.PushToken)
	id := apnsID(t)
	return a.cfg.Retry.do(ctx, func(ctx context.Context) error {
		tok, err := a.providerToken()
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return Permanent(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("authorization", "bearer "+tok)
		req.Header.Set("apns-topic", a.cfg.Topic)
		req.Header.Set("apns-push-type", "alert")
		req.Header.Set("apns-id", id)
		req.Header.Set("apns-priority", "10")
		resp, err := a.cfg.Client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		var e struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(raw, &e)
		serr := &statusError{Provider: "apns", Status: resp.StatusCode, Reason: e.Reason}
		switch {
		case resp.StatusCode == http.StatusGone || e.Reason == "BadDeviceToken" || e.Reason == "Unregistered" || e.Reason == "DeviceTokenNotForTopic":
			return errors.Join(ErrUnregistered, serr)
		case e.Reason == "ExpiredProviderToken" || e.Reason == "InvalidProviderToken":
			// Mint a new token and try again.
			a.dropToken(tok)
			return serr
		}
		return classify("apns", resp.StatusCode, e.Reason)
	})
}

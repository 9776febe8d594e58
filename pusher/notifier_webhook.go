package pusher

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

// WebhookConfig configures the signed webhook notifier.
type WebhookConfig struct {
	// URL receives one POST per push.
	URL string
	// Secret keys the HMAC-SHA256 signature of the body.
	Secret string
	// Client defaults to one with a 10 s timeout.
	Client *http.Client
	Retry  Retry
}

// Webhook POSTs each task as JSON to a configured URL, signed with
// `X-Beehive-Signature: sha256=<hex HMAC-SHA256(body, secret)>` and keyed
// with `Idempotency-Key: <message_id>:<user_id>:<device_id>`, retrying 5xx
// and network errors with exponential backoff, never 4xx.
type Webhook struct {
	cfg WebhookConfig
}

var _ Notifier = (*Webhook)(nil)

// NewWebhook returns a webhook notifier.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if cfg.URL == "" {
		return nil, errors.New("pusher: webhook URL is required")
	}
	if cfg.Secret == "" {
		return nil, errors.New("pusher: webhook secret is required")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Webhook{cfg: cfg}, nil
}

// WebhookBody is what the webhook receives.
type WebhookBody struct {
	UserID         string `json:"user_id"`
	DeviceID       string `json:"device_id"`
	PushToken      string `json:"push_token"`
	MessageID      string `json:"message_id"`
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	SenderID       string `json:"sender_id"`
	Preview        string `json:"preview"`
}

// SignWebhook returns the X-Beehive-Signature value of body.
func SignWebhook(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Notify implements Notifier.
func (w *Webhook) Notify(ctx context.Context, t Task) error {
	body, err := json.Marshal(WebhookBody{
		UserID: t.UserID, DeviceID: t.DeviceID, PushToken: t.PushToken, MessageID: t.MessageID,
		ConversationID: t.ConversationID, Seq: t.Seq, SenderID: t.SenderID, Preview: t.Preview,
	})
	if err != nil {
		return Permanent(err)
	}
	sig := SignWebhook(w.cfg.Secret, body)
	return w.cfg.Retry.do(ctx, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
		if err != nil {
			return Permanent(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Beehive-Signature", sig)
		req.Header.Set("Idempotency-Key", t.IdempotencyKey())
		resp, err := w.cfg.Client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return nil
		case resp.StatusCode == http.StatusGone:
			return ErrUnregistered
		default:
			return classify("webhook", resp.StatusCode, "")
		}
	})
}

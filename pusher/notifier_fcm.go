package pusher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// TokenSource yields an OAuth 2 access token for FCM (a Google service
// account's, with scope https://www.googleapis.com/auth/firebase.messaging).
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// StaticToken is a TokenSource that always returns itself (a token minted
// elsewhere, or a test credential).
type StaticToken string

// Token implements TokenSource.
func (s StaticToken) Token(context.Context) (string, error) { return string(s), nil }

// FCMConfig configures the FCM HTTP v1 notifier.
type FCMConfig struct {
	// Endpoint defaults to https://fcm.googleapis.com.
	Endpoint  string
	ProjectID string
	Tokens    TokenSource
	// Title is the notification title (default "New message").
	Title  string
	Client *http.Client
	Retry  Retry
}

// FCM sends pushes through the FCM HTTP v1 API:
// POST {endpoint}/v1/projects/{project}/messages:send.
type FCM struct {
	cfg FCMConfig
	url string
}

var _ Notifier = (*FCM)(nil)

// NewFCM returns an FCM notifier.
func NewFCM(cfg FCMConfig) (*FCM, error) {
	if cfg.ProjectID == "" {
		return nil, errors.New("pusher: fcm project id is required")
	}
	if cfg.Tokens == nil {
		return nil, errors.New("pusher: fcm token source is required")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "https://fcm.googleapis.com"
	}
	if cfg.Title == "" {
		cfg.Title = "New message"
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	u := strings.TrimRight(cfg.Endpoint, "/") + "/v1/projects/" + url.PathEscape(cfg.ProjectID) + "/messages:send"
	return &FCM{cfg: cfg, url: u}, nil
}

// FCMRequest is the FCM v1 send body.
type FCMRequest struct {
	Message FCMMessage `json:"message"`
}

// FCMMessage is the FCM v1 message (the fields Beehive sets).
type FCMMessage struct {
	Token        string            `json:"token"`
	Notification FCMNotification   `json:"notification"`
	Data         map[string]string `json:"data"`
}

// FCMNotification is the visible part of an FCM message.
type FCMNotification struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// Notify implements Notifier.
func (f *FCM) Notify(ctx context.Context, t Task) error {
	body, err := json.Marshal(FCMRequest{Message: FCMMessage{
		Token:        t.PushToken,
		Notification: FCMNotification{Title: f.cfg.Title, Body: t.Preview},
		// FCM data values must be strings.
		Data: map[string]string{
			"message_id":      t.MessageID,
			"conversation_id": t.ConversationID,
			"seq":             strconv.FormatInt(t.Seq, 10),
			"sender_id":       t.SenderID,
		},
	}})
	if err != nil {
		return Permanent(err)
	}
	return f.cfg.Retry.do(ctx, func(ctx context.Context) error {
		tok, err := f.cfg.Tokens.Token(ctx)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
		if err != nil {
			return Permanent(err)
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := f.cfg.Client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return nil
		}
		return fcmError(resp.StatusCode, raw)
	})
}

// fcmError classifies an FCM v1 error answer: UNREGISTERED (and a 404)
// means the token is gone; an expired access token (401) is worth a retry
// with a fresh one.
func fcmError(status int, raw []byte) error {
	var e struct {
		Error struct {
			Status  string `json:"status"`
			Message string `json:"message"`
			Details []struct {
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	_ = json.Unmarshal(raw, &e)
	reason := e.Error.Status
	for _, d := range e.Error.Details {
		if d.ErrorCode != "" {
			reason = d.ErrorCode
		}
	}
	switch {
	case reason == "UNREGISTERED" || status == http.StatusNotFound:
		return errors.Join(ErrUnregistered, &statusError{Provider: "fcm", Status: status, Reason: reason})
	case status == http.StatusUnauthorized:
		return &statusError{Provider: "fcm", Status: status, Reason: reason}
	}
	return classify("fcm", status, reason)
}

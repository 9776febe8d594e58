// Package presence knows who is online: user -> live sessions (one per
// socket: gateway id, connection id, device, since), kept alive by
// heartbeats and expired after a TTL. The first session of a user coming up
// and the last one going away (closed or expired) publish
// events.PresenceChanged, which the pusher turns into `presence` frames for
// friends.
package presence

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
)

// MaxBatch is the most user ids one query may name.
const MaxBatch = 200

// Service is the presence service.
type Service interface {
	// UserOnline registers (or refreshes) one live session. Internal.
	UserOnline(ctx context.Context, s Session) error
	// UserOffline removes the session connID of userID. Internal; removing
	// an unknown session is not an error.
	UserOffline(ctx context.Context, userID, connID string) error
	// Heartbeat extends the session's life by the TTL. It fails with
	// not_found when the session is unknown or already expired, so the
	// caller registers it again. Internal.
	Heartbeat(ctx context.Context, userID, connID string) error
	// GetUserPresence returns one entry per distinct id, in request order.
	GetUserPresence(ctx context.Context, userIDs []string) ([]UserPresence, error)
	// IsUserOnline reports whether userID has a live session.
	IsUserOnline(ctx context.Context, userID string) (bool, error)
	// GetOnlineUsers returns the online subset of userIDs, in request order.
	GetOnlineUsers(ctx context.Context, userIDs []string) ([]string, error)
}

// Session is one live connection of a user.
type Session struct {
	UserID    string    `json:"user_id"`
	GatewayID string    `json:"gateway_id"`
	ConnID    string    `json:"conn_id"`
	DeviceID  string    `json:"device_id"`
	Since     time.Time `json:"since"`
}

// Device is a live session as queries show it.
type Device struct {
	DeviceID string `json:"device_id"`
	// GatewayID and ConnID route deliveries; they are internal and never
	// shown to clients.
	GatewayID string    `json:"-"`
	ConnID    string    `json:"-"`
	Since     time.Time `json:"since"`
}

// UserPresence is one user's presence. LastSeen is the last time the user
// was seen (a session opened, beat or closed); nil when never seen.
type UserPresence struct {
	UserID   string     `json:"user_id"`
	Online   bool       `json:"online"`
	Devices  []Device   `json:"devices"`
	LastSeen *time.Time `json:"last_seen"`
}

// Changed is the Data of an events.PresenceChanged event.
type Changed struct {
	UserID string    `json:"user_id"`
	Online bool      `json:"online"`
	At     time.Time `json:"at"`
}

// ErrSessionNotFound answers a heartbeat for an unknown or expired session.
var ErrSessionNotFound = errs.New(errs.NotFound, "presence session not found or expired")

const maxRefLen = 128

// validRef checks gateway, connection and device references: printable
// UTF-8, bounded.
func validRef(field, s string, required bool, max int) error {
	if s == "" {
		if required {
			return errs.Missing(field)
		}
		return nil
	}
	if len(s) > max {
		return errs.Invalid(field, "is too long")
	}
	if !utf8.ValidString(s) {
		return errs.Invalid(field, "must be UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errs.Invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// ValidateSession checks a session a gateway registers.
func ValidateSession(s Session) error {
	if err := ids.Validate("user_id", s.UserID); err != nil {
		return err
	}
	if err := validRef("gateway_id", s.GatewayID, true, maxRefLen); err != nil {
		return err
	}
	if err := validRef("conn_id", s.ConnID, true, maxRefLen); err != nil {
		return err
	}
	return validRef("device_id", s.DeviceID, false, 64)
}

// ValidateUserIDs checks a batch query and returns its distinct ids in order.
func ValidateUserIDs(userIDs []string) ([]string, error) {
	if len(userIDs) == 0 {
		return nil, errs.Missing("user_ids")
	}
	seen := make(map[string]struct{}, len(userIDs))
	out := make([]string, 0, len(userIDs))
	for _, id := range userIDs {
		if !ids.Valid(id) {
			return nil, errs.Invalid("user_ids", "contains an invalid id")
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	if len(out) > MaxBatch {
		return nil, errs.Invalid("user_ids", "at most 200 ids per query")
	}
	return out, nil
}

package presence

import (
	"context"
	"time"
)

// Backend stores sessions with expiry. Every method takes now so expiry is
// decided by the service's clock, and reports the transitions the service
// turns into events. Implementations must make each method atomic per user
// (the memory backend locks; a Redis backend runs one Lua script).
type Backend interface {
	// Add stores s (replacing a session with the same ConnID) live until
	// expiresAt, first dropping the user's sessions expired at now. came is
	// true when the user had no live session before.
	Add(ctx context.Context, s Session, expiresAt, now time.Time) (came bool, err error)
	// Remove drops the session and records now as last seen. left is true
	// when it removed the user's last live session.
	Remove(ctx context.Context, userID, connID string, now time.Time) (left bool, err error)
	// Touch moves a live session's expiry to expiresAt and records now as
	// last seen; found is false when the session is unknown or expired.
	Touch(ctx context.Context, userID, connID string, expiresAt, now time.Time) (found bool, err error)
	// Get returns the live sessions (expiry after now, ordered by Since then
	// ConnID) and last-seen time of each user that has either.
	Get(ctx context.Context, userIDs []string, now time.Time) (map[string]Record, error)
	// Expire drops every session expired at now and returns the users whose
	// last live session that was (each once).
	Expire(ctx context.Context, now time.Time) (left []string, err error)
}

// Record is what a backend knows of one user.
type Record struct {
	Sessions []Session
	// LastSeen is zero when never seen.
	LastSeen time.Time
}

package auth

import (
	"context"
	"sort"
	"time"
)

// Store keeps sessions (refresh-token families) and their revocation.
// Every write that an answer depends on — a new session, a rotation, a
// revocation — is durable before the method returns, so a restart brings
// no revoked session back to life. Backends: Pebble (embedded), Redis
// later; both pass auth/storetest.
type Store interface {
	// CreateSession stores a new session; already_exists if its id is taken.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session, or ErrSessionNotFound.
	GetSession(ctx context.Context, id string) (Session, error)
	// ListSessions returns every session of userID (revoked ones too),
	// oldest first.
	ListSessions(ctx context.Context, userID string) ([]Session, error)
	// RotateRefresh atomically compares and rotates a session's refresh
	// token: when presentedHash is the current hash of a live session it
	// becomes spent, newHash becomes current, Generation grows by one and
	// ExpiresAt becomes expiresAt. When presentedHash is a spent hash of
	// the session, the session is revoked (at now) and ErrRefreshReused is
	// returned. Otherwise: ErrSessionRevoked, ErrSessionExpired (current
	// token past ExpiresAt at now) or ErrInvalidRefresh (unknown session
	// or hash). Two concurrent rotations of one token: exactly one wins,
	// the other sees a spent token.
	RotateRefresh(ctx context.Context, sessionID, presentedHash, newHash string, now, expiresAt time.Time) (Session, error)
	// RevokeSession marks the session revoked at at (idempotent: a revoked
	// session keeps its first RevokedAt). ErrSessionNotFound if absent.
	RevokeSession(ctx context.Context, id string, at time.Time) (Session, error)
	// RevokeUserSessions revokes every live session of userID except
	// exceptID ("" = none) in one durable write, and returns the ids it
	// revoked.
	RevokeUserSessions(ctx context.Context, userID, exceptID string, at time.Time) ([]string, error)
	RevocationChecker
}

// RevocationChecker answers whether a session may no longer act. An
// unknown session counts as revoked: a validly signed token whose session
// is gone must not pass.
type RevocationChecker interface {
	IsRevoked(ctx context.Context, sessionID string) (bool, error)
}

// sortSessions orders sessions oldest first (ids break ties).
func sortSessions(ss []Session) {
	sort.Slice(ss, func(i, j int) bool {
		if !ss[i].CreatedAt.Equal(ss[j].CreatedAt) {
			return ss[i].CreatedAt.Before(ss[j].CreatedAt)
		}
		return ss[i].ID < ss[j].ID
	})
}

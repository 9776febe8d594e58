// Package auth owns sessions and tokens: login with a password, JWT access
// tokens signed with an Ed25519 key set (kid), opaque refresh tokens that
// rotate on every use (a spent one revokes its whole session), logout,
// password change, revocation, and ValidateToken. Any service verifies
// access tokens locally with a Verifier over the public keys (JWKS at
// GET /v1/auth/keys) and a RevocationChecker.
//
// Accounts belong to the user service; auth reads them through its own
// small Accounts interface and never imports package user.
package auth

import (
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/password"
)

// Service is the auth service. Methods that act for a user take that user's
// id (and session) explicitly; the endpoint layer fills them from the
// caller's token, so a user can never act for someone else.
type Service interface {
	// Login checks the password of the account named by id or email and
	// starts a session (one refresh-token family) on the device.
	Login(ctx context.Context, in Credentials) (Tokens, error)
	// RefreshToken rotates a refresh token: it returns a new pair and the
	// presented token stops working. Presenting a spent token of a session
	// revokes that session.
	RefreshToken(ctx context.Context, refreshToken string) (Tokens, error)
	// ValidateToken checks an access token (signature, algorithm, key,
	// expiry, issuer, revocation) and returns who holds it. Internal.
	ValidateToken(ctx context.Context, accessToken string) (identity.Principal, error)
	// RevokeToken revokes one session (SessionID) or, with only UserID,
	// every session of that user. ActorID "" means an internal caller,
	// who may revoke anyone's; a user may revoke only their own.
	RevokeToken(ctx context.Context, actorID string, r Revocation) error
	// Logout revokes sessionID of userID, or every session of userID when
	// all is set.
	Logout(ctx context.Context, userID, sessionID string, all bool) error
	// ChangePassword verifies the old password, stores the new one and
	// revokes every session of userID except keepSessionID.
	ChangePassword(ctx context.Context, userID, keepSessionID string, in PasswordChange) error
	// Keys returns the public keys that verify access tokens, as a JWKS.
	Keys(ctx context.Context) (JWKS, error)
}

// Credentials is the input of Login: exactly one of ID and Email.
type Credentials struct {
	ID       string `json:"id,omitempty"`
	Email    string `json:"email,omitempty"`
	Password string `json:"password"`
	DeviceID string `json:"device_id,omitempty"`
	// ClientIP keys the per-IP login limit; set by the endpoint layer from
	// the transport, never from a client's say-so.
	ClientIP string `json:"-"`
}

// Tokens is the answer of Login and RefreshToken, as PROTOCOL.md shows it
// (user is present on login only), plus the session and device the tokens
// belong to (the device id is the server's when the client sent none).
type Tokens struct {
	AccessToken  string          `json:"access_token"`
	RefreshToken string          `json:"refresh_token"`
	TokenType    string          `json:"token_type"`
	ExpiresIn    int64           `json:"expires_in"`
	SessionID    string          `json:"session_id"`
	DeviceID     string          `json:"device_id"`
	User         json.RawMessage `json:"user,omitempty"`
}

// Revocation names what RevokeToken revokes: SessionID, or, when it is
// empty, every session of UserID.
type Revocation struct {
	SessionID string `json:"session_id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
}

// PasswordChange is the body of PUT /v1/auth/password.
type PasswordChange struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

// Account is what auth needs of a user account. Profile is the user object
// Login returns, verbatim.
type Account struct {
	UserID       string
	PasswordHash string
	Profile      json.RawMessage
}

// Accounts reads and updates accounts in the user service. The lead wires
// an adapter over user.Service; tests use an in-memory map.
type Accounts interface {
	// LookupAccount finds the account whose id or email is idOrEmail; an
	// errs NotFound error when there is none.
	LookupAccount(ctx context.Context, idOrEmail string) (Account, error)
	// SetPasswordHash replaces the account's password hash.
	SetPasswordHash(ctx context.Context, userID, hash string) error
}

// Domain errors. Wrong password and unknown account are the same error, so
// a client cannot tell which accounts exist.
var (
	ErrInvalidCredentials = errs.New(errs.Unauthenticated, "invalid credentials")
	ErrInvalidToken       = errs.New(errs.Unauthenticated, "invalid token")
	ErrTokenExpired       = errs.New(errs.Unauthenticated, "token expired")
	ErrSessionRevoked     = errs.New(errs.Unauthenticated, "session revoked")
	ErrInvalidRefresh     = errs.New(errs.Unauthenticated, "invalid refresh token")
	ErrRefreshReused      = errs.New(errs.Unauthenticated, "refresh token already used: session revoked")
	ErrSessionExpired     = errs.New(errs.Unauthenticated, "session expired")
	ErrSessionNotFound    = errs.New(errs.NotFound, "session not found")
	ErrTooManyLogins      = errs.New(errs.RateLimited, "too many login attempts")
	ErrWrongOldPassword   = errs.Invalid("old_password", "is incorrect")
	ErrNotYourSession     = errs.New(errs.PermissionDenied, "may revoke only your own sessions")
)

// maxAccountBytes bounds the id or email a login names.
const maxAccountBytes = 320

// Validate checks the shape of a login request and names the bad field.
func (c Credentials) Validate() error {
	switch {
	case c.ID == "" && c.Email == "":
		return errs.Missing("email")
	case c.ID != "" && c.Email != "":
		return errs.Invalid("id", "give either email or id, not both")
	case len(c.ID) > maxAccountBytes || !utf8.ValidString(c.ID):
		return errs.Invalid("id", "malformed")
	case len(c.Email) > maxAccountBytes || !utf8.ValidString(c.Email):
		return errs.Invalid("email", "malformed")
	case c.Password == "":
		return errs.Missing("password")
	}
	if c.DeviceID == "" {
		return nil // the server assigns one
	}
	return ids.ValidateDeviceID(c.DeviceID)
}

// Validate checks a password change's fields (minLen for the new one).
func (p PasswordChange) Validate(minLen int) error {
	if p.OldPassword == "" {
		return errs.Missing("old_password")
	}
	if err := password.Validate("new_password", p.NewPassword, minLen); err != nil {
		return err
	}
	if p.NewPassword == p.OldPassword {
		return errs.Invalid("new_password", "must differ from old_password")
	}
	return nil
}

// Session is one login: a refresh-token family on one device.
type Session struct {
	ID       string `json:"id"`
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
	// RefreshHash is the SHA-256 (hex) of the current refresh token; the
	// token itself is never stored.
	RefreshHash string `json:"refresh_hash"`
	// Generation counts rotations (0 at login).
	Generation uint64    `json:"generation"`
	CreatedAt  time.Time `json:"created_at"`
	// ExpiresAt is when the current refresh token stops working.
	ExpiresAt time.Time `json:"expires_at"`
	Revoked   bool      `json:"revoked"`
	RevokedAt time.Time `json:"revoked_at,omitempty"`
}

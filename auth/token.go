package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
)

// Claims are the claims of an access token: sub = user id, sid = session
// id, did = device id, plus iss, iat, exp and jti.
type Claims struct {
	SessionID string `json:"sid"`
	DeviceID  string `json:"did"`
	jwt.RegisteredClaims
}

// signAccess issues an access token for sess valid for ttl from now.
func signAccess(keys *KeySet, issuer string, sess Session, now time.Time, ttl time.Duration) (string, error) {
	kid, priv, ok := keys.signer()
	if !ok {
		return "", errs.New(errs.Internal, "auth: key set cannot sign")
	}
	claims := Claims{
		SessionID: sess.ID,
		DeviceID:  sess.DeviceID,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sess.UserID,
			Issuer:    issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        ids.NewAt(now),
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(priv)
	if err != nil {
		return "", errs.Wrap(errs.Internal, err, "sign access token")
	}
	return s, nil
}

// maxTokenBytes bounds what a verifier parses.
const maxTokenBytes = 4096

// Verifier checks access tokens locally: EdDSA signature by a key of the
// set (kid header required; alg none and every other alg refused), expiry,
// issuer, and that the session is not revoked. It is the
// identity.Authenticator every service wires into identity.RequireUser.
type Verifier struct {
	keys    *KeySet
	issuer  string
	revoked RevocationChecker
	now     func() time.Time
	parser  *jwt.Parser
}

var _ identity.Authenticator = (*Verifier)(nil)

// NewVerifier returns a verifier over keys (a signing set or a public one
// from JWKS), accepting tokens of issuer. revoked must not be nil: the
// auth Store locally, or anything that answers from the same state. now
// nil means time.Now.
func NewVerifier(keys *KeySet, issuer string, revoked RevocationChecker, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	v := &Verifier{keys: keys, issuer: issuer, revoked: revoked, now: now}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v
}

// Authenticate implements identity.Authenticator.
func (v *Verifier) Authenticate(ctx context.Context, token string) (identity.Principal, error) {
	c, err := v.Parse(token)
	if err != nil {
		return identity.Principal{}, err
	}
	if v.revoked == nil {
		return identity.Principal{}, errs.New(errs.Internal, "auth: verifier has no revocation checker")
	}
	revoked, err := v.revoked.IsRevoked(ctx, c.SessionID)
	if err != nil {
		return identity.Principal{}, err
	}
	if revoked {
		return identity.Principal{}, ErrSessionRevoked
	}
	return identity.Principal{UserID: c.Subject, SessionID: c.SessionID, DeviceID: c.DeviceID}, nil
}

// Parse checks everything but revocation and returns the claims.
func (v *Verifier) Parse(token string) (*Claims, error) {
	if token == "" {
		return nil, identity.ErrNoToken
	}
	if len(token) > maxTokenBytes {
		return nil, ErrInvalidToken
	}
	var c Claims
	_, err := v.parser.ParseWithClaims(token, &c, v.keyFor)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	case err != nil:
		return nil, errs.Wrap(errs.Unauthenticated, err, ErrInvalidToken.Message)
	case c.Subject == "" || c.SessionID == "":
		return nil, ErrInvalidToken
	}
	return &c, nil
}

func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errors.New("missing kid")
	}
	pub, ok := v.keys.PublicKey(kid)
	if !ok {
		return nil, errors.New("unknown kid")
	}
	return pub, nil
}

// Refresh tokens are "<session id>.<base64url of 32 random bytes>": the
// session prefix finds the family, the random part is the secret. Only
// the SHA-256 of the whole token is stored.

const refreshSecretBytes = 32

func newRefreshToken(sessionID string) (token, hash string, err error) {
	var b [refreshSecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", errs.Wrap(errs.Internal, err, "generate refresh token")
	}
	token = sessionID + "." + base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashToken(token), nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// parseRefreshToken returns the session id of a well-formed refresh token.
func parseRefreshToken(token string) (string, bool) {
	sid, secret, ok := strings.Cut(token, ".")
	if !ok || !ids.Valid(sid) {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(b) != refreshSecretBytes {
		return "", false
	}
	return sid, true
}

// Package identity carries who is calling through a context: the raw bearer
// token a transport received, and the Principal an Authenticator derived
// from it. Transports only extract; endpoint middleware authenticates, so
// HTTP, gRPC and in-process calls are checked the same way.
package identity

import (
	"context"
	"crypto/subtle"

	"github.com/go-kit/kit/endpoint"

	"github.com/beehive-im/beehive/shared/errs"
)

// Principal is an authenticated caller.
type Principal struct {
	UserID    string
	SessionID string
	DeviceID  string
	// Service is true for internal callers holding the service credential.
	Service bool
}

// Authenticator turns a bearer token into a Principal (signature, expiry,
// revocation). The auth service provides the implementation.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

type (
	tokenKey        struct{}
	serviceTokenKey struct{}
	principalKey    struct{}
	clientIPKey     struct{}
)

// WithToken stores the user's raw bearer token.
func WithToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, tokenKey{}, token)
}

// Token returns the raw bearer token of ctx.
func Token(ctx context.Context) string { s, _ := ctx.Value(tokenKey{}).(string); return s }

// WithServiceToken stores the internal service credential presented.
func WithServiceToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, serviceTokenKey{}, token)
}

// ServiceToken returns the service credential of ctx.
func ServiceToken(ctx context.Context) string {
	s, _ := ctx.Value(serviceTokenKey{}).(string)
	return s
}

// WithPrincipal stores p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the authenticated principal, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// UserID returns the authenticated user id or "".
func UserID(ctx context.Context) string { p, _ := FromContext(ctx); return p.UserID }

// WithClientIP stores the client's address (for per-IP limits).
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIP returns the client's address or "".
func ClientIP(ctx context.Context) string { s, _ := ctx.Value(clientIPKey{}).(string); return s }

// ErrNoToken is returned when a user endpoint is called without a token.
var ErrNoToken = errs.New(errs.Unauthenticated, "missing bearer token")

// RequireUser authenticates the token in ctx and stores the Principal.
// A principal already in ctx is accepted as is: a user set by a trusted
// in-process caller (the WebSocket gateway, which authenticated the
// socket), or an internal caller whose service credential was verified
// (identity.AsService, grpcx.TrustServiceToken), which then acts for the
// user its request names (Actor).
func RequireUser(a Authenticator) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			if p, ok := FromContext(ctx); ok && (p.UserID != "" || p.Service) {
				return next(ctx, req)
			}
			tok := Token(ctx)
			if tok == "" {
				return nil, ErrNoToken
			}
			p, err := a.Authenticate(ctx, tok)
			if err != nil {
				return nil, err
			}
			return next(WithPrincipal(ctx, p), req)
		}
	}
}

// RequireService admits only callers presenting the shared internal
// credential; user tokens are refused even when valid.
func RequireService(secret string) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			if p, ok := FromContext(ctx); ok && p.Service {
				return next(ctx, req)
			}
			got := ServiceToken(ctx)
			if secret == "" || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
				return nil, errs.New(errs.PermissionDenied, "internal method: service credential required")
			}
			return next(WithPrincipal(ctx, Principal{Service: true}), req)
		}
	}
}

// AsService marks ctx as an in-process internal call (embedded mode wiring).
func AsService(ctx context.Context) context.Context {
	return WithPrincipal(ctx, Principal{Service: true})
}

// Actor returns the user a call acts for: the authenticated user, or, for
// an internal caller holding the service credential, the user the request
// names. A user can never act for someone else.
func Actor(ctx context.Context, requested string) (string, error) {
	p, ok := FromContext(ctx)
	switch {
	case !ok:
		return "", ErrNoToken
	case p.Service:
		if requested == "" {
			return "", errs.Missing("user_id")
		}
		return requested, nil
	default:
		return p.UserID, nil
	}
}

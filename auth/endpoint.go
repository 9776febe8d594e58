package auth

import (
	"context"
	"crypto/subtle"
	"net/http"

	"github.com/go-kit/kit/endpoint"

	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/identity"
)

// Endpoints holds one endpoint per Service method. It also implements
// Service, so a remote auth service (gRPC client endpoints) and a local
// one (server endpoints) are the same to callers.
type Endpoints struct {
	LoginEndpoint          endpoint.Endpoint
	RefreshTokenEndpoint   endpoint.Endpoint
	ValidateTokenEndpoint  endpoint.Endpoint
	RevokeTokenEndpoint    endpoint.Endpoint
	LogoutEndpoint         endpoint.Endpoint
	ChangePasswordEndpoint endpoint.Endpoint
	KeysEndpoint           endpoint.Endpoint
}

var _ Service = Endpoints{}

// MakeServerEndpoints wraps svc. Login, RefreshToken and Keys are open;
// Logout and ChangePassword take the user's bearer token (authn, usually
// the service's own Verifier); ValidateToken requires the service
// credential and refuses user tokens; RevokeToken takes the service
// credential (any session) or a user token (own sessions only). Every
// method gets kit's chain.
func MakeServerEndpoints(svc Service, authn identity.Authenticator, serviceToken string, kit endpointx.Kit) Endpoints {
	user := identity.RequireUser(authn)
	internal := identity.RequireService(serviceToken)
	either := userOrService(authn, serviceToken)
	open := func(next endpoint.Endpoint) endpoint.Endpoint { return next }
	wrap := func(method string, mw endpoint.Middleware, e endpoint.Endpoint) endpoint.Endpoint {
		return kit.Chain("auth", method, mw(e))
	}
	return Endpoints{
		LoginEndpoint:          wrap("Login", open, makeLogin(svc, serviceToken)),
		RefreshTokenEndpoint:   wrap("RefreshToken", open, makeRefreshToken(svc)),
		ValidateTokenEndpoint:  wrap("ValidateToken", internal, makeValidateToken(svc)),
		RevokeTokenEndpoint:    wrap("RevokeToken", either, makeRevokeToken(svc)),
		LogoutEndpoint:         wrap("Logout", user, makeLogout(svc)),
		ChangePasswordEndpoint: wrap("ChangePassword", user, makeChangePassword(svc)),
		KeysEndpoint:           wrap("Keys", open, makeKeys(svc)),
	}
}

// userOrService admits a user token, or, when no user token came, the
// service credential. A user token wins when both came: the gateway
// forwards users' calls through a client that also carries the service
// credential, and must not lend them its powers.
func userOrService(authn identity.Authenticator, serviceToken string) endpoint.Middleware {
	user := identity.RequireUser(authn)
	service := identity.RequireService(serviceToken)
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		u, s := user(next), service(next)
		return func(ctx context.Context, req any) (any, error) {
			if p, ok := identity.FromContext(ctx); ok && (p.UserID != "" || p.Service) {
				return next(ctx, req)
			}
			if identity.Token(ctx) == "" && identity.ServiceToken(ctx) != "" {
				return s(ctx, req)
			}
			return u(ctx, req)
		}
	}
}

// trustedService reports whether ctx carries the service credential (or is
// an in-process internal call).
func trustedService(ctx context.Context, serviceToken string) bool {
	if p, ok := identity.FromContext(ctx); ok && p.Service {
		return true
	}
	got := identity.ServiceToken(ctx)
	return serviceToken != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(serviceToken)) == 1
}

// Requests and responses. Responses carry business errors (Failed), so
// breakers and retries react only to infrastructure failures.

// LoginRequest is the body of POST /v1/auth/login. ClientIP travels from
// the gateway to a remote auth service and is believed only from callers
// holding the service credential; otherwise the transport's peer address
// counts.
type LoginRequest struct {
	Credentials
	ClientIP string `json:"-"`
}

type RefreshTokenRequest struct {
	RefreshToken string `json:"refresh_token"`
}

type ValidateTokenRequest struct {
	Token string `json:"token"`
}

type RevokeTokenRequest struct {
	Revocation
}

// LogoutRequest: the session and user come from the caller's token.
type LogoutRequest struct {
	All       bool   `json:"all,omitempty"`
	UserID    string `json:"-"`
	SessionID string `json:"-"`
}

// ChangePasswordRequest: the user and the session kept come from the
// caller's token.
type ChangePasswordRequest struct {
	PasswordChange
	UserID    string `json:"-"`
	SessionID string `json:"-"`
}

type KeysRequest struct{}

type TokensResponse struct {
	Tokens
	Err error `json:"-"`
}

func (r TokensResponse) Failed() error { return r.Err }

type PrincipalResponse struct {
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id"`
	DeviceID  string `json:"device_id"`
	Err       error  `json:"-"`
}

func (r PrincipalResponse) Failed() error { return r.Err }

type EmptyResponse struct {
	Err error `json:"-"`
}

func (r EmptyResponse) Failed() error   { return r.Err }
func (r EmptyResponse) StatusCode() int { return http.StatusNoContent }

type KeysResponse struct {
	JWKS
	Err error `json:"-"`
}

func (r KeysResponse) Failed() error { return r.Err }

func makeLogin(svc Service, serviceToken string) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(LoginRequest)
		in := req.Credentials
		in.ClientIP = identity.ClientIP(ctx)
		if req.ClientIP != "" && trustedService(ctx, serviceToken) {
			in.ClientIP = req.ClientIP
		}
		t, err := svc.Login(ctx, in)
		return TokensResponse{Tokens: t, Err: err}, nil
	}
}

func makeRefreshToken(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		t, err := svc.RefreshToken(ctx, request.(RefreshTokenRequest).RefreshToken)
		return TokensResponse{Tokens: t, Err: err}, nil
	}
}

func makeValidateToken(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		p, err := svc.ValidateToken(ctx, request.(ValidateTokenRequest).Token)
		return PrincipalResponse{UserID: p.UserID, SessionID: p.SessionID, DeviceID: p.DeviceID, Err: err}, nil
	}
}

func makeRevokeToken(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		p, _ := identity.FromContext(ctx)
		actor := p.UserID
		if p.Service {
			actor = ""
		} else if actor == "" {
			return nil, identity.ErrNoToken
		}
		return EmptyResponse{Err: svc.RevokeToken(ctx, actor, request.(RevokeTokenRequest).Revocation)}, nil
	}
}

func makeLogout(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		p, ok := identity.FromContext(ctx)
		if !ok || p.UserID == "" {
			return nil, identity.ErrNoToken
		}
		return EmptyResponse{Err: svc.Logout(ctx, p.UserID, p.SessionID, request.(LogoutRequest).All)}, nil
	}
}

func makeChangePassword(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		p, ok := identity.FromContext(ctx)
		if !ok || p.UserID == "" {
			return nil, identity.ErrNoToken
		}
		return EmptyResponse{Err: svc.ChangePassword(ctx, p.UserID, p.SessionID, request.(ChangePasswordRequest).PasswordChange)}, nil
	}
}

func makeKeys(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, _ any) (any, error) {
		k, err := svc.Keys(ctx)
		return KeysResponse{JWKS: k, Err: err}, nil
	}
}

// Client side: Endpoints implements Service.

func tokensOf(resp any, err error) (Tokens, error) {
	if err := endpointx.Outcome(resp, err); err != nil {
		return Tokens{}, err
	}
	r, ok := resp.(TokensResponse)
	if !ok {
		return Tokens{}, errs.New(errs.Internal, "auth: unexpected response")
	}
	return r.Tokens, nil
}

func (e Endpoints) Login(ctx context.Context, in Credentials) (Tokens, error) {
	return tokensOf(e.LoginEndpoint(ctx, LoginRequest{Credentials: in, ClientIP: in.ClientIP}))
}

func (e Endpoints) RefreshToken(ctx context.Context, refreshToken string) (Tokens, error) {
	return tokensOf(e.RefreshTokenEndpoint(ctx, RefreshTokenRequest{RefreshToken: refreshToken}))
}

func (e Endpoints) ValidateToken(ctx context.Context, accessToken string) (identity.Principal, error) {
	resp, err := e.ValidateTokenEndpoint(ctx, ValidateTokenRequest{Token: accessToken})
	if err := endpointx.Outcome(resp, err); err != nil {
		return identity.Principal{}, err
	}
	r := resp.(PrincipalResponse)
	return identity.Principal{UserID: r.UserID, SessionID: r.SessionID, DeviceID: r.DeviceID}, nil
}

// RevokeToken: actorID is decided by the server from the caller's
// credentials (service credential: anyone; user token: that user).
func (e Endpoints) RevokeToken(ctx context.Context, _ string, r Revocation) error {
	return endpointx.Outcome(e.RevokeTokenEndpoint(ctx, RevokeTokenRequest{Revocation: r}))
}

// Logout and ChangePassword act for the caller's token; the ids passed
// here are replaced by the server with the token's.
func (e Endpoints) Logout(ctx context.Context, userID, sessionID string, all bool) error {
	return endpointx.Outcome(e.LogoutEndpoint(ctx, LogoutRequest{All: all, UserID: userID, SessionID: sessionID}))
}

func (e Endpoints) ChangePassword(ctx context.Context, userID, keepSessionID string, in PasswordChange) error {
	return endpointx.Outcome(e.ChangePasswordEndpoint(ctx, ChangePasswordRequest{PasswordChange: in, UserID: userID, SessionID: keepSessionID}))
}

func (e Endpoints) Keys(ctx context.Context) (JWKS, error) {
	resp, err := e.KeysEndpoint(ctx, KeysRequest{})
	if err := endpointx.Outcome(resp, err); err != nil {
		return JWKS{}, err
	}
	return resp.(KeysResponse).JWKS, nil
}

// ServiceAuthenticator authenticates tokens by asking svc.ValidateToken
// (a remote auth service through its gRPC client, which carries the
// service credential; or local Endpoints, called as an internal caller).
// Use it where a service cannot check revocation locally.
func ServiceAuthenticator(svc Service) identity.Authenticator {
	return serviceAuthenticator{svc}
}

type serviceAuthenticator struct{ svc Service }

func (a serviceAuthenticator) Authenticate(ctx context.Context, token string) (identity.Principal, error) {
	return a.svc.ValidateToken(identity.AsService(ctx), token)
}

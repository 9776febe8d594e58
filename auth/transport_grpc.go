package auth

import (
	"context"
	"encoding/json"
	"net"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	grpctransport "github.com/go-kit/kit/transport/grpc"
	"github.com/go-kit/log"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/beehive-im/beehive/auth/authpb"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/identity"
)

type grpcServer struct {
	authpb.UnimplementedAuthServiceServer
	login, refresh, validate, revoke, logout, changePassword, keys grpctransport.Handler
}

// NewGRPCServer serves e as authpb.AuthServiceServer. Register it on a
// grpcx.NewServer, whose interceptor puts the caller's credentials into
// the context and maps errors to statuses.
func NewGRPCServer(e Endpoints, logger log.Logger) authpb.AuthServiceServer {
	_ = logger // the grpcx interceptor logs infrastructure failures once
	opts := append(grpcx.ServerOptions(), grpctransport.ServerBefore(peerIP))
	h := func(ep endpoint.Endpoint, dec grpctransport.DecodeRequestFunc, enc grpctransport.EncodeResponseFunc) grpctransport.Handler {
		return grpctransport.NewServer(ep, dec, enc, opts...)
	}
	return &grpcServer{
		login:          h(e.LoginEndpoint, decLoginReq, encTokensResp),
		refresh:        h(e.RefreshTokenEndpoint, decRefreshReq, encTokensResp),
		validate:       h(e.ValidateTokenEndpoint, decValidateReq, encValidateResp),
		revoke:         h(e.RevokeTokenEndpoint, decRevokeReq, encEmpty(func() any { return &authpb.RevokeTokenResponse{} })),
		logout:         h(e.LogoutEndpoint, decLogoutReq, encEmpty(func() any { return &authpb.LogoutResponse{} })),
		changePassword: h(e.ChangePasswordEndpoint, decChangePasswordReq, encEmpty(func() any { return &authpb.ChangePasswordResponse{} })),
		keys:           h(e.KeysEndpoint, decKeysReq, encKeysResp),
	}
}

// peerIP puts the caller's address in the context, for the per-IP login
// limit of callers without the service credential.
func peerIP(ctx context.Context, _ metadata.MD) context.Context {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		host, _, err := net.SplitHostPort(p.Addr.String())
		if err != nil {
			host = p.Addr.String()
		}
		return identity.WithClientIP(ctx, host)
	}
	return ctx
}

func (s *grpcServer) Login(ctx context.Context, r *authpb.LoginRequest) (*authpb.TokensResponse, error) {
	return grpcx.Serve[*authpb.TokensResponse](s.login, ctx, r)
}

func (s *grpcServer) RefreshToken(ctx context.Context, r *authpb.RefreshTokenRequest) (*authpb.TokensResponse, error) {
	return grpcx.Serve[*authpb.TokensResponse](s.refresh, ctx, r)
}

func (s *grpcServer) ValidateToken(ctx context.Context, r *authpb.ValidateTokenRequest) (*authpb.ValidateTokenResponse, error) {
	return grpcx.Serve[*authpb.ValidateTokenResponse](s.validate, ctx, r)
}

func (s *grpcServer) RevokeToken(ctx context.Context, r *authpb.RevokeTokenRequest) (*authpb.RevokeTokenResponse, error) {
	return grpcx.Serve[*authpb.RevokeTokenResponse](s.revoke, ctx, r)
}

func (s *grpcServer) Logout(ctx context.Context, r *authpb.LogoutRequest) (*authpb.LogoutResponse, error) {
	return grpcx.Serve[*authpb.LogoutResponse](s.logout, ctx, r)
}

func (s *grpcServer) ChangePassword(ctx context.Context, r *authpb.ChangePasswordRequest) (*authpb.ChangePasswordResponse, error) {
	return grpcx.Serve[*authpb.ChangePasswordResponse](s.changePassword, ctx, r)
}

func (s *grpcServer) GetKeys(ctx context.Context, r *authpb.GetKeysRequest) (*authpb.GetKeysResponse, error) {
	return grpcx.Serve[*authpb.GetKeysResponse](s.keys, ctx, r)
}

// Server-side codecs. A business error becomes the handler's error, which
// the grpcx interceptor maps to a status with the Beehive code.

func decLoginReq(_ context.Context, r any) (any, error) {
	m := r.(*authpb.LoginRequest)
	return LoginRequest{
		Credentials: Credentials{ID: m.GetId(), Email: m.GetEmail(), Password: m.GetPassword(), DeviceID: m.GetDeviceId()},
		ClientIP:    m.GetClientIp(),
	}, nil
}

func decRefreshReq(_ context.Context, r any) (any, error) {
	return RefreshTokenRequest{RefreshToken: r.(*authpb.RefreshTokenRequest).GetRefreshToken()}, nil
}

func decValidateReq(_ context.Context, r any) (any, error) {
	return ValidateTokenRequest{Token: r.(*authpb.ValidateTokenRequest).GetToken()}, nil
}

func decRevokeReq(_ context.Context, r any) (any, error) {
	m := r.(*authpb.RevokeTokenRequest)
	return RevokeTokenRequest{Revocation: Revocation{SessionID: m.GetSessionId(), UserID: m.GetUserId()}}, nil
}

func decLogoutReq(_ context.Context, r any) (any, error) {
	return LogoutRequest{All: r.(*authpb.LogoutRequest).GetAll()}, nil
}

func decChangePasswordReq(_ context.Context, r any) (any, error) {
	m := r.(*authpb.ChangePasswordRequest)
	return ChangePasswordRequest{PasswordChange: PasswordChange{OldPassword: m.GetOldPassword(), NewPassword: m.GetNewPassword()}}, nil
}

func decKeysReq(context.Context, any) (any, error) { return KeysRequest{}, nil }

func encTokensResp(_ context.Context, resp any) (any, error) {
	r := resp.(TokensResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	return &authpb.TokensResponse{
		AccessToken: r.AccessToken, RefreshToken: r.Tokens.RefreshToken, TokenType: r.TokenType,
		ExpiresIn: r.ExpiresIn, SessionId: r.SessionID, DeviceId: r.DeviceID, UserJson: r.User,
	}, nil
}

func encValidateResp(_ context.Context, resp any) (any, error) {
	r := resp.(PrincipalResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	return &authpb.ValidateTokenResponse{UserId: r.UserID, SessionId: r.SessionID, DeviceId: r.DeviceID}, nil
}

func encEmpty(mk func() any) grpctransport.EncodeResponseFunc {
	return func(_ context.Context, resp any) (any, error) {
		if err := resp.(EmptyResponse).Err; err != nil {
			return nil, err
		}
		return mk(), nil
	}
}

func encKeysResp(_ context.Context, resp any) (any, error) {
	r := resp.(KeysResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	b, err := json.Marshal(r.JWKS)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "encode jwks")
	}
	return &authpb.GetKeysResponse{JwksJson: b}, nil
}

// Client side.

const grpcService = "beehive.auth.v1.AuthService"

// NewGRPCClient returns a Service calling the instances instancer finds,
// through one shared connection per instance, retries and breakers.
// serviceToken is sent with every call (ValidateToken needs it, and it
// makes the auth service believe the client IP the gateway forwards); a
// user token in the context is forwarded too and wins for user methods.
func NewGRPCClient(instancer sd.Instancer, conns *grpcx.Conns, serviceToken string, logger log.Logger) Service {
	return NewGRPCClientEndpoints(grpcx.BalancedClient("auth", grpcService, instancer, conns, serviceToken, logger, grpcx.BalanceOptions{}))
}

// NewGRPCClientEndpoints builds the client Endpoints with mk making each
// method's endpoint.
func NewGRPCClientEndpoints(mk grpcx.ClientEndpoint) Endpoints {
	decTokens := func(_ context.Context, r any) (any, error) {
		m := r.(*authpb.TokensResponse)
		t := Tokens{
			AccessToken: m.GetAccessToken(), RefreshToken: m.GetRefreshToken(), TokenType: m.GetTokenType(),
			ExpiresIn: m.GetExpiresIn(), SessionID: m.GetSessionId(), DeviceID: m.GetDeviceId(),
		}
		if len(m.GetUserJson()) > 0 {
			t.User = json.RawMessage(m.GetUserJson())
		}
		return TokensResponse{Tokens: t}, nil
	}
	empty := func(context.Context, any) (any, error) { return EmptyResponse{}, nil }
	return Endpoints{
		LoginEndpoint: mk("Login", func(ctx context.Context, r any) (any, error) {
			req := r.(LoginRequest)
			ip := req.ClientIP
			if ip == "" {
				ip = identity.ClientIP(ctx) // the gateway's client, from its HTTP request
			}
			return &authpb.LoginRequest{Id: req.ID, Email: req.Email, Password: req.Password, DeviceId: req.DeviceID, ClientIp: ip}, nil
		}, decTokens, authpb.TokensResponse{}),
		RefreshTokenEndpoint: mk("RefreshToken", func(_ context.Context, r any) (any, error) {
			return &authpb.RefreshTokenRequest{RefreshToken: r.(RefreshTokenRequest).RefreshToken}, nil
		}, decTokens, authpb.TokensResponse{}),
		ValidateTokenEndpoint: mk("ValidateToken", func(_ context.Context, r any) (any, error) {
			return &authpb.ValidateTokenRequest{Token: r.(ValidateTokenRequest).Token}, nil
		}, func(_ context.Context, r any) (any, error) {
			m := r.(*authpb.ValidateTokenResponse)
			return PrincipalResponse{UserID: m.GetUserId(), SessionID: m.GetSessionId(), DeviceID: m.GetDeviceId()}, nil
		}, authpb.ValidateTokenResponse{}),
		RevokeTokenEndpoint: mk("RevokeToken", func(_ context.Context, r any) (any, error) {
			req := r.(RevokeTokenRequest)
			return &authpb.RevokeTokenRequest{SessionId: req.SessionID, UserId: req.UserID}, nil
		}, empty, authpb.RevokeTokenResponse{}),
		LogoutEndpoint: mk("Logout", func(_ context.Context, r any) (any, error) {
			return &authpb.LogoutRequest{All: r.(LogoutRequest).All}, nil
		}, empty, authpb.LogoutResponse{}),
		ChangePasswordEndpoint: mk("ChangePassword", func(_ context.Context, r any) (any, error) {
			req := r.(ChangePasswordRequest)
			return &authpb.ChangePasswordRequest{OldPassword: req.OldPassword, NewPassword: req.NewPassword}, nil
		}, empty, authpb.ChangePasswordResponse{}),
		KeysEndpoint: mk("GetKeys", func(context.Context, any) (any, error) {
			return &authpb.GetKeysRequest{}, nil
		}, func(_ context.Context, r any) (any, error) {
			var k JWKS
			if err := json.Unmarshal(r.(*authpb.GetKeysResponse).GetJwksJson(), &k); err != nil {
				return nil, errs.Wrap(errs.Internal, err, "decode jwks")
			}
			return KeysResponse{JWKS: k}, nil
		}, authpb.GetKeysResponse{}),
	}
}

package auth

import (
	"context"
	"net/http"
	"strconv"

	"github.com/go-kit/kit/endpoint"
	httptransport "github.com/go-kit/kit/transport/http"
	"github.com/go-kit/log"
	"github.com/gorilla/mux"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/httpx"
)

// MakeHTTPHandler adds the auth routes of PROTOCOL.md (login, refresh,
// logout, password) and GET /v1/auth/keys (the JWKS) to r. Registration
// belongs to the user service; ValidateToken and RevokeToken have no HTTP
// route.
func MakeHTTPHandler(r *mux.Router, e Endpoints, logger log.Logger) {
	opts := httpx.ServerOptions(logger)
	route := func(method, path string, ep endpoint.Endpoint, dec httptransport.DecodeRequestFunc, enc httptransport.EncodeResponseFunc) {
		r.Methods(method).Path(path).Handler(httptransport.NewServer(ep, dec, enc, opts...))
	}
	route(http.MethodPost, "/v1/auth/login", e.LoginEndpoint, decodeLogin, encodeNoStore)
	route(http.MethodPost, "/v1/auth/refresh", e.RefreshTokenEndpoint, decodeRefresh, encodeNoStore)
	route(http.MethodPost, "/v1/auth/logout", e.LogoutEndpoint, decodeLogout, encodeNoStore)
	route(http.MethodPut, "/v1/auth/password", e.ChangePasswordEndpoint, decodeChangePassword, encodeNoStore)
	route(http.MethodGet, "/v1/auth/keys", e.KeysEndpoint, decodeKeys, encodeKeys)
}

// encodeNoStore keeps tokens out of caches.
func encodeNoStore(ctx context.Context, w http.ResponseWriter, resp any) error {
	w.Header().Set("Cache-Control", "no-store")
	return httpx.EncodeResponse(ctx, w, resp)
}

// encodeKeys lets verifiers cache the key set briefly; a new key is
// published before it signs anything.
func encodeKeys(ctx context.Context, w http.ResponseWriter, resp any) error {
	w.Header().Set("Cache-Control", "public, max-age=300")
	return httpx.EncodeResponse(ctx, w, resp)
}

func decodeLogin(_ context.Context, r *http.Request) (any, error) {
	var req LoginRequest
	if err := httpx.DecodeJSON(r, &req.Credentials); err != nil {
		return nil, err
	}
	if err := req.Credentials.Validate(); err != nil {
		return nil, err
	}
	return req, nil
}

func decodeRefresh(_ context.Context, r *http.Request) (any, error) {
	var req RefreshTokenRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	if req.RefreshToken == "" {
		return nil, errs.Missing("refresh_token")
	}
	return req, nil
}

func decodeLogout(_ context.Context, r *http.Request) (any, error) {
	var req LogoutRequest
	if s := r.URL.Query().Get("all"); s != "" {
		all, err := strconv.ParseBool(s)
		if err != nil {
			return nil, errs.Invalid("all", "must be true or false")
		}
		req.All = all
	}
	return req, nil
}

func decodeChangePassword(_ context.Context, r *http.Request) (any, error) {
	var req ChangePasswordRequest
	if err := httpx.DecodeJSON(r, &req.PasswordChange); err != nil {
		return nil, err
	}
	if req.OldPassword == "" {
		return nil, errs.Missing("old_password")
	}
	if req.NewPassword == "" {
		return nil, errs.Missing("new_password")
	}
	return req, nil
}

func decodeKeys(context.Context, *http.Request) (any, error) { return KeysRequest{}, nil }

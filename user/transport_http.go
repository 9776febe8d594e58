package user

import (
	"context"
	"net/http"
	"strconv"

	httptransport "github.com/go-kit/kit/transport/http"
	"github.com/go-kit/log"
	"github.com/gorilla/mux"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/ids"
)

// MakeHTTPHandler adds the PROTOCOL.md routes of accounts (register,
// users/me, users/{id}) and of friends and blocks to r. The internal
// methods have no HTTP route.
func MakeHTTPHandler(r *mux.Router, e Endpoints, logger log.Logger) {
	opts := httpx.ServerOptions(logger)
	route := func(method, path string, ep endpointFunc, dec httptransport.DecodeRequestFunc) {
		r.Methods(method).Path(path).Handler(httptransport.NewServer(ep, dec, httpx.EncodeResponse, opts...))
	}
	route(http.MethodPost, "/v1/auth/register", e.RegisterEndpoint, decodeRegister)
	// /me before /{id}: "me" is a well-formed id.
	route(http.MethodGet, "/v1/users/me", e.GetUserEndpoint, decodeGetMe)
	route(http.MethodPatch, "/v1/users/me", e.UpdateUserEndpoint, decodeUpdateMe)
	route(http.MethodGet, "/v1/users/{id}", e.GetUserEndpoint, decodeGetUser)

	route(http.MethodPost, "/v1/friends/requests", e.SendFriendRequestEndpoint, decodeSendFriendRequest)
	route(http.MethodGet, "/v1/friends/requests", e.ListFriendRequestsEndpoint, decodeNoBody)
	route(http.MethodPost, "/v1/friends/requests/{id}/accept", e.AcceptFriendRequestEndpoint, decodeRequestAction)
	route(http.MethodPost, "/v1/friends/requests/{id}/decline", e.DeclineFriendRequestEndpoint, decodeRequestAction)
	route(http.MethodGet, "/v1/friends", e.ListFriendsEndpoint, decodeList)
	route(http.MethodDelete, "/v1/friends/{user_id}", e.RemoveFriendEndpoint, decodePair)

	route(http.MethodPut, "/v1/blocks/{user_id}", e.BlockEndpoint, decodePair)
	route(http.MethodDelete, "/v1/blocks/{user_id}", e.UnblockEndpoint, decodePair)
	route(http.MethodGet, "/v1/blocks", e.ListBlocksEndpoint, decodeList)
}

type endpointFunc = func(context.Context, any) (any, error)

func decodeRegister(_ context.Context, r *http.Request) (any, error) {
	var req RegisterRequest
	if err := httpx.DecodeJSON(r, &req.Registration); err != nil {
		return nil, err
	}
	return req, nil
}

func decodeGetMe(context.Context, *http.Request) (any, error) { return GetUserRequest{}, nil }

func decodeUpdateMe(_ context.Context, r *http.Request) (any, error) {
	var req UpdateUserRequest
	if err := httpx.DecodeJSON(r, &req.ProfileUpdate); err != nil {
		return nil, err
	}
	return req, nil
}

func decodeGetUser(_ context.Context, r *http.Request) (any, error) {
	id := httpx.Var(r, "id")
	if err := ids.Validate("id", id); err != nil {
		return nil, err
	}
	return GetUserRequest{UserID: id}, nil
}

func decodeSendFriendRequest(_ context.Context, r *http.Request) (any, error) {
	var body struct {
		UserID  string `json:"user_id"`
		Message string `json:"message"`
	}
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	return SendFriendRequestRequest{ToUserID: body.UserID, Message: body.Message}, nil
}

func decodeNoBody(context.Context, *http.Request) (any, error) { return ListRequest{}, nil }

func decodeRequestAction(_ context.Context, r *http.Request) (any, error) {
	id := httpx.Var(r, "id")
	if err := ids.Validate("id", id); err != nil {
		return nil, err
	}
	return FriendRequestActionRequest{RequestID: id}, nil
}

func decodePair(_ context.Context, r *http.Request) (any, error) {
	id := httpx.Var(r, "user_id")
	if err := ids.Validate("user_id", id); err != nil {
		return nil, err
	}
	return PairRequest{OtherID: id}, nil
}

func decodeList(_ context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	req := ListRequest{Cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, errs.Invalid("limit", "must be a positive integer")
		}
		req.Limit = min(n, MaxPageSize)
	}
	return req, nil
}

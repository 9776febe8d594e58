package group

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

// MakeHTTPHandler adds the Groups routes of PROTOCOL.md to r.
func MakeHTTPHandler(r *mux.Router, e Endpoints, logger log.Logger) {
	opts := httpx.ServerOptions(logger)
	route := func(method, path string, ep endpoint.Endpoint, dec httptransport.DecodeRequestFunc) {
		r.Methods(method).Path(path).Handler(httptransport.NewServer(ep, dec, httpx.EncodeResponse, opts...))
	}
	route(http.MethodPost, "/v1/groups", e.CreateGroupEndpoint, decodeCreate)
	route(http.MethodGet, "/v1/groups", e.ListMyGroupsEndpoint, decodeListMyGroups)
	route(http.MethodGet, "/v1/groups/{id}", e.GetGroupEndpoint, decodeGroup)
	route(http.MethodPatch, "/v1/groups/{id}", e.UpdateGroupEndpoint, decodeUpdate)
	route(http.MethodDelete, "/v1/groups/{id}", e.DissolveGroupEndpoint, decodeGroup)
	route(http.MethodGet, "/v1/groups/{id}/members", e.ListMembersEndpoint, decodeListMembers)
	route(http.MethodPost, "/v1/groups/{id}/members", e.AddMembersEndpoint, decodeAddMembers)
	route(http.MethodDelete, "/v1/groups/{id}/members/{user_id}", e.RemoveMemberEndpoint, decodeRemoveMember)
	route(http.MethodPut, "/v1/groups/{id}/members/{user_id}/role", e.SetRoleEndpoint, decodeSetRole)
	route(http.MethodPut, "/v1/groups/{id}/members/{user_id}/mute", e.MuteMemberEndpoint, decodeMuteMember)
	route(http.MethodPost, "/v1/groups/{id}/transfer", e.TransferOwnershipEndpoint, decodeTransfer)
	route(http.MethodPut, "/v1/groups/{id}/mute", e.MuteAllEndpoint, decodeMuteAll)
}

// pageQuery reads ?cursor&limit; the service checks their values.
func pageQuery(r *http.Request) (cursor string, limit int, err error) {
	q := r.URL.Query()
	cursor = q.Get("cursor")
	if s := q.Get("limit"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 {
			return "", 0, errs.Invalid("limit", "must be an integer between 1 and 200")
		}
		limit = n
	}
	return cursor, limit, nil
}

func decodeCreate(_ context.Context, r *http.Request) (any, error) {
	var in CreateInput
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	return CreateGroupRequest{CreateInput: in}, nil
}

func decodeListMyGroups(_ context.Context, r *http.Request) (any, error) {
	cursor, limit, err := pageQuery(r)
	if err != nil {
		return nil, err
	}
	return ListMyGroupsRequest{Cursor: cursor, Limit: limit}, nil
}

func decodeGroup(_ context.Context, r *http.Request) (any, error) {
	return GroupRequest{GroupID: httpx.Var(r, "id")}, nil
}

func decodeUpdate(_ context.Context, r *http.Request) (any, error) {
	var u Update
	if err := httpx.DecodeJSON(r, &u); err != nil {
		return nil, err
	}
	return UpdateGroupRequest{GroupID: httpx.Var(r, "id"), Update: u}, nil
}

func decodeListMembers(_ context.Context, r *http.Request) (any, error) {
	cursor, limit, err := pageQuery(r)
	if err != nil {
		return nil, err
	}
	return ListMembersRequest{GroupID: httpx.Var(r, "id"), Cursor: cursor, Limit: limit}, nil
}

func decodeAddMembers(_ context.Context, r *http.Request) (any, error) {
	var body struct {
		UserIDs []string `json:"user_ids"`
	}
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	return AddMembersRequest{GroupID: httpx.Var(r, "id"), UserIDs: body.UserIDs}, nil
}

func decodeRemoveMember(_ context.Context, r *http.Request) (any, error) {
	return MemberRequest{GroupID: httpx.Var(r, "id"), UserID: httpx.Var(r, "user_id")}, nil
}

func decodeSetRole(_ context.Context, r *http.Request) (any, error) {
	var body struct {
		Role Role `json:"role"`
	}
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	return SetRoleRequest{GroupID: httpx.Var(r, "id"), UserID: httpx.Var(r, "user_id"), Role: body.Role}, nil
}

func decodeMuteMember(_ context.Context, r *http.Request) (any, error) {
	var body struct {
		Seconds *int64 `json:"seconds"`
	}
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	if body.Seconds == nil {
		return nil, errs.Missing("seconds")
	}
	return MuteMemberRequest{GroupID: httpx.Var(r, "id"), UserID: httpx.Var(r, "user_id"), Seconds: *body.Seconds}, nil
}

func decodeTransfer(_ context.Context, r *http.Request) (any, error) {
	var body struct {
		UserID string `json:"user_id"`
	}
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	return MemberRequest{GroupID: httpx.Var(r, "id"), UserID: body.UserID}, nil
}

func decodeMuteAll(_ context.Context, r *http.Request) (any, error) {
	var body struct {
		Muted *bool `json:"muted"`
	}
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	if body.Muted == nil {
		return nil, errs.Missing("muted")
	}
	return MuteAllRequest{GroupID: httpx.Var(r, "id"), Muted: *body.Muted}, nil
}

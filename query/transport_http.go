package query

import (
	"context"
	"math"
	"net/http"
	"strconv"

	httptransport "github.com/go-kit/kit/transport/http"
	"github.com/go-kit/log"
	"github.com/gorilla/mux"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/httpx"
)

// MakeHTTPHandler adds the read side's PROTOCOL.md routes to r:
//
//	GET /v1/conversations?cursor&limit              -> {conversations, next_cursor}
//	GET /v1/conversations/{id}                      -> {conversation}
//	PUT /v1/conversations/{id}/settings {muted?, pinned?} -> {conversation}
//	GET /v1/conversations/{id}/messages?before_seq|after_seq&limit -> {messages, has_more}
//
// (POST /v1/conversations/{id}/read belongs to the message package.)
func MakeHTTPHandler(r *mux.Router, e Endpoints, logger log.Logger) {
	opts := httpx.ServerOptions(logger)
	r.Methods(http.MethodGet).Path("/v1/conversations").Handler(httptransport.NewServer(
		e.ConversationsEndpoint, decodeConversations, httpx.EncodeResponse, opts...))
	r.Methods(http.MethodGet).Path("/v1/conversations/{id}").Handler(httptransport.NewServer(
		e.ConversationEndpoint, decodeConversation, httpx.EncodeResponse, opts...))
	r.Methods(http.MethodPut).Path("/v1/conversations/{id}/settings").Handler(httptransport.NewServer(
		e.UpdateSettingsEndpoint, decodeUpdateSettings, httpx.EncodeResponse, opts...))
	r.Methods(http.MethodGet).Path("/v1/conversations/{id}/messages").Handler(httptransport.NewServer(
		e.HistoryEndpoint, decodeHistory, httpx.EncodeResponse, opts...))
}

// queryInt parses an optional integer query parameter.
func queryInt(r *http.Request, name string) (*int64, error) {
	vals, ok := r.URL.Query()[name]
	if !ok {
		return nil, nil
	}
	if len(vals) != 1 {
		return nil, errs.Invalid(name, "must be given once")
	}
	n, err := strconv.ParseInt(vals[0], 10, 64)
	if err != nil {
		return nil, errs.Invalid(name, "must be an integer")
	}
	if n < 0 {
		return nil, errs.Invalid(name, "must not be negative")
	}
	return &n, nil
}

// queryLimit parses limit: absent means the default (0); present, it must
// be at least 1. The service refuses one above its configured maximum.
func queryLimit(r *http.Request) (int, error) {
	n, err := queryInt(r, "limit")
	if err != nil || n == nil {
		return 0, err
	}
	if *n < 1 {
		return 0, errs.Invalid("limit", "must be at least 1")
	}
	return int(min(*n, math.MaxInt32)), nil
}

func conversationVar(r *http.Request) (string, error) {
	id := httpx.Var(r, "id")
	if err := ValidateConversationID("id", id); err != nil {
		return "", err
	}
	return id, nil
}

func decodeConversations(_ context.Context, r *http.Request) (any, error) {
	limit, err := queryLimit(r)
	if err != nil {
		return nil, err
	}
	return ConversationsRequest{Cursor: r.URL.Query().Get("cursor"), Limit: limit}, nil
}

func decodeConversation(_ context.Context, r *http.Request) (any, error) {
	id, err := conversationVar(r)
	if err != nil {
		return nil, err
	}
	return ConversationRequest{ConversationID: id}, nil
}

func decodeUpdateSettings(_ context.Context, r *http.Request) (any, error) {
	id, err := conversationVar(r)
	if err != nil {
		return nil, err
	}
	var body struct {
		Muted  *bool `json:"muted"`
		Pinned *bool `json:"pinned"`
	}
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	return UpdateSettingsRequest{ConversationID: id, Muted: body.Muted, Pinned: body.Pinned}, nil
}

func decodeHistory(_ context.Context, r *http.Request) (any, error) {
	id, err := conversationVar(r)
	if err != nil {
		return nil, err
	}
	before, err := queryInt(r, "before_seq")
	if err != nil {
		return nil, err
	}
	after, err := queryInt(r, "after_seq")
	if err != nil {
		return nil, err
	}
	if before != nil && after != nil {
		return nil, errs.Invalid("before_seq", "cannot be combined with after_seq")
	}
	limit, err := queryLimit(r)
	if err != nil {
		return nil, err
	}
	return HistoryRequest{ConversationID: id, BeforeSeq: before, AfterSeq: after, Limit: limit}, nil
}

package message

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/go-kit/kit/endpoint"
	httptransport "github.com/go-kit/kit/transport/http"
	"github.com/go-kit/log"
	"github.com/gorilla/mux"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/httpx"
)

// MakeHTTPHandler adds the message routes of PROTOCOL.md to r:
// POST /v1/messages, POST /v1/messages/{id}/recall,
// POST /v1/conversations/{id}/read.
func MakeHTTPHandler(r *mux.Router, e Endpoints, logger log.Logger) {
	opts := httpx.ServerOptions(logger)
	route := func(method, path string, ep endpoint.Endpoint, dec httptransport.DecodeRequestFunc) {
		r.Methods(method).Path(path).Handler(httptransport.NewServer(ep, dec, httpx.EncodeResponse, opts...))
	}
	// One route for both kinds: the body names to_user_id or group_id.
	send := func(ctx context.Context, req any) (any, error) {
		if req.(SendMessageRequest).GroupID != "" {
			return e.SendGroupMessageEndpoint(ctx, req)
		}
		return e.SendMessageEndpoint(ctx, req)
	}
	route(http.MethodPost, "/v1/messages", send, decodeSend)
	route(http.MethodPost, "/v1/messages/{id}/recall", e.RecallEndpoint, decodeRecall)
	route(http.MethodPost, "/v1/conversations/{id}/read", e.MarkAsReadEndpoint, decodeRead)
}

// sendBody is what a client may post; the sender is the token's user.
type sendBody struct {
	ToUserID    string          `json:"to_user_id"`
	GroupID     string          `json:"group_id"`
	ClientMsgID string          `json:"client_msg_id"`
	Type        string          `json:"type"`
	Content     json.RawMessage `json:"content"`
	Mentions    []string        `json:"mentions"`
}

func decodeSend(_ context.Context, r *http.Request) (any, error) {
	var b sendBody
	if err := httpx.DecodeJSON(r, &b); err != nil {
		return nil, err
	}
	if b.ToUserID == "" && b.GroupID == "" {
		return nil, errs.Invalid("to_user_id", "give to_user_id or group_id")
	}
	if b.ToUserID != "" && b.GroupID != "" {
		return nil, errs.Invalid("group_id", "give either to_user_id or group_id, not both")
	}
	return SendMessageRequest{SendRequest: SendRequest{
		ToUserID: b.ToUserID, GroupID: b.GroupID, ClientMsgID: b.ClientMsgID,
		Type: b.Type, Content: b.Content, Mentions: b.Mentions,
	}}, nil
}

func decodeRecall(_ context.Context, r *http.Request) (any, error) {
	if err := httpx.DecodeOptionalJSON(r, &struct{}{}); err != nil {
		return nil, err
	}
	return RecallRequest{MessageID: httpx.Var(r, "id")}, nil
}

func decodeRead(_ context.Context, r *http.Request) (any, error) {
	var b struct {
		Seq *int64 `json:"seq"`
	}
	if err := httpx.DecodeJSON(r, &b); err != nil {
		return nil, err
	}
	if b.Seq == nil {
		return nil, errs.Missing("seq")
	}
	return MarkAsReadRequest{ConversationID: httpx.Var(r, "id"), Seq: *b.Seq}, nil
}

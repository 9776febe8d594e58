package query

import (
	"context"

	"github.com/go-kit/kit/endpoint"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/identity"
)

// Endpoints holds one endpoint per Service method. It also implements
// Service, so a remote query service (gRPC client endpoints) and a local one
// (server endpoints) are the same to callers.
type Endpoints struct {
	HistoryEndpoint        endpoint.Endpoint
	SyncEndpoint           endpoint.Endpoint
	ConversationsEndpoint  endpoint.Endpoint
	ConversationEndpoint   endpoint.Endpoint
	UpdateSettingsEndpoint endpoint.Endpoint
	UnreadEndpoint         endpoint.Endpoint
	GetMessageEndpoint     endpoint.Endpoint
	AckEndpoint            endpoint.Endpoint
	AckedEndpoint          endpoint.Endpoint
}

var _ Service = Endpoints{}

// MakeServerEndpoints wraps svc: user methods take an authenticated user
// (who acts for themself) or the service credential; internal ones
// (GetMessage, Ack, Acked) only the service credential. Internal callers act
// for the user the request names. Every method gets kit's chain.
func MakeServerEndpoints(svc Service, authn identity.Authenticator, serviceToken string, kit endpointx.Kit) Endpoints {
	internal := identity.RequireService(serviceToken)
	user := userOrService(authn, serviceToken)
	wrap := func(method string, mw endpoint.Middleware, e endpoint.Endpoint) endpoint.Endpoint {
		return kit.Chain("query", method, mw(e))
	}
	return Endpoints{
		HistoryEndpoint:        wrap("History", user, makeHistory(svc)),
		SyncEndpoint:           wrap("Sync", user, makeSync(svc)),
		ConversationsEndpoint:  wrap("Conversations", user, makeConversations(svc)),
		ConversationEndpoint:   wrap("Conversation", user, makeConversation(svc)),
		UpdateSettingsEndpoint: wrap("UpdateSettings", user, makeUpdateSettings(svc)),
		UnreadEndpoint:         wrap("Unread", user, makeUnread(svc)),
		GetMessageEndpoint:     wrap("GetMessage", internal, makeGetMessage(svc)),
		AckEndpoint:            wrap("Ack", internal, makeAck(svc)),
		AckedEndpoint:          wrap("Acked", internal, makeAcked(svc)),
	}
}

// userOrService admits an authenticated user (acting for themself) or an
// internal caller with the service credential (acting for the user the
// request names: the message service's GetUnreadMessages, the gateway's
// sync in distributed mode). A request presenting a service credential is
// judged on it alone, so a wrong one is refused, not downgraded.
func userOrService(authn identity.Authenticator, serviceToken string) endpoint.Middleware {
	user := identity.RequireUser(authn)
	internal := identity.RequireService(serviceToken)
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		asUser, asService := user(next), internal(next)
		return func(ctx context.Context, req any) (any, error) {
			if _, ok := identity.FromContext(ctx); !ok && identity.ServiceToken(ctx) != "" {
				return asService(ctx, req)
			}
			return asUser(ctx, req)
		}
	}
}

// Requests and responses. Responses carry business errors (Failed), so
// breakers and retries react only to infrastructure failures. UserID in a
// request is honoured only for internal callers (identity.Actor).

type HistoryRequest struct {
	UserID         string `json:"user_id,omitempty"`
	ConversationID string `json:"conversation_id"`
	BeforeSeq      *int64 `json:"before_seq,omitempty"`
	AfterSeq       *int64 `json:"after_seq,omitempty"`
	Limit          int    `json:"limit,omitempty"`
}

type HistoryResponse struct {
	HistoryPage
	Err error `json:"-"`
}

func (r HistoryResponse) Failed() error { return r.Err }

type SyncRequest struct {
	UserID  string           `json:"user_id,omitempty"`
	Cursors map[string]int64 `json:"cursors"`
	Limit   int              `json:"limit,omitempty"`
}

type SyncResponse struct {
	SyncResult
	Err error `json:"-"`
}

func (r SyncResponse) Failed() error { return r.Err }

type ConversationsRequest struct {
	UserID string `json:"user_id,omitempty"`
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

type ConversationsResponse struct {
	ConversationPage
	Err error `json:"-"`
}

func (r ConversationsResponse) Failed() error { return r.Err }

type ConversationRequest struct {
	UserID         string `json:"user_id,omitempty"`
	ConversationID string `json:"conversation_id"`
}

type UpdateSettingsRequest struct {
	UserID         string `json:"user_id,omitempty"`
	ConversationID string `json:"conversation_id"`
	Muted          *bool  `json:"muted,omitempty"`
	Pinned         *bool  `json:"pinned,omitempty"`
}

// ConversationResponse is {"conversation": {...}} (PROTOCOL.md's wrapped
// single resource).
type ConversationResponse struct {
	Conversation Conversation `json:"conversation"`
	Err          error        `json:"-"`
}

func (r ConversationResponse) Failed() error { return r.Err }

type UnreadRequest struct {
	UserID string `json:"user_id,omitempty"`
}

type UnreadResponse struct {
	UnreadCounts
	Err error `json:"-"`
}

func (r UnreadResponse) Failed() error { return r.Err }

type GetMessageRequest struct {
	MessageID string `json:"message_id"`
}

type MessageResponse struct {
	Message message.Message `json:"message"`
	Err     error           `json:"-"`
}

func (r MessageResponse) Failed() error { return r.Err }

type AckRequest struct {
	UserID         string `json:"user_id"`
	DeviceID       string `json:"device_id"`
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
}

type AckedRequest struct {
	UserID         string `json:"user_id"`
	DeviceID       string `json:"device_id"`
	ConversationID string `json:"conversation_id"`
}

type AckedResponse struct {
	Seq int64 `json:"seq"`
	Err error `json:"-"`
}

func (r AckedResponse) Failed() error { return r.Err }

type EmptyResponse struct {
	Err error `json:"-"`
}

func (r EmptyResponse) Failed() error { return r.Err }

var (
	_ endpointx.Failer = HistoryResponse{}
	_ endpointx.Failer = SyncResponse{}
	_ endpointx.Failer = ConversationsResponse{}
	_ endpointx.Failer = ConversationResponse{}
	_ endpointx.Failer = UnreadResponse{}
	_ endpointx.Failer = MessageResponse{}
	_ endpointx.Failer = AckedResponse{}
	_ endpointx.Failer = EmptyResponse{}
)

func makeHistory(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(HistoryRequest)
		uid, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return HistoryResponse{Err: err}, nil
		}
		p, err := svc.History(ctx, uid, r.ConversationID, r.BeforeSeq, r.AfterSeq, r.Limit)
		return HistoryResponse{HistoryPage: p, Err: err}, nil
	}
}

func makeSync(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(SyncRequest)
		uid, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return SyncResponse{Err: err}, nil
		}
		res, err := svc.Sync(ctx, uid, r.Cursors, r.Limit)
		return SyncResponse{SyncResult: res, Err: err}, nil
	}
}

func makeConversations(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(ConversationsRequest)
		uid, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return ConversationsResponse{Err: err}, nil
		}
		p, err := svc.Conversations(ctx, uid, r.Cursor, r.Limit)
		return ConversationsResponse{ConversationPage: p, Err: err}, nil
	}
}

func makeConversation(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(ConversationRequest)
		uid, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return ConversationResponse{Err: err}, nil
		}
		c, err := svc.Conversation(ctx, uid, r.ConversationID)
		return ConversationResponse{Conversation: c, Err: err}, nil
	}
}

func makeUpdateSettings(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(UpdateSettingsRequest)
		uid, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return ConversationResponse{Err: err}, nil
		}
		c, err := svc.UpdateSettings(ctx, uid, r.ConversationID, r.Muted, r.Pinned)
		return ConversationResponse{Conversation: c, Err: err}, nil
	}
}

func makeUnread(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(UnreadRequest)
		uid, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return UnreadResponse{Err: err}, nil
		}
		u, err := svc.Unread(ctx, uid)
		return UnreadResponse{UnreadCounts: u, Err: err}, nil
	}
}

func makeGetMessage(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		m, err := svc.GetMessage(ctx, req.(GetMessageRequest).MessageID)
		return MessageResponse{Message: m, Err: err}, nil
	}
}

func makeAck(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(AckRequest)
		uid, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return EmptyResponse{Err: err}, nil
		}
		return EmptyResponse{Err: svc.Ack(ctx, uid, r.DeviceID, r.ConversationID, r.Seq)}, nil
	}
}

func makeAcked(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(AckedRequest)
		uid, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return AckedResponse{Err: err}, nil
		}
		seq, err := svc.Acked(ctx, uid, r.DeviceID, r.ConversationID)
		return AckedResponse{Seq: seq, Err: err}, nil
	}
}

func (e Endpoints) History(ctx context.Context, userID, conversationID string, beforeSeq, afterSeq *int64, limit int) (HistoryPage, error) {
	resp, err := e.HistoryEndpoint(ctx, HistoryRequest{UserID: userID, ConversationID: conversationID, BeforeSeq: beforeSeq, AfterSeq: afterSeq, Limit: limit})
	if err := endpointx.Outcome(resp, err); err != nil {
		return HistoryPage{}, err
	}
	return resp.(HistoryResponse).HistoryPage, nil
}

func (e Endpoints) Sync(ctx context.Context, userID string, cursors map[string]int64, limit int) (SyncResult, error) {
	resp, err := e.SyncEndpoint(ctx, SyncRequest{UserID: userID, Cursors: cursors, Limit: limit})
	if err := endpointx.Outcome(resp, err); err != nil {
		return SyncResult{}, err
	}
	return resp.(SyncResponse).SyncResult, nil
}

func (e Endpoints) Conversations(ctx context.Context, userID, cursor string, limit int) (ConversationPage, error) {
	resp, err := e.ConversationsEndpoint(ctx, ConversationsRequest{UserID: userID, Cursor: cursor, Limit: limit})
	if err := endpointx.Outcome(resp, err); err != nil {
		return ConversationPage{}, err
	}
	return resp.(ConversationsResponse).ConversationPage, nil
}

func (e Endpoints) Conversation(ctx context.Context, userID, conversationID string) (Conversation, error) {
	resp, err := e.ConversationEndpoint(ctx, ConversationRequest{UserID: userID, ConversationID: conversationID})
	if err := endpointx.Outcome(resp, err); err != nil {
		return Conversation{}, err
	}
	return resp.(ConversationResponse).Conversation, nil
}

func (e Endpoints) UpdateSettings(ctx context.Context, userID, conversationID string, muted, pinned *bool) (Conversation, error) {
	resp, err := e.UpdateSettingsEndpoint(ctx, UpdateSettingsRequest{UserID: userID, ConversationID: conversationID, Muted: muted, Pinned: pinned})
	if err := endpointx.Outcome(resp, err); err != nil {
		return Conversation{}, err
	}
	return resp.(ConversationResponse).Conversation, nil
}

func (e Endpoints) Unread(ctx context.Context, userID string) (UnreadCounts, error) {
	resp, err := e.UnreadEndpoint(ctx, UnreadRequest{UserID: userID})
	if err := endpointx.Outcome(resp, err); err != nil {
		return UnreadCounts{}, err
	}
	return resp.(UnreadResponse).UnreadCounts, nil
}

func (e Endpoints) GetMessage(ctx context.Context, messageID string) (message.Message, error) {
	resp, err := e.GetMessageEndpoint(ctx, GetMessageRequest{MessageID: messageID})
	if err := endpointx.Outcome(resp, err); err != nil {
		return message.Message{}, err
	}
	return resp.(MessageResponse).Message, nil
}

func (e Endpoints) Ack(ctx context.Context, userID, deviceID, conversationID string, seq int64) error {
	return endpointx.Outcome(e.AckEndpoint(ctx, AckRequest{UserID: userID, DeviceID: deviceID, ConversationID: conversationID, Seq: seq}))
}

func (e Endpoints) Acked(ctx context.Context, userID, deviceID, conversationID string) (int64, error) {
	resp, err := e.AckedEndpoint(ctx, AckedRequest{UserID: userID, DeviceID: deviceID, ConversationID: conversationID})
	if err := endpointx.Outcome(resp, err); err != nil {
		return 0, err
	}
	return resp.(AckedResponse).Seq, nil
}

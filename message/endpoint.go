package message

import (
	"context"

	"github.com/go-kit/kit/endpoint"

	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/identity"
)

// Endpoints holds one endpoint per Service method. It also implements
// Service, so a remote message service (gRPC client endpoints) and a local
// one (server endpoints) are the same to callers.
type Endpoints struct {
	SendMessageEndpoint      endpoint.Endpoint
	SendGroupMessageEndpoint endpoint.Endpoint
	RecallEndpoint           endpoint.Endpoint
	MarkAsReadEndpoint       endpoint.Endpoint
	LastSeqEndpoint          endpoint.Endpoint
	TypingEndpoint           endpoint.Endpoint
}

var _ Service = Endpoints{}

// MakeServerEndpoints wraps svc: sends, recalls and read marks act for the
// authenticated user (or, for internal callers, the user the request
// names); LastSeq requires the service credential. Every method gets kit's
// chain.
func MakeServerEndpoints(svc Service, authn identity.Authenticator, serviceToken string, kit endpointx.Kit) Endpoints {
	internal := identity.RequireService(serviceToken)
	user := userOrService(identity.RequireUser(authn), internal)
	wrap := func(method string, mw endpoint.Middleware, e endpoint.Endpoint) endpoint.Endpoint {
		return kit.Chain("message", method, mw(e))
	}
	return Endpoints{
		SendMessageEndpoint:      wrap("SendMessage", user, makeSend(svc, false)),
		SendGroupMessageEndpoint: wrap("SendGroupMessage", user, makeSend(svc, true)),
		RecallEndpoint:           wrap("Recall", user, makeRecall(svc)),
		MarkAsReadEndpoint:       wrap("MarkAsRead", user, makeMarkAsRead(svc)),
		LastSeqEndpoint:          wrap("LastSeq", internal, makeLastSeq(svc)),
		TypingEndpoint:           wrap("Typing", user, makeTyping(svc)),
	}
}

// userOrService admits a user token, or a caller presenting the service
// credential (the gateway in distributed mode sends for its sockets' users
// and names the sender): a presented credential must be valid.
func userOrService(user, service endpoint.Middleware) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		asUser, asService := user(next), service(next)
		return func(ctx context.Context, req any) (any, error) {
			if _, ok := identity.FromContext(ctx); !ok && identity.ServiceToken(ctx) != "" {
				return asService(ctx, req)
			}
			return asUser(ctx, req)
		}
	}
}

// Requests and responses. Responses carry business errors (Failed), so
// breakers and retries react only to infrastructure failures.

// SendMessageRequest is SendRequest on the wire (both kinds).
type SendMessageRequest struct {
	SendRequest
}

// MessageResponse is {"message": {...}}.
type MessageResponse struct {
	Message *Message `json:"message,omitempty"`
	Err     error    `json:"-"`
}

func (r MessageResponse) Failed() error { return r.Err }

type RecallRequest struct {
	UserID    string `json:"user_id,omitempty"`
	MessageID string `json:"message_id"`
}

type MarkAsReadRequest struct {
	UserID         string `json:"user_id,omitempty"`
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
}

type TypingRequest struct {
	UserID         string `json:"user_id,omitempty"`
	ConversationID string `json:"conversation_id"`
}

// EmptyResponse answers 204 over HTTP.
type EmptyResponse struct {
	Err error `json:"-"`
}

func (r EmptyResponse) Failed() error   { return r.Err }
func (r EmptyResponse) StatusCode() int { return 204 }

type LastSeqRequest struct {
	ConversationID string `json:"conversation_id"`
}

type LastSeqResponse struct {
	Seq int64 `json:"seq"`
	Err error `json:"-"`
}

func (r LastSeqResponse) Failed() error { return r.Err }

var (
	_ endpointx.Failer = MessageResponse{}
	_ endpointx.Failer = EmptyResponse{}
	_ endpointx.Failer = LastSeqResponse{}
)

func messageResponse(m Message, err error) MessageResponse {
	if err != nil {
		return MessageResponse{Err: err}
	}
	return MessageResponse{Message: &m}
}

func makeSend(svc Service, group bool) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(SendMessageRequest).SendRequest
		sender, err := identity.Actor(ctx, r.SenderID)
		if err != nil {
			return nil, err
		}
		r.SenderID = sender
		if group {
			return messageResponse(svc.SendGroupMessage(ctx, r)), nil
		}
		return messageResponse(svc.SendMessage(ctx, r)), nil
	}
}

func makeRecall(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(RecallRequest)
		uid, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return nil, err
		}
		return messageResponse(svc.Recall(ctx, uid, r.MessageID)), nil
	}
}

func makeMarkAsRead(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(MarkAsReadRequest)
		uid, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return nil, err
		}
		return EmptyResponse{Err: svc.MarkAsRead(ctx, uid, r.ConversationID, r.Seq)}, nil
	}
}

func makeTyping(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(TypingRequest)
		uid, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return nil, err
		}
		return EmptyResponse{Err: svc.Typing(ctx, uid, r.ConversationID)}, nil
	}
}

func makeLastSeq(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		seq, err := svc.LastSeq(ctx, req.(LastSeqRequest).ConversationID)
		return LastSeqResponse{Seq: seq, Err: err}, nil
	}
}

// Client side: Endpoints implements Service.

func (e Endpoints) SendMessage(ctx context.Context, req SendRequest) (Message, error) {
	return messageOf(e.SendMessageEndpoint(ctx, SendMessageRequest{SendRequest: req}))
}

func (e Endpoints) SendGroupMessage(ctx context.Context, req SendRequest) (Message, error) {
	return messageOf(e.SendGroupMessageEndpoint(ctx, SendMessageRequest{SendRequest: req}))
}

func (e Endpoints) Recall(ctx context.Context, userID, messageID string) (Message, error) {
	return messageOf(e.RecallEndpoint(ctx, RecallRequest{UserID: userID, MessageID: messageID}))
}

func (e Endpoints) MarkAsRead(ctx context.Context, userID, conversationID string, seq int64) error {
	return endpointx.Outcome(e.MarkAsReadEndpoint(ctx, MarkAsReadRequest{UserID: userID, ConversationID: conversationID, Seq: seq}))
}

func (e Endpoints) LastSeq(ctx context.Context, conversationID string) (int64, error) {
	resp, err := e.LastSeqEndpoint(ctx, LastSeqRequest{ConversationID: conversationID})
	if err := endpointx.Outcome(resp, err); err != nil {
		return 0, err
	}
	return resp.(LastSeqResponse).Seq, nil
}

func messageOf(resp any, err error) (Message, error) {
	if err := endpointx.Outcome(resp, err); err != nil {
		return Message{}, err
	}
	m := resp.(MessageResponse).Message
	if m == nil {
		return Message{}, nil
	}
	return *m, nil
}

func (e Endpoints) Typing(ctx context.Context, userID, conversationID string) error {
	return endpointx.Outcome(e.TypingEndpoint(ctx, TypingRequest{UserID: userID, ConversationID: conversationID}))
}

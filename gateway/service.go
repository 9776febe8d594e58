// Package gateway is Beehive's public edge: the HTTP router every domain
// mounts its routes on, and the WebSocket endpoint GET /v1/ws that holds
// clients' sockets, routes their frames to the message, read and typing
// services, and delivers server frames (Deliver) to every local socket of
// a user.
package gateway

import (
	"context"
	"encoding/json"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
)

// Service is what other services call on a gateway instance.
type Service interface {
	// Deliver queues Frame on every local socket of UserIDs except
	// ExceptConn and returns how many sockets it was queued on. It never
	// waits for a socket: a socket whose queue is full is closed (4009).
	Deliver(ctx context.Context, req DeliverRequest) (int, error)
}

// DeliverRequest is one server frame for some users.
type DeliverRequest struct {
	UserIDs []string `json:"user_ids"`
	// Frame is a complete server frame, e.g. from EncodeFrame.
	Frame []byte `json:"frame"`
	// ExceptConn is "<gateway_id>/<conn_id>" (or a bare conn id) of a
	// socket to skip: the sender's own socket, which got `sent`.
	ExceptConn string `json:"except_conn,omitempty"`
	// More are frames that follow Frame, in order, to the same users, each
	// with its own socket to skip. A socket gets all of its frames in one
	// write: the pusher sends a batch of one conversation's records so.
	More []DeliverFrame `json:"more,omitempty"`
}

// DeliverFrame is one of DeliverRequest.More.
type DeliverFrame struct {
	Frame      []byte `json:"frame"`
	ExceptConn string `json:"except_conn,omitempty"`
}

// MaxDeliverUsers bounds one Deliver (the largest group).
const MaxDeliverUsers = 10000

// MaxDeliverFrames bounds the frames of one Deliver (Frame and More).
const MaxDeliverFrames = 1000

// Peers the gateway routes client frames to. The lead wires adapters over
// the message, query and pusher services.

// Sender sends a message (the `send` op).
type Sender interface {
	Send(ctx context.Context, req SendRequest) (message.Message, error)
}

// SendRequest is a `send` frame's data plus who sent it from where.
type SendRequest struct {
	SenderID    string          `json:"sender_id"`
	ToUserID    string          `json:"to_user_id,omitempty"`
	GroupID     string          `json:"group_id,omitempty"`
	ClientMsgID string          `json:"client_msg_id"`
	Type        string          `json:"type"`
	Content     json.RawMessage `json:"content"`
	Mentions    []string        `json:"mentions,omitempty"`
	// OriginConn is "<gateway_id>/<conn_id>" of the sending socket.
	OriginConn string `json:"origin_conn"`
}

// Reader is the read side (`sync` and `ack`).
type Reader interface {
	// Sync returns, per conversation of the user, messages after the
	// cursor (conversations missing from cursors from their start), at most
	// limit per conversation.
	Sync(ctx context.Context, userID string, cursors map[string]int64, limit int) (SyncResult, error)
	// Ack stores that deviceID received conversationID up to seq.
	Ack(ctx context.Context, userID, deviceID, conversationID string, seq int64) error
}

// SyncResult is what Sync found.
type SyncResult struct {
	Messages []message.Message
	HasMore  bool
}

// Reads stores read marks (`read`).
type Reads interface {
	MarkAsRead(ctx context.Context, userID, conversationID string, seq int64) error
}

// Typing fans a typing notice out (`typing`); nothing is stored.
type Typing interface {
	Typing(ctx context.Context, userID, conversationID string) error
}

// Errors of the WebSocket edge.
var (
	ErrShuttingDown = errs.New(errs.Unavailable, "gateway is shutting down")
)

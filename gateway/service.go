// Package gateway is Beehive's public edge: the HTTP router every domain
// mounts its routes on, and the WebSocket endpoint GET /v1/ws that holds
// clients' sockets, routes their frames to the message, read and typing
// services, and delivers server frames (Deliver) to every local socket of
// a user.
package gateway

import (
	"context"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/wire"
)

// Service is what other services call on a gateway instance.
type Service interface {
	// Deliver queues Frame on every local socket of UserIDs except
	// ExceptConn and returns how many sockets it was queued on. It never
	// waits for a socket: a socket whose queue is full is closed (4009).
	Deliver(ctx context.Context, req wire.DeliverRequest) (int, error)
}

// MaxDeliverUsers bounds one Deliver (the largest group).
const MaxDeliverUsers = 10000

// MaxDeliverFrames bounds the frames of one Deliver (Frame and More).
const MaxDeliverFrames = 1000

// The ports of Deps that client frames are routed to. The lead wires
// adapters over the message, query and pusher services.

// Sender sends a message (the `send` op): SendMessage for a 1:1 message,
// SendGroupMessage for a group's; message.Service's own methods, so the
// message service (or its client) is the Sender as it is.
type Sender interface {
	SendMessage(ctx context.Context, req message.SendRequest) (message.Message, error)
	SendGroupMessage(ctx context.Context, req message.SendRequest) (message.Message, error)
}

// Reader is the read side (`sync` and `ack`).
type Reader interface {
	// Sync returns, per conversation of the user, messages after the
	// cursor (conversations missing from cursors from their start), at most
	// limit per conversation.
	Sync(ctx context.Context, userID string, cursors map[string]int64, limit int) (query.SyncResult, error)
	// Ack stores that deviceID received conversationID up to seq.
	Ack(ctx context.Context, userID, deviceID, conversationID string, seq int64) error
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

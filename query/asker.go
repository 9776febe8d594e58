package query

import (
	"context"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/identity"
)

// Asker answers what other services ask of the read side (message: the
// message a recall names; pusher: what a device acked, whether a user
// muted a conversation; gateway: sync and ack for a socket), over a
// Service — in the same process or a client of a remote one.
type Asker struct{ svc Service }

// NewAsker asks svc.
func NewAsker(svc Service) Asker { return Asker{svc: svc} }

// GetMessage returns a stored message by id (an internal call).
func (a Asker) GetMessage(ctx context.Context, messageID string) (message.Message, error) {
	return a.svc.GetMessage(identity.AsService(ctx), messageID)
}

// Acked is the seq deviceID acked in conversationID (an internal call).
func (a Asker) Acked(ctx context.Context, userID, deviceID, conversationID string) (int64, error) {
	return a.svc.Acked(identity.AsService(ctx), userID, deviceID, conversationID)
}

// Muted reports whether userID muted conversationID: a conversation the
// user has no entry for is not muted.
func (a Asker) Muted(ctx context.Context, userID, conversationID string) (bool, error) {
	c, err := a.svc.Conversation(identity.AsService(ctx), userID, conversationID)
	switch {
	case err == nil:
		return c.Muted, nil
	case errs.HasCode(err, errs.NotFound):
		return false, nil
	}
	return false, err
}

// Sync is the user's sync answer, with the caller's identity (the
// socket's user).
func (a Asker) Sync(ctx context.Context, userID string, cursors map[string]int64, limit int) (SyncResult, error) {
	return a.svc.Sync(ctx, userID, cursors, limit)
}

// Ack stores that deviceID received conversationID up to seq (an
// internal call: the gateway acks for its socket's device).
func (a Asker) Ack(ctx context.Context, userID, deviceID, conversationID string, seq int64) error {
	return a.svc.Ack(identity.AsService(ctx), userID, deviceID, conversationID, seq)
}

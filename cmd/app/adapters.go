package app

// Adapters between the domains. Each domain declares the small interfaces
// it needs of its peers (consumer-side interfaces); these types fit the
// peers' Services to them, so no domain imports another's implementation.

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/user"
)

// internal marks a call one service makes to another on its own behalf.
func internal(ctx context.Context) context.Context { return identity.AsService(ctx) }

// accounts fits the user service to auth.Accounts.
type accounts struct{ users user.Service }

var _ auth.Accounts = accounts{}

func (a accounts) LookupAccount(ctx context.Context, idOrEmail string) (auth.Account, error) {
	var (
		acc user.Account
		err error
	)
	if strings.Contains(idOrEmail, "@") {
		acc, err = a.users.LookupByEmail(internal(ctx), idOrEmail)
	} else {
		acc, err = a.users.GetUserByID(internal(ctx), idOrEmail)
	}
	if err != nil {
		return auth.Account{}, err
	}
	profile, err := json.Marshal(acc.User)
	if err != nil {
		return auth.Account{}, errs.Wrap(errs.Internal, err, "encode profile")
	}
	return auth.Account{UserID: acc.ID, PasswordHash: acc.PasswordHash, Profile: profile}, nil
}

func (a accounts) SetPasswordHash(ctx context.Context, userID, hash string) error {
	return a.users.SetPasswordHash(internal(ctx), userID, hash)
}

// userExists fits the user service to group.UserChecker.
func userExists(users user.Service) group.UserExistsFunc {
	return func(ctx context.Context, id string) (bool, error) {
		_, err := users.GetUserByID(internal(ctx), id)
		switch {
		case err == nil:
			return true, nil
		case errs.HasCode(err, errs.NotFound):
			return false, nil
		}
		return false, err
	}
}

// relations fits the user service to message.Relations.
type relations struct{ users user.Service }

func (r relations) CanMessage(ctx context.Context, from, to string) (bool, error) {
	return r.users.CanMessage(internal(ctx), from, to)
}

// friends fits the user service to pusher.Friends.
type friends struct{ users user.Service }

func (f friends) ListFriendIDs(ctx context.Context, userID string) ([]string, error) {
	return f.users.ListFriendIDs(internal(ctx), userID)
}

// messageReader fits the query service to message.Reader.
type messageReader struct{ q query.Service }

func (r messageReader) GetMessage(ctx context.Context, id string) (message.Message, error) {
	return r.q.GetMessage(internal(ctx), id)
}

// presencePeer fits the presence service to pusher.Presence.
type presencePeer struct{ p presence.Service }

// Lookup asks in batches of presence.MaxBatch: a group's recipients can
// be many more than one query may name.
func (p presencePeer) Lookup(ctx context.Context, userIDs []string) (map[string][]pusher.PresenceDevice, error) {
	out := make(map[string][]pusher.PresenceDevice)
	for start := 0; start < len(userIDs); start += presence.MaxBatch {
		ups, err := p.p.GetUserPresence(internal(ctx), userIDs[start:min(start+presence.MaxBatch, len(userIDs))])
		if err != nil {
			return nil, err
		}
		for _, up := range ups {
			for _, d := range up.Devices {
				out[up.UserID] = append(out[up.UserID], pusher.PresenceDevice{DeviceID: d.DeviceID, GatewayID: d.GatewayID, ConnID: d.ConnID})
			}
		}
	}
	return out, nil
}

// acksAndSettings fits the query service to pusher.Acks and pusher.Settings.
type acksAndSettings struct{ q query.Service }

func (a acksAndSettings) Acked(ctx context.Context, userID, deviceID, conversationID string) (int64, error) {
	return a.q.Acked(internal(ctx), userID, deviceID, conversationID)
}

func (a acksAndSettings) Muted(ctx context.Context, userID, conversationID string) (bool, error) {
	c, err := a.q.Conversation(internal(ctx), userID, conversationID)
	if err != nil {
		if errs.HasCode(err, errs.NotFound) {
			return false, nil
		}
		return false, err
	}
	return c.Muted, nil
}

// reader fits the query service to gateway.Reader.
type reader struct{ q query.Service }

func (r reader) Sync(ctx context.Context, userID string, cursors map[string]int64, limit int) (gateway.SyncResult, error) {
	res, err := r.q.Sync(ctx, userID, cursors, limit)
	if err != nil {
		return gateway.SyncResult{}, err
	}
	var out gateway.SyncResult
	for _, c := range res.Conversations {
		out.Messages = append(out.Messages, c.Messages...)
	}
	out.HasMore = res.HasMore
	return out, nil
}

func (r reader) Ack(ctx context.Context, userID, deviceID, conversationID string, seq int64) error {
	return r.q.Ack(internal(ctx), userID, deviceID, conversationID, seq)
}

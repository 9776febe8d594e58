package app

// Adapters between the domains. Each domain declares the small interfaces
// it needs of its peers (consumer-side interfaces); these types fit the
// peers' Services to them, so no domain imports another's implementation.

import (
	"context"
	"encoding/json"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/user"
)

// internal marks a call one service makes to another on its own behalf.
func internal(ctx context.Context) context.Context { return identity.AsService(ctx) }

// accounts fits user's accounts to auth.Accounts: auth keeps the id,
// the password hash and the profile as the login answer shows it.
type accounts struct{ user.Asker }

var _ auth.Accounts = accounts{}

func (a accounts) LookupAccount(ctx context.Context, idOrEmail string) (auth.Account, error) {
	acc, err := a.Asker.LookupAccount(ctx, idOrEmail)
	if err != nil {
		return auth.Account{}, err
	}
	profile, err := json.Marshal(acc.User)
	if err != nil {
		return auth.Account{}, errs.Wrap(errs.Internal, err, "encode profile")
	}
	return auth.Account{UserID: acc.ID, PasswordHash: acc.PasswordHash, Profile: profile}, nil
}

// presenceDevices fits presence's answer to pusher.Presence: the
// pusher keeps only what routes a delivery.
type presenceDevices struct{ presence.Asker }

func (p presenceDevices) Lookup(ctx context.Context, userIDs []string) (map[string][]pusher.PresenceDevice, error) {
	devices, err := p.Devices(ctx, userIDs)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]pusher.PresenceDevice, len(devices))
	for user, ds := range devices {
		for _, d := range ds {
			out[user] = append(out[user], pusher.PresenceDevice{DeviceID: d.DeviceID, GatewayID: d.GatewayID, ConnID: d.ConnID})
		}
	}
	return out, nil
}

package user

import (
	"context"
	"strings"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/identity"
)

// Asker answers the questions other services ask about users (auth: whose
// account is this login; group: does this user exist; message: may one
// user message another; pusher: who are a user's friends), over a Service
// — in the same process or a client of a remote one — as internal calls.
type Asker struct{ svc Service }

// NewAsker asks svc.
func NewAsker(svc Service) Asker { return Asker{svc: svc} }

// LookupAccount finds the account a login names: by email when it has an
// "@" (a user id never does), else by id.
func (a Asker) LookupAccount(ctx context.Context, idOrEmail string) (Account, error) {
	if strings.Contains(idOrEmail, "@") {
		return a.svc.LookupByEmail(identity.AsService(ctx), idOrEmail)
	}
	return a.svc.GetUserByID(identity.AsService(ctx), idOrEmail)
}

// SetPasswordHash replaces the account's password hash.
func (a Asker) SetPasswordHash(ctx context.Context, userID, hash string) error {
	return a.svc.SetPasswordHash(identity.AsService(ctx), userID, hash)
}

// UserExists reports whether userID is an account: not_found is "no".
func (a Asker) UserExists(ctx context.Context, userID string) (bool, error) {
	_, err := a.svc.GetUserByID(identity.AsService(ctx), userID)
	switch {
	case err == nil:
		return true, nil
	case errs.HasCode(err, errs.NotFound):
		return false, nil
	}
	return false, err
}

// CanMessage reports whether from may message to.
func (a Asker) CanMessage(ctx context.Context, from, to string) (bool, error) {
	return a.svc.CanMessage(identity.AsService(ctx), from, to)
}

// ListFriendIDs returns userID's friends' ids.
func (a Asker) ListFriendIDs(ctx context.Context, userID string) ([]string, error) {
	return a.svc.ListFriendIDs(identity.AsService(ctx), userID)
}

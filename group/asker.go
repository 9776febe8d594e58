package group

import (
	"context"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/identity"
)

// Asker answers the questions other services ask about groups (message:
// may this user post, with which role; query: since which seq is this
// user a member, which groups has this user; pusher: who are the
// members), over a Service — the group service in the same process or a
// client of a remote one — as internal calls. What counts as "not a
// member" is this domain's answer, so it is given here once, not by each
// asker.
type Asker struct{ svc Service }

// NewAsker asks svc.
func NewAsker(svc Service) Asker { return Asker{svc: svc} }

// CanPost returns nil when userID may post in groupID.
func (a Asker) CanPost(ctx context.Context, userID, groupID string) error {
	return a.svc.CanPost(identity.AsService(ctx), userID, groupID)
}

// Role is userID's role in groupID ("owner", "admin", "member"), or the
// error of a non-member.
func (a Asker) Role(ctx context.Context, groupID, userID string) (string, error) {
	m, err := a.svc.Membership(identity.AsService(ctx), groupID, userID)
	if err != nil {
		return "", err
	}
	return string(m.Role), nil
}

// IsMember reports whether userID belongs to groupID: an unknown group or
// member, and a membership the group refuses to show, are "no".
func (a Asker) IsMember(ctx context.Context, groupID, userID string) (bool, error) {
	_, err := a.svc.Membership(identity.AsService(ctx), groupID, userID)
	switch {
	case err == nil:
		return true, nil
	case errs.HasCode(err, errs.NotFound), errs.HasCode(err, errs.PermissionDenied):
		return false, nil
	}
	return false, err
}

// Membership is the seq at which userID joined groupID (messages up to it
// are not theirs to read).
func (a Asker) Membership(ctx context.Context, groupID, userID string) (int64, error) {
	m, err := a.svc.Membership(identity.AsService(ctx), groupID, userID)
	if err != nil {
		return 0, err
	}
	return m.JoinedSeq, nil
}

// ListUserGroups returns the ids of every group userID belongs to,
// reading ListMyGroups page by page at the largest page it serves.
func (a Asker) ListUserGroups(ctx context.Context, userID string) ([]string, error) {
	var out []string
	cursor := ""
	for {
		page, err := a.svc.ListMyGroups(identity.AsService(ctx), userID, cursor, MaxPageSize)
		if err != nil {
			return nil, err
		}
		for _, g := range page.Groups {
			out = append(out, g.ID)
		}
		if page.NextCursor == "" || len(page.Groups) == 0 {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

// ListMemberIDs returns every member's id.
func (a Asker) ListMemberIDs(ctx context.Context, groupID string) ([]string, error) {
	return a.svc.ListMemberIDs(identity.AsService(ctx), groupID)
}

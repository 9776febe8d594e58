// Package group owns group chats: lifecycle (create, update, dissolve),
// members and their roles (owner, admin, member), invitations, kicks and
// leaving, ownership transfer, per-member and group-wide mutes, and the
// question the message service asks before every group send: "may U post
// in G?" (CanPost).
//
// Each member records joined_seq, the group conversation's last seq when
// they joined; they read history from joined_seq+1. Membership changes
// publish events.GroupMembership and dissolution events.GroupDissolved, so
// the pusher can drop its cached member lists.
package group

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
)

// Limits.
const (
	// DefaultMaxMembers is the group size limit of PROTOCOL.md.
	DefaultMaxMembers = 10000
	// DefaultPageSize and MaxPageSize bound member and group listings.
	DefaultPageSize = 50
	MaxPageSize     = 200
	// MaxInvite is the most user ids one create or add call may name.
	MaxInvite = 500
	// MaxNameLen and MaxAnnouncementLen count characters (runes).
	MaxNameLen         = 100
	MaxAnnouncementLen = 4096
	// MaxMuteSeconds is the longest single mute (one year).
	MaxMuteSeconds = 366 * 24 * 3600
)

// Role is a member's rank in a group.
type Role string

const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// rank orders roles: who outranks whom decides kicks and mutes.
func (r Role) rank() int {
	switch r {
	case RoleOwner:
		return 3
	case RoleAdmin:
		return 2
	case RoleMember:
		return 1
	}
	return 0
}

// Service is the group service. Public methods act for actorID (the
// endpoint layer resolves it with identity.Actor); CanPost, Membership and
// ListMemberIDs are internal, for the message service, pusher and query.
type Service interface {
	// CreateGroup creates a group owned by actorID with the other
	// in.MemberIDs as members.
	CreateGroup(ctx context.Context, actorID string, in CreateInput) (Group, error)
	// GetGroup returns a group the actor belongs to.
	GetGroup(ctx context.Context, actorID, groupID string) (Group, error)
	// UpdateGroup changes the fields set in u (owner and admins).
	UpdateGroup(ctx context.Context, actorID, groupID string, u Update) (Group, error)
	// DissolveGroup ends the group (owner only).
	DissolveGroup(ctx context.Context, actorID, groupID string) error
	// ListMembers pages members in user id order; cursor is the previous
	// page's NextCursor ("" for the first page).
	ListMembers(ctx context.Context, actorID, groupID, cursor string, limit int) (MemberPage, error)
	// AddMembers adds users (owner and admins; members too when
	// MembersCanInvite) and returns those newly added; existing members
	// are skipped.
	AddMembers(ctx context.Context, actorID, groupID string, userIDs []string) ([]Member, error)
	// RemoveMember kicks userID, or, when userID is the actor, leaves.
	RemoveMember(ctx context.Context, actorID, groupID, userID string) error
	// SetRole makes a member admin or member (owner only).
	SetRole(ctx context.Context, actorID, groupID, userID string, role Role) (Member, error)
	// TransferOwnership hands the group to member userID; the old owner
	// becomes admin.
	TransferOwnership(ctx context.Context, actorID, groupID, userID string) (Group, error)
	// MuteMember mutes userID for seconds (0 lifts the mute).
	MuteMember(ctx context.Context, actorID, groupID, userID string, seconds int64) (Member, error)
	// MuteAll mutes or unmutes everyone but admins and the owner.
	MuteAll(ctx context.Context, actorID, groupID string, muted bool) (Group, error)
	// ListMyGroups pages the actor's groups (oldest first).
	ListMyGroups(ctx context.Context, actorID, cursor string, limit int) (GroupPage, error)

	// CanPost reports whether userID may post in groupID now: nil, or
	// permission_denied (not a member, muted), or not_found (no such group
	// or dissolved). Internal.
	CanPost(ctx context.Context, userID, groupID string) error
	// Membership returns userID's membership (role, joined_seq, mute):
	// not_found for an unknown group, permission_denied for a non-member.
	// Internal.
	Membership(ctx context.Context, groupID, userID string) (Member, error)
	// ListMemberIDs returns every member's id (user id order). Internal.
	ListMemberIDs(ctx context.Context, groupID string) ([]string, error)
}

// Group is a group as clients see it.
type Group struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	OwnerID          string    `json:"owner_id"`
	Announcement     string    `json:"announcement"`
	MembersCanInvite bool      `json:"members_can_invite"`
	MutedAll         bool      `json:"muted_all"`
	MemberCount      int       `json:"member_count"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
	// DissolvedAt is set once the owner dissolved the group; the service
	// never returns a dissolved group (not_found), stores keep the record.
	DissolvedAt *time.Time `json:"-"`
	// Version counts the changes of the group and its members (1 after
	// create): a Store Save succeeds only from the version the record
	// still has. The service's and its stores' business, not clients'.
	Version int64 `json:"-"`
}

// Member is one membership. JoinedSeq is the group conversation's last seq
// at join time: the member reads from JoinedSeq+1. MutedUntil is nil when
// the member is not muted (an expired mute reads as nil).
type Member struct {
	UserID     string     `json:"user_id"`
	Role       Role       `json:"role"`
	JoinedAt   time.Time  `json:"joined_at"`
	JoinedSeq  int64      `json:"joined_seq"`
	MutedUntil *time.Time `json:"muted_until,omitempty"`
}

// CreateInput is what a group starts with.
type CreateInput struct {
	Name         string   `json:"name"`
	MemberIDs    []string `json:"member_ids,omitempty"`
	Announcement string   `json:"announcement,omitempty"`
}

// Update names the fields to change; nil leaves a field as it is.
type Update struct {
	Name             *string `json:"name,omitempty"`
	Announcement     *string `json:"announcement,omitempty"`
	MembersCanInvite *bool   `json:"members_can_invite,omitempty"`
}

// MemberPage is one page of members; NextCursor is "" on the last page.
type MemberPage struct {
	Members    []Member `json:"members"`
	NextCursor string   `json:"next_cursor"`
}

// GroupPage is one page of groups; NextCursor is "" on the last page.
type GroupPage struct {
	Groups     []Group `json:"groups"`
	NextCursor string  `json:"next_cursor"`
}

// Membership actions, the "action" of an events.GroupMembership event.
const (
	ActionJoined = "joined"
	ActionLeft   = "left"
	ActionKicked = "kicked"
	ActionRole   = "role"
	// ActionMuted: a member's mute was set or lifted; with an empty
	// UserID, the whole group's (MuteAll).
	ActionMuted = "muted"
)

// MembershipChange is the Data of an events.GroupMembership event.
type MembershipChange struct {
	Action string `json:"action"`
	// Role is the member's role after the change (joined, role).
	Role Role `json:"role,omitempty"`
}

// UserChecker tells whether a user exists (the user service implements it).
type UserChecker interface {
	UserExists(ctx context.Context, userID string) (bool, error)
}

// UserExistsFunc adapts a function to UserChecker.
type UserExistsFunc func(ctx context.Context, userID string) (bool, error)

func (f UserExistsFunc) UserExists(ctx context.Context, userID string) (bool, error) {
	return f(ctx, userID)
}

// SeqReader returns a conversation's last assigned seq (0 when empty). The
// message service implements it; the group conversation id is
// ids.Group(groupID).
type SeqReader interface {
	LastSeq(ctx context.Context, conversationID string) (int64, error)
}

// SeqReaderFunc adapts a function to SeqReader. It also breaks the
// construction cycle group <-> message: wire a func that calls the message
// service once it exists.
type SeqReaderFunc func(ctx context.Context, conversationID string) (int64, error)

func (f SeqReaderFunc) LastSeq(ctx context.Context, conversationID string) (int64, error) {
	return f(ctx, conversationID)
}

// Domain errors.
var (
	ErrGroupNotFound  = errs.New(errs.NotFound, "group not found")
	ErrNotMember      = errs.New(errs.PermissionDenied, "not a member of this group")
	ErrMemberNotFound = errs.New(errs.NotFound, "user is not a member of this group")
	ErrOwnerLeaving   = errs.New(errs.Conflict, "the owner must transfer ownership before leaving")
	// ErrConcurrentChange: the change lost every attempt to changes of the
	// same group made at the same moment elsewhere. Nothing was changed;
	// the client may simply send it again.
	ErrConcurrentChange = errs.New(errs.Conflict, "the group is being changed by others at this moment; try again")
)

// ValidateName checks and trims a group name.
func ValidateName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", errs.Missing("name")
	}
	if err := validText("name", name, MaxNameLen, false); err != nil {
		return "", err
	}
	return name, nil
}

// ValidateAnnouncement checks an announcement ("" clears it).
func ValidateAnnouncement(s string) (string, error) {
	s = strings.TrimSpace(s)
	return s, validText("announcement", s, MaxAnnouncementLen, true)
}

func validText(field, s string, max int, multiline bool) error {
	if !utf8.ValidString(s) {
		return errs.Invalid(field, "must be UTF-8")
	}
	if utf8.RuneCountInString(s) > max {
		return errs.Invalid(field, "is too long")
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if r < 0x20 || r == 0x7f {
			return errs.Invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// ValidateUserIDs checks a list of user ids and returns the distinct ones in
// order.
func ValidateUserIDs(field string, list []string, required bool) ([]string, error) {
	if len(list) == 0 {
		if required {
			return nil, errs.Missing(field)
		}
		return nil, nil
	}
	if len(list) > MaxInvite {
		return nil, errs.Invalid(field, "names too many users at once")
	}
	seen := make(map[string]struct{}, len(list))
	out := make([]string, 0, len(list))
	for _, id := range list {
		if !ids.Valid(id) {
			return nil, errs.Invalid(field, "contains an invalid id")
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out, nil
}

// ValidateRole checks a role a client may assign.
func ValidateRole(r Role) error {
	switch r {
	case "":
		return errs.Missing("role")
	case RoleAdmin, RoleMember:
		return nil
	}
	return errs.Invalid("role", "must be admin or member")
}

// pageArgs validates a cursor and limit.
func pageArgs(cursor string, limit int) (int, error) {
	if cursor != "" && !ids.Valid(cursor) {
		return 0, errs.Invalid("cursor", "is not a valid cursor")
	}
	switch {
	case limit == 0:
		return DefaultPageSize, nil
	case limit < 0 || limit > MaxPageSize:
		return 0, errs.Invalid("limit", "must be between 1 and 200")
	}
	return limit, nil
}

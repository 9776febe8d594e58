package group

import (
	"context"
	"errors"
)

// ErrConflict is Save's answer when the stored version of the group is
// not the one the caller loaded: a change made elsewhere (another
// instance of the service) came first. Nothing of the refused Save is
// visible; the caller loads again and redoes its change.
var ErrConflict = errors.New("group: the group changed since it was loaded")

// Store keeps groups (table groups), their members (group_members, ordered
// by user id) and each user's groups (groups_by_user). Several instances
// of the service may change one group at once: the version on the group
// record (Group.Version, 1 after create, +1 with every Save) makes each
// Save a compare-and-set, and a backend makes a Save all or nothing (one
// Pebble batch; a Cassandra lightweight transaction on the group row that
// records the member changes, then applied) so the three views never
// disagree for long.
type Store interface {
	// Save writes g, upserts the members in put and removes the users in
	// del from g's members, updating groups_by_user to match — all or
	// nothing — provided the stored version is still g.Version (0: no
	// record yet, or a record from before versions); the stored version
	// becomes g.Version+1. Otherwise it writes nothing and returns
	// ErrConflict. Removing a non-member is not an error.
	Save(ctx context.Context, g Group, put []Member, del []string) error
	// Group returns the group record, dissolved or not, with its version;
	// found is false when there never was such a group.
	Group(ctx context.Context, groupID string) (g Group, found bool, err error)
	// Member returns one membership; found is false for a non-member.
	Member(ctx context.Context, groupID, userID string) (m Member, found bool, err error)
	// Members returns up to limit members with user id strictly greater
	// than after, in user id order.
	Members(ctx context.Context, groupID, after string, limit int) ([]Member, error)
	// MemberIDs returns every member's user id in user id order.
	MemberIDs(ctx context.Context, groupID string) ([]string, error)
	// GroupsOf returns up to limit ids of userID's groups with id strictly
	// greater than after, in group id order.
	GroupsOf(ctx context.Context, userID, after string, limit int) ([]string, error)
}

package group

import "context"

// Store keeps groups (table groups), their members (group_members, ordered
// by user id) and each user's groups (groups_by_user). The service
// serialises the changes of one group; a backend makes each Save atomic
// (one Pebble batch, one Cassandra logged batch) so the three views never
// disagree.
type Store interface {
	// Save writes g, upserts the members in put and removes the users in
	// del from g's members, updating groups_by_user to match — all or
	// nothing. Removing a non-member is not an error.
	Save(ctx context.Context, g Group, put []Member, del []string) error
	// Group returns the group record, dissolved or not; found is false
	// when there never was such a group.
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

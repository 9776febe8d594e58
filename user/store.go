package user

import (
	"context"
	"time"
)

// Store keeps accounts and the social graph. Every method that checks and
// changes state does both atomically (a lightweight transaction or a lock
// in the backend), so concurrent callers cannot break the invariants:
// one account per email, at most one pending request per direction, and a
// block never coexisting with a friendship or a pending request between
// the same two users.
type Store interface {
	// CreateUser claims the account's email (already normalized) and
	// writes the account; a taken email fails with ErrEmailTaken and
	// writes nothing.
	CreateUser(ctx context.Context, a Account) error
	// GetUser fails with ErrUserNotFound.
	GetUser(ctx context.Context, id string) (Account, error)
	// GetUserByEmail looks up a normalized email; ErrUserNotFound.
	GetUserByEmail(ctx context.Context, email string) (Account, error)
	// UpdateProfile stores nickname, avatar, description and updated_at of
	// u (never the email or the hash); ErrUserNotFound.
	UpdateProfile(ctx context.Context, u User) error
	// SetPasswordHash replaces the hash; ErrUserNotFound.
	SetPasswordHash(ctx context.Context, id, hash string, at time.Time) error

	// CreateFriendRequest writes a pending request, unless one from the
	// same sender to the same addressee is pending (ErrRequestPending).
	CreateFriendRequest(ctx context.Context, r FriendRequest) error
	// GetFriendRequest fails with ErrRequestNotFound.
	GetFriendRequest(ctx context.Context, id string) (FriendRequest, error)
	// PendingRequest returns the pending request from -> to, if any.
	PendingRequest(ctx context.Context, from, to string) (FriendRequest, bool, error)
	// ResolveFriendRequest moves a pending request to state (accepted or
	// declined), failing with ErrRequestResolved when it is not pending.
	// Accepting makes the two users friends since at, and accepts a
	// pending request in the opposite direction too.
	ResolveFriendRequest(ctx context.Context, id, state string, at time.Time) (FriendRequest, error)
	// ListFriendRequests returns up to limit requests addressed to and sent
	// by userID, each newest first.
	ListFriendRequests(ctx context.Context, userID string, limit int) (incoming, outgoing []FriendRequest, err error)

	// Friendship returns when a and b became friends, if they are.
	Friendship(ctx context.Context, a, b string) (since time.Time, ok bool, err error)
	// ListFriends returns up to limit friends of userID with ids greater
	// than after, ordered by id.
	ListFriends(ctx context.Context, userID, after string, limit int) ([]Friendship, error)
	// RemoveFriendship ends the friendship of a and b (both sides) and
	// reports whether there was one.
	RemoveFriendship(ctx context.Context, a, b string) (bool, error)

	// PutBlock records that blocker blocks blocked (keeping the first
	// block's time when it exists), ends their friendship and deletes the
	// pending requests between them, atomically. It returns the block and
	// whether a friendship ended.
	PutBlock(ctx context.Context, blocker, blocked string, at time.Time) (b Block, unfriended bool, err error)
	// DeleteBlock lifts a block and reports whether there was one.
	DeleteBlock(ctx context.Context, blocker, blocked string) (bool, error)
	// Blocked reports whether blocker blocks blocked.
	Blocked(ctx context.Context, blocker, blocked string) (bool, error)
	// ListBlocks returns up to limit users blocker blocks with ids greater
	// than after, ordered by id.
	ListBlocks(ctx context.Context, blocker, after string, limit int) ([]Block, error)
}

// Friendship is one side of a friendship as the store keeps it.
type Friendship struct {
	FriendID string
	Since    time.Time
}

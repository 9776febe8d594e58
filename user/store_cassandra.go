package user

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"github.com/beehive-im/beehive/shared/cassandra"
)

// CassandraStore is the cluster mode's Store (migration 0010_users.cql):
//
//	users                    user_id -> account
//	users_by_email           email -> user_id (the claim, LWT)
//	friend_requests          request_id -> request; state moves from
//	                         pending only by LWT
//	friend_requests_by_user  (user_id), direction in|out, request_id desc
//	friend_requests_pending  (from, to) -> request_id (the claim, LWT)
//	friends                  (user_id), friend_id -> since (both sides)
//	blocks                   (blocker_id), blocked_id -> created_at (LWT)
//
// Statements use bind markers, so gocql prepares each once per connection;
// consistency and serial consistency are the session's. Plain writes are
// idempotent upserts and deletes (retried by the session's policy);
// lightweight transactions are never retried blindly — an LWT whose
// outcome is unknown fails with unavailable and the caller decides.
//
// Where the Pebble store holds a mutex, this store relies on:
//   - uniqueness claims (an email, the pending request of a direction)
//     taken with INSERT ... IF NOT EXISTS after the row they point to is
//     written, so a claim never points to a row that is still to come; a
//     claim whose row is missing or no longer pending is stale and is taken
//     over with UPDATE ... IF request_id = <stale>; a loser deletes the row
//     it wrote;
//   - request state changes as LWTs from pending, so accept, decline and a
//     block's deletion of a pending request exclude each other;
//   - ordering for "a block never coexists with a friendship": PutBlock
//     writes the block before deleting the friendship, and accepting writes
//     the friendship before checking for blocks (and takes it back if it
//     finds one), so whichever runs second sees the other.
type CassandraStore struct {
	s *gocql.Session
}

var _ Store = (*CassandraStore)(nil)

// NewCassandraStore returns a Store over session (its keyspace migrated by
// `beehive migrate`).
func NewCassandraStore(session *gocql.Session) *CassandraStore {
	return &CassandraStore{s: session}
}

const (
	cqlInsertUser     = `INSERT INTO users (user_id, email, nickname, avatar, description, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	cqlDeleteUser     = `DELETE FROM users WHERE user_id = ?`
	cqlSelectUser     = `SELECT email, nickname, avatar, description, password_hash, created_at, updated_at FROM users WHERE user_id = ?`
	cqlUpdateProfile  = `UPDATE users SET nickname = ?, avatar = ?, description = ?, updated_at = ? WHERE user_id = ? IF EXISTS`
	cqlUpdatePassword = `UPDATE users SET password_hash = ?, updated_at = ? WHERE user_id = ? IF EXISTS`
	cqlClaimEmail     = `INSERT INTO users_by_email (email, user_id) VALUES (?, ?) IF NOT EXISTS`
	cqlStealEmail     = `UPDATE users_by_email SET user_id = ? WHERE email = ? IF user_id = ?`
	cqlSelectEmail    = `SELECT user_id FROM users_by_email WHERE email = ?`

	cqlInsertRequest  = `INSERT INTO friend_requests (request_id, from_user_id, to_user_id, message, state, created_at) VALUES (?, ?, ?, ?, ?, ?)`
	cqlDeleteRequest  = `DELETE FROM friend_requests WHERE request_id = ?`
	cqlSelectRequest  = `SELECT from_user_id, to_user_id, message, state, created_at FROM friend_requests WHERE request_id = ?`
	cqlResolveRequest = `UPDATE friend_requests SET state = ? WHERE request_id = ? IF state = ?`
	cqlDropPending    = `DELETE FROM friend_requests WHERE request_id = ? IF state = ?`
	cqlInsertReqIndex = `INSERT INTO friend_requests_by_user (user_id, direction, request_id) VALUES (?, ?, ?)`
	cqlDeleteReqIndex = `DELETE FROM friend_requests_by_user WHERE user_id = ? AND direction = ? AND request_id = ?`
	cqlListReqIndex   = `SELECT request_id FROM friend_requests_by_user WHERE user_id = ? AND direction = ? LIMIT ?`
	cqlClaimPending   = `INSERT INTO friend_requests_pending (from_user_id, to_user_id, request_id) VALUES (?, ?, ?) IF NOT EXISTS`
	cqlStealPending   = `UPDATE friend_requests_pending SET request_id = ? WHERE from_user_id = ? AND to_user_id = ? IF request_id = ?`
	cqlReleasePending = `DELETE FROM friend_requests_pending WHERE from_user_id = ? AND to_user_id = ? IF request_id = ?`
	cqlSelectPending  = `SELECT request_id FROM friend_requests_pending WHERE from_user_id = ? AND to_user_id = ?`

	cqlInsertFriend = `INSERT INTO friends (user_id, friend_id, since) VALUES (?, ?, ?)`
	cqlDeleteFriend = `DELETE FROM friends WHERE user_id = ? AND friend_id = ?`
	cqlSelectFriend = `SELECT since FROM friends WHERE user_id = ? AND friend_id = ?`
	cqlListFriends  = `SELECT friend_id, since FROM friends WHERE user_id = ? AND friend_id > ? LIMIT ?`

	cqlInsertBlock = `INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?) IF NOT EXISTS`
	cqlDeleteBlock = `DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ? IF EXISTS`
	cqlSelectBlock = `SELECT created_at FROM blocks WHERE blocker_id = ? AND blocked_id = ?`
	cqlListBlocks  = `SELECT blocked_id, created_at FROM blocks WHERE blocker_id = ? AND blocked_id > ? LIMIT ?`
)

const (
	dirIn  = "in"
	dirOut = "out"
	// claimAttempts bounds the take-overs of stale claims racing with
	// other writers; each failed attempt means someone else moved the
	// claim meanwhile.
	claimAttempts = 4
	// fetchParallel bounds the concurrent point reads of a request list.
	fetchParallel = 16
)

// write is an idempotent plain statement.
func (s *CassandraStore) write(ctx context.Context, stmt string, args ...any) *gocql.Query {
	return s.s.Query(stmt, args...).WithContext(ctx).Idempotent(true)
}

func (s *CassandraStore) read(ctx context.Context, stmt string, args ...any) *gocql.Query {
	return s.s.Query(stmt, args...).WithContext(ctx).Idempotent(true)
}

// lwt is a lightweight transaction: not retried by the driver, since a
// retry of an applied LWT reads as not applied.
func (s *CassandraStore) lwt(ctx context.Context, stmt string, args ...any) *gocql.Query {
	return s.s.Query(stmt, args...).WithContext(ctx).RetryPolicy(nil)
}

// cas runs an LWT and returns whether it applied and the current values
// it reports when it did not.
func (s *CassandraStore) cas(ctx context.Context, what, stmt string, args ...any) (bool, map[string]any, error) {
	cur := map[string]any{}
	applied, err := s.lwt(ctx, stmt, args...).MapScanCAS(cur)
	if err != nil {
		return false, nil, cassandraErr(ctx, err, what)
	}
	return applied, cur, nil
}

func (s *CassandraStore) batch(ctx context.Context) *gocql.Batch {
	return s.s.NewBatch(gocql.LoggedBatch).WithContext(ctx)
}

func add(b *gocql.Batch, stmt string, args ...any) {
	b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: stmt, Args: args, Idempotent: true})
}

func str(m map[string]any, col string) string {
	v, _ := m[col].(string)
	return v
}

// --- accounts ---

func (s *CassandraStore) CreateUser(ctx context.Context, a Account) error {
	if err := s.write(ctx, cqlInsertUser, a.ID, a.Email, a.Nickname, a.Avatar, a.Description, a.PasswordHash,
		a.CreatedAt, a.UpdatedAt).Exec(); err != nil {
		return cassandraErr(ctx, err, "write user")
	}
	claimed, err := s.claimEmail(ctx, a)
	if err != nil || claimed {
		return err
	}
	// Taken: the account row written above must not remain.
	if err := s.write(ctx, cqlDeleteUser, a.ID).Exec(); err != nil {
		return cassandraErr(ctx, err, "delete unclaimed user")
	}
	return ErrEmailTaken
}

// claimEmail makes a.Email point to a.ID unless it belongs to another
// existing account.
func (s *CassandraStore) claimEmail(ctx context.Context, a Account) (bool, error) {
	applied, cur, err := s.cas(ctx, "claim email", cqlClaimEmail, a.Email, a.ID)
	for attempt := 0; ; attempt++ {
		if err != nil {
			return false, err
		}
		holder := str(cur, "user_id")
		if applied || holder == a.ID {
			return true, nil
		}
		if holder != "" {
			h, err := s.GetUser(ctx, holder)
			switch {
			case err == nil && h.Email == a.Email:
				return false, nil
			case err != nil && !errors.Is(err, ErrUserNotFound):
				return false, err
			}
		}
		// The claim is stale (its account was never written or was
		// rolled back) or was released: take it over.
		if attempt == claimAttempts {
			return false, nil
		}
		if holder == "" {
			applied, cur, err = s.cas(ctx, "claim email", cqlClaimEmail, a.Email, a.ID)
		} else {
			applied, cur, err = s.cas(ctx, "claim email", cqlStealEmail, a.ID, a.Email, holder)
		}
	}
}

func (s *CassandraStore) GetUser(ctx context.Context, id string) (Account, error) {
	a := Account{User: User{ID: id}}
	err := s.read(ctx, cqlSelectUser, id).Scan(&a.Email, &a.Nickname, &a.Avatar, &a.Description, &a.PasswordHash,
		&a.CreatedAt, &a.UpdatedAt)
	if errors.Is(err, gocql.ErrNotFound) {
		return Account{}, ErrUserNotFound
	}
	if err != nil {
		return Account{}, cassandraErr(ctx, err, "read user")
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, nil
}

func (s *CassandraStore) GetUserByEmail(ctx context.Context, email string) (Account, error) {
	var id string
	err := s.read(ctx, cqlSelectEmail, email).Scan(&id)
	if errors.Is(err, gocql.ErrNotFound) {
		return Account{}, ErrUserNotFound
	}
	if err != nil {
		return Account{}, cassandraErr(ctx, err, "read email")
	}
	a, err := s.GetUser(ctx, id)
	if err != nil {
		return Account{}, err
	}
	if a.Email != email { // a stale claim
		return Account{}, ErrUserNotFound
	}
	return a, nil
}

func (s *CassandraStore) UpdateProfile(ctx context.Context, u User) error {
	applied, _, err := s.cas(ctx, "update profile", cqlUpdateProfile, u.Nickname, u.Avatar, u.Description, u.UpdatedAt, u.ID)
	if err == nil && !applied {
		return ErrUserNotFound
	}
	return err
}

func (s *CassandraStore) SetPasswordHash(ctx context.Context, id, hash string, at time.Time) error {
	applied, _, err := s.cas(ctx, "set password hash", cqlUpdatePassword, hash, at, id)
	if err == nil && !applied {
		return ErrUserNotFound
	}
	return err
}

// --- friend requests ---

func (s *CassandraStore) CreateFriendRequest(ctx context.Context, r FriendRequest) error {
	b := s.batch(ctx)
	add(b, cqlInsertRequest, r.ID, r.FromUserID, r.ToUserID, r.Message, r.State, r.CreatedAt)
	add(b, cqlInsertReqIndex, r.ToUserID, dirIn, r.ID)
	add(b, cqlInsertReqIndex, r.FromUserID, dirOut, r.ID)
	if err := s.s.ExecuteBatch(b); err != nil {
		return cassandraErr(ctx, err, "write friend request")
	}
	claimed, err := s.claimPending(ctx, r)
	if err != nil || claimed {
		return err
	}
	if err := s.s.ExecuteBatch(deleteRequest(s.batch(ctx), r)); err != nil {
		return cassandraErr(ctx, err, "delete unclaimed friend request")
	}
	return ErrRequestPending
}

func deleteRequest(b *gocql.Batch, r FriendRequest) *gocql.Batch {
	add(b, cqlDeleteRequest, r.ID)
	add(b, cqlDeleteReqIndex, r.ToUserID, dirIn, r.ID)
	add(b, cqlDeleteReqIndex, r.FromUserID, dirOut, r.ID)
	return b
}

// claimPending makes r the pending request of its direction unless
// another pending request holds the claim.
func (s *CassandraStore) claimPending(ctx context.Context, r FriendRequest) (bool, error) {
	applied, cur, err := s.cas(ctx, "claim pending request", cqlClaimPending, r.FromUserID, r.ToUserID, r.ID)
	for attempt := 0; ; attempt++ {
		if err != nil {
			return false, err
		}
		holder := str(cur, "request_id")
		if applied || holder == r.ID {
			return true, nil
		}
		if holder != "" {
			h, err := s.GetFriendRequest(ctx, holder)
			switch {
			case err == nil && h.State == StatePending:
				return false, nil
			case err != nil && !errors.Is(err, ErrRequestNotFound):
				return false, err
			}
		}
		if attempt == claimAttempts {
			return false, nil
		}
		if holder == "" {
			applied, cur, err = s.cas(ctx, "claim pending request", cqlClaimPending, r.FromUserID, r.ToUserID, r.ID)
		} else {
			applied, cur, err = s.cas(ctx, "claim pending request", cqlStealPending, r.ID, r.FromUserID, r.ToUserID, holder)
		}
	}
}

func (s *CassandraStore) releasePending(ctx context.Context, from, to, id string) error {
	_, _, err := s.cas(ctx, "release pending request", cqlReleasePending, from, to, id)
	return err
}

func (s *CassandraStore) GetFriendRequest(ctx context.Context, id string) (FriendRequest, error) {
	r := FriendRequest{ID: id}
	err := s.read(ctx, cqlSelectRequest, id).Scan(&r.FromUserID, &r.ToUserID, &r.Message, &r.State, &r.CreatedAt)
	if errors.Is(err, gocql.ErrNotFound) {
		return FriendRequest{}, ErrRequestNotFound
	}
	if err != nil {
		return FriendRequest{}, cassandraErr(ctx, err, "read friend request")
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return r, nil
}

func (s *CassandraStore) PendingRequest(ctx context.Context, from, to string) (FriendRequest, bool, error) {
	var id string
	err := s.read(ctx, cqlSelectPending, from, to).Scan(&id)
	if errors.Is(err, gocql.ErrNotFound) {
		return FriendRequest{}, false, nil
	}
	if err != nil {
		return FriendRequest{}, false, cassandraErr(ctx, err, "read pending request")
	}
	r, err := s.GetFriendRequest(ctx, id)
	if errors.Is(err, ErrRequestNotFound) || (err == nil && r.State != StatePending) {
		return FriendRequest{}, false, nil // a stale claim
	}
	if err != nil {
		return FriendRequest{}, false, err
	}
	return r, true, nil
}

func (s *CassandraStore) ResolveFriendRequest(ctx context.Context, id, state string, at time.Time) (FriendRequest, error) {
	r, err := s.GetFriendRequest(ctx, id)
	if err != nil {
		return FriendRequest{}, err
	}
	if r.State != StatePending {
		return FriendRequest{}, ErrRequestResolved
	}
	applied, cur, err := s.cas(ctx, "resolve friend request", cqlResolveRequest, state, id, StatePending)
	if err != nil {
		return FriendRequest{}, err
	}
	if !applied {
		if str(cur, "state") == "" { // deleted meanwhile (a block)
			return FriendRequest{}, ErrRequestNotFound
		}
		return FriendRequest{}, ErrRequestResolved
	}
	r.State = state
	if err := s.releasePending(ctx, r.FromUserID, r.ToUserID, r.ID); err != nil {
		return FriendRequest{}, err
	}
	if state != StateAccepted {
		return r, nil
	}
	if rev, ok, err := s.PendingRequest(ctx, r.ToUserID, r.FromUserID); err != nil {
		return FriendRequest{}, err
	} else if ok {
		applied, _, err := s.cas(ctx, "accept reverse friend request", cqlResolveRequest, StateAccepted, rev.ID, StatePending)
		if err != nil {
			return FriendRequest{}, err
		}
		if applied {
			if err := s.releasePending(ctx, rev.FromUserID, rev.ToUserID, rev.ID); err != nil {
				return FriendRequest{}, err
			}
		}
	}
	if _, friends, err := s.Friendship(ctx, r.FromUserID, r.ToUserID); err != nil {
		return FriendRequest{}, err
	} else if !friends {
		b := s.batch(ctx)
		add(b, cqlInsertFriend, r.FromUserID, r.ToUserID, at)
		add(b, cqlInsertFriend, r.ToUserID, r.FromUserID, at)
		if err := s.s.ExecuteBatch(b); err != nil {
			return FriendRequest{}, cassandraErr(ctx, err, "write friendship")
		}
	}
	// A block written while this ran must not end up beside the
	// friendship: PutBlock deletes friendships after writing the block, so
	// if it missed this friendship, this check sees its block.
	for _, p := range [][2]string{{r.FromUserID, r.ToUserID}, {r.ToUserID, r.FromUserID}} {
		blocked, err := s.Blocked(ctx, p[0], p[1])
		if err != nil {
			return FriendRequest{}, err
		}
		if blocked {
			if err := s.s.ExecuteBatch(deleteFriendship(s.batch(ctx), r.FromUserID, r.ToUserID)); err != nil {
				return FriendRequest{}, cassandraErr(ctx, err, "delete friendship")
			}
			break
		}
	}
	return r, nil
}

func (s *CassandraStore) ListFriendRequests(ctx context.Context, userID string, limit int) ([]FriendRequest, []FriendRequest, error) {
	in, err := s.listRequests(ctx, userID, dirIn, limit)
	if err != nil {
		return nil, nil, err
	}
	out, err := s.listRequests(ctx, userID, dirOut, limit)
	if err != nil {
		return nil, nil, err
	}
	return in, out, nil
}

func (s *CassandraStore) listRequests(ctx context.Context, userID, dir string, limit int) ([]FriendRequest, error) {
	if limit <= 0 {
		return nil, nil
	}
	iter := s.read(ctx, cqlListReqIndex, userID, dir, limit).Iter()
	var (
		rids []string
		rid  string
	)
	for iter.Scan(&rid) {
		rids = append(rids, rid)
	}
	if err := iter.Close(); err != nil {
		return nil, cassandraErr(ctx, err, "list friend requests")
	}
	got := make([]FriendRequest, len(rids))
	found := make([]bool, len(rids))
	errc := make([]error, len(rids))
	sem := make(chan struct{}, fetchParallel)
	var wg sync.WaitGroup
	for i, id := range rids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := s.GetFriendRequest(ctx, id)
			switch {
			case err == nil:
				got[i], found[i] = r, true
			case !errors.Is(err, ErrRequestNotFound): // deleted by a block: skipped
				errc[i] = err
			}
		}()
	}
	wg.Wait()
	out := make([]FriendRequest, 0, len(rids))
	for i := range rids {
		if errc[i] != nil {
			return nil, errc[i]
		}
		if found[i] {
			out = append(out, got[i])
		}
	}
	return out, nil
}

// --- friends ---

func (s *CassandraStore) Friendship(ctx context.Context, a, b string) (time.Time, bool, error) {
	var since time.Time
	err := s.read(ctx, cqlSelectFriend, a, b).Scan(&since)
	if errors.Is(err, gocql.ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, cassandraErr(ctx, err, "read friendship")
	}
	return since.UTC(), true, nil
}

func (s *CassandraStore) ListFriends(ctx context.Context, userID, after string, limit int) ([]Friendship, error) {
	if limit <= 0 {
		return nil, nil
	}
	iter := s.read(ctx, cqlListFriends, userID, after, limit).Iter()
	var (
		out []Friendship
		f   Friendship
	)
	for iter.Scan(&f.FriendID, &f.Since) {
		f.Since = f.Since.UTC()
		out = append(out, f)
	}
	if err := iter.Close(); err != nil {
		return nil, cassandraErr(ctx, err, "list friends")
	}
	return out, nil
}

func deleteFriendship(b *gocql.Batch, x, y string) *gocql.Batch {
	add(b, cqlDeleteFriend, x, y)
	add(b, cqlDeleteFriend, y, x)
	return b
}

func (s *CassandraStore) RemoveFriendship(ctx context.Context, a, b string) (bool, error) {
	_, ok, err := s.Friendship(ctx, a, b)
	if err != nil || !ok {
		return false, err
	}
	if err := s.s.ExecuteBatch(deleteFriendship(s.batch(ctx), a, b)); err != nil {
		return false, cassandraErr(ctx, err, "delete friendship")
	}
	return true, nil
}

// --- blocks ---

func (s *CassandraStore) PutBlock(ctx context.Context, blocker, blocked string, at time.Time) (Block, bool, error) {
	blk := Block{UserID: blocked, CreatedAt: at.UTC()}
	applied, cur, err := s.cas(ctx, "write block", cqlInsertBlock, blocker, blocked, at)
	if err != nil {
		return Block{}, false, err
	}
	if !applied {
		if t, ok := cur["created_at"].(time.Time); ok {
			blk.CreatedAt = t.UTC()
		}
	}
	// The block is written: from here on, an accept that has not yet
	// checked for blocks will see it.
	_, unfriended, err := s.Friendship(ctx, blocker, blocked)
	if err != nil {
		return Block{}, false, err
	}
	if err := s.s.ExecuteBatch(deleteFriendship(s.batch(ctx), blocker, blocked)); err != nil {
		return Block{}, false, cassandraErr(ctx, err, "delete friendship")
	}
	for _, p := range [][2]string{{blocker, blocked}, {blocked, blocker}} {
		if err := s.dropPending(ctx, p[0], p[1]); err != nil {
			return Block{}, false, err
		}
	}
	return blk, unfriended, nil
}

// dropPending deletes the pending request from -> to, if any, and its
// claim.
func (s *CassandraStore) dropPending(ctx context.Context, from, to string) error {
	var id string
	err := s.read(ctx, cqlSelectPending, from, to).Scan(&id)
	if errors.Is(err, gocql.ErrNotFound) {
		return nil
	}
	if err != nil {
		return cassandraErr(ctx, err, "read pending request")
	}
	applied, _, err := s.cas(ctx, "delete pending request", cqlDropPending, id, StatePending)
	if err != nil {
		return err
	}
	if applied {
		r := FriendRequest{ID: id, FromUserID: from, ToUserID: to}
		if err := s.s.ExecuteBatch(deleteRequest(s.batch(ctx), r)); err != nil {
			return cassandraErr(ctx, err, "delete friend request")
		}
	}
	return s.releasePending(ctx, from, to, id)
}

func (s *CassandraStore) DeleteBlock(ctx context.Context, blocker, blocked string) (bool, error) {
	applied, _, err := s.cas(ctx, "delete block", cqlDeleteBlock, blocker, blocked)
	return applied, err
}

func (s *CassandraStore) Blocked(ctx context.Context, blocker, blocked string) (bool, error) {
	var at time.Time
	err := s.read(ctx, cqlSelectBlock, blocker, blocked).Scan(&at)
	if errors.Is(err, gocql.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, cassandraErr(ctx, err, "read block")
	}
	return true, nil
}

func (s *CassandraStore) ListBlocks(ctx context.Context, blocker, after string, limit int) ([]Block, error) {
	if limit <= 0 {
		return nil, nil
	}
	iter := s.read(ctx, cqlListBlocks, blocker, after, limit).Iter()
	var (
		out []Block
		b   Block
	)
	for iter.Scan(&b.UserID, &b.CreatedAt) {
		b.CreatedAt = b.CreatedAt.UTC()
		out = append(out, b)
	}
	if err := iter.Close(); err != nil {
		return nil, cassandraErr(ctx, err, "list blocks")
	}
	return out, nil
}

// cassandraErr maps a Cassandra failure (shared/cassandra.Err).
func cassandraErr(ctx context.Context, err error, what string) error {
	return cassandra.Err(ctx, err, "user store: "+what)
}

package user

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/pebblex"
)

// PebbleStore is the embedded mode's Store, under key prefix "user/" of
// the process's one Pebble database:
//
//	user/u/<id>                 account (JSON)
//	user/email/<email>          id (the email claim)
//	user/fr/<request id>        friend request (JSON)
//	user/frin/<to>/<request id> index of requests to a user
//	user/frout/<from>/<req id>  index of requests from a user
//	user/pending/<from>/<to>    id of the pending request from -> to
//	user/friend/<a>/<b>         friendship since (both sides written)
//	user/block/<blocker>/<b>    block created at
//
// The process owns the database, so one mutex makes every check-then-write
// atomic; writes are synced because responses acknowledge them.
type PebbleStore struct {
	db *pebble.DB
	mu sync.Mutex
}

var _ Store = (*PebbleStore)(nil)

// NewPebbleStore returns a Store over db.
func NewPebbleStore(db *pebble.DB) *PebbleStore { return &PebbleStore{db: db} }

const prefix = "user"

func kUser(id string) []byte          { return pebblex.Key(prefix, "u", id) }
func kEmail(email string) []byte      { return pebblex.Key(prefix, "email", email) }
func kReq(id string) []byte           { return pebblex.Key(prefix, "fr", id) }
func kReqIn(to, id string) []byte     { return pebblex.Key(prefix, "frin", to, id) }
func kReqOut(from, id string) []byte  { return pebblex.Key(prefix, "frout", from, id) }
func kPending(from, to string) []byte { return pebblex.Key(prefix, "pending", from, to) }
func kFriend(a, b string) []byte      { return pebblex.Key(prefix, "friend", a, b) }
func kBlock(a, b string) []byte       { return pebblex.Key(prefix, "block", a, b) }

func storeErr(err error, what string) error {
	if err == nil {
		return nil
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	return errs.Wrap(errs.Unavailable, err, "user store: "+what)
}

func encTime(t time.Time) []byte { b, _ := t.UTC().MarshalText(); return b }

func decTime(b []byte) (time.Time, error) {
	var t time.Time
	err := t.UnmarshalText(b)
	return t.UTC(), err
}

func (s *PebbleStore) getJSON(key []byte, v any) (bool, error) {
	raw, ok, err := pebblex.Get(s.db, key)
	if err != nil || !ok {
		return ok, err
	}
	return true, json.Unmarshal(raw, v)
}

func (s *PebbleStore) CreateUser(_ context.Context, a Account) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return storeErr(err, "encode account")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken, err := pebblex.Get(s.db, kEmail(a.Email)); err != nil {
		return storeErr(err, "read email")
	} else if taken {
		return ErrEmailTaken
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(kEmail(a.Email), []byte(a.ID), nil)
	_ = b.Set(kUser(a.ID), raw, nil)
	return storeErr(b.Commit(pebble.Sync), "create user")
}

func (s *PebbleStore) GetUser(_ context.Context, id string) (Account, error) {
	var a Account
	ok, err := s.getJSON(kUser(id), &a)
	if err != nil {
		return Account{}, storeErr(err, "read user")
	}
	if !ok {
		return Account{}, ErrUserNotFound
	}
	return a, nil
}

func (s *PebbleStore) GetUserByEmail(ctx context.Context, email string) (Account, error) {
	id, ok, err := pebblex.Get(s.db, kEmail(email))
	if err != nil {
		return Account{}, storeErr(err, "read email")
	}
	if !ok {
		return Account{}, ErrUserNotFound
	}
	return s.GetUser(ctx, string(id))
}

// modify rewrites one account under the lock.
func (s *PebbleStore) modify(id string, f func(*Account)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var a Account
	ok, err := s.getJSON(kUser(id), &a)
	if err != nil {
		return storeErr(err, "read user")
	}
	if !ok {
		return ErrUserNotFound
	}
	f(&a)
	raw, err := json.Marshal(a)
	if err != nil {
		return storeErr(err, "encode account")
	}
	return storeErr(s.db.Set(kUser(id), raw, pebble.Sync), "write user")
}

func (s *PebbleStore) UpdateProfile(_ context.Context, u User) error {
	return s.modify(u.ID, func(a *Account) {
		a.Nickname, a.Avatar, a.Description, a.UpdatedAt = u.Nickname, u.Avatar, u.Description, u.UpdatedAt
	})
}

func (s *PebbleStore) SetPasswordHash(_ context.Context, id, hash string, at time.Time) error {
	return s.modify(id, func(a *Account) { a.PasswordHash, a.UpdatedAt = hash, at })
}

func (s *PebbleStore) CreateFriendRequest(_ context.Context, r FriendRequest) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return storeErr(err, "encode friend request")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, pending, err := pebblex.Get(s.db, kPending(r.FromUserID, r.ToUserID)); err != nil {
		return storeErr(err, "read pending request")
	} else if pending {
		return ErrRequestPending
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(kReq(r.ID), raw, nil)
	_ = b.Set(kReqIn(r.ToUserID, r.ID), nil, nil)
	_ = b.Set(kReqOut(r.FromUserID, r.ID), nil, nil)
	_ = b.Set(kPending(r.FromUserID, r.ToUserID), []byte(r.ID), nil)
	return storeErr(b.Commit(pebble.Sync), "create friend request")
}

func (s *PebbleStore) GetFriendRequest(_ context.Context, id string) (FriendRequest, error) {
	var r FriendRequest
	ok, err := s.getJSON(kReq(id), &r)
	if err != nil {
		return FriendRequest{}, storeErr(err, "read friend request")
	}
	if !ok {
		return FriendRequest{}, ErrRequestNotFound
	}
	return r, nil
}

// pending returns the pending request from -> to; callers may hold s.mu.
func (s *PebbleStore) pending(from, to string) (FriendRequest, bool, error) {
	id, ok, err := pebblex.Get(s.db, kPending(from, to))
	if err != nil || !ok {
		return FriendRequest{}, false, storeErr(err, "read pending request")
	}
	var r FriendRequest
	ok, err = s.getJSON(kReq(string(id)), &r)
	if err != nil {
		return FriendRequest{}, false, storeErr(err, "read friend request")
	}
	return r, ok, nil
}

func (s *PebbleStore) PendingRequest(_ context.Context, from, to string) (FriendRequest, bool, error) {
	return s.pending(from, to)
}

func (s *PebbleStore) ResolveFriendRequest(_ context.Context, id, state string, at time.Time) (FriendRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r FriendRequest
	ok, err := s.getJSON(kReq(id), &r)
	if err != nil {
		return FriendRequest{}, storeErr(err, "read friend request")
	}
	if !ok {
		return FriendRequest{}, ErrRequestNotFound
	}
	if r.State != StatePending {
		return FriendRequest{}, ErrRequestResolved
	}
	b := s.db.NewBatch()
	defer b.Close()
	r.State = state
	if err := setJSON(b, kReq(r.ID), r); err != nil {
		return FriendRequest{}, err
	}
	_ = b.Delete(kPending(r.FromUserID, r.ToUserID), nil)
	if state == StateAccepted {
		if rev, ok, err := s.pending(r.ToUserID, r.FromUserID); err != nil {
			return FriendRequest{}, err
		} else if ok {
			rev.State = StateAccepted
			if err := setJSON(b, kReq(rev.ID), rev); err != nil {
				return FriendRequest{}, err
			}
			_ = b.Delete(kPending(rev.FromUserID, rev.ToUserID), nil)
		}
		if _, friends, err := pebblex.Get(s.db, kFriend(r.FromUserID, r.ToUserID)); err != nil {
			return FriendRequest{}, storeErr(err, "read friendship")
		} else if !friends {
			_ = b.Set(kFriend(r.FromUserID, r.ToUserID), encTime(at), nil)
			_ = b.Set(kFriend(r.ToUserID, r.FromUserID), encTime(at), nil)
		}
	}
	return r, storeErr(b.Commit(pebble.Sync), "resolve friend request")
}

func setJSON(b *pebble.Batch, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return storeErr(err, "encode")
	}
	_ = b.Set(key, raw, nil)
	return nil
}

func (s *PebbleStore) listRequests(index []byte, limit int) ([]FriendRequest, error) {
	var ids []string
	err := pebblex.Scan(s.db, index, true, func(k, _ []byte) bool {
		ids = append(ids, string(k[len(index):]))
		return len(ids) < limit
	})
	if err != nil {
		return nil, storeErr(err, "scan friend requests")
	}
	out := make([]FriendRequest, 0, len(ids))
	for _, id := range ids {
		var r FriendRequest
		ok, err := s.getJSON(kReq(id), &r)
		if err != nil {
			return nil, storeErr(err, "read friend request")
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *PebbleStore) ListFriendRequests(_ context.Context, userID string, limit int) ([]FriendRequest, []FriendRequest, error) {
	in, err := s.listRequests(append(pebblex.Key(prefix, "frin", userID), '/'), limit)
	if err != nil {
		return nil, nil, err
	}
	out, err := s.listRequests(append(pebblex.Key(prefix, "frout", userID), '/'), limit)
	if err != nil {
		return nil, nil, err
	}
	return in, out, nil
}

func (s *PebbleStore) Friendship(_ context.Context, a, b string) (time.Time, bool, error) {
	raw, ok, err := pebblex.Get(s.db, kFriend(a, b))
	if err != nil || !ok {
		return time.Time{}, false, storeErr(err, "read friendship")
	}
	t, err := decTime(raw)
	return t, true, storeErr(err, "decode friendship")
}

// scanAfter lists entries of the per-user index prefix with ids > after.
func (s *PebbleStore) scanAfter(index []byte, after string, limit int, fn func(id string, v []byte) error) error {
	lower := index
	if after != "" {
		// The smallest key greater than index+after and all its extensions.
		lower = append(append(append([]byte(nil), index...), after...), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: pebblex.PrefixEnd(index)})
	if err != nil {
		return storeErr(err, "scan")
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok && n < limit; ok = it.Next() {
		if err := fn(string(it.Key()[len(index):]), it.Value()); err != nil {
			return err
		}
		n++
	}
	return storeErr(it.Error(), "scan")
}

func (s *PebbleStore) ListFriends(_ context.Context, userID, after string, limit int) ([]Friendship, error) {
	var out []Friendship
	err := s.scanAfter(append(pebblex.Key(prefix, "friend", userID), '/'), after, limit, func(id string, v []byte) error {
		t, err := decTime(v)
		if err != nil {
			return storeErr(err, "decode friendship")
		}
		out = append(out, Friendship{FriendID: id, Since: t})
		return nil
	})
	return out, err
}

func (s *PebbleStore) RemoveFriendship(_ context.Context, a, b string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok, err := pebblex.Get(s.db, kFriend(a, b))
	if err != nil || !ok {
		return false, storeErr(err, "read friendship")
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	_ = batch.Delete(kFriend(a, b), nil)
	_ = batch.Delete(kFriend(b, a), nil)
	return true, storeErr(batch.Commit(pebble.Sync), "remove friendship")
}

func (s *PebbleStore) PutBlock(_ context.Context, blocker, blocked string, at time.Time) (Block, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	blk := Block{UserID: blocked, CreatedAt: at.UTC()}
	b := s.db.NewBatch()
	defer b.Close()
	if raw, ok, err := pebblex.Get(s.db, kBlock(blocker, blocked)); err != nil {
		return Block{}, false, storeErr(err, "read block")
	} else if ok {
		if blk.CreatedAt, err = decTime(raw); err != nil {
			return Block{}, false, storeErr(err, "decode block")
		}
	} else {
		_ = b.Set(kBlock(blocker, blocked), encTime(at), nil)
	}
	_, friends, err := pebblex.Get(s.db, kFriend(blocker, blocked))
	if err != nil {
		return Block{}, false, storeErr(err, "read friendship")
	}
	_ = b.Delete(kFriend(blocker, blocked), nil)
	_ = b.Delete(kFriend(blocked, blocker), nil)
	for _, pair := range [][2]string{{blocker, blocked}, {blocked, blocker}} {
		r, ok, err := s.pending(pair[0], pair[1])
		if err != nil {
			return Block{}, false, err
		}
		_ = b.Delete(kPending(pair[0], pair[1]), nil)
		if ok {
			_ = b.Delete(kReq(r.ID), nil)
			_ = b.Delete(kReqIn(r.ToUserID, r.ID), nil)
			_ = b.Delete(kReqOut(r.FromUserID, r.ID), nil)
		}
	}
	return blk, friends, storeErr(b.Commit(pebble.Sync), "put block")
}

func (s *PebbleStore) DeleteBlock(_ context.Context, blocker, blocked string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok, err := pebblex.Get(s.db, kBlock(blocker, blocked))
	if err != nil || !ok {
		return false, storeErr(err, "read block")
	}
	return true, storeErr(s.db.Delete(kBlock(blocker, blocked), pebble.Sync), "delete block")
}

func (s *PebbleStore) Blocked(_ context.Context, blocker, blocked string) (bool, error) {
	_, ok, err := pebblex.Get(s.db, kBlock(blocker, blocked))
	return ok, storeErr(err, "read block")
}

func (s *PebbleStore) ListBlocks(_ context.Context, blocker, after string, limit int) ([]Block, error) {
	var out []Block
	err := s.scanAfter(append(pebblex.Key(prefix, "block", blocker), '/'), after, limit, func(id string, v []byte) error {
		t, err := decTime(v)
		if err != nil {
			return storeErr(err, "decode block")
		}
		out = append(out, Block{UserID: id, CreatedAt: t})
		return nil
	})
	return out, err
}

package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/pebblex"
)

// PebbleStore keeps sessions in the embedded Pebble database under "auth/":
//
//	auth/s/<session id>          -> session JSON
//	auth/u/<user id>/<session id> -> "" (sessions of a user)
//	auth/x/<session id>/<hash>   -> "" (spent refresh-token hashes)
//
// The database belongs to one process, so a mutex makes each
// read-compare-write atomic; every write is one synced batch. Nothing
// expires on its own: the embedded mode runs Sweep periodically.
type PebbleStore struct {
	db         *pebble.DB
	mu         sync.Mutex
	sweepBatch int
}

var _ Store = (*PebbleStore)(nil)

// NewPebbleStore uses db (shared by every domain of the process).
func NewPebbleStore(db *pebble.DB) *PebbleStore {
	return &PebbleStore{db: db, sweepBatch: pebblex.SweepBatch}
}

func sessionKey(id string) []byte           { return pebblex.Key("auth", "s", id) }
func userSessionKey(uid, sid string) []byte { return pebblex.Key("auth", "u", uid, sid) }
func userPrefix(uid string) []byte          { return pebblex.Key("auth", "u", uid, "") }
func spentKey(sid, hash string) []byte      { return pebblex.Key("auth", "x", sid, hash) }
func spentPrefix(sid string) []byte         { return pebblex.Key("auth", "x", sid, "") }

func storeErr(err error, what string) error {
	if err == nil {
		return nil
	}
	return errs.Wrap(errs.Unavailable, err, "session store: "+what)
}

func (s *PebbleStore) get(id string) (Session, bool, error) {
	v, ok, err := pebblex.Get(s.db, sessionKey(id))
	if err != nil || !ok {
		return Session{}, false, storeErr(err, "read")
	}
	var sess Session
	if err := json.Unmarshal(v, &sess); err != nil {
		return Session{}, false, errs.Wrap(errs.Internal, err, "session store: corrupt session "+id)
	}
	return sess, true, nil
}

func setSession(b *pebble.Batch, sess Session) error {
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	return b.Set(sessionKey(sess.ID), v, nil)
}

func (s *PebbleStore) CreateSession(ctx context.Context, sess Session) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if sess.ID == "" || sess.UserID == "" {
		return errs.New(errs.InvalidArgument, "session needs an id and a user id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok, err := s.get(sess.ID); err != nil {
		return err
	} else if ok {
		return errs.New(errs.AlreadyExists, "session exists")
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := setSession(b, sess); err != nil {
		return err
	}
	if err := b.Set(userSessionKey(sess.UserID, sess.ID), nil, nil); err != nil {
		return storeErr(err, "write")
	}
	return storeErr(b.Commit(pebble.Sync), "write")
}

func (s *PebbleStore) GetSession(ctx context.Context, id string) (Session, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, err
	}
	sess, ok, err := s.get(id)
	if err != nil {
		return Session{}, err
	}
	if !ok {
		return Session{}, ErrSessionNotFound
	}
	return sess, nil
}

func (s *PebbleStore) sessionIDs(userID string) ([]string, error) {
	prefix := userPrefix(userID)
	var out []string
	err := pebblex.Scan(s.db, prefix, false, func(k, _ []byte) bool {
		out = append(out, string(k[len(prefix):]))
		return true
	})
	return out, storeErr(err, "scan")
}

func (s *PebbleStore) ListSessions(ctx context.Context, userID string) ([]Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ids, err := s.sessionIDs(userID)
	if err != nil {
		return nil, err
	}
	out := make([]Session, 0, len(ids))
	for _, id := range ids {
		sess, ok, err := s.get(id)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, sess)
		}
	}
	sortSessions(out)
	return out, nil
}

func (s *PebbleStore) RotateRefresh(ctx context.Context, sessionID, presentedHash, newHash string, now, expiresAt time.Time) (Session, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok, err := s.get(sessionID)
	if err != nil {
		return Session{}, err
	}
	if !ok {
		return Session{}, ErrInvalidRefresh
	}
	if presentedHash != sess.RefreshHash {
		_, spent, err := pebblex.Get(s.db, spentKey(sessionID, presentedHash))
		if err != nil {
			return Session{}, storeErr(err, "read")
		}
		switch {
		case !spent:
			return Session{}, ErrInvalidRefresh
		case sess.Revoked:
			return Session{}, ErrSessionRevoked
		}
		sess.Revoked, sess.RevokedAt = true, now
		b := s.db.NewBatch()
		defer b.Close()
		if err := setSession(b, sess); err != nil {
			return Session{}, err
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return Session{}, storeErr(err, "write")
		}
		return Session{}, ErrRefreshReused
	}
	if sess.Revoked {
		return Session{}, ErrSessionRevoked
	}
	if !now.Before(sess.ExpiresAt) {
		return Session{}, ErrSessionExpired
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(spentKey(sessionID, sess.RefreshHash), nil, nil); err != nil {
		return Session{}, storeErr(err, "write")
	}
	sess.RefreshHash, sess.ExpiresAt = newHash, expiresAt
	sess.Generation++
	if err := setSession(b, sess); err != nil {
		return Session{}, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return Session{}, storeErr(err, "write")
	}
	return sess, nil
}

func (s *PebbleStore) RevokeSession(ctx context.Context, id string, at time.Time) (Session, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok, err := s.get(id)
	if err != nil {
		return Session{}, err
	}
	if !ok {
		return Session{}, ErrSessionNotFound
	}
	if sess.Revoked {
		return sess, nil
	}
	sess.Revoked, sess.RevokedAt = true, at
	b := s.db.NewBatch()
	defer b.Close()
	if err := setSession(b, sess); err != nil {
		return Session{}, err
	}
	return sess, storeErr(b.Commit(pebble.Sync), "write")
}

func (s *PebbleStore) RevokeUserSessions(ctx context.Context, userID, exceptID string, at time.Time) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, err := s.sessionIDs(userID)
	if err != nil {
		return nil, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	revoked := []string{}
	for _, id := range ids {
		if id == exceptID {
			continue
		}
		sess, ok, err := s.get(id)
		if err != nil {
			return nil, err
		}
		if !ok || sess.Revoked {
			continue
		}
		sess.Revoked, sess.RevokedAt = true, at
		if err := setSession(b, sess); err != nil {
			return nil, err
		}
		revoked = append(revoked, id)
	}
	if len(revoked) == 0 {
		return revoked, nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, storeErr(err, "write")
	}
	return revoked, nil
}

func (s *PebbleStore) IsRevoked(ctx context.Context, sessionID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	sess, ok, err := s.get(sessionID)
	if err != nil {
		return false, err
	}
	return !ok || sess.Revoked, nil
}

// Sweep deletes every session whose refresh token expired sessionGrace
// or more before now, revoked or not, with its user index entry and spent
// hashes, at most sweepBatch sessions per batch, and returns how many
// sessions it removed. The grace is RedisStore's: for a day a late refresh
// still hears "session expired" and a revoked session is still listed.
//
// Nothing still needed goes: a live session's refresh token has not
// expired; every access token of a session was issued with one of its
// refresh tokens and lives AccessTTL (minutes) where the refresh token
// lives RefreshTTL (days), so by then they have expired too; and were one
// still valid, IsRevoked answers true for an unknown session, so a
// revocation outlives its record and a swept session never comes back.
//
// Cost: a full scan of auth/s/ decoding every session, since rotations
// move ExpiresAt and no key order finds the expired ones. Sessions are a
// few per user, so this is small; the scan holds no lock, only the
// deletes of each batch do.
func (s *PebbleStore) Sweep(ctx context.Context, now time.Time) (removed int, err error) {
	cutoff := now.Add(-sessionGrace)
	prefix := pebblex.Key("auth", "s", "")
	end := pebblex.PrefixEnd(prefix)
	var bad error // a corrupt session is left alone and reported
	for from := prefix; from != nil; {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		var due []string
		from, err = pebblex.ScanRange(s.db, from, end, func(k, v []byte) bool {
			var sess struct {
				ExpiresAt time.Time `json:"expires_at"`
			}
			if err := json.Unmarshal(v, &sess); err != nil {
				bad = errs.Wrap(errs.Internal, err, "session store: corrupt session "+string(k[len(prefix):]))
				return true
			}
			if !sess.ExpiresAt.After(cutoff) {
				due = append(due, string(k[len(prefix):]))
			}
			return len(due) < s.sweepBatch
		})
		if err != nil {
			return removed, storeErr(err, "scan")
		}
		n, err := s.deleteExpired(due, cutoff)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, bad
}

// deleteExpired deletes the sessions of sids that are still expired at
// cutoff, re-read under the lock so a concurrent write is never undone.
func (s *PebbleStore) deleteExpired(sids []string, cutoff time.Time) (int, error) {
	if len(sids) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	for _, id := range sids {
		sess, ok, err := s.get(id)
		if err != nil {
			return 0, err
		}
		if !ok || sess.ExpiresAt.After(cutoff) {
			continue
		}
		if err := b.Delete(sessionKey(id), nil); err != nil {
			return 0, storeErr(err, "delete")
		}
		if err := b.Delete(userSessionKey(sess.UserID, id), nil); err != nil {
			return 0, storeErr(err, "delete")
		}
		if err := b.DeleteRange(spentPrefix(id), pebblex.PrefixEnd(spentPrefix(id)), nil); err != nil {
			return 0, storeErr(err, "delete")
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	// Not synced: no answer depends on it, and a sweep lost in a crash is
	// done again by the next one.
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, storeErr(err, "delete")
	}
	return n, nil
}

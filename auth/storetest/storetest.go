// Package storetest is the contract every auth.Store passes: the Pebble
// backend runs it in unit tests, a Redis backend will run it unchanged.
// Every test uses fresh ids, so one shared store is fine.
package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
)

// Run runs the contract against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) auth.Store) {
	ctx := context.Background()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	wantErr := func(t *testing.T, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("err = %v, want %v", err, want)
		}
	}
	session := func(userID string, created time.Time) auth.Session {
		id := ids.NewAt(created)
		return auth.Session{ID: id, UserID: userID, DeviceID: "dev-" + id, RefreshHash: "h0-" + id, CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
	}
	revoked := func(t *testing.T, s auth.Store, id string) bool {
		t.Helper()
		r, err := s.IsRevoked(ctx, id)
		must(t, err)
		return r
	}

	t.Run("CreateThenGetRoundTrips", func(t *testing.T) {
		s := newStore(t)
		in := session(ids.New(), t0)
		must(t, s.CreateSession(ctx, in))
		got, err := s.GetSession(ctx, in.ID)
		must(t, err)
		if got.ID != in.ID || got.UserID != in.UserID || got.DeviceID != in.DeviceID || got.RefreshHash != in.RefreshHash ||
			got.Generation != 0 || !got.CreatedAt.Equal(in.CreatedAt) || !got.ExpiresAt.Equal(in.ExpiresAt) || got.Revoked {
			t.Fatalf("got %+v, want %+v", got, in)
		}
		if revoked(t, s, in.ID) {
			t.Fatal("new session reported revoked")
		}
	})

	t.Run("CreateTwiceIsAlreadyExists", func(t *testing.T) {
		s := newStore(t)
		in := session(ids.New(), t0)
		must(t, s.CreateSession(ctx, in))
		if err := s.CreateSession(ctx, in); !errs.HasCode(err, errs.AlreadyExists) {
			t.Fatalf("err = %v, want already_exists", err)
		}
	})

	t.Run("UnknownSessionIsNotFoundAndCountsAsRevoked", func(t *testing.T) {
		s := newStore(t)
		_, err := s.GetSession(ctx, ids.New())
		wantErr(t, err, auth.ErrSessionNotFound)
		_, err = s.RevokeSession(ctx, ids.New(), t0)
		wantErr(t, err, auth.ErrSessionNotFound)
		if !revoked(t, s, ids.New()) {
			t.Fatal("unknown session must count as revoked")
		}
	})

	t.Run("ListSessionsReturnsOnlyTheUsersOldestFirst", func(t *testing.T) {
		s := newStore(t)
		uid, other := ids.New(), ids.New()
		b := session(uid, t0.Add(time.Minute))
		a := session(uid, t0)
		must(t, s.CreateSession(ctx, b))
		must(t, s.CreateSession(ctx, a))
		must(t, s.CreateSession(ctx, session(other, t0)))
		got, err := s.ListSessions(ctx, uid)
		must(t, err)
		if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
			t.Fatalf("got %+v, want [%s %s]", got, a.ID, b.ID)
		}
		none, err := s.ListSessions(ctx, ids.New())
		must(t, err)
		if len(none) != 0 {
			t.Fatalf("unknown user has sessions %+v", none)
		}
	})

	t.Run("RotateWithCurrentHashAdvances", func(t *testing.T) {
		s := newStore(t)
		in := session(ids.New(), t0)
		must(t, s.CreateSession(ctx, in))
		exp := t0.Add(2 * time.Hour)
		got, err := s.RotateRefresh(ctx, in.ID, in.RefreshHash, "h1", t0.Add(time.Minute), exp)
		must(t, err)
		if got.RefreshHash != "h1" || got.Generation != 1 || !got.ExpiresAt.Equal(exp) || got.UserID != in.UserID || got.DeviceID != in.DeviceID {
			t.Fatalf("rotated = %+v", got)
		}
		got, err = s.RotateRefresh(ctx, in.ID, "h1", "h2", t0.Add(2*time.Minute), exp)
		must(t, err)
		if got.Generation != 2 {
			t.Fatalf("generation = %d, want 2", got.Generation)
		}
		stored, err := s.GetSession(ctx, in.ID)
		must(t, err)
		if stored.RefreshHash != "h2" || stored.Generation != 2 {
			t.Fatalf("stored = %+v", stored)
		}
	})

	t.Run("RotateWithSpentHashRevokesTheSession", func(t *testing.T) {
		s := newStore(t)
		in := session(ids.New(), t0)
		must(t, s.CreateSession(ctx, in))
		_, err := s.RotateRefresh(ctx, in.ID, in.RefreshHash, "h1", t0, t0.Add(time.Hour))
		must(t, err)
		_, err = s.RotateRefresh(ctx, in.ID, in.RefreshHash, "hx", t0, t0.Add(time.Hour))
		wantErr(t, err, auth.ErrRefreshReused)
		if !revoked(t, s, in.ID) {
			t.Fatal("reuse must revoke the session")
		}
		// The newest token of the family dies with it.
		_, err = s.RotateRefresh(ctx, in.ID, "h1", "h2", t0, t0.Add(time.Hour))
		wantErr(t, err, auth.ErrSessionRevoked)
	})

	t.Run("RotateWithUnknownHashChangesNothing", func(t *testing.T) {
		s := newStore(t)
		in := session(ids.New(), t0)
		must(t, s.CreateSession(ctx, in))
		_, err := s.RotateRefresh(ctx, in.ID, "forged", "h1", t0, t0.Add(time.Hour))
		wantErr(t, err, auth.ErrInvalidRefresh)
		if revoked(t, s, in.ID) {
			t.Fatal("a forged token must not revoke the session")
		}
		_, err = s.RotateRefresh(ctx, ids.New(), "forged", "h1", t0, t0.Add(time.Hour))
		wantErr(t, err, auth.ErrInvalidRefresh)
		_, err = s.RotateRefresh(ctx, in.ID, in.RefreshHash, "h1", t0, t0.Add(time.Hour))
		must(t, err)
	})

	t.Run("RotateAfterExpiryOrRevocationFails", func(t *testing.T) {
		s := newStore(t)
		a := session(ids.New(), t0)
		must(t, s.CreateSession(ctx, a))
		_, err := s.RotateRefresh(ctx, a.ID, a.RefreshHash, "h1", a.ExpiresAt, a.ExpiresAt.Add(time.Hour))
		wantErr(t, err, auth.ErrSessionExpired)

		b := session(ids.New(), t0)
		must(t, s.CreateSession(ctx, b))
		_, err = s.RevokeSession(ctx, b.ID, t0)
		must(t, err)
		_, err = s.RotateRefresh(ctx, b.ID, b.RefreshHash, "h1", t0, t0.Add(time.Hour))
		wantErr(t, err, auth.ErrSessionRevoked)
	})

	t.Run("ConcurrentRotationsOfOneTokenHaveOneWinner", func(t *testing.T) {
		s := newStore(t)
		in := session(ids.New(), t0)
		must(t, s.CreateSession(ctx, in))
		const n = 8
		var wg sync.WaitGroup
		results := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, err := s.RotateRefresh(ctx, in.ID, in.RefreshHash, "next-"+string(rune('a'+i)), t0, t0.Add(time.Hour))
				results <- err
			}(i)
		}
		wg.Wait()
		close(results)
		wins := 0
		for err := range results {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, auth.ErrRefreshReused), errors.Is(err, auth.ErrSessionRevoked):
			default:
				t.Fatalf("unexpected err %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d rotations won, want exactly 1", wins)
		}
		if !revoked(t, s, in.ID) {
			t.Fatal("the losers presented a spent token: the session must be revoked")
		}
	})

	t.Run("RevokeSessionIsIdempotentAndKeepsFirstTime", func(t *testing.T) {
		s := newStore(t)
		in := session(ids.New(), t0)
		must(t, s.CreateSession(ctx, in))
		got, err := s.RevokeSession(ctx, in.ID, t0.Add(time.Minute))
		must(t, err)
		if !got.Revoked || !got.RevokedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("revoked = %+v", got)
		}
		got, err = s.RevokeSession(ctx, in.ID, t0.Add(time.Hour))
		must(t, err)
		if !got.RevokedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("second revoke moved RevokedAt to %v", got.RevokedAt)
		}
		if !revoked(t, s, in.ID) {
			t.Fatal("not revoked")
		}
	})

	t.Run("RevokeUserSessionsSparesTheExceptionAndOtherUsers", func(t *testing.T) {
		s := newStore(t)
		uid := ids.New()
		keep, a, b := session(uid, t0), session(uid, t0.Add(time.Second)), session(uid, t0.Add(2*time.Second))
		stranger := session(ids.New(), t0)
		for _, x := range []auth.Session{keep, a, b, stranger} {
			must(t, s.CreateSession(ctx, x))
		}
		_, err := s.RevokeSession(ctx, b.ID, t0)
		must(t, err)
		got, err := s.RevokeUserSessions(ctx, uid, keep.ID, t0)
		must(t, err)
		if len(got) != 1 || got[0] != a.ID {
			t.Fatalf("revoked %v, want only the live one [%s]", got, a.ID)
		}
		if revoked(t, s, keep.ID) || revoked(t, s, stranger.ID) || !revoked(t, s, a.ID) {
			t.Fatal("wrong sessions revoked")
		}
		got, err = s.RevokeUserSessions(ctx, uid, "", t0)
		must(t, err)
		if len(got) != 1 || got[0] != keep.ID || !revoked(t, s, keep.ID) {
			t.Fatalf("revoke all revoked %v, want [%s]", got, keep.ID)
		}
		got, err = s.RevokeUserSessions(ctx, ids.New(), "", t0)
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("unknown user: revoked %v", got)
		}
	})
}

package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/auth/storetest"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/pebblex"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func TestPebbleStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) auth.Store {
		db := testinfra.OpenPebble(t, t.TempDir())
		t.Cleanup(func() { _ = db.Close() })
		return auth.NewPebbleStore(db)
	})
}

func TestPebbleStoreContractShared(t *testing.T) {
	db := testinfra.OpenPebble(t, t.TempDir())
	t.Cleanup(func() { _ = db.Close() })
	shared := auth.NewPebbleStore(db)
	storetest.Run(t, func(*testing.T) auth.Store { return shared })
}

func TestPebbleRevocationsAndRotationsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	uid := ids.New()
	a := auth.Session{ID: ids.New(), UserID: uid, DeviceID: "d", RefreshHash: "a0", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	b := auth.Session{ID: ids.New(), UserID: uid, DeviceID: "d", RefreshHash: "b0", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}

	db := testinfra.OpenPebble(t, dir)
	s := auth.NewPebbleStore(db)
	for _, x := range []auth.Session{a, b} {
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RevokeSession(ctx, a.ID, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefresh(ctx, b.ID, "b0", "b1", t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = testinfra.OpenPebble(t, dir)
	defer db.Close()
	s = auth.NewPebbleStore(db)
	if r, err := s.IsRevoked(ctx, a.ID); err != nil || !r {
		t.Fatalf("after restart: revoked=%v err=%v, want revoked", r, err)
	}
	// The spent hash is remembered too: presenting it revokes the family.
	if _, err := s.RotateRefresh(ctx, b.ID, "b0", "b2", t0, t0.Add(time.Hour)); err == nil {
		t.Fatal("spent refresh hash accepted after restart")
	}
	if r, _ := s.IsRevoked(ctx, b.ID); !r {
		t.Fatal("reuse after restart did not revoke the session")
	}
}

func TestPebbleSweepRemovesExactlyTheSessionsPastExpiryAndGrace(t *testing.T) {
	ctx := context.Background()
	db := testinfra.OpenPebble(t, t.TempDir())
	defer db.Close()
	s := auth.NewPebbleStore(db)
	s.SetSweepBatch(2) // several batches
	now := time.Date(2030, 3, 1, 0, 0, 0, 0, time.UTC)
	uid := ids.New()
	create := func(t *testing.T, exp time.Time) auth.Session {
		t.Helper()
		x := auth.Session{ID: ids.New(), UserID: uid, DeviceID: "d", RefreshHash: "h0", CreatedAt: exp.Add(-time.Hour), ExpiresAt: exp}
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	revoke := func(t *testing.T, x auth.Session) {
		t.Helper()
		if _, err := s.RevokeSession(ctx, x.ID, x.CreatedAt); err != nil {
			t.Fatal(err)
		}
	}
	due := now.Add(-auth.SessionGrace) // expired this long ago: swept

	live := create(t, now.Add(20*24*time.Hour))
	inGrace := create(t, due.Add(time.Millisecond))
	revokedLive := create(t, now.Add(24*time.Hour))
	revoke(t, revokedLive)
	// Rotated before it expired, so it has a spent hash to sweep too.
	rotated := create(t, due.Add(-time.Hour))
	if _, err := s.RotateRefresh(ctx, rotated.ID, "h0", "h1", due.Add(-2*time.Hour), due); err != nil {
		t.Fatal(err)
	}
	revokedDue := create(t, due.Add(-time.Hour))
	revoke(t, revokedDue)
	gone := []string{rotated.ID, revokedDue.ID}
	for i := 0; i < 5; i++ {
		gone = append(gone, create(t, due.Add(-time.Duration(i)*time.Minute)).ID)
	}
	other := auth.Session{ID: ids.New(), UserID: ids.New(), DeviceID: "d", RefreshHash: "o", CreatedAt: due.Add(-time.Hour), ExpiresAt: due.Add(-time.Minute)}
	if err := s.CreateSession(ctx, other); err != nil {
		t.Fatal(err)
	}
	gone = append(gone, other.ID)

	removed, err := s.Sweep(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if removed != len(gone) {
		t.Fatalf("removed %d sessions, want %d", removed, len(gone))
	}

	t.Run("swept sessions are gone, keys and all, and count as revoked", func(t *testing.T) {
		for _, id := range gone {
			if _, err := s.GetSession(ctx, id); !errors.Is(err, auth.ErrSessionNotFound) {
				t.Fatalf("swept session %s: %v, want not found", id, err)
			}
			if r, err := s.IsRevoked(ctx, id); err != nil || !r {
				t.Fatalf("swept session %s: revoked=%v err=%v, want revoked", id, r, err)
			}
		}
		err := pebblex.Scan(db, []byte("auth/"), false, func(k, _ []byte) bool {
			for _, id := range gone {
				if strings.Contains(string(k), id) {
					t.Errorf("key %q of swept session %s left behind", k, id)
				}
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RotateRefresh(ctx, rotated.ID, "h1", "h2", now, now.Add(time.Hour)); !errors.Is(err, auth.ErrInvalidRefresh) {
			t.Fatalf("refresh of a swept session: %v, want invalid refresh", err)
		}
	})

	t.Run("the rest is listed and behaves as before", func(t *testing.T) {
		list, err := s.ListSessions(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, x := range list {
			got[x.ID] = true
		}
		if len(list) != 3 || !got[live.ID] || !got[inGrace.ID] || !got[revokedLive.ID] {
			t.Fatalf("listed %+v, want the live, in-grace and revoked-live sessions", list)
		}
		if _, err := s.RotateRefresh(ctx, live.ID, "h0", "h1", now, now.Add(30*24*time.Hour)); err != nil {
			t.Fatalf("live session no longer rotates: %v", err)
		}
		if _, err := s.RotateRefresh(ctx, inGrace.ID, "h0", "h1", now, now.Add(time.Hour)); !errors.Is(err, auth.ErrSessionExpired) {
			t.Fatalf("refresh in the grace: %v, want session expired", err)
		}
		if _, err := s.RotateRefresh(ctx, revokedLive.ID, "h0", "h1", now, now.Add(time.Hour)); !errors.Is(err, auth.ErrSessionRevoked) {
			t.Fatalf("refresh of a revoked session: %v, want session revoked", err)
		}
		if r, err := s.IsRevoked(ctx, revokedLive.ID); err != nil || !r {
			t.Fatalf("revoked session: revoked=%v err=%v", r, err)
		}
		if r, err := s.IsRevoked(ctx, live.ID); err != nil || r {
			t.Fatalf("live session: revoked=%v err=%v", r, err)
		}
	})

	t.Run("sweeping again removes nothing", func(t *testing.T) {
		if n, err := s.Sweep(ctx, now); err != nil || n != 0 {
			t.Fatalf("second sweep removed %d (err %v), want 0", n, err)
		}
	})
}

// An access token outliving its session's record (AccessTTL longer than
// RefreshTTL plus the grace) must still be refused once its session is
// swept: an unknown session counts as revoked.
func TestPebbleSweepKeepsLiveTokensWorkingAndRevokedOnesRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(o *auth.Options) { o.AccessTTL = 72 * time.Hour }) // RefreshTTL 24h
	store := f.store.(*auth.PebbleStore)
	f.accounts.add(t, "ann@example.com", testPassword)
	live := f.login(t, "ann@example.com", testPassword, "phone")
	gone := f.login(t, "ann@example.com", testPassword, "laptop")
	if err := f.svc.RevokeToken(ctx, "", auth.Revocation{SessionID: gone.SessionID}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{23 * time.Hour, 23 * time.Hour} {
		f.clock.Advance(d)
		var err error
		if live, err = f.svc.RefreshToken(ctx, live.RefreshToken); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(3 * time.Hour) // 49h after login: the revoked session is a day past its refresh expiry

	n, err := store.Sweep(ctx, f.clock.Now())
	if err != nil || n != 1 {
		t.Fatalf("sweep removed %d (err %v), want the revoked session only", n, err)
	}
	if _, err := f.verifier.Authenticate(ctx, gone.AccessToken); !errors.Is(err, auth.ErrSessionRevoked) {
		t.Fatalf("unexpired token of the swept revoked session: %v, want session revoked", err)
	}
	if p, err := f.verifier.Authenticate(ctx, live.AccessToken); err != nil || p.SessionID != live.SessionID {
		t.Fatalf("live session's token after the sweep: %+v, %v", p, err)
	}
	if _, err := f.svc.RefreshToken(ctx, live.RefreshToken); err != nil {
		t.Fatalf("live session no longer refreshes after the sweep: %v", err)
	}
}

package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/auth/storetest"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/pebblex"
)

func openPebble(t *testing.T, dir string) *pebble.DB {
	t.Helper()
	db, err := pebblex.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestPebbleStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) auth.Store {
		db := openPebble(t, t.TempDir())
		t.Cleanup(func() { _ = db.Close() })
		return auth.NewPebbleStore(db)
	})
}

func TestPebbleStoreContractShared(t *testing.T) {
	db := openPebble(t, t.TempDir())
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

	db := openPebble(t, dir)
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

	db = openPebble(t, dir)
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

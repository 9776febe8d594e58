// Package storetest is the contract every presence.Backend passes: the
// memory backend runs it in unit tests, the Redis backend in integration
// tests, unchanged.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/shared/ids"
)

// Run runs the contract against backends made by newBackend. Every test
// uses fresh ids, so a shared backend is fine.
func Run(t *testing.T, newBackend func(t *testing.T) presence.Backend) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ttl := time.Minute
	ctx := context.Background()
	sess := func(user, conn, device string, since time.Time) presence.Session {
		return presence.Session{UserID: user, GatewayID: "gw-1", ConnID: conn, DeviceID: device, Since: since}
	}
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("first session comes online, second does not", func(t *testing.T) {
		b := newBackend(t)
		u := ids.New()
		came, err := b.Add(ctx, sess(u, "c1", "phone", t0), t0.Add(ttl), t0)
		must(t, err)
		if !came {
			t.Fatal("first session: came = false")
		}
		came, err = b.Add(ctx, sess(u, "c2", "laptop", t0.Add(time.Second)), t0.Add(ttl+time.Second), t0.Add(time.Second))
		must(t, err)
		if came {
			t.Fatal("second session: came = true")
		}
		recs, err := b.Get(ctx, []string{u}, t0.Add(2*time.Second))
		must(t, err)
		got := recs[u].Sessions
		if len(got) != 2 || got[0].ConnID != "c1" || got[1].ConnID != "c2" || got[0].DeviceID != "phone" || got[0].GatewayID != "gw-1" {
			t.Fatalf("sessions = %+v", got)
		}
		if !got[0].Since.Equal(t0) {
			t.Fatalf("since = %v, want %v", got[0].Since, t0)
		}
	})

	t.Run("re-adding the same connection replaces it and is not a transition", func(t *testing.T) {
		b := newBackend(t)
		u := ids.New()
		_, err := b.Add(ctx, sess(u, "c1", "phone", t0), t0.Add(ttl), t0)
		must(t, err)
		came, err := b.Add(ctx, sess(u, "c1", "tablet", t0), t0.Add(ttl), t0)
		must(t, err)
		if came {
			t.Fatal("re-add came = true")
		}
		recs, err := b.Get(ctx, []string{u}, t0)
		must(t, err)
		if s := recs[u].Sessions; len(s) != 1 || s[0].DeviceID != "tablet" {
			t.Fatalf("sessions = %+v", s)
		}
	})

	t.Run("only removing the last live session leaves", func(t *testing.T) {
		b := newBackend(t)
		u := ids.New()
		_, err := b.Add(ctx, sess(u, "c1", "a", t0), t0.Add(ttl), t0)
		must(t, err)
		_, err = b.Add(ctx, sess(u, "c2", "b", t0), t0.Add(ttl), t0)
		must(t, err)
		left, err := b.Remove(ctx, u, "c1", t0.Add(time.Second))
		must(t, err)
		if left {
			t.Fatal("removing one of two: left = true")
		}
		left, err = b.Remove(ctx, u, "c2", t0.Add(2*time.Second))
		must(t, err)
		if !left {
			t.Fatal("removing the last: left = false")
		}
		left, err = b.Remove(ctx, u, "c2", t0.Add(3*time.Second))
		must(t, err)
		if left {
			t.Fatal("removing again: left = true")
		}
		recs, err := b.Get(ctx, []string{u}, t0.Add(3*time.Second))
		must(t, err)
		if len(recs[u].Sessions) != 0 {
			t.Fatalf("sessions after removal = %+v", recs[u].Sessions)
		}
		if !recs[u].LastSeen.Equal(t0.Add(2 * time.Second)) {
			t.Fatalf("last seen = %v, want %v", recs[u].LastSeen, t0.Add(2*time.Second))
		}
	})

	t.Run("removing an unknown session is a no-op", func(t *testing.T) {
		b := newBackend(t)
		left, err := b.Remove(ctx, ids.New(), "nope", t0)
		must(t, err)
		if left {
			t.Fatal("left = true for unknown user")
		}
	})

	t.Run("expired sessions are hidden and touch cannot revive them", func(t *testing.T) {
		b := newBackend(t)
		u := ids.New()
		_, err := b.Add(ctx, sess(u, "c1", "a", t0), t0.Add(ttl), t0)
		must(t, err)
		after := t0.Add(ttl)
		recs, err := b.Get(ctx, []string{u}, after)
		must(t, err)
		if len(recs[u].Sessions) != 0 {
			t.Fatalf("expired session still listed: %+v", recs[u].Sessions)
		}
		found, err := b.Touch(ctx, u, "c1", after.Add(ttl), after)
		must(t, err)
		if found {
			t.Fatal("touch of an expired session: found = true")
		}
		if !recs[u].LastSeen.Equal(t0) {
			t.Fatalf("last seen = %v, want %v", recs[u].LastSeen, t0)
		}
	})

	t.Run("touch extends expiry", func(t *testing.T) {
		b := newBackend(t)
		u := ids.New()
		_, err := b.Add(ctx, sess(u, "c1", "a", t0), t0.Add(ttl), t0)
		must(t, err)
		mid := t0.Add(ttl / 2)
		found, err := b.Touch(ctx, u, "c1", mid.Add(ttl), mid)
		must(t, err)
		if !found {
			t.Fatal("touch of a live session: found = false")
		}
		recs, err := b.Get(ctx, []string{u}, t0.Add(ttl+time.Second))
		must(t, err)
		if len(recs[u].Sessions) != 1 {
			t.Fatal("touched session expired at the old deadline")
		}
		if !recs[u].LastSeen.Equal(mid) {
			t.Fatalf("last seen = %v, want %v", recs[u].LastSeen, mid)
		}
		found, err = b.Touch(ctx, u, "other", mid.Add(ttl), mid)
		must(t, err)
		if found {
			t.Fatal("touch of an unknown connection: found = true")
		}
	})

	t.Run("expire reports users whose last session expired, once", func(t *testing.T) {
		b := newBackend(t)
		gone, stays, partly := ids.New(), ids.New(), ids.New()
		_, err := b.Add(ctx, sess(gone, "c1", "a", t0), t0.Add(ttl), t0)
		must(t, err)
		_, err = b.Add(ctx, sess(stays, "c1", "a", t0), t0.Add(3*ttl), t0)
		must(t, err)
		_, err = b.Add(ctx, sess(partly, "c1", "a", t0), t0.Add(ttl), t0)
		must(t, err)
		_, err = b.Add(ctx, sess(partly, "c2", "b", t0), t0.Add(3*ttl), t0)
		must(t, err)
		left, err := b.Expire(ctx, t0.Add(2*ttl))
		must(t, err)
		if !contains(left, gone) || contains(left, stays) || contains(left, partly) {
			t.Fatalf("left = %v; want %s only among ours", left, gone)
		}
		left, err = b.Expire(ctx, t0.Add(2*ttl))
		must(t, err)
		if contains(left, gone) {
			t.Fatal("an expired user was reported twice")
		}
		recs, err := b.Get(ctx, []string{partly}, t0.Add(2*ttl))
		must(t, err)
		if s := recs[partly].Sessions; len(s) != 1 || s[0].ConnID != "c2" {
			t.Fatalf("partly expired user sessions = %+v", s)
		}
	})

	t.Run("adding after expiry comes online again", func(t *testing.T) {
		b := newBackend(t)
		u := ids.New()
		_, err := b.Add(ctx, sess(u, "c1", "a", t0), t0.Add(ttl), t0)
		must(t, err)
		later := t0.Add(2 * ttl)
		came, err := b.Add(ctx, sess(u, "c2", "a", later), later.Add(ttl), later)
		must(t, err)
		if !came {
			t.Fatal("came = false although every earlier session had expired")
		}
		recs, err := b.Get(ctx, []string{u}, later)
		must(t, err)
		if s := recs[u].Sessions; len(s) != 1 || s[0].ConnID != "c2" {
			t.Fatalf("sessions = %+v", s)
		}
	})

	t.Run("get of unknown users returns nothing for them", func(t *testing.T) {
		b := newBackend(t)
		u := ids.New()
		recs, err := b.Get(ctx, []string{u}, t0)
		must(t, err)
		if r, ok := recs[u]; ok && (len(r.Sessions) != 0 || !r.LastSeen.IsZero()) {
			t.Fatalf("unknown user record = %+v", r)
		}
	})
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

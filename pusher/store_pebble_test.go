package pusher_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/pusher/storetest"
	"github.com/beehive-im/beehive/shared/ids"
)

func openPebble(t *testing.T) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestPebbleStoreContract(t *testing.T) {
	db := openPebble(t)
	storetest.Run(t, func(t *testing.T) pusher.Store { return pusher.NewPebbleStore(db) })
}

func TestPebblePrunePushedBeforeDropsOnlyOlderMessages(t *testing.T) {
	s := pusher.NewPebbleStore(openPebble(t))
	ctx := t.Context()
	old, cut, newer := ids.New(), ids.New(), ids.New()
	for _, m := range []string{old, cut, newer} {
		if err := s.MarkPushed(ctx, m, "u1", "d"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PrunePushedBefore(cut); err != nil {
		t.Fatal(err)
	}
	for m, want := range map[string]bool{old: false, cut: true, newer: true} {
		got, err := s.Pushed(ctx, m, "u1", "d")
		if err != nil || got != want {
			t.Errorf("Pushed(%s) = %v, %v; want %v", m, got, err, want)
		}
	}
}

package pusher_test

import (
	"testing"

	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/pusher/storetest"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func TestPebbleStoreContract(t *testing.T) {
	db := testinfra.Pebble(t)
	storetest.Run(t, func(t *testing.T) pusher.Store { return pusher.NewPebbleStore(db) })
}

func TestPebblePrunePushedBeforeDropsOnlyOlderMessages(t *testing.T) {
	s := pusher.NewPebbleStore(testinfra.Pebble(t))
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

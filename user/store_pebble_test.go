package user_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/beehive-im/beehive/user"
	"github.com/beehive-im/beehive/user/storetest"
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
	storetest.Run(t, func(t *testing.T) user.Store { return user.NewPebbleStore(openPebble(t)) })
}

func TestPebbleStoreContractShared(t *testing.T) {
	shared := user.NewPebbleStore(openPebble(t))
	storetest.Run(t, func(*testing.T) user.Store { return shared })
}

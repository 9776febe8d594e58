package group_test

import (
	"testing"

	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/group/storetest"
	"github.com/beehive-im/beehive/shared/pebblex"
)

func openPebble(t *testing.T) *group.PebbleStore {
	t.Helper()
	db, err := pebblex.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return group.NewPebbleStore(db)
}

func TestPebbleStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) group.Store { return openPebble(t) })
}

func TestPebbleStoreContractShared(t *testing.T) {
	shared := openPebble(t)
	storetest.Run(t, func(*testing.T) group.Store { return shared })
}

package query_test

import (
	"testing"

	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/query/storetest"
	"github.com/beehive-im/beehive/shared/pebblex"
)

func openPebble(t *testing.T) *query.PebbleStore {
	t.Helper()
	db, err := pebblex.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return query.NewPebbleStore(db)
}

func TestPebbleStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) query.Store { return openPebble(t) })
}

func TestPebbleStoreContractShared(t *testing.T) {
	shared := openPebble(t)
	storetest.Run(t, func(*testing.T) query.Store { return shared })
}

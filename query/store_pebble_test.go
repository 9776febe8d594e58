package query_test

import (
	"testing"

	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/query/storetest"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func openPebble(t *testing.T) *query.PebbleStore {
	return query.NewPebbleStore(testinfra.Pebble(t))
}

func TestPebbleStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) query.Store { return openPebble(t) })
}

func TestPebbleStoreContractShared(t *testing.T) {
	shared := openPebble(t)
	storetest.Run(t, func(*testing.T) query.Store { return shared })
}

package group_test

import (
	"testing"

	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/group/storetest"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func openPebble(t *testing.T) *group.PebbleStore {
	return group.NewPebbleStore(testinfra.Pebble(t))
}

func TestPebbleStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) group.Store { return openPebble(t) })
}

func TestPebbleStoreContractShared(t *testing.T) {
	shared := openPebble(t)
	storetest.Run(t, func(*testing.T) group.Store { return shared })
}

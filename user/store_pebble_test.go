package user_test

import (
	"testing"

	"github.com/beehive-im/beehive/shared/testinfra"
	"github.com/beehive-im/beehive/user"
	"github.com/beehive-im/beehive/user/storetest"
)

func TestPebbleStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) user.Store { return user.NewPebbleStore(testinfra.Pebble(t)) })
}

func TestPebbleStoreContractShared(t *testing.T) {
	shared := user.NewPebbleStore(testinfra.Pebble(t))
	storetest.Run(t, func(*testing.T) user.Store { return shared })
}

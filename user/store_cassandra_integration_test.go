//go:build integration

package user_test

import (
	"testing"

	"github.com/beehive-im/beehive/shared/testinfra"
	"github.com/beehive-im/beehive/user"
	"github.com/beehive-im/beehive/user/storetest"
)

func TestCassandraStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) user.Store { return user.NewCassandraStore(testinfra.CassandraSession(t)) })
}

//go:build integration

package group_test

import (
	"testing"

	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/group/storetest"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func TestCassandraStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) group.Store { return group.NewCassandraStore(testinfra.CassandraSession(t)) })
}

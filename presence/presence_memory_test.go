package presence_test

import (
	"testing"

	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/presence/storetest"
)

func TestMemoryBackendContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) presence.Backend { return presence.NewMemoryBackend() })
}

func TestMemoryBackendContractShared(t *testing.T) {
	shared := presence.NewMemoryBackend()
	storetest.Run(t, func(*testing.T) presence.Backend { return shared })
}

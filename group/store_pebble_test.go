package group_test

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/group/storetest"
)

// quietLogger drops pebble's informational chatter and fails the test on
// its errors.
type quietLogger struct{ t *testing.T }

func (quietLogger) Infof(string, ...any)                {}
func (l quietLogger) Errorf(format string, args ...any) { l.t.Errorf("pebble: "+format, args...) }
func (l quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

func openPebble(t *testing.T) *group.PebbleStore {
	t.Helper()
	db, err := pebble.Open(t.TempDir(), &pebble.Options{Logger: quietLogger{t}})
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

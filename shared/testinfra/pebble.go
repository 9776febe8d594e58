package testinfra

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Pebble returns an empty in-memory Pebble database, closed when the test
// ends: the embedded store of a domain's unit tests.
func Pebble(t testing.TB) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: pebbleLogger{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// OpenPebble opens (creating) the Pebble database in dir; the caller
// closes it, and may open dir again to test what survives a restart.
func OpenPebble(t testing.TB, dir string) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{t}})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// pebbleLogger drops Pebble's informational chatter and fails the test on
// its errors.
type pebbleLogger struct{ t testing.TB }

func (pebbleLogger) Infof(string, ...any)                {}
func (l pebbleLogger) Errorf(format string, args ...any) { l.t.Errorf("pebble: "+format, args...) }
func (l pebbleLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

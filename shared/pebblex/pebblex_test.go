package pebblex_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/beehive-im/beehive/shared/pebblex"
)

func TestScanRangeResumesWhereItStopped(t *testing.T) {
	db, err := pebblex.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, k := range []string{"a/1", "a/2", "a/3", "a/4", "a/5", "b/1"} {
		if err := db.Set([]byte(k), nil, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	prefix := []byte("a/")
	var got []string
	from := prefix
	for steps := 0; from != nil; steps++ {
		if steps > 5 {
			t.Fatalf("no end after %d steps, got %q", steps, got)
		}
		n := 0
		from, err = pebblex.ScanRange(db, from, pebblex.PrefixEnd(prefix), func(k, _ []byte) bool {
			got = append(got, string(k))
			n++
			return n < 2
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"a/1", "a/2", "a/3", "a/4", "a/5"}
	if len(got) != len(want) {
		t.Fatalf("visited %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("visited %q, want %q", got, want)
		}
	}
}

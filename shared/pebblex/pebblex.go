// Package pebblex opens the embedded mode's Pebble store and offers the small
// key helpers the domain backends share. Each domain owns its keys under its
// own prefix ("user/", "auth/", ...) in the one database.
package pebblex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// blockCacheSize is the block cache of the one database. Pebble's default
// (8 MB) is smaller than the hot set of a busy embedded server: history
// writes and compactions pushed user and relation records out, and a
// profile of 1:1 chat at 1,000 msgs/s spent 18% of the CPU reading and
// decompressing blocks again (docs/LOAD.md).
const blockCacheSize = 64 << 20

// Open opens (creating) the database in dir.
func Open(dir string) (*pebble.DB, error) {
	cache := pebble.NewCache(blockCacheSize)
	defer cache.Unref() // the database holds its own reference
	db, err := pebble.Open(dir, &pebble.Options{Cache: cache})
	if err != nil {
		return nil, fmt.Errorf("open pebble at %s: %w", dir, err)
	}
	return db, nil
}

// Key joins parts with "/" (parts must not contain "/" where it matters
// for prefix scans; ids never do).
func Key(parts ...string) []byte {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(p)
	}
	return b.Bytes()
}

// Uint64 encodes n big-endian so byte order equals numeric order.
func Uint64(n uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return string(b[:])
}

// ParseUint64 decodes Uint64.
func ParseUint64(s string) uint64 {
	if len(s) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64([]byte(s))
}

// Get returns a copy of the value at key, or (nil, false).
func Get(db *pebble.DB, key []byte) ([]byte, bool, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	_ = closer.Close()
	return out, true, nil
}

// PrefixEnd returns the smallest key greater than every key with prefix.
func PrefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// Scan calls fn for each key with prefix in order (reverse if reverse)
// until fn returns false.
func Scan(db pebble.Reader, prefix []byte, reverse bool, fn func(k, v []byte) bool) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: PrefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	if reverse {
		for ok := it.Last(); ok; ok = it.Prev() {
			if !fn(it.Key(), it.Value()) {
				break
			}
		}
	} else {
		for ok := it.First(); ok; ok = it.Next() {
			if !fn(it.Key(), it.Value()) {
				break
			}
		}
	}
	return it.Error()
}

// ScanRange calls fn for each key in [from, end) in order until fn returns
// false, and returns the key to resume at: nil once it reached end. Sweeps
// use it to walk a prefix in bounded steps.
func ScanRange(db pebble.Reader, from, end []byte, fn func(k, v []byte) bool) (next []byte, err error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: end})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if !fn(it.Key(), it.Value()) {
			// The smallest key after this one.
			next = append(append([]byte(nil), it.Key()...), 0)
			break
		}
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	return next, nil
}

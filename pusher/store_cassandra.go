package pusher

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/gocql/gocql"

	"github.com/beehive-im/beehive/shared/cassandra"
	"github.com/beehive-im/beehive/shared/errs"
)

// CassandraStore keeps the pusher's rows in the tables of migration
// shared/cassandra/migrations/0040_pusher.cql:
//
//	pusher_devices (user_id, device_id) -> platform, push_token, updated_at
//	                                       + static version per user
//	pusher_pushed  ((message_id, user_id, device_id)) -> pushed_at, USING TTL 7 days
//
// Every statement uses bind markers, so gocql prepares it once per
// connection and reuses it.
//
// The device limit needs "count, then write" to be atomic per user across
// processes. PutDevice reads the user's partition (device ids and the
// static version), checks the limit, and writes the row in a conditional
// batch that also moves version from the value read to the next one: the
// batch applies only if no other registration of that user landed in
// between, otherwise it re-reads and tries again. DeleteDevice is a
// "DELETE ... IF EXISTS" and need not bump version: removing a row can only
// lower the count a concurrent PutDevice checked against. Both go through
// Paxos, so the rows are never written with a mix of client and Paxos
// timestamps.
//
// Updated times are stored with millisecond precision (CQL timestamp).
//
// Pushed records expire by TTL (pushedTTL) instead of being pruned, so this
// store has no PrunePushedBefore: nothing is left to prune.
type CassandraStore struct {
	s *gocql.Session
}

var _ Store = (*CassandraStore)(nil)

// NewCassandraStore returns a store over session, which must be on a
// keyspace migrated with shared/cassandra.Migrate.
func NewCassandraStore(session *gocql.Session) *CassandraStore {
	return &CassandraStore{s: session}
}

const (
	// pushedTTL is how long a pushed record is kept: a task is not
	// reprocessed after a week (the Pebble backend prunes at the same
	// age), so a record that old guards nothing.
	pushedTTL = 7 * 24 * time.Hour

	// casAttempts bounds the optimistic retries of PutDevice when other
	// registrations of the same user keep winning the race. Each lost
	// round means another writer succeeded, so only a burst of more than
	// this many concurrent registrations for one user can exhaust it.
	casAttempts = 16
)

const (
	cqlSelectDeviceIDs = `SELECT device_id, version FROM pusher_devices WHERE user_id = ?`
	cqlPutDevice       = `INSERT INTO pusher_devices (user_id, device_id, platform, push_token, updated_at) VALUES (?, ?, ?, ?, ?)`
	cqlBumpVersion     = `UPDATE pusher_devices SET version = ? WHERE user_id = ? IF version = ?`
	cqlDeleteDevice    = `DELETE FROM pusher_devices WHERE user_id = ? AND device_id = ? IF EXISTS`
	cqlGetDevice       = `SELECT platform, push_token, updated_at FROM pusher_devices WHERE user_id = ? AND device_id = ?`
	cqlListDevices     = `SELECT device_id, platform, push_token, updated_at FROM pusher_devices WHERE user_id = ?`
	cqlMarkPushed      = `INSERT INTO pusher_pushed (message_id, user_id, device_id, pushed_at) VALUES (?, ?, ?, ?) USING TTL ?`
	cqlPushed          = `SELECT pushed_at FROM pusher_pushed WHERE message_id = ? AND user_id = ? AND device_id = ?`
)

func (c *CassandraStore) PutDevice(ctx context.Context, userID string, d Device) error {
	for attempt := 0; attempt < casAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
		}
		version, n, exists, err := c.devicesOf(ctx, userID, d.DeviceID)
		if err != nil {
			return err
		}
		if !exists && n >= MaxDevicesPerUser {
			return ErrTooManyDevices
		}
		next := int64(1)
		var expect any // nil binds CQL null: the user has no version yet
		if version != nil {
			next, expect = *version+1, *version
		}
		b := c.s.NewBatch(gocql.LoggedBatch).WithContext(ctx)
		b.Query(cqlBumpVersion, next, userID, expect)
		b.Query(cqlPutDevice, userID, d.DeviceID, d.Platform, d.PushToken, d.UpdatedAt.UTC())
		applied, iter, err := c.s.MapExecuteBatchCAS(b, map[string]any{})
		if err == nil {
			err = iter.Close()
		}
		if err != nil {
			return storeErr("put device", err)
		}
		if applied {
			return nil
		}
	}
	return errs.New(errs.Unavailable, "too many concurrent device registrations for this user; retry")
}

// devicesOf reads userID's partition: its version (nil before the first
// registration), how many devices it holds and whether deviceID is one.
func (c *CassandraStore) devicesOf(ctx context.Context, userID, deviceID string) (version *int64, n int, exists bool, err error) {
	iter := c.s.Query(cqlSelectDeviceIDs, userID).WithContext(ctx).Idempotent(true).Iter()
	var (
		id *string
		v  *int64
	)
	for iter.Scan(&id, &v) {
		version = v
		// A partition whose rows were all deleted still holds the static
		// version: it reads as one row with a null device id.
		if id == nil {
			continue
		}
		n++
		if *id == deviceID {
			exists = true
		}
	}
	if err := iter.Close(); err != nil {
		return nil, 0, false, storeErr("read devices", err)
	}
	return version, n, exists, nil
}

func (c *CassandraStore) DeleteDevice(ctx context.Context, userID, deviceID string) error {
	// Not applied means the device was not there: no error.
	_, err := c.s.Query(cqlDeleteDevice, userID, deviceID).WithContext(ctx).MapScanCAS(map[string]any{})
	return storeErr("delete device", err)
}

func (c *CassandraStore) GetDevice(ctx context.Context, userID, deviceID string) (Device, bool, error) {
	d := Device{DeviceID: deviceID}
	err := c.s.Query(cqlGetDevice, userID, deviceID).WithContext(ctx).Idempotent(true).
		Scan(&d.Platform, &d.PushToken, &d.UpdatedAt)
	if errors.Is(err, gocql.ErrNotFound) {
		return Device{}, false, nil
	}
	if err != nil {
		return Device{}, false, storeErr("get device", err)
	}
	d.UpdatedAt = d.UpdatedAt.UTC()
	return d, true, nil
}

func (c *CassandraStore) ListDevices(ctx context.Context, userID string) ([]Device, error) {
	iter := c.s.Query(cqlListDevices, userID).WithContext(ctx).Idempotent(true).Iter()
	var (
		out []Device
		id  *string
		d   Device
	)
	for iter.Scan(&id, &d.Platform, &d.PushToken, &d.UpdatedAt) {
		if id == nil { // static-only row of a user whose devices were all deleted
			continue
		}
		d.DeviceID, d.UpdatedAt = *id, d.UpdatedAt.UTC()
		out = append(out, d)
		d = Device{}
	}
	if err := iter.Close(); err != nil {
		return nil, storeErr("list devices", err)
	}
	return out, nil
}

func (c *CassandraStore) MarkPushed(ctx context.Context, messageID, userID, deviceID string) error {
	err := c.s.Query(cqlMarkPushed, messageID, userID, deviceID, time.Now().UTC(), int(pushedTTL/time.Second)).
		WithContext(ctx).Idempotent(true).Exec()
	return storeErr("mark pushed", err)
}

func (c *CassandraStore) Pushed(ctx context.Context, messageID, userID, deviceID string) (bool, error) {
	var at time.Time
	err := c.s.Query(cqlPushed, messageID, userID, deviceID).WithContext(ctx).Idempotent(true).Scan(&at)
	if errors.Is(err, gocql.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, storeErr("pushed record", err)
	}
	return true, nil
}

// backoff waits a short random time before a lost PutDevice round is
// retried, so racing writers spread out; it returns early when ctx ends.
func backoff(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(rand.Int64N(int64(attempt)*int64(2*time.Millisecond)) + 1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// storeErr maps a Cassandra failure (shared/cassandra.Err).
func storeErr(op string, err error) error {
	return cassandra.Err(context.Background(), err, "push device store: "+op)
}

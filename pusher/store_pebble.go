package pusher

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/beehive-im/beehive/shared/pebblex"
)

// PebbleStore keeps the pusher's rows in the process's Pebble database
// under "pusher/":
//
//	pusher/dev/<user_id>/<hex(device_id)>             -> Device JSON
//	pusher/pushed/<message_id>/<user_id>/<hex(device_id)> -> ""
//
// Device ids are client-chosen strings, so they are hex-encoded to keep "/"
// out of keys. Pushed records are keyed by message id first: message ids
// are time-sortable, so old records can be dropped with one range delete
// (PrunePushedBefore).
type PebbleStore struct {
	db *pebble.DB
	// mu serialises PutDevice per process so the device-count check and
	// the write cannot interleave.
	mu sync.Mutex
}

var _ Store = (*PebbleStore)(nil)

// NewPebbleStore returns a store over db (shared with other domains).
func NewPebbleStore(db *pebble.DB) *PebbleStore { return &PebbleStore{db: db} }

func devicePrefix(userID string) []byte {
	return append(pebblex.Key("pusher", "dev", userID), '/')
}

func deviceKey(userID, deviceID string) []byte {
	return pebblex.Key("pusher", "dev", userID, hex.EncodeToString([]byte(deviceID)))
}

func pushedKey(messageID, userID, deviceID string) []byte {
	return pebblex.Key("pusher", "pushed", messageID, userID, hex.EncodeToString([]byte(deviceID)))
}

func (s *PebbleStore) PutDevice(_ context.Context, userID string, d Device) error {
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := deviceKey(userID, d.DeviceID)
	_, exists, err := pebblex.Get(s.db, key)
	if err != nil {
		return err
	}
	if !exists {
		n := 0
		if err := pebblex.Scan(s.db, devicePrefix(userID), false, func(_, _ []byte) bool { n++; return true }); err != nil {
			return err
		}
		if n >= MaxDevicesPerUser {
			return ErrTooManyDevices
		}
	}
	return s.db.Set(key, v, pebble.Sync)
}

func (s *PebbleStore) DeleteDevice(_ context.Context, userID, deviceID string) error {
	return s.db.Delete(deviceKey(userID, deviceID), pebble.Sync)
}

func (s *PebbleStore) GetDevice(_ context.Context, userID, deviceID string) (Device, bool, error) {
	v, ok, err := pebblex.Get(s.db, deviceKey(userID, deviceID))
	if err != nil || !ok {
		return Device{}, false, err
	}
	var d Device
	if err := json.Unmarshal(v, &d); err != nil {
		return Device{}, false, fmt.Errorf("pusher: decode device: %w", err)
	}
	return d, true, nil
}

func (s *PebbleStore) ListDevices(_ context.Context, userID string) ([]Device, error) {
	var out []Device
	var derr error
	err := pebblex.Scan(s.db, devicePrefix(userID), false, func(_, v []byte) bool {
		var d Device
		if derr = json.Unmarshal(v, &d); derr != nil {
			return false
		}
		out = append(out, d)
		return true
	})
	if err == nil && derr != nil {
		err = fmt.Errorf("pusher: decode device: %w", derr)
	}
	return out, err
}

func (s *PebbleStore) MarkPushed(_ context.Context, messageID, userID, deviceID string) error {
	return s.db.Set(pushedKey(messageID, userID, deviceID), nil, pebble.Sync)
}

func (s *PebbleStore) Pushed(_ context.Context, messageID, userID, deviceID string) (bool, error) {
	_, ok, err := pebblex.Get(s.db, pushedKey(messageID, userID, deviceID))
	return ok, err
}

// PrunePushedBefore drops the pushed records of messages whose id sorts
// below messageID (e.g. ids.NewAt(a week ago)): a task that old is not
// reprocessed any more.
func (s *PebbleStore) PrunePushedBefore(messageID string) error {
	return s.db.DeleteRange(pebblex.Key("pusher", "pushed", ""), pebblex.Key("pusher", "pushed", messageID), pebble.Sync)
}

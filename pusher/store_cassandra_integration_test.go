//go:build integration

package pusher_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/pusher/storetest"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func TestCassandraStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pusher.Store { return pusher.NewCassandraStore(testinfra.CassandraSession(t)) })
}

// Stores in separate processes share nothing but Cassandra: many
// concurrent registrations of new devices for one user, through separate
// sessions, must stop at exactly MaxDevicesPerUser.
func TestCassandraStoreDeviceLimitHoldsUnderConcurrentRegistrations(t *testing.T) {
	ctx := t.Context()
	stores := []*pusher.CassandraStore{
		pusher.NewCassandraStore(testinfra.CassandraSession(t)),
		pusher.NewCassandraStore(testinfra.CassandraSession(t)),
	}
	u := ids.New()
	const writers, perWriter = 8, 5 // 40 new devices against a limit of 32
	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		ok, refused    int
		unexpectedErrs []error
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%len(stores)]
			for i := 0; i < perWriter; i++ {
				err := s.PutDevice(ctx, u, pusher.Device{DeviceID: fmt.Sprintf("w%d-d%d", w, i), Platform: pusher.PlatformFCM, PushToken: "t", UpdatedAt: time.Now()})
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, pusher.ErrTooManyDevices):
					refused++
				default:
					unexpectedErrs = append(unexpectedErrs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(unexpectedErrs) > 0 {
		t.Fatalf("unexpected errors: %v", unexpectedErrs)
	}
	list, err := stores[0].ListDevices(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if ok != pusher.MaxDevicesPerUser || refused != writers*perWriter-pusher.MaxDevicesPerUser || len(list) != pusher.MaxDevicesPerUser {
		t.Fatalf("ok=%d refused=%d listed=%d, want %d, %d, %d", ok, refused, len(list),
			pusher.MaxDevicesPerUser, writers*perWriter-pusher.MaxDevicesPerUser, pusher.MaxDevicesPerUser)
	}
}

// A user whose devices were all deleted keeps only the static version in
// the partition: it must read as no devices, and new registrations count
// from zero again.
func TestCassandraStoreUserWithAllDevicesDeletedHasNone(t *testing.T) {
	ctx := t.Context()
	s := pusher.NewCassandraStore(testinfra.CassandraSession(t))
	u := ids.New()
	for i := 0; i < pusher.MaxDevicesPerUser; i++ {
		id := fmt.Sprintf("d%02d", i)
		if err := s.PutDevice(ctx, u, pusher.Device{DeviceID: id, Platform: pusher.PlatformFCM, PushToken: "t"}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDevice(ctx, u, id); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListDevices(ctx, u)
	if err != nil || len(list) != 0 {
		t.Fatalf("list = %+v, %v; want none", list, err)
	}
	for i := 0; i < pusher.MaxDevicesPerUser; i++ {
		if err := s.PutDevice(ctx, u, pusher.Device{DeviceID: fmt.Sprintf("n%02d", i), Platform: pusher.PlatformFCM, PushToken: "t"}); err != nil {
			t.Fatalf("device %d after deleting all: %v", i, err)
		}
	}
	if err := s.PutDevice(ctx, u, pusher.Device{DeviceID: "extra", Platform: pusher.PlatformFCM}); !errors.Is(err, pusher.ErrTooManyDevices) {
		t.Fatalf("err = %v, want ErrTooManyDevices", err)
	}
}

// Pushed records carry the TTL that replaces pruning: a week, refreshed
// when the push is recorded again.
func TestCassandraStorePushedRecordsExpireAfterAWeek(t *testing.T) {
	ctx := t.Context()
	session := testinfra.CassandraSession(t)
	s := pusher.NewCassandraStore(session)
	m, u := ids.New(), ids.New()
	if err := s.MarkPushed(ctx, m, u, "phone"); err != nil {
		t.Fatal(err)
	}
	var ttl int
	if err := session.Query(`SELECT TTL(pushed_at) FROM pusher_pushed WHERE message_id = ? AND user_id = ? AND device_id = ?`, m, u, "phone").
		WithContext(ctx).Scan(&ttl); err != nil {
		t.Fatal(err)
	}
	week := int((7 * 24 * time.Hour).Seconds())
	// The TTL counts down from a week as soon as the row is written; a
	// minute of slack covers a slow machine.
	if ttl > week || ttl < week-60 {
		t.Fatalf("TTL(pushed_at) = %ds, want about %ds", ttl, week)
	}
}

func TestCassandraStoreOnClosedSessionFailsUnavailable(t *testing.T) {
	ctx := t.Context()
	session := testinfra.CassandraSession(t)
	s := pusher.NewCassandraStore(session)
	session.Close()
	u := ids.New()
	checks := map[string]error{
		"PutDevice":    s.PutDevice(ctx, u, pusher.Device{DeviceID: "phone", Platform: pusher.PlatformFCM}),
		"DeleteDevice": s.DeleteDevice(ctx, u, "phone"),
		"MarkPushed":   s.MarkPushed(ctx, ids.New(), u, "phone"),
	}
	_, _, checks["GetDevice"] = s.GetDevice(ctx, u, "phone")
	_, checks["ListDevices"] = s.ListDevices(ctx, u)
	_, checks["Pushed"] = s.Pushed(ctx, ids.New(), u, "phone")
	for op, err := range checks {
		if !errs.HasCode(err, errs.Unavailable) {
			t.Errorf("%s on a closed session: err = %v, want code unavailable", op, err)
		}
	}
}

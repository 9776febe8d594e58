// Package storetest is the contract every pusher.Store backend passes: the
// Pebble backend runs it in unit tests, a Cassandra backend in integration
// tests, unchanged.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/shared/ids"
)

// Run runs the contract against stores made by newStore. Every test uses
// fresh ids, so a shared store is fine.
func Run(t *testing.T, newStore func(t *testing.T) pusher.Store) {
	ctx := context.Background()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	dev := func(id, platform, token string) pusher.Device {
		return pusher.Device{DeviceID: id, Platform: platform, PushToken: token, UpdatedAt: t0}
	}

	t.Run("put then get and list return the registration", func(t *testing.T) {
		s := newStore(t)
		u := ids.New()
		must(t, s.PutDevice(ctx, u, dev("phone", pusher.PlatformAPNs, "tok-1")))
		got, ok, err := s.GetDevice(ctx, u, "phone")
		must(t, err)
		if !ok || got.Platform != pusher.PlatformAPNs || got.PushToken != "tok-1" || !got.UpdatedAt.Equal(t0) || got.DeviceID != "phone" {
			t.Fatalf("get = %+v, %v", got, ok)
		}
		list, err := s.ListDevices(ctx, u)
		must(t, err)
		if len(list) != 1 || list[0].DeviceID != "phone" {
			t.Fatalf("list = %+v", list)
		}
	})

	t.Run("put replaces the same device", func(t *testing.T) {
		s := newStore(t)
		u := ids.New()
		must(t, s.PutDevice(ctx, u, dev("phone", pusher.PlatformAPNs, "old")))
		must(t, s.PutDevice(ctx, u, dev("phone", pusher.PlatformFCM, "new")))
		list, err := s.ListDevices(ctx, u)
		must(t, err)
		if len(list) != 1 || list[0].PushToken != "new" || list[0].Platform != pusher.PlatformFCM {
			t.Fatalf("list = %+v", list)
		}
	})

	t.Run("devices are per user and listed by device id", func(t *testing.T) {
		s := newStore(t)
		a, b := ids.New(), ids.New()
		must(t, s.PutDevice(ctx, a, dev("tablet", pusher.PlatformWebhook, "t")))
		must(t, s.PutDevice(ctx, a, dev("laptop/1", pusher.PlatformWebhook, "l")))
		must(t, s.PutDevice(ctx, b, dev("phone", pusher.PlatformWebhook, "p")))
		list, err := s.ListDevices(ctx, a)
		must(t, err)
		if len(list) != 2 || list[0].DeviceID != "laptop/1" || list[1].DeviceID != "tablet" {
			t.Fatalf("list a = %+v", list)
		}
		if _, ok, err := s.GetDevice(ctx, b, "tablet"); err != nil || ok {
			t.Fatalf("b sees a's device: ok=%v err=%v", ok, err)
		}
	})

	t.Run("unknown user has no devices", func(t *testing.T) {
		s := newStore(t)
		list, err := s.ListDevices(ctx, ids.New())
		must(t, err)
		if len(list) != 0 {
			t.Fatalf("list = %+v", list)
		}
		if _, ok, err := s.GetDevice(ctx, ids.New(), "x"); err != nil || ok {
			t.Fatalf("get unknown: ok=%v err=%v", ok, err)
		}
	})

	t.Run("delete removes only that device and is idempotent", func(t *testing.T) {
		s := newStore(t)
		u := ids.New()
		must(t, s.PutDevice(ctx, u, dev("a", pusher.PlatformFCM, "1")))
		must(t, s.PutDevice(ctx, u, dev("b", pusher.PlatformFCM, "2")))
		must(t, s.DeleteDevice(ctx, u, "a"))
		must(t, s.DeleteDevice(ctx, u, "a"))
		must(t, s.DeleteDevice(ctx, u, "never"))
		list, err := s.ListDevices(ctx, u)
		must(t, err)
		if len(list) != 1 || list[0].DeviceID != "b" {
			t.Fatalf("list = %+v", list)
		}
	})

	t.Run("a new device beyond the limit is refused, replacing one is not", func(t *testing.T) {
		s := newStore(t)
		u := ids.New()
		for i := 0; i < pusher.MaxDevicesPerUser; i++ {
			must(t, s.PutDevice(ctx, u, dev(fmt.Sprintf("d%02d", i), pusher.PlatformFCM, "t")))
		}
		err := s.PutDevice(ctx, u, dev("one-too-many", pusher.PlatformFCM, "t"))
		if !errors.Is(err, pusher.ErrTooManyDevices) {
			t.Fatalf("err = %v, want ErrTooManyDevices", err)
		}
		must(t, s.PutDevice(ctx, u, dev("d00", pusher.PlatformAPNs, "t2")))
	})

	t.Run("pushed is recorded per message, user and device", func(t *testing.T) {
		s := newStore(t)
		m, u, v := ids.New(), ids.New(), ids.New()
		ok, err := s.Pushed(ctx, m, u, "phone")
		must(t, err)
		if ok {
			t.Fatal("pushed before MarkPushed")
		}
		must(t, s.MarkPushed(ctx, m, u, "phone"))
		must(t, s.MarkPushed(ctx, m, u, "phone"))
		for _, c := range []struct {
			msg, user, device string
			want              bool
		}{
			{m, u, "phone", true},
			{m, v, "phone", false},
			{m, u, "tablet", false},
			{ids.New(), u, "phone", false},
		} {
			got, err := s.Pushed(ctx, c.msg, c.user, c.device)
			must(t, err)
			if got != c.want {
				t.Errorf("Pushed(%s, %s, %s) = %v, want %v", c.msg, c.user, c.device, got, c.want)
			}
		}
	})
}

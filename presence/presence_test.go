package presence_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

type recorder struct {
	mu  sync.Mutex
	got []presence.Changed
}

func (r *recorder) handle(_ context.Context, e events.Event) {
	if e.Type != events.PresenceChanged {
		return
	}
	var c presence.Changed
	if err := json.Unmarshal(e.Data, &c); err != nil {
		panic(err)
	}
	if c.UserID != e.UserID {
		panic("event user id differs from data")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, c)
}

func (r *recorder) take() []presence.Changed {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

func newService(t *testing.T) (*presence.Presence, *testinfra.Clock, *recorder) {
	t.Helper()
	clk := testinfra.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	rec := &recorder{}
	bus := events.NewBus()
	bus.Subscribe(rec.handle)
	svc := newPresence(t, presence.Deps{Backend: presence.NewMemoryBackend(), Events: bus}, presence.Options{TTL: time.Minute, Now: clk.Now})
	return svc, clk, rec
}

func newPresence(t *testing.T, deps presence.Deps, opts presence.Options) *presence.Presence {
	t.Helper()
	svc, err := presence.New(deps, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	for want, deps := range map[string]presence.Deps{
		"Deps.Backend": {Events: events.Nop{}},
		"Deps.Events":  {Backend: presence.NewMemoryBackend()},
	} {
		t.Run(want, func(t *testing.T) {
			if _, err := presence.New(deps, presence.Options{}); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want one naming %s", err, want)
			}
		})
	}
}

func session(user, conn, device string) presence.Session {
	return presence.Session{UserID: user, GatewayID: "gw-1", ConnID: conn, DeviceID: device}
}

func TestTransitionsPublishOnlyFirstOnAndLastOff(t *testing.T) {
	svc, _, rec := newService(t)
	ctx := context.Background()
	u := ids.New()
	steps := []struct {
		name string
		do   func() error
		want []bool // online values of the events published by this step
	}{
		{"first device on", func() error { return svc.UserOnline(ctx, session(u, "c1", "phone")) }, []bool{true}},
		{"second device on", func() error { return svc.UserOnline(ctx, session(u, "c2", "laptop")) }, nil},
		{"first device off", func() error { return svc.UserOffline(ctx, u, "c1") }, nil},
		{"last device off", func() error { return svc.UserOffline(ctx, u, "c2") }, []bool{false}},
		{"unknown device off", func() error { return svc.UserOffline(ctx, u, "c2") }, nil},
		{"back on", func() error { return svc.UserOnline(ctx, session(u, "c3", "phone")) }, []bool{true}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := rec.take()
		if len(got) != len(s.want) {
			t.Fatalf("%s: events %+v, want online values %v", s.name, got, s.want)
		}
		for i := range got {
			if got[i].Online != s.want[i] || got[i].UserID != u {
				t.Fatalf("%s: event %+v, want online=%v for %s", s.name, got[i], s.want[i], u)
			}
		}
	}
}

func TestHeartbeatsKeepSessionAliveAndExpiryPublishesOffline(t *testing.T) {
	svc, clk, rec := newService(t)
	ctx := context.Background()
	u := ids.New()
	if err := svc.UserOnline(ctx, session(u, "c1", "phone")); err != nil {
		t.Fatal(err)
	}
	rec.take()
	for i := 0; i < 3; i++ {
		clk.Advance(40 * time.Second)
		if err := svc.Heartbeat(ctx, u, "c1"); err != nil {
			t.Fatalf("heartbeat %d: %v", i, err)
		}
	}
	if on, _ := svc.IsUserOnline(ctx, u); !on {
		t.Fatal("offline although heartbeats arrived within the TTL")
	}
	clk.Advance(61 * time.Second)
	if on, _ := svc.IsUserOnline(ctx, u); on {
		t.Fatal("online after the TTL passed without heartbeat")
	}
	if err := svc.Heartbeat(ctx, u, "c1"); !errs.HasCode(err, errs.NotFound) {
		t.Fatalf("heartbeat after expiry: %v, want not_found", err)
	}
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("events before sweep: %+v", got)
	}
	if err := svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	got := rec.take()
	if len(got) != 1 || got[0].Online || got[0].UserID != u {
		t.Fatalf("sweep events = %+v, want one offline", got)
	}
	if err := svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("second sweep published again: %+v", got)
	}
}

func TestGetUserPresenceShapesDevicesAndLastSeen(t *testing.T) {
	svc, clk, _ := newService(t)
	ctx := context.Background()
	on, off, never := ids.New(), ids.New(), ids.New()
	start := clk.Now()
	if err := svc.UserOnline(ctx, session(on, "c1", "phone")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := svc.UserOnline(ctx, session(on, "c2", "laptop")); err != nil {
		t.Fatal(err)
	}
	if err := svc.UserOnline(ctx, session(off, "c9", "phone")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := svc.UserOffline(ctx, off, "c9"); err != nil {
		t.Fatal(err)
	}
	ps, err := svc.GetUserPresence(ctx, []string{never, on, off, on})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 || ps[0].UserID != never || ps[1].UserID != on || ps[2].UserID != off {
		t.Fatalf("presence order/dedup wrong: %+v", ps)
	}
	if ps[0].Online || ps[0].LastSeen != nil || ps[0].Devices == nil || len(ps[0].Devices) != 0 {
		t.Fatalf("never-seen user = %+v", ps[0])
	}
	if !ps[1].Online || len(ps[1].Devices) != 2 || ps[1].Devices[0].DeviceID != "phone" || !ps[1].Devices[0].Since.Equal(start) || ps[1].Devices[1].ConnID != "c2" {
		t.Fatalf("online user = %+v", ps[1])
	}
	if ps[2].Online || ps[2].LastSeen == nil || !ps[2].LastSeen.Equal(start.Add(2*time.Second)) {
		t.Fatalf("offline user = %+v", ps[2])
	}
	online, err := svc.GetOnlineUsers(ctx, []string{off, on, never})
	if err != nil || len(online) != 1 || online[0] != on {
		t.Fatalf("online users = %v, %v", online, err)
	}
}

func TestInvalidInputIsRefusedWithField(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := context.Background()
	many := make([]string, presence.MaxBatch+1)
	for i := range many {
		many[i] = ids.New()
	}
	cases := []struct {
		name  string
		err   error
		field string
	}{
		{"missing user", svc.UserOnline(ctx, presence.Session{GatewayID: "g", ConnID: "c"}), "user_id"},
		{"bad user", svc.UserOnline(ctx, presence.Session{UserID: "a b", GatewayID: "g", ConnID: "c"}), "user_id"},
		{"missing conn", svc.UserOnline(ctx, presence.Session{UserID: "u", GatewayID: "g"}), "conn_id"},
		{"missing gateway", svc.UserOnline(ctx, presence.Session{UserID: "u", ConnID: "c"}), "gateway_id"},
		{"long device", svc.UserOnline(ctx, presence.Session{UserID: "u", GatewayID: "g", ConnID: "c", DeviceID: string(make([]byte, 65))}), "device_id"},
		{"offline missing conn", svc.UserOffline(ctx, "u", ""), "conn_id"},
		{"heartbeat bad user", svc.Heartbeat(ctx, "", "c"), "user_id"},
		{"empty batch", func() error { _, err := svc.GetUserPresence(ctx, nil); return err }(), "user_ids"},
		{"too many", func() error { _, err := svc.GetUserPresence(ctx, many); return err }(), "user_ids"},
		{"bad id in batch", func() error { _, err := svc.GetOnlineUsers(ctx, []string{"ok", "no/pe"}); return err }(), "user_ids"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := errs.As(c.err)
			if e == nil || e.Code != errs.InvalidArgument || e.Field != c.field {
				t.Fatalf("err = %v, want invalid_argument on %s", c.err, c.field)
			}
		})
	}
}

package pusher_test

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/testinfra"
	"github.com/beehive-im/beehive/shared/wire"
)

type fakeMembers struct {
	mu      sync.Mutex
	groups  map[string][]string
	calls   int
	failErr error
}

func (f *fakeMembers) ListMemberIDs(_ context.Context, groupID string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failErr != nil {
		return nil, f.failErr
	}
	g, ok := f.groups[groupID]
	if !ok {
		return nil, errs.New(errs.NotFound, "group not found")
	}
	return append([]string(nil), g...), nil
}

func (f *fakeMembers) set(groupID string, members ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[groupID] = members
}

func (f *fakeMembers) callCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

type fakePresence struct {
	mu      sync.Mutex
	devices map[string][]pusher.PresenceDevice
	lookups int
}

func (f *fakePresence) Lookup(_ context.Context, users []string) (map[string][]pusher.PresenceDevice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	out := map[string][]pusher.PresenceDevice{}
	for _, u := range users {
		if d, ok := f.devices[u]; ok {
			out[u] = d
		}
	}
	return out, nil
}

func (f *fakePresence) connect(user, device, gateway, conn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices[user] = append(f.devices[user], pusher.PresenceDevice{DeviceID: device, GatewayID: gateway, ConnID: conn})
}

type delivery struct {
	Gateway string
	Users   []string
	Frame   map[string]any
	Except  string
}

// fakeDeliverer records every frame of a request (Frame, then More) as
// one delivery, and counts the requests.
type fakeDeliverer struct {
	mu       sync.Mutex
	got      []delivery
	requests int
	attempts map[string]int
	// fail makes every call to a gateway fail with the error.
	fail map[string]error
}

func (f *fakeDeliverer) Deliver(_ context.Context, gw string, req wire.DeliverRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts[gw]++
	if err := f.fail[gw]; err != nil {
		return err
	}
	f.requests++
	users := append([]string(nil), req.UserIDs...)
	sort.Strings(users)
	frames := append([]wire.DeliverFrame{{Frame: req.Frame, ExceptConn: req.ExceptConn}}, req.More...)
	for _, d := range frames {
		var fr map[string]any
		if err := json.Unmarshal(d.Frame, &fr); err != nil {
			panic(err)
		}
		f.got = append(f.got, delivery{Gateway: gw, Users: users, Frame: fr, Except: d.ExceptConn})
	}
	return nil
}

func (f *fakeDeliverer) requestCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.requests }

func (f *fakeDeliverer) deliveries() []delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]delivery(nil), f.got...)
	sort.Slice(out, func(i, j int) bool { return out[i].Gateway < out[j].Gateway })
	return out
}

func (f *fakeDeliverer) reset() { f.mu.Lock(); defer f.mu.Unlock(); f.got = nil }

type fakeAcks map[string]int64 // user/device/conversation -> seq

func (f fakeAcks) Acked(_ context.Context, user, device, conv string) (int64, error) {
	return f[user+"/"+device+"/"+conv], nil
}

type fakeSettings map[string]bool // user/conversation -> muted

func (f fakeSettings) Muted(_ context.Context, user, conv string) (bool, error) {
	return f[user+"/"+conv], nil
}

type fakeFriends map[string][]string

func (f fakeFriends) ListFriendIDs(_ context.Context, user string) ([]string, error) {
	return f[user], nil
}

type fakeWriter struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func (f *fakeWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, msgs...)
	return nil
}

func (f *fakeWriter) tasks(t *testing.T) []pusher.Task {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []pusher.Task
	for _, m := range f.msgs {
		var task pusher.Task
		if err := json.Unmarshal(m.Value, &task); err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != task.UserID {
			t.Fatalf("task keyed %q, user %q", m.Key, task.UserID)
		}
		out = append(out, task)
	}
	return out
}

type fakeNotifier struct {
	mu    sync.Mutex
	tasks []pusher.Task
	err   error
}

func (f *fakeNotifier) Notify(_ context.Context, t pusher.Task) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks = append(f.tasks, t)
	return f.err
}

func (f *fakeNotifier) count() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.tasks) }

type rig struct {
	p         *pusher.Pusher
	store     *pusher.PebbleStore
	members   *fakeMembers
	presence  *fakePresence
	deliverer *fakeDeliverer
	acks      fakeAcks
	settings  fakeSettings
	friends   fakeFriends
	writer    *fakeWriter
	notifier  *fakeNotifier
}

func newRig(t *testing.T) *rig {
	r := &rig{
		store:     pusher.NewPebbleStore(testinfra.Pebble(t)),
		members:   &fakeMembers{groups: map[string][]string{}},
		presence:  &fakePresence{devices: map[string][]pusher.PresenceDevice{}},
		deliverer: &fakeDeliverer{attempts: map[string]int{}, fail: map[string]error{}},
		acks:      fakeAcks{},
		settings:  fakeSettings{},
		friends:   fakeFriends{},
		writer:    &fakeWriter{},
		notifier:  &fakeNotifier{},
	}
	r.p = newPusher(t, pusher.Deps{
		Store: r.store, Members: r.members, Presence: r.presence, Deliverer: r.deliverer,
		Acks: r.acks, Settings: r.settings, Friends: r.friends, Offline: r.writer,
		Notifiers: map[string]pusher.Notifier{pusher.PlatformWebhook: r.notifier},
	}, pusher.Options{DeliverBackoff: time.Millisecond, DeliverAttempts: 3})
	return r
}

func newPusher(t *testing.T, deps pusher.Deps, opts pusher.Options) *pusher.Pusher {
	t.Helper()
	p, err := pusher.New(deps, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (r *rig) register(t *testing.T, user, device, platform string) {
	t.Helper()
	if _, err := r.p.RegisterDevice(context.Background(), user, pusher.DeviceRegistration{DeviceID: device, Platform: platform, PushToken: "tok-" + user + "-" + device}); err != nil {
		t.Fatal(err)
	}
}

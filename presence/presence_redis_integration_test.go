//go:build integration

package presence_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/presence/storetest"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/redisx"
	"github.com/beehive-im/beehive/shared/testinfra"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func redisSession(user, conn string) presence.Session {
	return presence.Session{UserID: user, GatewayID: "gw-1", ConnID: conn, DeviceID: "phone", Since: t0}
}

func TestRedisBackendContract(t *testing.T) {
	c := testinfra.Redis(t)
	storetest.Run(t, func(t *testing.T) presence.Backend {
		return presence.NewRedisBackend(c, testinfra.KeyPrefix(t))
	})
}

// The contract again with one shard: every user shares one index, so the
// sweeps of one test meet the users of another part of the same test.
func TestRedisBackendContractOneShard(t *testing.T) {
	c := testinfra.Redis(t)
	storetest.Run(t, func(t *testing.T) presence.Backend {
		return presence.NewRedisBackend(c, testinfra.KeyPrefix(t), presence.WithShards(1))
	})
}

// Instances of the gateway and presence each hold their own client and
// backend; what one writes, the others see.
func TestRedisBackendInstancesShareSessions(t *testing.T) {
	addr := testinfra.RedisAddr(t)
	prefix := testinfra.KeyPrefix(t)
	ctx := context.Background()
	var bs []*presence.RedisBackend
	for i := 0; i < 2; i++ {
		c := redisx.Open(addr)
		t.Cleanup(func() { _ = c.Close() })
		bs = append(bs, presence.NewRedisBackend(c, prefix))
	}
	u := ids.New()
	came, err := bs[0].Add(ctx, redisSession(u, "c1"), t0.Add(time.Minute), t0)
	if err != nil || !came {
		t.Fatalf("Add on instance 0 = %v, %v; want true", came, err)
	}
	came, err = bs[1].Add(ctx, redisSession(u, "c2"), t0.Add(time.Minute), t0)
	if err != nil || came {
		t.Fatalf("Add on instance 1 = %v, %v; want false (instance 0 holds a live session)", came, err)
	}
	recs, err := bs[1].Get(ctx, []string{u}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if s := recs[u].Sessions; len(s) != 2 {
		t.Fatalf("instance 1 sees sessions %+v, want c1 and c2", s)
	}
	if left, err := bs[1].Remove(ctx, u, "c1", t0); err != nil || left {
		t.Fatalf("Remove c1 on instance 1 = %v, %v; want false", left, err)
	}
	if left, err := bs[0].Remove(ctx, u, "c2", t0); err != nil || !left {
		t.Fatalf("Remove c2 on instance 0 = %v, %v; want true", left, err)
	}
}

// Several presence instances sweep at once; each user whose last session
// expired must be reported by exactly one of them, exactly once.
func TestRedisBackendConcurrentSweepsReportEachUserOnce(t *testing.T) {
	addr := testinfra.RedisAddr(t)
	prefix := testinfra.KeyPrefix(t)
	ctx := context.Background()
	const instances, users = 4, 1500 // several Expire batches per shard with 2 shards
	var bs []*presence.RedisBackend
	for i := 0; i < instances; i++ {
		c := redisx.Open(addr)
		t.Cleanup(func() { _ = c.Close() })
		bs = append(bs, presence.NewRedisBackend(c, prefix, presence.WithShards(2), presence.WithRedisTimeout(5*time.Second)))
	}
	want := map[string]bool{}
	var stays []string
	for i := 0; i < users; i++ {
		u := ids.New()
		exp := t0.Add(time.Minute)
		if i%5 == 0 {
			exp = t0.Add(time.Hour) // still live at the sweep
			stays = append(stays, u)
		} else {
			want[u] = true
		}
		if _, err := bs[i%instances].Add(ctx, redisSession(u, "c1"), exp, t0); err != nil {
			t.Fatal(err)
		}
	}
	sweepAt := t0.Add(2 * time.Minute)
	var (
		mu   sync.Mutex
		got  = map[string]int{}
		wg   sync.WaitGroup
		errc = make(chan error, instances)
	)
	for _, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			left, err := b.Expire(ctx, sweepAt)
			if err != nil {
				errc <- err
				return
			}
			mu.Lock()
			for _, u := range left {
				got[u]++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for u := range want {
		if got[u] != 1 {
			t.Errorf("user %s reported %d times, want once", u, got[u])
		}
	}
	for u, n := range got {
		if !want[u] {
			t.Errorf("user %s with a live session reported %d times", u, n)
		}
	}
	left, err := bs[0].Expire(ctx, sweepAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("a later sweep reported %d users again", len(left))
	}
	recs, err := bs[1].Get(ctx, stays[:10], sweepAt)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range stays[:10] {
		if len(recs[u].Sessions) != 1 {
			t.Fatalf("live user %s lost its session in the sweep: %+v", u, recs[u])
		}
	}
}

// Every key lives under the prefix; session keys expire a little after the
// sessions (relative to the service's clock, not Redis'), last seen after
// its TTL; once a user is gone, only last seen remains.
func TestRedisBackendKeysLiveUnderPrefixWithTTLs(t *testing.T) {
	c := testinfra.Redis(t)
	prefix := testinfra.KeyPrefix(t)
	ctx := context.Background()
	b := presence.NewRedisBackend(c, prefix, presence.WithLastSeenTTL(48*time.Hour))
	u := ids.New()
	if _, err := b.Add(ctx, redisSession(u, "c1"), t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, "*"+u+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	if len(keys) != 3 {
		t.Fatalf("keys naming the user = %q, want sessions, expiries and last seen", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			t.Fatalf("key %q outside prefix %q", k, prefix)
		}
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(k, ":seen:") {
			if ttl <= 47*time.Hour || ttl > 48*time.Hour {
				t.Fatalf("last-seen key %q TTL %v, want about 48h", k, ttl)
			}
			continue
		}
		// One minute of session plus the grace, measured from the
		// service's clock (2030), not from Redis' wall clock.
		if ttl <= time.Minute || ttl > 10*time.Minute {
			t.Fatalf("session key %q TTL %v, want a few minutes", k, ttl)
		}
	}
	all, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, k := range all {
		if strings.HasPrefix(k, prefix) {
			ours = append(ours, k)
		}
	}
	if len(ours) != 4 { // the three above and the shard's index
		t.Fatalf("keys under prefix = %q, want 4", ours)
	}
	if left, err := b.Remove(ctx, u, "c1", t0.Add(time.Second)); err != nil || !left {
		t.Fatalf("Remove = %v, %v; want true", left, err)
	}
	rest, err := c.Keys(ctx, "*"+u+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 || !strings.Contains(rest[0], ":seen:") {
		t.Fatalf("keys after the last session left = %q, want only last seen", rest)
	}
}

// A user whose session keys vanished before any sweep (Redis evicted them,
// or they outlived their TTL with no sweeper running) is still reported
// once by the next sweep: the index is what promises the report.
func TestRedisBackendSweepReportsUserWhoseKeysVanished(t *testing.T) {
	c := testinfra.Redis(t)
	prefix := testinfra.KeyPrefix(t)
	ctx := context.Background()
	b := presence.NewRedisBackend(c, prefix, presence.WithShards(1))
	u := ids.New()
	if _, err := b.Add(ctx, redisSession(u, "c1"), t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, prefix+"*"+u).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.Contains(k, ":seen:") {
			if err := c.Del(ctx, k).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	left, err := b.Expire(ctx, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != u {
		t.Fatalf("left = %v, want [%s]", left, u)
	}
	if left, _ := b.Expire(ctx, t0.Add(2*time.Minute)); len(left) != 0 {
		t.Fatalf("second sweep left = %v", left)
	}
}

// The scripts are sent by digest; after Redis forgets them (restart,
// SCRIPT FLUSH) every method, pipelined ones included, still works.
func TestRedisBackendSurvivesScriptFlush(t *testing.T) {
	c := testinfra.Redis(t)
	ctx := context.Background()
	b := presence.NewRedisBackend(c, testinfra.KeyPrefix(t))
	u := ids.New()
	steps := []struct {
		name string
		do   func() error
	}{
		{"add", func() error { _, err := b.Add(ctx, redisSession(u, "c1"), t0.Add(time.Minute), t0); return err }},
		{"touch", func() error { _, err := b.Touch(ctx, u, "c1", t0.Add(2*time.Minute), t0); return err }},
		{"get", func() error {
			recs, err := b.Get(ctx, []string{u}, t0)
			if err == nil && len(recs[u].Sessions) != 1 {
				err = fmt.Errorf("get: %+v", recs[u])
			}
			return err
		}},
		{"expire", func() error { _, err := b.Expire(ctx, t0); return err }},
		{"remove", func() error { _, err := b.Remove(ctx, u, "c1", t0); return err }},
	}
	for _, s := range steps {
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.do(); err != nil {
			t.Fatalf("%s after SCRIPT FLUSH: %v", s.name, err)
		}
	}
}

// silentAddr accepts connections and never answers: a hung Redis.
func silentAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// backendCalls runs every Backend method once.
func backendCalls(b presence.Backend) map[string]func(context.Context) error {
	u := ids.New()
	return map[string]func(context.Context) error{
		"Add": func(ctx context.Context) error {
			_, err := b.Add(ctx, redisSession(u, "c1"), t0.Add(time.Minute), t0)
			return err
		},
		"Remove": func(ctx context.Context) error { _, err := b.Remove(ctx, u, "c1", t0); return err },
		"Touch": func(ctx context.Context) error {
			_, err := b.Touch(ctx, u, "c1", t0.Add(time.Minute), t0)
			return err
		},
		"Get":    func(ctx context.Context) error { _, err := b.Get(ctx, []string{u}, t0); return err },
		"Expire": func(ctx context.Context) error { _, err := b.Expire(ctx, t0); return err },
	}
}

// With Redis gone every method fails with unavailable, fast: with the
// production client (redisx.Open), and with go-redis' default options too,
// whose dial retries (5 attempts 100 ms apart, 3 retries) the backend's
// own timeout must cut short.
func TestRedisBackendDownIsUnavailableFast(t *testing.T) {
	addr := testinfra.ClosedAddr(t)
	clients := map[string]*redis.Client{
		"redisx client":           redisx.Open(addr),
		"go-redis default client": redis.NewClient(&redis.Options{Addr: addr}),
	}
	for cname, c := range clients {
		t.Cleanup(func() { _ = c.Close() })
		b := presence.NewRedisBackend(c, "p:", presence.WithRedisTimeout(100*time.Millisecond))
		for name, call := range backendCalls(b) {
			t.Run(cname+"/"+name, func(t *testing.T) {
				start := time.Now()
				err := call(context.Background())
				took := time.Since(start)
				if !errs.HasCode(err, errs.Unavailable) {
					t.Fatalf("err = %v, want unavailable", err)
				}
				if took > 500*time.Millisecond {
					t.Fatalf("took %v to fail with Redis down, want about the 100ms timeout", took)
				}
			})
		}
	}
}

// A Redis that accepts connections but never answers is unavailable too,
// not a hang. go-redis bounds socket reads by the client's ReadTimeout
// (redisx.Open: 1s), and by the backend's timeout only when the client has
// ContextTimeoutEnabled.
func TestRedisBackendSilentServerIsUnavailable(t *testing.T) {
	addr := silentAddr(t)
	for _, tc := range []struct {
		name   string
		client *redis.Client
		within time.Duration
	}{
		{"redisx client", redisx.Open(addr), 3 * time.Second},
		{"context-timeout client", redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1}), 500 * time.Millisecond},
	} {
		t.Cleanup(func() { _ = tc.client.Close() })
		b := presence.NewRedisBackend(tc.client, "p:", presence.WithRedisTimeout(100*time.Millisecond))
		for name, call := range backendCalls(b) {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				err := call(context.Background())
				if !errs.HasCode(err, errs.Unavailable) {
					t.Fatalf("err = %v, want unavailable", err)
				}
				if took := time.Since(start); took > tc.within {
					t.Fatalf("took %v to fail against a silent server, want under %v", took, tc.within)
				}
			})
		}
	}
}

func TestRedisBackendCanceledContextKeepsItsCode(t *testing.T) {
	c := redisx.Open(testinfra.ClosedAddr(t))
	t.Cleanup(func() { _ = c.Close() })
	b := presence.NewRedisBackend(c, "p:")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, call := range backendCalls(b) {
		t.Run(name, func(t *testing.T) {
			if err := call(ctx); !errs.HasCode(err, errs.Canceled) {
				t.Fatalf("err = %v, want canceled", err)
			}
		})
	}
}

// The service on two instances sharing the Redis backend: a session
// registered through one is seen by the other, and when it expires the
// sweeps of both publish one offline event between them.
func TestRedisBackendUnderTwoServiceInstances(t *testing.T) {
	c := testinfra.Redis(t)
	prefix := testinfra.KeyPrefix(t)
	ctx := context.Background()
	now := t0
	clock := func() time.Time { return now }
	var (
		mu      sync.Mutex
		changes []presence.Changed
	)
	bus := events.NewBus()
	bus.Subscribe(func(_ context.Context, e events.Event) {
		var ch presence.Changed
		if err := json.Unmarshal(e.Data, &ch); err != nil {
			t.Errorf("event data: %v", err)
			return
		}
		mu.Lock()
		changes = append(changes, ch)
		mu.Unlock()
	})
	take := func() []presence.Changed {
		mu.Lock()
		defer mu.Unlock()
		out := changes
		changes = nil
		return out
	}
	p1 := newPresence(t, presence.Deps{Backend: presence.NewRedisBackend(c, prefix), Events: bus}, presence.Options{TTL: time.Minute, Now: clock})
	p2 := newPresence(t, presence.Deps{Backend: presence.NewRedisBackend(c, prefix), Events: bus}, presence.Options{TTL: time.Minute, Now: clock})
	u := ids.New()
	if err := p1.UserOnline(ctx, presence.Session{UserID: u, GatewayID: "gw-1", ConnID: "c1", DeviceID: "phone"}); err != nil {
		t.Fatal(err)
	}
	if err := p2.UserOnline(ctx, presence.Session{UserID: u, GatewayID: "gw-2", ConnID: "c2", DeviceID: "laptop"}); err != nil {
		t.Fatal(err)
	}
	if got := take(); len(got) != 1 || got[0].UserID != u || !got[0].Online {
		t.Fatalf("events after two sessions = %+v, want one online", got)
	}
	on, err := p2.IsUserOnline(ctx, u)
	if err != nil || !on {
		t.Fatalf("IsUserOnline = %v, %v; want true", on, err)
	}
	now = t0.Add(2 * time.Minute)
	if err := p2.Heartbeat(ctx, u, "c1"); !errs.HasCode(err, errs.NotFound) {
		t.Fatalf("heartbeat after expiry: %v, want not_found", err)
	}
	for _, p := range []*presence.Presence{p1, p2, p1} {
		if err := p.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := take(); len(got) != 1 || got[0].UserID != u || got[0].Online || !got[0].At.Equal(now) {
		t.Fatalf("events after three sweeps = %+v, want one offline at %v", got, now)
	}
	ups, err := p1.GetUserPresence(ctx, []string{u})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 1 || ups[0].Online || ups[0].LastSeen == nil || !ups[0].LastSeen.Equal(t0) {
		t.Fatalf("presence after expiry = %+v, want offline, last seen %v", ups, t0)
	}
}

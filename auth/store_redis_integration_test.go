//go:build integration

package auth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/auth/storetest"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/redisx"
	"github.com/beehive-im/beehive/shared/testinfra"
)

var rt0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func redisSessionAt(userID string, created time.Time) auth.Session {
	id := ids.NewAt(created)
	return auth.Session{ID: id, UserID: userID, DeviceID: "dev", RefreshHash: "h0-" + id, CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRedisStoreContract(t *testing.T) {
	c := testinfra.Redis(t)
	storetest.Run(t, func(t *testing.T) auth.Store {
		return auth.NewRedisStore(c, testinfra.KeyPrefix(t))
	})
}

// Every test of the contract on its own instance with its own client, all
// sharing one prefix: nothing depends on process-local state.
func TestRedisStoreContractSharedPrefix(t *testing.T) {
	prefix := testinfra.KeyPrefix(t)
	storetest.Run(t, func(t *testing.T) auth.Store {
		return auth.NewRedisStore(testinfra.Redis(t), prefix)
	})
}

// Two instances (two clients) race to rotate the same refresh token: the
// compare-and-rotate is one script, so exactly one wins, and the losers,
// presenting a now spent token, revoke the family.
func TestRedisStoreConcurrentRotationsAcrossInstancesHaveOneWinner(t *testing.T) {
	prefix := testinfra.KeyPrefix(t)
	stores := []*auth.RedisStore{
		auth.NewRedisStore(testinfra.Redis(t), prefix),
		auth.NewRedisStore(testinfra.Redis(t), prefix),
	}
	ctx := context.Background()
	for round := 0; round < 20; round++ {
		in := redisSessionAt(ids.New(), rt0)
		mustOK(t, stores[0].CreateSession(ctx, in))
		const n = 8
		start := make(chan struct{})
		var wg sync.WaitGroup
		type result struct {
			next string
			sess auth.Session
			err  error
		}
		results := make(chan result, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				next := fmt.Sprintf("next-%d", i)
				<-start
				sess, err := stores[i%2].RotateRefresh(ctx, in.ID, in.RefreshHash, next, rt0, rt0.Add(time.Hour))
				results <- result{next, sess, err}
			}(i)
		}
		close(start)
		wg.Wait()
		close(results)
		var winners []result
		for r := range results {
			switch {
			case r.err == nil:
				winners = append(winners, r)
			case errors.Is(r.err, auth.ErrRefreshReused), errors.Is(r.err, auth.ErrSessionRevoked):
			default:
				t.Fatalf("round %d: unexpected err %v", round, r.err)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d rotations won, want exactly 1", round, len(winners))
		}
		w := winners[0]
		if w.sess.RefreshHash != w.next || w.sess.Generation != 1 {
			t.Fatalf("round %d: winner got %+v", round, w.sess)
		}
		got, err := stores[1].GetSession(ctx, in.ID)
		mustOK(t, err)
		if got.RefreshHash != w.next || got.Generation != 1 || !got.Revoked {
			t.Fatalf("round %d: stored %+v, want the winner's hash, generation 1, revoked by the losers' reuse", round, got)
		}
	}
}

// A session rotated and revoked through one instance is seen so by another.
func TestRedisStoreInstancesShareSessions(t *testing.T) {
	prefix := testinfra.KeyPrefix(t)
	a := auth.NewRedisStore(testinfra.Redis(t), prefix)
	b := auth.NewRedisStore(testinfra.Redis(t), prefix)
	ctx := context.Background()
	in := redisSessionAt(ids.New(), rt0)
	mustOK(t, a.CreateSession(ctx, in))
	if _, err := b.RotateRefresh(ctx, in.ID, in.RefreshHash, "h1", rt0, rt0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RotateRefresh(ctx, in.ID, in.RefreshHash, "h2", rt0, rt0.Add(time.Hour)); !errors.Is(err, auth.ErrRefreshReused) {
		t.Fatalf("reuse through the other instance: err = %v, want reused", err)
	}
	if r, err := b.IsRevoked(ctx, in.ID); err != nil || !r {
		t.Fatalf("IsRevoked = %v, %v; want true", r, err)
	}
}

// Keys live under the prefix and expire a grace period after the refresh
// expiry, counted from the times the store is given (not Redis' clock).
func TestRedisStoreKeysLiveUnderPrefixWithTTLs(t *testing.T) {
	c := testinfra.Redis(t)
	prefix := testinfra.KeyPrefix(t)
	s := auth.NewRedisStore(c, prefix)
	ctx := context.Background()
	in := redisSessionAt(ids.New(), rt0)
	mustOK(t, s.CreateSession(ctx, in))
	_, err := s.RotateRefresh(ctx, in.ID, in.RefreshHash, "h1", rt0.Add(time.Minute), rt0.Add(3*time.Hour))
	mustOK(t, err)

	keys, err := c.Keys(ctx, strings.NewReplacer("*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`).Replace(prefix)+"*").Result()
	mustOK(t, err)
	want := map[string]bool{prefix + "s:" + in.ID: true, prefix + "x:" + in.ID: true, prefix + "u:" + in.UserID: true}
	if len(keys) != len(want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	// Rotated at rt0+1m to expire at rt0+3h: 2h59m + 24h grace.
	ttl := 2*time.Hour + 59*time.Minute + 24*time.Hour
	for _, k := range keys {
		if !want[k] {
			t.Fatalf("unexpected key %q", k)
		}
		got, err := c.PTTL(ctx, k).Result()
		mustOK(t, err)
		if got > ttl || got < ttl-time.Minute {
			t.Errorf("%s: TTL %v, want about %v", k, got, ttl)
		}
	}
}

// Times keep their nanoseconds, and expiry is exact to the nanosecond
// (Lua numbers are doubles: compared as numbers, nanosecond times would
// round to 256 ns).
func TestRedisStoreTimesAreExactToTheNanosecond(t *testing.T) {
	s := auth.NewRedisStore(testinfra.Redis(t), testinfra.KeyPrefix(t))
	ctx := context.Background()
	created := rt0.Add(123456789 * time.Nanosecond)
	in := redisSessionAt(ids.New(), created)
	in.ExpiresAt = created.Add(time.Hour + time.Nanosecond)
	mustOK(t, s.CreateSession(ctx, in))
	got, err := s.GetSession(ctx, in.ID)
	mustOK(t, err)
	if !got.CreatedAt.Equal(in.CreatedAt) || !got.ExpiresAt.Equal(in.ExpiresAt) {
		t.Fatalf("times %v %v, want %v %v", got.CreatedAt, got.ExpiresAt, in.CreatedAt, in.ExpiresAt)
	}
	rotated, err := s.RotateRefresh(ctx, in.ID, in.RefreshHash, "h1", in.ExpiresAt.Add(-time.Nanosecond), in.ExpiresAt.Add(time.Hour))
	mustOK(t, err)
	if _, err := s.RotateRefresh(ctx, in.ID, "h1", "h2", rotated.ExpiresAt, rotated.ExpiresAt.Add(time.Hour)); !errors.Is(err, auth.ErrSessionExpired) {
		t.Fatalf("rotation at the expiry instant: err = %v, want expired", err)
	}
	at := rt0.Add(7 * time.Nanosecond)
	revoked, err := s.RevokeSession(ctx, in.ID, at)
	mustOK(t, err)
	if !revoked.RevokedAt.Equal(at) {
		t.Fatalf("RevokedAt %v, want %v", revoked.RevokedAt, at)
	}
}

// receiver collects revocations delivered to SubscribeRevocations and the
// store's "subscribed to revocations" log lines.
type receiver struct {
	ch         chan [2]string
	subscribed chan struct{}
	done       chan error
	stop       func() error
}

// subscriptionLogger signals each confirmed (re)subscription.
type subscriptionLogger chan struct{}

func (l subscriptionLogger) Log(kv ...any) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "msg" && kv[i+1] == "subscribed to revocations" {
			l <- struct{}{}
		}
	}
	return nil
}

// subscriber returns a store on client whose SubscribeRevocations runs
// until the test ends, once its subscription is confirmed (so no later
// revocation can be missed).
func subscriber(t *testing.T, client redis.UniversalClient, prefix string) (*auth.RedisStore, *receiver) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &receiver{ch: make(chan [2]string, 64), subscribed: make(chan struct{}, 16), done: make(chan error, 1)}
	s := auth.NewRedisStore(client, prefix, auth.WithRedisStoreLogger(subscriptionLogger(r.subscribed)))
	go func() {
		r.done <- s.SubscribeRevocations(ctx, func(uid, sid string) { r.ch <- [2]string{uid, sid} })
	}()
	var once sync.Once
	stop := func() error {
		var err error
		once.Do(func() {
			cancel()
			err = <-r.done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	r.stop = stop
	r.waitSubscribed(t)
	return s, r
}

func (r *receiver) waitSubscribed(t *testing.T) {
	t.Helper()
	select {
	case <-r.subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("SubscribeRevocations did not subscribe within 10s")
	}
}

func (r *receiver) next(t *testing.T) [2]string {
	t.Helper()
	select {
	case m := <-r.ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no revocation delivered within 10s")
		return [2]string{}
	}
}

func (r *receiver) want(t *testing.T, uid, sid string) {
	t.Helper()
	if got := r.next(t); got != [2]string{uid, sid} {
		t.Fatalf("delivered %v, want [%s %s]", got, uid, sid)
	}
}

// Revocations made through one instance reach a subscriber on another,
// once each; a repeated revocation announces nothing.
func TestRedisStoreRevocationsReachOtherInstances(t *testing.T) {
	prefix := testinfra.KeyPrefix(t)
	_, r := subscriber(t, testinfra.Redis(t), prefix)
	authz := auth.NewRedisStore(testinfra.Redis(t), prefix)
	ctx := context.Background()

	uid := ids.New()
	a, b, c, d := redisSessionAt(uid, rt0), redisSessionAt(uid, rt0.Add(time.Second)), redisSessionAt(uid, rt0.Add(2*time.Second)), redisSessionAt(uid, rt0.Add(3*time.Second))
	for _, s := range []auth.Session{a, b, c, d} {
		mustOK(t, authz.CreateSession(ctx, s))
	}

	_, err := authz.RevokeSession(ctx, a.ID, rt0)
	mustOK(t, err)
	r.want(t, uid, a.ID)

	// Idempotent revoke: no second announcement (the next one delivered
	// is the reuse below, in publish order).
	_, err = authz.RevokeSession(ctx, a.ID, rt0)
	mustOK(t, err)

	_, err = authz.RotateRefresh(ctx, b.ID, b.RefreshHash, "b1", rt0, rt0.Add(time.Hour))
	mustOK(t, err)
	_, err = authz.RotateRefresh(ctx, b.ID, b.RefreshHash, "b2", rt0, rt0.Add(time.Hour))
	if !errors.Is(err, auth.ErrRefreshReused) {
		t.Fatalf("reuse: err = %v", err)
	}
	r.want(t, uid, b.ID)

	// All but one: one message per revoked session.
	got, err := authz.RevokeUserSessions(ctx, uid, d.ID, rt0)
	mustOK(t, err)
	if len(got) != 1 || got[0] != c.ID {
		t.Fatalf("revoked %v, want [%s]", got, c.ID)
	}
	r.want(t, uid, c.ID)

	// All: one message for the user.
	got, err = authz.RevokeUserSessions(ctx, uid, "", rt0)
	mustOK(t, err)
	if len(got) != 1 || got[0] != d.ID {
		t.Fatalf("revoked %v, want [%s]", got, d.ID)
	}
	r.want(t, uid, "")

	// Nothing left to revoke: nothing announced; the next message is the
	// other user's.
	_, err = authz.RevokeUserSessions(ctx, uid, "", rt0)
	mustOK(t, err)
	other := redisSessionAt(ids.New(), rt0)
	mustOK(t, authz.CreateSession(ctx, other))
	_, err = authz.RevokeSession(ctx, other.ID, rt0)
	mustOK(t, err)
	r.want(t, other.UserID, other.ID)

	if err := r.stop(); err != nil {
		t.Fatalf("SubscribeRevocations returned %v after ctx ended, want nil", err)
	}
}

// When the subscriber's connection dies, SubscribeRevocations subscribes
// again and later revocations still arrive.
func TestRedisStoreSubscriptionSurvivesKilledConnection(t *testing.T) {
	prefix := testinfra.KeyPrefix(t)
	admin := testinfra.Redis(t)
	// A named client, so the test can find and kill its subscription.
	opt := redis.Options{Addr: testinfra.RedisAddr(t), ClientName: "auth-revocation-test-" + ids.New()}
	subClient := redis.NewClient(&opt)
	t.Cleanup(func() { _ = subClient.Close() })
	_, r := subscriber(t, subClient, prefix)
	authz := auth.NewRedisStore(admin, prefix)
	ctx := context.Background()

	subscriberIDs := func() []string {
		list, err := admin.ClientList(ctx).Result()
		mustOK(t, err)
		var out []string
		for _, line := range strings.Split(list, "\n") {
			f := map[string]string{}
			for _, kv := range strings.Fields(line) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					f[k] = v
				}
			}
			if f["name"] == opt.ClientName && f["sub"] != "" && f["sub"] != "0" {
				out = append(out, f["id"])
			}
		}
		return out
	}
	first := subscriberIDs()
	if len(first) != 1 {
		t.Fatalf("subscriber connections %v, want one", first)
	}
	mustOK(t, admin.Do(ctx, "CLIENT", "KILL", "ID", first[0]).Err())
	r.waitSubscribed(t)
	if now := subscriberIDs(); len(now) != 1 || now[0] == first[0] {
		t.Fatalf("after resubscribing: subscriber connections %v (killed %s)", now, first[0])
	}

	s := redisSessionAt(ids.New(), rt0)
	mustOK(t, authz.CreateSession(ctx, s))
	_, err := authz.RevokeSession(ctx, s.ID, rt0)
	mustOK(t, err)
	r.want(t, s.UserID, s.ID)
}

// storeCalls runs every Store method once.
func storeCalls(s auth.Store) map[string]func(context.Context) error {
	sess := redisSessionAt(ids.New(), rt0)
	return map[string]func(context.Context) error{
		"CreateSession": func(ctx context.Context) error { return s.CreateSession(ctx, sess) },
		"GetSession":    func(ctx context.Context) error { _, err := s.GetSession(ctx, sess.ID); return err },
		"ListSessions":  func(ctx context.Context) error { _, err := s.ListSessions(ctx, sess.UserID); return err },
		"RotateRefresh": func(ctx context.Context) error {
			_, err := s.RotateRefresh(ctx, sess.ID, sess.RefreshHash, "h1", rt0, rt0.Add(time.Hour))
			return err
		},
		"RevokeSession": func(ctx context.Context) error { _, err := s.RevokeSession(ctx, sess.ID, rt0); return err },
		"RevokeUserSessions": func(ctx context.Context) error {
			_, err := s.RevokeUserSessions(ctx, sess.UserID, "", rt0)
			return err
		},
		"IsRevoked": func(ctx context.Context) error { _, err := s.IsRevoked(ctx, sess.ID); return err },
	}
}

// With Redis gone every method fails with unavailable at once (a refused
// connection), never a hang or an "unauthenticated" answer.
func TestRedisStoreDownIsUnavailableFast(t *testing.T) {
	c := redisx.Open(testinfra.ClosedAddr(t))
	t.Cleanup(func() { _ = c.Close() })
	s := auth.NewRedisStore(c, "a:")
	for name, call := range storeCalls(s) {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := call(context.Background())
			took := time.Since(start)
			if !errs.HasCode(err, errs.Unavailable) {
				t.Fatalf("err = %v, want unavailable", err)
			}
			if took > time.Second {
				t.Fatalf("took %v to fail with Redis down, want well under the 500ms call timeout", took)
			}
		})
	}
}

// A Redis that accepts connections and never answers is unavailable too,
// bounded by the store's per-call timeout.
func TestRedisStoreSilentServerIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	mustOK(t, err)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			cn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, cn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, cn := range conns {
			_ = cn.Close()
		}
	})
	c := redisx.Open(l.Addr().String())
	t.Cleanup(func() { _ = c.Close() })
	s := auth.NewRedisStore(c, "a:", auth.WithRedisStoreTimeout(100*time.Millisecond))
	for name, call := range storeCalls(s) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			if err := call(context.Background()); !errs.HasCode(err, errs.Unavailable) {
				t.Fatalf("err = %v, want unavailable", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("took %v against a silent server, want about the 100ms timeout", took)
			}
		})
	}
}

func TestRedisStoreCanceledContextKeepsItsCode(t *testing.T) {
	c := redisx.Open(testinfra.ClosedAddr(t))
	t.Cleanup(func() { _ = c.Close() })
	s := auth.NewRedisStore(c, "a:")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, call := range storeCalls(s) {
		t.Run(name, func(t *testing.T) {
			if err := call(ctx); !errs.HasCode(err, errs.Canceled) {
				t.Fatalf("err = %v, want canceled", err)
			}
		})
	}
}

// dropProxy forwards TCP to Redis; once armed, it swallows the next reply
// from Redis and cuts that connection: the command ran, its reply was lost,
// and go-redis (MaxRetries 1) sends it again on a fresh connection.
type dropProxy struct {
	addr    string
	armed   atomic.Bool
	dropped atomic.Int32
}

func newDropProxy(t *testing.T, target string) *dropProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	mustOK(t, err)
	p := &dropProxy{addr: l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			closeBoth := func() { _ = client.Close(); _ = server.Close() }
			t.Cleanup(closeBoth)
			wg.Add(2)
			go func() {
				defer wg.Done()
				defer closeBoth()
				_, _ = io.Copy(server, client)
			}()
			go func() {
				defer wg.Done()
				defer closeBoth()
				buf := make([]byte, 32<<10)
				for {
					n, err := server.Read(buf)
					if n > 0 {
						if p.armed.CompareAndSwap(true, false) {
							p.dropped.Add(1)
							return
						}
						if _, werr := client.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// A write whose reply is lost is replayed by go-redis; the replay must
// answer as the first run did: a retried rotation is not a reuse, a
// retried create is not "already exists", a retried revoke-all still
// reports what it revoked.
func TestRedisStoreReplayedWritesAnswerAsTheFirstRun(t *testing.T) {
	prefix := testinfra.KeyPrefix(t)
	p := newDropProxy(t, testinfra.RedisAddr(t))
	c := redisx.Open(p.addr)
	t.Cleanup(func() { _ = c.Close() })
	s := auth.NewRedisStore(c, prefix)
	ctx := context.Background()
	uid := ids.New()

	// Warm up: load the scripts, so the dropped reply is the script's
	// answer and not a NOSCRIPT error.
	warm := redisSessionAt(uid, rt0)
	mustOK(t, s.CreateSession(ctx, warm))
	_, err := s.RotateRefresh(ctx, warm.ID, warm.RefreshHash, "w1", rt0, rt0.Add(time.Hour))
	mustOK(t, err)
	_, err = s.RevokeUserSessions(ctx, ids.New(), "", rt0)
	mustOK(t, err)

	replayed := func(t *testing.T, what string, call func() error) {
		t.Helper()
		before := p.dropped.Load()
		p.armed.Store(true)
		err := call()
		p.armed.Store(false)
		if p.dropped.Load() != before+1 {
			t.Fatalf("%s: no reply was dropped; the test proves nothing", what)
		}
		if err != nil {
			t.Fatalf("%s replayed after a lost reply: %v", what, err)
		}
	}

	in := redisSessionAt(uid, rt0.Add(time.Second))
	replayed(t, "CreateSession", func() error { return s.CreateSession(ctx, in) })

	var rotated auth.Session
	replayed(t, "RotateRefresh", func() error {
		var err error
		rotated, err = s.RotateRefresh(ctx, in.ID, in.RefreshHash, "h1", rt0, rt0.Add(2*time.Hour))
		return err
	})
	if rotated.RefreshHash != "h1" || rotated.Generation != 1 || rotated.Revoked {
		t.Fatalf("rotated = %+v", rotated)
	}
	if r, err := s.IsRevoked(ctx, in.ID); err != nil || r {
		t.Fatalf("after a replayed rotation: revoked=%v err=%v, want live", r, err)
	}

	var revoked []string
	replayed(t, "RevokeUserSessions", func() error {
		var err error
		revoked, err = s.RevokeUserSessions(ctx, uid, warm.ID, rt0)
		return err
	})
	if len(revoked) != 1 || revoked[0] != in.ID {
		t.Fatalf("replayed revoke-all reported %v, want [%s]", revoked, in.ID)
	}
}

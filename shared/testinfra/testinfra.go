// Package testinfra is the integration tests' door to the real servers that
// docker/local/infra.sh runs (`make infra-up`). Each accessor reads the
// address from its BEEHIVE_TEST_* variable (default: the loopback port of
// infra.sh), checks the server answers within a few seconds, and fails the
// test when it does not: an integration test never skips because a server
// is missing, or CI would go green without having tested anything.
//
// Use the server accessors from files behind `//go:build integration`.
// CheckFor and Eventually, the one poll-until-true helper of the repo,
// serve every test, and so do Instancer, an event-driven sd.Instancer
// for tests of discovery clients, and the fakes every domain's tests share
// (fakes.go): Clock, Recorder (an events.Publisher) and TokenAuth (an
// identity.Authenticator).
package testinfra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/shared/cassandra"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/redisx"
)

// Environment variables and their defaults (docker/local/infra.sh).
const (
	EnvRedis     = "BEEHIVE_TEST_REDIS"
	EnvConsul    = "BEEHIVE_TEST_CONSUL"
	EnvKafka     = "BEEHIVE_TEST_KAFKA"
	EnvCassandra = "BEEHIVE_TEST_CASSANDRA"

	DefaultRedis     = "127.0.0.1:6379"
	DefaultConsul    = "127.0.0.1:8500"
	DefaultKafka     = "127.0.0.1:9092"
	DefaultCassandra = "127.0.0.1:9042"

	// TestKeyspace is the one Cassandra keyspace integration tests share.
	// Tests must use unique ids (ids.New()) and never assume it is empty.
	TestKeyspace = "beehive_test"
)

// answerTimeout bounds each readiness probe: a server that is up answers
// in milliseconds; one that is down must not hang the suite.
const answerTimeout = 5 * time.Second

// RedisAddr returns the Redis address after checking PING answers.
func RedisAddr(t testing.TB) string {
	t.Helper()
	addr := env(EnvRedis, DefaultRedis)
	probe(t, "redis", EnvRedis, addr, func(ctx context.Context) error {
		c := redisx.Open(addr)
		defer c.Close()
		return redisx.Ping(ctx, c)
	})
	return addr
}

// Redis returns a client (redisx.Open) for RedisAddr, closed when the test
// ends. Pair it with KeyPrefix.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	c := redisx.Open(RedisAddr(t))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ConsulAddr returns the Consul agent's HTTP address after checking it has
// a leader.
func ConsulAddr(t testing.TB) string {
	t.Helper()
	addr := env(EnvConsul, DefaultConsul)
	probe(t, "consul", EnvConsul, addr, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/status/leader", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /v1/status/leader: %s", resp.Status)
		}
		if leader := strings.Trim(strings.TrimSpace(string(body)), `"`); leader == "" {
			return errors.New("agent has no leader yet")
		}
		return nil
	})
	return addr
}

// KafkaBrokers returns the broker addresses after checking the first one
// answers a metadata request.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	brokers := split(env(EnvKafka, DefaultKafka))
	probe(t, "kafka", EnvKafka, strings.Join(brokers, ","), func(ctx context.Context) error {
		var last error
		for _, b := range brokers {
			conn, err := kafka.DialContext(ctx, "tcp", b)
			if err != nil {
				last = err
				continue
			}
			_ = conn.SetDeadline(time.Now().Add(answerTimeout))
			_, err = conn.Brokers()
			conn.Close()
			if err == nil {
				return nil
			}
			last = err
		}
		return last
	})
	return brokers
}

// CassandraHosts returns the Cassandra contact points after checking one
// answers a CQL query.
func CassandraHosts(t testing.TB) []string {
	t.Helper()
	hosts := split(env(EnvCassandra, DefaultCassandra))
	probe(t, "cassandra", EnvCassandra, strings.Join(hosts, ","), func(ctx context.Context) error {
		cluster := gocql.NewCluster(hosts...)
		cluster.ConnectTimeout = answerTimeout
		cluster.Timeout = answerTimeout
		cluster.Consistency = gocql.One
		cluster.DisableInitialHostLookup = true
		s, err := cluster.CreateSession()
		if err != nil {
			return err
		}
		defer s.Close()
		var v string
		return s.Query(`SELECT release_version FROM system.local`).WithContext(ctx).Scan(&v)
	})
	return hosts
}

var keyspaceOnce struct {
	sync.Once
	err error
}

// Keyspace returns TestKeyspace after migrating it with
// shared/cassandra.Migrate, once per process. Migrations are idempotent, so
// test processes running side by side may both migrate.
func Keyspace(t testing.TB) string {
	t.Helper()
	hosts := CassandraHosts(t)
	keyspaceOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, keyspaceOnce.err = cassandra.Migrate(ctx, cassandra.Config{Hosts: hosts, Keyspace: TestKeyspace}, 1)
	})
	if keyspaceOnce.err != nil {
		t.Fatalf("testinfra: migrate keyspace %s on %v: %v", TestKeyspace, hosts, keyspaceOnce.err)
	}
	return TestKeyspace
}

// CassandraConfig is the session config for the migrated test keyspace.
func CassandraConfig(t testing.TB) cassandra.Config {
	t.Helper()
	ks := Keyspace(t)
	return cassandra.Config{Hosts: CassandraHosts(t), Keyspace: ks, Consistency: "LOCAL_QUORUM", Timeout: 10 * time.Second}
}

// CassandraSession opens a session on the migrated test keyspace, closed
// when the test ends.
func CassandraSession(t testing.TB) *gocql.Session {
	t.Helper()
	s, err := cassandra.Connect(CassandraConfig(t))
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

var unsafeKeyChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// KeyPrefix returns a Redis key prefix no other test (in this or another
// process, in this or an earlier run) uses. When the test passes, the keys
// under it are deleted; a failed test's keys are kept for inspection (they
// carry the test name).
func KeyPrefix(t testing.TB) string {
	t.Helper()
	name := unsafeKeyChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 60 {
		name = name[:60]
	}
	prefix := "beehive-test:" + name + ":" + ids.New() + ":"
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testinfra: redis keys kept under %q", prefix)
			return
		}
		deleteKeys(t, prefix)
	})
	return prefix
}

func deleteKeys(t testing.TB, prefix string) {
	c := redisx.Open(env(EnvRedis, DefaultRedis))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	iter := c.Scan(ctx, 0, escapeGlob(prefix)+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := c.Unlink(ctx, batch...).Err(); err != nil {
				t.Logf("testinfra: delete keys under %q: %v", prefix, err)
				return
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		t.Logf("testinfra: scan keys under %q: %v", prefix, err)
		return
	}
	if len(batch) > 0 {
		if err := c.Unlink(ctx, batch...).Err(); err != nil {
			t.Logf("testinfra: delete keys under %q: %v", prefix, err)
		}
	}
}

// escapeGlob quotes Redis MATCH metacharacters.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// CheckFor calls f every `every` until it returns nil, and fails the test
// with f's last error if that has not happened within wait. Use it instead
// of sleeping to wait for asynchronous work.
func CheckFor(t testing.TB, wait, every time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := f()
		if err == nil {
			return
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("testinfra: condition not met within %v: %v", wait, err)
		}
		time.Sleep(every)
	}
}

// Eventually polls cond until it returns true, and fails the test with
// what if that has not happened within timeout. The timeout only keeps a
// broken test from hanging: pass a generous one, it asserts nothing about
// time. It is CheckFor for a yes/no condition.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	CheckFor(t, timeout, 2*time.Millisecond, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("never happened: %s", what)
	})
}

// FreePort returns a loopback TCP port that was free a moment ago (for
// closed-port tests and servers that must announce their port up front).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testinfra: listen: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

var (
	probeMu sync.Mutex
	probed  = map[string]bool{} // "kind addr" that answered once in this process
)

// probe fails t unless check succeeds within answerTimeout. A server that
// answered once is not probed again in this process.
func probe(t testing.TB, kind, envName, addr string, check func(ctx context.Context) error) {
	t.Helper()
	key := kind + " " + addr
	probeMu.Lock()
	ok := probed[key]
	probeMu.Unlock()
	if ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	if err := check(ctx); err != nil {
		t.Fatalf("testinfra: %s at %s does not answer (%v).\n"+
			"Integration tests need the real servers: run `make infra-up` (docker/local/infra.sh up),\n"+
			"or point %s at a running %s.", kind, addr, err, envName, kind)
	}
	probeMu.Lock()
	probed[key] = true
	probeMu.Unlock()
}

func env(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// CassandraSessionFor opens a session on another (already migrated)
// keyspace, closed when the test ends.
func CassandraSessionFor(t testing.TB, keyspace string) *gocql.Session {
	t.Helper()
	s, err := cassandra.Connect(cassandra.Config{Hosts: CassandraHosts(t), Keyspace: keyspace, Consistency: "LOCAL_QUORUM", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

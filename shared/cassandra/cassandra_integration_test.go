//go:build integration

package cassandra_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/beehive-im/beehive/shared/cassandra"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func versions(t *testing.T) []int {
	t.Helper()
	ms, err := cassandra.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, m := range ms {
		out = append(out, m.Version)
	}
	return out
}

type recorded struct {
	name      string
	appliedAt time.Time
}

func schemaMigrations(t *testing.T, s *gocql.Session) map[int]recorded {
	t.Helper()
	out := map[int]recorded{}
	iter := s.Query(`SELECT version, name, applied_at FROM schema_migrations`).Iter()
	var (
		v    int
		name string
		at   time.Time
	)
	for iter.Scan(&v, &name, &at) {
		out[v] = recorded{name, at}
	}
	if err := iter.Close(); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return out
}

// checkRecorded fails unless schema_migrations holds every embedded
// migration, by version and name.
func checkRecorded(t *testing.T, s *gocql.Session) {
	t.Helper()
	ms, err := cassandra.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	got := schemaMigrations(t, s)
	for _, m := range ms {
		r, ok := got[m.Version]
		if !ok {
			t.Errorf("schema_migrations lacks %04d_%s", m.Version, m.Name)
			continue
		}
		if r.name != m.Name || r.appliedAt.IsZero() {
			t.Errorf("schema_migrations %d = %+v, want name %q and an applied_at", m.Version, r, m.Name)
		}
	}
}

var createTable = regexp.MustCompile(`(?is)^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:\w+\.)?"?(\w+)"?`)

func TestMigrateFreshKeyspaceAppliesAllThenNothing(t *testing.T) {
	hosts := testinfra.CassandraHosts(t)
	ks := "beehive_mt_" + strings.ToLower(ids.New())
	cfg := cassandra.Config{Hosts: hosts, Keyspace: ks, Timeout: 20 * time.Second}
	t.Cleanup(func() { dropKeyspace(t, hosts, ks) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	applied, err := cassandra.Migrate(ctx, cfg, 1)
	if err != nil {
		t.Fatalf("first Migrate: %v", err)
	}
	if want := versions(t); !slices.Equal(applied, want) {
		t.Fatalf("first Migrate applied %v, want every version %v", applied, want)
	}
	again, err := cassandra.Migrate(ctx, cfg, 1)
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(again) != 0 {
		t.Fatalf("second Migrate applied %v, want nothing", again)
	}

	s, err := cassandra.Connect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkRecorded(t, s)

	// The keyspace is SimpleStrategy with the requested factor.
	var repl map[string]string
	if err := s.Query(`SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?`, ks).Scan(&repl); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(repl["class"], "SimpleStrategy") || repl["replication_factor"] != "1" {
		t.Fatalf("replication %v, want SimpleStrategy rf 1", repl)
	}
	// Every table a migration creates exists.
	tables := map[string]bool{}
	iter := s.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?`, ks).Iter()
	var name string
	for iter.Scan(&name) {
		tables[name] = true
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	ms, _ := cassandra.Migrations()
	for _, m := range ms {
		for _, stmt := range cassandra.Statements(m.CQL) {
			if mt := createTable.FindStringSubmatch(stmt); mt != nil && !tables[strings.ToLower(mt[1])] {
				t.Errorf("migration %04d_%s creates table %s, missing from %s (has %v)", m.Version, m.Name, mt[1], ks, tables)
			}
		}
	}
}

func TestSharedTestKeyspaceIsMigrated(t *testing.T) {
	ks := testinfra.Keyspace(t)
	if ks != testinfra.TestKeyspace {
		t.Fatalf("Keyspace = %q, want %q", ks, testinfra.TestKeyspace)
	}
	cfg := testinfra.CassandraConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	applied, err := cassandra.Migrate(ctx, cfg, 1)
	if err != nil {
		t.Fatalf("Migrate on the shared test keyspace: %v", err)
	}
	if len(applied) != 0 {
		t.Fatalf("Migrate after testinfra.Keyspace applied %v, want nothing", applied)
	}
	checkRecorded(t, testinfra.CassandraSession(t))
}

func TestMigrateRefusesBadKeyspaceNames(t *testing.T) {
	hosts := testinfra.CassandraHosts(t)
	for _, ks := range []string{"", "Beehive", "bee-hive", "1beehive", "bee;DROP KEYSPACE system", strings.Repeat("a", 49)} {
		t.Run(fmt.Sprintf("%q", ks), func(t *testing.T) {
			if _, err := cassandra.Migrate(context.Background(), cassandra.Config{Hosts: hosts, Keyspace: ks}, 1); err == nil {
				t.Fatalf("Migrate accepted keyspace %q", ks)
			}
		})
	}
}

func TestMigrateFailsWithoutCassandra(t *testing.T) {
	cfg := cassandra.Config{Hosts: []string{fmt.Sprintf("127.0.0.1:%d", testinfra.FreePort(t))}, Keyspace: "beehive_absent"}
	if _, err := cassandra.Migrate(context.Background(), cfg, 1); err == nil {
		t.Fatal("Migrate against no server succeeded")
	}
}

func dropKeyspace(t *testing.T, hosts []string, ks string) {
	cluster := gocql.NewCluster(hosts...)
	cluster.Timeout = 30 * time.Second
	cluster.Consistency = gocql.One
	s, err := cluster.CreateSession()
	if err != nil {
		t.Logf("drop keyspace %s: %v", ks, err)
		return
	}
	defer s.Close()
	if err := s.Query(`DROP KEYSPACE IF EXISTS ` + ks).Exec(); err != nil {
		t.Logf("drop keyspace %s: %v", ks, err)
	}
}

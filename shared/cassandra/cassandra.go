// Package cassandra holds the Cassandra plumbing: a session with the
// configured consistency, and the migration runner for the versioned .cql
// files in migrations/ (applied by `beehive migrate`). Domains own their
// tables (their store_cassandra.go) but add them here as migrations so one
// ordered history describes the schema.
package cassandra

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gocql/gocql"
)

//go:embed migrations/*.cql
var migrationFiles embed.FS

// Config of a session.
type Config struct {
	Hosts       []string
	Keyspace    string
	Consistency string // ONE, LOCAL_QUORUM (default), QUORUM, ALL
	Timeout     time.Duration
}

// Connect opens a session on cfg.Keyspace (which must exist: run Migrate).
func Connect(cfg Config) (*gocql.Session, error) {
	cluster := newCluster(cfg)
	cluster.Keyspace = cfg.Keyspace
	s, err := cluster.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("cassandra %v keyspace %s: %w", cfg.Hosts, cfg.Keyspace, err)
	}
	return s, nil
}

func newCluster(cfg Config) *gocql.ClusterConfig {
	cluster := gocql.NewCluster(cfg.Hosts...)
	cons := gocql.LocalQuorum
	if cfg.Consistency != "" {
		if c, err := gocql.ParseConsistencyWrapper(cfg.Consistency); err == nil {
			cons = c
		}
	}
	cluster.Consistency = cons
	cluster.SerialConsistency = gocql.LocalSerial
	cluster.Timeout = cfg.Timeout
	if cluster.Timeout == 0 {
		cluster.Timeout = 5 * time.Second
	}
	cluster.ConnectTimeout = 5 * time.Second
	cluster.RetryPolicy = &gocql.SimpleRetryPolicy{NumRetries: 2}
	cluster.ReconnectInterval = 2 * time.Second
	return cluster
}

// Migration is one versioned .cql file.
type Migration struct {
	Version int
	Name    string
	CQL     string
}

var migrationName = regexp.MustCompile(`^(\d+)_([a-z0-9_]+)\.cql$`)

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_name.cql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: m[2], CQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two migrations with version %d", out[i].Version)
		}
	}
	return out, nil
}

// Statements splits a .cql file on semicolons that end a line, dropping
// comment lines.
func Statements(cql string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(cql, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") || strings.HasPrefix(t, "//") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			if s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// Migrate creates the keyspace (SimpleStrategy with replication rf) if
// missing and applies every migration not yet recorded in
// schema_migrations. It is safe to run repeatedly. Returns the versions
// it applied.
func Migrate(ctx context.Context, cfg Config, rf int) ([]int, error) {
	if rf <= 0 {
		rf = 1
	}
	if !regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`).MatchString(cfg.Keyspace) {
		return nil, fmt.Errorf("invalid keyspace name %q", cfg.Keyspace)
	}
	sys := newCluster(cfg)
	sys.Consistency = gocql.One
	admin, err := sys.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("cassandra %v: %w", cfg.Hosts, err)
	}
	err = admin.Query(fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': %d}`, cfg.Keyspace, rf)).WithContext(ctx).Exec()
	admin.Close()
	if err != nil {
		return nil, fmt.Errorf("create keyspace %s: %w", cfg.Keyspace, err)
	}
	s, err := Connect(cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := s.Query(`CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text, applied_at timestamp)`).WithContext(ctx).Exec(); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	iter := s.Query(`SELECT version FROM schema_migrations`).WithContext(ctx).Iter()
	var v int
	for iter.Scan(&v) {
		applied[v] = true
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	var done []int
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		for _, stmt := range Statements(m.CQL) {
			if err := s.Query(stmt).WithContext(ctx).Exec(); err != nil {
				return done, fmt.Errorf("migration %04d_%s: %w\n%s", m.Version, m.Name, err, stmt)
			}
		}
		if err := s.Query(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.Version, m.Name, time.Now().UTC()).WithContext(ctx).Exec(); err != nil {
			return done, fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		done = append(done, m.Version)
	}
	return done, nil
}

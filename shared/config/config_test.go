package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFileThenEnvThenSet(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "beehive.yaml")
	if err := os.WriteFile(path, []byte("http:\n  addr: \":7000\"\nauth:\n  access_ttl: 1m\nkafka:\n  brokers: [a:1]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{"BEEHIVE_AUTH_ACCESS_TTL=2m", "BEEHIVE_KAFKA_BROKERS=x:1, y:2", "BEEHIVE_PEERS=user=h1:1|h2:2,auth=h3:3", "OTHER=1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != ":7000" || c.Auth.AccessTTL != 2*time.Minute {
		t.Fatalf("file/env precedence wrong: %+v %v", c.HTTP, c.Auth.AccessTTL)
	}
	if len(c.Kafka.Brokers) != 2 || c.Kafka.Brokers[1] != "y:2" {
		t.Fatalf("list env: %v", c.Kafka.Brokers)
	}
	if len(c.Peers["user"]) != 2 || c.Peers["auth"][0] != "h3:3" {
		t.Fatalf("peers env: %v", c.Peers)
	}
	if c.GRPC.Addr != ":9090" {
		t.Fatal("defaults must survive a partial file")
	}
	if err := Set(&c, "http.addr", ":1"); err != nil || c.HTTP.Addr != ":1" {
		t.Fatalf("Set: %v %s", err, c.HTTP.Addr)
	}
	if err := Set(&c, "nope.x", "1"); err == nil {
		t.Fatal("unknown key must fail")
	}
}

func TestBadEnvValueNamesTheVariable(t *testing.T) {
	_, err := Load("", []string{"BEEHIVE_AUTH_BCRYPT_COST=ten"})
	if err == nil || !contains(err.Error(), "BEEHIVE_AUTH_BCRYPT_COST") {
		t.Fatalf("want error naming the variable, got %v", err)
	}
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && (s == sub || len(sub) == 0 || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

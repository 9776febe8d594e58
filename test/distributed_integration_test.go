//go:build integration

package test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// cluster is every service as its own process on the real servers, found
// through Consul, with two gateways and two message instances.
type cluster struct {
	env      []string
	gw1, gw2 *Proc
	procs    map[string][]*Proc
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	redisAddr := testinfra.RedisAddr(t)
	consulAddr := testinfra.ConsulAddr(t)
	brokers := testinfra.KafkaBrokers(t)
	hosts := testinfra.CassandraHosts(t)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	c := &cluster{procs: map[string][]*Proc{}}
	c.env = append(append([]string{}, devEnv...),
		"BEEHIVE_MODE=distributed",
		"BEEHIVE_SERVICE_TOKEN=e2e-"+run,
		"BEEHIVE_AUTH_SIGNING_KEYS=k1="+base64.StdEncoding.EncodeToString([]byte("e2e-test-signing-key-32-bytes!!!")),
		"BEEHIVE_AUTH_ACTIVE_KID=k1",
		"BEEHIVE_KAFKA_BROKERS="+strings.Join(brokers, ","),
		"BEEHIVE_KAFKA_SESSION_TIMEOUT=6s", // Kafka refuses less (group.min.session.timeout.ms)
		"BEEHIVE_CASSANDRA_HOSTS="+strings.Join(hosts, ","),
		"BEEHIVE_CASSANDRA_KEYSPACE="+testinfra.Keyspace(t),
		"BEEHIVE_REDIS_ADDR="+redisAddr,
		"BEEHIVE_REDIS_KEY_PREFIX=e2e-"+run+":",
		"BEEHIVE_CONSUL_ADDR="+consulAddr,
	)
	migrate := exec.Command(binary, "migrate")
	migrate.Env = append(os.Environ(), c.env...)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("beehive migrate: %v\n%s", err, out)
	}
	start := func(svc string, extra ...string) *Proc {
		p := StartProc(t, append(append([]string{}, c.env...), extra...), "serve", svc, "--data-dir", t.TempDir())
		c.procs[svc] = append(c.procs[svc], p)
		return p
	}
	for _, svc := range []string{"auth", "user", "group", "query", "presence", "pusher"} {
		start(svc)
	}
	start("message")
	start("message")
	c.gw1 = start("gateway", "BEEHIVE_GATEWAY_ID=gw1-"+run)
	c.gw2 = start("gateway", "BEEHIVE_GATEWAY_ID=gw2-"+run)
	c.waitPassing(t, consulAddr, 60*time.Second)
	return c
}

// waitPassing waits until Consul reports every instance this cluster
// started as passing.
func (c *cluster) waitPassing(t *testing.T, consulAddr string, wait time.Duration) {
	t.Helper()
	cfg := consul.DefaultConfig()
	cfg.Address = consulAddr
	api, err := consul.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testinfra.CheckFor(t, wait, 200*time.Millisecond, func() error {
		for svc, ps := range c.procs {
			entries, _, err := api.Health().Service("beehive-"+svc, "", true, nil)
			if err != nil {
				return err
			}
			for _, p := range ps {
				found := false
				for _, e := range entries {
					if strconv.Itoa(e.Service.Port) == p.GRPCAddr[strings.LastIndexByte(p.GRPCAddr, ':')+1:] {
						found = true
					}
				}
				if !found {
					return fmt.Errorf("beehive-%s at %s is not passing in Consul", svc, p.GRPCAddr)
				}
			}
		}
		return nil
	})
}

func TestDistributedChatAcrossTwoGateways(t *testing.T) {
	c := startCluster(t)
	alice := NewUser(t, c.gw1, "alice")
	bob := NewUser(t, c.gw2, "bob")
	aws, bws := alice.Dial("d1"), bob.DialSynced("d1")

	// Presence is shared: alice sees bob online through gateway 1.
	testinfra.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		out := alice.Must(200, "GET", "/v1/presence?user_ids="+bob.ID, nil)
		list, _ := out["presence"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["online"] != true {
			return fmt.Errorf("bob not online: %v", out)
		}
		return nil
	})

	for i := 0; i < 50; i++ {
		aws.Send("send", strconv.Itoa(i), text(bob, "x"+strconv.Itoa(i), "n"+strconv.Itoa(i)))
	}
	for i := 0; i < 50; i++ {
		if f := aws.Next(30*time.Second, "sent", "error"); f.Op != "sent" {
			t.Fatalf("send %d: %s", i, f.Data)
		}
	}
	for i := 1; i <= 50; i++ {
		m := bws.Next(30*time.Second, "message").Message(t)
		if m.Seq != int64(i) {
			t.Fatalf("bob on gateway 2 got seq %d at position %d", m.Seq, i)
		}
	}
	// Read receipt crosses back to gateway 1.
	bws.Send("read", "", map[string]any{"conversation_id": conv(alice, bob), "seq": 50})
	aws.Next(30*time.Second, "receipt")
	// History through either gateway.
	testinfra.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		h := alice.Must(200, "GET", "/v1/conversations/"+conv(alice, bob)+"/messages?limit=100", nil)
		if msgs, _ := h["messages"].([]any); len(msgs) != 50 {
			return fmt.Errorf("history has %d of 50", len(msgs))
		}
		return nil
	})
	// A logout through gateway 2 closes alice's socket on gateway 1 (4001):
	// the revocation travels to every gateway.
	MustCall(t, 204, "POST", c.gw2.URL("/v1/auth/logout"), alice.Token, nil)
	if code := aws.CloseCode(15 * time.Second); code != 4001 {
		t.Fatalf("revoked session's socket closed with %d, want 4001", code)
	}
}

func TestDistributedKillingOneMessageInstanceLosesNothingAcknowledged(t *testing.T) {
	c := startCluster(t)
	alice := NewUser(t, c.gw1, "alice")
	bob := NewUser(t, c.gw2, "bob")
	aws := alice.Dial("d1")
	acked := map[string]bool{}
	const n = 200
	for i := 0; i < n; i++ {
		aws.Send("send", strconv.Itoa(i), text(bob, "k"+strconv.Itoa(i), strconv.Itoa(i)))
		if i == 60 {
			c.procs["message"][0].Kill()
		}
	}
	for i := 0; i < n; i++ {
		f := aws.Next(60*time.Second, "sent", "error")
		if f.Op == "sent" {
			acked[f.Message(t).ID] = true
		}
	}
	if len(acked) < n/2 {
		t.Fatalf("only %d of %d sends acknowledged with one message instance left", len(acked), n)
	}
	bws := bob.Dial("d1")
	testinfra.CheckFor(t, 60*time.Second, 200*time.Millisecond, func() error {
		got := map[string]bool{}
		cursors := map[string]int64{}
		for {
			bws.Send("sync", "s", map[string]any{"cursors": cursors, "limit": 500})
			more := false
			for {
				f := bws.Next(30*time.Second, "message", "synced", "error")
				if f.Op == "error" {
					return fmt.Errorf("sync error %s", f.Data)
				}
				if f.Op == "synced" {
					more = strings.Contains(string(f.Data), `"has_more":true`)
					break
				}
				m := f.Message(t)
				got[m.ID] = true
				cursors[m.ConversationID] = m.Seq
			}
			if !more {
				break
			}
		}
		for id := range acked {
			if !got[id] {
				return fmt.Errorf("acknowledged %s missing (%d of %d found)", id, len(got), len(acked))
			}
		}
		return nil
	})
}

func TestDistributedReadinessFollowsRedis(t *testing.T) {
	c := startCluster(t)
	pres := c.procs["presence"][0]
	ready := func() (int, string) {
		resp, err := http.Get(pres.URL("/ready"))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		k, _ := resp.Body.Read(buf)
		b.Write(buf[:k])
		return resp.StatusCode, b.String()
	}
	if st, body := ready(); st != 200 {
		t.Fatalf("presence not ready before: %d %s", st, body)
	}
	alice := NewUser(t, c.gw1, "alice")
	infra := func(args ...string) {
		cmd := exec.Command("bash", append([]string{"../docker/local/infra.sh"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("infra.sh %v: %v\n%s", args, err, out)
		}
	}
	infra("down", "--only", "redis")
	t.Cleanup(func() { infra("up", "--only", "redis") })
	testinfra.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		st, body := ready()
		if st != 503 || !strings.Contains(body, "redis") {
			return fmt.Errorf("ready %d %s", st, body)
		}
		return nil
	})
	// A call that needs Redis fails fast with unavailable, not a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.gw1.URL("/v1/presence?user_ids="+alice.ID), nil)
	req.Header.Set("Authorization", "Bearer "+alice.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("presence query hung or failed at the transport: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("presence with Redis down: %d, want 503", resp.StatusCode)
	}
	cfg := consul.DefaultConfig()
	cfg.Address = testinfra.ConsulAddr(t)
	api, _ := consul.NewClient(cfg)
	testinfra.CheckFor(t, 20*time.Second, 200*time.Millisecond, func() error {
		checks, _, err := api.Health().Checks("beehive-presence", nil)
		if err != nil {
			return err
		}
		for _, ch := range checks {
			if ch.Status == consul.HealthCritical && strings.Contains(ch.Output, "redis") {
				return nil
			}
		}
		return fmt.Errorf("no critical check naming redis yet")
	})
	infra("up", "--only", "redis")
	testinfra.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if st, body := ready(); st != 200 {
			return fmt.Errorf("ready %d %s", st, body)
		}
		return nil
	})
	c.waitPassing(t, testinfra.ConsulAddr(t), 30*time.Second)
}

func TestReplayRebuildsHistoryIntoAFreshKeyspaceIdempotently(t *testing.T) {
	c := startCluster(t)
	from := time.Now().Add(-time.Second).UTC().Format(time.RFC3339)
	alice := NewUser(t, c.gw1, "alice")
	bob := NewUser(t, c.gw2, "bob")
	const n = 30
	for i := 0; i < n; i++ {
		alice.Must(200, "POST", "/v1/messages", text(bob, "r"+strconv.Itoa(i), "replay "+strconv.Itoa(i)))
	}
	// A fresh keyspace stands for a lost history store.
	keyspace := "replay_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	env := append(append([]string{}, c.env...), "BEEHIVE_CASSANDRA_KEYSPACE="+keyspace)
	beehive := func(args ...string) string {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("beehive %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	beehive("migrate")
	session := testinfra.CassandraSessionFor(t, keyspace)
	store := query.NewCassandraStore(session)
	read := func() []string {
		ms, err := store.Messages(context.Background(), conv(alice, bob), query.SeqRange{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%d:%s", m.Seq, m.Content))
		}
		return out
	}
	for round := 1; round <= 2; round++ {
		out := beehive("replay", "--from", from, "--to-store")
		if !strings.Contains(out, "replayed") {
			t.Fatalf("replay output: %s", out)
		}
		got := read()
		if len(got) != n {
			t.Fatalf("round %d: rebuilt %d of %d messages: %v", round, len(got), n, got)
		}
		for i, s := range got {
			if want := fmt.Sprintf("%d:\"replay %d\"", i+1, i); s != want {
				t.Fatalf("round %d: entry %d is %s, want %s", round, i, s, want)
			}
		}
	}
}

// TestDistributedChatSuite runs the embedded mode's end-to-end chat tests
// unchanged on the distributed mode, the two users of each on different
// gateways.
func TestDistributedChatSuite(t *testing.T) {
	c := startCluster(t)
	e := chatEnv{A: c.gw1, B: c.gw2}
	for name, fn := range map[string]func(*testing.T, chatEnv){
		"OneToOneSendReceiveAckReadTypingRecall":                  oneToOneSendReceiveAckReadTypingRecall,
		"RetriedClientMsgIDCreatesNothingNew":                     retriedClientMsgIDCreatesNothingNew,
		"BlockedUserCannotMessage":                                blockedUserCannotMessage,
		"ThousandMessagesArriveInSeqOrderOnTwoDevices":            thousandMessagesArriveInSeqOrderOnTwoDevices,
		"OfflineDeviceCatchesUpBySyncWithoutGapOrDuplicate":       offlineDeviceCatchesUpBySyncWithoutGapOrDuplicate,
		"GroupWithAdminMuteKickAndLeave":                          groupWithAdminMuteKickAndLeave,
		"ReconnectingDeviceGetsEachSeqOnceInOrderWhilePushesFlow": reconnectingDeviceGetsEachSeqOnceInOrderWhilePushesFlow,
	} {
		t.Run(name, func(t *testing.T) { fn(t, e) })
	}
}

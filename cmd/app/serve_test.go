package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/shared/config"
	"github.com/beehive-im/beehive/shared/discovery"
	"github.com/beehive-im/beehive/shared/kafkax"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// ready returns /ready's status code and the dependencies it names.
func ready(addr string) (int, map[string]any, error) {
	resp, err := http.Get("http://" + addr + "/ready")
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		Failing map[string]any `json:"failing"`
	}
	_ = json.Unmarshal(body, &out)
	return resp.StatusCode, out.Failing, nil
}

// A service whose Kafka is away at start stays up, says it is not ready
// naming kafka, and becomes ready without a restart when Kafka comes.
func TestServeWaitsForKafkaAndRecoversWithoutRestart(t *testing.T) {
	kafkaAddr := "127.0.0.1:" + strconv.Itoa(testinfra.FreePort(t))
	httpAddr := "127.0.0.1:" + strconv.Itoa(testinfra.FreePort(t))
	cfg := config.Default()
	cfg.Mode = config.ModeStatic
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr, cfg.GRPC.Addr = httpAddr, "127.0.0.1:0"
	cfg.ServiceToken = "test-token"
	cfg.Kafka.Brokers = []string{kafkaAddr}
	cfg.Peers = map[string][]string{"beehive-auth": {"127.0.0.1:1"}}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunServe(ctx, "user", cfg, log.NewNopLogger(), io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunServe after stop: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("RunServe did not stop")
		}
	})

	testinfra.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		code, failing, err := ready(httpAddr)
		if err != nil {
			return err
		}
		if _, named := failing["kafka"]; code != http.StatusServiceUnavailable || !named {
			return fmt.Errorf("ready %d failing %v, want 503 naming kafka", code, failing)
		}
		return nil
	})
	select {
	case err := <-done:
		t.Fatalf("the process exited while Kafka was away: %v", err)
	default:
	}

	broker, err := kafkax.StartEmbedded(t.TempDir(), kafkaAddr, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Close() })
	testinfra.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		code, failing, err := ready(httpAddr)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("ready %d failing %v", code, failing)
		}
		return nil
	})
}

// Every service builds in one process in build order: each finds the peers
// it needs already built, and the process is ready on its own backends.
func TestEveryBuilderRunsInBuildOrderInOneProcess(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.ServiceToken = "test-token"
	w := newWiring(config.ModeEmbedded, cfg, log.NewNopLogger(), newBackends(config.ModeEmbedded, "store", cfg, log.NewNopLogger()), &peers{})
	defer w.close()
	if err := w.build(context.Background(), Services...); err != nil {
		t.Fatal(err)
	}
	if len(builders) != len(Services) {
		t.Fatalf("builders %d, Services %v: every service once", len(builders), Services)
	}
	for _, c := range w.checks() {
		if err := c.Check(context.Background()); err != nil {
			t.Fatalf("check %s: %v", c.Name, err)
		}
	}
	if w.ws == nil || w.peers.local.message == nil || w.peers.local.query == nil {
		t.Fatal("the embedded process lacks its gateway or a local peer")
	}
}

// A builder that runs before a peer it needs fails at start, naming it,
// instead of wiring a nil.
func TestABuilderBeforeItsPeerFailsAtStart(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	w := newWiring(config.ModeEmbedded, cfg, log.NewNopLogger(), newBackends(config.ModeEmbedded, "store", cfg, log.NewNopLogger()), &peers{})
	defer w.close()
	err := w.build(context.Background(), "group")
	if err == nil {
		t.Fatal("group built without user")
	}
	if want := "beehive-user"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %s", err, want)
	}
}

// forgetful is a registry that can forget a registration, as a Consul
// agent restarted in -dev mode does.
type forgetful struct {
	mu         sync.Mutex
	held       bool
	registered int
}

func (f *forgetful) Register(context.Context, discovery.Registration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = true
	f.registered++
	return nil
}

func (f *forgetful) Deregister(context.Context, discovery.Registration) error { return nil }

func (f *forgetful) Registered(context.Context, discovery.Registration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held, nil
}

func (f *forgetful) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = false
}

func (f *forgetful) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.registered
}

func TestAProcessReRegistersWhenTheRegistryForgetsIt(t *testing.T) {
	f := &forgetful{held: true, registered: 1}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		recheck(ctx, f, f, discovery.Registration{Service: "beehive-user", ID: "u1"}, 5*time.Millisecond, log.NewNopLogger())
		close(done)
	}()
	f.forget()
	testinfra.Eventually(t, 5*time.Second, "re-registered after the registry forgot", func() bool { return f.count() == 2 })
	cancel()
	<-done
}

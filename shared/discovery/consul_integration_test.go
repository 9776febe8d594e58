//go:build integration

package discovery_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	consul "github.com/hashicorp/consul/api"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/beehive-im/beehive/shared/discovery"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// Consul runs each check every 2 s (discovery.Register); a transition is
// seen within a couple of intervals.
const transition = 30 * time.Second

// instance is a process as Consul sees it: an HTTP server with /ready and a
// gRPC server with the standard health service, on loopback ports.
type instance struct {
	ready    atomic.Bool
	grpc     *grpcx.Server
	httpPort int
	grpcAddr string
	grpcPort int
}

func startInstance(t *testing.T) *instance {
	t.Helper()
	in := &instance{}
	in.ready.Store(true)

	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !in.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(hl) }()
	t.Cleanup(func() { _ = hs.Close() })
	in.httpPort = hl.Addr().(*net.TCPAddr).Port

	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in.grpc = grpcx.NewServer(log.NewNopLogger())
	go func() { _ = in.grpc.Serve(gl) }()
	t.Cleanup(in.grpc.Stop)
	in.grpcAddr = gl.Addr().String()
	in.grpcPort = gl.Addr().(*net.TCPAddr).Port
	return in
}

// watch records the latest instances an sd.Instancer reported.
type watch struct {
	mu   sync.Mutex
	last sd.Event
}

func watchInstancer(t *testing.T, in sd.Instancer) *watch {
	w := &watch{}
	ch := make(chan sd.Event, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			w.mu.Lock()
			w.last = ev
			w.mu.Unlock()
		}
	}()
	in.Register(ch)
	t.Cleanup(func() {
		in.Deregister(ch) // no send after this returns
		close(ch)
		<-done
	})
	return w
}

func (w *watch) is(want ...string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last.Err != nil {
		return fmt.Errorf("instancer error: %v", w.last.Err)
	}
	got := slices.Clone(w.last.Instances)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return fmt.Errorf("instancer has %q, want %q", got, want)
	}
	return nil
}

// checks returns the status of each check of service id, by check id.
func checks(api *consul.Client, service, id string) (map[string]string, error) {
	hc, _, err := api.Health().Checks(service, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, c := range hc {
		if c.ServiceID == id {
			out[c.CheckID] = c.Status
		}
	}
	return out, nil
}

func checksAre(api *consul.Client, r discovery.Registration, ready, grpc string) func() error {
	return func() error {
		got, err := checks(api, r.Service, r.ID)
		if err != nil {
			return err
		}
		want := map[string]string{r.ID + ":ready": ready, r.ID + ":grpc": grpc}
		for id, st := range want {
			if got[id] != st {
				return fmt.Errorf("checks %v, want %v", got, want)
			}
		}
		return nil
	}
}

func TestConsulRegisterChecksInstancerDeregister(t *testing.T) {
	ctx := context.Background()
	c, err := discovery.NewConsul(testinfra.ConsulAddr(t), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	inst := startInstance(t)
	// A service of its own: other tests and runs cannot interfere.
	service := "beehive-test-" + strings.ToLower(ids.New())
	r := discovery.Registration{
		Service:  service,
		ID:       service + "-1",
		Host:     "127.0.0.1",
		HTTPPort: inst.httpPort,
		GRPCPort: inst.grpcPort,
		Tags:     []string{"test"},
	}
	if err := c.Register(ctx, r); err != nil {
		t.Fatalf("Register: %v", err)
	}
	t.Cleanup(func() { _ = c.Deregister(context.Background(), r) })

	ins, err := c.Instancer(service)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Instancer(service); again != ins {
		t.Fatal("Instancer is not shared per service")
	}
	w := watchInstancer(t, ins)

	t.Log("registered: both checks pass, the instancer yields the gRPC address")
	testinfra.CheckFor(t, transition, 100*time.Millisecond, checksAre(c.API(), r, consul.HealthPassing, consul.HealthPassing))
	testinfra.CheckFor(t, transition, 50*time.Millisecond, func() error { return w.is(inst.grpcAddr) })
	svcs, err := c.API().Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if s := svcs[r.ID]; s == nil || s.Meta["http_port"] != fmt.Sprint(inst.httpPort) || !slices.Contains(s.Tags, "test") {
		t.Fatalf("agent service %+v: want http_port %d in Meta and tag test", s, inst.httpPort)
	}
	addr, err := c.InstanceAddr(ctx, service, r.ID)
	if err != nil || addr != inst.grpcAddr {
		t.Fatalf("InstanceAddr = %q, %v; want %q", addr, err, inst.grpcAddr)
	}
	if addr, err := c.InstanceAddr(ctx, service, r.ID+"-other"); err == nil {
		t.Fatalf("InstanceAddr of an unknown id = %q, want an error", addr)
	}

	t.Log("/ready answers 503: the HTTP check turns critical, the instance is dropped")
	inst.ready.Store(false)
	testinfra.CheckFor(t, transition, 100*time.Millisecond, checksAre(c.API(), r, consul.HealthCritical, consul.HealthPassing))
	testinfra.CheckFor(t, transition, 50*time.Millisecond, func() error { return w.is() })
	if addr, err := c.InstanceAddr(ctx, service, r.ID); err == nil {
		t.Fatalf("InstanceAddr of a critical instance = %q, want an error", addr)
	}

	t.Log("ready again: back in the instancer")
	inst.ready.Store(true)
	testinfra.CheckFor(t, transition, 100*time.Millisecond, checksAre(c.API(), r, consul.HealthPassing, consul.HealthPassing))
	testinfra.CheckFor(t, transition, 50*time.Millisecond, func() error { return w.is(inst.grpcAddr) })

	t.Log("gRPC health NOT_SERVING: the gRPC check turns critical, the instance is dropped")
	inst.grpc.Health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	testinfra.CheckFor(t, transition, 100*time.Millisecond, checksAre(c.API(), r, consul.HealthPassing, consul.HealthCritical))
	testinfra.CheckFor(t, transition, 50*time.Millisecond, func() error { return w.is() })
	inst.grpc.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	testinfra.CheckFor(t, transition, 100*time.Millisecond, checksAre(c.API(), r, consul.HealthPassing, consul.HealthPassing))
	testinfra.CheckFor(t, transition, 50*time.Millisecond, func() error { return w.is(inst.grpcAddr) })

	t.Log("deregistered: gone from the agent, the catalog and the instancer")
	if err := c.Deregister(ctx, r); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	testinfra.CheckFor(t, transition, 50*time.Millisecond, func() error { return w.is() })
	svcs, err = c.API().Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := svcs[r.ID]; ok {
		t.Fatalf("agent still lists %s after Deregister", r.ID)
	}
	entries, _, err := c.API().Health().Service(service, "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("catalog still has %d entries of %s after Deregister", len(entries), service)
	}
	if left, err := checks(c.API(), service, r.ID); err != nil || len(left) != 0 {
		t.Fatalf("checks left after Deregister: %v, %v", left, err)
	}
}

func TestConsulInstancerSeesSeveralInstances(t *testing.T) {
	ctx := context.Background()
	c, err := discovery.NewConsul(testinfra.ConsulAddr(t), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	service := "beehive-test-" + strings.ToLower(ids.New())
	ins, err := c.Instancer(service)
	if err != nil {
		t.Fatal(err)
	}
	w := watchInstancer(t, ins)
	var want []string
	for i := 0; i < 2; i++ {
		inst := startInstance(t)
		r := discovery.Registration{Service: service, ID: fmt.Sprintf("%s-%d", service, i), Host: "127.0.0.1", HTTPPort: inst.httpPort, GRPCPort: inst.grpcPort}
		if err := c.Register(ctx, r); err != nil {
			t.Fatalf("Register %s: %v", r.ID, err)
		}
		t.Cleanup(func() { _ = c.Deregister(context.Background(), r) })
		want = append(want, inst.grpcAddr)
	}
	slices.Sort(want)
	testinfra.CheckFor(t, transition, 50*time.Millisecond, func() error { return w.is(want...) })
}

func TestConsulRegisterFailsAgainstMissingAgent(t *testing.T) {
	c, err := discovery.NewConsul(fmt.Sprintf("127.0.0.1:%d", testinfra.FreePort(t)), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Register(context.Background(), discovery.Registration{Service: "x", ID: "x-1", Host: "127.0.0.1", HTTPPort: 1, GRPCPort: 2}); err == nil {
		t.Fatal("Register against no agent succeeded")
	}
	if err := c.Ping(context.Background()); err == nil {
		t.Fatal("Ping against no agent succeeded")
	}
}

// Registered tells a registration the agent holds from one it has
// forgotten, so a process can re-register after an agent restart.
func TestConsulRegisteredTellsWhenTheAgentForgot(t *testing.T) {
	ctx := context.Background()
	c, err := discovery.NewConsul(testinfra.ConsulAddr(t), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	inst := startInstance(t)
	service := "beehive-test-" + strings.ToLower(ids.New())
	r := discovery.Registration{Service: service, ID: service + "-1", Host: "127.0.0.1", HTTPPort: inst.httpPort, GRPCPort: inst.grpcPort}
	if held, err := c.Registered(ctx, r); err != nil || held {
		t.Fatalf("before Register: held %v, err %v", held, err)
	}
	if err := c.Register(ctx, r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Deregister(context.Background(), r) })
	if held, err := c.Registered(ctx, r); err != nil || !held {
		t.Fatalf("after Register: held %v, err %v", held, err)
	}
	// What an agent restarted in -dev mode does to every registration.
	if err := c.API().Agent().ServiceDeregister(r.ID); err != nil {
		t.Fatal(err)
	}
	if held, err := c.Registered(ctx, r); err != nil || held {
		t.Fatalf("after the agent forgot: held %v, err %v", held, err)
	}
}

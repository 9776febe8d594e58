package grpcx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/shared/testinfra"
)

const wait = 10 * time.Second

// recordingFactory builds endpoints that answer their instance address and
// counts builds and closes per instance.
type recordingFactory struct {
	mu     sync.Mutex
	built  map[string]int
	closed map[string]int
	fail   map[string]bool
}

func newRecordingFactory() *recordingFactory {
	return &recordingFactory{built: map[string]int{}, closed: map[string]int{}, fail: map[string]bool{}}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func (f *recordingFactory) factory(instance string) (endpoint.Endpoint, io.Closer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail[instance] {
		return nil, nil, errors.New("cannot dial " + instance)
	}
	f.built[instance]++
	return func(context.Context, any) (any, error) { return instance, nil }, closerFunc(func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.closed[instance]++
		return nil
	}), nil
}

func (f *recordingFactory) counts() (built, closed map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, c := map[string]int{}, map[string]int{}
	for k, v := range f.built {
		b[k] = v
	}
	for k, v := range f.closed {
		c[k] = v
	}
	return b, c
}

// addrs returns the instances' addresses, checking that each endpoint is
// the one built for its address.
func addrs(t *testing.T, e *InstanceEndpointer) []string {
	t.Helper()
	ins, err := e.Instances()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, in := range ins {
		got, err := in.Endpoint(context.Background(), nil)
		if err != nil || got != in.Addr {
			t.Fatalf("endpoint of %s answers %v %v", in.Addr, got, err)
		}
		out = append(out, in.Addr)
	}
	return out
}

func TestInstanceEndpointerFollowsTheInstancerKeepingEachEndpointsAddress(t *testing.T) {
	f := newRecordingFactory()
	src := testinfra.NewInstancer("10.0.0.2:9090", "10.0.0.1:9090")
	e := NewInstanceEndpointer(src, f.factory, log.NewNopLogger())

	testinfra.Eventually(t, wait, "the first set", func() bool {
		return reflect.DeepEqual(addrs(t, e), []string{"10.0.0.1:9090", "10.0.0.2:9090"})
	})
	src.Set("10.0.0.3:9090", "10.0.0.2:9090")
	testinfra.Eventually(t, wait, "one instance replaced", func() bool {
		return reflect.DeepEqual(addrs(t, e), []string{"10.0.0.2:9090", "10.0.0.3:9090"})
	})
	built, closed := f.counts()
	if want := map[string]int{"10.0.0.1:9090": 1, "10.0.0.2:9090": 1, "10.0.0.3:9090": 1}; !reflect.DeepEqual(built, want) {
		t.Fatalf("built %v, want %v (an instance that stays keeps its endpoint)", built, want)
	}
	if want := map[string]int{"10.0.0.1:9090": 1}; !reflect.DeepEqual(closed, want) {
		t.Fatalf("closed %v, want %v (only the removed instance)", closed, want)
	}
	eps, err := e.Endpoints()
	if err != nil || len(eps) != 2 {
		t.Fatalf("Endpoints: %d %v", len(eps), err)
	}
	for i, want := range []string{"10.0.0.2:9090", "10.0.0.3:9090"} {
		if got, _ := eps[i](context.Background(), nil); got != want {
			t.Fatalf("Endpoints()[%d] answers %v, want %s (the order of Instances)", i, got, want)
		}
	}

	e.Close()
	if got := addrs(t, e); len(got) != 0 {
		t.Fatalf("after Close: %v", got)
	}
	_, closed = f.counts()
	if want := map[string]int{"10.0.0.1:9090": 1, "10.0.0.2:9090": 1, "10.0.0.3:9090": 1}; !reflect.DeepEqual(closed, want) {
		t.Fatalf("closed after Close %v, want %v", closed, want)
	}
	src.Set("10.0.0.4:9090") // deregistered: nobody listens, nothing blocks
}

func TestInstanceEndpointerOverAFixedInstancer(t *testing.T) {
	f := newRecordingFactory()
	e := NewInstanceEndpointer(sd.FixedInstancer{"b:1", "a:1", "c:1"}, f.factory, log.NewNopLogger())
	defer e.Close()
	testinfra.Eventually(t, wait, "the fixed set", func() bool {
		return reflect.DeepEqual(addrs(t, e), []string{"a:1", "b:1", "c:1"})
	})
}

func TestInstanceEndpointerLeavesOutAnInstanceItCannotBuildAndKeepsTheLastSetOnError(t *testing.T) {
	f := newRecordingFactory()
	f.fail["bad:1"] = true
	src := testinfra.NewInstancer("a:1", "bad:1")
	e := NewInstanceEndpointer(src, f.factory, log.NewNopLogger())
	defer e.Close()
	testinfra.Eventually(t, wait, "the buildable instance", func() bool {
		return reflect.DeepEqual(addrs(t, e), []string{"a:1"})
	})
	// The receive loop takes the next event only after handling the last:
	// once the second error is taken, the first has been handled.
	e.ch <- sd.Event{Err: fmt.Errorf("consul unreachable")}
	e.ch <- sd.Event{Err: fmt.Errorf("consul unreachable")}
	if got := addrs(t, e); !reflect.DeepEqual(got, []string{"a:1"}) {
		t.Fatalf("after an error event: %v, want the last set", got)
	}
	src.Set("a:1", "b:1")
	testinfra.Eventually(t, wait, "the set after the error", func() bool {
		return reflect.DeepEqual(addrs(t, e), []string{"a:1", "b:1"})
	})
	if _, closed := f.counts(); len(closed) != 0 {
		t.Fatalf("an error event closed %v", closed)
	}
}

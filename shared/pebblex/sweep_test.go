package pebblex_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/shared/pebblex"
)

// wait bounds how long a test waits for the sweeper's goroutine; it is a
// deadline against hangs, not a timing assertion.
const wait = 30 * time.Second

// logLines records what a go-kit logger was given, one map per line.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]string
}

func (l *logLines) Log(kv ...any) error {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[fmt.Sprint(kv[i])] = fmt.Sprint(kv[i+1])
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, m)
	return nil
}

func (l *logLines) all() []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]map[string]string(nil), l.lines...)
}

var _ log.Logger = (*logLines)(nil)

func TestSweeperSweepsRepeatedlyAndStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := make(chan struct{})
	fail := errors.New("disk on fire")
	n := 0
	logs := &logLines{}
	s := pebblex.Sweeper{
		Name: "test", Delay: time.Nanosecond, Interval: time.Nanosecond, Logger: logs,
		Sweep: func(ctx context.Context, now time.Time) (int, error) {
			if now.IsZero() {
				t.Error("sweep called without a time")
			}
			select {
			case calls <- struct{}{}:
			case <-ctx.Done():
			}
			n++
			if n == 1 {
				return 0, fail
			}
			return 3, nil
		},
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// The first sweep fails; the sweeper keeps going.
	for i := 0; i < 3; i++ {
		select {
		case <-calls:
		case err := <-done:
			t.Fatalf("sweeper returned after %d sweeps: %v", i, err)
		case <-time.After(wait):
			t.Fatalf("sweep %d never came", i+1)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v after cancel, want nil", err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not return after the context ended")
	}
	var warned, counted bool
	for _, l := range logs.all() {
		if l["msg"] == "sweep failed" && l["err"] == fail.Error() && l["level"] == "warn" && l["sweep"] == "test" {
			warned = true
		}
		if l["msg"] == "swept expired records" && l["removed"] == "3" && l["level"] == "debug" {
			counted = true
		}
	}
	if !warned || !counted {
		t.Fatalf("logs = %v, want a warning for the failed sweep and the count of a good one", logs.all())
	}
}

func TestSweeperDoesNotSweepWhenCancelledBeforeTheFirstSweep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := pebblex.Sweeper{Name: "test", Sweep: func(context.Context, time.Time) (int, error) {
		t.Error("swept after the context ended")
		return 0, nil
	}}
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

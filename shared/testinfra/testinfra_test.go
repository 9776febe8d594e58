package testinfra

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatal stops the calling goroutine (as
// the real one does) and records the message instead of failing the test.
type fatalRecorder struct {
	testing.TB
	mu    sync.Mutex
	fatal string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// run calls f on its own goroutine (Fatalf ends it) and returns the fatal
// message, "" if f returned normally.
func (r *fatalRecorder) run(f func()) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatal
}

func TestAccessorsFailNotSkipWhenServerIsMissing(t *testing.T) {
	closed := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	cases := []struct {
		name, env string
		call      func(tb testing.TB)
	}{
		{"redis", EnvRedis, func(tb testing.TB) { RedisAddr(tb) }},
		{"consul", EnvConsul, func(tb testing.TB) { ConsulAddr(tb) }},
		{"kafka", EnvKafka, func(tb testing.TB) { KafkaBrokers(tb) }},
		{"cassandra", EnvCassandra, func(tb testing.TB) { CassandraHosts(tb) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.env, closed)
			rec := &fatalRecorder{TB: t}
			msg := rec.run(func() { tc.call(rec) })
			if msg == "" {
				t.Fatalf("%s at closed port %s passed the probe", tc.name, closed)
			}
			for _, want := range []string{"make infra-up", tc.env, closed} {
				if !strings.Contains(msg, want) {
					t.Errorf("failure message lacks %q: %s", want, msg)
				}
			}
			if t.Skipped() {
				t.Fatal("a missing server must fail the test, not skip it")
			}
		})
	}
}

func TestCheckForReturnsOnceConditionHolds(t *testing.T) {
	calls := 0
	CheckFor(t, time.Minute, time.Millisecond, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("f called %d times, want 3", calls)
	}
}

func TestCheckForFailsWithLastErrorAfterWait(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	n := 0
	msg := rec.run(func() {
		CheckFor(rec, 20*time.Millisecond, time.Millisecond, func() error {
			n++
			return fmt.Errorf("attempt %d", n)
		})
	})
	if want := fmt.Sprintf("attempt %d", n); !strings.Contains(msg, want) {
		t.Fatalf("failure %q does not carry the last error %q", msg, want)
	}
}

func TestEventuallyReturnsOnceConditionHolds(t *testing.T) {
	calls := 0
	Eventually(t, time.Minute, "third call", func() bool {
		calls++
		return calls == 3
	})
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
}

func TestEventuallyFailsNamingWhatNeverHappened(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	calls := 0
	msg := rec.run(func() {
		Eventually(rec, 20*time.Millisecond, "the moon turned blue", func() bool { calls++; return false })
	})
	if !strings.Contains(msg, "never happened: the moon turned blue") {
		t.Fatalf("failure %q does not name what never happened", msg)
	}
	if calls < 2 {
		t.Fatalf("cond called %d times: not polled", calls)
	}
}

func TestEscapeGlobQuotesMatchMetacharacters(t *testing.T) {
	if got, want := escapeGlob(`a*b?c[d]e\f:g`), `a\*b\?c\[d\]e\\f:g`; got != want {
		t.Fatalf("escapeGlob = %q, want %q", got, want)
	}
}

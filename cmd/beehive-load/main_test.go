package main

import (
	"encoding/json"
	"io"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestHistQuantilesStayWithinOnePercentOfExact(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	h := newHist()
	var vals []int64
	for i := 0; i < 100000; i++ {
		v := int64(r.ExpFloat64() * 20000) // µs, a long tail
		vals = append(vals, v)
		h.addUS(v)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.quantile(q)
		if d := float64(got-exact) / float64(exact); d < -0.01 || d > 0.01 {
			t.Errorf("q%.3f: got %d µs, exact %d µs (%.2f%% off)", q, got, exact, 100*d)
		}
	}
	if h.quantile(1) != vals[len(vals)-1] || h.MaxUS != vals[len(vals)-1] {
		t.Errorf("max: quantile(1)=%d MaxUS=%d, want %d", h.quantile(1), h.MaxUS, vals[len(vals)-1])
	}
}

func TestBucketHoldsItsValues(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 123456, 1 << 40} {
		b := bucketOf(v)
		if hi := bucketHigh(b); hi < v {
			t.Errorf("value %d: bucket %d ends at %d", v, b, hi)
		}
		if b > 0 && bucketHigh(b-1) >= v {
			t.Errorf("value %d: previous bucket %d already ends at %d", v, b-1, bucketHigh(b-1))
		}
	}
}

func TestMergedHistEqualsOneHistOfAllSamples(t *testing.T) {
	a, b, all := newHist(), newHist(), newHist()
	for i := int64(0); i < 5000; i++ {
		v := i * 37 % 90000
		if i%3 == 0 {
			a.addUS(v)
		} else {
			b.addUS(v)
		}
		all.addUS(v)
	}
	// Through JSON, as workers ship it.
	var a2 hist
	raw, _ := json.Marshal(a)
	if err := json.Unmarshal(raw, &a2); err != nil {
		t.Fatal(err)
	}
	m := newHist()
	m.merge(&a2)
	m.merge(b)
	if m.summary() != all.summary() {
		t.Fatalf("merged %+v, want %+v", m.summary(), all.summary())
	}
}

func TestContentRoundTripAndForeignContent(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	raw, _ := json.Marshal(encodeContent(at, 42, 10))
	got, k, ok := decodeContent(raw)
	if !ok || !got.Equal(at) || k != 42 {
		t.Fatalf("decoded %v %d %v", got, k, ok)
	}
	for _, bad := range []string{`"hello"`, `{"a":1}`, `"lt=12"`, `"lt=x;k=1;"`, `"lt=1;k=;"`} {
		if _, _, ok := decodeContent(json.RawMessage(bad)); ok {
			t.Errorf("%s decoded as load content", bad)
		}
	}
}

func TestSeqGapsCountsHolesAndDoubles(t *testing.T) {
	cases := []struct {
		seqs []int64
		want int64
	}{
		{nil, 0},
		{[]int64{3, 1, 2}, 0},
		{[]int64{1, 2, 4}, 1},
		{[]int64{2}, 1},
		{[]int64{1, 2, 2, 3}, 1},
		{[]int64{1, 5}, 3},
	}
	for _, c := range cases {
		if got := seqGaps(c.seqs); got != c.want {
			t.Errorf("seqGaps(%v) = %d, want %d", c.seqs, got, c.want)
		}
	}
}

func TestSplitCoversEveryItemOnce(t *testing.T) {
	for _, c := range [][2]int{{10, 3}, {3, 5}, {18500, 2}, {0, 2}} {
		parts := split(c[0], c[1])
		next := 0
		for _, p := range parts {
			if p[0] != next || p[1] < p[0] || p[1]-p[0] > c[0]/c[1]+1 {
				t.Fatalf("split(%d, %d) = %v", c[0], c[1], parts)
			}
			next = p[1]
		}
		if next != c[0] || len(parts) != c[1] {
			t.Fatalf("split(%d, %d) = %v", c[0], c[1], parts)
		}
	}
}

func TestParseMetricsPicksUnlabelledSamples(t *testing.T) {
	text := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 146\n" +
		"go_memstats_heap_inuse_bytes 4.841472e+06\nhttp_requests_total{code=\"200\"} 5\n"
	m, err := parseMetrics(strings.NewReader(text), "go_goroutines", "go_memstats_heap_inuse_bytes", "http_requests_total")
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 146 || m["go_memstats_heap_inuse_bytes"] != 4841472 {
		t.Fatalf("got %v", m)
	}
	if _, ok := m["http_requests_total"]; ok {
		t.Fatalf("labelled sample taken: %v", m)
	}
}

func TestCPUFromStatSkipsCommandNameWithSpaces(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
	stat := "4420 (bee hive) S 1 4420 4420 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 10 0"
	if got := cpuFromStat([]byte(stat)); got != 3.0 {
		t.Fatalf("cpu %v, want 3.0 s", got)
	}
}

func TestParseFlagsRefusesMoreSocketsPerWorkerThanOneProcessHolds(t *testing.T) {
	_, err := parseFlags([]string{"--scenario", "sockets", "--sockets", "30000"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--workers 2") {
		t.Fatalf("err %v, want advice to use --workers 2", err)
	}
	o, err := parseFlags([]string{"--scenario", "sockets", "--sockets", "30000", "--workers", "2", "--addr", "127.0.0.1:1"}, io.Discard)
	if err != nil || o.Addr != "http://127.0.0.1:1" || o.MetricsURL != "http://127.0.0.1:1/metrics" || o.Users != 30000 {
		t.Fatalf("%+v %v", o, err)
	}
	for _, bad := range [][]string{{}, {"--scenario", "x"}, {"--scenario", "chat", "--rate", "-1"}, {"--scenario", "group", "--members", "0"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestPaceKeepsTheRateAndLastsTheDuration(t *testing.T) {
	start := time.Now()
	var ks []int64
	n, _ := pace(start, 200, 50*time.Millisecond, func(k int64) { ks = append(ks, k) })
	if n != 10 || len(ks) != 10 || ks[9] != 9 {
		t.Fatalf("sent %d (%v), want k=0..9", n, ks)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatalf("pace returned before the run's duration")
	}
}

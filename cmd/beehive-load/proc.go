package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// raiseNoFile lifts the soft open-files limit to the hard one: every
// socket is a file, and the hard limit (20,000 on the project's machines)
// is the real ceiling of one process.
func raiseNoFile() (soft, hard uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur, rl.Max
}

// machine describes where a run happened: the machines are shared and
// noisy, so every number is reported with the box it came from.
type machine struct {
	Hostname   string `json:"hostname"`
	NumCPU     int    `json:"nproc"`
	CPUModel   string `json:"cpu_model"`
	MemTotalMB int64  `json:"mem_total_mb"`
	LoadAvg    string `json:"loadavg_at_start"`
	Kernel     string `json:"kernel"`
	GoVersion  string `json:"go_version"`
	NoFileSoft uint64 `json:"nofile_soft"`
	NoFileHard uint64 `json:"nofile_hard"`
	PortRange  string `json:"ephemeral_port_range"`
}

func describeMachine() machine {
	m := machine{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if kb, ok := procField("/proc/meminfo", "MemTotal"); ok {
		m.MemTotalMB = kb / 1024
	}
	m.LoadAvg = readTrim("/proc/loadavg")
	m.Kernel = readTrim("/proc/sys/kernel/osrelease")
	m.PortRange = strings.Join(strings.Fields(readTrim("/proc/sys/net/ipv4/ip_local_port_range")), "-")
	return m
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procField reads a "Key:   123 kB" line of a /proc status-like file.
func procField(path, key string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	return scanField(f, key)
}

func scanField(r io.Reader, key string) (int64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		return n, err == nil
	}
	return 0, false
}

// clockTicks is USER_HZ, which is 100 on every Linux architecture Go
// supports (the kernel exports it as a constant, not per machine).
const clockTicks = 100

// serverSample is what the load tool observes of the server process.
type serverSample struct {
	At         time.Time `json:"at"`
	RSSKB      int64     `json:"rss_kb,omitempty"`
	CPUSeconds float64   `json:"cpu_seconds,omitempty"`
	Threads    int64     `json:"threads,omitempty"`
	FDs        int64     `json:"fds,omitempty"`
	HeapInuse  int64     `json:"go_heap_inuse_bytes,omitempty"`
	StackInuse int64     `json:"go_stack_inuse_bytes,omitempty"`
	NextGC     int64     `json:"go_next_gc_bytes,omitempty"`
	Goroutines int64     `json:"go_goroutines,omitempty"`
	GCSysBytes int64     `json:"go_sys_bytes,omitempty"`
	MetricsErr string    `json:"metrics_error,omitempty"`
	ProcErr    string    `json:"proc_error,omitempty"`
}

func sampleServer(ctx context.Context, pid int, metricsURL string) serverSample {
	s := serverSample{At: time.Now().UTC()}
	if pid > 0 {
		status := fmt.Sprintf("/proc/%d/status", pid)
		if kb, ok := procField(status, "VmRSS"); ok {
			s.RSSKB = kb
		} else {
			s.ProcErr = "cannot read VmRSS of pid " + strconv.Itoa(pid)
		}
		s.Threads, _ = procField(status, "Threads")
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			s.CPUSeconds = cpuFromStat(b)
		}
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
			s.FDs = int64(len(ents))
		}
	}
	if metricsURL != "" {
		m, err := scrapeMetrics(ctx, metricsURL, "go_memstats_heap_inuse_bytes", "go_goroutines", "go_memstats_sys_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_next_gc_bytes")
		if err != nil {
			s.MetricsErr = err.Error()
		} else {
			s.HeapInuse = int64(m["go_memstats_heap_inuse_bytes"])
			s.Goroutines = int64(m["go_goroutines"])
			s.GCSysBytes = int64(m["go_memstats_sys_bytes"])
			s.StackInuse = int64(m["go_memstats_stack_inuse_bytes"])
			s.NextGC = int64(m["go_memstats_next_gc_bytes"])
		}
	}
	return s
}

// cpuFromStat returns utime+stime in seconds from /proc/<pid>/stat. The
// command name (field 2) may hold spaces, so fields count from its ')'.
func cpuFromStat(b []byte) float64 {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3, utime field 14, stime field 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

func scrapeMetrics(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return parseMetrics(resp.Body, names...)
}

// parseMetrics picks unlabelled samples out of the Prometheus text format.
func parseMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || !want[f[0]] {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err == nil {
			out[f[0]] = v
		}
	}
	return out, sc.Err()
}

// Command beehive-load drives a running Beehive (`beehive dev`, or a
// gateway of the distributed mode) through its public API only — HTTP to
// register and log in users, WebSocket for the load — and reports what the
// server sustained.
//
// One process can hold at most ~19k sockets (the open-files hard limit is
// 20,000 and cannot be raised), so the sockets are spread over worker
// processes: `--workers K` re-executes this binary K times with the hidden
// `worker` subcommand; each worker holds its share of the sockets and
// reports JSON on its stdout, and the parent merges the reports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const usage = `beehive-load — load generator for a running Beehive (public API only)

Usage:
  beehive-load --scenario sockets|chat|group [flags]

Scenarios:
  sockets   open --sockets idle WebSocket connections (--users users, the rest
            as extra devices), hold them, report the connect rate and, with
            --server-pid, the server's RSS growth per socket
  chat      --pairs pairs of users exchange 1:1 messages at --rate msgs/s in
            total for --duration; send->sent and send->delivery latency,
            throughput, errors by code, exactly-once and seq order checks;
            with --resync devices reconnect, sync and retry like real clients
  group     --senders senders (default 1) post in turn into a group of
            --members online members at --rate msgs/s in total; delivery
            latency to every member and per-message time until the last
            member had it

The server's rate limits must be raised for a load run (see docs/LOAD.md).

Flags:
`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := runWorker(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "beehive-load worker:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "beehive-load:", err)
		os.Exit(1)
	}
}

// options are the parsed flags.
type options struct {
	Addr       string        `json:"addr"`
	Scenario   string        `json:"scenario"`
	Workers    int           `json:"workers"`
	ServerPID  int           `json:"server_pid,omitempty"`
	MetricsURL string        `json:"metrics_url,omitempty"`
	Sockets    int           `json:"sockets,omitempty"`
	Users      int           `json:"users,omitempty"`
	Settle     time.Duration `json:"settle,omitempty"`
	Hold       time.Duration `json:"hold,omitempty"`
	Pairs      int           `json:"pairs,omitempty"`
	Members    int           `json:"members,omitempty"`
	Senders    int           `json:"senders,omitempty"`
	Rate       float64       `json:"rate,omitempty"`
	Duration   time.Duration `json:"duration,omitempty"`
	Drain      time.Duration `json:"drain,omitempty"`
	Pad        int           `json:"pad,omitempty"`
	Friends    bool          `json:"friends,omitempty"`
	Resync     bool          `json:"resync,omitempty"`
	SetupConc  int           `json:"setup_concurrency"`
	DialConc   int           `json:"dial_concurrency"`
	BufferSize int           `json:"buffer_size"`
	MaxPerWkr  int           `json:"max_sockets_per_worker"`
	P99Target  time.Duration `json:"p99_target"`
	KBTarget   float64       `json:"kb_per_socket_target"`
	ConnectTO  time.Duration `json:"connect_timeout"`
	RunID      string        `json:"run_id"`
	JSON       bool          `json:"-"`
	Timeline   bool          `json:"-"`
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("beehive-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Addr, "addr", "http://127.0.0.1:8080", "base URL of the server's HTTP (gateway) port")
	fs.StringVar(&o.Scenario, "scenario", "", "sockets | chat | group")
	fs.IntVar(&o.Workers, "workers", 1, "worker processes holding the sockets (one process holds at most ~19k)")
	fs.IntVar(&o.ServerPID, "server-pid", 0, "pid of the server on this machine: report its RSS, CPU, threads and fds")
	fs.StringVar(&o.MetricsURL, "metrics-url", "", "Prometheus /metrics of the server for Go heap and goroutines (default <addr>/metrics; \"off\" disables)")
	fs.IntVar(&o.Sockets, "sockets", 1000, "sockets: sockets to open")
	fs.IntVar(&o.Users, "users", 0, "sockets: users to spread them over (default one user per socket); the rest are extra devices")
	fs.DurationVar(&o.Settle, "settle", 5*time.Second, "sockets: wait after the last socket opened before sampling the server")
	fs.DurationVar(&o.Hold, "hold", 0, "sockets: hold the sockets this long after the sample, then sample again")
	fs.IntVar(&o.Pairs, "pairs", 100, "chat: pairs of users")
	fs.IntVar(&o.Members, "members", 500, "group: online members besides the senders")
	fs.IntVar(&o.Senders, "senders", 1, "group: members who post, in turn, each from its own socket (many senders share the conversation's produces)")
	fs.Float64Var(&o.Rate, "rate", 0, "chat, group: target aggregate messages per second (default chat 1000, group 10)")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "chat, group: how long to send")
	fs.DurationVar(&o.Drain, "drain", 30*time.Second, "chat, group: how long to wait for outstanding answers and deliveries afterwards")
	fs.IntVar(&o.Pad, "pad", 0, "chat, group: bytes of padding in each message's content")
	fs.BoolVar(&o.Friends, "friends", false, "chat: make each pair friends first")
	fs.BoolVar(&o.Resync, "resync", false, "chat: devices act like real clients: reconnect with backoff when a socket is lost, sync, retry unanswered sends, sync once more at the end (lost = acknowledged but absent after that)")
	fs.IntVar(&o.SetupConc, "setup-concurrency", 32, "HTTP requests in flight while registering and logging in users")
	fs.IntVar(&o.DialConc, "dial-concurrency", 64, "WebSocket handshakes in flight per worker")
	fs.IntVar(&o.BufferSize, "buffer-size", 0, "client read/write buffer per socket (default 1024 for sockets, 4096 otherwise)")
	fs.IntVar(&o.MaxPerWkr, "max-per-worker", 19000, "refuse to put more sockets than this into one worker")
	fs.DurationVar(&o.P99Target, "p99-target", 100*time.Millisecond, "chat, group: delivery p99 the run is judged against")
	fs.Float64Var(&o.KBTarget, "kb-per-socket-target", 8, "sockets: server RSS growth per socket the run is judged against")
	fs.DurationVar(&o.ConnectTO, "connect-timeout", 10*time.Minute, "how long workers may take to open their sockets")
	fs.StringVar(&o.RunID, "run-id", "", "tag of this run's users (default: the start time)")
	fs.BoolVar(&o.Timeline, "timeline", false, "chat, group: print acked and delivered messages and worst latencies per second of the run")
	fs.BoolVar(&o.JSON, "json", false, "print the machine-readable report on stdout (the summary goes to stderr)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.Addr = strings.TrimRight(o.Addr, "/")
	if !strings.HasPrefix(o.Addr, "http://") && !strings.HasPrefix(o.Addr, "https://") {
		o.Addr = "http://" + o.Addr
	}
	switch o.MetricsURL {
	case "":
		o.MetricsURL = o.Addr + "/metrics"
	case "off":
		o.MetricsURL = ""
	}
	if o.RunID == "" {
		o.RunID = time.Now().UTC().Format("20060102T150405")
	}
	if o.Workers < 1 {
		return o, fmt.Errorf("--workers must be at least 1")
	}
	if o.SetupConc < 1 || o.DialConc < 1 {
		return o, fmt.Errorf("--setup-concurrency and --dial-concurrency must be at least 1")
	}
	var sockets int
	switch o.Scenario {
	case "sockets":
		if o.Sockets < 1 {
			return o, fmt.Errorf("--sockets must be at least 1")
		}
		if o.Users <= 0 || o.Users > o.Sockets {
			o.Users = o.Sockets
		}
		sockets = o.Sockets
		if o.BufferSize == 0 {
			o.BufferSize = 1024
		}
	case "chat":
		if o.Pairs < 1 {
			return o, fmt.Errorf("--pairs must be at least 1")
		}
		if o.Rate == 0 {
			o.Rate = 1000
		}
		sockets = 2 * o.Pairs
	case "group":
		if o.Members < 1 {
			return o, fmt.Errorf("--members must be at least 1")
		}
		if o.Senders < 1 || o.Senders > 1000 {
			return o, fmt.Errorf("--senders must be 1 to 1000")
		}
		if o.Rate == 0 {
			o.Rate = 10
		}
		sockets = o.Members + o.Senders
	case "":
		return o, fmt.Errorf("--scenario is required (sockets, chat or group)")
	default:
		return o, fmt.Errorf("--scenario %q: want sockets, chat or group", o.Scenario)
	}
	if o.BufferSize == 0 {
		o.BufferSize = 4096
	}
	if o.Resync && o.Scenario != "chat" {
		return o, fmt.Errorf("--resync is for the chat scenario")
	}
	if o.Scenario != "sockets" && (o.Rate <= 0 || o.Duration <= 0) {
		return o, fmt.Errorf("--rate and --duration must be positive")
	}
	if per := (sockets + o.Workers - 1) / o.Workers; per > o.MaxPerWkr {
		return o, fmt.Errorf("%d sockets over %d workers is %d per worker, above --max-per-worker %d (the open-files limit): use --workers %d",
			sockets, o.Workers, per, o.MaxPerWkr, (sockets+o.MaxPerWkr-1)/o.MaxPerWkr)
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	soft, hard := raiseNoFile()
	rep := &report{Tool: "beehive-load", RunID: o.RunID, Started: time.Now().UTC(), Machine: describeMachine(), Options: o}
	rep.Machine.NoFileSoft, rep.Machine.NoFileHard = soft, hard

	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "beehive-load: "+format+"\n", a...) }
	if err := runScenario(ctx, o, rep, logf); err != nil {
		return err
	}
	if o.JSON {
		rep.printSummary(stderr)
		return rep.writeJSON(stdout)
	}
	rep.printSummary(stdout)
	return nil
}

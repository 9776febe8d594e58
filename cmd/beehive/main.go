// Command beehive runs the Beehive IM backend: every service in one process
// (`beehive dev`), one service per process (`beehive serve <service>`), and
// the operational tools (migrate, replay).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/beehive-im/beehive/cmd/app"
	"github.com/beehive-im/beehive/shared/config"
	"github.com/beehive-im/beehive/shared/logging"
)

// Set by the linker (-X main.version=...).
var version = "dev"

const usage = `beehive — an instant-messaging backend

Usage:
  beehive dev [flags]               every service in one process, embedded Kafka broker and store
  beehive serve <service> [flags]   one service: auth, user, group, message, presence, gateway, pusher, query
  beehive migrate [flags]           apply the Cassandra .cql migrations
  beehive replay --from <time|offset> [--to-store] [flags]
                                    re-consume beehive.messages and rebuild history (idempotent)
  beehive version                   print the version

Common flags:
  --config FILE        YAML config (defaults are documented in shared/config)
  --data-dir DIR       embedded store and broker log (dev; default .data/beehive)
  --http-addr ADDR     HTTP listen address (default :8080)
  --grpc-addr ADDR     gRPC listen address (default :9090)
  --set key=value      any config key by its YAML path, e.g. --set auth.access_ttl=5m (repeatable)

Environment: BEEHIVE_<YAML_PATH> overrides the file, e.g. BEEHIVE_HTTP_ADDR=:8081,
BEEHIVE_KAFKA_BROKERS=127.0.0.1:9092. Flags override the environment.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "beehive:", err)
		os.Exit(1)
	}
}

type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, args := args[0], args[1:]
	if cmd == "version" {
		fmt.Fprintln(stdout, "beehive", version)
		return nil
	}
	var service string
	if cmd == "serve" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return fmt.Errorf("serve needs a service name: %s", strings.Join(app.Services, ", "))
		}
		service, args = args[0], args[1:]
	}

	fs := flag.NewFlagSet("beehive "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	configPath := fs.String("config", "", "YAML config file")
	dataDir := fs.String("data-dir", "", "data directory")
	httpAddr := fs.String("http-addr", "", "HTTP listen address")
	grpcAddr := fs.String("grpc-addr", "", "gRPC listen address")
	from := fs.String("from", "", "replay: RFC 3339 time or offset")
	toStore := fs.Bool("to-store", false, "replay: write history into the store")
	var sets setFlags
	fs.Var(&sets, "set", "key=value config override (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	cfg, err := config.Load(*configPath, os.Environ())
	if err != nil {
		return err
	}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--set %q: want key=value", kv)
		}
		if err := config.Set(&cfg, k, v); err != nil {
			return fmt.Errorf("--set %s: %w", k, err)
		}
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if *httpAddr != "" {
		cfg.HTTP.Addr = *httpAddr
	}
	if *grpcAddr != "" {
		cfg.GRPC.Addr = *grpcAddr
	}
	if cfg.Mode == "" {
		cfg.Mode = config.ModeFor(cmd)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid config:\n%w", err)
	}
	logger := logging.New(stderr, cfg.Log.Level, cfg.Log.Format)

	ctx := context.Background()
	switch cmd {
	case "dev":
		return app.RunDev(ctx, cfg, logger, stdout)
	case "serve":
		return app.RunServe(ctx, service, cfg, logger, stdout)
	case "migrate":
		return app.Migrate(ctx, cfg, stdout)
	case "replay":
		return app.Replay(ctx, cfg, logger, *from, *toStore, stdout)
	}
	return fmt.Errorf("unknown command %q (see beehive help)", cmd)
}

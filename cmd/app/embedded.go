package app

import (
	"context"
	"fmt"
	"io"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/beehive-im/beehive/shared/config"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/lifecycle"
)

// RunDev is `beehive dev`: every service in one process on the embedded
// broker and store, built by the same builders as `beehive serve` and
// connected in-process through their endpoint chains.
func RunDev(ctx context.Context, cfg config.Config, logger log.Logger, out io.Writer) error {
	if cfg.Mode != "" && cfg.Mode != config.ModeEmbedded {
		return fmt.Errorf("beehive dev runs mode %s; mode is %q (beehive serve runs the others)", config.ModeEmbedded, cfg.Mode)
	}
	if cfg.ServiceToken == "" {
		// One process: the internal credential never leaves it.
		cfg.ServiceToken = ids.New() + ids.New()
	}
	ln, err := Listen(cfg.HTTP.Addr, cfg.GRPC.Addr)
	if err != nil {
		return err
	}
	w := newWiring(config.ModeEmbedded, cfg, logger, newBackends(config.ModeEmbedded, storeName(config.ModeEmbedded, ""), cfg, logger), &peers{})
	defer w.close()
	if err := w.build(ctx, Services...); err != nil {
		_ = ln.HTTP.Close()
		_ = ln.GRPC.Close()
		return err
	}
	handler, err := w.handler()
	if err != nil {
		return err
	}
	g := lifecycle.New()
	g.HandleSignals()
	serveHTTP(g, ln.HTTP, handler, logger)
	if err := serveDebug(g, cfg.HTTP.DebugAddr, logger); err != nil {
		return err
	}
	serveGRPC(g, ln.GRPC, w.grpcServer(), w.checks, logger)
	for _, a := range append(w.actors, w.be.actors...) {
		g.AddContext(a)
	}
	printf(out, "beehive dev: every service in one process (data in %s)\n", cfg.DataDir)
	printf(out, "  HTTP + WebSocket  http://%s   (ws://%s/v1/ws)\n", ln.HTTP.Addr(), ln.HTTP.Addr())
	printf(out, "  gRPC              %s   (reflection on: grpcurl -plaintext %s list)\n", ln.GRPC.Addr(), ln.GRPC.Addr())
	printf(out, "  Kafka (embedded)  %v\n", w.be.brokers)
	return stopped(g.Run(), logger)
}

// stopped is a process's exit: nil for a signal, the error otherwise.
func stopped(err error, logger log.Logger) error {
	if lifecycle.Stopped(err) {
		_ = level.Info(logger).Log("msg", "stopped", "reason", fmt.Sprint(err))
		return nil
	}
	_ = level.Error(logger).Log("msg", "stopped", "err", err)
	return err
}

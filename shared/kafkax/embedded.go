// Package kafkax is Beehive's Kafka plumbing: the embedded broker of
// `beehive dev`, topic creation, the producer every service uses and the
// consumer-group loops (in order per partition, commit after success,
// poison records dead-lettered once, everything else retried with the
// position held until it succeeds).
//
// Everything speaks the Kafka protocol through segmentio/kafka-go, so the
// embedded broker and a real cluster run the same client code.
package kafkax

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/twmb/franz-go/pkg/kfake"
)

// The topics of DESIGN.md.
const (
	TopicMessages    = "beehive.messages"
	TopicPushOffline = "beehive.push.offline"
	TopicEvents      = "beehive.events"
	TopicDeadLetter  = "beehive.deadletter"
	// TopicTyping carries typing notices: delivered live, never stored.
	TopicTyping = "beehive.typing"
)

// Embedded is an in-process Kafka-protocol broker (kfake) whose log, topics
// and committed group offsets live under a data directory and survive a
// restart. It is the embedded mode's real broker, not a test double.
type Embedded struct {
	cluster *kfake.Cluster
	brokers []string
}

// StartEmbedded starts a single-broker cluster persisting under dataDir,
// listening on addr ("127.0.0.1:0" picks a free port). The broker accepts
// session timeouts down to one second so tests and restarts of consumers
// rebalance quickly.
func StartEmbedded(dataDir string, addr string, logger log.Logger) (*Embedded, error) {
	if dataDir == "" {
		return nil, fmt.Errorf("kafkax: embedded broker needs a data dir")
	}
	if logger == nil {
		logger = log.NewNopLogger()
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("kafkax: embedded broker address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("kafkax: embedded broker port %q is not a port", portStr)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("kafkax: create data dir: %w", err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DataDir(dataDir),
		// Acknowledged sends must survive a crash of the process, not only
		// a clean Close: the acknowledgement to the client depends on it.
		kfake.SyncWrites(),
		kfake.ClusterID("beehive-embedded"),
		kfake.DefaultNumPartitions(1),
		kfake.GroupMinSessionTimeout(time.Second),
		kfake.WithLogger(kfakeLogger{logger}),
		// kfake always listens on 127.0.0.1; honour the host we were given.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkax: start embedded broker: %w", err)
	}
	return &Embedded{cluster: c, brokers: c.ListenAddrs()}, nil
}

// Brokers returns the bootstrap addresses of the embedded broker.
func (e *Embedded) Brokers() []string { return append([]string(nil), e.brokers...) }

// Close stops the broker and flushes its state to the data dir.
func (e *Embedded) Close() error {
	e.cluster.Close()
	return nil
}

// kfakeLogger forwards kfake's warnings and errors to go-kit log; its info
// and debug lines describe every request and are dropped.
type kfakeLogger struct{ l log.Logger }

func (k kfakeLogger) Logf(lvl kfake.LogLevel, format string, args ...any) {
	switch lvl {
	case kfake.LogLevelError:
		_ = level.Error(k.l).Log("msg", "embedded kafka", "detail", fmt.Sprintf(format, args...))
	case kfake.LogLevelWarn:
		_ = level.Warn(k.l).Log("msg", "embedded kafka", "detail", fmt.Sprintf(format, args...))
	}
}

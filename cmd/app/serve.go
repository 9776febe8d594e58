package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/gocql/gocql"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/auth/authpb"
	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/group/grouppb"
	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/message/messagepb"
	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/presence/presencepb"
	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/pusher/pusherpb"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/query/querypb"
	"github.com/beehive-im/beehive/shared/config"
	"github.com/beehive-im/beehive/shared/discovery"
	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/kafkax"
	"github.com/beehive-im/beehive/shared/lifecycle"
	"github.com/beehive-im/beehive/shared/pebblex"
	"github.com/beehive-im/beehive/user"
	"github.com/beehive-im/beehive/user/userpb"
)

// node is one `beehive serve <service>` process: its own service, clients
// of its peers found through discovery, and its backends.
type node struct {
	service string
	cfg     config.Config
	logger  log.Logger
	reg     *prometheus.Registry
	kit     endpointx.Kit
	conns   *grpcx.Conns

	resolver  discovery.Resolver
	registrar discovery.Registrar
	consul    *discovery.Consul

	db      *pebble.DB
	cass    *gocql.Session
	rdb     *redis.Client
	brokers []string
	writers []*kafka.Writer
	bus     *events.Bus
	pub     events.Publisher

	mounts    []func(*mux.Router)
	wsHandler http.Handler
	grpc      *grpcx.Server
	checks    []httpx.Check
	actors    []func(ctx context.Context) error
	closers   []func()
}

// RunServe is `beehive serve <service>`.
func RunServe(ctx context.Context, service string, cfg config.Config, logger log.Logger, out io.Writer) error {
	known := false
	for _, s := range Services {
		known = known || s == service
	}
	if !known {
		return fmt.Errorf("unknown service %q (one of %s)", service, strings.Join(Services, ", "))
	}
	if cfg.ServiceToken == "" {
		return fmt.Errorf("service_token (BEEHIVE_SERVICE_TOKEN) must be set when services run as separate processes")
	}
	ln, err := Listen(cfg.HTTP.Addr, cfg.GRPC.Addr)
	if err != nil {
		return err
	}
	logger = log.With(logger, "service", service)
	n := &node{service: service, cfg: cfg, logger: logger, reg: prometheus.NewRegistry(), conns: grpcx.NewConns(grpcx.CallMessageSize(cfg.GRPC.MaxMessageSize)), bus: events.NewBus()}
	defer n.close()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.kit = endpointx.Kit{Logger: logger, Metrics: endpointx.NewMetrics(n.reg), Policy: endpointx.DefaultPolicy}
	n.grpc = grpcx.NewServer(logger, grpcx.TrustServiceToken(cfg.ServiceToken), grpcx.MaxMessageSize(cfg.GRPC.MaxMessageSize))
	if err := n.discovery(); err != nil {
		return err
	}
	if err := n.build(ctx); err != nil {
		return err
	}

	handler := n.httpHandler()
	g := lifecycle.New()
	g.HandleSignals()
	serveHTTP(g, ln.HTTP, handler, logger)
	serveGRPC(g, ln.GRPC, n.grpc, logger)
	if err := serveDebug(g, cfg.HTTP.DebugAddr, logger); err != nil {
		return err
	}
	for _, a := range n.actors {
		g.AddContext(a)
	}
	host, grpcPort := hostPort(cfg.GRPC.AdvertiseAddr, ln.GRPC)
	_, httpPort := hostPort(cfg.HTTP.AdvertiseAddr, ln.HTTP)
	reg := discovery.Registration{Service: "beehive-" + service, ID: n.instanceID(host, grpcPort), Host: host, HTTPPort: httpPort, GRPCPort: grpcPort}
	if err := register(g, n.registrar, reg, logger); err != nil {
		return err
	}
	printf(out, "beehive serve %s: HTTP http://%s  gRPC %s\n", service, ln.HTTP.Addr(), ln.GRPC.Addr())
	// The first actor to return stops the process; a signal is the
	// normal way, anything else is a failure worth an exit code.
	if err := g.Run(); err != nil && !strings.HasPrefix(err.Error(), "received ") {
		_ = level.Error(logger).Log("msg", "stopped", "err", err)
		return err
	}
	return nil
}

// instanceID names this instance in Consul; a gateway's id is its
// configured gateway id, so the pusher can find the instance holding a
// socket.
func (n *node) instanceID(host string, port int) string {
	if n.service == "gateway" {
		return n.cfg.Gateway.ID
	}
	return fmt.Sprintf("beehive-%s-%s-%d", n.service, host, port)
}

func (n *node) discovery() error {
	if len(n.cfg.Peers) > 0 {
		n.resolver = discovery.Static{Peers: n.cfg.Peers}
		n.registrar = discovery.NopRegistrar{}
		return nil
	}
	c, err := discovery.NewConsul(n.cfg.Consul.Addr, n.logger)
	if err != nil {
		return err
	}
	n.consul = c
	n.resolver, n.registrar = c, c
	n.closers = append(n.closers, c.Close)
	n.checks = append(n.checks, httpx.Check{Name: "consul", Check: c.Ping})
	return nil
}

func (n *node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	for _, w := range n.writers {
		_ = w.Close()
	}
	_ = n.conns.Close()
	if n.db != nil {
		_ = n.db.Close()
	}
}

func (n *node) httpHandler() http.Handler {
	if n.service == "gateway" {
		return gateway.NewHTTPHandler(gateway.HTTPOptions{
			WS: n.wsHandler, BodyLimit: n.cfg.HTTP.BodyLimit,
			IPLimiter: n.rateLimiter("ip:", n.cfg.Gateway.PerIPPerSecond, int(n.cfg.Gateway.PerIPPerSecond)*2),
			Gatherer:  n.reg, Checks: func() []httpx.Check { return n.checks }, Logger: n.logger,
		}, n.mounts...)
	}
	r := httpx.NewRouter()
	httpx.MountOps(r, n.reg, func() []httpx.Check { return n.checks })
	for _, m := range n.mounts {
		m(r)
	}
	return httpx.Harden(r, n.cfg.HTTP.BodyLimit, n.logger)
}

// store opens this process's embedded store (static mode without
// Cassandra) once.
func (n *node) store() (*pebble.DB, error) {
	if n.db != nil {
		return n.db, nil
	}
	db, err := pebblex.Open(filepath.Join(n.cfg.DataDir, "store-"+n.service))
	if err != nil {
		return nil, err
	}
	n.db = db
	return db, nil
}

// kafka returns the configured brokers, ensuring the topics exist.
func (n *node) kafka(ctx context.Context) ([]string, error) {
	if n.brokers != nil {
		return n.brokers, nil
	}
	if len(n.cfg.Kafka.Brokers) == 0 {
		return nil, fmt.Errorf("beehive serve %s needs Kafka: set kafka.brokers (BEEHIVE_KAFKA_BROKERS)", n.service)
	}
	if err := kafkax.EnsureTopics(ctx, n.cfg.Kafka.Brokers, kafkax.DefaultTopics(n.cfg.Kafka.Partitions, n.cfg.Kafka.ReplicationFactor)); err != nil {
		return nil, err
	}
	n.brokers = n.cfg.Kafka.Brokers
	n.checks = append(n.checks, httpx.Check{Name: "kafka", Check: func(ctx context.Context) error { return kafkaPing(ctx, n.brokers) }})
	return n.brokers, nil
}

func (n *node) writer(topic string) *kafka.Writer {
	w := kafkax.NewWriter(n.brokers, topic, n.cfg.Kafka.BatchTimeout)
	n.writers = append(n.writers, w)
	return w
}

func (n *node) consumerConfig() kafkax.ConsumerConfig {
	return kafkax.ConsumerConfig{Brokers: n.brokers, DeadLetter: n.writer(kafkax.TopicDeadLetter), SessionTimeout: n.cfg.Kafka.SessionTimeout, Logger: n.logger}
}

// events sets the publisher: Kafka when there is Kafka (every process
// hears every event), else this process's bus only.
func (n *node) events(ctx context.Context) events.Publisher {
	if n.pub != nil {
		return n.pub
	}
	if len(n.cfg.Kafka.Brokers) == 0 {
		n.pub = n.bus
		return n.pub
	}
	if _, err := n.kafka(ctx); err != nil {
		n.pub = n.bus
		return n.pub
	}
	n.pub = events.NewKafkaPublisher(n.writer(kafkax.TopicEvents))
	return n.pub
}

// listenEvents feeds this process's bus from beehive.events.
func (n *node) listenEvents(ctx context.Context, instance string) {
	if len(n.cfg.Kafka.Brokers) == 0 {
		return
	}
	if _, err := n.kafka(ctx); err != nil {
		return
	}
	cfg := n.consumerConfig()
	n.actors = append(n.actors, func(ctx context.Context) error { return events.ConsumeKafka(ctx, cfg, instance, n.bus) })
}

// Clients of the peers.

func (n *node) instancer(service string) (sdInstancer, error) { return n.resolver.Instancer(service) }

func (n *node) userClient() (user.Service, error) {
	in, err := n.instancer(discovery.User)
	if err != nil {
		return nil, err
	}
	return user.NewGRPCClient(in, n.conns, n.cfg.ServiceToken, n.logger), nil
}

func (n *node) authClient() (auth.Service, error) {
	in, err := n.instancer(discovery.Auth)
	if err != nil {
		return nil, err
	}
	return auth.NewGRPCClient(in, n.conns, n.cfg.ServiceToken, n.logger), nil
}

func (n *node) groupClient() (group.Service, error) {
	in, err := n.instancer(discovery.Group)
	if err != nil {
		return nil, err
	}
	return group.NewGRPCClient(in, n.conns, n.cfg.ServiceToken, n.logger), nil
}

func (n *node) messageClient() (message.Service, error) {
	in, err := n.instancer(discovery.Message)
	if err != nil {
		return nil, err
	}
	return message.NewGRPCClient(in, n.conns, n.cfg.ServiceToken, n.logger), nil
}

func (n *node) queryClient() (query.Service, error) {
	in, err := n.instancer(discovery.Query)
	if err != nil {
		return nil, err
	}
	return query.NewGRPCClient(in, n.conns, n.cfg.ServiceToken, n.logger), nil
}

func (n *node) presenceClient() (presence.Service, error) {
	in, err := n.instancer(discovery.Presence)
	if err != nil {
		return nil, err
	}
	return presence.NewGRPCClient(in, n.conns, n.cfg.ServiceToken, n.logger), nil
}

func (n *node) pusherClient() (pusher.Service, error) {
	in, err := n.instancer(discovery.Pusher)
	if err != nil {
		return nil, err
	}
	return pusher.NewGRPCClient(in, n.conns, n.cfg.ServiceToken, n.logger), nil
}

// authenticator verifies user tokens: the auth service checks them
// (signature, expiry, revocation) through ValidateToken.
func (n *node) authenticator() (identity.Authenticator, error) {
	c, err := n.authClient()
	if err != nil {
		return nil, err
	}
	return auth.ServiceAuthenticator(c), nil
}

// build constructs this process's service.
func (n *node) build(ctx context.Context) error {
	switch n.service {
	case "auth":
		return n.buildAuth(ctx)
	case "user":
		return n.buildUser(ctx)
	case "group":
		return n.buildGroup(ctx)
	case "message":
		return n.buildMessage(ctx)
	case "query":
		return n.buildQuery(ctx)
	case "presence":
		return n.buildPresence(ctx)
	case "pusher":
		return n.buildPusher(ctx)
	case "gateway":
		return n.buildGateway(ctx)
	}
	return fmt.Errorf("unknown service %q", n.service)
}

func (n *node) buildAuth(ctx context.Context) error {
	keys, err := keySet(n.cfg)
	if err != nil {
		return err
	}
	store, err := n.authStore()
	if err != nil {
		return err
	}
	users, err := n.userClient()
	if err != nil {
		return err
	}
	svc := auth.New(store, accounts{users}, keys, n.events(ctx), auth.Options{
		Issuer: n.cfg.Auth.Issuer, AccessTTL: n.cfg.Auth.AccessTTL, RefreshTTL: n.cfg.Auth.RefreshTTL,
		BcryptCost: n.cfg.Auth.BcryptCost, PasswordMinLength: n.cfg.Auth.PasswordMinLength,
		LoginPerIP: n.limiter("login:ip:", n.cfg.Auth.LoginPerIPPerMinute), LoginPerAccount: n.limiter("login:acct:", n.cfg.Auth.LoginPerAccountPerMinute),
		Logger: n.logger,
	})
	authn := auth.NewVerifier(keys, n.cfg.Auth.Issuer, store, time.Now)
	ep := auth.MakeServerEndpoints(svc, authn, n.cfg.ServiceToken, n.kit)
	n.mounts = append(n.mounts, func(r *mux.Router) { auth.MakeHTTPHandler(r, ep, n.logger) })
	authpb.RegisterAuthServiceServer(n.grpc, auth.NewGRPCServer(ep, n.logger))
	return nil
}

func (n *node) buildUser(ctx context.Context) error {
	store, err := n.userStore()
	if err != nil {
		return err
	}
	svc, err := user.New(store, n.events(ctx), user.Options{
		PasswordMinLength: n.cfg.Auth.PasswordMinLength, BcryptCost: n.cfg.Auth.BcryptCost,
		MessagePolicy: n.cfg.User.MessagePolicy, Logger: n.logger,
	})
	if err != nil {
		return err
	}
	authn, err := n.authenticator()
	if err != nil {
		return err
	}
	ep := user.MakeServerEndpoints(svc, authn, n.cfg.ServiceToken, n.kit)
	n.mounts = append(n.mounts, func(r *mux.Router) { user.MakeHTTPHandler(r, ep, n.logger) })
	userpb.RegisterUserServiceServer(n.grpc, user.NewGRPCServer(ep, n.logger))
	return nil
}

func (n *node) buildGroup(ctx context.Context) error {
	store, err := n.groupStore()
	if err != nil {
		return err
	}
	users, err := n.userClient()
	if err != nil {
		return err
	}
	msgs, err := n.messageClient()
	if err != nil {
		return err
	}
	authn, err := n.authenticator()
	if err != nil {
		return err
	}
	svc := group.New(store, userExists(users), seqReader(&msgs), n.events(ctx), group.Options{MaxMembers: n.cfg.Group.MaxMembers, Logger: n.logger})
	ep := group.MakeServerEndpoints(svc, authn, n.cfg.ServiceToken, n.kit)
	n.mounts = append(n.mounts, func(r *mux.Router) { group.MakeHTTPHandler(r, ep, n.logger) })
	grouppb.RegisterGroupServiceServer(n.grpc, group.NewGRPCServer(ep, n.logger))
	return nil
}

func (n *node) buildMessage(ctx context.Context) error {
	brokers, err := n.kafka(ctx)
	if err != nil {
		return err
	}
	_ = brokers
	users, err := n.userClient()
	if err != nil {
		return err
	}
	groups, err := n.groupClient()
	if err != nil {
		return err
	}
	q, err := n.queryClient()
	if err != nil {
		return err
	}
	authn, err := n.authenticator()
	if err != nil {
		return err
	}
	seqs, dedup, err := n.messageState()
	if err != nil {
		return err
	}
	svc := message.New(relations{users}, groupPeer{groups}, messageReader{q}, seqs, dedup,
		message.NewKafkaProducer(n.writer(kafkax.TopicMessages)), messageOptions(n.cfg, n.logger))
	ep := message.MakeServerEndpoints(svc, authn, n.cfg.ServiceToken, n.kit)
	n.mounts = append(n.mounts, func(r *mux.Router) { message.MakeHTTPHandler(r, ep, n.logger) })
	messagepb.RegisterMessageServiceServer(n.grpc, message.NewGRPCServer(ep, query.NewMessageReadsServer(q), n.logger))
	return nil
}

func (n *node) buildQuery(ctx context.Context) error {
	brokers, err := n.kafka(ctx)
	if err != nil {
		return err
	}
	store, err := n.queryStore()
	if err != nil {
		return err
	}
	groups, err := n.groupClient()
	if err != nil {
		return err
	}
	authn, err := n.authenticator()
	if err != nil {
		return err
	}
	svc := query.New(store, groupPeer{groups}, query.Options{
		Logger: n.logger, CaughtUp: kafkax.NewCaughtUp(brokers, query.PersistGroup, kafkax.TopicMessages).Wait,
		PageSize: n.cfg.Query.PageSize, MaxPageSize: n.cfg.Query.MaxPageSize,
	})
	persister := query.NewPersister(store, n.logger)
	cfg := n.consumerConfig()
	n.actors = append(n.actors, func(ctx context.Context) error { return persister.Run(ctx, cfg) })
	ep := query.MakeServerEndpoints(svc, authn, n.cfg.ServiceToken, n.kit)
	n.mounts = append(n.mounts, func(r *mux.Router) { query.MakeHTTPHandler(r, ep, n.logger) })
	querypb.RegisterQueryServiceServer(n.grpc, query.NewGRPCServer(ep, n.logger))
	return nil
}

func (n *node) buildPresence(ctx context.Context) error {
	backend, err := n.presenceBackend()
	if err != nil {
		return err
	}
	authn, err := n.authenticator()
	if err != nil {
		return err
	}
	svc := presence.New(backend, n.events(ctx), presence.Options{TTL: n.cfg.Presence.HeartbeatTTL, Logger: n.logger})
	n.actors = append(n.actors, svc.Run)
	ep := presence.MakeServerEndpoints(svc, authn, n.cfg.ServiceToken, n.kit)
	n.mounts = append(n.mounts, func(r *mux.Router) { presence.MakeHTTPHandler(r, ep, n.logger) })
	presencepb.RegisterPresenceServiceServer(n.grpc, presence.NewGRPCServer(ep, n.logger))
	return nil
}

func (n *node) buildPusher(ctx context.Context) error {
	if _, err := n.kafka(ctx); err != nil {
		return err
	}
	store, err := n.pusherStore()
	if err != nil {
		return err
	}
	groups, err := n.groupClient()
	if err != nil {
		return err
	}
	pres, err := n.presenceClient()
	if err != nil {
		return err
	}
	q, err := n.queryClient()
	if err != nil {
		return err
	}
	users, err := n.userClient()
	if err != nil {
		return err
	}
	authn, err := n.authenticator()
	if err != nil {
		return err
	}
	notifiers, err := buildNotifiers(n.cfg)
	if err != nil {
		return err
	}
	p := pusher.New(pusher.Deps{
		Store: store, Members: groupPeer{groups}, Presence: presencePeer{pres},
		Deliverer: &remoteGateways{n: n}, Acks: acksAndSettings{q}, Settings: acksAndSettings{q},
		Friends: friends{users}, Offline: n.writer(kafkax.TopicPushOffline), Notifiers: notifiers,
	}, pusher.Options{Logger: n.logger, Registerer: n.reg})
	n.bus.Subscribe(p.HandleEvent)
	n.listenEvents(ctx, "pusher-"+n.cfg.Gateway.ID+"-"+strings.ReplaceAll(n.cfg.GRPC.Addr, ":", "_"))
	cfg := n.consumerConfig()
	n.actors = append(n.actors,
		func(ctx context.Context) error { return p.RunPushConsumer(ctx, cfg) },
		func(ctx context.Context) error { return p.RunOfflineConsumer(ctx, cfg) })
	ep := pusher.MakeServerEndpoints(p, authn, n.cfg.ServiceToken, n.kit)
	n.mounts = append(n.mounts, func(r *mux.Router) { pusher.MakeHTTPHandler(r, ep, n.logger) })
	pusherpb.RegisterPusherServiceServer(n.grpc, pusher.NewGRPCServer(ep, n.logger))
	return nil
}

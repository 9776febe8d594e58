package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/auth/authpb"
	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/gateway/gatewaypb"
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
	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/kafkax"
	"github.com/beehive-im/beehive/shared/lifecycle"
	"github.com/beehive-im/beehive/shared/pebblex"
	"github.com/beehive-im/beehive/shared/ratelimit"
	"github.com/beehive-im/beehive/user"
	"github.com/beehive-im/beehive/user/userpb"
)

// Services are the names `beehive serve` accepts.
var Services = []string{"auth", "user", "group", "message", "presence", "gateway", "pusher", "query"}

// Embedded is every service in one process on the embedded broker and
// store: what `beehive dev` runs.
type Embedded struct {
	cfg    config.Config
	logger log.Logger

	db     *pebble.DB
	broker *kafkax.Embedded
	bus    *events.Bus
	reg    *prometheus.Registry

	msgWriter, offlineWriter, deadLetter *kafka.Writer

	Auth     auth.Service
	Users    *user.Users
	Groups   *group.Groups
	Messages message.Service
	Query    query.Service
	Presence *presence.Presence
	Pusher   *pusher.Pusher
	Gateway  *gateway.Gateway

	persister *query.Persister
	sweepers  []pebblex.Sweeper
	handler   http.Handler
	grpc      *grpcx.Server
}

// NewEmbedded builds the system under cfg.DataDir. Close releases it.
func NewEmbedded(ctx context.Context, cfg config.Config, logger log.Logger) (e *Embedded, err error) {
	e = &Embedded{cfg: cfg, logger: logger, bus: events.NewBus(), reg: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	e.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.ServiceToken == "" {
		// One process: the internal credential never leaves it.
		cfg.ServiceToken = ids.New() + ids.New()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return e, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	if e.db, err = pebblex.Open(filepath.Join(cfg.DataDir, "store")); err != nil {
		return e, err
	}
	keys, err := keySet(cfg)
	if err != nil {
		return e, err
	}

	// Kafka: the embedded broker, spoken to through the production code.
	if e.broker, err = kafkax.StartEmbedded(filepath.Join(cfg.DataDir, "kafka"), "127.0.0.1:0", log.With(logger, "component", "kfake")); err != nil {
		return e, err
	}
	brokers := e.broker.Brokers()
	if err := kafkax.EnsureTopics(ctx, brokers, kafkax.DefaultTopics(cfg.Kafka.Partitions, 1)); err != nil {
		return e, err
	}
	e.msgWriter = kafkax.NewWriter(brokers, kafkax.TopicMessages, cfg.Kafka.BatchTimeout)
	e.offlineWriter = kafkax.NewWriter(brokers, kafkax.TopicPushOffline, cfg.Kafka.BatchTimeout)
	e.deadLetter = kafkax.NewWriter(brokers, kafkax.TopicDeadLetter, cfg.Kafka.BatchTimeout)

	kit := endpointx.Kit{Logger: logger, Metrics: endpointx.NewMetrics(e.reg), Policy: endpointx.DefaultPolicy}
	token := cfg.ServiceToken

	// Domains, leaves first.
	if e.Users, err = user.New(user.NewPebbleStore(e.db), e.bus, user.Options{
		PasswordMinLength: cfg.Auth.PasswordMinLength, BcryptCost: cfg.Auth.BcryptCost,
		MessagePolicy: cfg.User.MessagePolicy, Logger: logger,
	}); err != nil {
		return e, err
	}
	authStore := auth.NewPebbleStore(e.db)
	e.Auth = auth.New(authStore, accounts{e.Users}, keys, e.bus, auth.Options{
		Issuer: cfg.Auth.Issuer, AccessTTL: cfg.Auth.AccessTTL, RefreshTTL: cfg.Auth.RefreshTTL,
		BcryptCost: cfg.Auth.BcryptCost, PasswordMinLength: cfg.Auth.PasswordMinLength,
		LoginPerIP:      ratelimit.PerMinute(cfg.Auth.LoginPerIPPerMinute),
		LoginPerAccount: ratelimit.PerMinute(cfg.Auth.LoginPerAccountPerMinute),
		Logger:          logger,
	})
	authn := auth.NewVerifier(keys, cfg.Auth.Issuer, authStore, time.Now)

	e.Groups = group.New(group.NewPebbleStore(e.db), userExists(e.Users), seqReader(&e.Messages), e.bus, group.Options{MaxMembers: cfg.Group.MaxMembers, Logger: logger})
	e.Query = query.New(query.NewPebbleStore(e.db), groupPeer{e.Groups}, query.Options{
		Logger: logger, CaughtUp: kafkax.NewCaughtUp(brokers, query.PersistGroup, kafkax.TopicMessages).Wait,
		PageSize: cfg.Query.PageSize, MaxPageSize: cfg.Query.MaxPageSize,
	})
	e.persister = query.NewPersister(query.NewPebbleStore(e.db), logger)
	dedup := message.NewPebbleDedupStore(e.db)
	e.Messages = message.New(relations{e.Users}, groupPeer{e.Groups}, messageReader{e.Query},
		message.NewLeasedAllocator(message.NewPebbleSeqLeaser(e.db), cfg.Message.SeqLeaseBlock),
		dedup, message.NewKafkaProducer(e.msgWriter), messageOptions(cfg, logger))
	// Pebble keeps what Redis would expire by TTL: sweep it.
	e.sweepers = []pebblex.Sweeper{
		{Name: "auth sessions", Sweep: authStore.Sweep, Logger: logger},
		{Name: "message dedup", Sweep: dedup.Sweep, Logger: logger},
	}
	e.Presence = presence.New(presence.NewMemoryBackend(), e.bus, presence.Options{TTL: cfg.Presence.HeartbeatTTL, Logger: logger})

	// Endpoints: the same middleware and auth as when distributed.
	authEP := auth.MakeServerEndpoints(e.Auth, authn, token, kit)
	userEP := user.MakeServerEndpoints(e.Users, authn, token, kit)
	groupEP := group.MakeServerEndpoints(e.Groups, authn, token, kit)
	msgEP := message.MakeServerEndpoints(e.Messages, authn, token, kit)
	queryEP := query.MakeServerEndpoints(e.Query, authn, token, kit)
	presenceEP := presence.MakeServerEndpoints(e.Presence, authn, token, kit)

	notifiers, err := buildNotifiers(cfg)
	if err != nil {
		return e, err
	}
	gwID := cfg.Gateway.ID
	var deliverer localDeliverer
	e.Pusher = pusher.New(pusher.Deps{
		Store: pusher.NewPebbleStore(e.db), Members: groupPeer{e.Groups}, Presence: presencePeer{e.Presence},
		Deliverer: &deliverer, Acks: acksAndSettings{e.Query}, Settings: acksAndSettings{e.Query},
		Friends: friends{e.Users}, Offline: e.offlineWriter, Notifiers: notifiers,
	}, pusher.Options{Logger: logger, Registerer: e.reg})
	pusherEP := pusher.MakeServerEndpoints(e.Pusher, authn, token, kit)

	e.Gateway = gateway.New(authn, gateway.Peers{
		Sender: sender{msgEP}, Reader: reader{queryEP}, Reads: msgEP, Typing: pusherEP, Presence: e.Presence,
	}, gatewayOptions(cfg, ratelimit.NewLocal(cfg.Message.SendPerUserPerSecond, cfg.Message.SendBurst), logger))
	deliverer.gateways = map[string]gateway.Service{gwID: e.Gateway}
	gatewayEP := gateway.MakeServerEndpoints(e.Gateway, token, kit)

	e.bus.Subscribe(e.Gateway.HandleEvent)
	e.bus.Subscribe(e.Pusher.HandleEvent)

	// Public HTTP: every domain's routes on the gateway's router.
	e.handler = gateway.NewHTTPHandler(gateway.HTTPOptions{
		WS: e.Gateway, BodyLimit: cfg.HTTP.BodyLimit, IPLimiter: ratelimit.NewLocal(cfg.Gateway.PerIPPerSecond, int(cfg.Gateway.PerIPPerSecond)*2),
		Gatherer: e.reg, Checks: e.checks, Logger: logger,
	},
		func(r *mux.Router) { auth.MakeHTTPHandler(r, authEP, logger) },
		func(r *mux.Router) { user.MakeHTTPHandler(r, userEP, logger) },
		func(r *mux.Router) { group.MakeHTTPHandler(r, groupEP, logger) },
		func(r *mux.Router) { message.MakeHTTPHandler(r, msgEP, logger) },
		func(r *mux.Router) { query.MakeHTTPHandler(r, queryEP, logger) },
		func(r *mux.Router) { presence.MakeHTTPHandler(r, presenceEP, logger) },
		func(r *mux.Router) { pusher.MakeHTTPHandler(r, pusherEP, logger) },
	)

	// gRPC: every service on one port.
	e.grpc = grpcx.NewServer(logger, grpcx.MaxMessageSize(cfg.GRPC.MaxMessageSize))
	authpb.RegisterAuthServiceServer(e.grpc, auth.NewGRPCServer(authEP, logger))
	userpb.RegisterUserServiceServer(e.grpc, user.NewGRPCServer(userEP, logger))
	grouppb.RegisterGroupServiceServer(e.grpc, group.NewGRPCServer(groupEP, logger))
	messagepb.RegisterMessageServiceServer(e.grpc, message.NewGRPCServer(msgEP, query.NewMessageReadsServer(queryEP), logger))
	querypb.RegisterQueryServiceServer(e.grpc, query.NewGRPCServer(queryEP, logger))
	presencepb.RegisterPresenceServiceServer(e.grpc, presence.NewGRPCServer(presenceEP, logger))
	pusherpb.RegisterPusherServiceServer(e.grpc, pusher.NewGRPCServer(pusherEP, logger))
	gatewaypb.RegisterGatewayServiceServer(e.grpc, gateway.NewGRPCServer(gatewayEP, logger))
	return e, nil
}

// checks are /ready's dependency checks.
func (e *Embedded) checks() []httpx.Check {
	return []httpx.Check{
		{Name: "store", Check: func(context.Context) error {
			_, _, err := pebblex.Get(e.db, []byte("ready-probe"))
			return err
		}},
		{Name: "kafka", Check: func(ctx context.Context) error { return kafkaPing(ctx, e.broker.Brokers()) }},
	}
}

// consumerConfig is the base of every consumer group of this process.
func (e *Embedded) consumerConfig() kafkax.ConsumerConfig {
	return kafkax.ConsumerConfig{Brokers: e.broker.Brokers(), DeadLetter: e.deadLetter, SessionTimeout: e.cfg.Kafka.SessionTimeout, Logger: e.logger}
}

// Run serves until ctx ends or a signal arrives.
func (e *Embedded) Run(ln *Listeners, out io.Writer) error {
	g := lifecycle.New()
	g.HandleSignals()
	serveHTTP(g, ln.HTTP, e.handler, e.logger)
	serveGRPC(g, ln.GRPC, e.grpc, e.logger)
	if err := serveDebug(g, e.cfg.HTTP.DebugAddr, e.logger); err != nil {
		return err
	}
	g.AddContext(func(ctx context.Context) error { return e.persister.Run(ctx, e.consumerConfig()) })
	g.AddContext(func(ctx context.Context) error { return e.Pusher.RunPushConsumer(ctx, e.consumerConfig()) })
	g.AddContext(func(ctx context.Context) error { return e.Pusher.RunOfflineConsumer(ctx, e.consumerConfig()) })
	g.AddContext(e.Presence.Run)
	for _, s := range e.sweepers {
		g.AddContext(s.Run)
	}
	g.AddContext(func(ctx context.Context) error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return e.Gateway.Shutdown(sctx)
	})
	printf(out, "beehive dev: every service in one process (data in %s)\n", e.cfg.DataDir)
	printf(out, "  HTTP + WebSocket  http://%s   (ws://%s/v1/ws)\n", ln.HTTP.Addr(), ln.HTTP.Addr())
	printf(out, "  gRPC              %s   (reflection on: grpcurl -plaintext %s list)\n", ln.GRPC.Addr(), ln.GRPC.Addr())
	printf(out, "  Kafka (embedded)  %v\n", e.broker.Brokers())
	err := g.Run()
	if err != nil && !strings.HasPrefix(err.Error(), "received ") {
		_ = level.Error(e.logger).Log("msg", "stopped", "err", err)
		return err
	}
	_ = level.Info(e.logger).Log("msg", "stopped", "reason", err)
	return nil
}

// Close releases the broker, writers and store.
func (e *Embedded) Close() {
	for _, w := range []*kafka.Writer{e.msgWriter, e.offlineWriter, e.deadLetter} {
		if w != nil {
			_ = w.Close()
		}
	}
	if e.broker != nil {
		_ = e.broker.Close()
	}
	if e.db != nil {
		_ = e.db.Close()
	}
}

// RunDev is `beehive dev`.
func RunDev(ctx context.Context, cfg config.Config, logger log.Logger, out io.Writer) error {
	ln, err := Listen(cfg.HTTP.Addr, cfg.GRPC.Addr)
	if err != nil {
		return err
	}
	e, err := NewEmbedded(ctx, cfg, logger)
	if err != nil {
		_ = ln.HTTP.Close()
		_ = ln.GRPC.Close()
		return err
	}
	defer e.Close()
	return e.Run(ln, out)
}

func keySet(cfg config.Config) (*auth.KeySet, error) {
	if len(cfg.Auth.SigningKeys) > 0 {
		return auth.KeySetFromConfig(cfg.Auth.SigningKeys, cfg.Auth.ActiveKid)
	}
	return auth.LoadOrCreateKeySet(filepath.Join(cfg.DataDir, "signing-keys.json"))
}

func messageOptions(cfg config.Config, logger log.Logger) message.Options {
	o := message.Options{RecallWindow: cfg.Message.RecallWindow, Logger: logger}
	o.Limits = message.Limits{TextLimit: cfg.Message.TextLimit, ObjectLimit: cfg.Message.ContentLimit, MaxMentions: cfg.Message.MaxMentions}
	if len(cfg.Message.SensitiveWords) > 0 {
		o.Filter = message.NewFilter(cfg.Message.SensitiveWords, message.FilterMode(cfg.Message.SensitiveMode))
	}
	return o
}

// gatewayOptions configures a gateway; sendLimiter limits sends per user
// (local in one process, Redis-shared when distributed).
func gatewayOptions(cfg config.Config, sendLimiter ratelimit.Keyed, logger log.Logger) gateway.Options {
	return gateway.Options{
		GatewayID: cfg.Gateway.ID, AllowedOrigins: cfg.Gateway.AllowedOrigins, FrameLimit: cfg.Gateway.FrameLimit,
		SendQueue: cfg.Gateway.SendQueue, PingInterval: cfg.Gateway.PingInterval,
		SendLimiter:  sendLimiter,
		FrameLimiter: ratelimit.NewLocal(cfg.Gateway.FramesPerSecond, cfg.Gateway.FrameBurst),
		Logger:       logger,
	}
}

func buildNotifiers(cfg config.Config) (map[string]pusher.Notifier, error) {
	out := map[string]pusher.Notifier{}
	p := cfg.Pusher
	if p.WebhookURL != "" {
		w, err := pusher.NewWebhook(pusher.WebhookConfig{URL: p.WebhookURL, Secret: p.WebhookSecret})
		if err != nil {
			return nil, err
		}
		out["webhook"] = w
	}
	if p.FCMProject != "" {
		f, err := pusher.NewFCM(pusher.FCMConfig{Endpoint: p.FCMEndpoint, ProjectID: p.FCMProject, Tokens: pusher.StaticToken(p.FCMToken)})
		if err != nil {
			return nil, err
		}
		out["fcm"] = f
	}
	if p.APNsKeyPEM != "" {
		key, err := pusher.ParseAPNsKey([]byte(p.APNsKeyPEM))
		if err != nil {
			return nil, err
		}
		a, err := pusher.NewAPNs(pusher.APNsConfig{Endpoint: p.APNsEndpoint, Topic: p.APNsTopic, KeyID: p.APNsKeyID, TeamID: p.APNsTeamID, Key: key})
		if err != nil {
			return nil, err
		}
		out["apns"] = a
	}
	return out, nil
}

// kafkaPing checks that some broker answers a metadata request.
func kafkaPing(ctx context.Context, brokers []string) error {
	var last error
	for _, b := range brokers {
		conn, err := kafka.DialContext(ctx, "tcp", b)
		if err != nil {
			last = err
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, err = conn.Brokers()
		_ = conn.Close()
		if err == nil {
			return nil
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("no brokers configured")
	}
	return last
}

package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

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
	"github.com/beehive-im/beehive/shared/discovery"
	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/kafkax"
	"github.com/beehive-im/beehive/shared/ratelimit"
	"github.com/beehive-im/beehive/user"
	"github.com/beehive-im/beehive/user/userpb"
)

// builders build one service each, the same way in every run mode: given
// the process's wiring (config, backends, resolved peers), a builder
// makes the service, wraps it in its endpoint chain, and adds its routes,
// gRPC service, background actors and readiness needs to the wiring. The
// service's Endpoints become its local peer, so services built later in
// the same process call it through the same chain.
var builders = map[string]func(context.Context, *wiring) error{
	"auth": buildAuth, "user": buildUser, "group": buildGroup, "message": buildMessage,
	"presence": buildPresence, "gateway": buildGateway, "pusher": buildPusher, "query": buildQuery,
}

// Services are the names `beehive serve` accepts, in build order: every
// service is built after the services it calls, so the runtime
// dependency graph (README, Architecture) is acyclic: user <- auth;
// user <- group; group <- query; user, group, query <- message; group,
// presence, query, user <- pusher; message, query, presence <- gateway.
// The pusher's Deliver to a gateway is not against this order: it is
// resolved at call time (peers.Deliver), to the gateway instance holding
// the socket, and nothing the gateway calls calls the pusher (messages
// and typing notices reach it through Kafka).
var Services = []string{"user", "auth", "group", "query", "message", "presence", "pusher", "gateway"}

// wiring is one process under construction: what a builder gets and what
// it adds.
type wiring struct {
	mode   string
	cfg    config.Config
	logger log.Logger
	reg    *prometheus.Registry
	kit    endpointx.Kit
	be     *backends
	peers  *peers
	bus    *events.Bus // this process's subscribers
	pub    events.Publisher
	keys   *auth.KeySet
	authn  identity.Authenticator

	mounts    []func(*mux.Router)
	services  []func(*grpcx.Server)
	actors    []func(context.Context) error
	needs     map[string]bool
	ws        http.Handler // the gateway's socket endpoint, when it runs here
	listening bool         // this process consumes beehive.events
}

func newWiring(mode string, cfg config.Config, logger log.Logger, be *backends, p *peers) *wiring {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	be.reg = reg // the consumers' health metrics
	return &wiring{
		mode: mode, cfg: cfg, logger: logger, reg: reg, be: be, peers: p, bus: events.NewBus(), needs: map[string]bool{},
		kit: endpointx.Kit{Logger: logger, Metrics: endpointx.NewMetrics(reg), Policy: endpointx.DefaultPolicy},
	}
}

// build runs the builders of services in order.
func (w *wiring) build(ctx context.Context, services ...string) error {
	for _, s := range services {
		if err := builders[s](ctx, w); err != nil {
			return fmt.Errorf("build %s: %w", s, err)
		}
	}
	return nil
}

func (w *wiring) close() { w.be.close() }

func (w *wiring) mount(m func(*mux.Router))         { w.mounts = append(w.mounts, m) }
func (w *wiring) serve(s func(*grpcx.Server))       { w.services = append(w.services, s) }
func (w *wiring) run(a func(context.Context) error) { w.actors = append(w.actors, a) }

// need makes the process not ready while dep fails. A service declares
// only what it cannot work without (message stays ready while Cassandra
// is away: its seq marks are leased ahead).
func (w *wiring) need(deps ...string) {
	for _, d := range deps {
		w.needs[d] = true
	}
}

// checks are /ready's checks: the needed dependencies only.
func (w *wiring) checks() []httpx.Check {
	var out []httpx.Check
	for name := range w.needs {
		if c, ok := w.be.checks[name]; ok {
			out = append(out, c)
		}
	}
	return out
}

// handler is the process's HTTP API: the public edge (every domain's
// routes, the socket endpoint, per-IP limits) where a gateway runs, else
// this service's own routes.
func (w *wiring) handler() (http.Handler, error) {
	if w.ws == nil {
		r := httpx.NewRouter()
		httpx.MountOps(r, w.reg, w.checks)
		for _, m := range w.mounts {
			m(r)
		}
		return httpx.Harden(r, w.cfg.HTTP.BodyLimit, w.logger), nil
	}
	perIP := w.cfg.Gateway.PerIPPerSecond
	ipLimiter, err := w.be.limiter("ip:", perIP, int(perIP)*2)
	if err != nil {
		return nil, err
	}
	return gateway.NewHTTPHandler(gateway.HTTPOptions{
		WS: w.ws, BodyLimit: w.cfg.HTTP.BodyLimit, IPLimiter: ipLimiter,
		Gatherer: w.reg, Checks: w.checks, Logger: w.logger,
	}, w.mounts...), nil
}

// grpcServer is the process's gRPC server with every built service on it.
func (w *wiring) grpcServer() *grpcx.Server {
	s := grpcx.NewServer(w.logger, grpcx.TrustServiceToken(w.cfg.ServiceToken), grpcx.MaxMessageSize(w.cfg.GRPC.MaxMessageSize))
	for _, reg := range w.services {
		reg(s)
	}
	return s
}

// localEvents reports whether events stay in this process: in embedded
// mode, and in a static process configured without Kafka (said once at
// start: revocations then reach only this process's sockets). Where Kafka
// is configured, a failing Kafka is retried, never replaced by the bus.
func (w *wiring) localEvents() bool {
	return w.mode == config.ModeEmbedded || (w.mode == config.ModeStatic && len(w.cfg.Kafka.Brokers) == 0)
}

// publisher is where this process's services publish events: the bus in
// one process; beehive.events when there are several, so every process
// hears every event.
func (w *wiring) publisher(ctx context.Context) (events.Publisher, error) {
	if w.pub != nil {
		return w.pub, nil
	}
	if w.localEvents() {
		if w.mode == config.ModeStatic {
			_ = level.Warn(w.logger).Log("msg", "kafka.brokers is not set: events stay in this process (no session revocation or cache invalidation reaches other processes)")
		}
		w.pub = w.bus
		return w.pub, nil
	}
	wr, err := w.be.writer(ctx, kafkax.TopicEvents)
	if err != nil {
		return nil, err
	}
	w.pub = events.NewKafkaPublisher(wr)
	return w.pub, nil
}

// subscribe hands every event to h: from the bus in one process, from
// beehive.events (a consumer group of this instance's own) otherwise.
func (w *wiring) subscribe(ctx context.Context, instance string, h events.Handler) error {
	w.bus.Subscribe(h)
	if w.localEvents() || w.listening {
		return nil
	}
	cfg, err := w.be.consumerConfig(ctx)
	if err != nil {
		return err
	}
	w.listening = true
	w.run(func(ctx context.Context) error { return events.ConsumeKafka(ctx, cfg, instance, w.bus) })
	return nil
}

// keySet is the token signing keys: from config, else generated once and
// kept in the data dir.
func (w *wiring) keySet() (*auth.KeySet, error) {
	if w.keys != nil {
		return w.keys, nil
	}
	var err error
	if len(w.cfg.Auth.SigningKeys) > 0 {
		w.keys, err = auth.KeySetFromConfig(w.cfg.Auth.SigningKeys, w.cfg.Auth.ActiveKid)
	} else {
		w.keys, err = auth.LoadOrCreateKeySet(filepath.Join(w.cfg.DataDir, "signing-keys.json"))
	}
	return w.keys, err
}

// verifier checks user tokens where the keys and the revocation store
// are: signature and expiry by the signing keys, revocation in the auth
// store.
func (w *wiring) verifier() (identity.Authenticator, error) {
	if w.authn != nil {
		return w.authn, nil
	}
	keys, err := w.keySet()
	if err != nil {
		return nil, err
	}
	store, err := w.be.authStore()
	if err != nil {
		return nil, err
	}
	w.authn = auth.NewVerifier(keys, w.cfg.Auth.Issuer, store, time.Now)
	return w.authn, nil
}

// authenticator is how a service verifies user tokens. Locally where it
// can: in one process, and when distributed (every instance shares the
// signing keys from config and the revocations in Redis), so no service
// calls auth per request and auth -> user stays one way. A static
// process keeps revocations in the auth process's own store, so there it
// asks the auth service (ValidateToken).
func (w *wiring) authenticator() (identity.Authenticator, error) {
	if w.mode != config.ModeStatic || w.peers.local.auth != nil {
		return w.verifier()
	}
	return w.peers.authenticator()
}

// seqMarks is where the group service reads a conversation's last seq
// for a new member's join seq: the seq store itself when this process can
// read it (embedded: the one allocator; distributed: Redis and the
// Cassandra marks every message instance shares). A static process keeps
// its seqs in the message process's own store, so there the group asks
// the message service (its LastSeq RPC).
func (w *wiring) seqMarks() (group.SeqReader, error) {
	if w.mode != config.ModeStatic {
		seqs, err := w.be.seqAllocator()
		if err != nil {
			return nil, err
		}
		return group.SeqReaderFunc(seqs.Last), nil
	}
	msgs, err := w.peers.message()
	if err != nil {
		return nil, err
	}
	return group.SeqReaderFunc(func(ctx context.Context, conv string) (int64, error) {
		return msgs.LastSeq(internal(ctx), conv)
	}), nil
}

// The builders.

func buildAuth(ctx context.Context, w *wiring) error {
	keys, err := w.keySet()
	if err != nil {
		return err
	}
	store, err := w.be.authStore()
	if err != nil {
		return err
	}
	users, err := w.peers.user()
	if err != nil {
		return err
	}
	pub, err := w.publisher(ctx)
	if err != nil {
		return err
	}
	perIP, err := w.be.perMinute("login:ip:", w.cfg.Auth.LoginPerIPPerMinute)
	if err != nil {
		return err
	}
	perAccount, err := w.be.perMinute("login:acct:", w.cfg.Auth.LoginPerAccountPerMinute)
	if err != nil {
		return err
	}
	authn, err := w.verifier()
	if err != nil {
		return err
	}
	svc, err := auth.New(auth.Deps{Store: store, Accounts: accounts{user.NewAsker(users)}, Keys: keys, Events: pub}, auth.Options{
		Issuer: w.cfg.Auth.Issuer, AccessTTL: w.cfg.Auth.AccessTTL, RefreshTTL: w.cfg.Auth.RefreshTTL,
		BcryptCost: w.cfg.Auth.BcryptCost, PasswordMinLength: w.cfg.Auth.PasswordMinLength,
		LoginPerIP: perIP, LoginPerAccount: perAccount, Logger: w.logger,
	})
	if err != nil {
		return err
	}
	ep := auth.MakeServerEndpoints(svc, authn, w.cfg.ServiceToken, w.kit)
	w.peers.local.auth = ep
	w.mount(func(r *mux.Router) { auth.MakeHTTPHandler(r, ep, w.logger) })
	w.serve(func(s *grpcx.Server) { authpb.RegisterAuthServiceServer(s, auth.NewGRPCServer(ep, w.logger)) })
	w.need(w.be.fast())
	return nil
}

func buildUser(ctx context.Context, w *wiring) error {
	store, err := w.be.userStore()
	if err != nil {
		return err
	}
	pub, err := w.publisher(ctx)
	if err != nil {
		return err
	}
	authn, err := w.authenticator()
	if err != nil {
		return err
	}
	svc, err := user.New(user.Deps{Store: store, Events: pub}, user.Options{
		PasswordMinLength: w.cfg.Auth.PasswordMinLength, BcryptCost: w.cfg.Auth.BcryptCost,
		MessagePolicy: w.cfg.User.MessagePolicy, Logger: w.logger,
	})
	if err != nil {
		return err
	}
	ep := user.MakeServerEndpoints(svc, authn, w.cfg.ServiceToken, w.kit)
	w.peers.local.user = ep
	w.mount(func(r *mux.Router) { user.MakeHTTPHandler(r, ep, w.logger) })
	w.serve(func(s *grpcx.Server) { userpb.RegisterUserServiceServer(s, user.NewGRPCServer(ep, w.logger)) })
	w.need(w.be.durable())
	return nil
}

func buildGroup(ctx context.Context, w *wiring) error {
	store, err := w.be.groupStore()
	if err != nil {
		return err
	}
	users, err := w.peers.user()
	if err != nil {
		return err
	}
	seqs, err := w.seqMarks()
	if err != nil {
		return err
	}
	pub, err := w.publisher(ctx)
	if err != nil {
		return err
	}
	authn, err := w.authenticator()
	if err != nil {
		return err
	}
	svc, err := group.New(group.Deps{Store: store, Users: user.NewAsker(users), Seqs: seqs, Events: pub},
		group.Options{MaxMembers: w.cfg.Group.MaxMembers, Logger: w.logger})
	if err != nil {
		return err
	}
	ep := group.MakeServerEndpoints(svc, authn, w.cfg.ServiceToken, w.kit)
	w.peers.local.group = ep
	w.mount(func(r *mux.Router) { group.MakeHTTPHandler(r, ep, w.logger) })
	w.serve(func(s *grpcx.Server) { grouppb.RegisterGroupServiceServer(s, group.NewGRPCServer(ep, w.logger)) })
	w.need(w.be.durable())
	return nil
}

func buildQuery(ctx context.Context, w *wiring) error {
	brokers, err := w.be.kafka(ctx)
	if err != nil {
		return err
	}
	store, err := w.be.queryStore()
	if err != nil {
		return err
	}
	groups, err := w.peers.group()
	if err != nil {
		return err
	}
	authn, err := w.authenticator()
	if err != nil {
		return err
	}
	consumer, err := w.be.consumerConfig(ctx)
	if err != nil {
		return err
	}
	svc, err := query.New(query.Deps{Store: store, Groups: group.NewAsker(groups)}, query.Options{
		Logger: w.logger, CaughtUp: kafkax.NewCaughtUp(brokers, query.PersistGroup, kafkax.TopicMessages).Wait,
		PageSize: w.cfg.Query.PageSize, MaxPageSize: w.cfg.Query.MaxPageSize,
	})
	if err != nil {
		return err
	}
	persister := query.NewPersister(store, w.logger)
	w.run(func(ctx context.Context) error { return persister.Run(ctx, consumer) })
	ep := query.MakeServerEndpoints(svc, authn, w.cfg.ServiceToken, w.kit)
	w.peers.local.query = ep
	w.mount(func(r *mux.Router) { query.MakeHTTPHandler(r, ep, w.logger) })
	w.serve(func(s *grpcx.Server) { querypb.RegisterQueryServiceServer(s, query.NewGRPCServer(ep, w.logger)) })
	// History is served while Kafka is away; reads need the store.
	w.need(w.be.durable())
	return nil
}

func buildMessage(ctx context.Context, w *wiring) error {
	producer, err := w.be.writer(ctx, kafkax.TopicMessages)
	if err != nil {
		return err
	}
	signals, err := w.be.writer(ctx, kafkax.TopicTyping)
	if err != nil {
		return err
	}
	users, err := w.peers.user()
	if err != nil {
		return err
	}
	groups, err := w.peers.group()
	if err != nil {
		return err
	}
	reads, err := w.peers.query()
	if err != nil {
		return err
	}
	authn, err := w.authenticator()
	if err != nil {
		return err
	}
	seqs, err := w.be.seqAllocator()
	if err != nil {
		return err
	}
	dedup, err := w.be.dedupStore()
	if err != nil {
		return err
	}
	var (
		canMessage message.Relations = user.NewAsker(users)
		canPost    message.Groups    = group.NewAsker(groups)
	)
	if w.mode != config.ModeStatic || !w.localEvents() {
		// Sends go on through a user or group store outage for everyone
		// active before it. Only where every change reaches this process
		// as an event: a block must take effect at once.
		perms := message.NewPermissionCache(canMessage, canPost, message.PermissionCacheOptions{})
		if err := w.subscribe(ctx, instanceName("message", w.cfg), perms.HandleEvent); err != nil {
			return err
		}
		canMessage, canPost = perms.Relations(), perms.Groups()
	}
	svc, err := message.New(message.Deps{
		Relations: canMessage, Groups: canPost, Reader: query.NewAsker(reads),
		Seqs: seqs, Dedup: dedup, Producer: message.NewKafkaProducer(producer), Signals: message.NewKafkaProducer(signals),
		Leases: w.be.conversationLeases(),
	}, messageOptions(w.cfg, w.logger))
	if err != nil {
		return err
	}
	ep := message.MakeServerEndpoints(svc, authn, w.cfg.ServiceToken, w.kit)
	w.peers.local.message = ep
	w.mount(func(r *mux.Router) { message.MakeHTTPHandler(r, ep, w.logger) })
	// MessageService's read RPCs are the read side's: forwarded to query.
	w.serve(func(s *grpcx.Server) {
		messagepb.RegisterMessageServiceServer(s, message.NewGRPCServer(ep, query.NewMessageReadsServer(reads), w.logger))
	})
	// Sends need the broker and the seq/dedup state; not Cassandra (seq
	// marks are leased ahead).
	w.need(depKafka, w.be.fast())
	return nil
}

func buildPresence(ctx context.Context, w *wiring) error {
	pub, err := w.publisher(ctx)
	if err != nil {
		return err
	}
	authn, err := w.authenticator()
	if err != nil {
		return err
	}
	svc, err := presence.New(presence.Deps{Backend: w.be.presenceBackend(), Events: pub},
		presence.Options{TTL: w.cfg.Presence.HeartbeatTTL, Logger: w.logger})
	if err != nil {
		return err
	}
	w.run(svc.Run)
	ep := presence.MakeServerEndpoints(svc, authn, w.cfg.ServiceToken, w.kit)
	w.peers.local.presence = ep
	w.mount(func(r *mux.Router) { presence.MakeHTTPHandler(r, ep, w.logger) })
	w.serve(func(s *grpcx.Server) {
		presencepb.RegisterPresenceServiceServer(s, presence.NewGRPCServer(ep, w.logger))
	})
	if w.be.distributed() {
		w.need(depRedis)
	}
	return nil
}

func buildPusher(ctx context.Context, w *wiring) error {
	offline, err := w.be.writer(ctx, kafkax.TopicPushOffline)
	if err != nil {
		return err
	}
	consumer, err := w.be.consumerConfig(ctx)
	if err != nil {
		return err
	}
	store, err := w.be.pusherStore()
	if err != nil {
		return err
	}
	groups, err := w.peers.group()
	if err != nil {
		return err
	}
	pres, err := w.peers.presence()
	if err != nil {
		return err
	}
	reads, err := w.peers.query()
	if err != nil {
		return err
	}
	users, err := w.peers.user()
	if err != nil {
		return err
	}
	authn, err := w.authenticator()
	if err != nil {
		return err
	}
	notifiers, err := buildNotifiers(w.cfg)
	if err != nil {
		return err
	}
	p, err := pusher.New(pusher.Deps{
		Store: store, Members: group.NewAsker(groups), Presence: presenceDevices{presence.NewAsker(pres)},
		Deliverer: w.peers, Acks: query.NewAsker(reads), Settings: query.NewAsker(reads),
		Friends: user.NewAsker(users), Offline: offline, Notifiers: notifiers,
	}, pusher.Options{Logger: w.logger, Registerer: w.reg})
	if err != nil {
		return err
	}
	if err := w.subscribe(ctx, instanceName("pusher", w.cfg), p.HandleEvent); err != nil {
		return err
	}
	w.run(func(ctx context.Context) error { return p.RunPushConsumer(ctx, consumer) })
	w.run(func(ctx context.Context) error { return p.RunOfflineConsumer(ctx, consumer) })
	w.run(func(ctx context.Context) error { return p.RunTypingConsumer(ctx, consumer) })
	ep := pusher.MakeServerEndpoints(p, authn, w.cfg.ServiceToken, w.kit)
	w.mount(func(r *mux.Router) { pusher.MakeHTTPHandler(r, ep, w.logger) })
	w.serve(func(s *grpcx.Server) { pusherpb.RegisterPusherServiceServer(s, pusher.NewGRPCServer(ep, w.logger)) })
	w.need(depKafka)
	return nil
}

// buildGateway is the public edge: the WebSocket endpoint and, when the
// other services run elsewhere, every domain's HTTP routes over clients
// that forward only the caller's bearer token (a request without one is
// refused by the service). Socket ops, made for a socket authenticated at
// upgrade, carry the service credential and name the user.
func buildGateway(ctx context.Context, w *wiring) error {
	authn, err := w.authenticator()
	if err != nil {
		return err
	}
	msgs, err := w.peers.message()
	if err != nil {
		return err
	}
	reads, err := w.peers.query()
	if err != nil {
		return err
	}
	pres, err := w.peers.presence()
	if err != nil {
		return err
	}
	sends, err := w.be.limiter("send:", w.cfg.Message.SendPerUserPerSecond, w.cfg.Message.SendBurst)
	if err != nil {
		return err
	}
	if w.peers.remote != nil {
		if err := w.mountPublicClients(); err != nil {
			return err
		}
	}
	gw, err := gateway.New(gateway.Deps{
		Authenticator: authn, Sender: msgs, Reader: query.NewAsker(reads), Reads: msgs, Typing: msgs, Presence: pres,
	}, gatewayOptions(w.cfg, sends, w.logger))
	if err != nil {
		return err
	}
	w.ws = gw
	if err := w.subscribe(ctx, instanceName("gateway", w.cfg), gw.HandleEvent); err != nil {
		return err
	}
	w.run(func(ctx context.Context) error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return gw.Shutdown(sctx)
	})
	ep := gateway.MakeServerEndpoints(gw, w.cfg.ServiceToken, w.kit)
	w.peers.addGateway(w.cfg.Gateway.ID, ep)
	w.serve(func(s *grpcx.Server) { gatewaypb.RegisterGatewayServiceServer(s, gateway.NewGRPCServer(ep, w.logger)) })
	return nil
}

// mountPublicClients mounts every domain's HTTP routes over its client
// with no service credential: the routes are defined once, in their
// domains, whether the service runs here or elsewhere.
func (w *wiring) mountPublicClients() error {
	return errors.Join(
		mountPublic(w, discovery.Auth, auth.NewGRPCClient, auth.MakeHTTPHandler),
		mountPublic(w, discovery.User, user.NewGRPCClient, user.MakeHTTPHandler),
		mountPublic(w, discovery.Group, group.NewGRPCClient, group.MakeHTTPHandler),
		mountPublic(w, discovery.Message, message.NewGRPCClient, message.MakeHTTPHandler),
		mountPublic(w, discovery.Query, query.NewGRPCClient, query.MakeHTTPHandler),
		mountPublic(w, discovery.Presence, presence.NewGRPCClient, presence.MakeHTTPHandler),
		mountPublic(w, discovery.Pusher, pusher.NewGRPCClient, pusher.MakeHTTPHandler),
	)
}

// mountPublic mounts one domain's routes over its client's Endpoints.
func mountPublic[S any, E any](w *wiring, service string, client func(sd.Instancer, *grpcx.Conns, string, log.Logger) S, routes func(*mux.Router, E, log.Logger)) error {
	in, err := w.peers.instancer(service)
	if err != nil {
		return err
	}
	e, ok := any(client(in, w.peers.remote.conns, "", w.logger)).(E)
	if !ok {
		return fmt.Errorf("wiring: the %s client is not its Endpoints", service)
	}
	w.mount(func(r *mux.Router) { routes(r, e, w.logger) })
	return nil
}

// instanceName names this instance's own consumer group of
// beehive.events: every instance must hear every event.
func instanceName(role string, cfg config.Config) string {
	if role == "gateway" {
		return "gateway-" + cfg.Gateway.ID
	}
	return role + "-" + cfg.Gateway.ID + "-" + strings.ReplaceAll(cfg.GRPC.Addr, ":", "_")
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
		SendQueue: cfg.Gateway.SendQueue, PingInterval: cfg.Gateway.PingInterval, SyncHold: cfg.Gateway.SyncHold,
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

package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/gorilla/websocket"

	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/ratelimit"
	"github.com/beehive-im/beehive/shared/wire"
)

// Presence is the part of the presence service the gateway uses.
type Presence interface {
	UserOnline(ctx context.Context, s presence.Session) error
	UserOffline(ctx context.Context, userID, connID string) error
	Heartbeat(ctx context.Context, userID, connID string) error
}

// Deps are the gateway's collaborators; all are required.
type Deps struct {
	// Authenticator checks a socket's token before the upgrade.
	Authenticator identity.Authenticator
	// The services client frames are routed to.
	Sender   Sender
	Reader   Reader
	Reads    Reads
	Typing   Typing
	Presence Presence
}

// Defaults of Options. shared/config's defaults are these same constants.
const (
	// DefaultFrameLimit is the largest client frame. It must exceed
	// SendFrameBound of the message limits (config.Validate checks it): at
	// the message defaults a send frame may need about 135 KiB.
	DefaultFrameLimit = 256 << 10
	// DefaultFramesPerSecond and DefaultFrameBurst bound every client frame
	// of one socket.
	DefaultFramesPerSecond = 200
	DefaultFrameBurst      = 1000
	// DefaultSendsPerSecond and DefaultSendBurst bound `send` per user.
	DefaultSendsPerSecond = 50
	DefaultSendBurst      = 200
	// DefaultSyncHold is how long a new socket holds live pushes for the
	// client's first sync.
	DefaultSyncHold = 5 * time.Second
)

// Options configure the WebSocket edge. Zero values take the defaults.
type Options struct {
	// GatewayID names this instance to presence and the pusher.
	GatewayID string
	// AllowedOrigins: browser origins ("https://app.example.com", or "*")
	// allowed to open sockets. Requests without Origin (non-browser
	// clients) are always allowed; empty list = same host only.
	AllowedOrigins []string
	// FrameLimit is the largest client frame in bytes (DefaultFrameLimit).
	FrameLimit int64
	// SendQueue is how many frames may wait for one socket (default 256);
	// beyond that the socket is closed with 4009.
	SendQueue int
	// PingInterval between server pings (default 30 s); a socket that shows
	// no sign of life for PongWait (default 2 x PingInterval) is dropped,
	// checked at each ping round.
	PingInterval time.Duration
	PongWait     time.Duration
	// WriteWait bounds one frame write (default 10 s).
	WriteWait time.Duration
	// CloseGrace bounds writing the close frame (default 5 s).
	CloseGrace time.Duration
	// OpTimeout bounds each call a client frame makes (default 10 s).
	OpTimeout time.Duration
	// SendLimiter limits `send` per user (rate_limited error frames);
	// nil: DefaultSendsPerSecond, DefaultSendBurst.
	SendLimiter ratelimit.Keyed
	// FrameLimiter limits every client frame per socket; refusal closes
	// the socket with 4008. nil: DefaultFramesPerSecond, DefaultFrameBurst.
	FrameLimiter ratelimit.Keyed
	// MaxInvalidFrames in a row close the socket with 4400 (default 10).
	MaxInvalidFrames int
	// HeartbeatEvery is the least time between presence heartbeats of one
	// socket (default PingInterval).
	HeartbeatEvery time.Duration
	// SyncHold is how long a new socket holds live frames that carry a
	// conversation seq (`message`, `recalled`) waiting for the client's
	// first complete sync (default 5 s; each `synced` with has_more gives
	// another SyncHold for the next page); negative: no hold. See
	// reconcile.go.
	SyncHold time.Duration
	// ReadBufferSize is the first read buffer of a socket the poller cannot
	// watch (TLS, or not Linux), which a goroutine of its own reads (default
	// 512 B; it grows to fit a larger frame). Polled sockets share pooled
	// buffers and hold none while idle.
	ReadBufferSize int
	// GoroutinePerSocket reads every socket on a goroutine of its own even
	// where the poller works: the portable read path, which tests exercise
	// on Linux too.
	GoroutinePerSocket bool
	Logger             log.Logger
	Now                func() time.Time
}

func (o *Options) defaults() {
	if o.GatewayID == "" {
		o.GatewayID = "gw-1"
	}
	if o.FrameLimit <= 0 {
		o.FrameLimit = DefaultFrameLimit
	}
	if o.SendQueue <= 0 {
		o.SendQueue = 256
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 30 * time.Second
	}
	if o.PongWait <= 0 {
		o.PongWait = 2 * o.PingInterval
	}
	if o.WriteWait <= 0 {
		o.WriteWait = 10 * time.Second
	}
	if o.CloseGrace <= 0 {
		o.CloseGrace = 5 * time.Second
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 10 * time.Second
	}
	if o.SendLimiter == nil {
		o.SendLimiter = ratelimit.NewLocal(DefaultSendsPerSecond, DefaultSendBurst)
	}
	if o.FrameLimiter == nil {
		o.FrameLimiter = ratelimit.NewLocal(DefaultFramesPerSecond, DefaultFrameBurst)
	}
	if o.MaxInvalidFrames <= 0 {
		o.MaxInvalidFrames = 10
	}
	if o.HeartbeatEvery <= 0 {
		o.HeartbeatEvery = o.PingInterval
	}
	if o.SyncHold == 0 {
		o.SyncHold = DefaultSyncHold
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = 512
	}
	if o.Logger == nil {
		o.Logger = log.NewNopLogger()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Gateway holds this instance's sockets. It is the http.Handler of
// GET /v1/ws, the local Service (Deliver), and an events handler
// (HandleEvent) for session revocations.
//
// Lock order: Gateway.mu, then a conn's mu is never taken while holding
// Gateway.mu (Deliver copies the sockets out first); conn.mu is a leaf.
type Gateway struct {
	opts     Options
	deps     Deps
	upgrader websocket.Upgrader
	logger   log.Logger

	mu       sync.RWMutex
	users    map[string][]*conn
	conns    map[string]*conn // by conn id
	shutdown bool
	wg       sync.WaitGroup // sockets not yet finished

	// Started with the first socket: the pinger, and the poller that
	// reads idle sockets without a goroutine each (nil: none here).
	startOnce sync.Once
	poller    *poller
	stopPing  chan struct{}
}

var _ Service = (*Gateway)(nil)

// New returns a gateway. It fails when a dependency is missing.
func New(deps Deps, opts Options) (*Gateway, error) {
	switch {
	case deps.Authenticator == nil:
		return nil, errors.New("gateway: Deps.Authenticator is nil")
	case deps.Sender == nil:
		return nil, errors.New("gateway: Deps.Sender is nil")
	case deps.Reader == nil:
		return nil, errors.New("gateway: Deps.Reader is nil")
	case deps.Reads == nil:
		return nil, errors.New("gateway: Deps.Reads is nil")
	case deps.Typing == nil:
		return nil, errors.New("gateway: Deps.Typing is nil")
	case deps.Presence == nil:
		return nil, errors.New("gateway: Deps.Presence is nil")
	}
	opts.defaults()
	g := &Gateway{
		opts:     opts,
		deps:     deps,
		logger:   opts.Logger,
		users:    map[string][]*conn{},
		conns:    map[string]*conn{},
		stopPing: make(chan struct{}),
	}
	// gorilla/websocket does the handshake only; the gateway then reads
	// and writes frames itself (conn.go), so its buffers are dropped at once.
	g.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   128,
		WriteBufferPool:  &sync.Pool{},
		// The origin was checked before Upgrade, with a JSON refusal.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			code := errs.InvalidArgument
			if status >= 500 {
				code = errs.Internal
			}
			httpx.EncodeError(r.Context(), errs.New(code, reason.Error()), w)
		},
	}
	return g, nil
}

// ID is this gateway's id.
func (g *Gateway) ID() string { return g.opts.GatewayID }

// ServeHTTP is GET /v1/ws: origin, token and device are checked before the
// upgrade, so a refused client gets a JSON error with a status.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !websocket.IsWebSocketUpgrade(r) {
		httpx.EncodeError(ctx, errs.New(errs.InvalidArgument, "GET /v1/ws needs a WebSocket upgrade request"), w)
		return
	}
	if !g.originAllowed(r) {
		httpx.EncodeError(ctx, errs.New(errs.PermissionDenied, "origin not allowed"), w)
		return
	}
	q := r.URL.Query()
	tok := httpx.BearerToken(r)
	if tok == "" {
		tok = q.Get("token")
	}
	if tok == "" {
		httpx.EncodeError(ctx, identity.ErrNoToken, w)
		return
	}
	p, err := g.deps.Authenticator.Authenticate(ctx, tok)
	if err == nil && p.UserID == "" {
		err = errs.New(errs.Unauthenticated, "token names no user")
	}
	if err != nil {
		httpx.EncodeError(ctx, err, w)
		return
	}
	device := q.Get("device_id")
	if device != "" {
		if err := ids.ValidateDeviceID(device); err != nil {
			httpx.EncodeError(ctx, err, w)
			return
		}
	}
	if device == "" {
		device = p.DeviceID
	}
	if device == "" {
		device = ids.New()
	}
	p.DeviceID = device
	g.mu.RLock()
	down := g.shutdown
	g.mu.RUnlock()
	if down {
		httpx.EncodeError(ctx, ErrShuttingDown, w)
		return
	}

	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	g.start()
	c := newConn(g, ws.NetConn(), p, g.opts.Now())
	polled := g.poller != nil && g.poller.attach(c)
	if !g.add(c) {
		c.refuse(wire.CloseGoingAway, "server shutting down")
		return
	}
	g.online(c)
	// This handler returns either way, so the HTTP server frees the
	// request, its buffers and its stack, which an idle socket would
	// otherwise keep for its whole life.
	if !polled {
		go c.readLoop()
		return
	}
	if err := g.poller.watch(c); err != nil {
		_ = level.Warn(g.logger).Log("msg", "poller refused socket", "connId", c.id, "err", err)
		c.finish()
	}
}

// start starts the pinger and the poller with the first socket.
func (g *Gateway) start() {
	g.startOnce.Do(func() {
		go g.pinger()
		if g.opts.GoroutinePerSocket {
			return
		}
		p, err := newPoller(func(err error) {
			_ = level.Error(g.logger).Log("msg", "socket poller stopped", "err", err)
		})
		if err != nil {
			_ = level.Info(g.logger).Log("msg", "no socket poller: a goroutine reads each socket", "err", err)
		} else {
			g.poller = p
		}
	})
}

func (g *Gateway) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if len(g.opts.AllowedOrigins) == 0 {
		return strings.EqualFold(u.Host, r.Host)
	}
	for _, a := range g.opts.AllowedOrigins {
		if a == "*" || strings.EqualFold(strings.TrimRight(a, "/"), origin) {
			return true
		}
	}
	return false
}

// add registers c; false once shutting down.
func (g *Gateway) add(c *conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shutdown {
		return false
	}
	g.conns[c.id] = c
	g.users[c.p.UserID] = append(g.users[c.p.UserID], c)
	g.wg.Add(1)
	return true
}

// remove unregisters c (idempotent).
func (g *Gateway) remove(c *conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.conns[c.id]; !ok {
		return
	}
	delete(g.conns, c.id)
	list := g.users[c.p.UserID]
	for i, x := range list {
		if x == c {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(g.users, c.p.UserID)
	} else {
		g.users[c.p.UserID] = list
	}
}

// Connections is the number of open sockets.
func (g *Gateway) Connections() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.conns)
}

// UserConnections returns the conn ids of userID's sockets here.
func (g *Gateway) UserConnections(userID string) []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]string, 0, len(g.users[userID]))
	for _, c := range g.users[userID] {
		out = append(out, c.id)
	}
	return out
}

func (g *Gateway) presenceCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(identity.AsService(context.Background()), g.opts.OpTimeout)
}

func (g *Gateway) online(c *conn) {
	ctx, cancel := g.presenceCtx()
	defer cancel()
	err := g.deps.Presence.UserOnline(ctx, presence.Session{
		UserID: c.p.UserID, GatewayID: g.opts.GatewayID, ConnID: c.id, DeviceID: c.p.DeviceID, Since: c.since,
	})
	if err != nil {
		_ = level.Warn(g.logger).Log("msg", "presence online failed", "userId", c.p.UserID, "connId", c.id, "err", err)
	}
}

func (g *Gateway) offline(c *conn) {
	ctx, cancel := g.presenceCtx()
	defer cancel()
	if err := g.deps.Presence.UserOffline(ctx, c.p.UserID, c.id); err != nil {
		_ = level.Warn(g.logger).Log("msg", "presence offline failed", "userId", c.p.UserID, "connId", c.id, "err", err)
	}
}

// heartbeat refreshes c's presence session, registering it again when the
// presence service forgot it (expired, or restarted).
func (g *Gateway) heartbeat(c *conn) {
	ctx, cancel := g.presenceCtx()
	defer cancel()
	err := g.deps.Presence.Heartbeat(ctx, c.p.UserID, c.id)
	if errs.HasCode(err, errs.NotFound) {
		g.online(c)
		return
	}
	if err != nil {
		_ = level.Warn(g.logger).Log("msg", "presence heartbeat failed", "userId", c.p.UserID, "connId", c.id, "err", err)
	}
}

// Deliver queues req.Frame and req.More on every local socket of
// req.UserIDs, each frame but on its except socket, all of a socket's
// frames as one queue entry (one write). Frames that carry a
// conversation seq are reconciled with the socket's sync answers
// (reconcile.go): held while the socket waits for a sync, dropped when
// the socket has that seq. It never blocks on a socket.
func (g *Gateway) Deliver(_ context.Context, req wire.DeliverRequest) (int, error) {
	if len(req.UserIDs) == 0 {
		return 0, errs.Missing("user_ids")
	}
	if len(req.UserIDs) > MaxDeliverUsers {
		return 0, errs.Invalid("user_ids", "too many users")
	}
	if len(req.More) >= MaxDeliverFrames {
		return 0, errs.Invalid("more", "too many frames")
	}
	frames := make([]wire.DeliverFrame, 0, 1+len(req.More))
	frames = append(frames, wire.DeliverFrame{Frame: req.Frame, ExceptConn: req.ExceptConn})
	frames = append(frames, req.More...)
	live := make([]liveFrame, len(frames))
	for i := range frames {
		field := "frame"
		if i > 0 {
			field = "more"
		}
		if len(frames[i].Frame) == 0 {
			return 0, errs.Missing(field)
		}
		conv, seq, valid := probeFrame(frames[i].Frame)
		if !valid {
			return 0, errs.Invalid(field, "must be one JSON server frame")
		}
		live[i] = liveFrame{b: frames[i].Frame, conv: conv, seq: seq}
		frames[i].ExceptConn = g.localConn(frames[i].ExceptConn)
	}
	var targets []*conn
	g.mu.RLock()
	for _, u := range req.UserIDs {
		targets = append(targets, g.users[u]...)
	}
	g.mu.RUnlock()
	n := 0
	for _, c := range targets {
		mine := live
		for _, f := range frames {
			if f.ExceptConn == c.id {
				mine = make([]liveFrame, 0, len(live))
				for j := range frames {
					if frames[j].ExceptConn != c.id {
						mine = append(mine, live[j])
					}
				}
				break
			}
		}
		if len(mine) > 0 && c.deliver(mine) {
			n++
		}
	}
	return n, nil
}

// localConn is the conn id of except when it names a socket of this
// gateway ("<gateway_id>/<conn_id>" or a bare conn id), else "".
func (g *Gateway) localConn(except string) string {
	if gw, conn, ok := strings.Cut(except, "/"); ok {
		if gw != g.opts.GatewayID {
			return "" // another gateway's socket: nothing to skip here
		}
		return conn
	}
	return except
}

// HandleEvent reacts to domain events; subscribe it to the events bus.
// SessionRevoked closes the session's sockets (every session of the user
// when SessionID is empty) with 4001.
func (g *Gateway) HandleEvent(_ context.Context, e events.Event) {
	if e.Type != events.SessionRevoked || (e.UserID == "" && e.SessionID == "") {
		return
	}
	var victims []*conn
	g.mu.RLock()
	if e.UserID != "" {
		for _, c := range g.users[e.UserID] {
			if e.SessionID == "" || c.p.SessionID == e.SessionID {
				victims = append(victims, c)
			}
		}
	} else {
		for _, c := range g.conns {
			if c.p.SessionID == e.SessionID {
				victims = append(victims, c)
			}
		}
	}
	g.mu.RUnlock()
	for _, c := range victims {
		c.closeWith(wire.CloseSessionRevoked, "session revoked")
	}
}

// Shutdown refuses new sockets, closes every open one with 1001 and waits
// for them to finish (or ctx to end).
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	first := !g.shutdown
	g.shutdown = true
	all := make([]*conn, 0, len(g.conns))
	for _, c := range g.conns {
		all = append(all, c)
	}
	g.mu.Unlock()
	if first {
		g.startOnce.Do(func() {}) // never start the pinger or poller after this
		close(g.stopPing)
	}
	for _, c := range all {
		c.closeWith(wire.CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		if first && g.poller != nil {
			g.poller.close()
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pinger pings every socket each PingInterval and drops those silent for
// PongWait: one timer for the whole gateway rather than one per socket.
// Pings to idle sockets are written at once (conn.enqueue), so a ping
// round starts no goroutines.
func (g *Gateway) pinger() {
	t := time.NewTicker(g.opts.PingInterval)
	defer t.Stop()
	var batch []*conn
	for {
		select {
		case <-g.stopPing:
			return
		case <-t.C:
		}
		batch = batch[:0]
		g.mu.RLock()
		for _, c := range g.conns {
			batch = append(batch, c)
		}
		g.mu.RUnlock()
		silentSince := time.Now().Add(-g.opts.PongWait).UnixNano()
		for _, c := range batch {
			if c.lastSeen.Load() < silentSince {
				go c.finish() // finish tells presence: not on this goroutine
				continue
			}
			c.enqueue(item{op: opPing})
		}
		clear(batch)
	}
}

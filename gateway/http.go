package gateway

import (
	"bufio"
	"net"
	"net/http"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/logging"
	"github.com/beehive-im/beehive/shared/ratelimit"
)

// HTTPOptions configure the public HTTP handler.
type HTTPOptions struct {
	// WS serves GET /v1/ws (the *Gateway); nil leaves the route out.
	WS http.Handler
	// BodyLimit of request bodies (default 1 MiB).
	BodyLimit int64
	// IPLimiter limits requests per client IP (429); nil: no limit. The
	// operational routes are not limited.
	IPLimiter ratelimit.Keyed
	// Gatherer serves /metrics (default the Prometheus default gatherer).
	Gatherer prometheus.Gatherer
	// Checks are /ready's dependency checks.
	Checks func() []httpx.Check
	Logger log.Logger
}

// NewHTTPHandler builds the public router: /health, /ready, /metrics,
// GET /v1/ws, and every domain's routes added by mounts (e.g.
// func(r *mux.Router) { user.MakeHTTPHandler(r, userEndpoints, logger) }),
// behind request logging (tokens in query strings redacted), the per-IP
// limit, the body limit and panic recovery.
func NewHTTPHandler(opts HTTPOptions, mounts ...func(*mux.Router)) http.Handler {
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	r := httpx.NewRouter()
	httpx.MountOps(r, opts.Gatherer, opts.Checks)
	if opts.WS != nil {
		r.Methods(http.MethodGet).Path("/v1/ws").Handler(opts.WS)
	}
	for _, m := range mounts {
		m(r)
	}
	var h http.Handler = httpx.Harden(r, opts.BodyLimit, opts.Logger)
	h = limitPerIP(h, opts.IPLimiter)
	return logRequests(h, opts.Logger)
}

func opsPath(p string) bool { return p == "/health" || p == "/ready" || p == "/metrics" }

func limitPerIP(next http.Handler, lim ratelimit.Keyed) http.Handler {
	if lim == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !opsPath(r.URL.Path) {
			ok, err := lim.Allow(r.Context(), httpx.ClientIP(r))
			if err == nil && !ok {
				httpx.EncodeError(r.Context(), errs.New(errs.RateLimited, "too many requests from this address"), w)
				return
			}
			// A limiter failure lets the request through: the limit
			// protects the service, it must not take it down.
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status; Unwrap and Hijack keep the WebSocket
// upgrade working through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err == nil {
		s.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

func logRequests(next http.Handler, logger log.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		l := logger
		if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 {
			l = log.With(l, "requestId", id)
		}
		lv := level.Info
		if status >= 500 {
			lv = level.Warn
		}
		_ = lv(l).Log("msg", "http request", "method", r.Method, "path", r.URL.Path,
			"query", logging.RedactToken(r.URL.RawQuery), "status", status,
			"ip", httpx.ClientIP(r), "took", time.Since(start).String())
	})
}

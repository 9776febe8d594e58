// Package httpx holds the HTTP plumbing every service shares: go-kit server
// options, JSON decoding with size limits, the one error encoder, and the
// operational routes /health, /ready and /metrics.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	httptransport "github.com/go-kit/kit/transport/http"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/logging"
)

// DefaultBodyLimit is the request body limit of PROTOCOL.md (1 MiB).
const DefaultBodyLimit = 1 << 20

// StatusCoder lets a response choose its HTTP status (201 on create).
type StatusCoder interface{ StatusCode() int }

// ServerOptions are the go-kit options every route uses: request id, bearer
// token and client IP into the context, and the one error encoder.
func ServerOptions(logger log.Logger) []httptransport.ServerOption {
	return []httptransport.ServerOption{
		httptransport.ServerBefore(PopulateContext),
		httptransport.ServerErrorEncoder(EncodeError),
		httptransport.ServerErrorHandler(errorLogger{logger}),
	}
}

type errorLogger struct{ log.Logger }

func (l errorLogger) Handle(ctx context.Context, err error) {
	if errs.IsInfrastructure(err) {
		_ = level.Error(logging.With(ctx, l.Logger)).Log("msg", "http request failed", "err", err)
	}
}

// PopulateContext moves request metadata into ctx.
func PopulateContext(ctx context.Context, r *http.Request) context.Context {
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 64 {
		id = logging.NewRequestID()
	}
	ctx = logging.WithRequestID(ctx, id)
	if tok := BearerToken(r); tok != "" {
		ctx = identity.WithToken(ctx, tok)
	}
	return identity.WithClientIP(ctx, ClientIP(r))
}

// BearerToken returns the token of "Authorization: Bearer x", or "".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// ClientIP is the remote address without port.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// DecodeJSON decodes the body into v, answering too_large for an oversized
// body and invalid_argument for anything that is not one JSON object.
func DecodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return errs.Newf(errs.TooLarge, "request body exceeds %d bytes", mbe.Limit)
		case errors.Is(err, io.EOF):
			return errs.New(errs.InvalidArgument, "request body is empty: a JSON object is required")
		case errors.As(err, &te):
			return errs.Invalid(te.Field, fmt.Sprintf("must be a JSON %s", te.Type.String()))
		case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
			return errs.New(errs.InvalidArgument, "malformed JSON body")
		default:
			return errs.Wrap(errs.InvalidArgument, err, "malformed JSON body")
		}
	}
	if dec.More() {
		return errs.New(errs.InvalidArgument, "malformed JSON body: trailing data")
	}
	return nil
}

// DecodeOptionalJSON is DecodeJSON that accepts an empty body.
func DecodeOptionalJSON(r *http.Request, v any) error {
	err := DecodeJSON(r, v)
	if err != nil && strings.Contains(err.Error(), "request body is empty") {
		return nil
	}
	return err
}

// EncodeResponse writes resp as JSON, or its business error.
func EncodeResponse(ctx context.Context, w http.ResponseWriter, resp any) error {
	if f, ok := resp.(endpointx.Failer); ok && f.Failed() != nil {
		EncodeError(ctx, f.Failed(), w)
		return nil
	}
	status := http.StatusOK
	if sc, ok := resp.(StatusCoder); ok {
		status = sc.StatusCode()
	}
	return WriteJSON(w, status, resp)
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if status == http.StatusNoContent {
		return nil
	}
	return json.NewEncoder(w).Encode(v)
}

// EncodeError writes the PROTOCOL.md error body with the mapped status.
func EncodeError(_ context.Context, err error, w http.ResponseWriter) {
	pub := errs.Public(err)
	if d := errs.RetryAfter(pub); d > 0 {
		// Whole seconds, rounded up: a client that waits as told finds
		// the hint's time passed.
		w.Header().Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
	_ = WriteJSON(w, errs.HTTPStatus(pub.Code), errs.Body{Error: pub})
}

// Var returns a mux path variable.
func Var(r *http.Request, name string) string { return mux.Vars(r)[name] }

// Harden wraps h with the body limit and panic recovery: a client never
// sees a crash, only a JSON error.
func Harden(h http.Handler, bodyLimit int64, logger log.Logger) http.Handler {
	if bodyLimit <= 0 {
		bodyLimit = DefaultBodyLimit
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				_ = level.Error(logger).Log("msg", "panic in handler", "path", r.URL.Path, "panic", fmt.Sprint(p))
				EncodeError(r.Context(), errs.New(errs.Internal, "internal error"), w)
			}
		}()
		if r.ContentLength > bodyLimit {
			EncodeError(r.Context(), errs.Newf(errs.TooLarge, "request body exceeds %d bytes", bodyLimit), w)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, bodyLimit)
		h.ServeHTTP(w, r)
	})
}

// NewRouter returns a mux whose 404 and 405 answers are JSON errors.
func NewRouter() *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		EncodeError(r.Context(), errs.Newf(errs.NotFound, "no route %s %s", r.Method, r.URL.Path), w)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "")
		_ = WriteJSON(w, http.StatusMethodNotAllowed, errs.Body{Error: errs.Newf("method_not_allowed", "method %s not allowed on %s", r.Method, r.URL.Path)})
	})
	return r
}

// Check reports whether one dependency is usable.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// MountOps adds /health (liveness), /ready (every check passes, else 503
// naming the failing dependencies) and /metrics.
func MountOps(r *mux.Router, gatherer prometheus.Gatherer, checks func() []Check) {
	r.Methods(http.MethodGet).Path("/health").HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Methods(http.MethodGet).Path("/ready").HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		defer cancel()
		failing := map[string]string{}
		if checks != nil {
			for _, c := range checks() {
				if err := c.Check(ctx); err != nil {
					failing[c.Name] = err.Error()
				}
			}
		}
		if len(failing) > 0 {
			names := make([]string, 0, len(failing))
			for n := range failing {
				names = append(names, n)
			}
			_ = WriteJSON(w, http.StatusServiceUnavailable, map[string]any{
				"status":  "unavailable",
				"error":   errs.Newf(errs.Unavailable, "not ready: %s", strings.Join(names, ", ")),
				"failing": failing,
			})
			return
		}
		_ = WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	r.Methods(http.MethodGet).Path("/metrics").Handler(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
}

// Timeouts of an HTTP server.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// DefaultTimeouts suit an API server; WebSocket handlers hijack the
// connection and are not bound by Write.
var DefaultTimeouts = Timeouts{ReadHeader: 5 * time.Second, Read: 30 * time.Second, Write: 30 * time.Second, Idle: 120 * time.Second}

// NewServer returns an http.Server with timeouts set.
func NewServer(addr string, h http.Handler, t Timeouts) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    64 << 10,
	}
}

// Serve runs srv on ln until ctx is done, then shuts it down gracefully.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

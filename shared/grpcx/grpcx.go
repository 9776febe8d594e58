// Package grpcx holds the gRPC plumbing every service shares: a server with
// reflection, the standard health service, panic recovery and the one error
// mapping; client options that forward identity; and load-balanced client
// endpoints over a discovery instancer.
package grpcx

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/lb"
	grpctransport "github.com/go-kit/kit/transport/grpc"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/logging"
)

// Metadata keys.
const (
	MDAuthorization = "authorization"
	MDServiceToken  = "x-beehive-service-token"
	MDRequestID     = "x-request-id"
	errorDomain     = "beehive"
)

// DefaultMaxMessageSize is the largest gRPC message a server receives and
// a client accepts (config grpc.max_message_size); grpc-go's own default.
// It must exceed the largest send the edge forwards (config.Validate).
const DefaultMaxMessageSize = 4 << 20

// MaxMessageSize sets the largest message a server receives (n <= 0:
// DefaultMaxMessageSize).
func MaxMessageSize(n int) grpc.ServerOption {
	if n <= 0 {
		n = DefaultMaxMessageSize
	}
	return grpc.MaxRecvMsgSize(n)
}

// CallMessageSize sets the largest message a client connection sends or
// receives (n <= 0: DefaultMaxMessageSize); give it to NewConns.
func CallMessageSize(n int) grpc.DialOption {
	if n <= 0 {
		n = DefaultMaxMessageSize
	}
	return grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(n), grpc.MaxCallSendMsgSize(n))
}

// Server is a gRPC server with its health service.
type Server struct {
	*grpc.Server
	Health *health.Server
}

// NewServer returns a server with reflection, the standard health service,
// and interceptors for context population, recovery and error mapping. It
// receives messages up to DefaultMaxMessageSize unless opts hold a
// MaxMessageSize (later options win).
func NewServer(logger log.Logger, opts ...grpc.ServerOption) *Server {
	opts = append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unaryInterceptor(logger)),
		MaxMessageSize(DefaultMaxMessageSize),
	}, opts...)
	s := grpc.NewServer(opts...)
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	reflection.Register(s)
	return &Server{Server: s, Health: h}
}

func unaryInterceptor(logger log.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				_ = level.Error(logger).Log("msg", "panic in grpc handler", "method", info.FullMethod, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				err = ToStatus(errs.New(errs.Internal, "internal error"))
			}
		}()
		ctx = PopulateContext(ctx)
		resp, err = handler(ctx, req)
		if err != nil {
			if errs.IsInfrastructure(err) {
				_ = level.Error(logging.With(ctx, logger)).Log("msg", "grpc call failed", "method", info.FullMethod, "err", err)
			}
			return nil, ToStatus(err)
		}
		return resp, nil
	}
}

// TrustServiceToken makes a call that carries no user token but the right
// service credential an internal call (identity.Principal{Service: true}),
// so internal callers may use public methods on a user's behalf (the
// request names the user; identity.Actor). A user token always wins: a
// call carrying one acts as that user. Servers of the distributed mode
// use it; the gateway's HTTP routes forward only user tokens.
func TrustServiceToken(secret string) grpc.ServerOption {
	return grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if secret != "" && identity.Token(ctx) == "" {
			if got := identity.ServiceToken(ctx); got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(secret)) == 1 {
				ctx = identity.AsService(ctx)
			}
		}
		return handler(ctx, req)
	})
}

// PopulateContext moves incoming metadata into ctx: request id, bearer
// token, service credential.
func PopulateContext(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	id := first(MDRequestID)
	if id == "" || len(id) > 64 {
		id = logging.NewRequestID()
	}
	ctx = logging.WithRequestID(ctx, id)
	if a := first(MDAuthorization); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		ctx = identity.WithToken(ctx, strings.TrimSpace(a[7:]))
	}
	if s := first(MDServiceToken); s != "" {
		ctx = identity.WithServiceToken(ctx, s)
	}
	return ctx
}

// ToStatus maps err to a gRPC status carrying the Beehive code.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && errs.CodeOf(err) == errs.Internal {
		return err // already a status (e.g. from a nested client call)
	}
	pub := errs.Public(err)
	st := status.New(errs.GRPCCode(pub.Code), pub.Message)
	info := &errdetails.ErrorInfo{Reason: string(pub.Code), Domain: errorDomain}
	if pub.Field != "" {
		info.Metadata = map[string]string{"field": pub.Field}
	}
	details := []protoadapt.MessageV1{info}
	if d := errs.RetryAfter(pub); d > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
	}
	if withDetails, derr := st.WithDetails(details...); derr == nil {
		st = withDetails
	}
	return st.Err()
}

// FromStatus turns a gRPC error back into *errs.Error, so a remote service
// fails with the same codes as a local one.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	var (
		coded *errs.Error
		retry time.Duration
	)
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.Domain == errorDomain {
				coded = &errs.Error{Code: errs.Code(d.Reason), Message: st.Message(), Field: d.Metadata["field"]}
			}
		case *errdetails.RetryInfo:
			retry = d.GetRetryDelay().AsDuration()
		}
	}
	if coded != nil {
		coded.RetryAfter = retry
		return coded
	}
	switch st.Code() {
	case 14: // Unavailable: connection refused, instance gone
		return errs.Wrap(errs.Unavailable, err, "service unavailable")
	case 4:
		return errs.Wrap(errs.DeadlineExceeded, err, "deadline exceeded")
	case 1:
		return errs.Wrap(errs.Canceled, err, "canceled")
	}
	return errs.Wrap(errs.Internal, err, "remote call failed")
}

// ClientOptions forward the caller's identity and request id, and add the
// service credential for internal RPCs.
func ClientOptions(serviceToken string) []grpctransport.ClientOption {
	return []grpctransport.ClientOption{grpctransport.ClientBefore(func(ctx context.Context, md *metadata.MD) context.Context {
		if tok := identity.Token(ctx); tok != "" {
			md.Set(MDAuthorization, "Bearer "+tok)
		}
		if serviceToken != "" {
			md.Set(MDServiceToken, serviceToken)
		}
		if id := logging.RequestID(ctx); id != "" {
			md.Set(MDRequestID, id)
		}
		return ctx
	})}
}

// ClientErrors converts status errors of a client endpoint to *errs.Error.
func ClientErrors(next endpoint.Endpoint) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		resp, err := next(ctx, req)
		return resp, FromStatus(err)
	}
}

// ServerOptions are the go-kit server options of every domain's gRPC
// transport: the interceptor of NewServer logs infrastructure failures
// once, so go-kit's own error handler does nothing.
func ServerOptions() []grpctransport.ServerOption {
	return []grpctransport.ServerOption{grpctransport.ServerErrorHandler(nopErrorHandler{})}
}

type nopErrorHandler struct{}

func (nopErrorHandler) Handle(context.Context, error) {}

// Serve runs one go-kit gRPC handler and returns its reply as the
// generated response type T (the body of every server method).
func Serve[T any](h grpctransport.Handler, ctx context.Context, req any) (T, error) {
	_, resp, err := h.ServeGRPC(ctx, req)
	if err != nil {
		var zero T
		return zero, err
	}
	return resp.(T), nil
}

// Dial opens a client connection (plaintext inside the cluster network).
func Dial(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
}

// Conns shares one *grpc.ClientConn per instance address among every
// endpoint of every client in the process.
type Conns struct {
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
	opts  []grpc.DialOption
}

// NewConns returns an empty pool whose connections are dialed with opts
// (e.g. CallMessageSize).
func NewConns(opts ...grpc.DialOption) *Conns {
	return &Conns{conns: map[string]*grpc.ClientConn{}, opts: opts}
}

// Get returns the connection for addr, dialing once.
func (c *Conns) Get(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.conns[addr]; ok {
		return cc, nil
	}
	cc, err := Dial(addr, c.opts...)
	if err != nil {
		return nil, err
	}
	c.conns[addr] = cc
	return cc, nil
}

// Close closes every connection.
func (c *Conns) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, cc := range c.conns {
		_ = cc.Close()
		delete(c.conns, k)
	}
	return nil
}

// MakeEndpoint builds one method's client endpoint on a connection.
type MakeEndpoint func(cc *grpc.ClientConn) endpoint.Endpoint

// BalanceOptions tune Balanced.
type BalanceOptions struct {
	Retries int
	Timeout time.Duration
	Breaker endpointx.BreakerSettings
	// Balancer overrides round robin. It is given an endpointer that keeps
	// each endpoint's instance address, so it can choose by instance
	// identity (the message client ranks instances per conversation by
	// rendezvous hashing on it).
	Balancer func(*InstanceEndpointer) lb.Balancer
}

// Balanced returns an endpoint that resolves instances through instancer,
// wraps each in its own named breaker, and retries across them with
// lb.Retry within opts.Timeout. A dead instance is skipped; no instance at
// all fails fast with unavailable.
func Balanced(name string, instancer sd.Instancer, conns *Conns, mk MakeEndpoint, logger log.Logger, opts BalanceOptions) endpoint.Endpoint {
	if opts.Retries <= 0 {
		opts.Retries = 3
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	factory := func(instance string) (endpoint.Endpoint, io.Closer, error) {
		cc, err := conns.Get(instance)
		if err != nil {
			return nil, nil, err
		}
		e := ClientErrors(mk(cc))
		// Each attempt gets half the whole call's time: an instance that
		// hangs fails its attempt (which its breaker counts) while the
		// retry still has time for another instance.
		e = endpointx.Timeout(opts.Timeout / 2)(e)
		e = endpointx.Breaker(name+"@"+instance, opts.Breaker)(e)
		return e, nil, nil
	}
	var balancer lb.Balancer
	if opts.Balancer != nil {
		balancer = opts.Balancer(NewInstanceEndpointer(instancer, factory, logger))
	} else {
		balancer = lb.NewRoundRobin(sd.NewEndpointer(instancer, factory, logger))
	}
	retry := lb.RetryWithCallback(opts.Timeout, balancer, func(n int, err error) (bool, error) {
		if errors.Is(err, lb.ErrNoEndpoints) && n < opts.Retries {
			// The endpointer learns instances asynchronously (just after
			// construction, or while Consul reports none passing): give
			// it a moment rather than failing at once.
			time.Sleep(time.Duration(n) * 50 * time.Millisecond)
			return true, err
		}
		// Only infrastructure failures are worth another instance; a
		// business refusal would be refused again.
		return n < opts.Retries && errs.IsInfrastructure(err), err
	})
	return func(ctx context.Context, req any) (any, error) {
		resp, err := retry(ctx, req)
		if err != nil {
			if re, ok := err.(lb.RetryError); ok && re.Final != nil {
				err = re.Final
			}
			if err == lb.ErrNoEndpoints {
				err = errs.Wrap(errs.Unavailable, err, name+": no instance available")
			}
		}
		return resp, err
	}
}

// Listen opens a TCP listener, with a clear error naming the address.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

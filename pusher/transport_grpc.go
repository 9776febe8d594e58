package pusher

import (
	"context"

	"github.com/go-kit/kit/sd"
	grpctransport "github.com/go-kit/kit/transport/grpc"
	"github.com/go-kit/log"
	"google.golang.org/grpc"

	"github.com/beehive-im/beehive/pusher/pusherpb"
	"github.com/beehive-im/beehive/shared/grpcx"
)

type grpcServer struct {
	pusherpb.UnimplementedPusherServiceServer
	register, unregister grpctransport.Handler
}

// NewGRPCServer serves e as pusherpb.PusherServiceServer.
func NewGRPCServer(e Endpoints, logger log.Logger) pusherpb.PusherServiceServer {
	opts := grpcx.ServerOptions()
	return &grpcServer{
		register:   grpctransport.NewServer(e.RegisterDeviceEndpoint, decRegisterReq, encRegisterResp, opts...),
		unregister: grpctransport.NewServer(e.UnregisterDeviceEndpoint, decUnregisterReq, encEmptyResp(func() any { return &pusherpb.UnregisterDeviceResponse{} }), opts...),
	}
}

func (s *grpcServer) RegisterDevice(ctx context.Context, r *pusherpb.RegisterDeviceRequest) (*pusherpb.RegisterDeviceResponse, error) {
	_, resp, err := s.register.ServeGRPC(ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.(*pusherpb.RegisterDeviceResponse), nil
}

func (s *grpcServer) UnregisterDevice(ctx context.Context, r *pusherpb.UnregisterDeviceRequest) (*pusherpb.UnregisterDeviceResponse, error) {
	_, resp, err := s.unregister.ServeGRPC(ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.(*pusherpb.UnregisterDeviceResponse), nil
}

// Server-side codecs. A business error becomes the handler's error, which
// the grpcx interceptor maps to a status with the Beehive code.

func decRegisterReq(_ context.Context, r any) (any, error) {
	req := r.(*pusherpb.RegisterDeviceRequest)
	return RegisterDeviceRequest{UserID: req.GetUserId(), Registration: DeviceRegistration{
		DeviceID: req.GetDeviceId(), Platform: req.GetPlatform(), PushToken: req.GetPushToken(),
	}}, nil
}

func decUnregisterReq(_ context.Context, r any) (any, error) {
	req := r.(*pusherpb.UnregisterDeviceRequest)
	return UnregisterDeviceRequest{UserID: req.GetUserId(), DeviceID: req.GetDeviceId()}, nil
}

func encRegisterResp(_ context.Context, resp any) (any, error) {
	r := resp.(DeviceResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	d := r.Device
	out := &pusherpb.Device{DeviceId: d.DeviceID, Platform: d.Platform, PushToken: d.PushToken, UpdatedAt: grpcx.Timestamp(d.UpdatedAt)}
	return &pusherpb.RegisterDeviceResponse{Device: out}, nil
}

func encEmptyResp(mk func() any) grpctransport.EncodeResponseFunc {
	return func(_ context.Context, resp any) (any, error) {
		if err := resp.(EmptyResponse).Err; err != nil {
			return nil, err
		}
		return mk(), nil
	}
}

// Client side.

const grpcService = "beehive.pusher.v1.PusherService"

// NewGRPCClient returns a Service calling the instances instancer finds,
// through one shared connection per instance, retries and breakers. A
// non-empty serviceToken makes the calls internal ones acting for the
// userID each method names; otherwise the caller's user token (in ctx) is
// forwarded and decides the user.
func NewGRPCClient(instancer sd.Instancer, conns *grpcx.Conns, serviceToken string, logger log.Logger) Service {
	return NewGRPCClientEndpoints(grpcx.BalancedClient("pusher", grpcService, instancer, conns, serviceToken, logger, grpcx.BalanceOptions{}))
}

// NewGRPCClientConn returns a Service over one connection (tests, and
// static single-address setups).
func NewGRPCClientConn(cc *grpc.ClientConn, serviceToken string) Service {
	return NewGRPCClientEndpoints(grpcx.ConnClient(cc, grpcService, serviceToken))
}

// NewGRPCClientEndpoints builds the client Endpoints with mk making each
// method's endpoint.
func NewGRPCClientEndpoints(mk grpcx.ClientEndpoint) Endpoints {
	empty := func(_ context.Context, _ any) (any, error) { return EmptyResponse{}, nil }
	return Endpoints{
		RegisterDeviceEndpoint: mk("RegisterDevice", func(_ context.Context, r any) (any, error) {
			req := r.(RegisterDeviceRequest)
			return &pusherpb.RegisterDeviceRequest{UserId: req.UserID, DeviceId: req.Registration.DeviceID,
				Platform: req.Registration.Platform, PushToken: req.Registration.PushToken}, nil
		}, func(_ context.Context, r any) (any, error) {
			d := r.(*pusherpb.RegisterDeviceResponse).GetDevice()
			out := Device{DeviceID: d.GetDeviceId(), Platform: d.GetPlatform(), PushToken: d.GetPushToken(), UpdatedAt: grpcx.Time(d.GetUpdatedAt())}
			return DeviceResponse{Device: out}, nil
		}, pusherpb.RegisterDeviceResponse{}),
		UnregisterDeviceEndpoint: mk("UnregisterDevice", func(_ context.Context, r any) (any, error) {
			req := r.(UnregisterDeviceRequest)
			return &pusherpb.UnregisterDeviceRequest{UserId: req.UserID, DeviceId: req.DeviceID}, nil
		}, empty, pusherpb.UnregisterDeviceResponse{}),
	}
}

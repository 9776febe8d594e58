package presence

import (
	"context"

	"github.com/go-kit/kit/sd"
	grpctransport "github.com/go-kit/kit/transport/grpc"
	"github.com/go-kit/log"
	"google.golang.org/grpc"

	"github.com/beehive-im/beehive/presence/presencepb"
	"github.com/beehive-im/beehive/shared/grpcx"
)

type grpcServer struct {
	presencepb.UnimplementedPresenceServiceServer
	userOnline, userOffline, heartbeat         grpctransport.Handler
	getUserPresence, isUserOnline, getOnlineUs grpctransport.Handler
}

// NewGRPCServer serves e as presencepb.PresenceServiceServer.
func NewGRPCServer(e Endpoints, logger log.Logger) presencepb.PresenceServiceServer {
	opts := grpcx.ServerOptions()
	return &grpcServer{
		userOnline:      grpctransport.NewServer(e.UserOnlineEndpoint, decUserOnlineReq, encEmptyResp(func() any { return &presencepb.UserOnlineResponse{} }), opts...),
		userOffline:     grpctransport.NewServer(e.UserOfflineEndpoint, decUserOfflineReq, encEmptyResp(func() any { return &presencepb.UserOfflineResponse{} }), opts...),
		heartbeat:       grpctransport.NewServer(e.HeartbeatEndpoint, decHeartbeatReq, encEmptyResp(func() any { return &presencepb.HeartbeatResponse{} }), opts...),
		getUserPresence: grpctransport.NewServer(e.GetUserPresenceEndpoint, decUsersReq(func(r any) []string { return r.(*presencepb.GetUserPresenceRequest).GetUserIds() }), encUserPresenceResp, opts...),
		isUserOnline:    grpctransport.NewServer(e.IsUserOnlineEndpoint, decIsUserOnlineReq, encIsUserOnlineResp, opts...),
		getOnlineUs:     grpctransport.NewServer(e.GetOnlineUsersEndpoint, decUsersReq(func(r any) []string { return r.(*presencepb.GetOnlineUsersRequest).GetUserIds() }), encOnlineUsersResp, opts...),
	}
}

func serve(h grpctransport.Handler, ctx context.Context, req any) (any, error) {
	_, resp, err := h.ServeGRPC(ctx, req)
	return resp, err
}

func (s *grpcServer) UserOnline(ctx context.Context, r *presencepb.UserOnlineRequest) (*presencepb.UserOnlineResponse, error) {
	resp, err := serve(s.userOnline, ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.(*presencepb.UserOnlineResponse), nil
}

func (s *grpcServer) UserOffline(ctx context.Context, r *presencepb.UserOfflineRequest) (*presencepb.UserOfflineResponse, error) {
	resp, err := serve(s.userOffline, ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.(*presencepb.UserOfflineResponse), nil
}

func (s *grpcServer) Heartbeat(ctx context.Context, r *presencepb.HeartbeatRequest) (*presencepb.HeartbeatResponse, error) {
	resp, err := serve(s.heartbeat, ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.(*presencepb.HeartbeatResponse), nil
}

func (s *grpcServer) GetUserPresence(ctx context.Context, r *presencepb.GetUserPresenceRequest) (*presencepb.GetUserPresenceResponse, error) {
	resp, err := serve(s.getUserPresence, ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.(*presencepb.GetUserPresenceResponse), nil
}

func (s *grpcServer) IsUserOnline(ctx context.Context, r *presencepb.IsUserOnlineRequest) (*presencepb.IsUserOnlineResponse, error) {
	resp, err := serve(s.isUserOnline, ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.(*presencepb.IsUserOnlineResponse), nil
}

func (s *grpcServer) GetOnlineUsers(ctx context.Context, r *presencepb.GetOnlineUsersRequest) (*presencepb.GetOnlineUsersResponse, error) {
	resp, err := serve(s.getOnlineUs, ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.(*presencepb.GetOnlineUsersResponse), nil
}

// Server-side codecs. A business error becomes the handler's error, which
// the grpcx interceptor maps to a status with the Beehive code.

func decUserOnlineReq(_ context.Context, r any) (any, error) {
	return UserOnlineRequest{Session: sessionFromPB(r.(*presencepb.UserOnlineRequest).GetSession())}, nil
}

func decUserOfflineReq(_ context.Context, r any) (any, error) {
	req := r.(*presencepb.UserOfflineRequest)
	return SessionRequest{UserID: req.GetUserId(), ConnID: req.GetConnId()}, nil
}

func decHeartbeatReq(_ context.Context, r any) (any, error) {
	req := r.(*presencepb.HeartbeatRequest)
	return SessionRequest{UserID: req.GetUserId(), ConnID: req.GetConnId()}, nil
}

func decUsersReq(get func(any) []string) grpctransport.DecodeRequestFunc {
	return func(_ context.Context, r any) (any, error) { return UsersRequest{UserIDs: get(r)}, nil }
}

func decIsUserOnlineReq(_ context.Context, r any) (any, error) {
	return IsUserOnlineRequest{UserID: r.(*presencepb.IsUserOnlineRequest).GetUserId()}, nil
}

func encEmptyResp(mk func() any) grpctransport.EncodeResponseFunc {
	return func(_ context.Context, resp any) (any, error) {
		if err := resp.(EmptyResponse).Err; err != nil {
			return nil, err
		}
		return mk(), nil
	}
}

func encUserPresenceResp(_ context.Context, resp any) (any, error) {
	r := resp.(UserPresenceResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	out := &presencepb.GetUserPresenceResponse{Presence: make([]*presencepb.UserPresence, 0, len(r.Presence))}
	for _, p := range r.Presence {
		out.Presence = append(out.Presence, presenceToPB(p))
	}
	return out, nil
}

func encIsUserOnlineResp(_ context.Context, resp any) (any, error) {
	r := resp.(IsUserOnlineResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	return &presencepb.IsUserOnlineResponse{Online: r.Online}, nil
}

func encOnlineUsersResp(_ context.Context, resp any) (any, error) {
	r := resp.(OnlineUsersResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	return &presencepb.GetOnlineUsersResponse{UserIds: r.UserIDs}, nil
}

// Conversions.

func sessionToPB(s Session) *presencepb.Session {
	return &presencepb.Session{UserId: s.UserID, GatewayId: s.GatewayID, ConnId: s.ConnID, DeviceId: s.DeviceID, Since: grpcx.Timestamp(s.Since)}
}

func sessionFromPB(s *presencepb.Session) Session {
	return Session{UserID: s.GetUserId(), GatewayID: s.GetGatewayId(), ConnID: s.GetConnId(), DeviceID: s.GetDeviceId(), Since: grpcx.Time(s.GetSince())}
}

func presenceToPB(p UserPresence) *presencepb.UserPresence {
	out := &presencepb.UserPresence{UserId: p.UserID, Online: p.Online}
	for _, d := range p.Devices {
		out.Devices = append(out.Devices, &presencepb.Device{DeviceId: d.DeviceID, GatewayId: d.GatewayID, ConnId: d.ConnID, Since: grpcx.Timestamp(d.Since)})
	}
	if p.LastSeen != nil {
		out.LastSeen = grpcx.Timestamp(*p.LastSeen)
	}
	return out
}

func presenceFromPB(p *presencepb.UserPresence) UserPresence {
	out := UserPresence{UserID: p.GetUserId(), Online: p.GetOnline(), Devices: make([]Device, 0, len(p.GetDevices()))}
	for _, d := range p.GetDevices() {
		out.Devices = append(out.Devices, Device{DeviceID: d.GetDeviceId(), GatewayID: d.GetGatewayId(), ConnID: d.GetConnId(), Since: grpcx.Time(d.GetSince())})
	}
	if p.GetLastSeen() != nil {
		t := grpcx.Time(p.GetLastSeen())
		out.LastSeen = &t
	}
	return out
}

// Client side.

const grpcService = "beehive.presence.v1.PresenceService"

// NewGRPCClient returns a Service calling the instances instancer finds,
// through one shared connection per instance, retries and breakers.
// serviceToken is sent for the internal methods.
func NewGRPCClient(instancer sd.Instancer, conns *grpcx.Conns, serviceToken string, logger log.Logger) Service {
	return NewGRPCClientEndpoints(grpcx.BalancedClient("presence", grpcService, instancer, conns, serviceToken, logger, grpcx.BalanceOptions{}))
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
		UserOnlineEndpoint: mk("UserOnline", func(_ context.Context, r any) (any, error) {
			return &presencepb.UserOnlineRequest{Session: sessionToPB(r.(UserOnlineRequest).Session)}, nil
		}, empty, presencepb.UserOnlineResponse{}),
		UserOfflineEndpoint: mk("UserOffline", func(_ context.Context, r any) (any, error) {
			req := r.(SessionRequest)
			return &presencepb.UserOfflineRequest{UserId: req.UserID, ConnId: req.ConnID}, nil
		}, empty, presencepb.UserOfflineResponse{}),
		HeartbeatEndpoint: mk("Heartbeat", func(_ context.Context, r any) (any, error) {
			req := r.(SessionRequest)
			return &presencepb.HeartbeatRequest{UserId: req.UserID, ConnId: req.ConnID}, nil
		}, empty, presencepb.HeartbeatResponse{}),
		GetUserPresenceEndpoint: mk("GetUserPresence", func(_ context.Context, r any) (any, error) {
			return &presencepb.GetUserPresenceRequest{UserIds: r.(UsersRequest).UserIDs}, nil
		}, func(_ context.Context, r any) (any, error) {
			resp := r.(*presencepb.GetUserPresenceResponse)
			out := make([]UserPresence, 0, len(resp.GetPresence()))
			for _, p := range resp.GetPresence() {
				out = append(out, presenceFromPB(p))
			}
			return UserPresenceResponse{Presence: out}, nil
		}, presencepb.GetUserPresenceResponse{}),
		IsUserOnlineEndpoint: mk("IsUserOnline", func(_ context.Context, r any) (any, error) {
			return &presencepb.IsUserOnlineRequest{UserId: r.(IsUserOnlineRequest).UserID}, nil
		}, func(_ context.Context, r any) (any, error) {
			return IsUserOnlineResponse{Online: r.(*presencepb.IsUserOnlineResponse).GetOnline()}, nil
		}, presencepb.IsUserOnlineResponse{}),
		GetOnlineUsersEndpoint: mk("GetOnlineUsers", func(_ context.Context, r any) (any, error) {
			return &presencepb.GetOnlineUsersRequest{UserIds: r.(UsersRequest).UserIDs}, nil
		}, func(_ context.Context, r any) (any, error) {
			return OnlineUsersResponse{UserIDs: r.(*presencepb.GetOnlineUsersResponse).GetUserIds()}, nil
		}, presencepb.GetOnlineUsersResponse{}),
	}
}

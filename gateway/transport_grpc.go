package gateway

import (
	"context"

	grpctransport "github.com/go-kit/kit/transport/grpc"
	"github.com/go-kit/log"
	"google.golang.org/grpc"

	"github.com/beehive-im/beehive/gateway/gatewaypb"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/wire"
)

type grpcServer struct {
	gatewaypb.UnimplementedGatewayServiceServer
	deliver grpctransport.Handler
}

// NewGRPCServer serves e as gatewaypb.GatewayServiceServer.
func NewGRPCServer(e Endpoints, _ log.Logger) gatewaypb.GatewayServiceServer {
	return &grpcServer{deliver: grpctransport.NewServer(e.DeliverEndpoint,
		func(_ context.Context, r any) (any, error) {
			req := r.(*gatewaypb.DeliverRequest)
			var more []wire.DeliverFrame
			for _, f := range req.GetMore() {
				more = append(more, wire.DeliverFrame{Frame: f.GetFrame(), ExceptConn: f.GetExceptConn()})
			}
			return wire.DeliverRequest{UserIDs: req.GetUserIds(), Frame: req.GetFrame(), ExceptConn: req.GetExceptConn(), More: more}, nil
		},
		func(_ context.Context, r any) (any, error) {
			resp := r.(DeliverResponse)
			if resp.Err != nil {
				return nil, resp.Err
			}
			return &gatewaypb.DeliverResponse{Delivered: int32(resp.Delivered)}, nil
		})}
}

func (s *grpcServer) Deliver(ctx context.Context, r *gatewaypb.DeliverRequest) (*gatewaypb.DeliverResponse, error) {
	_, resp, err := s.deliver.ServeGRPC(ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.(*gatewaypb.DeliverResponse), nil
}

// NewGRPCClient returns the Service of the one gateway instance behind cc.
// Deliver must reach the instance holding the sockets (presence names its
// gateway id), so this client is per instance, not load-balanced: the
// caller keeps one per gateway id (connections from a grpcx.Conns).
func NewGRPCClient(cc *grpc.ClientConn, serviceToken string) Service {
	e := grpctransport.NewClient(cc, "beehive.gateway.v1.GatewayService", "Deliver",
		func(_ context.Context, r any) (any, error) {
			req := r.(wire.DeliverRequest)
			more := make([]*gatewaypb.DeliverFrame, 0, len(req.More))
			for _, f := range req.More {
				more = append(more, &gatewaypb.DeliverFrame{Frame: f.Frame, ExceptConn: f.ExceptConn})
			}
			return &gatewaypb.DeliverRequest{UserIds: req.UserIDs, Frame: req.Frame, ExceptConn: req.ExceptConn, More: more}, nil
		},
		func(_ context.Context, r any) (any, error) {
			return DeliverResponse{Delivered: int(r.(*gatewaypb.DeliverResponse).GetDelivered())}, nil
		},
		gatewaypb.DeliverResponse{}, grpcx.ClientOptions(serviceToken)...).Endpoint()
	return Endpoints{DeliverEndpoint: grpcx.ClientErrors(e)}
}

package gateway

import (
	"context"

	"github.com/go-kit/kit/endpoint"

	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/wire"
)

// Endpoints of a gateway instance. It implements Service, so the pusher
// calls a local gateway (embedded mode) and a remote one alike.
type Endpoints struct {
	DeliverEndpoint endpoint.Endpoint
}

var _ Service = Endpoints{}

// DeliverResponse carries how many sockets got the frame.
type DeliverResponse struct {
	Delivered int   `json:"delivered"`
	Err       error `json:"-"`
}

func (r DeliverResponse) Failed() error { return r.Err }

// MakeServerEndpoints wraps svc; Deliver is internal (service credential).
func MakeServerEndpoints(svc Service, serviceToken string, kit endpointx.Kit) Endpoints {
	e := func(ctx context.Context, req any) (any, error) {
		n, err := svc.Deliver(ctx, req.(wire.DeliverRequest))
		return DeliverResponse{Delivered: n, Err: err}, nil
	}
	return Endpoints{DeliverEndpoint: kit.Chain("gateway", "Deliver", identity.RequireService(serviceToken)(e))}
}

// Deliver implements Service.
func (e Endpoints) Deliver(ctx context.Context, req wire.DeliverRequest) (int, error) {
	resp, err := e.DeliverEndpoint(ctx, req)
	if err != nil {
		return 0, err
	}
	r := resp.(DeliverResponse)
	return r.Delivered, r.Err
}

package pusher

import (
	"context"
	"net/http"

	"github.com/go-kit/kit/endpoint"

	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/identity"
)

// Endpoints holds one endpoint per Service method. It also implements
// Service, so a remote pusher (gRPC client endpoints) and a local one
// (server endpoints) are the same to callers.
type Endpoints struct {
	RegisterDeviceEndpoint   endpoint.Endpoint
	UnregisterDeviceEndpoint endpoint.Endpoint
}

var _ Service = Endpoints{}

// MakeServerEndpoints wraps svc. Every method acts for a user: the token's
// user, or, for an internal caller holding the service credential, the
// user the request names.
func MakeServerEndpoints(svc Service, authn identity.Authenticator, serviceToken string, kit endpointx.Kit) Endpoints {
	auth := userOrService(authn, serviceToken)
	wrap := func(method string, e endpoint.Endpoint) endpoint.Endpoint {
		return kit.Chain("pusher", method, auth(e))
	}
	return Endpoints{
		RegisterDeviceEndpoint:   wrap("RegisterDevice", makeRegisterDevice(svc)),
		UnregisterDeviceEndpoint: wrap("UnregisterDevice", makeUnregisterDevice(svc)),
	}
}

// userOrService admits a caller presenting the service credential (checked
// by identity.RequireService) and otherwise authenticates a user token.
func userOrService(authn identity.Authenticator, serviceToken string) endpoint.Middleware {
	user := identity.RequireUser(authn)
	service := identity.RequireService(serviceToken)
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		u, s := user(next), service(next)
		return func(ctx context.Context, req any) (any, error) {
			if p, ok := identity.FromContext(ctx); ok && p.Service {
				return s(ctx, req)
			}
			if identity.ServiceToken(ctx) != "" && identity.Token(ctx) == "" {
				return s(ctx, req)
			}
			return u(ctx, req)
		}
	}
}

// Requests and responses. Responses carry business errors (Failed), so
// breakers and retries react only to infrastructure failures.

type RegisterDeviceRequest struct {
	UserID       string `json:"-"`
	Registration DeviceRegistration
}

type DeviceResponse struct {
	Device Device `json:"device"`
	Err    error  `json:"-"`
}

func (r DeviceResponse) Failed() error { return r.Err }

type UnregisterDeviceRequest struct {
	UserID   string `json:"-"`
	DeviceID string `json:"device_id"`
}

// EmptyResponse answers 204 over HTTP.
type EmptyResponse struct {
	Err error `json:"-"`
}

func (r EmptyResponse) Failed() error   { return r.Err }
func (r EmptyResponse) StatusCode() int { return http.StatusNoContent }

var (
	_ endpointx.Failer = DeviceResponse{}
	_ endpointx.Failer = EmptyResponse{}
)

func makeRegisterDevice(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(RegisterDeviceRequest)
		user, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return DeviceResponse{Err: err}, nil
		}
		d, err := svc.RegisterDevice(ctx, user, r.Registration)
		return DeviceResponse{Device: d, Err: err}, nil
	}
}

func makeUnregisterDevice(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(UnregisterDeviceRequest)
		user, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return EmptyResponse{Err: err}, nil
		}
		return EmptyResponse{Err: svc.UnregisterDevice(ctx, user, r.DeviceID)}, nil
	}
}

func (e Endpoints) RegisterDevice(ctx context.Context, userID string, reg DeviceRegistration) (Device, error) {
	resp, err := e.RegisterDeviceEndpoint(ctx, RegisterDeviceRequest{UserID: userID, Registration: reg})
	if err := endpointx.Outcome(resp, err); err != nil {
		return Device{}, err
	}
	return resp.(DeviceResponse).Device, nil
}

func (e Endpoints) UnregisterDevice(ctx context.Context, userID, deviceID string) error {
	return endpointx.Outcome(e.UnregisterDeviceEndpoint(ctx, UnregisterDeviceRequest{UserID: userID, DeviceID: deviceID}))
}

package presence

import (
	"context"

	"github.com/go-kit/kit/endpoint"

	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/identity"
)

// Endpoints holds one endpoint per Service method. It also implements
// Service, so a remote presence service (gRPC client endpoints) and a local
// one (server endpoints) are the same to callers.
type Endpoints struct {
	UserOnlineEndpoint      endpoint.Endpoint
	UserOfflineEndpoint     endpoint.Endpoint
	HeartbeatEndpoint       endpoint.Endpoint
	GetUserPresenceEndpoint endpoint.Endpoint
	IsUserOnlineEndpoint    endpoint.Endpoint
	GetOnlineUsersEndpoint  endpoint.Endpoint
}

var _ Service = Endpoints{}

// MakeServerEndpoints wraps svc: internal methods require the service
// credential, queries an authenticated user; every method gets kit's chain.
func MakeServerEndpoints(svc Service, authn identity.Authenticator, serviceToken string, kit endpointx.Kit) Endpoints {
	internal := identity.RequireService(serviceToken)
	user := identity.RequireUser(authn)
	wrap := func(method string, mw endpoint.Middleware, e endpoint.Endpoint) endpoint.Endpoint {
		return kit.Chain("presence", method, mw(e))
	}
	return Endpoints{
		UserOnlineEndpoint:      wrap("UserOnline", internal, makeUserOnline(svc)),
		UserOfflineEndpoint:     wrap("UserOffline", internal, makeUserOffline(svc)),
		HeartbeatEndpoint:       wrap("Heartbeat", internal, makeHeartbeat(svc)),
		GetUserPresenceEndpoint: wrap("GetUserPresence", user, makeGetUserPresence(svc)),
		IsUserOnlineEndpoint:    wrap("IsUserOnline", user, makeIsUserOnline(svc)),
		GetOnlineUsersEndpoint:  wrap("GetOnlineUsers", user, makeGetOnlineUsers(svc)),
	}
}

// Requests and responses. Responses carry business errors (Failed), so
// breakers and retries react only to infrastructure failures.

type UserOnlineRequest struct {
	Session Session `json:"session"`
}

type SessionRequest struct {
	UserID string `json:"user_id"`
	ConnID string `json:"conn_id"`
}

type EmptyResponse struct {
	Err error `json:"-"`
}

func (r EmptyResponse) Failed() error { return r.Err }

type UsersRequest struct {
	UserIDs []string `json:"user_ids"`
}

type UserPresenceResponse struct {
	Presence []UserPresence `json:"presence"`
	// NextCursor is always empty: the caller names every user it asks
	// about, so the answer is one page (a list carries it per PROTOCOL.md).
	NextCursor string `json:"next_cursor"`
	Err        error  `json:"-"`
}

func (r UserPresenceResponse) Failed() error { return r.Err }

type IsUserOnlineRequest struct {
	UserID string `json:"user_id"`
}

type IsUserOnlineResponse struct {
	Online bool  `json:"online"`
	Err    error `json:"-"`
}

func (r IsUserOnlineResponse) Failed() error { return r.Err }

type OnlineUsersResponse struct {
	UserIDs []string `json:"user_ids"`
	Err     error    `json:"-"`
}

func (r OnlineUsersResponse) Failed() error { return r.Err }

var (
	_ endpointx.Failer = EmptyResponse{}
	_ endpointx.Failer = UserPresenceResponse{}
	_ endpointx.Failer = IsUserOnlineResponse{}
	_ endpointx.Failer = OnlineUsersResponse{}
)

func makeUserOnline(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(UserOnlineRequest)
		return EmptyResponse{Err: svc.UserOnline(ctx, r.Session)}, nil
	}
}

func makeUserOffline(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(SessionRequest)
		return EmptyResponse{Err: svc.UserOffline(ctx, r.UserID, r.ConnID)}, nil
	}
}

func makeHeartbeat(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(SessionRequest)
		return EmptyResponse{Err: svc.Heartbeat(ctx, r.UserID, r.ConnID)}, nil
	}
}

func makeGetUserPresence(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(UsersRequest)
		ps, err := svc.GetUserPresence(ctx, r.UserIDs)
		return UserPresenceResponse{Presence: ps, Err: err}, nil
	}
}

func makeIsUserOnline(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(IsUserOnlineRequest)
		on, err := svc.IsUserOnline(ctx, r.UserID)
		return IsUserOnlineResponse{Online: on, Err: err}, nil
	}
}

func makeGetOnlineUsers(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(UsersRequest)
		us, err := svc.GetOnlineUsers(ctx, r.UserIDs)
		return OnlineUsersResponse{UserIDs: us, Err: err}, nil
	}
}

func (e Endpoints) UserOnline(ctx context.Context, s Session) error {
	return endpointx.Outcome(e.UserOnlineEndpoint(ctx, UserOnlineRequest{Session: s}))
}

func (e Endpoints) UserOffline(ctx context.Context, userID, connID string) error {
	return endpointx.Outcome(e.UserOfflineEndpoint(ctx, SessionRequest{UserID: userID, ConnID: connID}))
}

func (e Endpoints) Heartbeat(ctx context.Context, userID, connID string) error {
	return endpointx.Outcome(e.HeartbeatEndpoint(ctx, SessionRequest{UserID: userID, ConnID: connID}))
}

func (e Endpoints) GetUserPresence(ctx context.Context, userIDs []string) ([]UserPresence, error) {
	resp, err := e.GetUserPresenceEndpoint(ctx, UsersRequest{UserIDs: userIDs})
	if err := endpointx.Outcome(resp, err); err != nil {
		return nil, err
	}
	return resp.(UserPresenceResponse).Presence, nil
}

func (e Endpoints) IsUserOnline(ctx context.Context, userID string) (bool, error) {
	resp, err := e.IsUserOnlineEndpoint(ctx, IsUserOnlineRequest{UserID: userID})
	if err := endpointx.Outcome(resp, err); err != nil {
		return false, err
	}
	return resp.(IsUserOnlineResponse).Online, nil
}

func (e Endpoints) GetOnlineUsers(ctx context.Context, userIDs []string) ([]string, error) {
	resp, err := e.GetOnlineUsersEndpoint(ctx, UsersRequest{UserIDs: userIDs})
	if err := endpointx.Outcome(resp, err); err != nil {
		return nil, err
	}
	return resp.(OnlineUsersResponse).UserIDs, nil
}

package user

import (
	"context"
	"net/http"

	"github.com/go-kit/kit/endpoint"

	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/identity"
)

// Endpoints holds one endpoint per Service method. It also implements
// Service, so a remote user service (gRPC client endpoints) and a local
// one (server endpoints) are the same to callers.
type Endpoints struct {
	RegisterEndpoint             endpoint.Endpoint
	GetUserEndpoint              endpoint.Endpoint
	UpdateUserEndpoint           endpoint.Endpoint
	GetUserByIDEndpoint          endpoint.Endpoint
	LookupByEmailEndpoint        endpoint.Endpoint
	SetPasswordHashEndpoint      endpoint.Endpoint
	SendFriendRequestEndpoint    endpoint.Endpoint
	AcceptFriendRequestEndpoint  endpoint.Endpoint
	DeclineFriendRequestEndpoint endpoint.Endpoint
	ListFriendRequestsEndpoint   endpoint.Endpoint
	ListFriendsEndpoint          endpoint.Endpoint
	RemoveFriendEndpoint         endpoint.Endpoint
	BlockEndpoint                endpoint.Endpoint
	UnblockEndpoint              endpoint.Endpoint
	ListBlocksEndpoint           endpoint.Endpoint
	CanMessageEndpoint           endpoint.Endpoint
	ListFriendIDsEndpoint        endpoint.Endpoint
}

var _ Service = Endpoints{}

// MakeServerEndpoints wraps svc. Register is open; the internal methods
// (GetUserByID, LookupByEmail, SetPasswordHash, CanMessage, ListFriendIDs)
// require the service credential and refuse user tokens; the others
// require a user token (or a user principal an in-process caller already
// authenticated). The service credential alone does not open them: the
// gateway's client carries it on every call, and a request that came
// without a user token must stay unauthenticated. Every method gets kit's
// chain.
func MakeServerEndpoints(svc Service, authn identity.Authenticator, serviceToken string, kit endpointx.Kit) Endpoints {
	internal := identity.RequireService(serviceToken)
	user := identity.RequireUser(authn)
	open := func(next endpoint.Endpoint) endpoint.Endpoint { return next }
	wrap := func(method string, mw endpoint.Middleware, e endpoint.Endpoint) endpoint.Endpoint {
		return kit.Chain("user", method, mw(e))
	}
	return Endpoints{
		RegisterEndpoint:             wrap("Register", open, makeRegister(svc)),
		GetUserEndpoint:              wrap("GetUser", user, makeGetUser(svc)),
		UpdateUserEndpoint:           wrap("UpdateUser", user, makeUpdateUser(svc)),
		GetUserByIDEndpoint:          wrap("GetUserByID", internal, makeGetUserByID(svc)),
		LookupByEmailEndpoint:        wrap("LookupByEmail", internal, makeLookupByEmail(svc)),
		SetPasswordHashEndpoint:      wrap("SetPasswordHash", internal, makeSetPasswordHash(svc)),
		SendFriendRequestEndpoint:    wrap("SendFriendRequest", user, makeSendFriendRequest(svc)),
		AcceptFriendRequestEndpoint:  wrap("AcceptFriendRequest", user, makeAnswer(svc.AcceptFriendRequest)),
		DeclineFriendRequestEndpoint: wrap("DeclineFriendRequest", user, makeAnswer(svc.DeclineFriendRequest)),
		ListFriendRequestsEndpoint:   wrap("ListFriendRequests", user, makeListFriendRequests(svc)),
		ListFriendsEndpoint:          wrap("ListFriends", user, makeListFriends(svc)),
		RemoveFriendEndpoint:         wrap("RemoveFriend", user, makeRemoveFriend(svc)),
		BlockEndpoint:                wrap("Block", user, makeBlock(svc)),
		UnblockEndpoint:              wrap("Unblock", user, makeUnblock(svc)),
		ListBlocksEndpoint:           wrap("ListBlocks", user, makeListBlocks(svc)),
		CanMessageEndpoint:           wrap("CanMessage", internal, makeCanMessage(svc)),
		ListFriendIDsEndpoint:        wrap("ListFriendIDs", internal, makeListFriendIDs(svc)),
	}
}

// Requests and responses. Responses carry business errors (Failed), so
// breakers and retries react only to infrastructure failures. The acting
// user is always the token's user (identity.Actor); a UserID in a request
// is ignored for users.

type RegisterRequest struct {
	Registration
}

// GetUserRequest: the viewer is the token's user; UserID "" means the viewer.
type GetUserRequest struct {
	UserID string `json:"user_id,omitempty"`
}

type UpdateUserRequest struct {
	UserID string `json:"user_id,omitempty"`
	ProfileUpdate
}

type UserRequest struct {
	UserID string `json:"user_id"`
}

type LookupByEmailRequest struct {
	Email string `json:"email"`
}

type SetPasswordHashRequest struct {
	UserID       string `json:"user_id"`
	PasswordHash string `json:"password_hash"`
}

type SendFriendRequestRequest struct {
	UserID   string `json:"-"`
	ToUserID string `json:"user_id"`
	Message  string `json:"message"`
}

type FriendRequestActionRequest struct {
	UserID    string `json:"user_id,omitempty"`
	RequestID string `json:"request_id"`
}

type ListRequest struct {
	UserID string `json:"user_id,omitempty"`
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

type PairRequest struct {
	UserID  string `json:"user_id,omitempty"`
	OtherID string `json:"other_id"`
}

type CanMessageRequest struct {
	FromUserID string `json:"from_user_id"`
	ToUserID   string `json:"to_user_id"`
}

type UserResponse struct {
	User    *User `json:"user,omitempty"`
	Created bool  `json:"-"`
	Err     error `json:"-"`
}

func (r UserResponse) Failed() error { return r.Err }

func (r UserResponse) StatusCode() int {
	if r.Created {
		return http.StatusCreated
	}
	return http.StatusOK
}

type AccountResponse struct {
	Account Account `json:"account"`
	Err     error   `json:"-"`
}

func (r AccountResponse) Failed() error { return r.Err }

type EmptyResponse struct {
	Err error `json:"-"`
}

func (r EmptyResponse) Failed() error   { return r.Err }
func (r EmptyResponse) StatusCode() int { return http.StatusNoContent }

type FriendRequestResponse struct {
	FriendRequest *FriendRequest `json:"friend_request,omitempty"`
	Err           error          `json:"-"`
}

func (r FriendRequestResponse) Failed() error { return r.Err }

// StatusCode is 201 when a new request was created, 200 when an existing
// one was answered.
func (r FriendRequestResponse) StatusCode() int {
	if r.FriendRequest != nil && r.FriendRequest.State == StatePending {
		return http.StatusCreated
	}
	return http.StatusOK
}

type FriendRequestsResponse struct {
	FriendRequests
	Err error `json:"-"`
}

func (r FriendRequestsResponse) Failed() error { return r.Err }

type FriendsResponse struct {
	FriendPage
	Err error `json:"-"`
}

func (r FriendsResponse) Failed() error { return r.Err }

type BlockResponse struct {
	Block *Block `json:"block,omitempty"`
	Err   error  `json:"-"`
}

func (r BlockResponse) Failed() error { return r.Err }

type BlocksResponse struct {
	BlockPage
	Err error `json:"-"`
}

func (r BlocksResponse) Failed() error { return r.Err }

type CanMessageResponse struct {
	Allowed bool  `json:"allowed"`
	Err     error `json:"-"`
}

func (r CanMessageResponse) Failed() error { return r.Err }

type FriendIDsResponse struct {
	UserIDs []string `json:"user_ids"`
	Err     error    `json:"-"`
}

func (r FriendIDsResponse) Failed() error { return r.Err }

var (
	_ endpointx.Failer = UserResponse{}
	_ endpointx.Failer = AccountResponse{}
	_ endpointx.Failer = EmptyResponse{}
	_ endpointx.Failer = FriendRequestResponse{}
	_ endpointx.Failer = FriendRequestsResponse{}
	_ endpointx.Failer = FriendsResponse{}
	_ endpointx.Failer = BlockResponse{}
	_ endpointx.Failer = BlocksResponse{}
	_ endpointx.Failer = CanMessageResponse{}
	_ endpointx.Failer = FriendIDsResponse{}
)

func userResp(u User, err error) UserResponse {
	if err != nil {
		return UserResponse{Err: err}
	}
	return UserResponse{User: &u}
}

func requestResp(r FriendRequest, err error) FriendRequestResponse {
	if err != nil {
		return FriendRequestResponse{Err: err}
	}
	return FriendRequestResponse{FriendRequest: &r}
}

func makeRegister(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		u, err := svc.Register(ctx, req.(RegisterRequest).Registration)
		resp := userResp(u, err)
		resp.Created = err == nil
		return resp, nil
	}
}

func makeGetUser(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		return userResp(svc.GetUser(ctx, identity.UserID(ctx), req.(GetUserRequest).UserID)), nil
	}
}

func makeUpdateUser(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(UpdateUserRequest)
		me, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return UserResponse{Err: err}, nil
		}
		return userResp(svc.UpdateUser(ctx, me, r.ProfileUpdate)), nil
	}
}

func makeGetUserByID(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		a, err := svc.GetUserByID(ctx, req.(UserRequest).UserID)
		return AccountResponse{Account: a, Err: err}, nil
	}
}

func makeLookupByEmail(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		a, err := svc.LookupByEmail(ctx, req.(LookupByEmailRequest).Email)
		return AccountResponse{Account: a, Err: err}, nil
	}
}

func makeSetPasswordHash(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(SetPasswordHashRequest)
		return EmptyResponse{Err: svc.SetPasswordHash(ctx, r.UserID, r.PasswordHash)}, nil
	}
}

func makeSendFriendRequest(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(SendFriendRequestRequest)
		me, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return FriendRequestResponse{Err: err}, nil
		}
		return requestResp(svc.SendFriendRequest(ctx, me, r.ToUserID, r.Message)), nil
	}
}

func makeAnswer(answer func(ctx context.Context, userID, requestID string) (FriendRequest, error)) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(FriendRequestActionRequest)
		me, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return FriendRequestResponse{Err: err}, nil
		}
		return requestResp(answer(ctx, me, r.RequestID)), nil
	}
}

func makeListFriendRequests(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		me, err := identity.Actor(ctx, req.(ListRequest).UserID)
		if err != nil {
			return FriendRequestsResponse{Err: err}, nil
		}
		rs, err := svc.ListFriendRequests(ctx, me)
		return FriendRequestsResponse{FriendRequests: rs, Err: err}, nil
	}
}

func makeListFriends(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(ListRequest)
		me, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return FriendsResponse{Err: err}, nil
		}
		p, err := svc.ListFriends(ctx, me, Page{Cursor: r.Cursor, Limit: r.Limit})
		return FriendsResponse{FriendPage: p, Err: err}, nil
	}
}

func makeRemoveFriend(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(PairRequest)
		me, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return EmptyResponse{Err: err}, nil
		}
		return EmptyResponse{Err: svc.RemoveFriend(ctx, me, r.OtherID)}, nil
	}
}

func makeBlock(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(PairRequest)
		me, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return BlockResponse{Err: err}, nil
		}
		b, err := svc.Block(ctx, me, r.OtherID)
		if err != nil {
			return BlockResponse{Err: err}, nil
		}
		return BlockResponse{Block: &b}, nil
	}
}

func makeUnblock(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(PairRequest)
		me, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return EmptyResponse{Err: err}, nil
		}
		return EmptyResponse{Err: svc.Unblock(ctx, me, r.OtherID)}, nil
	}
}

func makeListBlocks(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(ListRequest)
		me, err := identity.Actor(ctx, r.UserID)
		if err != nil {
			return BlocksResponse{Err: err}, nil
		}
		p, err := svc.ListBlocks(ctx, me, Page{Cursor: r.Cursor, Limit: r.Limit})
		return BlocksResponse{BlockPage: p, Err: err}, nil
	}
}

func makeCanMessage(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(CanMessageRequest)
		ok, err := svc.CanMessage(ctx, r.FromUserID, r.ToUserID)
		return CanMessageResponse{Allowed: ok, Err: err}, nil
	}
}

func makeListFriendIDs(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		us, err := svc.ListFriendIDs(ctx, req.(UserRequest).UserID)
		return FriendIDsResponse{UserIDs: us, Err: err}, nil
	}
}

// Client side: Endpoints as a Service.

func userOf(resp any, err error) (User, error) {
	if err := endpointx.Outcome(resp, err); err != nil {
		return User{}, err
	}
	if u := resp.(UserResponse).User; u != nil {
		return *u, nil
	}
	return User{}, nil
}

func requestOf(resp any, err error) (FriendRequest, error) {
	if err := endpointx.Outcome(resp, err); err != nil {
		return FriendRequest{}, err
	}
	if r := resp.(FriendRequestResponse).FriendRequest; r != nil {
		return *r, nil
	}
	return FriendRequest{}, nil
}

func accountOf(resp any, err error) (Account, error) {
	if err := endpointx.Outcome(resp, err); err != nil {
		return Account{}, err
	}
	return resp.(AccountResponse).Account, nil
}

func (e Endpoints) Register(ctx context.Context, in Registration) (User, error) {
	return userOf(e.RegisterEndpoint(ctx, RegisterRequest{Registration: in}))
}

// GetUser: through Endpoints the viewer is always the caller's token user;
// viewerID is ignored.
func (e Endpoints) GetUser(ctx context.Context, _, userID string) (User, error) {
	return userOf(e.GetUserEndpoint(ctx, GetUserRequest{UserID: userID}))
}

func (e Endpoints) UpdateUser(ctx context.Context, userID string, in ProfileUpdate) (User, error) {
	return userOf(e.UpdateUserEndpoint(ctx, UpdateUserRequest{UserID: userID, ProfileUpdate: in}))
}

func (e Endpoints) GetUserByID(ctx context.Context, userID string) (Account, error) {
	return accountOf(e.GetUserByIDEndpoint(ctx, UserRequest{UserID: userID}))
}

func (e Endpoints) LookupByEmail(ctx context.Context, email string) (Account, error) {
	return accountOf(e.LookupByEmailEndpoint(ctx, LookupByEmailRequest{Email: email}))
}

func (e Endpoints) SetPasswordHash(ctx context.Context, userID, hash string) error {
	return endpointx.Outcome(e.SetPasswordHashEndpoint(ctx, SetPasswordHashRequest{UserID: userID, PasswordHash: hash}))
}

func (e Endpoints) SendFriendRequest(ctx context.Context, fromID, toID, message string) (FriendRequest, error) {
	return requestOf(e.SendFriendRequestEndpoint(ctx, SendFriendRequestRequest{UserID: fromID, ToUserID: toID, Message: message}))
}

func (e Endpoints) AcceptFriendRequest(ctx context.Context, userID, requestID string) (FriendRequest, error) {
	return requestOf(e.AcceptFriendRequestEndpoint(ctx, FriendRequestActionRequest{UserID: userID, RequestID: requestID}))
}

func (e Endpoints) DeclineFriendRequest(ctx context.Context, userID, requestID string) (FriendRequest, error) {
	return requestOf(e.DeclineFriendRequestEndpoint(ctx, FriendRequestActionRequest{UserID: userID, RequestID: requestID}))
}

func (e Endpoints) ListFriendRequests(ctx context.Context, userID string) (FriendRequests, error) {
	resp, err := e.ListFriendRequestsEndpoint(ctx, ListRequest{UserID: userID})
	if err := endpointx.Outcome(resp, err); err != nil {
		return FriendRequests{}, err
	}
	return resp.(FriendRequestsResponse).FriendRequests, nil
}

func (e Endpoints) ListFriends(ctx context.Context, userID string, page Page) (FriendPage, error) {
	resp, err := e.ListFriendsEndpoint(ctx, ListRequest{UserID: userID, Cursor: page.Cursor, Limit: page.Limit})
	if err := endpointx.Outcome(resp, err); err != nil {
		return FriendPage{}, err
	}
	return resp.(FriendsResponse).FriendPage, nil
}

func (e Endpoints) RemoveFriend(ctx context.Context, userID, friendID string) error {
	return endpointx.Outcome(e.RemoveFriendEndpoint(ctx, PairRequest{UserID: userID, OtherID: friendID}))
}

func (e Endpoints) Block(ctx context.Context, userID, targetID string) (Block, error) {
	resp, err := e.BlockEndpoint(ctx, PairRequest{UserID: userID, OtherID: targetID})
	if err := endpointx.Outcome(resp, err); err != nil {
		return Block{}, err
	}
	if b := resp.(BlockResponse).Block; b != nil {
		return *b, nil
	}
	return Block{}, nil
}

func (e Endpoints) Unblock(ctx context.Context, userID, targetID string) error {
	return endpointx.Outcome(e.UnblockEndpoint(ctx, PairRequest{UserID: userID, OtherID: targetID}))
}

func (e Endpoints) ListBlocks(ctx context.Context, userID string, page Page) (BlockPage, error) {
	resp, err := e.ListBlocksEndpoint(ctx, ListRequest{UserID: userID, Cursor: page.Cursor, Limit: page.Limit})
	if err := endpointx.Outcome(resp, err); err != nil {
		return BlockPage{}, err
	}
	return resp.(BlocksResponse).BlockPage, nil
}

func (e Endpoints) CanMessage(ctx context.Context, fromID, toID string) (bool, error) {
	resp, err := e.CanMessageEndpoint(ctx, CanMessageRequest{FromUserID: fromID, ToUserID: toID})
	if err := endpointx.Outcome(resp, err); err != nil {
		return false, err
	}
	return resp.(CanMessageResponse).Allowed, nil
}

func (e Endpoints) ListFriendIDs(ctx context.Context, userID string) ([]string, error) {
	resp, err := e.ListFriendIDsEndpoint(ctx, UserRequest{UserID: userID})
	if err := endpointx.Outcome(resp, err); err != nil {
		return nil, err
	}
	return resp.(FriendIDsResponse).UserIDs, nil
}

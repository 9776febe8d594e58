package group

import (
	"context"
	"net/http"

	"github.com/go-kit/kit/endpoint"

	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/identity"
)

// Endpoints holds one endpoint per Service method. It also implements
// Service, so a remote group service (gRPC client endpoints) and a local one
// (server endpoints) are the same to callers.
type Endpoints struct {
	CreateGroupEndpoint       endpoint.Endpoint
	GetGroupEndpoint          endpoint.Endpoint
	UpdateGroupEndpoint       endpoint.Endpoint
	DissolveGroupEndpoint     endpoint.Endpoint
	ListMembersEndpoint       endpoint.Endpoint
	AddMembersEndpoint        endpoint.Endpoint
	RemoveMemberEndpoint      endpoint.Endpoint
	SetRoleEndpoint           endpoint.Endpoint
	TransferOwnershipEndpoint endpoint.Endpoint
	MuteMemberEndpoint        endpoint.Endpoint
	MuteAllEndpoint           endpoint.Endpoint
	ListMyGroupsEndpoint      endpoint.Endpoint
	CanPostEndpoint           endpoint.Endpoint
	MembershipEndpoint        endpoint.Endpoint
	ListMemberIDsEndpoint     endpoint.Endpoint
}

var _ Service = Endpoints{}

// MakeServerEndpoints wraps svc: public methods require a user (the actor
// is the token's user, or the user an internal caller names), CanPost,
// Membership and ListMemberIDs the service credential; every method gets
// kit's chain.
func MakeServerEndpoints(svc Service, authn identity.Authenticator, serviceToken string, kit endpointx.Kit) Endpoints {
	internal := identity.RequireService(serviceToken)
	user := identity.RequireUser(authn)
	wrap := func(method string, mw endpoint.Middleware, e endpoint.Endpoint) endpoint.Endpoint {
		return kit.Chain("group", method, mw(e))
	}
	return Endpoints{
		CreateGroupEndpoint:       wrap("CreateGroup", user, makeCreateGroup(svc)),
		GetGroupEndpoint:          wrap("GetGroup", user, makeGetGroup(svc)),
		UpdateGroupEndpoint:       wrap("UpdateGroup", user, makeUpdateGroup(svc)),
		DissolveGroupEndpoint:     wrap("DissolveGroup", user, makeDissolveGroup(svc)),
		ListMembersEndpoint:       wrap("ListMembers", user, makeListMembers(svc)),
		AddMembersEndpoint:        wrap("AddMembers", user, makeAddMembers(svc)),
		RemoveMemberEndpoint:      wrap("RemoveMember", user, makeRemoveMember(svc)),
		SetRoleEndpoint:           wrap("SetRole", user, makeSetRole(svc)),
		TransferOwnershipEndpoint: wrap("TransferOwnership", user, makeTransferOwnership(svc)),
		MuteMemberEndpoint:        wrap("MuteMember", user, makeMuteMember(svc)),
		MuteAllEndpoint:           wrap("MuteAll", user, makeMuteAll(svc)),
		ListMyGroupsEndpoint:      wrap("ListMyGroups", user, makeListMyGroups(svc)),
		CanPostEndpoint:           wrap("CanPost", internal, makeCanPost(svc)),
		MembershipEndpoint:        wrap("GetMembership", internal, makeMembership(svc)),
		ListMemberIDsEndpoint:     wrap("ListMemberIDs", internal, makeListMemberIDs(svc)),
	}
}

// Requests. ActorID travels only in-process: the endpoint resolves the
// acting user with identity.Actor, so a user token always wins over it.

type CreateGroupRequest struct {
	ActorID string `json:"-"`
	CreateInput
}

type GroupRequest struct {
	ActorID string `json:"-"`
	GroupID string `json:"-"`
}

type UpdateGroupRequest struct {
	ActorID string `json:"-"`
	GroupID string `json:"-"`
	Update
}

type ListMembersRequest struct {
	ActorID string
	GroupID string
	Cursor  string
	Limit   int
}

type AddMembersRequest struct {
	ActorID string   `json:"-"`
	GroupID string   `json:"-"`
	UserIDs []string `json:"user_ids"`
}

// MemberRequest names a member to act on (remove, transfer to).
type MemberRequest struct {
	ActorID string `json:"-"`
	GroupID string `json:"-"`
	UserID  string `json:"user_id"`
}

type SetRoleRequest struct {
	ActorID string `json:"-"`
	GroupID string `json:"-"`
	UserID  string `json:"-"`
	Role    Role   `json:"role"`
}

type MuteMemberRequest struct {
	ActorID string `json:"-"`
	GroupID string `json:"-"`
	UserID  string `json:"-"`
	Seconds int64  `json:"seconds"`
}

type MuteAllRequest struct {
	ActorID string `json:"-"`
	GroupID string `json:"-"`
	Muted   bool   `json:"muted"`
}

type ListMyGroupsRequest struct {
	ActorID string
	Cursor  string
	Limit   int
}

type CanPostRequest struct {
	UserID  string
	GroupID string
}

type MembershipRequest struct {
	GroupID string
	UserID  string
}

type MemberIDsRequest struct {
	GroupID string
}

// Responses carry business errors (Failed), so breakers and retries react
// only to infrastructure failures.

type GroupResponse struct {
	Group   *Group `json:"group,omitempty"`
	Created bool   `json:"-"`
	Err     error  `json:"-"`
}

func (r GroupResponse) Failed() error { return r.Err }

func (r GroupResponse) StatusCode() int {
	if r.Created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// EmptyResponse answers deletes with 204 No Content.
type EmptyResponse struct {
	Err error `json:"-"`
}

func (r EmptyResponse) Failed() error   { return r.Err }
func (r EmptyResponse) StatusCode() int { return http.StatusNoContent }

type MemberPageResponse struct {
	MemberPage
	Err error `json:"-"`
}

func (r MemberPageResponse) Failed() error { return r.Err }

// MembersResponse lists the members an add created.
type MembersResponse struct {
	Members []Member `json:"members"`
	Err     error    `json:"-"`
}

func (r MembersResponse) Failed() error { return r.Err }

type MemberResponse struct {
	Member *Member `json:"member,omitempty"`
	Err    error   `json:"-"`
}

func (r MemberResponse) Failed() error { return r.Err }

type GroupPageResponse struct {
	GroupPage
	Err error `json:"-"`
}

func (r GroupPageResponse) Failed() error { return r.Err }

type MemberIDsResponse struct {
	UserIDs []string `json:"user_ids"`
	Err     error    `json:"-"`
}

func (r MemberIDsResponse) Failed() error { return r.Err }

var (
	_ endpointx.Failer = GroupResponse{}
	_ endpointx.Failer = EmptyResponse{}
	_ endpointx.Failer = MemberPageResponse{}
	_ endpointx.Failer = MembersResponse{}
	_ endpointx.Failer = MemberResponse{}
	_ endpointx.Failer = GroupPageResponse{}
	_ endpointx.Failer = MemberIDsResponse{}
)

func groupResp(g Group, err error) GroupResponse {
	if err != nil {
		return GroupResponse{Err: err}
	}
	return GroupResponse{Group: &g}
}

func memberResp(m Member, err error) MemberResponse {
	if err != nil {
		return MemberResponse{Err: err}
	}
	return MemberResponse{Member: &m}
}

func makeCreateGroup(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(CreateGroupRequest)
		actor, err := identity.Actor(ctx, r.ActorID)
		if err != nil {
			return GroupResponse{Err: err}, nil
		}
		resp := groupResp(svc.CreateGroup(ctx, actor, r.CreateInput))
		resp.Created = resp.Err == nil
		return resp, nil
	}
}

func makeGetGroup(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(GroupRequest)
		actor, err := identity.Actor(ctx, r.ActorID)
		if err != nil {
			return GroupResponse{Err: err}, nil
		}
		return groupResp(svc.GetGroup(ctx, actor, r.GroupID)), nil
	}
}

func makeUpdateGroup(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(UpdateGroupRequest)
		actor, err := identity.Actor(ctx, r.ActorID)
		if err != nil {
			return GroupResponse{Err: err}, nil
		}
		return groupResp(svc.UpdateGroup(ctx, actor, r.GroupID, r.Update)), nil
	}
}

func makeDissolveGroup(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(GroupRequest)
		actor, err := identity.Actor(ctx, r.ActorID)
		if err != nil {
			return EmptyResponse{Err: err}, nil
		}
		return EmptyResponse{Err: svc.DissolveGroup(ctx, actor, r.GroupID)}, nil
	}
}

func makeListMembers(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(ListMembersRequest)
		actor, err := identity.Actor(ctx, r.ActorID)
		if err != nil {
			return MemberPageResponse{Err: err}, nil
		}
		page, err := svc.ListMembers(ctx, actor, r.GroupID, r.Cursor, r.Limit)
		return MemberPageResponse{MemberPage: page, Err: err}, nil
	}
}

func makeAddMembers(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(AddMembersRequest)
		actor, err := identity.Actor(ctx, r.ActorID)
		if err != nil {
			return MembersResponse{Err: err}, nil
		}
		ms, err := svc.AddMembers(ctx, actor, r.GroupID, r.UserIDs)
		return MembersResponse{Members: ms, Err: err}, nil
	}
}

func makeRemoveMember(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(MemberRequest)
		actor, err := identity.Actor(ctx, r.ActorID)
		if err != nil {
			return EmptyResponse{Err: err}, nil
		}
		return EmptyResponse{Err: svc.RemoveMember(ctx, actor, r.GroupID, r.UserID)}, nil
	}
}

func makeSetRole(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(SetRoleRequest)
		actor, err := identity.Actor(ctx, r.ActorID)
		if err != nil {
			return MemberResponse{Err: err}, nil
		}
		return memberResp(svc.SetRole(ctx, actor, r.GroupID, r.UserID, r.Role)), nil
	}
}

func makeTransferOwnership(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(MemberRequest)
		actor, err := identity.Actor(ctx, r.ActorID)
		if err != nil {
			return GroupResponse{Err: err}, nil
		}
		return groupResp(svc.TransferOwnership(ctx, actor, r.GroupID, r.UserID)), nil
	}
}

func makeMuteMember(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(MuteMemberRequest)
		actor, err := identity.Actor(ctx, r.ActorID)
		if err != nil {
			return MemberResponse{Err: err}, nil
		}
		return memberResp(svc.MuteMember(ctx, actor, r.GroupID, r.UserID, r.Seconds)), nil
	}
}

func makeMuteAll(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(MuteAllRequest)
		actor, err := identity.Actor(ctx, r.ActorID)
		if err != nil {
			return GroupResponse{Err: err}, nil
		}
		return groupResp(svc.MuteAll(ctx, actor, r.GroupID, r.Muted)), nil
	}
}

func makeListMyGroups(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(ListMyGroupsRequest)
		actor, err := identity.Actor(ctx, r.ActorID)
		if err != nil {
			return GroupPageResponse{Err: err}, nil
		}
		page, err := svc.ListMyGroups(ctx, actor, r.Cursor, r.Limit)
		return GroupPageResponse{GroupPage: page, Err: err}, nil
	}
}

func makeCanPost(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(CanPostRequest)
		return EmptyResponse{Err: svc.CanPost(ctx, r.UserID, r.GroupID)}, nil
	}
}

func makeMembership(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(MembershipRequest)
		return memberResp(svc.Membership(ctx, r.GroupID, r.UserID)), nil
	}
}

func makeListMemberIDs(svc Service) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		r := req.(MemberIDsRequest)
		us, err := svc.ListMemberIDs(ctx, r.GroupID)
		return MemberIDsResponse{UserIDs: us, Err: err}, nil
	}
}

// Client side: Endpoints as Service.

func groupOf(resp any, err error) (Group, error) {
	if err := endpointx.Outcome(resp, err); err != nil {
		return Group{}, err
	}
	if g := resp.(GroupResponse).Group; g != nil {
		return *g, nil
	}
	return Group{}, nil
}

func memberOf(resp any, err error) (Member, error) {
	if err := endpointx.Outcome(resp, err); err != nil {
		return Member{}, err
	}
	if m := resp.(MemberResponse).Member; m != nil {
		return *m, nil
	}
	return Member{}, nil
}

func (e Endpoints) CreateGroup(ctx context.Context, actorID string, in CreateInput) (Group, error) {
	return groupOf(e.CreateGroupEndpoint(ctx, CreateGroupRequest{ActorID: actorID, CreateInput: in}))
}

func (e Endpoints) GetGroup(ctx context.Context, actorID, groupID string) (Group, error) {
	return groupOf(e.GetGroupEndpoint(ctx, GroupRequest{ActorID: actorID, GroupID: groupID}))
}

func (e Endpoints) UpdateGroup(ctx context.Context, actorID, groupID string, u Update) (Group, error) {
	return groupOf(e.UpdateGroupEndpoint(ctx, UpdateGroupRequest{ActorID: actorID, GroupID: groupID, Update: u}))
}

func (e Endpoints) DissolveGroup(ctx context.Context, actorID, groupID string) error {
	return endpointx.Outcome(e.DissolveGroupEndpoint(ctx, GroupRequest{ActorID: actorID, GroupID: groupID}))
}

func (e Endpoints) ListMembers(ctx context.Context, actorID, groupID, cursor string, limit int) (MemberPage, error) {
	resp, err := e.ListMembersEndpoint(ctx, ListMembersRequest{ActorID: actorID, GroupID: groupID, Cursor: cursor, Limit: limit})
	if err := endpointx.Outcome(resp, err); err != nil {
		return MemberPage{}, err
	}
	return resp.(MemberPageResponse).MemberPage, nil
}

func (e Endpoints) AddMembers(ctx context.Context, actorID, groupID string, userIDs []string) ([]Member, error) {
	resp, err := e.AddMembersEndpoint(ctx, AddMembersRequest{ActorID: actorID, GroupID: groupID, UserIDs: userIDs})
	if err := endpointx.Outcome(resp, err); err != nil {
		return nil, err
	}
	return resp.(MembersResponse).Members, nil
}

func (e Endpoints) RemoveMember(ctx context.Context, actorID, groupID, userID string) error {
	return endpointx.Outcome(e.RemoveMemberEndpoint(ctx, MemberRequest{ActorID: actorID, GroupID: groupID, UserID: userID}))
}

func (e Endpoints) SetRole(ctx context.Context, actorID, groupID, userID string, role Role) (Member, error) {
	return memberOf(e.SetRoleEndpoint(ctx, SetRoleRequest{ActorID: actorID, GroupID: groupID, UserID: userID, Role: role}))
}

func (e Endpoints) TransferOwnership(ctx context.Context, actorID, groupID, userID string) (Group, error) {
	return groupOf(e.TransferOwnershipEndpoint(ctx, MemberRequest{ActorID: actorID, GroupID: groupID, UserID: userID}))
}

func (e Endpoints) MuteMember(ctx context.Context, actorID, groupID, userID string, seconds int64) (Member, error) {
	return memberOf(e.MuteMemberEndpoint(ctx, MuteMemberRequest{ActorID: actorID, GroupID: groupID, UserID: userID, Seconds: seconds}))
}

func (e Endpoints) MuteAll(ctx context.Context, actorID, groupID string, muted bool) (Group, error) {
	return groupOf(e.MuteAllEndpoint(ctx, MuteAllRequest{ActorID: actorID, GroupID: groupID, Muted: muted}))
}

func (e Endpoints) ListMyGroups(ctx context.Context, actorID, cursor string, limit int) (GroupPage, error) {
	resp, err := e.ListMyGroupsEndpoint(ctx, ListMyGroupsRequest{ActorID: actorID, Cursor: cursor, Limit: limit})
	if err := endpointx.Outcome(resp, err); err != nil {
		return GroupPage{}, err
	}
	return resp.(GroupPageResponse).GroupPage, nil
}

func (e Endpoints) CanPost(ctx context.Context, userID, groupID string) error {
	return endpointx.Outcome(e.CanPostEndpoint(ctx, CanPostRequest{UserID: userID, GroupID: groupID}))
}

func (e Endpoints) Membership(ctx context.Context, groupID, userID string) (Member, error) {
	return memberOf(e.MembershipEndpoint(ctx, MembershipRequest{GroupID: groupID, UserID: userID}))
}

func (e Endpoints) ListMemberIDs(ctx context.Context, groupID string) ([]string, error) {
	resp, err := e.ListMemberIDsEndpoint(ctx, MemberIDsRequest{GroupID: groupID})
	if err := endpointx.Outcome(resp, err); err != nil {
		return nil, err
	}
	return resp.(MemberIDsResponse).UserIDs, nil
}

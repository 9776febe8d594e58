package group

import (
	"context"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	grpctransport "github.com/go-kit/kit/transport/grpc"
	"github.com/go-kit/log"
	"google.golang.org/grpc"

	"github.com/beehive-im/beehive/group/grouppb"
	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/grpcx"
)

type grpcServer struct {
	grouppb.UnimplementedGroupServiceServer
	create, get, update, dissolve, listMembers, addMembers, removeMember grpctransport.Handler
	setRole, transfer, muteMember, muteAll, listMyGroups                 grpctransport.Handler
	canPost, membership, memberIDs                                       grpctransport.Handler
}

// NewGRPCServer serves e as grouppb.GroupServiceServer.
func NewGRPCServer(e Endpoints, logger log.Logger) grouppb.GroupServiceServer {
	opts := grpcx.ServerOptions()
	h := func(ep endpoint.Endpoint, dec grpctransport.DecodeRequestFunc, enc func(any) any) grpctransport.Handler {
		return grpctransport.NewServer(ep, dec, encodeOrFail(enc), opts...)
	}
	encGroup := func(r any) any { return &grouppb.GroupResponse{Group: groupToPB(r.(GroupResponse).Group)} }
	encMember := func(r any) any { return &grouppb.MemberResponse{Member: memberToPB(r.(MemberResponse).Member)} }
	return &grpcServer{
		create: h(e.CreateGroupEndpoint, func(_ context.Context, r any) (any, error) {
			req := r.(*grouppb.CreateGroupRequest)
			return CreateGroupRequest{CreateInput: CreateInput{Name: req.GetName(), MemberIDs: req.GetMemberIds(), Announcement: req.GetAnnouncement()}}, nil
		}, encGroup),
		get: h(e.GetGroupEndpoint, func(_ context.Context, r any) (any, error) {
			return GroupRequest{GroupID: r.(*grouppb.GetGroupRequest).GetGroupId()}, nil
		}, encGroup),
		update: h(e.UpdateGroupEndpoint, func(_ context.Context, r any) (any, error) {
			req := r.(*grouppb.UpdateGroupRequest)
			return UpdateGroupRequest{GroupID: req.GetGroupId(), Update: Update{Name: req.Name, Announcement: req.Announcement, MembersCanInvite: req.MembersCanInvite}}, nil
		}, encGroup),
		dissolve: h(e.DissolveGroupEndpoint, func(_ context.Context, r any) (any, error) {
			return GroupRequest{GroupID: r.(*grouppb.DissolveGroupRequest).GetGroupId()}, nil
		}, func(any) any { return &grouppb.DissolveGroupResponse{} }),
		listMembers: h(e.ListMembersEndpoint, func(_ context.Context, r any) (any, error) {
			req := r.(*grouppb.ListMembersRequest)
			return ListMembersRequest{GroupID: req.GetGroupId(), Cursor: req.GetCursor(), Limit: int(req.GetLimit())}, nil
		}, func(r any) any {
			p := r.(MemberPageResponse)
			return &grouppb.ListMembersResponse{Members: membersToPB(p.Members), NextCursor: p.NextCursor}
		}),
		addMembers: h(e.AddMembersEndpoint, func(_ context.Context, r any) (any, error) {
			req := r.(*grouppb.AddMembersRequest)
			return AddMembersRequest{GroupID: req.GetGroupId(), UserIDs: req.GetUserIds()}, nil
		}, func(r any) any { return &grouppb.AddMembersResponse{Members: membersToPB(r.(MembersResponse).Members)} }),
		removeMember: h(e.RemoveMemberEndpoint, func(_ context.Context, r any) (any, error) {
			req := r.(*grouppb.RemoveMemberRequest)
			return MemberRequest{GroupID: req.GetGroupId(), UserID: req.GetUserId()}, nil
		}, func(any) any { return &grouppb.RemoveMemberResponse{} }),
		setRole: h(e.SetRoleEndpoint, func(_ context.Context, r any) (any, error) {
			req := r.(*grouppb.SetRoleRequest)
			return SetRoleRequest{GroupID: req.GetGroupId(), UserID: req.GetUserId(), Role: Role(req.GetRole())}, nil
		}, encMember),
		transfer: h(e.TransferOwnershipEndpoint, func(_ context.Context, r any) (any, error) {
			req := r.(*grouppb.TransferOwnershipRequest)
			return MemberRequest{GroupID: req.GetGroupId(), UserID: req.GetUserId()}, nil
		}, encGroup),
		muteMember: h(e.MuteMemberEndpoint, func(_ context.Context, r any) (any, error) {
			req := r.(*grouppb.MuteMemberRequest)
			return MuteMemberRequest{GroupID: req.GetGroupId(), UserID: req.GetUserId(), Seconds: req.GetSeconds()}, nil
		}, encMember),
		muteAll: h(e.MuteAllEndpoint, func(_ context.Context, r any) (any, error) {
			req := r.(*grouppb.MuteAllRequest)
			return MuteAllRequest{GroupID: req.GetGroupId(), Muted: req.GetMuted()}, nil
		}, encGroup),
		listMyGroups: h(e.ListMyGroupsEndpoint, func(_ context.Context, r any) (any, error) {
			req := r.(*grouppb.ListMyGroupsRequest)
			return ListMyGroupsRequest{ActorID: req.GetUserId(), Cursor: req.GetCursor(), Limit: int(req.GetLimit())}, nil
		}, func(r any) any {
			p := r.(GroupPageResponse)
			out := &grouppb.ListMyGroupsResponse{Groups: make([]*grouppb.Group, 0, len(p.Groups)), NextCursor: p.NextCursor}
			for i := range p.Groups {
				out.Groups = append(out.Groups, groupToPB(&p.Groups[i]))
			}
			return out
		}),
		canPost: h(e.CanPostEndpoint, func(_ context.Context, r any) (any, error) {
			req := r.(*grouppb.CanPostRequest)
			return CanPostRequest{UserID: req.GetUserId(), GroupID: req.GetGroupId()}, nil
		}, func(any) any { return &grouppb.CanPostResponse{} }),
		membership: h(e.MembershipEndpoint, func(_ context.Context, r any) (any, error) {
			req := r.(*grouppb.GetMembershipRequest)
			return MembershipRequest{GroupID: req.GetGroupId(), UserID: req.GetUserId()}, nil
		}, encMember),
		memberIDs: h(e.ListMemberIDsEndpoint, func(_ context.Context, r any) (any, error) {
			return MemberIDsRequest{GroupID: r.(*grouppb.ListMemberIDsRequest).GetGroupId()}, nil
		}, func(r any) any { return &grouppb.ListMemberIDsResponse{UserIds: r.(MemberIDsResponse).UserIDs} }),
	}
}

// encodeOrFail turns a business error into the handler's error, which the
// grpcx interceptor maps to a status with the Beehive code.
func encodeOrFail(enc func(any) any) grpctransport.EncodeResponseFunc {
	return func(_ context.Context, resp any) (any, error) {
		if f, ok := resp.(endpointx.Failer); ok && f.Failed() != nil {
			return nil, f.Failed()
		}
		return enc(resp), nil
	}
}

func (s *grpcServer) CreateGroup(ctx context.Context, r *grouppb.CreateGroupRequest) (*grouppb.GroupResponse, error) {
	return grpcx.Serve[*grouppb.GroupResponse](s.create, ctx, r)
}

func (s *grpcServer) GetGroup(ctx context.Context, r *grouppb.GetGroupRequest) (*grouppb.GroupResponse, error) {
	return grpcx.Serve[*grouppb.GroupResponse](s.get, ctx, r)
}

func (s *grpcServer) UpdateGroup(ctx context.Context, r *grouppb.UpdateGroupRequest) (*grouppb.GroupResponse, error) {
	return grpcx.Serve[*grouppb.GroupResponse](s.update, ctx, r)
}

func (s *grpcServer) DissolveGroup(ctx context.Context, r *grouppb.DissolveGroupRequest) (*grouppb.DissolveGroupResponse, error) {
	return grpcx.Serve[*grouppb.DissolveGroupResponse](s.dissolve, ctx, r)
}

func (s *grpcServer) ListMembers(ctx context.Context, r *grouppb.ListMembersRequest) (*grouppb.ListMembersResponse, error) {
	return grpcx.Serve[*grouppb.ListMembersResponse](s.listMembers, ctx, r)
}

func (s *grpcServer) AddMembers(ctx context.Context, r *grouppb.AddMembersRequest) (*grouppb.AddMembersResponse, error) {
	return grpcx.Serve[*grouppb.AddMembersResponse](s.addMembers, ctx, r)
}

func (s *grpcServer) RemoveMember(ctx context.Context, r *grouppb.RemoveMemberRequest) (*grouppb.RemoveMemberResponse, error) {
	return grpcx.Serve[*grouppb.RemoveMemberResponse](s.removeMember, ctx, r)
}

func (s *grpcServer) SetRole(ctx context.Context, r *grouppb.SetRoleRequest) (*grouppb.MemberResponse, error) {
	return grpcx.Serve[*grouppb.MemberResponse](s.setRole, ctx, r)
}

func (s *grpcServer) TransferOwnership(ctx context.Context, r *grouppb.TransferOwnershipRequest) (*grouppb.GroupResponse, error) {
	return grpcx.Serve[*grouppb.GroupResponse](s.transfer, ctx, r)
}

func (s *grpcServer) MuteMember(ctx context.Context, r *grouppb.MuteMemberRequest) (*grouppb.MemberResponse, error) {
	return grpcx.Serve[*grouppb.MemberResponse](s.muteMember, ctx, r)
}

func (s *grpcServer) MuteAll(ctx context.Context, r *grouppb.MuteAllRequest) (*grouppb.GroupResponse, error) {
	return grpcx.Serve[*grouppb.GroupResponse](s.muteAll, ctx, r)
}

func (s *grpcServer) ListMyGroups(ctx context.Context, r *grouppb.ListMyGroupsRequest) (*grouppb.ListMyGroupsResponse, error) {
	return grpcx.Serve[*grouppb.ListMyGroupsResponse](s.listMyGroups, ctx, r)
}

func (s *grpcServer) CanPost(ctx context.Context, r *grouppb.CanPostRequest) (*grouppb.CanPostResponse, error) {
	return grpcx.Serve[*grouppb.CanPostResponse](s.canPost, ctx, r)
}

func (s *grpcServer) GetMembership(ctx context.Context, r *grouppb.GetMembershipRequest) (*grouppb.MemberResponse, error) {
	return grpcx.Serve[*grouppb.MemberResponse](s.membership, ctx, r)
}

func (s *grpcServer) ListMemberIDs(ctx context.Context, r *grouppb.ListMemberIDsRequest) (*grouppb.ListMemberIDsResponse, error) {
	return grpcx.Serve[*grouppb.ListMemberIDsResponse](s.memberIDs, ctx, r)
}

// Conversions.

func groupToPB(g *Group) *grouppb.Group {
	if g == nil {
		return nil
	}
	return &grouppb.Group{Id: g.ID, Name: g.Name, OwnerId: g.OwnerID, Announcement: g.Announcement,
		MembersCanInvite: g.MembersCanInvite, MutedAll: g.MutedAll, MemberCount: int64(g.MemberCount),
		CreatedAt: grpcx.Timestamp(g.CreatedAt), UpdatedAt: grpcx.Timestamp(g.UpdatedAt)}
}

func groupFromPB(g *grouppb.Group) Group {
	return Group{ID: g.GetId(), Name: g.GetName(), OwnerID: g.GetOwnerId(), Announcement: g.GetAnnouncement(),
		MembersCanInvite: g.GetMembersCanInvite(), MutedAll: g.GetMutedAll(), MemberCount: int(g.GetMemberCount()),
		CreatedAt: grpcx.Time(g.GetCreatedAt()), UpdatedAt: grpcx.Time(g.GetUpdatedAt())}
}

func memberToPB(m *Member) *grouppb.Member {
	if m == nil {
		return nil
	}
	out := &grouppb.Member{UserId: m.UserID, Role: string(m.Role), JoinedAt: grpcx.Timestamp(m.JoinedAt), JoinedSeq: m.JoinedSeq}
	if m.MutedUntil != nil {
		out.MutedUntil = grpcx.Timestamp(*m.MutedUntil)
	}
	return out
}

func memberFromPB(m *grouppb.Member) Member {
	out := Member{UserID: m.GetUserId(), Role: Role(m.GetRole()), JoinedAt: grpcx.Time(m.GetJoinedAt()), JoinedSeq: m.GetJoinedSeq()}
	if m.GetMutedUntil() != nil {
		t := grpcx.Time(m.GetMutedUntil())
		out.MutedUntil = &t
	}
	return out
}

func membersToPB(ms []Member) []*grouppb.Member {
	out := make([]*grouppb.Member, 0, len(ms))
	for i := range ms {
		out = append(out, memberToPB(&ms[i]))
	}
	return out
}

func membersFromPB(ms []*grouppb.Member) []Member {
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, memberFromPB(m))
	}
	return out
}

// Client side.

const grpcService = "beehive.group.v1.GroupService"

// NewGRPCClient returns a Service calling the instances instancer finds,
// through one shared connection per instance, retries and breakers.
// serviceToken is sent for the internal methods.
func NewGRPCClient(instancer sd.Instancer, conns *grpcx.Conns, serviceToken string, logger log.Logger) Service {
	return NewGRPCClientEndpoints(grpcx.BalancedClient("group", grpcService, instancer, conns, serviceToken, logger, grpcx.BalanceOptions{}))
}

// NewGRPCClientConn returns a Service over one connection (tests, and
// static single-address setups).
func NewGRPCClientConn(cc *grpc.ClientConn, serviceToken string) Service {
	return NewGRPCClientEndpoints(grpcx.ConnClient(cc, grpcService, serviceToken))
}

// NewGRPCClientEndpoints builds the client Endpoints with mk making each
// method's endpoint.
func NewGRPCClientEndpoints(mk grpcx.ClientEndpoint) Endpoints {
	decGroup := func(_ context.Context, r any) (any, error) {
		g := r.(*grouppb.GroupResponse).GetGroup()
		if g == nil {
			return GroupResponse{}, nil
		}
		out := groupFromPB(g)
		return GroupResponse{Group: &out}, nil
	}
	decMember := func(_ context.Context, r any) (any, error) {
		m := r.(*grouppb.MemberResponse).GetMember()
		if m == nil {
			return MemberResponse{}, nil
		}
		out := memberFromPB(m)
		return MemberResponse{Member: &out}, nil
	}
	empty := func(_ context.Context, _ any) (any, error) { return EmptyResponse{}, nil }
	return Endpoints{
		CreateGroupEndpoint: mk("CreateGroup", func(_ context.Context, r any) (any, error) {
			req := r.(CreateGroupRequest)
			return &grouppb.CreateGroupRequest{Name: req.Name, MemberIds: req.MemberIDs, Announcement: req.Announcement}, nil
		}, func(ctx context.Context, r any) (any, error) {
			// CreateGroup always creates: 201 at the HTTP edge.
			resp, err := decGroup(ctx, r)
			if gr, ok := resp.(GroupResponse); ok && gr.Group != nil {
				gr.Created = true
				return gr, err
			}
			return resp, err
		}, grouppb.GroupResponse{}),
		GetGroupEndpoint: mk("GetGroup", func(_ context.Context, r any) (any, error) {
			return &grouppb.GetGroupRequest{GroupId: r.(GroupRequest).GroupID}, nil
		}, decGroup, grouppb.GroupResponse{}),
		UpdateGroupEndpoint: mk("UpdateGroup", func(_ context.Context, r any) (any, error) {
			req := r.(UpdateGroupRequest)
			return &grouppb.UpdateGroupRequest{GroupId: req.GroupID, Name: req.Name, Announcement: req.Announcement, MembersCanInvite: req.MembersCanInvite}, nil
		}, decGroup, grouppb.GroupResponse{}),
		DissolveGroupEndpoint: mk("DissolveGroup", func(_ context.Context, r any) (any, error) {
			return &grouppb.DissolveGroupRequest{GroupId: r.(GroupRequest).GroupID}, nil
		}, empty, grouppb.DissolveGroupResponse{}),
		ListMembersEndpoint: mk("ListMembers", func(_ context.Context, r any) (any, error) {
			req := r.(ListMembersRequest)
			return &grouppb.ListMembersRequest{GroupId: req.GroupID, Cursor: req.Cursor, Limit: grpcx.Limit32(req.Limit)}, nil
		}, func(_ context.Context, r any) (any, error) {
			resp := r.(*grouppb.ListMembersResponse)
			return MemberPageResponse{MemberPage: MemberPage{Members: membersFromPB(resp.GetMembers()), NextCursor: resp.GetNextCursor()}}, nil
		}, grouppb.ListMembersResponse{}),
		AddMembersEndpoint: mk("AddMembers", func(_ context.Context, r any) (any, error) {
			req := r.(AddMembersRequest)
			return &grouppb.AddMembersRequest{GroupId: req.GroupID, UserIds: req.UserIDs}, nil
		}, func(_ context.Context, r any) (any, error) {
			return MembersResponse{Members: membersFromPB(r.(*grouppb.AddMembersResponse).GetMembers())}, nil
		}, grouppb.AddMembersResponse{}),
		RemoveMemberEndpoint: mk("RemoveMember", func(_ context.Context, r any) (any, error) {
			req := r.(MemberRequest)
			return &grouppb.RemoveMemberRequest{GroupId: req.GroupID, UserId: req.UserID}, nil
		}, empty, grouppb.RemoveMemberResponse{}),
		SetRoleEndpoint: mk("SetRole", func(_ context.Context, r any) (any, error) {
			req := r.(SetRoleRequest)
			return &grouppb.SetRoleRequest{GroupId: req.GroupID, UserId: req.UserID, Role: string(req.Role)}, nil
		}, decMember, grouppb.MemberResponse{}),
		TransferOwnershipEndpoint: mk("TransferOwnership", func(_ context.Context, r any) (any, error) {
			req := r.(MemberRequest)
			return &grouppb.TransferOwnershipRequest{GroupId: req.GroupID, UserId: req.UserID}, nil
		}, decGroup, grouppb.GroupResponse{}),
		MuteMemberEndpoint: mk("MuteMember", func(_ context.Context, r any) (any, error) {
			req := r.(MuteMemberRequest)
			return &grouppb.MuteMemberRequest{GroupId: req.GroupID, UserId: req.UserID, Seconds: req.Seconds}, nil
		}, decMember, grouppb.MemberResponse{}),
		MuteAllEndpoint: mk("MuteAll", func(_ context.Context, r any) (any, error) {
			req := r.(MuteAllRequest)
			return &grouppb.MuteAllRequest{GroupId: req.GroupID, Muted: req.Muted}, nil
		}, decGroup, grouppb.GroupResponse{}),
		ListMyGroupsEndpoint: mk("ListMyGroups", func(_ context.Context, r any) (any, error) {
			req := r.(ListMyGroupsRequest)
			return &grouppb.ListMyGroupsRequest{UserId: req.ActorID, Cursor: req.Cursor, Limit: grpcx.Limit32(req.Limit)}, nil
		}, func(_ context.Context, r any) (any, error) {
			resp := r.(*grouppb.ListMyGroupsResponse)
			page := GroupPage{Groups: make([]Group, 0, len(resp.GetGroups())), NextCursor: resp.GetNextCursor()}
			for _, g := range resp.GetGroups() {
				page.Groups = append(page.Groups, groupFromPB(g))
			}
			return GroupPageResponse{GroupPage: page}, nil
		}, grouppb.ListMyGroupsResponse{}),
		CanPostEndpoint: mk("CanPost", func(_ context.Context, r any) (any, error) {
			req := r.(CanPostRequest)
			return &grouppb.CanPostRequest{UserId: req.UserID, GroupId: req.GroupID}, nil
		}, empty, grouppb.CanPostResponse{}),
		MembershipEndpoint: mk("GetMembership", func(_ context.Context, r any) (any, error) {
			req := r.(MembershipRequest)
			return &grouppb.GetMembershipRequest{GroupId: req.GroupID, UserId: req.UserID}, nil
		}, decMember, grouppb.MemberResponse{}),
		ListMemberIDsEndpoint: mk("ListMemberIDs", func(_ context.Context, r any) (any, error) {
			return &grouppb.ListMemberIDsRequest{GroupId: r.(MemberIDsRequest).GroupID}, nil
		}, func(_ context.Context, r any) (any, error) {
			ids := r.(*grouppb.ListMemberIDsResponse).GetUserIds()
			if ids == nil {
				ids = []string{}
			}
			return MemberIDsResponse{UserIDs: ids}, nil
		}, grouppb.ListMemberIDsResponse{}),
	}
}

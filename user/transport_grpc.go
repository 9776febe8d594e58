package user

import (
	"context"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	grpctransport "github.com/go-kit/kit/transport/grpc"
	"github.com/go-kit/log"
	"google.golang.org/grpc"

	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/user/userpb"
)

type grpcServer struct {
	userpb.UnimplementedUserServiceServer
	register, getUser, getUserByID, updateUser, lookupByEmail, setPasswordHash grpctransport.Handler
	sendRequest, acceptRequest, declineRequest, listRequests                   grpctransport.Handler
	listFriends, removeFriend, block, unblock, listBlocks                      grpctransport.Handler
	canMessage, listFriendIDs                                                  grpctransport.Handler
}

// NewGRPCServer serves e as userpb.UserServiceServer. Register it on a
// grpcx.NewServer, whose interceptor puts the caller's credentials into
// the context and maps errors to statuses.
func NewGRPCServer(e Endpoints, logger log.Logger) userpb.UserServiceServer {
	_ = logger // the grpcx interceptor logs infrastructure failures once
	opts := grpcx.ServerOptions()
	h := func(ep endpoint.Endpoint, dec grpctransport.DecodeRequestFunc, enc grpctransport.EncodeResponseFunc) grpctransport.Handler {
		return grpctransport.NewServer(ep, dec, enc, opts...)
	}
	return &grpcServer{
		register:        h(e.RegisterEndpoint, decRegisterReq, encUserResp),
		getUser:         h(e.GetUserEndpoint, decGetUserReq, encUserResp),
		getUserByID:     h(e.GetUserByIDEndpoint, decGetUserByIDReq, encAccountResp),
		updateUser:      h(e.UpdateUserEndpoint, decUpdateUserReq, encUserResp),
		lookupByEmail:   h(e.LookupByEmailEndpoint, decLookupByEmailReq, encAccountResp),
		setPasswordHash: h(e.SetPasswordHashEndpoint, decSetPasswordHashReq, encEmpty(func() any { return &userpb.SetPasswordHashResponse{} })),
		sendRequest:     h(e.SendFriendRequestEndpoint, decSendFriendRequestReq, encFriendRequestResp),
		acceptRequest:   h(e.AcceptFriendRequestEndpoint, decFriendRequestActionReq, encFriendRequestResp),
		declineRequest:  h(e.DeclineFriendRequestEndpoint, decFriendRequestActionReq, encFriendRequestResp),
		listRequests:    h(e.ListFriendRequestsEndpoint, decListFriendRequestsReq, encListFriendRequestsResp),
		listFriends:     h(e.ListFriendsEndpoint, decListReq, encListFriendsResp),
		removeFriend:    h(e.RemoveFriendEndpoint, decPairReq, encEmpty(func() any { return &userpb.RemoveFriendResponse{} })),
		block:           h(e.BlockEndpoint, decPairReq, encBlockResp),
		unblock:         h(e.UnblockEndpoint, decPairReq, encEmpty(func() any { return &userpb.UnblockResponse{} })),
		listBlocks:      h(e.ListBlocksEndpoint, decListReq, encListBlocksResp),
		canMessage:      h(e.CanMessageEndpoint, decCanMessageReq, encCanMessageResp),
		listFriendIDs:   h(e.ListFriendIDsEndpoint, decListFriendIDsReq, encListFriendIDsResp),
	}
}

func (s *grpcServer) Register(ctx context.Context, r *userpb.RegisterRequest) (*userpb.UserResponse, error) {
	return grpcx.Serve[*userpb.UserResponse](s.register, ctx, r)
}

func (s *grpcServer) GetUser(ctx context.Context, r *userpb.GetUserRequest) (*userpb.UserResponse, error) {
	return grpcx.Serve[*userpb.UserResponse](s.getUser, ctx, r)
}

func (s *grpcServer) GetUserByID(ctx context.Context, r *userpb.GetUserByIDRequest) (*userpb.AccountResponse, error) {
	return grpcx.Serve[*userpb.AccountResponse](s.getUserByID, ctx, r)
}

func (s *grpcServer) UpdateUser(ctx context.Context, r *userpb.UpdateUserRequest) (*userpb.UserResponse, error) {
	return grpcx.Serve[*userpb.UserResponse](s.updateUser, ctx, r)
}

func (s *grpcServer) LookupByEmail(ctx context.Context, r *userpb.LookupByEmailRequest) (*userpb.AccountResponse, error) {
	return grpcx.Serve[*userpb.AccountResponse](s.lookupByEmail, ctx, r)
}

func (s *grpcServer) SetPasswordHash(ctx context.Context, r *userpb.SetPasswordHashRequest) (*userpb.SetPasswordHashResponse, error) {
	return grpcx.Serve[*userpb.SetPasswordHashResponse](s.setPasswordHash, ctx, r)
}

func (s *grpcServer) SendFriendRequest(ctx context.Context, r *userpb.SendFriendRequestRequest) (*userpb.FriendRequestResponse, error) {
	return grpcx.Serve[*userpb.FriendRequestResponse](s.sendRequest, ctx, r)
}

func (s *grpcServer) AcceptFriendRequest(ctx context.Context, r *userpb.FriendRequestActionRequest) (*userpb.FriendRequestResponse, error) {
	return grpcx.Serve[*userpb.FriendRequestResponse](s.acceptRequest, ctx, r)
}

func (s *grpcServer) DeclineFriendRequest(ctx context.Context, r *userpb.FriendRequestActionRequest) (*userpb.FriendRequestResponse, error) {
	return grpcx.Serve[*userpb.FriendRequestResponse](s.declineRequest, ctx, r)
}

func (s *grpcServer) ListFriendRequests(ctx context.Context, r *userpb.ListFriendRequestsRequest) (*userpb.ListFriendRequestsResponse, error) {
	return grpcx.Serve[*userpb.ListFriendRequestsResponse](s.listRequests, ctx, r)
}

func (s *grpcServer) ListFriends(ctx context.Context, r *userpb.ListRequest) (*userpb.ListFriendsResponse, error) {
	return grpcx.Serve[*userpb.ListFriendsResponse](s.listFriends, ctx, r)
}

func (s *grpcServer) RemoveFriend(ctx context.Context, r *userpb.PairRequest) (*userpb.RemoveFriendResponse, error) {
	return grpcx.Serve[*userpb.RemoveFriendResponse](s.removeFriend, ctx, r)
}

func (s *grpcServer) Block(ctx context.Context, r *userpb.PairRequest) (*userpb.BlockResponse, error) {
	return grpcx.Serve[*userpb.BlockResponse](s.block, ctx, r)
}

func (s *grpcServer) Unblock(ctx context.Context, r *userpb.PairRequest) (*userpb.UnblockResponse, error) {
	return grpcx.Serve[*userpb.UnblockResponse](s.unblock, ctx, r)
}

func (s *grpcServer) ListBlocks(ctx context.Context, r *userpb.ListRequest) (*userpb.ListBlocksResponse, error) {
	return grpcx.Serve[*userpb.ListBlocksResponse](s.listBlocks, ctx, r)
}

func (s *grpcServer) CanMessage(ctx context.Context, r *userpb.CanMessageRequest) (*userpb.CanMessageResponse, error) {
	return grpcx.Serve[*userpb.CanMessageResponse](s.canMessage, ctx, r)
}

func (s *grpcServer) ListFriendIDs(ctx context.Context, r *userpb.ListFriendIDsRequest) (*userpb.ListFriendIDsResponse, error) {
	return grpcx.Serve[*userpb.ListFriendIDsResponse](s.listFriendIDs, ctx, r)
}

// Server-side codecs. A business error becomes the handler's error, which
// the grpcx interceptor maps to a status with the Beehive code.

func decRegisterReq(_ context.Context, r any) (any, error) {
	req := r.(*userpb.RegisterRequest)
	return RegisterRequest{Registration: Registration{
		Nickname: req.GetNickname(), Email: req.GetEmail(), Password: req.GetPassword(),
		Avatar: req.GetAvatar(), Description: req.GetDescription(),
	}}, nil
}

func decGetUserReq(_ context.Context, r any) (any, error) {
	req := r.(*userpb.GetUserRequest)
	return GetUserRequest{UserID: req.GetUserId()}, nil
}

func decGetUserByIDReq(_ context.Context, r any) (any, error) {
	return UserRequest{UserID: r.(*userpb.GetUserByIDRequest).GetUserId()}, nil
}

func decUpdateUserReq(_ context.Context, r any) (any, error) {
	req := r.(*userpb.UpdateUserRequest)
	return UpdateUserRequest{UserID: req.GetUserId(), ProfileUpdate: ProfileUpdate{
		Nickname: req.Nickname, Avatar: req.Avatar, Description: req.Description,
	}}, nil
}

func decLookupByEmailReq(_ context.Context, r any) (any, error) {
	return LookupByEmailRequest{Email: r.(*userpb.LookupByEmailRequest).GetEmail()}, nil
}

func decSetPasswordHashReq(_ context.Context, r any) (any, error) {
	req := r.(*userpb.SetPasswordHashRequest)
	return SetPasswordHashRequest{UserID: req.GetUserId(), PasswordHash: req.GetPasswordHash()}, nil
}

func decSendFriendRequestReq(_ context.Context, r any) (any, error) {
	req := r.(*userpb.SendFriendRequestRequest)
	return SendFriendRequestRequest{UserID: req.GetUserId(), ToUserID: req.GetToUserId(), Message: req.GetMessage()}, nil
}

func decFriendRequestActionReq(_ context.Context, r any) (any, error) {
	req := r.(*userpb.FriendRequestActionRequest)
	return FriendRequestActionRequest{UserID: req.GetUserId(), RequestID: req.GetRequestId()}, nil
}

func decListFriendRequestsReq(_ context.Context, r any) (any, error) {
	return ListRequest{UserID: r.(*userpb.ListFriendRequestsRequest).GetUserId()}, nil
}

func decListReq(_ context.Context, r any) (any, error) {
	req := r.(*userpb.ListRequest)
	return ListRequest{UserID: req.GetUserId(), Cursor: req.GetCursor(), Limit: int(req.GetLimit())}, nil
}

func decPairReq(_ context.Context, r any) (any, error) {
	req := r.(*userpb.PairRequest)
	return PairRequest{UserID: req.GetUserId(), OtherID: req.GetOtherUserId()}, nil
}

func decCanMessageReq(_ context.Context, r any) (any, error) {
	req := r.(*userpb.CanMessageRequest)
	return CanMessageRequest{FromUserID: req.GetFromUserId(), ToUserID: req.GetToUserId()}, nil
}

func decListFriendIDsReq(_ context.Context, r any) (any, error) {
	return UserRequest{UserID: r.(*userpb.ListFriendIDsRequest).GetUserId()}, nil
}

func encUserResp(_ context.Context, resp any) (any, error) {
	r := resp.(UserResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	out := &userpb.UserResponse{}
	if r.User != nil {
		out.User = userToPB(*r.User)
	}
	return out, nil
}

func encAccountResp(_ context.Context, resp any) (any, error) {
	r := resp.(AccountResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	return &userpb.AccountResponse{User: userToPB(r.Account.User), PasswordHash: r.Account.PasswordHash}, nil
}

func encEmpty(mk func() any) grpctransport.EncodeResponseFunc {
	return func(_ context.Context, resp any) (any, error) {
		if err := resp.(EmptyResponse).Err; err != nil {
			return nil, err
		}
		return mk(), nil
	}
}

func encFriendRequestResp(_ context.Context, resp any) (any, error) {
	r := resp.(FriendRequestResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	out := &userpb.FriendRequestResponse{}
	if r.FriendRequest != nil {
		out.FriendRequest = requestToPB(*r.FriendRequest)
	}
	return out, nil
}

func encListFriendRequestsResp(_ context.Context, resp any) (any, error) {
	r := resp.(FriendRequestsResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	out := &userpb.ListFriendRequestsResponse{}
	for _, fr := range r.Incoming {
		out.Incoming = append(out.Incoming, requestToPB(fr))
	}
	for _, fr := range r.Outgoing {
		out.Outgoing = append(out.Outgoing, requestToPB(fr))
	}
	return out, nil
}

func encListFriendsResp(_ context.Context, resp any) (any, error) {
	r := resp.(FriendsResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	out := &userpb.ListFriendsResponse{NextCursor: r.NextCursor}
	for _, f := range r.Friends {
		out.Friends = append(out.Friends, &userpb.Friend{User: userToPB(f.User), Since: grpcx.Timestamp(f.Since)})
	}
	return out, nil
}

func encBlockResp(_ context.Context, resp any) (any, error) {
	r := resp.(BlockResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	out := &userpb.BlockResponse{}
	if r.Block != nil {
		out.Block = blockToPB(*r.Block)
	}
	return out, nil
}

func encListBlocksResp(_ context.Context, resp any) (any, error) {
	r := resp.(BlocksResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	out := &userpb.ListBlocksResponse{NextCursor: r.NextCursor}
	for _, b := range r.Blocks {
		out.Blocks = append(out.Blocks, blockToPB(b))
	}
	return out, nil
}

func encCanMessageResp(_ context.Context, resp any) (any, error) {
	r := resp.(CanMessageResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	return &userpb.CanMessageResponse{Allowed: r.Allowed}, nil
}

func encListFriendIDsResp(_ context.Context, resp any) (any, error) {
	r := resp.(FriendIDsResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	return &userpb.ListFriendIDsResponse{UserIds: r.UserIDs}, nil
}

// Conversions.

func userToPB(u User) *userpb.User {
	return &userpb.User{Id: u.ID, Nickname: u.Nickname, Email: u.Email, Avatar: u.Avatar, Description: u.Description,
		CreatedAt: grpcx.Timestamp(u.CreatedAt), UpdatedAt: grpcx.Timestamp(u.UpdatedAt)}
}

func userFromPB(u *userpb.User) User {
	return User{ID: u.GetId(), Nickname: u.GetNickname(), Email: u.GetEmail(), Avatar: u.GetAvatar(), Description: u.GetDescription(),
		CreatedAt: grpcx.Time(u.GetCreatedAt()), UpdatedAt: grpcx.Time(u.GetUpdatedAt())}
}

func requestToPB(r FriendRequest) *userpb.FriendRequest {
	return &userpb.FriendRequest{Id: r.ID, FromUserId: r.FromUserID, ToUserId: r.ToUserID, Message: r.Message, State: r.State, CreatedAt: grpcx.Timestamp(r.CreatedAt)}
}

func requestFromPB(r *userpb.FriendRequest) FriendRequest {
	return FriendRequest{ID: r.GetId(), FromUserID: r.GetFromUserId(), ToUserID: r.GetToUserId(), Message: r.GetMessage(), State: r.GetState(), CreatedAt: grpcx.Time(r.GetCreatedAt())}
}

func requestsFromPB(rs []*userpb.FriendRequest) []FriendRequest {
	out := make([]FriendRequest, 0, len(rs))
	for _, r := range rs {
		out = append(out, requestFromPB(r))
	}
	return out
}

func blockToPB(b Block) *userpb.Block {
	return &userpb.Block{UserId: b.UserID, CreatedAt: grpcx.Timestamp(b.CreatedAt)}
}

func blockFromPB(b *userpb.Block) Block {
	return Block{UserID: b.GetUserId(), CreatedAt: grpcx.Time(b.GetCreatedAt())}
}

// Client side.

const grpcService = "beehive.user.v1.UserService"

// NewGRPCClient returns a Service calling the instances instancer finds,
// through one shared connection per instance, retries and breakers.
// serviceToken is sent with every call (the internal methods need it); a
// user token in the context is forwarded too and wins for public methods.
func NewGRPCClient(instancer sd.Instancer, conns *grpcx.Conns, serviceToken string, logger log.Logger) Service {
	return NewGRPCClientEndpoints(grpcx.BalancedClient("user", grpcService, instancer, conns, serviceToken, logger, grpcx.BalanceOptions{}))
}

// NewGRPCClientConn returns a Service over one connection (tests, and
// static single-address setups).
func NewGRPCClientConn(cc *grpc.ClientConn, serviceToken string) Service {
	return NewGRPCClientEndpoints(grpcx.ConnClient(cc, grpcService, serviceToken))
}

// NewGRPCClientEndpoints builds the client Endpoints with mk making each
// method's endpoint.
func NewGRPCClientEndpoints(mk grpcx.ClientEndpoint) Endpoints {
	decUser := func(_ context.Context, r any) (any, error) {
		resp := r.(*userpb.UserResponse)
		if resp.GetUser() == nil {
			return UserResponse{}, nil
		}
		u := userFromPB(resp.GetUser())
		return UserResponse{User: &u}, nil
	}
	decAccount := func(_ context.Context, r any) (any, error) {
		resp := r.(*userpb.AccountResponse)
		return AccountResponse{Account: Account{User: userFromPB(resp.GetUser()), PasswordHash: resp.GetPasswordHash()}}, nil
	}
	decRequest := func(_ context.Context, r any) (any, error) {
		resp := r.(*userpb.FriendRequestResponse)
		if resp.GetFriendRequest() == nil {
			return FriendRequestResponse{}, nil
		}
		fr := requestFromPB(resp.GetFriendRequest())
		return FriendRequestResponse{FriendRequest: &fr}, nil
	}
	// Register always creates: the HTTP edge answers 201 whether the
	// service is local or behind this client.
	decCreated := func(ctx context.Context, r any) (any, error) {
		resp, err := decUser(ctx, r)
		if ur, ok := resp.(UserResponse); ok && ur.User != nil {
			ur.Created = true
			return ur, err
		}
		return resp, err
	}
	empty := func(context.Context, any) (any, error) { return EmptyResponse{}, nil }
	encAction := func(_ context.Context, r any) (any, error) {
		req := r.(FriendRequestActionRequest)
		return &userpb.FriendRequestActionRequest{UserId: req.UserID, RequestId: req.RequestID}, nil
	}
	encList := func(_ context.Context, r any) (any, error) {
		req := r.(ListRequest)
		return &userpb.ListRequest{UserId: req.UserID, Cursor: req.Cursor, Limit: grpcx.Limit32(req.Limit)}, nil
	}
	encPair := func(_ context.Context, r any) (any, error) {
		req := r.(PairRequest)
		return &userpb.PairRequest{UserId: req.UserID, OtherUserId: req.OtherID}, nil
	}
	return Endpoints{
		RegisterEndpoint: mk("Register", func(_ context.Context, r any) (any, error) {
			in := r.(RegisterRequest).Registration
			return &userpb.RegisterRequest{Nickname: in.Nickname, Email: in.Email, Password: in.Password, Avatar: in.Avatar, Description: in.Description}, nil
		}, decCreated, userpb.UserResponse{}),
		GetUserEndpoint: mk("GetUser", func(_ context.Context, r any) (any, error) {
			req := r.(GetUserRequest)
			return &userpb.GetUserRequest{UserId: req.UserID}, nil
		}, decUser, userpb.UserResponse{}),
		GetUserByIDEndpoint: mk("GetUserByID", func(_ context.Context, r any) (any, error) {
			return &userpb.GetUserByIDRequest{UserId: r.(UserRequest).UserID}, nil
		}, decAccount, userpb.AccountResponse{}),
		UpdateUserEndpoint: mk("UpdateUser", func(_ context.Context, r any) (any, error) {
			req := r.(UpdateUserRequest)
			return &userpb.UpdateUserRequest{UserId: req.UserID, Nickname: req.Nickname, Avatar: req.Avatar, Description: req.Description}, nil
		}, decUser, userpb.UserResponse{}),
		LookupByEmailEndpoint: mk("LookupByEmail", func(_ context.Context, r any) (any, error) {
			return &userpb.LookupByEmailRequest{Email: r.(LookupByEmailRequest).Email}, nil
		}, decAccount, userpb.AccountResponse{}),
		SetPasswordHashEndpoint: mk("SetPasswordHash", func(_ context.Context, r any) (any, error) {
			req := r.(SetPasswordHashRequest)
			return &userpb.SetPasswordHashRequest{UserId: req.UserID, PasswordHash: req.PasswordHash}, nil
		}, empty, userpb.SetPasswordHashResponse{}),
		SendFriendRequestEndpoint: mk("SendFriendRequest", func(_ context.Context, r any) (any, error) {
			req := r.(SendFriendRequestRequest)
			return &userpb.SendFriendRequestRequest{UserId: req.UserID, ToUserId: req.ToUserID, Message: req.Message}, nil
		}, decRequest, userpb.FriendRequestResponse{}),
		AcceptFriendRequestEndpoint:  mk("AcceptFriendRequest", encAction, decRequest, userpb.FriendRequestResponse{}),
		DeclineFriendRequestEndpoint: mk("DeclineFriendRequest", encAction, decRequest, userpb.FriendRequestResponse{}),
		ListFriendRequestsEndpoint: mk("ListFriendRequests", func(_ context.Context, r any) (any, error) {
			return &userpb.ListFriendRequestsRequest{UserId: r.(ListRequest).UserID}, nil
		}, func(_ context.Context, r any) (any, error) {
			resp := r.(*userpb.ListFriendRequestsResponse)
			return FriendRequestsResponse{FriendRequests: FriendRequests{
				Incoming: requestsFromPB(resp.GetIncoming()), Outgoing: requestsFromPB(resp.GetOutgoing()),
			}}, nil
		}, userpb.ListFriendRequestsResponse{}),
		ListFriendsEndpoint: mk("ListFriends", encList, func(_ context.Context, r any) (any, error) {
			resp := r.(*userpb.ListFriendsResponse)
			page := FriendPage{Friends: make([]Friend, 0, len(resp.GetFriends())), NextCursor: resp.GetNextCursor()}
			for _, f := range resp.GetFriends() {
				page.Friends = append(page.Friends, Friend{User: userFromPB(f.GetUser()), Since: grpcx.Time(f.GetSince())})
			}
			return FriendsResponse{FriendPage: page}, nil
		}, userpb.ListFriendsResponse{}),
		RemoveFriendEndpoint: mk("RemoveFriend", encPair, empty, userpb.RemoveFriendResponse{}),
		BlockEndpoint: mk("Block", encPair, func(_ context.Context, r any) (any, error) {
			resp := r.(*userpb.BlockResponse)
			if resp.GetBlock() == nil {
				return BlockResponse{}, nil
			}
			b := blockFromPB(resp.GetBlock())
			return BlockResponse{Block: &b}, nil
		}, userpb.BlockResponse{}),
		UnblockEndpoint: mk("Unblock", encPair, empty, userpb.UnblockResponse{}),
		ListBlocksEndpoint: mk("ListBlocks", encList, func(_ context.Context, r any) (any, error) {
			resp := r.(*userpb.ListBlocksResponse)
			page := BlockPage{Blocks: make([]Block, 0, len(resp.GetBlocks())), NextCursor: resp.GetNextCursor()}
			for _, b := range resp.GetBlocks() {
				page.Blocks = append(page.Blocks, blockFromPB(b))
			}
			return BlocksResponse{BlockPage: page}, nil
		}, userpb.ListBlocksResponse{}),
		CanMessageEndpoint: mk("CanMessage", func(_ context.Context, r any) (any, error) {
			req := r.(CanMessageRequest)
			return &userpb.CanMessageRequest{FromUserId: req.FromUserID, ToUserId: req.ToUserID}, nil
		}, func(_ context.Context, r any) (any, error) {
			return CanMessageResponse{Allowed: r.(*userpb.CanMessageResponse).GetAllowed()}, nil
		}, userpb.CanMessageResponse{}),
		ListFriendIDsEndpoint: mk("ListFriendIDs", func(_ context.Context, r any) (any, error) {
			return &userpb.ListFriendIDsRequest{UserId: r.(UserRequest).UserID}, nil
		}, func(_ context.Context, r any) (any, error) {
			ids := r.(*userpb.ListFriendIDsResponse).GetUserIds()
			if ids == nil {
				ids = []string{}
			}
			return FriendIDsResponse{UserIDs: ids}, nil
		}, userpb.ListFriendIDsResponse{}),
	}
}

package query

import (
	"context"
	"encoding/json"

	"github.com/go-kit/kit/sd"
	grpctransport "github.com/go-kit/kit/transport/grpc"
	"github.com/go-kit/log"
	"google.golang.org/grpc"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/query/querypb"
	"github.com/beehive-im/beehive/shared/grpcx"
)

type grpcServer struct {
	querypb.UnimplementedQueryServiceServer
	history, sync, conversations, conversation, updateSettings grpctransport.Handler
	unread, getMessage, ack, acked                             grpctransport.Handler
}

// NewGRPCServer serves e as querypb.QueryServiceServer.
func NewGRPCServer(e Endpoints, logger log.Logger) querypb.QueryServiceServer {
	opts := grpcx.ServerOptions()
	return &grpcServer{
		history:        grpctransport.NewServer(e.HistoryEndpoint, decHistoryReq, encHistoryResp, opts...),
		sync:           grpctransport.NewServer(e.SyncEndpoint, decSyncReq, encSyncResp, opts...),
		conversations:  grpctransport.NewServer(e.ConversationsEndpoint, decConversationsReq, encConversationsResp, opts...),
		conversation:   grpctransport.NewServer(e.ConversationEndpoint, decConversationReq, encConversationResp, opts...),
		updateSettings: grpctransport.NewServer(e.UpdateSettingsEndpoint, decUpdateSettingsReq, encConversationResp, opts...),
		unread:         grpctransport.NewServer(e.UnreadEndpoint, decUnreadReq, encUnreadResp, opts...),
		getMessage:     grpctransport.NewServer(e.GetMessageEndpoint, decGetMessageReq, encGetMessageResp, opts...),
		ack:            grpctransport.NewServer(e.AckEndpoint, decAckReq, encAckResp, opts...),
		acked:          grpctransport.NewServer(e.AckedEndpoint, decAckedReq, encAckedResp, opts...),
	}
}

func (s *grpcServer) History(ctx context.Context, r *querypb.HistoryRequest) (*querypb.HistoryResponse, error) {
	return grpcx.Serve[*querypb.HistoryResponse](s.history, ctx, r)
}

func (s *grpcServer) Sync(ctx context.Context, r *querypb.SyncRequest) (*querypb.SyncResponse, error) {
	return grpcx.Serve[*querypb.SyncResponse](s.sync, ctx, r)
}

func (s *grpcServer) Conversations(ctx context.Context, r *querypb.ConversationsRequest) (*querypb.ConversationsResponse, error) {
	return grpcx.Serve[*querypb.ConversationsResponse](s.conversations, ctx, r)
}

func (s *grpcServer) Conversation(ctx context.Context, r *querypb.ConversationRequest) (*querypb.ConversationResponse, error) {
	return grpcx.Serve[*querypb.ConversationResponse](s.conversation, ctx, r)
}

func (s *grpcServer) UpdateSettings(ctx context.Context, r *querypb.UpdateSettingsRequest) (*querypb.ConversationResponse, error) {
	return grpcx.Serve[*querypb.ConversationResponse](s.updateSettings, ctx, r)
}

func (s *grpcServer) Unread(ctx context.Context, r *querypb.UnreadRequest) (*querypb.UnreadResponse, error) {
	return grpcx.Serve[*querypb.UnreadResponse](s.unread, ctx, r)
}

func (s *grpcServer) GetMessage(ctx context.Context, r *querypb.GetMessageRequest) (*querypb.GetMessageResponse, error) {
	return grpcx.Serve[*querypb.GetMessageResponse](s.getMessage, ctx, r)
}

func (s *grpcServer) Ack(ctx context.Context, r *querypb.AckRequest) (*querypb.AckResponse, error) {
	return grpcx.Serve[*querypb.AckResponse](s.ack, ctx, r)
}

func (s *grpcServer) Acked(ctx context.Context, r *querypb.AckedRequest) (*querypb.AckedResponse, error) {
	return grpcx.Serve[*querypb.AckedResponse](s.acked, ctx, r)
}

// Server-side codecs. A business error becomes the handler's error, which
// the grpcx interceptor maps to a status with the Beehive code.

func decHistoryReq(_ context.Context, r any) (any, error) {
	req := r.(*querypb.HistoryRequest)
	return HistoryRequest{UserID: req.GetUserId(), ConversationID: req.GetConversationId(), BeforeSeq: req.BeforeSeq, AfterSeq: req.AfterSeq, Limit: int(req.GetLimit())}, nil
}

func encHistoryResp(_ context.Context, resp any) (any, error) {
	r := resp.(HistoryResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	return &querypb.HistoryResponse{Messages: messagesToPB(r.Messages), HasMore: r.HasMore}, nil
}

func decSyncReq(_ context.Context, r any) (any, error) {
	req := r.(*querypb.SyncRequest)
	return SyncRequest{UserID: req.GetUserId(), Cursors: req.GetCursors(), Limit: int(req.GetLimit())}, nil
}

func encSyncResp(_ context.Context, resp any) (any, error) {
	r := resp.(SyncResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	out := &querypb.SyncResponse{HasMore: r.HasMore, Conversations: make([]*querypb.SyncedConversation, 0, len(r.Conversations))}
	for _, c := range r.Conversations {
		out.Conversations = append(out.Conversations, &querypb.SyncedConversation{ConversationId: c.ConversationID, Messages: messagesToPB(c.Messages), HasMore: c.HasMore})
	}
	return out, nil
}

func decConversationsReq(_ context.Context, r any) (any, error) {
	req := r.(*querypb.ConversationsRequest)
	return ConversationsRequest{UserID: req.GetUserId(), Cursor: req.GetCursor(), Limit: int(req.GetLimit())}, nil
}

func encConversationsResp(_ context.Context, resp any) (any, error) {
	r := resp.(ConversationsResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	out := &querypb.ConversationsResponse{NextCursor: r.NextCursor, Conversations: make([]*querypb.Conversation, 0, len(r.Conversations))}
	for _, c := range r.Conversations {
		out.Conversations = append(out.Conversations, conversationToPB(c))
	}
	return out, nil
}

func decConversationReq(_ context.Context, r any) (any, error) {
	req := r.(*querypb.ConversationRequest)
	return ConversationRequest{UserID: req.GetUserId(), ConversationID: req.GetConversationId()}, nil
}

func decUpdateSettingsReq(_ context.Context, r any) (any, error) {
	req := r.(*querypb.UpdateSettingsRequest)
	return UpdateSettingsRequest{UserID: req.GetUserId(), ConversationID: req.GetConversationId(), Muted: req.Muted, Pinned: req.Pinned}, nil
}

func encConversationResp(_ context.Context, resp any) (any, error) {
	r := resp.(ConversationResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	return &querypb.ConversationResponse{Conversation: conversationToPB(r.Conversation)}, nil
}

func decUnreadReq(_ context.Context, r any) (any, error) {
	return UnreadRequest{UserID: r.(*querypb.UnreadRequest).GetUserId()}, nil
}

func encUnreadResp(_ context.Context, resp any) (any, error) {
	r := resp.(UnreadResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	out := &querypb.UnreadResponse{Total: r.Total, Conversations: make([]*querypb.ConversationUnread, 0, len(r.Conversations))}
	for _, c := range r.Conversations {
		out.Conversations = append(out.Conversations, &querypb.ConversationUnread{ConversationId: c.ConversationID, Unread: c.Unread})
	}
	return out, nil
}

func decGetMessageReq(_ context.Context, r any) (any, error) {
	return GetMessageRequest{MessageID: r.(*querypb.GetMessageRequest).GetMessageId()}, nil
}

func encGetMessageResp(_ context.Context, resp any) (any, error) {
	r := resp.(MessageResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	return &querypb.GetMessageResponse{Message: messageToPB(r.Message)}, nil
}

func decAckReq(_ context.Context, r any) (any, error) {
	req := r.(*querypb.AckRequest)
	return AckRequest{UserID: req.GetUserId(), DeviceID: req.GetDeviceId(), ConversationID: req.GetConversationId(), Seq: req.GetSeq()}, nil
}

func encAckResp(_ context.Context, resp any) (any, error) {
	if err := resp.(EmptyResponse).Err; err != nil {
		return nil, err
	}
	return &querypb.AckResponse{}, nil
}

func decAckedReq(_ context.Context, r any) (any, error) {
	req := r.(*querypb.AckedRequest)
	return AckedRequest{UserID: req.GetUserId(), DeviceID: req.GetDeviceId(), ConversationID: req.GetConversationId()}, nil
}

func encAckedResp(_ context.Context, resp any) (any, error) {
	r := resp.(AckedResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	return &querypb.AckedResponse{Seq: r.Seq}, nil
}

// Conversions.

func messageToPB(m message.Message) *querypb.Message {
	return &querypb.Message{Id: m.ID, ConversationId: m.ConversationID, Seq: m.Seq, SenderId: m.SenderID, Type: m.Type,
		ContentJson: m.Content, Mentions: m.Mentions, SentAt: grpcx.Timestamp(m.SentAt), ClientMsgId: m.ClientMsgID,
		Recalled: m.Recalled, GroupId: m.GroupID, ToUserId: m.ToUserID}
}

func messageFromPB(m *querypb.Message) message.Message {
	out := message.Message{ID: m.GetId(), ConversationID: m.GetConversationId(), Seq: m.GetSeq(), SenderID: m.GetSenderId(),
		Type: m.GetType(), Mentions: m.GetMentions(), SentAt: grpcx.Time(m.GetSentAt()), ClientMsgID: m.GetClientMsgId(),
		Recalled: m.GetRecalled(), GroupID: m.GetGroupId(), ToUserID: m.GetToUserId()}
	if len(m.GetContentJson()) > 0 {
		out.Content = json.RawMessage(m.GetContentJson())
	}
	if out.Mentions == nil {
		out.Mentions = []string{}
	}
	return out
}

func messagesToPB(ms []message.Message) []*querypb.Message {
	out := make([]*querypb.Message, 0, len(ms))
	for _, m := range ms {
		out = append(out, messageToPB(m))
	}
	return out
}

func messagesFromPB(ms []*querypb.Message) []message.Message {
	out := make([]message.Message, 0, len(ms))
	for _, m := range ms {
		out = append(out, messageFromPB(m))
	}
	return out
}

func conversationToPB(c Conversation) *querypb.Conversation {
	out := &querypb.Conversation{Id: c.ID, Type: c.Type, PeerId: c.PeerID, GroupId: c.GroupID, LastSeq: c.LastSeq,
		ReadSeq: c.ReadSeq, Unread: c.Unread, Muted: c.Muted, Pinned: c.Pinned}
	if c.LastMessage != nil {
		out.LastMessage = messageToPB(*c.LastMessage)
	}
	return out
}

func conversationFromPB(c *querypb.Conversation) Conversation {
	out := Conversation{ID: c.GetId(), Type: c.GetType(), PeerID: c.GetPeerId(), GroupID: c.GetGroupId(), LastSeq: c.GetLastSeq(),
		ReadSeq: c.GetReadSeq(), Unread: c.GetUnread(), Muted: c.GetMuted(), Pinned: c.GetPinned()}
	if c.GetLastMessage() != nil {
		m := messageFromPB(c.GetLastMessage())
		out.LastMessage = &m
	}
	return out
}

// Client side.

const grpcService = "beehive.query.v1.QueryService"

// NewGRPCClient returns a Service calling the instances instancer finds,
// through one shared connection per instance, retries and breakers.
// serviceToken is sent for the internal methods.
func NewGRPCClient(instancer sd.Instancer, conns *grpcx.Conns, serviceToken string, logger log.Logger) Service {
	return NewGRPCClientEndpoints(grpcx.BalancedClient("query", grpcService, instancer, conns, serviceToken, logger, grpcx.BalanceOptions{}))
}

// NewGRPCClientConn returns a Service over one connection (tests, and
// static single-address setups).
func NewGRPCClientConn(cc *grpc.ClientConn, serviceToken string) Service {
	return NewGRPCClientEndpoints(grpcx.ConnClient(cc, grpcService, serviceToken))
}

// NewGRPCClientEndpoints builds the client Endpoints with mk making each
// method's endpoint.
func NewGRPCClientEndpoints(mk grpcx.ClientEndpoint) Endpoints {
	return Endpoints{
		HistoryEndpoint: mk("History", func(_ context.Context, r any) (any, error) {
			req := r.(HistoryRequest)
			return &querypb.HistoryRequest{UserId: req.UserID, ConversationId: req.ConversationID, BeforeSeq: req.BeforeSeq, AfterSeq: req.AfterSeq, Limit: grpcx.Limit32(req.Limit)}, nil
		}, func(_ context.Context, r any) (any, error) {
			resp := r.(*querypb.HistoryResponse)
			return HistoryResponse{HistoryPage: HistoryPage{Messages: messagesFromPB(resp.GetMessages()), HasMore: resp.GetHasMore()}}, nil
		}, querypb.HistoryResponse{}),
		SyncEndpoint: mk("Sync", func(_ context.Context, r any) (any, error) {
			req := r.(SyncRequest)
			return &querypb.SyncRequest{UserId: req.UserID, Cursors: req.Cursors, Limit: grpcx.Limit32(req.Limit)}, nil
		}, func(_ context.Context, r any) (any, error) {
			resp := r.(*querypb.SyncResponse)
			out := SyncResult{HasMore: resp.GetHasMore(), Conversations: make([]SyncedConversation, 0, len(resp.GetConversations()))}
			for _, c := range resp.GetConversations() {
				out.Conversations = append(out.Conversations, SyncedConversation{ConversationID: c.GetConversationId(), Messages: messagesFromPB(c.GetMessages()), HasMore: c.GetHasMore()})
			}
			return SyncResponse{SyncResult: out}, nil
		}, querypb.SyncResponse{}),
		ConversationsEndpoint: mk("Conversations", func(_ context.Context, r any) (any, error) {
			req := r.(ConversationsRequest)
			return &querypb.ConversationsRequest{UserId: req.UserID, Cursor: req.Cursor, Limit: grpcx.Limit32(req.Limit)}, nil
		}, func(_ context.Context, r any) (any, error) {
			resp := r.(*querypb.ConversationsResponse)
			out := ConversationPage{NextCursor: resp.GetNextCursor(), Conversations: make([]Conversation, 0, len(resp.GetConversations()))}
			for _, c := range resp.GetConversations() {
				out.Conversations = append(out.Conversations, conversationFromPB(c))
			}
			return ConversationsResponse{ConversationPage: out}, nil
		}, querypb.ConversationsResponse{}),
		ConversationEndpoint: mk("Conversation", func(_ context.Context, r any) (any, error) {
			req := r.(ConversationRequest)
			return &querypb.ConversationRequest{UserId: req.UserID, ConversationId: req.ConversationID}, nil
		}, decConversationResp, querypb.ConversationResponse{}),
		UpdateSettingsEndpoint: mk("UpdateSettings", func(_ context.Context, r any) (any, error) {
			req := r.(UpdateSettingsRequest)
			return &querypb.UpdateSettingsRequest{UserId: req.UserID, ConversationId: req.ConversationID, Muted: req.Muted, Pinned: req.Pinned}, nil
		}, decConversationResp, querypb.ConversationResponse{}),
		UnreadEndpoint: mk("Unread", func(_ context.Context, r any) (any, error) {
			return &querypb.UnreadRequest{UserId: r.(UnreadRequest).UserID}, nil
		}, func(_ context.Context, r any) (any, error) {
			resp := r.(*querypb.UnreadResponse)
			out := UnreadCounts{Total: resp.GetTotal(), Conversations: make([]ConversationUnread, 0, len(resp.GetConversations()))}
			for _, c := range resp.GetConversations() {
				out.Conversations = append(out.Conversations, ConversationUnread{ConversationID: c.GetConversationId(), Unread: c.GetUnread()})
			}
			return UnreadResponse{UnreadCounts: out}, nil
		}, querypb.UnreadResponse{}),
		GetMessageEndpoint: mk("GetMessage", func(_ context.Context, r any) (any, error) {
			return &querypb.GetMessageRequest{MessageId: r.(GetMessageRequest).MessageID}, nil
		}, func(_ context.Context, r any) (any, error) {
			return MessageResponse{Message: messageFromPB(r.(*querypb.GetMessageResponse).GetMessage())}, nil
		}, querypb.GetMessageResponse{}),
		AckEndpoint: mk("Ack", func(_ context.Context, r any) (any, error) {
			req := r.(AckRequest)
			return &querypb.AckRequest{UserId: req.UserID, DeviceId: req.DeviceID, ConversationId: req.ConversationID, Seq: req.Seq}, nil
		}, func(context.Context, any) (any, error) { return EmptyResponse{}, nil }, querypb.AckResponse{}),
		AckedEndpoint: mk("Acked", func(_ context.Context, r any) (any, error) {
			req := r.(AckedRequest)
			return &querypb.AckedRequest{UserId: req.UserID, DeviceId: req.DeviceID, ConversationId: req.ConversationID}, nil
		}, func(_ context.Context, r any) (any, error) {
			return AckedResponse{Seq: r.(*querypb.AckedResponse).GetSeq()}, nil
		}, querypb.AckedResponse{}),
	}
}

func decConversationResp(_ context.Context, r any) (any, error) {
	return ConversationResponse{Conversation: conversationFromPB(r.(*querypb.ConversationResponse).GetConversation())}, nil
}

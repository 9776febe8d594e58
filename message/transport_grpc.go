package message

import (
	"context"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/lb"
	grpctransport "github.com/go-kit/kit/transport/grpc"
	"github.com/go-kit/log"
	"google.golang.org/grpc"

	"github.com/beehive-im/beehive/message/messagepb"
	"github.com/beehive-im/beehive/shared/grpcx"
)

type grpcServer struct {
	// reads serves the read RPCs (package query); nil answers
	// Unimplemented for them.
	messagepb.MessageServiceServer
	send, sendGroup, recall, markAsRead, lastSeq, typing grpctransport.Handler
}

// NewGRPCServer serves e as messagepb.MessageServiceServer. The read RPCs
// (GetMessageHistory, GetUnreadMessages, GetConversations,
// GetConversation, GetMessage) are delegated to reads, the query package's
// server, so both halves register as one MessageService; reads may be nil.
func NewGRPCServer(e Endpoints, reads messagepb.MessageServiceServer, logger log.Logger) messagepb.MessageServiceServer {
	if reads == nil {
		reads = messagepb.UnimplementedMessageServiceServer{}
	}
	opts := grpcx.ServerOptions()
	return &grpcServer{
		MessageServiceServer: reads,
		send:                 grpctransport.NewServer(e.SendMessageEndpoint, decSendReq, encMessageResp(func(m *messagepb.Message) any { return &messagepb.SendMessageResponse{Message: m} }), opts...),
		sendGroup:            grpctransport.NewServer(e.SendGroupMessageEndpoint, decSendGroupReq, encMessageResp(func(m *messagepb.Message) any { return &messagepb.SendGroupMessageResponse{Message: m} }), opts...),
		recall:               grpctransport.NewServer(e.RecallEndpoint, decRecallReq, encMessageResp(func(m *messagepb.Message) any { return &messagepb.RecallResponse{Message: m} }), opts...),
		markAsRead:           grpctransport.NewServer(e.MarkAsReadEndpoint, decMarkAsReadReq, encEmptyResp, opts...),
		lastSeq:              grpctransport.NewServer(e.LastSeqEndpoint, decLastSeqReq, encLastSeqResp, opts...),
		typing:               grpctransport.NewServer(e.TypingEndpoint, decTypingReq, encTypingResp, opts...),
	}
}

func (s *grpcServer) SendMessage(ctx context.Context, r *messagepb.SendMessageRequest) (*messagepb.SendMessageResponse, error) {
	return grpcx.Serve[*messagepb.SendMessageResponse](s.send, ctx, r)
}

func (s *grpcServer) SendGroupMessage(ctx context.Context, r *messagepb.SendGroupMessageRequest) (*messagepb.SendGroupMessageResponse, error) {
	return grpcx.Serve[*messagepb.SendGroupMessageResponse](s.sendGroup, ctx, r)
}

func (s *grpcServer) Recall(ctx context.Context, r *messagepb.RecallRequest) (*messagepb.RecallResponse, error) {
	return grpcx.Serve[*messagepb.RecallResponse](s.recall, ctx, r)
}

func (s *grpcServer) MarkAsRead(ctx context.Context, r *messagepb.MarkAsReadRequest) (*messagepb.MarkAsReadResponse, error) {
	return grpcx.Serve[*messagepb.MarkAsReadResponse](s.markAsRead, ctx, r)
}

func (s *grpcServer) Typing(ctx context.Context, r *messagepb.TypingRequest) (*messagepb.TypingResponse, error) {
	return grpcx.Serve[*messagepb.TypingResponse](s.typing, ctx, r)
}

func decTypingReq(_ context.Context, r any) (any, error) {
	q := r.(*messagepb.TypingRequest)
	return TypingRequest{UserID: q.GetUserId(), ConversationID: q.GetConversationId()}, nil
}

func encTypingResp(_ context.Context, r any) (any, error) {
	if err := r.(EmptyResponse).Err; err != nil {
		return nil, err
	}
	return &messagepb.TypingResponse{}, nil
}

func (s *grpcServer) LastSeq(ctx context.Context, r *messagepb.LastSeqRequest) (*messagepb.LastSeqResponse, error) {
	return grpcx.Serve[*messagepb.LastSeqResponse](s.lastSeq, ctx, r)
}

// Server-side codecs. A business error becomes the handler's error, which
// the grpcx interceptor maps to a status with the Beehive code.

func decSendReq(_ context.Context, r any) (any, error) {
	q := r.(*messagepb.SendMessageRequest)
	return SendMessageRequest{SendRequest: SendRequest{SenderID: q.GetSenderId(), ToUserID: q.GetToUserId(), ClientMsgID: q.GetClientMsgId(),
		Type: q.GetType(), Content: q.GetContentJson(), Mentions: q.GetMentions(), OriginConn: q.GetOriginConn()}}, nil
}

func decSendGroupReq(_ context.Context, r any) (any, error) {
	q := r.(*messagepb.SendGroupMessageRequest)
	return SendMessageRequest{SendRequest: SendRequest{SenderID: q.GetSenderId(), GroupID: q.GetGroupId(), ClientMsgID: q.GetClientMsgId(),
		Type: q.GetType(), Content: q.GetContentJson(), Mentions: q.GetMentions(), OriginConn: q.GetOriginConn()}}, nil
}

func decRecallReq(_ context.Context, r any) (any, error) {
	q := r.(*messagepb.RecallRequest)
	return RecallRequest{UserID: q.GetUserId(), MessageID: q.GetMessageId()}, nil
}

func decMarkAsReadReq(_ context.Context, r any) (any, error) {
	q := r.(*messagepb.MarkAsReadRequest)
	return MarkAsReadRequest{UserID: q.GetUserId(), ConversationID: q.GetConversationId(), Seq: q.GetSeq()}, nil
}

func decLastSeqReq(_ context.Context, r any) (any, error) {
	return LastSeqRequest{ConversationID: r.(*messagepb.LastSeqRequest).GetConversationId()}, nil
}

func encMessageResp(wrap func(*messagepb.Message) any) grpctransport.EncodeResponseFunc {
	return func(_ context.Context, resp any) (any, error) {
		r := resp.(MessageResponse)
		if r.Err != nil {
			return nil, r.Err
		}
		var m *messagepb.Message
		if r.Message != nil {
			m = MessageToPB(*r.Message)
		}
		return wrap(m), nil
	}
}

func encEmptyResp(_ context.Context, resp any) (any, error) {
	if err := resp.(EmptyResponse).Err; err != nil {
		return nil, err
	}
	return &messagepb.MarkAsReadResponse{}, nil
}

func encLastSeqResp(_ context.Context, resp any) (any, error) {
	r := resp.(LastSeqResponse)
	if r.Err != nil {
		return nil, r.Err
	}
	return &messagepb.LastSeqResponse{Seq: r.Seq}, nil
}

// MessageToPB converts m for the wire (the query package uses it too).
func MessageToPB(m Message) *messagepb.Message {
	return &messagepb.Message{
		Id: m.ID, ConversationId: m.ConversationID, Seq: m.Seq, SenderId: m.SenderID, Type: m.Type,
		ContentJson: m.Content, Mentions: m.Mentions, ClientMsgId: m.ClientMsgID, Recalled: m.Recalled,
		GroupId: m.GroupID, ToUserId: m.ToUserID, SentAt: grpcx.Timestamp(m.SentAt),
	}
}

// MessageFromPB converts a wire message back.
func MessageFromPB(p *messagepb.Message) Message {
	m := Message{
		ID: p.GetId(), ConversationID: p.GetConversationId(), Seq: p.GetSeq(), SenderID: p.GetSenderId(), Type: p.GetType(),
		Content: p.GetContentJson(), Mentions: p.GetMentions(), ClientMsgID: p.GetClientMsgId(), Recalled: p.GetRecalled(),
		GroupID: p.GetGroupId(), ToUserID: p.GetToUserId(), SentAt: grpcx.Time(p.GetSentAt()),
	}
	if m.Mentions == nil {
		m.Mentions = []string{}
	}
	return m
}

// Client side.

const grpcService = "beehive.message.v1.MessageService"

// NewGRPCClient returns a Service calling the instances instancer finds,
// through one shared connection per instance, retries and breakers. Sends
// (1:1 and group) pick the instance by rendezvous hashing of the
// conversation on the instances' addresses (conversationHash), so one
// conversation's sends go through one instance's serialised path
// (partition order = seq order) and a change of the instance set moves
// only the conversations it must; the rest use round robin. serviceToken
// is sent for the internal methods.
func NewGRPCClient(instancer sd.Instancer, conns *grpcx.Conns, serviceToken string, logger log.Logger) Service {
	roundRobin := grpcx.BalancedClient("message", grpcService, instancer, conns, serviceToken, logger, grpcx.BalanceOptions{})
	hashed := grpcx.BalancedClient("message", grpcService, instancer, conns, serviceToken, logger, grpcx.BalanceOptions{
		Balancer: func(e *grpcx.InstanceEndpointer) lb.Balancer { return newConversationHash(e) },
	})
	return NewGRPCClientEndpoints(func(method string, enc grpctransport.EncodeRequestFunc, dec grpctransport.DecodeResponseFunc, reply any, onConversation bool) endpoint.Endpoint {
		if onConversation {
			return hashed(method, enc, dec, reply)
		}
		return roundRobin(method, enc, dec, reply)
	})
}

// NewGRPCClientConn returns a Service over one connection (tests, and
// static single-address setups).
func NewGRPCClientConn(cc *grpc.ClientConn, serviceToken string) Service {
	conn := grpcx.ConnClient(cc, grpcService, serviceToken)
	return NewGRPCClientEndpoints(func(method string, enc grpctransport.EncodeRequestFunc, dec grpctransport.DecodeResponseFunc, reply any, _ bool) endpoint.Endpoint {
		return conn(method, enc, dec, reply)
	})
}

// NewGRPCClientEndpoints builds the client Endpoints with mk making each
// method's endpoint (hashed: balance on the conversation).
func NewGRPCClientEndpoints(mk func(method string, enc grpctransport.EncodeRequestFunc, dec grpctransport.DecodeResponseFunc, reply any, hashed bool) endpoint.Endpoint) Endpoints {
	decMsg := func(get func(any) *messagepb.Message) grpctransport.DecodeResponseFunc {
		return func(_ context.Context, r any) (any, error) {
			m := MessageFromPB(get(r))
			return MessageResponse{Message: &m}, nil
		}
	}
	return Endpoints{
		SendMessageEndpoint: mk("SendMessage", func(_ context.Context, r any) (any, error) {
			q := r.(SendMessageRequest)
			return &messagepb.SendMessageRequest{SenderId: q.SenderID, ToUserId: q.ToUserID, ClientMsgId: q.ClientMsgID, Type: q.Type,
				ContentJson: q.Content, Mentions: q.Mentions, OriginConn: q.OriginConn}, nil
		}, decMsg(func(r any) *messagepb.Message { return r.(*messagepb.SendMessageResponse).GetMessage() }), messagepb.SendMessageResponse{}, true),
		SendGroupMessageEndpoint: mk("SendGroupMessage", func(_ context.Context, r any) (any, error) {
			q := r.(SendMessageRequest)
			return &messagepb.SendGroupMessageRequest{SenderId: q.SenderID, GroupId: q.GroupID, ClientMsgId: q.ClientMsgID, Type: q.Type,
				ContentJson: q.Content, Mentions: q.Mentions, OriginConn: q.OriginConn}, nil
		}, decMsg(func(r any) *messagepb.Message { return r.(*messagepb.SendGroupMessageResponse).GetMessage() }), messagepb.SendGroupMessageResponse{}, true),
		RecallEndpoint: mk("Recall", func(_ context.Context, r any) (any, error) {
			q := r.(RecallRequest)
			return &messagepb.RecallRequest{UserId: q.UserID, MessageId: q.MessageID}, nil
		}, decMsg(func(r any) *messagepb.Message { return r.(*messagepb.RecallResponse).GetMessage() }), messagepb.RecallResponse{}, false),
		TypingEndpoint: mk("Typing", func(_ context.Context, r any) (any, error) {
			q := r.(TypingRequest)
			return &messagepb.TypingRequest{UserId: q.UserID, ConversationId: q.ConversationID}, nil
		}, func(context.Context, any) (any, error) { return EmptyResponse{}, nil }, messagepb.TypingResponse{}, false),
		MarkAsReadEndpoint: mk("MarkAsRead", func(_ context.Context, r any) (any, error) {
			q := r.(MarkAsReadRequest)
			return &messagepb.MarkAsReadRequest{UserId: q.UserID, ConversationId: q.ConversationID, Seq: q.Seq}, nil
		}, func(context.Context, any) (any, error) { return EmptyResponse{}, nil }, messagepb.MarkAsReadResponse{}, false),
		LastSeqEndpoint: mk("LastSeq", func(_ context.Context, r any) (any, error) {
			return &messagepb.LastSeqRequest{ConversationId: r.(LastSeqRequest).ConversationID}, nil
		}, func(_ context.Context, r any) (any, error) {
			return LastSeqResponse{Seq: r.(*messagepb.LastSeqResponse).GetSeq()}, nil
		}, messagepb.LastSeqResponse{}, false),
	}
}

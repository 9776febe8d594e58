package query

import (
	"context"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/message/messagepb"
	"github.com/beehive-im/beehive/shared/grpcx"
)

// NewMessageReadsServer serves the read RPCs of beehive.message.v1
// MessageService (GetMessageHistory, GetUnreadMessages, GetConversations,
// GetConversation, GetMessage) from the read side. The message package
// registers the service and hands these RPCs here (message.NewGRPCServer's
// reads argument), so the MessageService the seeds name is complete while
// reads stay in the query package.
func NewMessageReadsServer(svc Service) messagepb.MessageServiceServer {
	return messageReads{svc: svc}
}

type messageReads struct {
	messagepb.UnimplementedMessageServiceServer
	svc Service
}

func optionalSeq(n int64) *int64 {
	if n <= 0 {
		return nil
	}
	return &n
}

func messagesToMessagePB(ms []message.Message) []*messagepb.Message {
	out := make([]*messagepb.Message, 0, len(ms))
	for _, m := range ms {
		out = append(out, message.MessageToPB(m))
	}
	return out
}

func conversationToMessagePB(c Conversation) *messagepb.Conversation {
	pc := &messagepb.Conversation{Id: c.ID, Type: c.Type, PeerId: c.PeerID, GroupId: c.GroupID, LastSeq: c.LastSeq, ReadSeq: c.ReadSeq, Unread: c.Unread, Muted: c.Muted, Pinned: c.Pinned}
	if c.LastMessage != nil {
		pc.LastMessage = message.MessageToPB(*c.LastMessage)
	}
	return pc
}

func (s messageReads) GetMessageHistory(ctx context.Context, req *messagepb.GetMessageHistoryRequest) (*messagepb.GetMessageHistoryResponse, error) {
	page, err := s.svc.History(ctx, req.GetUserId(), req.GetConversationId(), optionalSeq(req.GetBeforeSeq()), optionalSeq(req.GetAfterSeq()), int(req.GetLimit()))
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return &messagepb.GetMessageHistoryResponse{Messages: messagesToMessagePB(page.Messages), HasMore: page.HasMore}, nil
}

// GetUnreadMessages returns the messages above the caller's read seq, of
// one conversation or of every conversation with unread entries.
func (s messageReads) GetUnreadMessages(ctx context.Context, req *messagepb.GetUnreadMessagesRequest) (*messagepb.GetUnreadMessagesResponse, error) {
	limit := int(req.GetLimit())
	var convs []Conversation
	if id := req.GetConversationId(); id != "" {
		c, err := s.svc.Conversation(ctx, req.GetUserId(), id)
		if err != nil {
			return nil, grpcx.ToStatus(err)
		}
		convs = append(convs, c)
	} else {
		cursor := ""
		for {
			page, err := s.svc.Conversations(ctx, req.GetUserId(), cursor, 200)
			if err != nil {
				return nil, grpcx.ToStatus(err)
			}
			convs = append(convs, page.Conversations...)
			if page.NextCursor == "" || len(page.Conversations) == 0 {
				break
			}
			cursor = page.NextCursor
		}
	}
	out := &messagepb.GetUnreadMessagesResponse{}
	for _, c := range convs {
		if c.Unread <= 0 {
			continue
		}
		page, err := s.svc.History(ctx, req.GetUserId(), c.ID, nil, &c.ReadSeq, limit)
		if err != nil {
			return nil, grpcx.ToStatus(err)
		}
		out.Messages = append(out.Messages, messagesToMessagePB(page.Messages)...)
		out.HasMore = out.HasMore || page.HasMore
	}
	return out, nil
}

func (s messageReads) GetConversations(ctx context.Context, req *messagepb.GetConversationsRequest) (*messagepb.GetConversationsResponse, error) {
	page, err := s.svc.Conversations(ctx, req.GetUserId(), req.GetCursor(), int(req.GetLimit()))
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	out := &messagepb.GetConversationsResponse{NextCursor: page.NextCursor}
	for _, c := range page.Conversations {
		out.Conversations = append(out.Conversations, conversationToMessagePB(c))
	}
	return out, nil
}

func (s messageReads) GetConversation(ctx context.Context, req *messagepb.GetConversationRequest) (*messagepb.GetConversationResponse, error) {
	c, err := s.svc.Conversation(ctx, req.GetUserId(), req.GetConversationId())
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return &messagepb.GetConversationResponse{Conversation: conversationToMessagePB(c)}, nil
}

func (s messageReads) GetMessage(ctx context.Context, req *messagepb.GetMessageRequest) (*messagepb.GetMessageResponse, error) {
	m, err := s.svc.GetMessage(ctx, req.GetMessageId())
	if err != nil {
		return nil, grpcx.ToStatus(err)
	}
	return &messagepb.GetMessageResponse{Message: message.MessageToPB(m)}, nil
}

package message

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
)

// Options tune the service; zero values take the defaults.
type Options struct {
	Limits
	// RecallWindow is how long a sender may recall (default 2 min).
	RecallWindow time.Duration
	// Filter checks text content; nil lets everything through.
	Filter *Filter
	// PendingTTL is how long a dedup claim lives if its send never
	// finishes (default 30 s).
	PendingTTL time.Duration
	// PendingWait is how long a retry waits for a concurrent send with
	// the same client_msg_id before answering conflict (default 2 s).
	PendingWait time.Duration
	// ProduceTimeout bounds one produce to beehive.messages (default 10 s).
	ProduceTimeout time.Duration
	Now            func() time.Time
	Logger         log.Logger
}

func (o Options) withDefaults() Options {
	o.Limits = o.Limits.withDefaults()
	if o.RecallWindow <= 0 {
		o.RecallWindow = DefaultRecallWindow
	}
	if o.PendingTTL <= 0 {
		o.PendingTTL = 30 * time.Second
	}
	if o.PendingWait <= 0 {
		o.PendingWait = 2 * time.Second
	}
	if o.ProduceTimeout <= 0 {
		o.ProduceTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = log.NewNopLogger()
	}
	return o
}

// Deps are the message service's collaborators; all are required.
type Deps struct {
	// Relations answers whether one user may message another (the user
	// service).
	Relations Relations
	// Groups answers whether a user may post to a group and with which
	// role (the group service).
	Groups Groups
	// Reader finds the messages a recall names (the read side).
	Reader Reader
	// Seqs allocates each conversation's seqs.
	Seqs SeqAllocator
	// Dedup makes sends and recalls idempotent.
	Dedup DedupStore
	// Producer writes beehive.messages.
	Producer Producer
	// Signals writes beehive.typing: notices that are delivered live and
	// never stored.
	Signals Producer
	// Leases, where several message instances share conversations
	// (distributed mode), keep one produce in flight per conversation
	// across a handover; nil in one process, whose commit queue already
	// does.
	Leases Leases
}

// Messages implements Service: sends and recalls, committed to
// beehive.messages in seq order.
type Messages struct {
	relations Relations
	groups    Groups
	reader    Reader
	seqs      SeqAllocator
	dedup     DedupStore
	producer  Producer
	signals   Producer
	leases    Leases
	opts      Options
	logger    log.Logger

	// commits serialise "allocate seq + produce" per conversation, in
	// batches (commit.go), so partition order equals seq order and sends
	// pipelined on one socket get increasing seqs.
	commits [commitStripes]commitQueue
}

var _ Service = (*Messages)(nil)

// New returns the message service. It fails when a dependency is missing.
func New(deps Deps, opts Options) (*Messages, error) {
	switch {
	case deps.Relations == nil:
		return nil, errors.New("message: Deps.Relations is nil")
	case deps.Groups == nil:
		return nil, errors.New("message: Deps.Groups is nil")
	case deps.Reader == nil:
		return nil, errors.New("message: Deps.Reader is nil")
	case deps.Seqs == nil:
		return nil, errors.New("message: Deps.Seqs is nil")
	case deps.Dedup == nil:
		return nil, errors.New("message: Deps.Dedup is nil")
	case deps.Producer == nil:
		return nil, errors.New("message: Deps.Producer is nil")
	case deps.Signals == nil:
		return nil, errors.New("message: Deps.Signals is nil")
	}
	opts = opts.withDefaults()
	return &Messages{
		relations: deps.Relations, groups: deps.Groups, reader: deps.Reader, seqs: deps.Seqs, dedup: deps.Dedup, producer: deps.Producer, signals: deps.Signals, leases: deps.Leases,
		opts: opts, logger: log.With(opts.Logger, "service", "message"),
	}, nil
}

func (s *Messages) now() time.Time { return s.opts.Now().UTC() }

func (s *Messages) SendMessage(ctx context.Context, req SendRequest) (Message, error) {
	return s.send(ctx, req, false)
}

func (s *Messages) SendGroupMessage(ctx context.Context, req SendRequest) (Message, error) {
	return s.send(ctx, req, true)
}

func (s *Messages) send(ctx context.Context, req SendRequest, group bool) (Message, error) {
	req, text, err := ValidateSend(req, group, s.opts.Limits)
	if err != nil {
		return Message{}, err
	}
	if req.Type == TypeText && s.opts.Filter != nil {
		filtered, err := s.opts.Filter.Apply(text)
		if err != nil {
			return Message{}, err
		}
		if filtered != text {
			req.Content = encodeString(filtered)
		}
	}
	var conv string
	if group {
		if err := s.groups.CanPost(ctx, req.SenderID, req.GroupID); err != nil {
			return Message{}, errs.Dependency(err, "group service")
		}
		if contains(req.Mentions, MentionAll) {
			role, err := s.groups.Role(ctx, req.GroupID, req.SenderID)
			if err != nil {
				return Message{}, errs.Dependency(err, "group service")
			}
			if role != RoleOwner && role != RoleAdmin {
				return Message{}, ErrMentionAll
			}
		}
		conv = ids.Group(req.GroupID)
	} else {
		ok, err := s.relations.CanMessage(ctx, req.SenderID, req.ToUserID)
		if err != nil {
			return Message{}, errs.Dependency(err, "user service")
		}
		if !ok {
			return Message{}, ErrNotFriends
		}
		conv = ids.P2P(req.SenderID, req.ToUserID)
	}

	key := "send/" + req.SenderID + "/" + req.ClientMsgID
	claim, err := s.claim(ctx, key, ErrSendPending)
	if err != nil {
		return Message{}, err
	}
	if claim.Original != nil {
		return *claim.Original, nil
	}
	m := Message{
		ConversationID: conv,
		SenderID:       req.SenderID,
		Type:           req.Type,
		Content:        req.Content,
		Mentions:       req.Mentions,
		ClientMsgID:    req.ClientMsgID,
		GroupID:        req.GroupID,
		ToUserID:       req.ToUserID,
	}
	ev := Event{Version: EventVersion, Kind: EventMessage, ConversationID: conv, OriginConn: req.OriginConn}
	m, err = s.produceEntry(ctx, m, &ev)
	if err != nil {
		s.release(ctx, key, claim.Token)
		return Message{}, err
	}
	s.complete(ctx, key, claim.Token, m)
	return m, nil
}

// claim claims key, waiting up to PendingWait for a concurrent holder.
func (s *Messages) claim(ctx context.Context, key string, pending error) (Claim, error) {
	deadline := time.Now().Add(s.opts.PendingWait)
	delay := 5 * time.Millisecond
	for {
		c, err := s.dedup.Claim(ctx, key, s.now(), s.opts.PendingTTL)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, ErrClaimPending) {
			return Claim{}, errs.Wrap(errs.Unavailable, err, "dedup store unavailable")
		}
		if time.Now().Add(delay).After(deadline) {
			return Claim{}, pending
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return Claim{}, errs.As(ctx.Err())
		case <-t.C:
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

// complete and release run even when the caller gave up: the produce
// already happened (or failed) and the claim must say so.
func (s *Messages) complete(ctx context.Context, key, token string, m Message) {
	if err := s.dedup.Complete(context.WithoutCancel(ctx), key, token, m); err != nil {
		_ = level.Error(s.logger).Log("msg", "dedup complete failed; a retry after the claim expires may duplicate", "key", key, "messageId", m.ID, "err", err)
	}
}

func (s *Messages) release(ctx context.Context, key, token string) {
	if err := s.dedup.Release(context.WithoutCancel(ctx), key, token); err != nil {
		_ = level.Error(s.logger).Log("msg", "dedup release failed; retries wait for the claim to expire", "key", key, "err", err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (s *Messages) Recall(ctx context.Context, userID, messageID string) (Message, error) {
	if !ids.Valid(userID) {
		return Message{}, errs.Invalid("user_id", "is not a valid user id")
	}
	if messageID == "" {
		return Message{}, errs.Missing("message_id")
	}
	if !ids.Valid(messageID) {
		return Message{}, errs.Invalid("message_id", "is not a valid message id")
	}
	orig, err := s.reader.GetMessage(ctx, messageID)
	if err != nil {
		return Message{}, errs.Dependency(err, "message store")
	}
	if orig.Type == TypeRecall {
		return Message{}, ErrNotRecallable
	}
	if orig.Recalled {
		return Message{}, ErrAlreadyRecalled
	}
	kind, a, b, ok := ids.ParseConversation(orig.ConversationID)
	if !ok {
		return Message{}, errs.Newf(errs.Internal, "stored message %s has a bad conversation id", messageID)
	}
	recall := Message{ConversationID: orig.ConversationID, SenderID: userID, Type: TypeRecall}
	switch kind {
	case "p":
		if userID != a && userID != b {
			return Message{}, ErrNotParticipant
		}
		if orig.SenderID != userID {
			return Message{}, ErrRecallNotAllowed
		}
		recall.ToUserID, _ = ids.Peer(orig.ConversationID, userID)
		if err := s.inWindow(orig); err != nil {
			return Message{}, err
		}
	case "g":
		recall.GroupID = a
		role, err := s.groups.Role(ctx, a, userID)
		if err != nil {
			if errs.HasCode(err, errs.NotFound) || errs.HasCode(err, errs.PermissionDenied) {
				return Message{}, ErrNotParticipant
			}
			return Message{}, errs.Dependency(err, "group service")
		}
		if role != RoleOwner && role != RoleAdmin {
			if orig.SenderID != userID {
				return Message{}, ErrRecallNotAllowed
			}
			if err := s.inWindow(orig); err != nil {
				return Message{}, err
			}
		}
	}
	content, _ := json.Marshal(RecallContent{MessageID: orig.ID})
	recall.Content = content

	key := "recall/" + orig.ID
	claim, err := s.claim(ctx, key, errs.New(errs.Conflict, "a recall of this message is in progress"))
	if err != nil {
		return Message{}, err
	}
	if claim.Original != nil {
		return Message{}, ErrAlreadyRecalled
	}
	ev := Event{Version: EventVersion, Kind: EventRecall, ConversationID: orig.ConversationID, RecalledID: orig.ID, RecalledSeq: orig.Seq}
	recall, err = s.produceEntry(ctx, recall, &ev)
	if err != nil {
		s.release(ctx, key, claim.Token)
		return Message{}, err
	}
	s.complete(ctx, key, claim.Token, recall)
	return recall, nil
}

func (s *Messages) inWindow(orig Message) error {
	if s.now().Sub(orig.SentAt) > s.opts.RecallWindow {
		return ErrRecallWindow
	}
	return nil
}

func (s *Messages) MarkAsRead(ctx context.Context, userID, conversationID string, seq int64) error {
	if !ids.Valid(userID) {
		return errs.Invalid("user_id", "is not a valid user id")
	}
	kind, a, b, err := ValidateConversationID(conversationID)
	if err != nil {
		return err
	}
	if seq < 1 {
		return errs.Invalid("seq", "must be a positive integer")
	}
	switch kind {
	case "p":
		if userID != a && userID != b {
			return ErrNotParticipant
		}
	case "g":
		ok, err := s.groups.IsMember(ctx, a, userID)
		if err != nil {
			return errs.Dependency(err, "group service")
		}
		if !ok {
			return ErrNotParticipant
		}
	}
	last, err := s.seqs.Last(ctx, conversationID)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "cannot read the conversation's last seq")
	}
	if seq > last {
		return errs.Invalid("seq", "is beyond the conversation's last message")
	}
	ev := Event{Version: EventVersion, Kind: EventRead, ConversationID: conversationID, UserID: userID, ReadSeq: seq, At: s.now()}
	bts, err := json.Marshal(ev)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "encode event")
	}
	if err := s.producer.Produce(ctx, Record{Key: conversationID, Value: bts}); err != nil {
		return errs.Wrap(errs.Unavailable, err, "message bus unavailable")
	}
	return nil
}

func (s *Messages) LastSeq(ctx context.Context, conversationID string) (int64, error) {
	if _, _, _, err := ValidateConversationID(conversationID); err != nil {
		return 0, err
	}
	last, err := s.seqs.Last(ctx, conversationID)
	if err != nil {
		return 0, errs.Wrap(errs.Unavailable, err, "cannot read the conversation's last seq")
	}
	return last, nil
}

// Typing implements Service.
func (s *Messages) Typing(ctx context.Context, userID, conversationID string) error {
	if !ids.Valid(userID) {
		return errs.Invalid("user_id", "is not a valid user id")
	}
	kind, a, b, err := ValidateConversationID(conversationID)
	if err != nil {
		return err
	}
	switch kind {
	case "p":
		other := a
		switch userID {
		case a:
			other = b
		case b:
		default:
			return ErrNotParticipant
		}
		ok, err := s.relations.CanMessage(ctx, userID, other)
		if err != nil {
			return errs.Dependency(err, "user service")
		}
		if !ok {
			return ErrNotFriends
		}
	case "g":
		ok, err := s.groups.IsMember(ctx, a, userID)
		if err != nil {
			return errs.Dependency(err, "group service")
		}
		if !ok {
			return ErrNotParticipant
		}
	}
	bts, err := json.Marshal(TypingRecord{Version: EventVersion, ConversationID: conversationID, UserID: userID, At: s.now()})
	if err != nil {
		return errs.Wrap(errs.Internal, err, "encode typing")
	}
	if err := s.signals.Produce(ctx, Record{Key: conversationID, Value: bts}); err != nil {
		return errs.Wrap(errs.Unavailable, err, "message bus unavailable")
	}
	return nil
}

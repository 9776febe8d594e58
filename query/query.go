package query

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
)

// Options tune the service.
type Options struct {
	Logger log.Logger
	// CaughtUp, when set, waits until the persistence writer has written
	// everything acknowledged so far (kafkax.CaughtUp). Every read of
	// message state calls it first (GetMessage only on a miss), bounded by
	// CaughtUpWait (default 2 s), so a read sees every message whose `sent`
	// came before it: a device catching up by sync must not miss messages
	// the writer has not stored yet, and a client reading history right
	// after a send must find it. On timeout the read answers with what is
	// stored; the client's next read fills the rest.
	CaughtUp     func(ctx context.Context) error
	CaughtUpWait time.Duration
	// PageSize is the History and Conversations page when the caller
	// names none (DefaultPageSize); MaxPageSize the largest it may name
	// (MaxPageSize).
	PageSize, MaxPageSize int
}

// Deps are the read side's collaborators; all are required.
type Deps struct {
	// Store keeps messages, conversations and read state.
	Store Store
	// Groups answers group membership (the group service).
	Groups Groups
}

// ReadSide implements Service: history, sync, conversations and read
// state over the store the persist consumer fills.
type ReadSide struct {
	store        Store
	groups       Groups
	logger       log.Logger
	caughtUp     func(ctx context.Context) error
	caughtUpWait time.Duration
	pageSize     int
	maxPageSize  int
}

var _ Service = (*ReadSide)(nil)

// New returns the read side. It fails when a dependency is missing.
func New(deps Deps, opts Options) (*ReadSide, error) {
	switch {
	case deps.Store == nil:
		return nil, errors.New("query: Deps.Store is nil")
	case deps.Groups == nil:
		return nil, errors.New("query: Deps.Groups is nil")
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.CaughtUpWait <= 0 {
		opts.CaughtUpWait = 2 * time.Second
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = MaxPageSize
	}
	if opts.PageSize <= 0 {
		opts.PageSize = min(DefaultPageSize, opts.MaxPageSize)
	}
	return &ReadSide{
		store: deps.Store, groups: deps.Groups, logger: opts.Logger, caughtUp: opts.CaughtUp, caughtUpWait: opts.CaughtUpWait,
		pageSize: opts.PageSize, maxPageSize: opts.MaxPageSize,
	}, nil
}

// access checks that userID may read conversationID and returns the seq
// below or at which it may not (the joined seq for a group, 0 for 1:1).
func (s *ReadSide) access(ctx context.Context, userID, conversationID string) (floor int64, err error) {
	kind, a, b, ok := ids.ParseConversation(conversationID)
	if !ok {
		return 0, errs.Invalid("conversation_id", "must be p:<user>:<user> (ascending) or g:<group>")
	}
	if kind == "p" {
		if userID != a && userID != b {
			return 0, errs.New(errs.PermissionDenied, "not a participant of this conversation")
		}
		return 0, nil
	}
	joined, err := s.groups.Membership(ctx, a, userID)
	if err != nil {
		return 0, err
	}
	return max(joined, 0), nil
}

// notReadable reports whether err means the user may not read a
// conversation (as opposed to a failure).
func notReadable(err error) bool {
	return errs.HasCode(err, errs.PermissionDenied) || errs.HasCode(err, errs.NotFound)
}

func (s *ReadSide) History(ctx context.Context, userID, conversationID string, beforeSeq, afterSeq *int64, limit int) (HistoryPage, error) {
	if err := validateUserID(userID); err != nil {
		return HistoryPage{}, err
	}
	if err := ValidateConversationID("conversation_id", conversationID); err != nil {
		return HistoryPage{}, err
	}
	switch {
	case beforeSeq != nil && afterSeq != nil:
		return HistoryPage{}, errs.Invalid("before_seq", "cannot be combined with after_seq")
	case beforeSeq != nil && *beforeSeq < 0:
		return HistoryPage{}, errs.Invalid("before_seq", "must not be negative")
	case afterSeq != nil && *afterSeq < 0:
		return HistoryPage{}, errs.Invalid("after_seq", "must not be negative")
	}
	limit, err := pageLimit("limit", limit, s.pageSize, s.maxPageSize)
	if err != nil {
		return HistoryPage{}, err
	}
	floor, err := s.access(ctx, userID, conversationID)
	if err != nil {
		return HistoryPage{}, err
	}
	s.catchUp(ctx, "history")
	page := HistoryPage{Messages: []message.Message{}}
	if afterSeq != nil {
		msgs, err := s.store.Messages(ctx, conversationID, SeqRange{After: max(*afterSeq, floor), Limit: limit + 1})
		if err != nil {
			return HistoryPage{}, err
		}
		page.HasMore = len(msgs) > limit
		page.Messages = append(page.Messages, msgs[:min(len(msgs), limit)]...)
		return page, nil
	}
	var before int64
	if beforeSeq != nil {
		before = *beforeSeq
		if before <= floor+1 {
			return page, nil
		}
	}
	msgs, err := s.store.Messages(ctx, conversationID, SeqRange{After: floor, Before: before, Limit: limit + 1, Desc: true})
	if err != nil {
		return HistoryPage{}, err
	}
	page.HasMore = len(msgs) > limit
	msgs = msgs[:min(len(msgs), limit)]
	slices.Reverse(msgs)
	page.Messages = append(page.Messages, msgs...)
	return page, nil
}

func (s *ReadSide) Sync(ctx context.Context, userID string, cursors map[string]int64, limit int) (SyncResult, error) {
	if err := validateUserID(userID); err != nil {
		return SyncResult{}, err
	}
	limit, err := pageLimit("limit", limit, DefaultSyncLimit, MaxSyncLimit)
	if err != nil {
		return SyncResult{}, err
	}
	if len(cursors) > MaxSyncCursors {
		return SyncResult{}, errs.Invalid("cursors", "at most 10000 conversations per sync")
	}
	s.catchUp(ctx, "sync")
	targets := make(map[string]int64, len(cursors))
	for conv, seq := range cursors {
		if err := ValidateConversationID("cursors", conv); err != nil {
			return SyncResult{}, err
		}
		if seq < 0 {
			return SyncResult{}, errs.Invalid("cursors", "seq of "+conv+" must not be negative")
		}
		targets[conv] = seq
	}
	// Conversations the client does not know yet start from the beginning.
	rows, err := s.store.UserConversations(ctx, userID)
	if err != nil {
		return SyncResult{}, err
	}
	for _, r := range rows {
		if _, known := targets[r.ConversationID]; !known && r.LastSeq > 0 {
			targets[r.ConversationID] = 0
		}
	}
	groupIDs, err := s.groups.ListUserGroups(ctx, userID)
	if err != nil {
		return SyncResult{}, err
	}
	for _, g := range groupIDs {
		if _, known := targets[ids.Group(g)]; !known {
			targets[ids.Group(g)] = 0
		}
	}
	convs := make([]string, 0, len(targets))
	for c := range targets {
		convs = append(convs, c)
	}
	sort.Strings(convs)

	res := SyncResult{Conversations: []SyncedConversation{}}
	for _, conv := range convs {
		floor, err := s.access(ctx, userID, conv)
		if notReadable(err) {
			continue
		}
		if err != nil {
			return SyncResult{}, err
		}
		msgs, err := s.store.Messages(ctx, conv, SeqRange{After: max(targets[conv], floor), Limit: limit + 1})
		if err != nil {
			return SyncResult{}, err
		}
		if len(msgs) == 0 {
			continue
		}
		sc := SyncedConversation{ConversationID: conv, HasMore: len(msgs) > limit, Messages: msgs[:min(len(msgs), limit)]}
		res.HasMore = res.HasMore || sc.HasMore
		res.Conversations = append(res.Conversations, sc)
	}
	return res, nil
}

// conversations builds every conversation of the user: 1:1 rows from the
// store, groups from the group service joined with their shared state.
func (s *ReadSide) conversations(ctx context.Context, userID string) ([]Conversation, error) {
	s.catchUp(ctx, "conversations")
	rows, err := s.store.UserConversations(ctx, userID)
	if err != nil {
		return nil, err
	}
	byConv := make(map[string]UserConversation, len(rows))
	out := make([]Conversation, 0, len(rows))
	for _, r := range rows {
		byConv[r.ConversationID] = r
		if _, ok := ids.Peer(r.ConversationID, userID); ok {
			out = append(out, build(userID, r, GroupState{}, 0))
		}
	}
	groupIDs, err := s.groups.ListUserGroups(ctx, userID)
	if err != nil {
		return nil, err
	}
	convs := make([]string, 0, len(groupIDs))
	joined := make(map[string]int64, len(groupIDs))
	for _, g := range groupIDs {
		j, err := s.groups.Membership(ctx, g, userID)
		if notReadable(err) {
			continue // left between the two calls
		}
		if err != nil {
			return nil, err
		}
		c := ids.Group(g)
		convs = append(convs, c)
		joined[c] = max(j, 0)
	}
	states, err := s.store.GroupStates(ctx, convs)
	if err != nil {
		return nil, err
	}
	for _, c := range convs {
		r, ok := byConv[c]
		if !ok {
			r = UserConversation{ConversationID: c}
		}
		out = append(out, build(userID, r, states[c], joined[c]))
	}
	return out, nil
}

// build assembles the API view of a conversation. For a group, the read
// seq shown is at least the joined seq (nothing before it is readable) and
// a last message from before the member joined is not shown.
func build(userID string, r UserConversation, g GroupState, joined int64) Conversation {
	kind, a, _, _ := ids.ParseConversation(r.ConversationID)
	c := Conversation{ID: r.ConversationID, Muted: r.Muted, Pinned: r.Pinned}
	if kind == "p" {
		c.Type = TypeP2P
		c.PeerID, _ = ids.Peer(r.ConversationID, userID)
		c.LastMessage, c.LastSeq, c.ReadSeq = r.LastMessage, r.LastSeq, r.ReadSeq
	} else {
		c.Type = TypeGroup
		c.GroupID = a
		c.LastSeq = g.LastSeq
		c.ReadSeq = max(r.ReadSeq, joined)
		if g.LastMessage != nil && g.LastMessage.Seq > joined {
			c.LastMessage = g.LastMessage
		}
	}
	c.Unread = max(c.LastSeq-c.ReadSeq, 0)
	return c
}

type cursorKey struct {
	At int64  `json:"t"`
	ID string `json:"id"`
}

func keyOf(c Conversation) cursorKey {
	return cursorKey{At: activity(c).UnixNano(), ID: c.ID}
}

// before orders the list as PROTOCOL.md says: most recent activity first,
// then id. Pinned is a flag clients show; it does not reorder the list.
func (k cursorKey) before(o cursorKey) bool {
	if k.At != o.At {
		return k.At > o.At
	}
	return k.ID < o.ID
}

func encodeCursor(k cursorKey) string {
	raw, _ := json.Marshal(k)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeCursor(s string) (cursorKey, error) {
	var k cursorKey
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) > 256 || json.Unmarshal(raw, &k) != nil || k.ID == "" {
		return cursorKey{}, errs.Invalid("cursor", "is not a cursor this server returned")
	}
	return k, nil
}

func (s *ReadSide) Conversations(ctx context.Context, userID, cursor string, limit int) (ConversationPage, error) {
	if err := validateUserID(userID); err != nil {
		return ConversationPage{}, err
	}
	limit, err := pageLimit("limit", limit, s.pageSize, s.maxPageSize)
	if err != nil {
		return ConversationPage{}, err
	}
	var after *cursorKey
	if cursor != "" {
		k, err := decodeCursor(cursor)
		if err != nil {
			return ConversationPage{}, err
		}
		after = &k
	}
	all, err := s.conversations(ctx, userID)
	if err != nil {
		return ConversationPage{}, err
	}
	sort.Slice(all, func(i, j int) bool { return keyOf(all[i]).before(keyOf(all[j])) })
	start := 0
	if after != nil {
		start = sort.Search(len(all), func(i int) bool { return after.before(keyOf(all[i])) })
	}
	page := ConversationPage{Conversations: []Conversation{}}
	end := min(start+limit, len(all))
	page.Conversations = append(page.Conversations, all[start:end]...)
	if end < len(all) {
		page.NextCursor = encodeCursor(keyOf(all[end-1]))
	}
	return page, nil
}

func (s *ReadSide) Conversation(ctx context.Context, userID, conversationID string) (Conversation, error) {
	if err := validateUserID(userID); err != nil {
		return Conversation{}, err
	}
	if err := ValidateConversationID("conversation_id", conversationID); err != nil {
		return Conversation{}, err
	}
	joined, err := s.access(ctx, userID, conversationID)
	if err != nil {
		return Conversation{}, err
	}
	return s.conversation(ctx, userID, conversationID, joined)
}

// conversation builds one conversation of a user whose access was checked
// (joined is the floor access returned).
func (s *ReadSide) conversation(ctx context.Context, userID, conversationID string, joined int64) (Conversation, error) {
	// A user reads their own writes; a service asking on its own behalf
	// (the pusher: is it muted?) wants settings, which are stored
	// directly, not through the writer: it does not wait for it, so a
	// history writer behind does not slow delivery.
	if p, ok := identity.FromContext(ctx); !ok || !p.Service {
		s.catchUp(ctx, "conversation")
	}
	r, _, err := s.store.UserConversation(ctx, userID, conversationID)
	if err != nil {
		return Conversation{}, err
	}
	var g GroupState
	if conversationID[0] == 'g' {
		states, err := s.store.GroupStates(ctx, []string{conversationID})
		if err != nil {
			return Conversation{}, err
		}
		g = states[conversationID]
	}
	return build(userID, r, g, joined), nil
}

func (s *ReadSide) UpdateSettings(ctx context.Context, userID, conversationID string, muted, pinned *bool) (Conversation, error) {
	if err := validateUserID(userID); err != nil {
		return Conversation{}, err
	}
	if err := ValidateConversationID("conversation_id", conversationID); err != nil {
		return Conversation{}, err
	}
	if muted == nil && pinned == nil {
		return Conversation{}, errs.Invalid("muted", "set muted and/or pinned")
	}
	joined, err := s.access(ctx, userID, conversationID)
	if err != nil {
		return Conversation{}, err
	}
	if _, err := s.store.UpdateSettings(ctx, userID, conversationID, muted, pinned); err != nil {
		return Conversation{}, err
	}
	return s.conversation(ctx, userID, conversationID, joined)
}

func (s *ReadSide) Unread(ctx context.Context, userID string) (UnreadCounts, error) {
	if err := validateUserID(userID); err != nil {
		return UnreadCounts{}, err
	}
	all, err := s.conversations(ctx, userID)
	if err != nil {
		return UnreadCounts{}, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	out := UnreadCounts{Conversations: []ConversationUnread{}}
	for _, c := range all {
		if c.Unread > 0 {
			out.Total += c.Unread
			out.Conversations = append(out.Conversations, ConversationUnread{ConversationID: c.ID, Unread: c.Unread})
		}
	}
	return out, nil
}

func (s *ReadSide) GetMessage(ctx context.Context, messageID string) (message.Message, error) {
	if !ids.Valid(messageID) {
		return message.Message{}, errs.Invalid("message_id", "is not a valid id")
	}
	m, found, err := s.store.MessageByID(ctx, messageID)
	if err == nil && (!found || m.SenderID == "") && s.catchUp(ctx, "get message") {
		// A message recalled right after its `sent` may not be stored yet.
		m, found, err = s.store.MessageByID(ctx, messageID)
	}
	if err != nil {
		return message.Message{}, err
	}
	if !found || m.SenderID == "" {
		// A recall mark without its message is not a message yet.
		return message.Message{}, errs.New(errs.NotFound, "message not found")
	}
	return m, nil
}

func validateAck(userID, deviceID, conversationID string) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	if err := ids.ValidateDeviceID(deviceID); err != nil {
		return err
	}
	return ValidateConversationID("conversation_id", conversationID)
}

func (s *ReadSide) Ack(ctx context.Context, userID, deviceID, conversationID string, seq int64) error {
	if err := validateAck(userID, deviceID, conversationID); err != nil {
		return err
	}
	if seq <= 0 {
		return errs.Invalid("seq", "must be positive")
	}
	return s.store.SetAcked(ctx, userID, deviceID, conversationID, seq)
}

func (s *ReadSide) Acked(ctx context.Context, userID, deviceID, conversationID string) (int64, error) {
	if err := validateAck(userID, deviceID, conversationID); err != nil {
		return 0, err
	}
	return s.store.Acked(ctx, userID, deviceID, conversationID)
}

// catchUp waits, at most caughtUpWait, until the writer has stored every
// message acknowledged before the call (see Options.CaughtUp); false when
// there is nothing to wait for. A read that cannot wait goes on with what
// is stored.
func (s *ReadSide) catchUp(ctx context.Context, read string) bool {
	if s.caughtUp == nil {
		return false
	}
	wctx, cancel := context.WithTimeout(ctx, s.caughtUpWait)
	defer cancel()
	if err := s.caughtUp(wctx); err != nil && ctx.Err() == nil {
		_ = level.Warn(s.logger).Log("msg", read+" proceeds before the writer caught up", "err", err)
	}
	return true
}

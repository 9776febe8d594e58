// Package query is Beehive's read side: message history, sync since a seq,
// the conversation list with unread counts, per-conversation settings and
// per-device delivery acks. Its persistence writer (persist.go) is the
// "persist" consumer group of beehive.messages that fills the store.
//
// Decisions a caller may rely on:
//   - A conversation the user may be part of (a p: id naming them, a group
//     they are a member of) but without any message yet answers with zero
//     state (200), not 404; one they are not part of is 403.
//   - Conversations lists pinned ones first, then by the last entry's
//     sent_at (newest first), then by id; a group without messages comes
//     last. The cursor is keyset-based, so a conversation whose activity
//     changes between two pages may move across the page boundary.
//   - Unread is computed, never stored per member per message: last_seq
//     minus the read seq (groups: minus max(read seq, joined seq)). Recall
//     entries and seqs skipped by failed sends count as entries (see
//     Conversation.Unread).
//   - Sync skips conversations the user may no longer read instead of
//     failing the whole sync.
package query

import (
	"context"
	"strconv"
	"time"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
)

// Limits of the read side.
const (
	// DefaultPageSize and MaxPageSize are the defaults of Options.PageSize
	// and Options.MaxPageSize (config query.page_size, query.max_page_size),
	// which bound History and Conversations pages.
	DefaultPageSize = 50
	MaxPageSize     = 200
	// DefaultSyncLimit and MaxSyncLimit bound messages per conversation in
	// one Sync answer.
	DefaultSyncLimit = 200
	MaxSyncLimit     = 1000
	// MaxSyncCursors bounds the cursors one Sync may carry.
	MaxSyncCursors = 10000
)

// Conversation types as the API shows them.
const (
	TypeP2P   = "p2p"
	TypeGroup = "group"
)

// Service is the read side. Every method that names a user acts for that
// user (the transports fill it from the token, see identity.Actor).
type Service interface {
	// History returns a page of a conversation, ascending by seq.
	// beforeSeq and afterSeq are exclusive bounds, at most one of them set
	// (nil = unset): none returns the newest page, beforeSeq the page just
	// older than it, afterSeq the page just newer than it. Group members see
	// only seq > the seq at which they joined.
	History(ctx context.Context, userID, conversationID string, beforeSeq, afterSeq *int64, limit int) (HistoryPage, error)
	// Sync returns, per conversation, the messages after the cursor
	// (ascending, at most limit each). Conversations of the user missing
	// from cursors are synced from their start; conversations the user may
	// not read (a group they left) are skipped, not failed, so one stale
	// cursor cannot break a reconnect.
	Sync(ctx context.Context, userID string, cursors map[string]int64, limit int) (SyncResult, error)
	// Conversations lists the user's conversations by most recent activity
	// (the last entry's sent_at), then by id; pinned is a flag, not an order.
	Conversations(ctx context.Context, userID, cursor string, limit int) (ConversationPage, error)
	// Conversation returns one conversation of the user. A conversation the
	// user belongs to but that has no message yet answers with zero state,
	// not not_found.
	Conversation(ctx context.Context, userID, conversationID string) (Conversation, error)
	// UpdateSettings sets muted and/or pinned (nil leaves a value as is).
	UpdateSettings(ctx context.Context, userID, conversationID string, muted, pinned *bool) (Conversation, error)
	// Unread returns the user's unread counts (GetUnreadMessages).
	Unread(ctx context.Context, userID string) (UnreadCounts, error)
	// GetMessage returns a message by id (internal: recall lookups).
	GetMessage(ctx context.Context, messageID string) (message.Message, error)
	// Ack records that deviceID of userID received the conversation up to
	// seq (internal: the gateway stores WebSocket acks). Never backwards.
	Ack(ctx context.Context, userID, deviceID, conversationID string, seq int64) error
	// Acked returns the seq acked by the device (0 if none; internal).
	Acked(ctx context.Context, userID, deviceID, conversationID string) (int64, error)
}

// Groups is what the read side needs from the group service; the wiring
// adapts the group service to it.
type Groups interface {
	// Membership returns the seq at which userID joined groupID; a user who
	// is not a member gets permission_denied or not_found.
	Membership(ctx context.Context, groupID, userID string) (joinedSeq int64, err error)
	// ListUserGroups returns the ids of the groups userID belongs to.
	ListUserGroups(ctx context.Context, userID string) ([]string, error)
}

// HistoryPage is one History answer.
type HistoryPage struct {
	Messages []message.Message `json:"messages"`
	// HasMore: for a newest or before_seq page, older messages exist; for
	// an after_seq page, newer ones do.
	HasMore bool `json:"has_more"`
}

// SyncedConversation is the part of a Sync answer for one conversation.
type SyncedConversation struct {
	ConversationID string            `json:"conversation_id"`
	Messages       []message.Message `json:"messages"`
	// HasMore: more messages follow the last one returned.
	HasMore bool `json:"has_more"`
}

// SyncResult is one Sync answer: conversations with new messages, ordered
// by conversation id, and whether any of them has more.
type SyncResult struct {
	Conversations []SyncedConversation `json:"conversations"`
	HasMore       bool                 `json:"has_more"`
}

// Conversation is one entry of the conversation list (PROTOCOL.md).
type Conversation struct {
	ID          string           `json:"id"`
	Type        string           `json:"type"`
	PeerID      string           `json:"peer_id,omitempty"`
	GroupID     string           `json:"group_id,omitempty"`
	LastMessage *message.Message `json:"last_message"`
	LastSeq     int64            `json:"last_seq"`
	ReadSeq     int64            `json:"read_seq"`
	// Unread is last_seq minus the read seq (for groups: minus the larger
	// of the read seq and the joined seq). It counts seq entries from
	// others, so a recall entry by someone else counts as one, and a seq
	// skipped by a failed send counts too; the user's own entries never
	// count because sending moves the sender's read seq.
	Unread int64 `json:"unread"`
	Muted  bool  `json:"muted"`
	Pinned bool  `json:"pinned"`
}

// ConversationPage is one Conversations answer. NextCursor is empty on the
// last page.
type ConversationPage struct {
	Conversations []Conversation `json:"conversations"`
	NextCursor    string         `json:"next_cursor"`
}

// ConversationUnread is one conversation's unread count.
type ConversationUnread struct {
	ConversationID string `json:"conversation_id"`
	Unread         int64  `json:"unread"`
}

// UnreadCounts is the user's total and per-conversation unread counts
// (only conversations with unread > 0, ordered by id).
type UnreadCounts struct {
	Total         int64                `json:"total"`
	Conversations []ConversationUnread `json:"conversations"`
}

// ValidateConversationID checks a conversation id's shape.
func ValidateConversationID(field, id string) error {
	if id == "" {
		return errs.Missing(field)
	}
	if _, _, _, ok := ids.ParseConversation(id); !ok {
		return errs.Invalid(field, "must be p:<user>:<user> (ascending) or g:<group>")
	}
	return nil
}

func validateUserID(id string) error {
	if !ids.Valid(id) {
		return errs.Invalid("user_id", "is not a valid id")
	}
	return nil
}

// pageLimit validates a page size: 0 means def, negative or above max is
// refused naming field.
func pageLimit(field string, limit, def, max int) (int, error) {
	switch {
	case limit == 0:
		return def, nil
	case limit < 0 || limit > max:
		return 0, errs.Invalid(field, "must be between 1 and "+strconv.Itoa(max))
	}
	return limit, nil
}

// activity is when a conversation last had an entry, for ordering.
func activity(c Conversation) time.Time {
	if c.LastMessage == nil {
		return time.Time{}
	}
	return c.LastMessage.SentAt
}

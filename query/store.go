package query

import (
	"context"
	"fmt"

	"github.com/beehive-im/beehive/message"
)

// BucketSize is the number of seqs per messages partition: a conversation's
// messages live in partitions (conversation_id, seq / BucketSize), so a
// partition stays bounded and any seq range maps to known partitions.
const BucketSize = 1000

// Bucket is the messages partition of seq.
func Bucket(seq int64) int64 { return seq / BucketSize }

// Batch is a set of idempotent writes the persistence writer applies at
// once. Applying the same Batch twice, or any prefix of the event log again,
// leaves the store as it was: every write is keyed by (conversation, seq) or
// only ever moves a seq forward.
type Batch struct {
	// Messages are upserted at (conversation, seq), and indexed by id. A
	// message already marked recalled stays recalled without content.
	Messages []message.Message
	// Recalls mark the message at (conversation, seq) recalled and drop its
	// content. A mark that arrives before its message still wins.
	Recalls []RecallMark
	// Conversations set a user's 1:1 conversation row (peer, last message,
	// last seq) unless the row already has a higher last seq.
	Conversations []ConversationUpdate
	// Groups set a group conversation's shared state (last message, last
	// seq) unless it already has a higher last seq: written once per group
	// message, never per member.
	Groups []GroupUpdate
	// ReadSeqs raise a user's read seq in a conversation (never lower it).
	ReadSeqs []ReadMark
}

// Empty reports whether b writes nothing.
func (b Batch) Empty() bool {
	return len(b.Messages) == 0 && len(b.Recalls) == 0 && len(b.Conversations) == 0 && len(b.Groups) == 0 && len(b.ReadSeqs) == 0
}

// RecallMark withdraws the message MessageID at (ConversationID, Seq).
type RecallMark struct {
	ConversationID string
	Seq            int64
	MessageID      string
}

// ConversationUpdate is the 1:1 conversation row of UserID.
type ConversationUpdate struct {
	UserID         string
	ConversationID string
	PeerID         string
	LastMessage    message.Message
}

// GroupUpdate is a group conversation's shared state.
type GroupUpdate struct {
	ConversationID string
	LastMessage    message.Message
}

// ReadMark raises UserID's read seq in ConversationID to Seq.
type ReadMark struct {
	UserID         string
	ConversationID string
	Seq            int64
}

// SeqRange selects messages of one conversation with After < seq < Before
// (Before 0 = unbounded), at most Limit of them (Limit > 0), ascending, or
// the ones nearest Before when Desc.
type SeqRange struct {
	After  int64
	Before int64
	Limit  int
	Desc   bool
}

// UserConversation is a user's row of conversations_by_user: for a 1:1
// conversation the peer and last message (LastSeq 0 for a group: the group's
// state is shared, see GroupState), plus the user's own read seq and
// settings for either kind.
type UserConversation struct {
	ConversationID string
	PeerID         string
	LastMessage    *message.Message
	LastSeq        int64
	ReadSeq        int64
	Muted          bool
	Pinned         bool
}

// GroupState is a group conversation's shared last message and last seq.
type GroupState struct {
	ConversationID string
	LastMessage    *message.Message
	LastSeq        int64
}

// Settings are a user's settings of one conversation.
type Settings struct {
	Muted  bool
	Pinned bool
}

// Store is the read side's storage. Backends: Pebble (store_pebble.go);
// Cassandra mirrors the same keys. Every backend passes query/storetest.
//
// A Cassandra backend gets "never backwards" without read-before-write by
// writing last-message/last-seq, read seq and acked seq cells USING
// TIMESTAMP <seq> (last write wins by timestamp), and "recall wins" by
// deleting content with a timestamp above the message's.
type Store interface {
	// Apply writes b; it is idempotent and durable when it returns nil.
	Apply(ctx context.Context, b Batch) error
	// Messages returns messages of conversationID in r.
	Messages(ctx context.Context, conversationID string, r SeqRange) ([]message.Message, error)
	// MessageByID returns the message with id (messages_by_id).
	MessageByID(ctx context.Context, id string) (message.Message, bool, error)
	// UserConversations returns every conversations_by_user row of userID
	// (1:1 rows, and group rows where the user has a read seq or
	// settings), ordered by conversation id.
	UserConversations(ctx context.Context, userID string) ([]UserConversation, error)
	// UserConversation returns one row; found is false when there is none
	// (the zero row, ConversationID set, is returned then).
	UserConversation(ctx context.Context, userID, conversationID string) (UserConversation, bool, error)
	// GroupStates returns the state of each listed group conversation that
	// has one.
	GroupStates(ctx context.Context, conversationIDs []string) (map[string]GroupState, error)
	// UpdateSettings sets muted and/or pinned (nil leaves a value) and
	// returns the resulting settings.
	UpdateSettings(ctx context.Context, userID, conversationID string, muted, pinned *bool) (Settings, error)
	// SetAcked raises the device's delivered seq (never lowers it).
	SetAcked(ctx context.Context, userID, deviceID, conversationID string, seq int64) error
	// Acked returns the device's delivered seq (0 if none).
	Acked(ctx context.Context, userID, deviceID, conversationID string) (int64, error)
}

// validateBatch refuses a batch with a seq no backend may store, before
// anything of it is written.
func validateBatch(b Batch) error {
	for _, m := range b.Messages {
		if err := validSeq("message", m.Seq); err != nil {
			return err
		}
	}
	for _, r := range b.Recalls {
		if err := validSeq("recalled", r.Seq); err != nil {
			return err
		}
	}
	for _, c := range b.Conversations {
		if err := validSeq("conversation", c.LastMessage.Seq); err != nil {
			return err
		}
	}
	for _, g := range b.Groups {
		if err := validSeq("group", g.LastMessage.Seq); err != nil {
			return err
		}
	}
	for _, r := range b.ReadSeqs {
		if err := validSeq("read", r.Seq); err != nil {
			return err
		}
	}
	return nil
}

func validSeq(what string, seq int64) error {
	if seq <= 0 {
		return fmt.Errorf("query store: %s seq %d is not positive", what, seq)
	}
	return nil
}

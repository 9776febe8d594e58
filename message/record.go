package message

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/kafkax"
)

// ErrBadRecord marks a beehive.messages record DecodeRecord refused. The
// error DecodeRecord returns wraps it and kafkax.ErrPoison, so a consumer
// handler that returns it dead-letters the record at once.
var ErrBadRecord = errors.New("message: bad beehive.messages record")

// DecodeRecord decodes and checks one record of beehive.messages: key is
// the record's key (the conversation id), value its Event as JSON. It is
// the one decoder of the topic: history (persist), push and replay accept
// exactly the records it accepts, so a record history never holds is never
// pushed either.
//
// It refuses a value that is not an Event; a schema version other than
// 1..EventVersion; a malformed conversation id or one that is not the key;
// a message or recall without its entry, with a seq <= 0, a malformed
// message or sender id, or an entry of another conversation; a recall that
// names no valid earlier message; a read without a valid reader and seq, or
// by a non-participant of a 1:1 conversation; and an unknown kind. The
// entry's ConversationID is set to the event's.
func DecodeRecord(key, value []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(value, &ev); err != nil {
		return Event{}, refuse("value is not an event: %v", err)
	}
	if ev.Version < 1 || ev.Version > EventVersion {
		return Event{}, refuse("schema version %d is not in 1..%d", ev.Version, EventVersion)
	}
	kind, a, b, ok := ids.ParseConversation(ev.ConversationID)
	if !ok {
		return Event{}, refuse("conversation id %q is malformed", ev.ConversationID)
	}
	if string(key) != ev.ConversationID {
		return Event{}, refuse("key %q is not the event's conversation id %q", key, ev.ConversationID)
	}
	checkEntry := func() error {
		m := ev.Message
		switch {
		case m == nil:
			return refuse("%s event without message", ev.Kind)
		case m.Seq <= 0:
			return refuse("%s event with seq %d", ev.Kind, m.Seq)
		case !ids.Valid(m.ID) || !ids.Valid(m.SenderID):
			return refuse("%s event with malformed message id %q or sender id %q", ev.Kind, m.ID, m.SenderID)
		case m.ConversationID != "" && m.ConversationID != ev.ConversationID:
			return refuse("%s event of %s carries a message of %s", ev.Kind, ev.ConversationID, m.ConversationID)
		}
		m.ConversationID = ev.ConversationID
		return nil
	}
	switch ev.Kind {
	case EventMessage:
		if err := checkEntry(); err != nil {
			return Event{}, err
		}
	case EventRecall:
		if err := checkEntry(); err != nil {
			return Event{}, err
		}
		if ev.RecalledSeq <= 0 || ev.RecalledSeq >= ev.Message.Seq || !ids.Valid(ev.RecalledID) {
			return Event{}, refuse("recall event names no valid earlier message (id %q, seq %d)", ev.RecalledID, ev.RecalledSeq)
		}
	case EventRead:
		if !ids.Valid(ev.UserID) || ev.ReadSeq <= 0 {
			return Event{}, refuse("read event with user %q seq %d", ev.UserID, ev.ReadSeq)
		}
		if kind == "p" && ev.UserID != a && ev.UserID != b {
			return Event{}, refuse("read event of %s by a non-participant", ev.ConversationID)
		}
	default:
		return Event{}, refuse("unknown event kind %q", ev.Kind)
	}
	return ev, nil
}

// refuse is DecodeRecord's error: poison to the kafkax consumers.
func refuse(format string, args ...any) error {
	return kafkax.Poison(fmt.Errorf("%w: %s", ErrBadRecord, fmt.Sprintf(format, args...)))
}

// TypingRecord is one record of beehive.typing, keyed by the conversation
// id: userID is typing in ConversationID. It is never stored.
type TypingRecord struct {
	Version        int       `json:"v"`
	ConversationID string    `json:"conversation_id"`
	UserID         string    `json:"user_id"`
	At             time.Time `json:"at"`
}

// DecodeTypingRecord decodes and checks one record of beehive.typing, as
// DecodeRecord does for beehive.messages: a refused record is poison.
func DecodeTypingRecord(key, value []byte) (TypingRecord, error) {
	var r TypingRecord
	if err := json.Unmarshal(value, &r); err != nil {
		return TypingRecord{}, refuse("value is not a typing record: %v", err)
	}
	if r.Version < 1 || r.Version > EventVersion {
		return TypingRecord{}, refuse("schema version %d is not in 1..%d", r.Version, EventVersion)
	}
	kind, a, b, ok := ids.ParseConversation(r.ConversationID)
	switch {
	case !ok:
		return TypingRecord{}, refuse("conversation id %q is malformed", r.ConversationID)
	case string(key) != r.ConversationID:
		return TypingRecord{}, refuse("key %q is not the record's conversation id %q", key, r.ConversationID)
	case !ids.Valid(r.UserID):
		return TypingRecord{}, refuse("typing record with user %q", r.UserID)
	case kind == "p" && r.UserID != a && r.UserID != b:
		return TypingRecord{}, refuse("typing record of %s by a non-participant", r.ConversationID)
	}
	return r, nil
}

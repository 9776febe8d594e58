package message

import (
	"encoding/json"
	"time"
)

// Content types a client may send, and the recall event's type.
const (
	TypeText   = "text"
	TypeImage  = "image"
	TypeFile   = "file"
	TypeCustom = "custom"
	TypeRecall = "recall"
)

// Message is one entry of a conversation, as PROTOCOL.md shows it.
// Content is a JSON string for text and a JSON object otherwise.
type Message struct {
	ID             string          `json:"id"`
	ConversationID string          `json:"conversation_id"`
	Seq            int64           `json:"seq"`
	SenderID       string          `json:"sender_id"`
	Type           string          `json:"type"`
	Content        json.RawMessage `json:"content,omitempty"`
	Mentions       []string        `json:"mentions"`
	SentAt         time.Time       `json:"sent_at"`
	ClientMsgID    string          `json:"client_msg_id,omitempty"`
	// Recalled is set on a message a later recall event withdrew; its
	// content is then gone.
	Recalled bool `json:"recalled,omitempty"`
	// GroupID is set for group messages; ToUserID for 1:1 ones.
	GroupID  string `json:"group_id,omitempty"`
	ToUserID string `json:"to_user_id,omitempty"`
}

// EventVersion is the schema version of Event on beehive.messages.
const EventVersion = 1

// Event kinds on beehive.messages.
const (
	// EventMessage carries a new message (with its seq).
	EventMessage = "message"
	// EventRecall carries a recall: Message is the recall entry itself
	// (type recall, its own seq, content {message_id}); RecalledID and
	// RecalledSeq name the withdrawn message.
	EventRecall = "recall"
	// EventRead carries a read mark; it has no seq of its own.
	EventRead = "read"
)

// Event is the record on Kafka topic beehive.messages, keyed by
// conversation id. Consumers (persist, push) decode it; replay rebuilds
// history from it.
type Event struct {
	Version        int      `json:"v"`
	Kind           string   `json:"kind"`
	ConversationID string   `json:"conversation_id"`
	Message        *Message `json:"message,omitempty"`
	// Recall.
	RecalledID  string `json:"recalled_id,omitempty"`
	RecalledSeq int64  `json:"recalled_seq,omitempty"`
	// Read.
	UserID  string `json:"user_id,omitempty"`
	ReadSeq int64  `json:"read_seq,omitempty"`
	// OriginConn is "<gateway_id>/<conn_id>" of the socket that sent the
	// message, which got `sent` and must not also get `message`.
	OriginConn string `json:"origin_conn,omitempty"`
	// At is when the event was produced.
	At time.Time `json:"at"`
}

// RecallContent is the content of a recall entry.
type RecallContent struct {
	MessageID string `json:"message_id"`
}

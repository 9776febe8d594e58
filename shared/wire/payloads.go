package wire

import "encoding/json"

// Server frame payloads.

// MessageData is the data of `sent` and `message`: {"message": {...}}. M
// is the message as package message defines it (message.Message, or a
// pointer to one); a client may decode into a struct of the fields it
// reads.
type MessageData[M any] struct {
	Message M `json:"message"`
}

// RecalledData is the data of `recalled`; Seq is the recall event's seq.
type RecalledData struct {
	ConversationID string `json:"conversation_id"`
	MessageID      string `json:"message_id"`
	Seq            int64  `json:"seq"`
}

// ReceiptData is the data of `receipt`.
type ReceiptData struct {
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
	ReadSeq        int64  `json:"read_seq"`
}

// TypingData is the data of a server `typing`.
type TypingData struct {
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
}

// PresenceData is the data of `presence`.
type PresenceData struct {
	UserID string `json:"user_id"`
	Online bool   `json:"online"`
}

// SyncedData is the data of `synced`.
type SyncedData struct {
	HasMore bool `json:"has_more"`
}

// ErrorData is the data of `error`. Code is one of the error codes of
// PROTOCOL.md (package errs).
type ErrorData struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RetryAfterMS is how long to wait before retrying, for a failure a
	// retry can get past (rate_limited, unavailable, deadline_exceeded).
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

// Client frame payloads.

// SendData is the data of `send`: exactly one of ToUserID and GroupID.
type SendData struct {
	ToUserID    string          `json:"to_user_id,omitempty"`
	GroupID     string          `json:"group_id,omitempty"`
	ClientMsgID string          `json:"client_msg_id"`
	Type        string          `json:"type"`
	Content     json.RawMessage `json:"content"`
	Mentions    []string        `json:"mentions,omitempty"`
}

// SeqData is the data of `ack` and `read`. Seq is a pointer so a missing
// seq is told from 0.
type SeqData struct {
	ConversationID string `json:"conversation_id"`
	Seq            *int64 `json:"seq"`
}

// TypingRequestData is the data of a client `typing`.
type TypingRequestData struct {
	ConversationID string `json:"conversation_id"`
}

// SyncData is the data of `sync` (absent for a fresh install). Limit is a
// pointer so a missing limit is told from 0.
type SyncData struct {
	Cursors map[string]int64 `json:"cursors"`
	Limit   *int             `json:"limit,omitempty"`
}

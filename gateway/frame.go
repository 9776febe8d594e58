package gateway

import (
	"encoding/json"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
)

// Client ops.
const (
	OpSend   = "send"
	OpAck    = "ack"
	OpRead   = "read"
	OpTyping = "typing"
	OpSync   = "sync"
	OpPing   = "ping"
)

// Server ops.
const (
	OpSent     = "sent"
	OpMessage  = "message"
	OpRecalled = "recalled"
	OpReceipt  = "receipt"
	OpPresence = "presence"
	OpSynced   = "synced"
	OpPong     = "pong"
	OpError    = "error"
)

// Close codes of PROTOCOL.md.
const (
	CloseSessionRevoked     = 4001
	ClosePolicy             = 4008
	CloseTooSlow            = 4009
	CloseInvalidFrameStream = 4400
	CloseGoingAway          = 1001
)

// Frame is one WebSocket text frame: {"op", "id"?, "data"?}. ID is the
// client's frame id, echoed verbatim (a JSON string or number).
type Frame struct {
	Op   string          `json:"op"`
	ID   json.RawMessage `json:"id,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// EncodeFrame builds a server frame with data (nil for none). Services
// that push (the pusher) build the Frame of a DeliverRequest with it.
func EncodeFrame(op string, data any) ([]byte, error) {
	return encodeFrame(op, nil, data)
}

func encodeFrame(op string, id json.RawMessage, data any) ([]byte, error) {
	f := struct {
		Op   string          `json:"op"`
		ID   json.RawMessage `json:"id,omitempty"`
		Data any             `json:"data,omitempty"`
	}{op, id, data}
	return json.Marshal(f)
}

// Server frame payloads, for EncodeFrame.

// MessageData is the data of `sent` and `message`.
type MessageData struct {
	Message message.Message `json:"message"`
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

// ErrorData is the data of `error`.
type ErrorData struct {
	Code    errs.Code `json:"code"`
	Message string    `json:"message"`
	Field   string    `json:"field,omitempty"`
}

func errorData(err error) ErrorData {
	p := errs.Public(err)
	return ErrorData{Code: p.Code, Message: p.Message, Field: p.Field}
}

// Client frame payloads.

type sendData struct {
	ToUserID    string          `json:"to_user_id"`
	GroupID     string          `json:"group_id"`
	ClientMsgID string          `json:"client_msg_id"`
	Type        string          `json:"type"`
	Content     json.RawMessage `json:"content"`
	Mentions    []string        `json:"mentions"`
}

type seqData struct {
	ConversationID string `json:"conversation_id"`
	Seq            *int64 `json:"seq"`
}

type typingData struct {
	ConversationID string `json:"conversation_id"`
}

type syncData struct {
	Cursors map[string]int64 `json:"cursors"`
	Limit   *int             `json:"limit"`
}

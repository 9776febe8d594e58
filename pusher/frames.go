package pusher

import (
	"encoding/json"

	"github.com/beehive-im/beehive/message"
)

// Server frames of PROTOCOL.md the pusher sends. They mirror the gateway's
// frame types (gateway/frame.go); the pusher builds them itself so it does
// not depend on the edge.

type frame struct {
	Op   string `json:"op"`
	Data any    `json:"data"`
}

func encodeFrame(op string, data any) ([]byte, error) {
	return json.Marshal(frame{Op: op, Data: data})
}

type messageData struct {
	Message *message.Message `json:"message"`
}

type recalledData struct {
	ConversationID string `json:"conversation_id"`
	MessageID      string `json:"message_id"`
	Seq            int64  `json:"seq"`
}

type receiptData struct {
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
	ReadSeq        int64  `json:"read_seq"`
}

type typingData struct {
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
}

type presenceData struct {
	UserID string `json:"user_id"`
	Online bool   `json:"online"`
}

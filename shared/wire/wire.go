// Package wire is the client (WebSocket) protocol of PROTOCOL.md, defined
// once: the frame envelope, every client and server op name, the close
// codes, the frame encoder, the payloads of the frames, and the delivery
// request that hands finished server frames to a gateway instance. The
// gateway (which reads client frames and writes server frames), the pusher
// (which builds the server frames it fans out) and the load tool (a
// client) import it; none of them defines a frame of its own.
//
// It is a leaf: it imports only the standard library, so any package,
// however low, may use it. The one payload that carries a domain type,
// the `{"message": {...}}` of `sent` and `message`, is generic
// (MessageData[M]): wire fixes the envelope and the field name, and the
// message's shape stays where it is defined, in package message (the
// gateway and the pusher use MessageData[message.Message] or
// MessageData[*message.Message]; the load tool decodes only the fields it
// reads). Error codes are plain strings here; package errs holds their
// table.
//
// Adding an op touches this package (the name and its payload), the
// gateway's gateway/ops.go (the handler of a client op) and the domain
// that owns the op.
package wire

import "encoding/json"

// Client ops (client -> server).
const (
	OpSend   = "send"
	OpAck    = "ack"
	OpRead   = "read"
	OpTyping = "typing"
	OpSync   = "sync"
	OpPing   = "ping"
)

// Server ops (server -> client). OpTyping is also a server op: the
// server's typing frame names the user who types (TypingData).
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

// Close codes a client sees. Every close carries a reason text.
const (
	// CloseNormal answers a client's own close without a code (RFC 6455).
	CloseNormal = 1000
	// CloseGoingAway: the server is shutting down; reconnect elsewhere.
	CloseGoingAway = 1001
	// CloseProtocolError: the client broke RFC 6455 framing.
	CloseProtocolError = 1002
	// CloseSessionRevoked: the socket's session was revoked.
	CloseSessionRevoked = 4001
	// ClosePolicy: a rate or policy violation.
	ClosePolicy = 4008
	// CloseTooSlow: the socket's send queue is full.
	CloseTooSlow = 4009
	// CloseInvalidFrameStream: binary or oversized frames, or too many
	// invalid frames in a row.
	CloseInvalidFrameStream = 4400
)

// Frame is one WebSocket text frame as read: {"op", "id"?, "data"?}. ID is
// the client's frame id, echoed verbatim (a JSON string or number); Data is
// decoded further by op.
type Frame struct {
	Op   string          `json:"op"`
	ID   json.RawMessage `json:"id,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Encode builds a frame: op, the frame id id (nil for none) and data (nil
// for none), in that order, absent parts left out.
func Encode(op string, id json.RawMessage, data any) ([]byte, error) {
	f := struct {
		Op   string          `json:"op"`
		ID   json.RawMessage `json:"id,omitempty"`
		Data any             `json:"data,omitempty"`
	}{op, id, data}
	return json.Marshal(f)
}

// EncodeFrame builds a server frame without a frame id: what the server
// pushes (message, recalled, receipt, typing, presence). A DeliverRequest
// carries frames built so.
func EncodeFrame(op string, data any) ([]byte, error) {
	return Encode(op, nil, data)
}

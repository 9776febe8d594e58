package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/go-kit/log/level"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/logging"
	"github.com/beehive-im/beehive/shared/wire"
)

// maxFrameID bounds the client's frame id (a JSON string or number, its
// encoding counted). The gateway checks the other send and sync fields
// against the limits of the domains that enforce them (message, query), so
// a frame is refused at the edge with the answer the domain would give.
const maxFrameID = 128

// SendFrameBound is the largest `send` frame a client may need for a
// message within lim (every field of lim set): the frame limit must exceed
// it, or the edge would refuse messages the message service accepts.
//
// The bound is sound for any JSON encoder that writes no insignificant
// whitespace (whitespace is unbounded; compact clients write none):
//   - a JSON string may take up to 6 bytes per byte of the value it
//     decodes to (\u00XX for a control character, or any ASCII byte a
//     zealous encoder escapes, like Go's \u003c for '<'); a 2-byte UTF-8
//     rune escaped is 6 bytes (3x), a 4-byte one a surrogate pair of 12
//     (3x). So a string field of n bytes takes at most 2+6n.
//   - text content is limited in decoded bytes (message.validateText), so
//     it takes at most 2+6*TextLimit in the frame.
//   - object content is limited in bytes as sent (message.validateObject
//     measures the raw JSON, escapes included), so it takes ObjectLimit.
//   - the envelope: the keys, the frame id (maxFrameID plus quotes), the
//     recipient id (ids.MaxLen), client_msg_id (message.MaxClientMsgID),
//     the type (at most 6 bytes: "custom") and MaxMentions mention ids,
//     every string escaped at worst.
func SendFrameBound(lim message.Limits) int64 {
	str := func(n int) int64 { return 2 + 6*int64(n) }
	content := max(str(lim.TextLimit), int64(lim.ObjectLimit))
	keys := int64(len(`{"op":"send","id":,"data":{"to_user_id":,"client_msg_id":,"type":,"content":,"mentions":[]}}`))
	envelope := keys + (maxFrameID + 2) + str(ids.MaxLen) + str(message.MaxClientMsgID) + str(len(message.TypeCustom)) +
		int64(lim.MaxMentions)*(str(ids.MaxLen)+1)
	return content + envelope
}

// handle processes one client frame on the reader goroutine. Frames of a
// socket are handled one after the other, so pipelined sends reach the
// message service in arrival order and get increasing seq.
func (c *conn) handle(raw []byte) {
	var f wire.Frame
	if err := json.Unmarshal(raw, &f); err != nil {
		c.invalidFrame(nil, errs.New(errs.InvalidArgument, "malformed frame: want one JSON object {op, id?, data?}"))
		return
	}
	if len(f.ID) > 0 && !validFrameID(f.ID) {
		c.invalidFrame(nil, errs.Invalid("id", "must be a JSON string or number of at most 128 bytes"))
		return
	}
	var err error
	switch f.Op {
	case wire.OpPing:
		c.reply(wire.OpPong, f.ID, nil)
	case wire.OpSend:
		err = c.opSend(f)
	case wire.OpAck:
		err = c.opAck(f)
	case wire.OpRead:
		err = c.opRead(f)
	case wire.OpTyping:
		err = c.opTyping(f)
	case wire.OpSync:
		err = c.opSync(f)
	case "":
		c.invalidFrame(f.ID, errs.Missing("op"))
		return
	default:
		c.invalidFrame(f.ID, errs.Invalid("op", fmt.Sprintf("unknown op %q", truncate(f.Op, 32))))
		return
	}
	var bad *badData
	if errors.As(err, &bad) {
		c.invalidFrame(f.ID, bad.err)
		return
	}
	c.invalid = 0
	if err != nil {
		if errs.IsInfrastructure(err) {
			_ = level.Warn(c.g.logger).Log("msg", "frame failed", "op", f.Op, "userId", c.p.UserID, "err", err)
		}
		c.reply(wire.OpError, f.ID, errorData(err))
	}
}

// badData marks a frame whose data does not decode: it counts towards the
// invalid-frame limit like malformed JSON.
type badData struct{ err error }

func (b *badData) Error() string { return b.err.Error() }

// invalidFrame answers an error frame and closes the socket (4400) after
// MaxInvalidFrames in a row: a client sending only garbage is broken.
func (c *conn) invalidFrame(id json.RawMessage, err error) {
	c.invalid++
	if c.invalid >= c.g.opts.MaxInvalidFrames {
		c.closeWith(wire.CloseInvalidFrameStream, "too many invalid frames")
		return
	}
	c.reply(wire.OpError, id, errorData(err))
}

func (c *conn) reply(op string, id json.RawMessage, data any) {
	b, err := wire.Encode(op, id, data)
	if err != nil {
		_ = level.Error(c.g.logger).Log("msg", "encode frame", "op", op, "err", err)
		return
	}
	c.enqueue(textItem(b))
}

// errorData is err as the data of an `error` frame: its public part.
func errorData(err error) wire.ErrorData {
	p := errs.Public(err)
	return wire.ErrorData{Code: string(p.Code), Message: p.Message, Field: p.Field, RetryAfterMS: errs.RetryAfter(p).Milliseconds()}
}

func validFrameID(id json.RawMessage) bool {
	if len(id) > maxFrameID+2 {
		return false
	}
	var v any
	if json.Unmarshal(id, &v) != nil {
		return false
	}
	switch v.(type) {
	case string, float64:
		return true
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// opCtx carries the socket's principal (so domain endpoints accept the
// call without a token) and a request id, bounded by OpTimeout.
func (c *conn) opCtx() (context.Context, context.CancelFunc) {
	ctx := logging.WithRequestID(context.Background(), logging.NewRequestID())
	ctx = identity.WithPrincipal(ctx, c.p)
	return context.WithTimeout(ctx, c.g.opts.OpTimeout)
}

// decodeData decodes a frame's data object into v.
func decodeData(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return &badData{errs.Missing("data")}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return &badData{errs.Invalid(te.Field, "must be a JSON "+te.Type.String())}
		}
		return &badData{errs.Invalid("data", "must be a JSON object")}
	}
	return nil
}

func absent(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// member checks a conversation id and, for a 1:1 conversation, that the
// caller is one of its two users; group membership is the peers' check.
func (c *conn) member(conversationID string) error {
	if conversationID == "" {
		return errs.Missing("conversation_id")
	}
	kind, _, _, ok := ids.ParseConversation(conversationID)
	if !ok {
		return errs.Invalid("conversation_id", "is not a conversation id")
	}
	if kind == "p" {
		if _, ok := ids.Peer(conversationID, c.p.UserID); !ok {
			return errs.New(errs.PermissionDenied, "not a member of this conversation")
		}
	}
	return nil
}

func (c *conn) opSend(f wire.Frame) error {
	var d wire.SendData
	if err := decodeData(f.Data, &d); err != nil {
		return err
	}
	switch {
	case (d.ToUserID == "") == (d.GroupID == ""):
		return errs.Invalid("to_user_id", "exactly one of to_user_id and group_id is required")
	case d.ToUserID != "" && !ids.Valid(d.ToUserID):
		return errs.Invalid("to_user_id", "is not a valid id")
	case d.GroupID != "" && !ids.Valid(d.GroupID):
		return errs.Invalid("group_id", "is not a valid id")
	case d.ClientMsgID == "":
		return errs.Missing("client_msg_id")
	case len(d.ClientMsgID) > message.MaxClientMsgID:
		return errs.Invalid("client_msg_id", fmt.Sprintf("at most %d bytes", message.MaxClientMsgID))
	case d.Type == "":
		return errs.Missing("type")
	case absent(d.Content):
		return errs.Missing("content")
	}
	ctx, cancel := c.opCtx()
	defer cancel()
	if ok, err := c.g.opts.SendLimiter.Allow(ctx, c.p.UserID); err != nil {
		return errs.Wrap(errs.Unavailable, err, "rate limiter unavailable")
	} else if !ok {
		return errs.New(errs.RateLimited, "sending too fast: retry later with the same client_msg_id")
	}
	req := message.SendRequest{
		SenderID: c.p.UserID, ToUserID: d.ToUserID, GroupID: d.GroupID, ClientMsgID: d.ClientMsgID,
		Type: d.Type, Content: d.Content, Mentions: d.Mentions, OriginConn: c.origin(),
	}
	send := c.g.deps.Sender.SendMessage
	if d.GroupID != "" {
		send = c.g.deps.Sender.SendGroupMessage
	}
	m, err := send(ctx, req)
	if err != nil {
		return err
	}
	if m.ConversationID != "" && m.Seq > 0 {
		c.noteSent(m.ConversationID, m.Seq)
	}
	c.reply(wire.OpSent, f.ID, wire.MessageData[message.Message]{Message: m})
	return nil
}

func (c *conn) seqFrame(f wire.Frame) (string, int64, error) {
	var d wire.SeqData
	if err := decodeData(f.Data, &d); err != nil {
		return "", 0, err
	}
	if err := c.member(d.ConversationID); err != nil {
		return "", 0, err
	}
	if d.Seq == nil {
		return "", 0, errs.Missing("seq")
	}
	if *d.Seq < 0 {
		return "", 0, errs.Invalid("seq", "must not be negative")
	}
	return d.ConversationID, *d.Seq, nil
}

func (c *conn) opAck(f wire.Frame) error {
	conv, seq, err := c.seqFrame(f)
	if err != nil {
		return err
	}
	ctx, cancel := c.opCtx()
	defer cancel()
	return c.g.deps.Reader.Ack(ctx, c.p.UserID, c.p.DeviceID, conv, seq)
}

func (c *conn) opRead(f wire.Frame) error {
	conv, seq, err := c.seqFrame(f)
	if err != nil {
		return err
	}
	ctx, cancel := c.opCtx()
	defer cancel()
	return c.g.deps.Reads.MarkAsRead(ctx, c.p.UserID, conv, seq)
}

func (c *conn) opTyping(f wire.Frame) error {
	var d wire.TypingRequestData
	if err := decodeData(f.Data, &d); err != nil {
		return err
	}
	if err := c.member(d.ConversationID); err != nil {
		return err
	}
	ctx, cancel := c.opCtx()
	defer cancel()
	return c.g.deps.Typing.Typing(ctx, c.p.UserID, d.ConversationID)
}

func (c *conn) opSync(f wire.Frame) error {
	var d wire.SyncData
	if !absent(f.Data) { // a fresh install may send no data at all
		if err := decodeData(f.Data, &d); err != nil {
			return err
		}
	}
	if len(d.Cursors) > query.MaxSyncCursors {
		return errs.Invalid("cursors", "too many conversations")
	}
	for conv, seq := range d.Cursors {
		if err := c.member(conv); err != nil {
			if errs.HasCode(err, errs.InvalidArgument) {
				return errs.Invalid("cursors", fmt.Sprintf("%q is not a conversation id", truncate(conv, 140)))
			}
			return err
		}
		if seq < 0 {
			return errs.Invalid("cursors", "seq must not be negative")
		}
	}
	limit := query.DefaultSyncLimit
	if d.Limit != nil {
		if *d.Limit < 1 || *d.Limit > query.MaxSyncLimit {
			return errs.Invalid("limit", fmt.Sprintf("must be between 1 and %d", query.MaxSyncLimit))
		}
		limit = *d.Limit
	}
	if d.Cursors == nil {
		d.Cursors = map[string]int64{}
	}
	// Live pushes wait while the read side answers; syncEnds queues the
	// answer without what this socket has, then the pushes it did not
	// cover (reconcile.go).
	c.syncBegins(d.Cursors)
	answer, synced, hasMore, err := c.syncAnswer(f.ID, d.Cursors, limit)
	c.syncEnds(answer, synced, hasMore)
	return err
}

// syncAnswer asks the read side and encodes its answer: message frames,
// ascending seq per conversation, and the synced frame.
func (c *conn) syncAnswer(id json.RawMessage, cursors map[string]int64, limit int) ([]liveFrame, []byte, bool, error) {
	ctx, cancel := c.opCtx()
	defer cancel()
	res, err := c.g.deps.Reader.Sync(ctx, c.p.UserID, cursors, limit)
	if err != nil {
		return nil, nil, false, err
	}
	var msgs []message.Message
	for _, c := range res.Conversations {
		msgs = append(msgs, c.Messages...)
	}
	sort.SliceStable(msgs, func(i, j int) bool {
		if msgs[i].ConversationID != msgs[j].ConversationID {
			return msgs[i].ConversationID < msgs[j].ConversationID
		}
		return msgs[i].Seq < msgs[j].Seq
	})
	answer := make([]liveFrame, 0, len(msgs))
	for _, m := range msgs {
		b, err := wire.Encode(wire.OpMessage, nil, wire.MessageData[message.Message]{Message: m})
		if err != nil {
			return nil, nil, false, errs.Wrap(errs.Internal, err, "encode message")
		}
		answer = append(answer, liveFrame{b: b, conv: m.ConversationID, seq: m.Seq})
	}
	synced, err := wire.Encode(wire.OpSynced, id, wire.SyncedData{HasMore: res.HasMore})
	if err != nil {
		return nil, nil, false, errs.Wrap(errs.Internal, err, "encode synced")
	}
	return answer, synced, res.HasMore, nil
}

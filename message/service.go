// Package message is the write side of chat: sending 1:1 and group
// messages (permission checks, content validation and filtering, mentions,
// idempotency on the client's message id, per-conversation seq), recalls
// and read marks. Every accepted write is produced to Kafka topic
// beehive.messages before the caller hears about it; the query package
// serves the read side from what the consumers of that topic persist.
package message

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
)

// Service is the message domain.
type Service interface {
	// SendMessage sends a 1:1 message to req.ToUserID. It returns once
	// the message is in Kafka; a retry with the same ClientMsgID returns
	// the original message and creates nothing.
	SendMessage(ctx context.Context, req SendRequest) (Message, error)
	// SendGroupMessage sends to req.GroupID, the same way.
	SendGroupMessage(ctx context.Context, req SendRequest) (Message, error)
	// Recall withdraws messageID: its sender within the recall window,
	// a group's owner and admins any time. It returns the recall entry.
	Recall(ctx context.Context, userID, messageID string) (Message, error)
	// MarkAsRead records that userID read conversationID up to seq.
	MarkAsRead(ctx context.Context, userID, conversationID string, seq int64) error
	// LastSeq is the last seq handed out in conversationID (0 if none);
	// no later message will ever get a seq at or below it.
	LastSeq(ctx context.Context, conversationID string) (int64, error)
	// Typing tells the other participants that userID is typing in
	// conversationID, if userID may message them: a participant, not
	// blocked (1:1), a member (group). Nothing is stored; the notice goes
	// through beehive.typing to the pusher, which delivers it live.
	Typing(ctx context.Context, userID, conversationID string) error
}

// SendRequest is a message a user sends: ToUserID for 1:1, GroupID for a
// group.
type SendRequest struct {
	SenderID    string          `json:"sender_id,omitempty"`
	ToUserID    string          `json:"to_user_id,omitempty"`
	GroupID     string          `json:"group_id,omitempty"`
	ClientMsgID string          `json:"client_msg_id"`
	Type        string          `json:"type"`
	Content     json.RawMessage `json:"content"`
	Mentions    []string        `json:"mentions,omitempty"`
	// OriginConn is "<gateway_id>/<conn_id>" of the sending socket.
	OriginConn string `json:"origin_conn,omitempty"`
}

// Peers' interfaces. The lead adapts the user and group services to them.

// Relations answers "may from message to?" (blocks, friends policy).
type Relations interface {
	CanMessage(ctx context.Context, from, to string) (bool, error)
}

// Groups answers the group questions of the send path.
type Groups interface {
	// CanPost returns nil when userID may post in groupID (member, not
	// muted), else a permission_denied or not_found error.
	CanPost(ctx context.Context, userID, groupID string) error
	// Role returns userID's role in groupID ("owner", "admin", "member"),
	// or a not_found/permission_denied error when userID is no member.
	Role(ctx context.Context, groupID, userID string) (string, error)
	// IsMember reports whether userID belongs to groupID (muted or not).
	IsMember(ctx context.Context, groupID, userID string) (bool, error)
}

// Reader is what this package needs from the read side (the query
// package): a persisted message by id, for recalls. It returns a not_found
// *errs.Error for an unknown id.
type Reader interface {
	GetMessage(ctx context.Context, messageID string) (Message, error)
}

// Group roles this package cares about.
const (
	RoleOwner = "owner"
	RoleAdmin = "admin"
)

// MentionAll is the mention that notifies every member of a group.
const MentionAll = "all"

// Defaults of Options.
const (
	DefaultTextLimit    = 16 << 10
	DefaultObjectLimit  = 64 << 10
	DefaultRecallWindow = 2 * time.Minute
	DefaultMaxMentions  = 100
	MaxClientMsgID      = 64
)

// Domain errors.
var (
	ErrForbiddenWord    = errs.New(errs.InvalidArgument, "content contains a forbidden word")
	ErrNotFriends       = errs.New(errs.PermissionDenied, "you may not message this user")
	ErrSendPending      = errs.New(errs.Conflict, "a send with this client_msg_id is still in progress; retry")
	ErrAlreadyRecalled  = errs.New(errs.Conflict, "message already recalled")
	ErrRecallWindow     = errs.New(errs.PermissionDenied, "the recall window has passed")
	ErrRecallNotAllowed = errs.New(errs.PermissionDenied, "only the sender or a group owner or admin may recall this message")
	ErrNotParticipant   = errs.New(errs.PermissionDenied, "you are not part of this conversation")
	ErrMentionAll       = errs.New(errs.PermissionDenied, "only the group owner and admins may mention all")
	ErrNotRecallable    = errs.New(errs.InvalidArgument, "a recall cannot be recalled")
)

// Limits are the content limits validation applies.
type Limits struct {
	TextLimit   int
	ObjectLimit int
	MaxMentions int
}

func (l Limits) withDefaults() Limits {
	if l.TextLimit <= 0 {
		l.TextLimit = DefaultTextLimit
	}
	if l.ObjectLimit <= 0 {
		l.ObjectLimit = DefaultObjectLimit
	}
	if l.MaxMentions <= 0 {
		l.MaxMentions = DefaultMaxMentions
	}
	return l
}

// ValidateSend checks a send request's fields (not permissions) and
// returns the normalised request: content compacted, text content as a
// canonical JSON string, mentions deduplicated. group says which kind of
// send it is. The decoded text is returned for filtering.
func ValidateSend(req SendRequest, group bool, lim Limits) (SendRequest, string, error) {
	lim = lim.withDefaults()
	if !ids.Valid(req.SenderID) {
		return req, "", errs.Invalid("sender_id", "is not a valid user id")
	}
	if group {
		if req.GroupID == "" {
			return req, "", errs.Missing("group_id")
		}
		if !ids.Valid(req.GroupID) {
			return req, "", errs.Invalid("group_id", "is not a valid group id")
		}
		if req.ToUserID != "" {
			return req, "", errs.Invalid("to_user_id", "give either to_user_id or group_id, not both")
		}
	} else {
		if req.ToUserID == "" {
			return req, "", errs.Missing("to_user_id")
		}
		if !ids.Valid(req.ToUserID) {
			return req, "", errs.Invalid("to_user_id", "is not a valid user id")
		}
		if req.ToUserID == req.SenderID {
			return req, "", errs.Invalid("to_user_id", "cannot message yourself")
		}
		if req.GroupID != "" {
			return req, "", errs.Invalid("group_id", "give either to_user_id or group_id, not both")
		}
	}
	if req.ClientMsgID == "" {
		return req, "", errs.Missing("client_msg_id")
	}
	if len(req.ClientMsgID) > MaxClientMsgID || !utf8.ValidString(req.ClientMsgID) {
		return req, "", errs.Invalid("client_msg_id", "must be 1 to 64 bytes of UTF-8")
	}
	if len(req.OriginConn) > 256 {
		return req, "", errs.Invalid("origin_conn", "is too long")
	}
	var text string
	switch req.Type {
	case "":
		return req, "", errs.Missing("type")
	case TypeText:
		s, err := validateText(req.Content, lim.TextLimit)
		if err != nil {
			return req, "", err
		}
		text = s
		req.Content = encodeString(s)
	case TypeImage, TypeFile, TypeCustom:
		c, err := validateObject(req.Content, lim.ObjectLimit)
		if err != nil {
			return req, "", err
		}
		req.Content = c
	default:
		return req, "", errs.Invalid("type", "must be one of text, image, file, custom")
	}
	mentions, err := validateMentions(req.Mentions, group, lim.MaxMentions)
	if err != nil {
		return req, "", err
	}
	req.Mentions = mentions
	return req, text, nil
}

func validateText(raw json.RawMessage, limit int) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", errs.Missing("content")
	}
	if raw[0] != '"' {
		return "", errs.Invalid("content", "must be a JSON string for type text")
	}
	// json.Unmarshal would quietly turn invalid UTF-8 into U+FFFD.
	if !utf8.Valid(raw) {
		return "", errs.Invalid("content", "must be valid UTF-8")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errs.Invalid("content", "must be a JSON string for type text")
	}
	if strings.TrimSpace(s) == "" {
		return "", errs.Invalid("content", "must not be empty")
	}
	if len(s) > limit {
		return "", &errs.Error{Code: errs.TooLarge, Field: "content", Message: "content: text exceeds " + strconv.Itoa(limit) + " bytes"}
	}
	return s, nil
}

func validateObject(raw json.RawMessage, limit int) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, errs.Missing("content")
	}
	if len(raw) > limit {
		return nil, &errs.Error{Code: errs.TooLarge, Field: "content", Message: "content: exceeds " + strconv.Itoa(limit) + " bytes"}
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return nil, errs.Invalid("content", "must be a JSON object for this type")
	}
	if !utf8.Valid(raw) {
		return nil, errs.Invalid("content", "must be valid UTF-8")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, errs.Invalid("content", "must be a JSON object for this type")
	}
	return buf.Bytes(), nil
}

func validateMentions(in []string, group bool, max int) ([]string, error) {
	if len(in) > max {
		return nil, errs.Invalid("mentions", "at most "+strconv.Itoa(max)+" mentions")
	}
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, m := range in {
		if m == MentionAll {
			if !group {
				return nil, errs.Invalid("mentions", `"all" is only for group messages`)
			}
		} else if !ids.Valid(m) {
			return nil, errs.Invalid("mentions", "contains an invalid user id")
		}
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out, nil
}

// encodeString encodes s as a JSON string without HTML escaping.
func encodeString(s string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// ValidateConversationID checks a conversation id from a client.
func ValidateConversationID(id string) (kind, a, b string, err error) {
	if id == "" {
		return "", "", "", errs.Missing("conversation_id")
	}
	kind, a, b, ok := ids.ParseConversation(id)
	if !ok {
		return "", "", "", errs.Invalid("conversation_id", "is not a conversation id")
	}
	return kind, a, b, nil
}

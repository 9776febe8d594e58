package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/logging"
	"github.com/beehive-im/beehive/user"
)

// Modes of Config.Mode.
const (
	ModeEmbedded    = "embedded"
	ModeStatic      = "static"
	ModeDistributed = "distributed"
)

// ModeFor is the mode a command runs in when the config names none:
// beehive serve finds its peers at static addresses, every other command
// (dev, migrate, replay) works on the embedded store.
func ModeFor(command string) string {
	if command == "serve" {
		return ModeStatic
	}
	return ModeEmbedded
}

// grpcSendOverhead bounds what a send costs in protobuf beyond the client's
// JSON body or frame it came from: every field a client sends is no longer
// in protobuf (a tag and a length varint) than in JSON (a quoted key and a
// quoted value), so the extra is what the edge adds: the sender id, the
// origin connection (message.ValidateSend allows 256 bytes) and their tags.
// 4 KiB leaves room to spare.
const grpcSendOverhead = 4 << 10

// Validate refuses a configuration a process must not start with: an enum
// value it does not know (rather than falling back to a default), a limit
// that is not positive, and limits that contradict each other, so that a
// message within the content limits always fits the frame, the request
// body and the gRPC message that carry it. Every problem names its key.
func (c Config) Validate() error {
	var problems []error
	bad := func(key, format string, args ...any) {
		problems = append(problems, fmt.Errorf("%s (%s): %s", key, envName(key), fmt.Sprintf(format, args...)))
	}
	// Empty takes the default: the mode of the command (ModeFor), or the
	// value the comment of the field names.
	oneOf := func(key, value string, allowed ...string) {
		if value == "" {
			return
		}
		for _, a := range allowed {
			if value == a {
				return
			}
		}
		bad(key, "%q is not one of %s", value, strings.Join(allowed, ", "))
	}

	oneOf("mode", c.Mode, ModeEmbedded, ModeStatic, ModeDistributed)
	oneOf("log.level", strings.ToLower(c.Log.Level), logging.LevelDebug, logging.LevelInfo, logging.LevelWarn, logging.LevelError)
	oneOf("log.format", c.Log.Format, logging.FormatJSON, logging.FormatLogfmt)
	oneOf("user.message_policy", c.User.MessagePolicy, user.PolicyAnyone, user.PolicyFriends)
	oneOf("message.sensitive_mode", c.Message.SensitiveMode, string(message.FilterMask), string(message.FilterReject))

	positive := []struct {
		key string
		n   float64
	}{
		{"http.body_limit", float64(c.HTTP.BodyLimit)},
		{"grpc.max_message_size", float64(c.GRPC.MaxMessageSize)},
		{"group.max_members", float64(c.Group.MaxMembers)},
		{"message.text_limit", float64(c.Message.TextLimit)},
		{"message.content_limit", float64(c.Message.ContentLimit)},
		{"message.max_mentions", float64(c.Message.MaxMentions)},
		{"message.send_per_user_per_second", c.Message.SendPerUserPerSecond},
		{"message.send_burst", float64(c.Message.SendBurst)},
		{"gateway.frame_limit", float64(c.Gateway.FrameLimit)},
		{"gateway.frames_per_second", c.Gateway.FramesPerSecond},
		{"gateway.frame_burst", float64(c.Gateway.FrameBurst)},
		{"query.page_size", float64(c.Query.PageSize)},
		{"query.max_page_size", float64(c.Query.MaxPageSize)},
	}
	nonPositive := false
	for _, p := range positive {
		if p.n <= 0 {
			bad(p.key, "must be positive, got %v", p.n)
			nonPositive = true
		}
	}
	if c.Query.PageSize > c.Query.MaxPageSize && c.Query.MaxPageSize > 0 {
		bad("query.page_size", "%d exceeds query.max_page_size %d", c.Query.PageSize, c.Query.MaxPageSize)
	}
	if nonPositive {
		return errors.Join(problems...) // the bounds below mean nothing
	}

	send := c.SendFrameBound()
	if c.Gateway.FrameLimit < send {
		bad("gateway.frame_limit", "%d bytes cannot carry every message within the content limits: a send frame may need %d "+
			"(message.text_limit %d, message.content_limit %d, message.max_mentions %d)",
			c.Gateway.FrameLimit, send, c.Message.TextLimit, c.Message.ContentLimit, c.Message.MaxMentions)
	}
	// POST /v1/messages carries the same fields as the send frame, less op
	// and id, so the frame's bound holds for the body too.
	if c.HTTP.BodyLimit < send {
		bad("http.body_limit", "%d bytes cannot carry every message within the content limits: a send may need %d",
			c.HTTP.BodyLimit, send)
	}
	// The gateway forwards a send's content unmeasured (the message service
	// measures it), so a gRPC message must hold the largest frame or body
	// the edge accepts: smaller, an oversized send would fail in transport
	// as an internal error instead of too_large.
	edge := max(c.Gateway.FrameLimit, c.HTTP.BodyLimit)
	if need := edge + grpcSendOverhead; int64(c.GRPC.MaxMessageSize) < need {
		bad("grpc.max_message_size", "%d bytes cannot carry the largest send the edge accepts (gateway.frame_limit %d, http.body_limit %d): want at least %d",
			c.GRPC.MaxMessageSize, c.Gateway.FrameLimit, c.HTTP.BodyLimit, need)
	}
	return errors.Join(problems...)
}

// SendFrameBound is the largest send frame the message limits of c allow
// (gateway.SendFrameBound).
func (c Config) SendFrameBound() int64 {
	return gateway.SendFrameBound(message.Limits{
		TextLimit: c.Message.TextLimit, ObjectLimit: c.Message.ContentLimit, MaxMentions: c.Message.MaxMentions,
	})
}

// envName is the environment variable of a YAML path.
func envName(key string) string {
	return "BEEHIVE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Package ids makes ids: ULIDs (unique, time-sortable) for users, groups and
// messages, and the conversation ids of PROTOCOL.md.
package ids

import (
	"crypto/rand"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/beehive-im/beehive/shared/errs"
)

var (
	mu      sync.Mutex
	entropy = ulid.Monotonic(rand.Reader, 0)
)

// New returns a new lowercase ULID: unique and sortable by creation time.
func New() string { return NewAt(time.Now()) }

// NewAt returns a ULID for t (monotonic within a millisecond).
func NewAt(t time.Time) string {
	mu.Lock()
	defer mu.Unlock()
	return strings.ToLower(ulid.MustNew(ulid.Timestamp(t), entropy).String())
}

// MaxLen bounds the ids Valid accepts.
const MaxLen = 64

// Valid reports whether s looks like an id Beehive made (1-64 safe bytes).
// Ids are opaque to clients; this only rejects garbage at the edge.
func Valid(s string) bool {
	if len(s) == 0 || len(s) > MaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Validate checks an id a request names in field: present and Valid.
func Validate(field, id string) error {
	if id == "" {
		return errs.Missing(field)
	}
	if !Valid(id) {
		return errs.Invalid(field, "is not a valid id")
	}
	return nil
}

// MaxDeviceIDLen bounds a client-chosen device id (PROTOCOL.md: any string
// up to 64 bytes).
const MaxDeviceIDLen = 64

// ValidateDeviceID checks a client-chosen device id: 1 to MaxDeviceIDLen
// bytes of UTF-8 without control characters (they would end up in logs and
// push payloads). Where a device id may be absent (login, the WebSocket
// upgrade: the server assigns one), the caller skips "" itself.
func ValidateDeviceID(id string) error {
	switch {
	case id == "":
		return errs.Missing("device_id")
	case len(id) > MaxDeviceIDLen:
		return errs.Invalid("device_id", "at most 64 bytes")
	case !utf8.ValidString(id):
		return errs.Invalid("device_id", "must be UTF-8")
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return errs.Invalid("device_id", "must not contain control characters")
		}
	}
	return nil
}

// P2P is the conversation id of two users: p:<lo>:<hi> (byte-wise order).
func P2P(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return "p:" + a + ":" + b
}

// Group is the conversation id of a group.
func Group(groupID string) string { return "g:" + groupID }

// ParseConversation splits a conversation id. For "p:" it returns the two
// users; for "g:" the group id. ok is false for anything malformed.
func ParseConversation(id string) (kind string, a, b string, ok bool) {
	switch {
	case strings.HasPrefix(id, "p:"):
		parts := strings.Split(id[2:], ":")
		if len(parts) != 2 || !Valid(parts[0]) || !Valid(parts[1]) || parts[0] >= parts[1] {
			return "", "", "", false
		}
		return "p", parts[0], parts[1], true
	case strings.HasPrefix(id, "g:"):
		if !Valid(id[2:]) {
			return "", "", "", false
		}
		return "g", id[2:], "", true
	}
	return "", "", "", false
}

// Peer returns the other user of a p: conversation for me.
func Peer(conversationID, me string) (string, bool) {
	kind, a, b, ok := ParseConversation(conversationID)
	if !ok || kind != "p" {
		return "", false
	}
	switch me {
	case a:
		return b, true
	case b:
		return a, true
	}
	return "", false
}

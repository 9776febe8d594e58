// Package pusher orchestrates delivery: every event on beehive.messages is
// fanned out to the gateway instances holding the recipients' sockets
// (online), and for registered devices without a socket that have not acked
// the message, a task goes to beehive.push.offline, where the offline
// notifier hands it to the device's platform (webhook, FCM, APNs) exactly
// once per message and device. It also owns device registrations, typing
// notices and presence frames for friends.
package pusher

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/wire"
)

// Service is the pusher's request/response API. Methods that act for a
// user take that user's id explicitly; the endpoint layer fills it from the
// caller's token (identity.Actor).
type Service interface {
	// RegisterDevice creates or replaces where offline pushes for one of
	// userID's devices go.
	RegisterDevice(ctx context.Context, userID string, reg DeviceRegistration) (Device, error)
	// UnregisterDevice stops offline pushes to the device. Removing an
	// unknown device is no error.
	UnregisterDevice(ctx context.Context, userID, deviceID string) error
}

// Platforms a device registers for.
const (
	PlatformAPNs    = "apns"
	PlatformFCM     = "fcm"
	PlatformWebhook = "webhook"
)

// Limits of device registrations.
const (
	MaxPushTokenLen = 4096
	// MaxDevicesPerUser bounds registrations per user: every one costs a
	// store row and a push per message.
	MaxDevicesPerUser = 32
)

// DeviceRegistration is the body of PUT /v1/devices/{device_id}.
type DeviceRegistration struct {
	DeviceID  string `json:"device_id"`
	Platform  string `json:"platform"`
	PushToken string `json:"push_token"`
}

// Device is a stored registration.
type Device struct {
	DeviceID  string    `json:"device_id"`
	Platform  string    `json:"platform"`
	PushToken string    `json:"push_token"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Task is one offline push, the JSON record on beehive.push.offline keyed
// by user id.
type Task struct {
	UserID         string `json:"user_id"`
	DeviceID       string `json:"device_id"`
	Platform       string `json:"platform"`
	PushToken      string `json:"push_token"`
	MessageID      string `json:"message_id"`
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	SenderID       string `json:"sender_id"`
	Preview        string `json:"preview"`
	// Deferred marks a task whose checks the push consumer could not make
	// because a lookup for this recipient failed (its store or peer away):
	// the offline consumer makes them before notifying: the user's devices
	// when DeviceID is empty, the mute, each device's ack. A recipient whose
	// lookups fail thus gets a push late rather than blocking the
	// conversation's partition or being dropped.
	Deferred bool `json:"deferred,omitempty"`
	// Connected are the devices of a deferred task that had a socket when
	// it was made (they got the message live).
	Connected []string `json:"connected,omitempty"`
}

// IdempotencyKey names one push of one message to one device. The user id
// is part of it because device ids are chosen by clients and only unique
// per user: two members of a group may both call their phone "iphone".
func (t Task) IdempotencyKey() string {
	return t.MessageID + ":" + t.UserID + ":" + t.DeviceID
}

// Peers the pusher depends on. The lead adapts the real services.

// Members lists the members of a group.
type Members interface {
	ListMemberIDs(ctx context.Context, groupID string) ([]string, error)
}

// PresenceDevice is one connected socket of a user.
type PresenceDevice struct {
	DeviceID  string
	GatewayID string
	ConnID    string
}

// Presence returns the connected sockets of users (users with none may be
// absent from the map).
type Presence interface {
	Lookup(ctx context.Context, userIDs []string) (map[string][]PresenceDevice, error)
}

// Deliverer hands frames to the gateway instance gatewayID (in process, or
// over gRPC); the request is the gateway's own (wire.DeliverRequest).
type Deliverer interface {
	Deliver(ctx context.Context, gatewayID string, req wire.DeliverRequest) error
}

// Acks returns the seq up to which a device acked a conversation (0 when
// it never did).
type Acks interface {
	Acked(ctx context.Context, userID, deviceID, conversationID string) (int64, error)
}

// Settings tells whether a user muted a conversation (no offline push).
type Settings interface {
	Muted(ctx context.Context, userID, conversationID string) (bool, error)
}

// Friends lists a user's friends (presence fan-out).
type Friends interface {
	ListFriendIDs(ctx context.Context, userID string) ([]string, error)
}

// Domain errors.
var (
	ErrNotParticipant = errs.New(errs.PermissionDenied, "not a participant of this conversation")
	ErrTooManyDevices = errs.Newf(errs.Conflict, "at most %d devices may be registered per user", MaxDevicesPerUser)
)

// ValidateRegistration checks a registration as a client sent it.
func ValidateRegistration(reg DeviceRegistration) error {
	if err := ids.ValidateDeviceID(reg.DeviceID); err != nil {
		return err
	}
	switch reg.Platform {
	case PlatformAPNs, PlatformFCM, PlatformWebhook:
	case "":
		return errs.Missing("platform")
	default:
		return errs.Invalid("platform", "must be one of apns, fcm, webhook")
	}
	if reg.PushToken == "" {
		return errs.Missing("push_token")
	}
	if len(reg.PushToken) > MaxPushTokenLen {
		return errs.Invalid("push_token", "at most 4096 bytes")
	}
	if !utf8.ValidString(reg.PushToken) {
		return errs.Invalid("push_token", "must be UTF-8")
	}
	return nil
}

func validateUserID(id string) error {
	if id == "" {
		return errs.Missing("user_id")
	}
	if !ids.Valid(id) {
		return errs.Invalid("user_id", "malformed id")
	}
	return nil
}

// Package events carries domain events (user registered, logged in, session
// revoked, friend and group changes, presence) between services. Producers
// depend on Publisher; the embedded mode delivers through Bus in-process,
// the distributed mode through Kafka topic beehive.events (keyed by user).
package events

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// Event types.
const (
	UserRegistered = "user.registered"
	LoggedIn       = "auth.logged_in"
	// SessionRevoked: SessionID revoked, or every session of UserID when
	// SessionID is empty. Gateways close the matching sockets (4001).
	SessionRevoked  = "auth.session_revoked"
	FriendAdded     = "user.friend_added"
	FriendRemoved   = "user.friend_removed"
	UserBlocked     = "user.blocked"
	GroupMembership = "group.membership_changed"
	GroupDissolved  = "group.dissolved"
	PresenceChanged = "presence.changed"
)

// Event is one domain event. Data is type-specific JSON.
type Event struct {
	Type      string          `json:"type"`
	UserID    string          `json:"user_id,omitempty"`
	SessionID string          `json:"session_id,omitempty"`
	GroupID   string          `json:"group_id,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	At        time.Time       `json:"at"`
}

// Publisher publishes domain events. Publishing is best effort for
// notifications; state changes are already durable in their stores.
type Publisher interface {
	Publish(ctx context.Context, e Event) error
}

// Handler receives events.
type Handler func(ctx context.Context, e Event)

// Bus is an in-process Publisher with subscribers (embedded mode, and the
// local fan-out behind the Kafka consumer in distributed mode).
type Bus struct {
	mu   sync.RWMutex
	subs []Handler
}

var _ Publisher = (*Bus)(nil)

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{} }

// Subscribe adds h; it is called synchronously for every event, so it must
// not block.
func (b *Bus) Subscribe(h Handler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs = append(b.subs, h)
}

// Publish delivers e to every subscriber.
func (b *Bus) Publish(ctx context.Context, e Event) error {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	b.mu.RLock()
	subs := b.subs
	b.mu.RUnlock()
	for _, h := range subs {
		h(ctx, e)
	}
	return nil
}

// Nop drops every event.
type Nop struct{}

func (Nop) Publish(context.Context, Event) error { return nil }

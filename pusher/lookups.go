package pusher

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// lookups remembers, for one batch of the push consumer, what fanning out
// needs to look up: a conversation's recipients and who of them is online,
// a user's devices and mutes. A hot conversation's batch of records then
// costs one of each instead of one per record. A batch spans milliseconds,
// so the answers are as fresh as per record; a user connecting meanwhile
// catches up by sync, as between any two records. A nil *lookups looks
// everything up each time.
type lookups struct {
	users  map[string][]string
	online map[string]map[string][]PresenceDevice
	devs   map[string][]Device
	mutes  map[[2]string]bool
	// Failed per-recipient lookups, so a batch asks a store that is away
	// once per recipient, not once per record.
	devErrs  map[string]error
	muteErrs map[[2]string]error

	// The batch's deliveries and its offline tasks, in record order.
	out     outbox
	offline []kafka.Message
}

func newLookups() *lookups {
	return &lookups{
		users:  map[string][]string{},
		online: map[string]map[string][]PresenceDevice{},
		devs:   map[string][]Device{},
		mutes:  map[[2]string]bool{},

		devErrs:  map[string]error{},
		muteErrs: map[[2]string]error{},
	}
}

// audience is conversationID's recipients and their online devices.
func (l *lookups) audience(ctx context.Context, p *Pusher, conversationID string) ([]string, map[string][]PresenceDevice, error) {
	if l != nil {
		if users, ok := l.users[conversationID]; ok {
			return users, l.online[conversationID], nil
		}
	}
	users, err := p.recipients(ctx, conversationID)
	if err != nil {
		return nil, nil, err
	}
	online := map[string][]PresenceDevice{}
	if len(users) > 0 {
		if online, err = p.presence.Lookup(ctx, users); err != nil {
			return nil, nil, recordError(fmt.Errorf("pusher: presence lookup: %w", err))
		}
	}
	if l != nil {
		l.users[conversationID], l.online[conversationID] = users, online
	}
	return users, online, nil
}

// devices are userID's registered push targets.
func (l *lookups) devices(ctx context.Context, p *Pusher, userID string) ([]Device, error) {
	if l != nil {
		if d, ok := l.devs[userID]; ok {
			return d, nil
		}
		if err, ok := l.devErrs[userID]; ok {
			return nil, err
		}
	}
	d, err := p.store.ListDevices(ctx, userID)
	if err != nil {
		err = fmt.Errorf("pusher: devices of %s: %w", userID, err)
		if l != nil && ctx.Err() == nil {
			l.devErrs[userID] = err
		}
		return nil, err
	}
	if l != nil {
		l.devs[userID] = d
	}
	return d, nil
}

// muted reports whether userID muted conversationID.
func (l *lookups) muted(ctx context.Context, p *Pusher, userID, conversationID string) (bool, error) {
	key := [2]string{userID, conversationID}
	if l != nil {
		if m, ok := l.mutes[key]; ok {
			return m, nil
		}
		if err, ok := l.muteErrs[key]; ok {
			return false, err
		}
	}
	m, err := p.settings.Muted(ctx, userID, conversationID)
	if err != nil {
		err = fmt.Errorf("pusher: settings of %s: %w", userID, err)
		if l != nil && ctx.Err() == nil {
			l.muteErrs[key] = err
		}
		return false, err
	}
	if l != nil {
		l.mutes[key] = m
	}
	return m, nil
}

package pusher

import (
	"context"
	"encoding/json"

	"github.com/go-kit/log/level"

	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/wire"
)

// HandleEvent reacts to domain events (subscribe it to the events bus, or
// call it from the beehive.events consumer): membership changes and
// dissolutions drop the group's cached member list; presence changes send
// `presence` frames to the user's online friends. It matches
// events.Handler; its work is bounded by Options.EventTimeout.
func (p *Pusher) HandleEvent(ctx context.Context, e events.Event) {
	switch e.Type {
	case events.GroupMembership, events.GroupDissolved:
		if e.GroupID != "" {
			p.members.invalidate(e.GroupID)
		}
	case events.PresenceChanged:
		ctx, cancel := context.WithTimeout(ctx, p.opts.EventTimeout)
		defer cancel()
		if err := p.pushPresence(ctx, e); err != nil {
			_ = level.Warn(p.logger).Log("msg", "presence fan-out failed", "user", e.UserID, "err", err)
		}
	}
}

func (p *Pusher) pushPresence(ctx context.Context, e events.Event) error {
	if p.friends == nil {
		return nil
	}
	var data struct {
		UserID string `json:"user_id"`
		Online bool   `json:"online"`
	}
	if len(e.Data) > 0 {
		if err := json.Unmarshal(e.Data, &data); err != nil {
			return err
		}
	}
	user := firstNonEmpty(e.UserID, data.UserID)
	if user == "" {
		return nil
	}
	friends, err := p.friends.ListFriendIDs(ctx, user)
	if err != nil || len(friends) == 0 {
		return err
	}
	frame, err := wire.EncodeFrame(wire.OpPresence, wire.PresenceData{UserID: user, Online: data.Online})
	if err != nil {
		return err
	}
	return p.deliverOnline(ctx, friends, frame, "")
}

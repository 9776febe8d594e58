package pusher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/segmentio/kafka-go"
)

// HandleOffline is the offline consumer's handler (group "offline" on
// beehive.push.offline): it decodes a Task and notifies. An error means
// "retry this record".
func (p *Pusher) HandleOffline(ctx context.Context, m kafka.Message) error {
	var t Task
	if err := json.Unmarshal(m.Value, &t); err != nil {
		return p.poison("offline", m, fmt.Errorf("%w: %v", errMalformed, err))
	}
	if t.UserID == "" || (t.DeviceID == "" && !t.Deferred) || t.MessageID == "" {
		return p.poison("offline", m, fmt.Errorf("%w: task without user, device or message id", errMalformed))
	}
	return p.NotifyTask(ctx, t)
}

// notifyDeferred makes the checks the push consumer could not make for a
// deferred task (its mute, the user's devices, each device's ack), then
// notifies each remaining device as a task of its own. A failing lookup is
// returned, so the offline consumer retries the task while the dependency
// is away; devices already notified are not notified again (their pushed
// records).
func (p *Pusher) notifyDeferred(ctx context.Context, t Task) error {
	if p.settings != nil && t.ConversationID != "" {
		muted, err := p.settings.Muted(ctx, t.UserID, t.ConversationID)
		if err != nil {
			return recordError(fmt.Errorf("pusher: settings of %s: %w", t.UserID, err))
		}
		if muted {
			p.metrics.notifications.WithLabelValues(t.Platform, "muted").Inc()
			return nil
		}
	}
	devices := []Device{{DeviceID: t.DeviceID, Platform: t.Platform, PushToken: t.PushToken}}
	if t.DeviceID == "" {
		ds, err := p.store.ListDevices(ctx, t.UserID)
		if err != nil {
			return recordError(fmt.Errorf("pusher: devices of %s: %w", t.UserID, err))
		}
		devices = ds
	}
	connected := map[string]bool{}
	for _, d := range t.Connected {
		connected[d] = true
	}
	for _, d := range devices {
		if connected[d.DeviceID] {
			continue
		}
		if p.acks != nil && t.ConversationID != "" {
			acked, err := p.acks.Acked(ctx, t.UserID, d.DeviceID, t.ConversationID)
			if err != nil {
				return recordError(fmt.Errorf("pusher: acks of %s/%s: %w", t.UserID, d.DeviceID, err))
			}
			if acked >= t.Seq {
				continue
			}
		}
		dt := t
		dt.Deferred, dt.Connected = false, nil
		dt.DeviceID, dt.Platform, dt.PushToken = d.DeviceID, d.Platform, d.PushToken
		if err := p.NotifyTask(ctx, dt); err != nil {
			return err
		}
	}
	return nil
}

// NotifyTask sends one offline push unless it already succeeded: the
// pushed(message, user, device) record is written after the platform
// accepted the push, so reprocessing a task (a crash before the offset
// commit, a consumer retry) does not notify twice. The narrow window
// between the platform's acceptance and the record is covered by the
// Idempotency-Key / apns-id the notifiers send.
//
// The device's current registration is used: a device unregistered since
// the task was produced gets nothing, a rotated token gets the push.
func (p *Pusher) NotifyTask(ctx context.Context, t Task) error {
	if t.Deferred {
		return p.notifyDeferred(ctx, t)
	}
	done, err := p.store.Pushed(ctx, t.MessageID, t.UserID, t.DeviceID)
	if err != nil {
		return fmt.Errorf("pusher: pushed record: %w", err)
	}
	if done {
		p.metrics.notifications.WithLabelValues(t.Platform, "duplicate").Inc()
		return nil
	}
	dev, ok, err := p.store.GetDevice(ctx, t.UserID, t.DeviceID)
	if err != nil {
		return fmt.Errorf("pusher: device: %w", err)
	}
	if !ok {
		p.metrics.notifications.WithLabelValues(t.Platform, "unregistered").Inc()
		return nil
	}
	t.Platform, t.PushToken = dev.Platform, dev.PushToken
	l := log.With(p.logger, "user", t.UserID, "device", t.DeviceID, "platform", t.Platform, "messageId", t.MessageID)

	n, ok := p.notifiers[t.Platform]
	if !ok {
		p.metrics.notifications.WithLabelValues(t.Platform, "no_notifier").Inc()
		_ = level.Warn(l).Log("msg", "no notifier configured for platform; push dropped")
		return nil
	}
	err = n.Notify(ctx, t)
	switch {
	case err == nil:
		p.metrics.notifications.WithLabelValues(t.Platform, "ok").Inc()
		if err := p.store.MarkPushed(ctx, t.MessageID, t.UserID, t.DeviceID); err != nil {
			return fmt.Errorf("pusher: record push: %w", err)
		}
		return nil
	case errors.Is(err, ErrUnregistered):
		p.metrics.notifications.WithLabelValues(t.Platform, "token_gone").Inc()
		_ = level.Info(l).Log("msg", "push token no longer valid; dropping the registration", "err", err)
		// Drop it only if nobody registered a new token meanwhile.
		if cur, ok, gerr := p.store.GetDevice(ctx, t.UserID, t.DeviceID); gerr == nil && ok && cur.PushToken == dev.PushToken {
			if derr := p.store.DeleteDevice(ctx, t.UserID, t.DeviceID); derr != nil {
				return fmt.Errorf("pusher: drop device: %w", derr)
			}
		}
		return nil
	case IsPermanent(err):
		p.metrics.notifications.WithLabelValues(t.Platform, "rejected").Inc()
		_ = level.Warn(l).Log("msg", "push rejected; not retrying", "err", err)
		return nil
	default:
		p.metrics.notifications.WithLabelValues(t.Platform, "error").Inc()
		return fmt.Errorf("pusher: notify %s: %w", t.Platform, err)
	}
}

package pusher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/kafkax"
	"github.com/beehive-im/beehive/shared/wire"
)

// Consumer groups and topics of the pusher.
const (
	PushGroup    = "push"
	OfflineGroup = "offline"
	TypingGroup  = "typing"
)

// maxParallelGateways bounds concurrent Deliver calls of one fan-out, so a
// slow gateway instance delays only its own sockets.
const maxParallelGateways = 16

// errMalformed marks a record that can never be processed.
var errMalformed = errors.New("pusher: malformed record")

// HandleMessage is the push consumer's handler (group "push" on
// beehive.messages): it decodes the record with message.DecodeRecord and
// fans the event out. An error means "retry this record" (the consumer
// holds its position until it succeeds): failures of the lookups the whole
// record needs (group members, presence) and of producing offline tasks.
// Delivery failures to a gateway are not errors (the client recovers by
// sync), and neither is one recipient's failed device, mute or ack lookup:
// that recipient gets a deferred offline task (Task.Deferred) instead.
//
// A record DecodeRecord refuses is skipped (logged and counted), not
// dead-lettered: the persist consumer, which reads the same records with
// the same decoder, dead-letters it, so it lands there once and is neither
// stored nor pushed.
func (p *Pusher) HandleMessage(ctx context.Context, m kafka.Message) error {
	return p.handleMessage(ctx, m, nil)
}

// HandleBatch handles records in order, as HandleMessage does, with the
// lookups shared across the batch: a hot conversation's records then cost
// one member, presence, device and mute lookup per batch, not per record.
func (p *Pusher) HandleBatch(ctx context.Context, ms []kafka.Message) error {
	l := newLookups()
	for _, m := range ms {
		if err := p.handleMessage(ctx, m, l); err != nil {
			return err
		}
	}
	// Online sockets first: a batch's offline tasks, one produce for all,
	// must not delay them. If that produce fails the batch is redone, and
	// clients drop the frames they already have by seq.
	p.flush(ctx, l)
	return p.writeOffline(ctx, l.offline)
}

func (p *Pusher) handleMessage(ctx context.Context, m kafka.Message, l *lookups) error {
	ev, err := message.DecodeRecord(m.Key, m.Value)
	if err != nil {
		p.metrics.refused.Inc()
		_ = level.Warn(p.logger).Log("msg", "refused record not pushed (persist dead-letters it)", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
		return nil
	}
	return p.push(ctx, ev, l)
}

func (p *Pusher) poison(consumer string, m kafka.Message, err error) error {
	p.metrics.skipped.WithLabelValues(consumer).Inc()
	_ = level.Warn(p.logger).Log("msg", "malformed record goes to the dead-letter topic", "consumer", consumer, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
	return kafkax.Poison(err)
}

// push fans ev, which message.DecodeRecord accepted, out, looking up
// through l (nil: no sharing).
func (p *Pusher) push(ctx context.Context, ev message.Event, l *lookups) error {
	switch ev.Kind {
	case message.EventMessage:
		return p.pushMessage(ctx, ev, l)
	case message.EventRecall:
		return p.pushRecall(ctx, ev, l)
	case message.EventRead:
		return p.pushReceipt(ctx, ev, l)
	default:
		// DecodeRecord accepts no other kind.
		return nil
	}
}

// recipients are the users of a conversation: both sides of a p: id, the
// members of a group.
func (p *Pusher) recipients(ctx context.Context, conversationID string) ([]string, error) {
	kind, a, b, ok := ids.ParseConversation(conversationID)
	if !ok {
		return nil, kafkax.Poison(fmt.Errorf("pusher: conversation id %q", conversationID))
	}
	if kind == "p" {
		return []string{a, b}, nil
	}
	members, err := p.members.get(ctx, a)
	if errs.HasCode(err, errs.NotFound) {
		// The group is gone (dissolved after the send): nobody to push to.
		_ = level.Info(p.logger).Log("msg", "group not found; message not pushed", "group", a)
		return nil, nil
	}
	if err != nil {
		return nil, recordError(fmt.Errorf("pusher: members of %s: %w", a, err))
	}
	return members, nil
}

// recordError is err as the consumer must see it: an infrastructure error
// (a store or peer away, a timeout) as it is, so the record is retried
// with the position held; a refusal that can never succeed for this record
// (invalid_argument, permission_denied...) wrapped as poison.
func recordError(err error) error {
	if err == nil || errs.IsInfrastructure(err) || errs.HasCode(err, errs.Canceled) {
		return err
	}
	return kafkax.Poison(err)
}

// fallback reports whether a failed lookup for one recipient (its devices,
// mute or ack) turns into a deferred offline task: always, unless ctx
// ended (then the record is retried by the next owner). Other recipients
// are pushed as usual, and the offline consumer makes the checks later,
// retrying while the dependency is away.
func (p *Pusher) fallback(ctx context.Context, lookup, userID string, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	p.metrics.fallbacks.WithLabelValues(lookup).Inc()
	_ = level.Warn(p.logger).Log("msg", "recipient lookup failed; deferred offline task instead", "lookup", lookup, "user", userID,
		"infrastructure", errs.IsInfrastructure(err), "err", err)
	return true
}

func (p *Pusher) pushMessage(ctx context.Context, ev message.Event, l *lookups) error {
	msg, conv := ev.Message, ev.ConversationID
	users, online, err := l.audience(ctx, p, conv)
	if err != nil {
		return err
	}
	frame, err := wire.EncodeFrame(wire.OpMessage, wire.MessageData[*message.Message]{Message: msg})
	if err != nil {
		return err
	}
	p.deliverTo(ctx, online, users, frame, ev.OriginConn, l)
	return p.produceOffline(ctx, msg, users, online, l)
}

func (p *Pusher) pushRecall(ctx context.Context, ev message.Event, l *lookups) error {
	conv := ev.ConversationID
	users, online, err := l.audience(ctx, p, conv)
	if err != nil {
		return err
	}
	frame, err := wire.EncodeFrame(wire.OpRecalled, wire.RecalledData{ConversationID: conv, MessageID: ev.RecalledID, Seq: ev.Message.Seq})
	if err != nil {
		return err
	}
	p.deliverTo(ctx, online, users, frame, ev.OriginConn, l)
	return nil
}

// pushReceipt tells the other side of a 1:1 conversation how far the reader
// read; in groups read state is only queried.
func (p *Pusher) pushReceipt(ctx context.Context, ev message.Event, l *lookups) error {
	// DecodeRecord checked the id and that a 1:1 reader is one of its two.
	peer, ok := ids.Peer(ev.ConversationID, ev.UserID)
	if !ok {
		return nil // a group: read state is only queried
	}
	frame, err := wire.EncodeFrame(wire.OpReceipt, wire.ReceiptData{ConversationID: ev.ConversationID, UserID: ev.UserID, ReadSeq: ev.ReadSeq})
	if err != nil {
		return err
	}
	// The conversation's audience, shared with its messages in the batch,
	// holds the peer's online devices.
	_, online, err := l.audience(ctx, p, ev.ConversationID)
	if err != nil {
		return err
	}
	p.deliverTo(ctx, online, []string{peer}, frame, "", l)
	return nil
}

// deliverOnline looks users up and delivers frame to their sockets.
func (p *Pusher) deliverOnline(ctx context.Context, users []string, frame []byte, exceptConn string) error {
	if len(users) == 0 {
		return nil
	}
	online, err := p.presence.Lookup(ctx, users)
	if err != nil {
		return recordError(fmt.Errorf("pusher: presence lookup: %w", err))
	}
	p.deliverTo(ctx, online, users, frame, exceptConn, nil)
	return nil
}

// deliverTo groups the online users by gateway instance and delivers one
// request per instance, concurrently; with l (a batch), it only collects
// them for flush. Failures are logged and counted, never returned: one
// dead gateway must not hold up the partition.
func (p *Pusher) deliverTo(ctx context.Context, online map[string][]PresenceDevice, users []string, frame []byte, exceptConn string, l *lookups) {
	byGateway := map[string][]string{}
	for _, u := range users {
		seen := map[string]bool{}
		for _, d := range online[u] {
			if d.GatewayID == "" || seen[d.GatewayID] {
				continue
			}
			seen[d.GatewayID] = true
			byGateway[d.GatewayID] = append(byGateway[d.GatewayID], u)
		}
	}
	if len(byGateway) == 0 {
		return
	}
	out := &outbox{}
	if l != nil {
		out = &l.out // sent by flush at the end of the batch
	}
	for gw, us := range byGateway {
		out.add(gw, us, frame, exceptConn)
	}
	if l == nil {
		p.send(ctx, out)
	}
}

func (p *Pusher) deliverWithRetry(ctx context.Context, gatewayID string, req wire.DeliverRequest) {
	backoff := p.opts.DeliverBackoff
	var err error
	for attempt := 1; ; attempt++ {
		err = p.deliverer.Deliver(ctx, gatewayID, req)
		if err == nil {
			return
		}
		if attempt >= p.opts.DeliverAttempts || !errs.IsInfrastructure(err) || ctx.Err() != nil {
			break
		}
		if werr := wait(ctx, backoff); werr != nil {
			break
		}
		backoff *= 2
	}
	p.metrics.deliverFailures.Inc()
	_ = level.Warn(log.With(p.logger, "gateway", gatewayID)).Log("msg", "deliver failed; clients recover by sync", "users", len(req.UserIDs), "err", err)
}

// wait pauses for d or until ctx is done.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// produceOffline produces one task per registered device of a recipient
// (never the sender) that has no socket, has not acked the message, and
// whose user has not muted the conversation.
func (p *Pusher) produceOffline(ctx context.Context, msg *message.Message, users []string, online map[string][]PresenceDevice, l *lookups) error {
	if p.offline == nil {
		return nil
	}
	tasks, err := p.offlineTasks(ctx, msg, users, online, l)
	if err != nil || len(tasks) == 0 {
		return err
	}
	out := make([]kafka.Message, 0, len(tasks))
	for _, t := range tasks {
		v, err := json.Marshal(t)
		if err != nil {
			return err
		}
		out = append(out, kafka.Message{Key: []byte(t.UserID), Value: v})
	}
	if l != nil {
		l.offline = append(l.offline, out...) // produced after the batch's deliveries
		return nil
	}
	return p.writeOffline(ctx, out)
}

func (p *Pusher) writeOffline(ctx context.Context, tasks []kafka.Message) error {
	if len(tasks) == 0 {
		return nil
	}
	if err := p.offline.WriteMessages(ctx, tasks...); err != nil {
		return fmt.Errorf("pusher: produce offline tasks: %w", err)
	}
	p.metrics.offlineTasks.Add(float64(len(tasks)))
	return nil
}

// offlineTasks are msg's offline tasks for users. A recipient whose device,
// mute or ack lookup fails gets a deferred task (see Task.Deferred): one
// for all its devices when the device list failed, one per unconnected
// device otherwise.
func (p *Pusher) offlineTasks(ctx context.Context, msg *message.Message, users []string, online map[string][]PresenceDevice, l *lookups) ([]Task, error) {
	var tasks []Task
	preview := p.preview(msg)
	task := func(u string, d Device) Task {
		return Task{
			UserID: u, DeviceID: d.DeviceID, Platform: d.Platform, PushToken: d.PushToken,
			MessageID: msg.ID, ConversationID: msg.ConversationID, Seq: msg.Seq,
			SenderID: msg.SenderID, Preview: preview,
		}
	}
	deferred := func(u string, d Device) Task {
		t := task(u, d)
		t.Deferred = true
		if d.DeviceID == "" {
			for _, c := range online[u] {
				t.Connected = append(t.Connected, c.DeviceID)
			}
		}
		return t
	}
	for _, u := range users {
		if u == msg.SenderID {
			continue
		}
		devices, err := l.devices(ctx, p, u)
		if err != nil {
			if !p.fallback(ctx, "devices", u, err) {
				return nil, err
			}
			tasks = append(tasks, deferred(u, Device{}))
			continue
		}
		if len(devices) == 0 {
			continue
		}
		connected := map[string]bool{}
		for _, d := range online[u] {
			connected[d.DeviceID] = true
		}
		checked := true // the mute is known
		if p.settings != nil {
			muted, err := l.muted(ctx, p, u, msg.ConversationID)
			if err != nil {
				if !p.fallback(ctx, "settings", u, err) {
					return nil, err
				}
				checked = false
			}
			if muted {
				continue
			}
		}
		for _, d := range devices {
			if connected[d.DeviceID] {
				continue
			}
			if !checked {
				tasks = append(tasks, deferred(u, d))
				continue
			}
			if p.acks != nil {
				acked, err := p.acks.Acked(ctx, u, d.DeviceID, msg.ConversationID)
				if err != nil {
					if !p.fallback(ctx, "acks", u, fmt.Errorf("pusher: acks of %s/%s: %w", u, d.DeviceID, err)) {
						return nil, err
					}
					tasks = append(tasks, deferred(u, d))
					continue
				}
				if acked >= msg.Seq {
					continue
				}
			}
			tasks = append(tasks, task(u, d))
		}
	}
	return tasks, nil
}

// preview is the notification text: the start of a text message, a
// placeholder for other types.
func (p *Pusher) preview(msg *message.Message) string {
	switch msg.Type {
	case message.TypeText:
		var s string
		if err := json.Unmarshal(msg.Content, &s); err != nil {
			return "[message]"
		}
		return truncateRunes(s, p.opts.PreviewRunes)
	case message.TypeImage:
		return "[image]"
	case message.TypeFile:
		return "[file]"
	default:
		return "[message]"
	}
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos] + "…"
		}
		i++
	}
	return s
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

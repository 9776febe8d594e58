package pusher

import (
	"context"
	"errors"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/wire"
)

// TaskWriter produces offline tasks to beehive.push.offline; a
// *kafka.Writer for that topic (kafkax.NewWriter) is one.
type TaskWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Deps are the pusher's collaborators. Store, Members, Presence and
// Deliverer are required; without Acks every device counts as having acked
// nothing, without Settings nothing is muted, without Friends no presence
// frames go out, without Offline no offline tasks are produced, and a
// platform missing from Notifiers gets no pushes (logged).
type Deps struct {
	Store     Store
	Members   Members
	Presence  Presence
	Deliverer Deliverer
	Acks      Acks
	Settings  Settings
	Friends   Friends
	Offline   TaskWriter
	Notifiers map[string]Notifier
}

// Options tune the pusher; zero values take the defaults.
type Options struct {
	Logger log.Logger
	Now    func() time.Time
	// Registerer receives the pusher's counters (nil: not registered).
	Registerer prometheus.Registerer
	// DeliverAttempts bounds tries per gateway for transient failures
	// (default 3); DeliverBackoff is the first pause, doubled each time
	// (default 50 ms).
	DeliverAttempts int
	DeliverBackoff  time.Duration
	// MemberCacheTTL bounds how long a group's member list is trusted
	// without an invalidating event (default 5 min); MemberCacheSize bounds
	// cached groups (default 10,000).
	MemberCacheTTL  time.Duration
	MemberCacheSize int
	// PreviewRunes bounds the text preview of a push (default 100).
	PreviewRunes int
	// EventTimeout bounds the work of one HandleEvent (default 5 s).
	EventTimeout time.Duration
}

// Pusher implements Service and the handlers of the push and offline
// consumers and of domain events.
type Pusher struct {
	store     Store
	members   *memberCache
	presence  Presence
	deliverer Deliverer
	acks      Acks
	settings  Settings
	friends   Friends
	offline   TaskWriter
	notifiers map[string]Notifier
	logger    log.Logger
	now       func() time.Time
	metrics   *metrics
	opts      Options
}

var _ Service = (*Pusher)(nil)

// New returns a Pusher. It fails when a required dependency is missing.
func New(deps Deps, opts Options) (*Pusher, error) {
	switch {
	case deps.Store == nil:
		return nil, errors.New("pusher: Deps.Store is nil")
	case deps.Members == nil:
		return nil, errors.New("pusher: Deps.Members is nil")
	case deps.Presence == nil:
		return nil, errors.New("pusher: Deps.Presence is nil")
	case deps.Deliverer == nil:
		return nil, errors.New("pusher: Deps.Deliverer is nil")
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DeliverAttempts <= 0 {
		opts.DeliverAttempts = 3
	}
	if opts.DeliverBackoff <= 0 {
		opts.DeliverBackoff = 50 * time.Millisecond
	}
	if opts.MemberCacheTTL <= 0 {
		opts.MemberCacheTTL = 5 * time.Minute
	}
	if opts.MemberCacheSize <= 0 {
		opts.MemberCacheSize = 10000
	}
	if opts.PreviewRunes <= 0 {
		opts.PreviewRunes = 100
	}
	if opts.EventTimeout <= 0 {
		opts.EventTimeout = 5 * time.Second
	}
	notifiers := map[string]Notifier{}
	for k, v := range deps.Notifiers {
		if v != nil {
			notifiers[k] = v
		}
	}
	return &Pusher{
		store:     deps.Store,
		members:   newMemberCache(deps.Members, opts.MemberCacheTTL, opts.MemberCacheSize, opts.Now),
		presence:  deps.Presence,
		deliverer: deps.Deliverer,
		acks:      deps.Acks,
		settings:  deps.Settings,
		friends:   deps.Friends,
		offline:   deps.Offline,
		notifiers: notifiers,
		logger:    opts.Logger,
		now:       opts.Now,
		metrics:   newMetrics(opts.Registerer),
		opts:      opts,
	}, nil
}

// RegisterDevice implements Service.
func (p *Pusher) RegisterDevice(ctx context.Context, userID string, reg DeviceRegistration) (Device, error) {
	if err := validateUserID(userID); err != nil {
		return Device{}, err
	}
	if err := ValidateRegistration(reg); err != nil {
		return Device{}, err
	}
	d := Device{DeviceID: reg.DeviceID, Platform: reg.Platform, PushToken: reg.PushToken, UpdatedAt: p.now().UTC().Truncate(time.Millisecond)}
	if err := p.store.PutDevice(ctx, userID, d); err != nil {
		if errs.HasCode(err, errs.Conflict) {
			return Device{}, err
		}
		return Device{}, errs.Wrap(errs.Unavailable, err, "device store unavailable")
	}
	return d, nil
}

// UnregisterDevice implements Service.
func (p *Pusher) UnregisterDevice(ctx context.Context, userID, deviceID string) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	if err := ids.ValidateDeviceID(deviceID); err != nil {
		return err
	}
	if err := p.store.DeleteDevice(ctx, userID, deviceID); err != nil {
		return errs.Wrap(errs.Unavailable, err, "device store unavailable")
	}
	return nil
}

// typing gives the other participants' online sockets a `typing` frame:
// userID must take part in the conversation (a side of a p: id, or a
// member of the group).
func (p *Pusher) typing(ctx context.Context, userID, conversationID string) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	if conversationID == "" {
		return errs.Missing("conversation_id")
	}
	kind, a, b, ok := ids.ParseConversation(conversationID)
	if !ok {
		return errs.Invalid("conversation_id", "malformed conversation id")
	}
	var others []string
	switch kind {
	case "p":
		switch userID {
		case a:
			others = []string{b}
		case b:
			others = []string{a}
		default:
			return ErrNotParticipant
		}
	case "g":
		members, err := p.members.get(ctx, a)
		if err != nil {
			return errs.Wrap(errs.Unavailable, err, "group members unavailable")
		}
		member := false
		others = make([]string, 0, len(members))
		for _, m := range members {
			if m == userID {
				member = true
			} else {
				others = append(others, m)
			}
		}
		if !member {
			return ErrNotParticipant
		}
	}
	frame, err := wire.EncodeFrame(wire.OpTyping, wire.TypingData{ConversationID: conversationID, UserID: userID})
	if err != nil {
		return err
	}
	if err := p.deliverOnline(ctx, others, frame, ""); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return errs.As(err)
		}
		return errs.Wrap(errs.Unavailable, err, "presence unavailable")
	}
	return nil
}

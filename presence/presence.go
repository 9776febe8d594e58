package presence

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/ids"
)

// Options configure the service.
type Options struct {
	// TTL is how long a session lives without a heartbeat (default 90 s).
	TTL time.Duration
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger log.Logger
}

// Presence implements Service over a Backend.
type Presence struct {
	backend Backend
	pub     events.Publisher
	ttl     time.Duration
	now     func() time.Time
	logger  log.Logger
	// stripes serialise "change backend + publish" per user, so the events
	// of one user leave in the order of the changes they describe. Lock
	// order: a stripe, then the backend's own lock; never two stripes.
	stripes [64]sync.Mutex
}

var _ Service = (*Presence)(nil)

// Deps are the presence service's collaborators; all are required.
type Deps struct {
	// Backend keeps sessions (memory or Redis).
	Backend Backend
	// Events receives presence changes (events.Nop{} to drop them).
	Events events.Publisher
}

// New returns the presence service. It fails when a dependency is missing.
func New(deps Deps, opts Options) (*Presence, error) {
	switch {
	case deps.Backend == nil:
		return nil, errors.New("presence: Deps.Backend is nil")
	case deps.Events == nil:
		return nil, errors.New("presence: Deps.Events is nil")
	}
	if opts.TTL <= 0 {
		opts.TTL = 90 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	return &Presence{backend: deps.Backend, pub: deps.Events, ttl: opts.TTL, now: opts.Now, logger: opts.Logger}, nil
}

func (p *Presence) stripe(userID string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(userID))
	return &p.stripes[h.Sum32()%uint32(len(p.stripes))]
}

func (p *Presence) publish(ctx context.Context, userID string, online bool, at time.Time) {
	data, _ := json.Marshal(Changed{UserID: userID, Online: online, At: at.UTC()})
	err := p.pub.Publish(ctx, events.Event{Type: events.PresenceChanged, UserID: userID, Data: data, At: at.UTC()})
	if err != nil {
		_ = level.Warn(p.logger).Log("msg", "publish presence change failed", "userId", userID, "err", err)
	}
}

func (p *Presence) UserOnline(ctx context.Context, s Session) error {
	if err := ValidateSession(s); err != nil {
		return err
	}
	now := p.now()
	if s.Since.IsZero() {
		s.Since = now
	}
	s.Since = s.Since.UTC()
	mu := p.stripe(s.UserID)
	mu.Lock()
	defer mu.Unlock()
	came, err := p.backend.Add(ctx, s, now.Add(p.ttl), now)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "presence store unavailable")
	}
	if came {
		p.publish(ctx, s.UserID, true, now)
	}
	return nil
}

func (p *Presence) UserOffline(ctx context.Context, userID, connID string) error {
	if err := ids.Validate("user_id", userID); err != nil {
		return err
	}
	if err := validRef("conn_id", connID, true, maxRefLen); err != nil {
		return err
	}
	now := p.now()
	mu := p.stripe(userID)
	mu.Lock()
	defer mu.Unlock()
	left, err := p.backend.Remove(ctx, userID, connID, now)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "presence store unavailable")
	}
	if left {
		p.publish(ctx, userID, false, now)
	}
	return nil
}

func (p *Presence) Heartbeat(ctx context.Context, userID, connID string) error {
	if err := ids.Validate("user_id", userID); err != nil {
		return err
	}
	if err := validRef("conn_id", connID, true, maxRefLen); err != nil {
		return err
	}
	now := p.now()
	found, err := p.backend.Touch(ctx, userID, connID, now.Add(p.ttl), now)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "presence store unavailable")
	}
	if !found {
		return ErrSessionNotFound
	}
	return nil
}

func (p *Presence) GetUserPresence(ctx context.Context, userIDs []string) ([]UserPresence, error) {
	userIDs, err := ValidateUserIDs(userIDs)
	if err != nil {
		return nil, err
	}
	recs, err := p.backend.Get(ctx, userIDs, p.now())
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "presence store unavailable")
	}
	out := make([]UserPresence, 0, len(userIDs))
	for _, id := range userIDs {
		r := recs[id]
		up := UserPresence{UserID: id, Online: len(r.Sessions) > 0, Devices: make([]Device, 0, len(r.Sessions))}
		for _, s := range r.Sessions {
			up.Devices = append(up.Devices, Device{DeviceID: s.DeviceID, GatewayID: s.GatewayID, ConnID: s.ConnID, Since: s.Since.UTC()})
		}
		if !r.LastSeen.IsZero() {
			t := r.LastSeen.UTC()
			up.LastSeen = &t
		}
		out = append(out, up)
	}
	return out, nil
}

func (p *Presence) IsUserOnline(ctx context.Context, userID string) (bool, error) {
	if err := ids.Validate("user_id", userID); err != nil {
		return false, err
	}
	ps, err := p.GetUserPresence(ctx, []string{userID})
	if err != nil {
		return false, err
	}
	return ps[0].Online, nil
}

func (p *Presence) GetOnlineUsers(ctx context.Context, userIDs []string) ([]string, error) {
	ps, err := p.GetUserPresence(ctx, userIDs)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ps))
	for _, up := range ps {
		if up.Online {
			out = append(out, up.UserID)
		}
	}
	return out, nil
}

// Sweep expires sessions whose heartbeats stopped and publishes the offline
// transitions. Queries already hide expired sessions; Sweep is what tells
// friends. Run calls it periodically.
func (p *Presence) Sweep(ctx context.Context) error {
	now := p.now()
	// Expire may report some users together with an error (a sweep that
	// failed midway): those users left the index and no later sweep will
	// report them, so their offline events go out before the error does.
	left, expireErr := p.backend.Expire(ctx, now)
	for _, id := range left {
		// A session may have come back between Expire and here; publish
		// only what is still true, under the user's stripe.
		mu := p.stripe(id)
		mu.Lock()
		recs, err := p.backend.Get(ctx, []string{id}, now)
		if err == nil && len(recs[id].Sessions) == 0 {
			p.publish(ctx, id, false, now)
		}
		mu.Unlock()
	}
	if expireErr != nil {
		return errs.Wrap(errs.Unavailable, expireErr, "presence store unavailable")
	}
	return nil
}

// Run sweeps every TTL/3 until ctx ends (add it to the process's run group).
func (p *Presence) Run(ctx context.Context) error {
	t := time.NewTicker(p.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := p.Sweep(ctx); err != nil {
				_ = level.Warn(p.logger).Log("msg", "presence sweep failed", "err", err)
			}
		}
	}
}

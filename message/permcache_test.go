package message_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
)

// peer answers the permission questions from a table and counts them; its
// store can be taken away (an infrastructure error) or changed.
type peer struct {
	mu      sync.Mutex
	allowed map[string]bool
	down    bool
	calls   int
	during  func() // runs inside a call, for races
}

func (p *peer) answer(k string) (bool, error) {
	p.mu.Lock()
	p.calls++
	during := p.during
	p.mu.Unlock()
	if during != nil {
		during()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false, errs.New(errs.Unavailable, "gocql: no hosts available in the pool")
	}
	return p.allowed[k], nil
}

func (p *peer) CanMessage(_ context.Context, from, to string) (bool, error) {
	return p.answer("p:" + from + ">" + to)
}

func (p *peer) CanPost(_ context.Context, userID, groupID string) error {
	ok, err := p.answer("g:" + userID + "@" + groupID)
	if err != nil {
		return err
	}
	if !ok {
		return errs.New(errs.PermissionDenied, "muted")
	}
	return nil
}

func (p *peer) Role(context.Context, string, string) (string, error) { return "member", nil }
func (p *peer) IsMember(context.Context, string, string) (bool, error) {
	return true, nil
}

func (p *peer) set(k string, v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allowed[k] = v
}

func (p *peer) setDown(v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = v
}

func (p *peer) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newCache(p *peer, c *fakeClock) *message.PermissionCache {
	return message.NewPermissionCache(p, p, message.PermissionCacheOptions{MaxAge: time.Minute, Now: c.now})
}

func event(typ, user, group string, data any) events.Event {
	raw, _ := json.Marshal(data)
	return events.Event{Type: typ, UserID: user, GroupID: group, Data: raw}
}

// While the peer answers it is asked every time, so a change takes effect
// at once however late its event comes.
func TestThePeerIsAskedEveryTimeItAnswers(t *testing.T) {
	p := &peer{allowed: map[string]bool{"g:u1@g1": true, "p:a>b": true}}
	c := newCache(p, &fakeClock{t: time.Unix(1000, 0)})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := c.Groups().CanPost(ctx, "u1", "g1"); err != nil {
			t.Fatal(err)
		}
		if ok, err := c.Relations().CanMessage(ctx, "a", "b"); !ok || err != nil {
			t.Fatalf("CanMessage %v %v", ok, err)
		}
	}
	if n := p.callCount(); n != 6 {
		t.Fatalf("peer asked %d times for 2 questions asked 3 times each, want 6", n)
	}
	p.set("g:u1@g1", false) // kicked; the event has not come yet
	if err := c.Groups().CanPost(ctx, "u1", "g1"); !errs.HasCode(err, errs.PermissionDenied) {
		t.Fatalf("a kicked member before the event: %v, want permission_denied", err)
	}
}

// A refusal drops an earlier grant, even if its event never came.
func TestARefusalDropsAnEarlierGrant(t *testing.T) {
	p := &peer{allowed: map[string]bool{"g:u1@g1": true}}
	c := newCache(p, &fakeClock{t: time.Unix(1000, 0)})
	ctx := context.Background()
	_ = c.Groups().CanPost(ctx, "u1", "g1")
	p.set("g:u1@g1", false) // muted; the event is lost
	_ = c.Groups().CanPost(ctx, "u1", "g1")
	p.setDown(true)
	if err := c.Groups().CanPost(ctx, "u1", "g1"); !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("a member refused before the outage, during it: %v, want unavailable", err)
	}
}

func TestARefusalIsNeverCached(t *testing.T) {
	p := &peer{allowed: map[string]bool{}}
	c := newCache(p, &fakeClock{t: time.Unix(1000, 0)})
	ctx := context.Background()
	if err := c.Groups().CanPost(ctx, "u1", "g1"); !errs.HasCode(err, errs.PermissionDenied) {
		t.Fatalf("CanPost: %v", err)
	}
	p.set("g:u1@g1", true)
	if err := c.Groups().CanPost(ctx, "u1", "g1"); err != nil {
		t.Fatalf("after the mute was lifted: %v", err)
	}
	if ok, _ := c.Relations().CanMessage(ctx, "a", "b"); ok {
		t.Fatal("a refused pair was allowed")
	}
	p.setDown(true)
	if _, err := c.Relations().CanMessage(ctx, "a", "b"); !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("a pair refused before the outage, asked during it: %v, want unavailable", err)
	}
}

// Each change that can take a grant away drops it at once.
func TestEventsDropGrantsAtOnce(t *testing.T) {
	for _, c := range []struct {
		name  string
		ask   func(*message.PermissionCache) error
		key   string
		event events.Event
	}{
		{"block drops the blocker's pair", canMessage("a", "b"), "p:a>b",
			event(events.UserBlocked, "b", "", map[string]string{"user_id": "b", "blocked_user_id": "a"})},
		{"unfriending drops the pair", canMessage("a", "b"), "p:a>b",
			event(events.FriendRemoved, "a", "", map[string]string{"user_id": "a", "friend_id": "b"})},
		{"a kick drops the member's post grant", canPost("u1", "g1"), "g:u1@g1",
			event(events.GroupMembership, "u1", "g1", map[string]string{"action": "kicked"})},
		{"a mute drops the member's post grant", canPost("u1", "g1"), "g:u1@g1",
			event(events.GroupMembership, "u1", "g1", map[string]string{"action": "muted"})},
		{"muting everyone drops every post grant of the group", canPost("u1", "g1"), "g:u1@g1",
			event(events.GroupMembership, "", "g1", map[string]string{"action": "muted"})},
		{"a dissolved group drops its post grants", canPost("u1", "g1"), "g:u1@g1",
			event(events.GroupDissolved, "owner", "g1", nil)},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &peer{allowed: map[string]bool{c.key: true}}
			cache := newCache(p, &fakeClock{t: time.Unix(1000, 0)})
			if err := c.ask(cache); err != nil {
				t.Fatal(err)
			}
			p.set(c.key, false)
			cache.HandleEvent(context.Background(), c.event)
			if err := c.ask(cache); err == nil {
				t.Fatal("the grant outlived the event that took it away")
			}
			p.setDown(true)
			if err := c.ask(cache); err == nil {
				t.Fatal("a dropped grant answered during an outage")
			}
		})
	}
}

func canMessage(from, to string) func(*message.PermissionCache) error {
	return func(c *message.PermissionCache) error {
		ok, err := c.Relations().CanMessage(context.Background(), from, to)
		if err == nil && !ok {
			return errors.New("refused")
		}
		return err
	}
}

func canPost(user, group string) func(*message.PermissionCache) error {
	return func(c *message.PermissionCache) error {
		return c.Groups().CanPost(context.Background(), user, group)
	}
}

// While the store is away, a recent grant answers; a question never
// granted gets unavailable.
func TestDuringAnOutageRecentGrantsAnswerAndNewQuestionsAreUnavailable(t *testing.T) {
	p := &peer{allowed: map[string]bool{"g:u1@g1": true, "p:a>b": true}}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	c := newCache(p, clk)
	ctx := context.Background()
	if err := c.Groups().CanPost(ctx, "u1", "g1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Relations().CanMessage(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(50 * time.Second) // within MaxAge
	p.setDown(true)
	if err := c.Groups().CanPost(ctx, "u1", "g1"); err != nil {
		t.Fatalf("an active member during the outage: %v", err)
	}
	if ok, err := c.Relations().CanMessage(ctx, "a", "b"); !ok || err != nil {
		t.Fatalf("an active pair during the outage: %v %v", ok, err)
	}
	if err := c.Groups().CanPost(ctx, "u2", "g1"); !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("a member never seen before: %v, want unavailable", err)
	}
}

// A grant older than MaxAge does not answer during an outage.
func TestAGrantOlderThanMaxAgeDoesNotAnswer(t *testing.T) {
	p := &peer{allowed: map[string]bool{"g:u1@g1": true}}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	c := newCache(p, clk)
	ctx := context.Background()
	_ = c.Groups().CanPost(ctx, "u1", "g1")
	clk.t = clk.t.Add(2 * time.Minute)
	p.setDown(true)
	if err := c.Groups().CanPost(ctx, "u1", "g1"); !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("after MaxAge: %v, want unavailable", err)
	}
}

// An answer read before a change but stored after it is not kept.
func TestAnAnswerRacingWithAChangeIsNotKept(t *testing.T) {
	p := &peer{allowed: map[string]bool{"g:u1@g1": true}}
	c := newCache(p, &fakeClock{t: time.Unix(1000, 0)})
	ctx := context.Background()
	p.during = func() {
		// The kick lands while the grant is on its way back.
		c.HandleEvent(ctx, event(events.GroupMembership, "u1", "g1", map[string]string{"action": "kicked"}))
	}
	if err := c.Groups().CanPost(ctx, "u1", "g1"); err != nil {
		t.Fatal(err)
	}
	p.during = nil
	p.setDown(true)
	if err := c.Groups().CanPost(ctx, "u1", "g1"); err == nil {
		t.Fatal("a grant read before the kick answered after it")
	}
}

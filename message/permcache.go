package message

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
)

// PermissionCache remembers the send path's permission grants, so a
// conversation active before an outage of the user or group store keeps
// sending through it (DESIGN.md, "Behaviour under faults": sends go on
// while Cassandra is away).
//
// The peer is asked every time it answers, so a block or a kick takes
// effect at once in every mode, however late its event arrives; a grant
// answers only when the peer fails with an infrastructure error, and only
// if it is younger than MaxAge. Only grants are kept: a refusal is asked
// again, so nothing is refused from memory. Every change that can take a
// grant away is a domain event (a block, an unfriending, leaving, a kick,
// a role change, a mute, a dissolved group); it bumps the generation of
// the users or group it names, which drops their grants, so a change made
// before an outage holds during it. A grant is stored with the
// generation read before the question was asked, so an answer racing with
// a change is never kept.
type PermissionCache struct {
	relations Relations
	groups    Groups
	maxAge    time.Duration
	maxSize   int
	now       func() time.Time

	mu       sync.Mutex
	userGen  map[string]uint64 // bumped by events naming the user
	groupGen map[string]uint64 // bumped by events naming the group
	grants   map[grantKey]grant
}

type grant struct {
	at  time.Time
	gen uint64
}

// PermissionCacheOptions tune the cache; zero values take the defaults.
type PermissionCacheOptions struct {
	// MaxAge bounds the age of a grant that answers during an outage
	// (default 10 min: conversations active in the minutes before it).
	MaxAge time.Duration
	// MaxSize bounds the grants, and the users and groups with a
	// generation (default 100,000; beyond it the cache starts over, which
	// costs one peer call per active pair).
	MaxSize int
	Now     func() time.Time
}

// NewPermissionCache caches relations' and groups' grants.
func NewPermissionCache(relations Relations, groups Groups, opts PermissionCacheOptions) *PermissionCache {
	if opts.MaxAge <= 0 {
		opts.MaxAge = 10 * time.Minute
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = 100_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &PermissionCache{
		relations: relations, groups: groups, maxAge: opts.MaxAge, maxSize: opts.MaxSize, now: opts.Now,
		userGen: map[string]uint64{}, groupGen: map[string]uint64{}, grants: map[grantKey]grant{},
	}
}

// Relations is the cached side of relations.
func (c *PermissionCache) Relations() Relations { return cachedRelations{c} }

// Groups is the cached side of groups: CanPost keeps grants; the other
// questions, off the send path, go straight through.
func (c *PermissionCache) Groups() Groups { return cachedGroups{Groups: c.groups, c: c} }

type cachedRelations struct{ c *PermissionCache }

func (r cachedRelations) CanMessage(ctx context.Context, from, to string) (bool, error) {
	err := r.c.ask(ctx, pairKey(from, to), func(ctx context.Context) error {
		ok, err := r.c.relations.CanMessage(ctx, from, to)
		if err == nil && !ok {
			return errRefused
		}
		return err
	})
	if err == errRefused {
		return false, nil
	}
	return err == nil, err
}

type cachedGroups struct {
	Groups
	c *PermissionCache
}

func (g cachedGroups) CanPost(ctx context.Context, userID, groupID string) error {
	return g.c.ask(ctx, postKey(userID, groupID), func(ctx context.Context) error {
		return g.c.groups.CanPost(ctx, userID, groupID)
	})
}

// errRefused marks a "no" answer of CanMessage inside ask.
var errRefused = errs.New(errs.PermissionDenied, "refused")

// key names one question and the users and group whose changes drop its
// grant.
type key struct {
	kind  byte // 'p' CanMessage, 'g' CanPost
	a, b  string
	users [2]string
	group string
}

func pairKey(from, to string) key {
	return key{kind: 'p', a: from, b: to, users: [2]string{from, to}}
}

func postKey(userID, groupID string) key {
	return key{kind: 'g', a: userID, b: groupID, users: [2]string{userID}, group: groupID}
}

type grantKey struct {
	kind byte
	a, b string
}

// ask asks the peer and keeps a grant; when the peer fails with an
// infrastructure error, a grant held answers instead.
func (c *PermissionCache) ask(ctx context.Context, k key, peer func(context.Context) error) error {
	gen := c.generation(k)
	err := peer(ctx)
	switch {
	case err == nil:
		c.keep(k, gen)
		return nil
	case errs.IsInfrastructure(err):
		if c.held(k, gen) {
			return nil
		}
	default:
		c.drop(k) // refused now: no earlier grant may answer later
	}
	return err
}

func (c *PermissionCache) drop(k key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.grants, grantKey{k.kind, k.a, k.b})
}

// generation sums the generations of what k depends on: any event
// naming one of them changes it.
func (c *PermissionCache) generation(k key) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generationLocked(k)
}

func (c *PermissionCache) generationLocked(k key) uint64 {
	g := c.groupGen[k.group]
	for _, u := range k.users {
		if u != "" {
			g += c.userGen[u]
		}
	}
	return g
}

// keep stores a grant read under gen, unless a change came meanwhile.
func (c *PermissionCache) keep(k key, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.generationLocked(k) != gen {
		return
	}
	if len(c.grants) >= c.maxSize {
		clear(c.grants)
	}
	c.grants[grantKey{k.kind, k.a, k.b}] = grant{at: c.now(), gen: gen}
}

// held reports whether k has a grant younger than MaxAge that no event
// has dropped since.
func (c *PermissionCache) held(k key, gen uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.grants[grantKey{k.kind, k.a, k.b}]
	if !ok || g.gen != gen || c.generationLocked(k) != gen {
		return false
	}
	return c.now().Sub(g.at) < c.maxAge
}

// HandleEvent drops the grants a change can take away.
func (c *PermissionCache) HandleEvent(_ context.Context, e events.Event) {
	switch e.Type {
	case events.UserBlocked, events.FriendRemoved:
		var d struct {
			UserID        string `json:"user_id"`
			FriendID      string `json:"friend_id"`
			BlockedUserID string `json:"blocked_user_id"`
		}
		_ = json.Unmarshal(e.Data, &d)
		c.bump(nil, e.UserID, d.UserID, d.FriendID, d.BlockedUserID)
	case events.GroupMembership:
		if e.UserID == "" {
			c.bump([]string{e.GroupID})
		} else {
			c.bump(nil, e.UserID)
		}
	case events.GroupDissolved:
		c.bump([]string{e.GroupID})
	}
}

func (c *PermissionCache) bump(groups []string, users ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.userGen)+len(c.groupGen) >= c.maxSize {
		// Forgetting generations could revive a dropped grant: forget
		// the grants with them.
		clear(c.userGen)
		clear(c.groupGen)
		clear(c.grants)
	}
	for _, g := range groups {
		if g != "" {
			c.groupGen[g]++
		}
	}
	for _, u := range users {
		if u != "" {
			c.userGen[u]++
		}
	}
}

package pusher

import (
	"context"
	"sync"
	"time"
)

// memberCache caches group member lists. Membership events invalidate a
// group; the TTL is only a safety net for a lost event.
//
// A list fetched while any invalidation happened is returned but not
// cached: it may predate the change (epoch check), and caching it would
// pin the stale list until the TTL.
type memberCache struct {
	src   Members
	ttl   time.Duration
	max   int
	now   func() time.Time
	mu    sync.Mutex
	m     map[string]memberEntry
	epoch uint64
}

type memberEntry struct {
	ids []string
	at  time.Time
}

func newMemberCache(src Members, ttl time.Duration, max int, now func() time.Time) *memberCache {
	return &memberCache{src: src, ttl: ttl, max: max, now: now, m: map[string]memberEntry{}}
}

// get returns the members of groupID; the slice must not be modified.
func (c *memberCache) get(ctx context.Context, groupID string) ([]string, error) {
	c.mu.Lock()
	if e, ok := c.m[groupID]; ok && c.now().Sub(e.at) < c.ttl {
		c.mu.Unlock()
		return e.ids, nil
	}
	epoch := c.epoch
	c.mu.Unlock()

	ids, err := c.src.ListMemberIDs(ctx, groupID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == epoch {
		if _, ok := c.m[groupID]; !ok && len(c.m) >= c.max {
			for k := range c.m { // evict an arbitrary entry
				delete(c.m, k)
				break
			}
		}
		c.m[groupID] = memberEntry{ids: ids, at: c.now()}
	}
	return ids, nil
}

func (c *memberCache) invalidate(groupID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	delete(c.m, groupID)
}

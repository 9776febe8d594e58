package presence

import (
	"context"
	"sort"
	"sync"
	"time"
)

// MemoryBackend keeps sessions in process memory (embedded mode: presence
// is rebuilt as sockets reconnect after a restart).
type MemoryBackend struct {
	mu    sync.Mutex
	users map[string]*memUser
}

type memUser struct {
	sessions map[string]memSession // by conn id
	lastSeen time.Time
}

type memSession struct {
	s         Session
	expiresAt time.Time
}

var _ Backend = (*MemoryBackend)(nil)

// NewMemoryBackend returns an empty backend.
func NewMemoryBackend() *MemoryBackend { return &MemoryBackend{users: map[string]*memUser{}} }

// prune drops u's sessions expired at now and reports whether any remain.
func (u *memUser) prune(now time.Time) bool {
	for id, s := range u.sessions {
		if !s.expiresAt.After(now) {
			delete(u.sessions, id)
		}
	}
	return len(u.sessions) > 0
}

func (b *MemoryBackend) Add(_ context.Context, s Session, expiresAt, now time.Time) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, ok := b.users[s.UserID]
	if !ok {
		u = &memUser{sessions: map[string]memSession{}}
		b.users[s.UserID] = u
	}
	wasOnline := u.prune(now)
	u.sessions[s.ConnID] = memSession{s: s, expiresAt: expiresAt}
	if now.After(u.lastSeen) {
		u.lastSeen = now
	}
	return !wasOnline, nil
}

func (b *MemoryBackend) Remove(_ context.Context, userID, connID string, now time.Time) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, ok := b.users[userID]
	if !ok {
		return false, nil
	}
	_, had := u.sessions[connID]
	live := had && u.sessions[connID].expiresAt.After(now)
	delete(u.sessions, connID)
	if had && now.After(u.lastSeen) {
		u.lastSeen = now
	}
	return live && !u.prune(now), nil
}

func (b *MemoryBackend) Touch(_ context.Context, userID, connID string, expiresAt, now time.Time) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, ok := b.users[userID]
	if !ok {
		return false, nil
	}
	s, ok := u.sessions[connID]
	if !ok || !s.expiresAt.After(now) {
		return false, nil
	}
	if expiresAt.After(s.expiresAt) {
		s.expiresAt = expiresAt
		u.sessions[connID] = s
	}
	if now.After(u.lastSeen) {
		u.lastSeen = now
	}
	return true, nil
}

func (b *MemoryBackend) Get(_ context.Context, userIDs []string, now time.Time) (map[string]Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]Record, len(userIDs))
	for _, id := range userIDs {
		u, ok := b.users[id]
		if !ok {
			continue
		}
		var r Record
		for _, s := range u.sessions {
			if s.expiresAt.After(now) {
				r.Sessions = append(r.Sessions, s.s)
			}
		}
		sort.Slice(r.Sessions, func(i, j int) bool {
			a, c := r.Sessions[i], r.Sessions[j]
			if !a.Since.Equal(c.Since) {
				return a.Since.Before(c.Since)
			}
			return a.ConnID < c.ConnID
		})
		r.LastSeen = u.lastSeen
		out[id] = r
	}
	return out, nil
}

func (b *MemoryBackend) Expire(_ context.Context, now time.Time) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var left []string
	for id, u := range b.users {
		if len(u.sessions) == 0 {
			continue
		}
		if !u.prune(now) {
			left = append(left, id)
		}
	}
	sort.Strings(left)
	return left, nil
}

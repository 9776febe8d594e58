package group

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/beehive-im/beehive/shared/pebblex"
)

// PebbleStore keeps groups in the embedded Pebble database under "group/":
//
//	group/g/<group_id>            -> group record (JSON)
//	group/m/<group_id>/<user_id>  -> member record (JSON)   (group_members)
//	group/u/<user_id>/<group_id>  -> empty                  (groups_by_user)
//
// Ids never contain "/", so prefix scans are exact. The group record
// carries the version; a record written before versions reads as 0.
type PebbleStore struct {
	db *pebble.DB
	// stripes make a Save's version check and its batch one step per
	// group: of two Saves from one version (two services over one store)
	// only the first writes.
	stripes [64]sync.Mutex
}

var _ Store = (*PebbleStore)(nil)

// NewPebbleStore returns a store on db (shared with the other domains).
func NewPebbleStore(db *pebble.DB) *PebbleStore { return &PebbleStore{db: db} }

func groupKey(gid string) []byte       { return pebblex.Key("group", "g", gid) }
func memberKey(gid, uid string) []byte { return pebblex.Key("group", "m", gid, uid) }
func membersPrefix(gid string) []byte  { return append(pebblex.Key("group", "m", gid), '/') }
func byUserKey(uid, gid string) []byte { return pebblex.Key("group", "u", uid, gid) }
func byUserPrefix(uid string) []byte   { return append(pebblex.Key("group", "u", uid), '/') }
func afterKey(prefix []byte, after string) []byte {
	// Ids have no "/", so the only key for id `after` is prefix+after and
	// the first key beyond it is prefix+after+"\x00".
	return append(append(append([]byte(nil), prefix...), after...), 0)
}

type groupRecord struct {
	ID               string     `json:"id"`
	Name             string     `json:"name"`
	OwnerID          string     `json:"owner_id"`
	Announcement     string     `json:"announcement,omitempty"`
	MembersCanInvite bool       `json:"members_can_invite,omitempty"`
	MutedAll         bool       `json:"muted_all,omitempty"`
	MemberCount      int        `json:"member_count"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	DissolvedAt      *time.Time `json:"dissolved_at,omitempty"`
	Version          int64      `json:"version,omitempty"`
}

type memberRecord struct {
	Role       Role       `json:"role"`
	JoinedAt   time.Time  `json:"joined_at"`
	JoinedSeq  int64      `json:"joined_seq"`
	MutedUntil *time.Time `json:"muted_until,omitempty"`
}

func (s *PebbleStore) lock(gid string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(gid))
	mu := &s.stripes[h.Sum32()%uint32(len(s.stripes))]
	mu.Lock()
	return mu.Unlock
}

func (s *PebbleStore) Save(ctx context.Context, g Group, put []Member, del []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer s.lock(g.ID)()
	// No record reads as version 0.
	cur, _, err := s.Group(ctx, g.ID)
	if err != nil {
		return err
	}
	if cur.Version != g.Version {
		return ErrConflict
	}
	g.Version++
	b := s.db.NewBatch()
	defer b.Close()
	gv, err := json.Marshal(groupRecord(g))
	if err != nil {
		return err
	}
	if err := b.Set(groupKey(g.ID), gv, nil); err != nil {
		return err
	}
	for _, m := range put {
		mv, err := json.Marshal(memberRecord{Role: m.Role, JoinedAt: m.JoinedAt, JoinedSeq: m.JoinedSeq, MutedUntil: m.MutedUntil})
		if err != nil {
			return err
		}
		if err := b.Set(memberKey(g.ID, m.UserID), mv, nil); err != nil {
			return err
		}
		if err := b.Set(byUserKey(m.UserID, g.ID), nil, nil); err != nil {
			return err
		}
	}
	for _, uid := range del {
		if err := b.Delete(memberKey(g.ID, uid), nil); err != nil {
			return err
		}
		if err := b.Delete(byUserKey(uid, g.ID), nil); err != nil {
			return err
		}
	}
	// Membership decides who may read and post: synced before it is
	// acknowledged.
	return b.Commit(pebble.Sync)
}

func (s *PebbleStore) Group(ctx context.Context, gid string) (Group, bool, error) {
	if err := ctx.Err(); err != nil {
		return Group{}, false, err
	}
	v, ok, err := pebblex.Get(s.db, groupKey(gid))
	if err != nil || !ok {
		return Group{}, false, err
	}
	var r groupRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return Group{}, false, fmt.Errorf("decode group %s: %w", gid, err)
	}
	return Group(r), true, nil
}

func decodeMember(uid string, v []byte) (Member, error) {
	var r memberRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return Member{}, fmt.Errorf("decode member %s: %w", uid, err)
	}
	return Member{UserID: uid, Role: r.Role, JoinedAt: r.JoinedAt, JoinedSeq: r.JoinedSeq, MutedUntil: r.MutedUntil}, nil
}

func (s *PebbleStore) Member(ctx context.Context, gid, uid string) (Member, bool, error) {
	if err := ctx.Err(); err != nil {
		return Member{}, false, err
	}
	v, ok, err := pebblex.Get(s.db, memberKey(gid, uid))
	if err != nil || !ok {
		return Member{}, false, err
	}
	m, err := decodeMember(uid, v)
	return m, err == nil, err
}

// scan iterates keys under prefix from the first one after `after`.
func (s *PebbleStore) scan(prefix []byte, after string, fn func(rest string, v []byte) (bool, error)) error {
	lower := prefix
	if after != "" {
		lower = afterKey(prefix, after)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: pebblex.PrefixEnd(prefix)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		more, err := fn(string(it.Key()[len(prefix):]), it.Value())
		if err != nil {
			_ = it.Close()
			return err
		}
		if !more {
			break
		}
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return err
	}
	return it.Close()
}

func (s *PebbleStore) Members(ctx context.Context, gid, after string, limit int) ([]Member, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	var out []Member
	err := s.scan(membersPrefix(gid), after, func(uid string, v []byte) (bool, error) {
		m, err := decodeMember(uid, v)
		if err != nil {
			return false, err
		}
		out = append(out, m)
		return len(out) < limit, nil
	})
	return out, err
}

func (s *PebbleStore) MemberIDs(ctx context.Context, gid string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []string
	err := s.scan(membersPrefix(gid), "", func(uid string, _ []byte) (bool, error) {
		out = append(out, uid)
		return true, nil
	})
	return out, err
}

func (s *PebbleStore) GroupsOf(ctx context.Context, uid, after string, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	var out []string
	err := s.scan(byUserPrefix(uid), after, func(gid string, _ []byte) (bool, error) {
		out = append(out, gid)
		return len(out) < limit, nil
	})
	return out, err
}

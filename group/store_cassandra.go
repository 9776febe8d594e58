package group

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/beehive-im/beehive/shared/cassandra"
)

// CassandraStore keeps groups in Cassandra (migrations 0020_groups.cql,
// 0060_group_version.cql):
//
//	groups          group_id -> group record (+ version, member_ts, pending_save)
//	group_members   (group_id), user_id -> member record
//	groups_by_user  (user_id), group_id
//
// Statements use bind markers, so gocql prepares each once per connection;
// consistency is the session's.
//
// Several service instances may save one group at once, so a Save is a
// compare-and-set on the group row: one lightweight transaction (UPDATE
// ... IF version = the loaded one) writes the group record, version+1 and
// the whole member change (pending_save) — the commit point; a Save that
// loses it has written nothing. Cassandra cannot make that transaction
// span the member tables, so the winner then applies the member rows in
// batches of saveBatchMembers and clears pending_save (only while the
// version is still its own). Should that stop half way, the next Save of
// the group applies the pending change before its own transaction, so the
// member views converge.
//
// The member rows of a change are written USING TIMESTAMP member_ts, which
// grows with every change of the group: a late or repeated write of an
// older change (its instance still writing while the next change is
// saved, a replay of pending_save) never undoes a newer one. Rows from
// before 0060 have no version and read as version 0 (no backfill).
type CassandraStore struct {
	s *gocql.Session
}

var _ Store = (*CassandraStore)(nil)

// NewCassandraStore returns a store on session (its keyspace migrated by
// `beehive migrate`).
func NewCassandraStore(session *gocql.Session) *CassandraStore {
	return &CassandraStore{s: session}
}

// saveBatchMembers bounds the member changes of one batch: each costs two
// statements (group_members, groups_by_user), and with a maximal
// announcement 80 changes stay well inside Cassandra's default 50 KiB
// batch_size_fail_threshold.
const saveBatchMembers = 80

const (
	// The last marker of cqlSaveGroup is the loaded version; null (nil)
	// matches a missing row and a row from before versions.
	cqlSaveGroup = `UPDATE groups SET name = ?, owner_id = ?, announcement = ?, members_can_invite = ?, muted_all = ?, member_count = ?, created_at = ?, updated_at = ?, dissolved_at = ?, version = ?, member_ts = ?, pending_save = ? WHERE group_id = ? IF version = ?`
	cqlGetGroup  = `SELECT name, owner_id, announcement, members_can_invite, muted_all, member_count, created_at, updated_at, dissolved_at, version FROM groups WHERE group_id = ?`
	cqlPending   = `SELECT version, member_ts, pending_save, WRITETIME(pending_save) FROM groups WHERE group_id = ?`
	cqlClear     = `UPDATE groups SET pending_save = null WHERE group_id = ? IF version = ?`

	cqlPutMember  = `INSERT INTO group_members (group_id, user_id, role, joined_at, joined_seq, muted_until) VALUES (?, ?, ?, ?, ?, ?)`
	cqlDelMember  = `DELETE FROM group_members WHERE group_id = ? AND user_id = ?`
	cqlGetMember  = `SELECT role, joined_at, joined_seq, muted_until FROM group_members WHERE group_id = ? AND user_id = ?`
	cqlMembers    = `SELECT user_id, role, joined_at, joined_seq, muted_until FROM group_members WHERE group_id = ? AND user_id > ? LIMIT ?`
	cqlMemberIDs  = `SELECT user_id FROM group_members WHERE group_id = ?`
	cqlPutByUser  = `INSERT INTO groups_by_user (user_id, group_id) VALUES (?, ?)`
	cqlDelByUser  = `DELETE FROM groups_by_user WHERE user_id = ? AND group_id = ?`
	cqlGroupsOfAt = `SELECT group_id FROM groups_by_user WHERE user_id = ? AND group_id > ? LIMIT ?`
)

// pendingSave is a large Save recorded on the group row until its member
// rows are all written.
type pendingSave struct {
	Put []pendingMember `json:"put,omitempty"`
	Del []string        `json:"del,omitempty"`
}

type pendingMember struct {
	UserID     string     `json:"user_id"`
	Role       Role       `json:"role"`
	JoinedAt   time.Time  `json:"joined_at"`
	JoinedSeq  int64      `json:"joined_seq"`
	MutedUntil *time.Time `json:"muted_until,omitempty"`
}

func (s *CassandraStore) Save(ctx context.Context, g Group, put []Member, del []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var (
		version, memberTS, pendingTS *int64
		raw                          *string
	)
	err := s.s.Query(cqlPending, g.ID).WithContext(ctx).Idempotent(true).Scan(&version, &memberTS, &raw, &pendingTS)
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return cassandraErr(ctx, err, "read group version")
	}
	// Loaded from another version: lose early, having written nothing.
	// (The transaction below decides; this only spares it.)
	if deref(version) != g.Version {
		return ErrConflict
	}
	// The change that made this version may not have finished its member
	// rows (its instance stopped, or is still at it): finish them first, at
	// that change's timestamp, because this change replaces pending_save.
	last := deref(memberTS)
	if raw != nil && *raw != "" {
		var p pendingSave
		if err := json.Unmarshal([]byte(*raw), &p); err != nil {
			return fmt.Errorf("group store: decode pending save of %s: %w", g.ID, err)
		}
		at := last
		if memberTS == nil {
			// Recorded before 0060: it came after every earlier change's
			// rows and before its own, so it is timed by its own write.
			at = deref(pendingTS)
		}
		if err := s.applyMembers(ctx, g.ID, p, at); err != nil {
			return err
		}
		last = max(last, at)
	}

	ts := max(time.Now().UnixMicro(), last+1)
	var (
		p       pendingSave
		pending *string
	)
	if len(put)+len(del) > 0 {
		p.Del = del
		for _, m := range put {
			p.Put = append(p.Put, pendingMember(m))
		}
		enc, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("group store: encode pending save: %w", err)
		}
		rec := string(enc)
		pending = &rec
	}
	var loaded any // nil: IF version = null
	if g.Version != 0 {
		loaded = g.Version
	}
	// Not idempotent: a retry of an applied transaction would report a
	// conflict. Serial like the seq leases: the winner is decided across
	// data centres.
	applied, err := s.s.Query(cqlSaveGroup, g.Name, g.OwnerID, g.Announcement, g.MembersCanInvite, g.MutedAll, g.MemberCount,
		g.CreatedAt, g.UpdatedAt, g.DissolvedAt, g.Version+1, ts, pending, g.ID, loaded).
		WithContext(ctx).SerialConsistency(gocql.Serial).MapScanCAS(map[string]any{})
	if err != nil {
		return cassandraErr(ctx, err, "save group")
	}
	if !applied {
		return ErrConflict
	}
	if pending == nil {
		return nil
	}
	if err := s.applyMembers(ctx, g.ID, p, ts); err != nil {
		return err
	}
	// The change is complete whatever this does: a pending_save left
	// behind is applied again, harmlessly, by the next Save. It is cleared
	// only while the version is still this change's, so a newer change's
	// record is never lost.
	_, _ = s.s.Query(cqlClear, g.ID, g.Version+1).WithContext(ctx).SerialConsistency(gocql.Serial).MapScanCAS(map[string]any{})
	return nil
}

func deref(v *int64) int64 {
	if v == nil {
		return 0
	}
	return *v
}

// applyMembers writes p's member rows at timestamp ts (microseconds) in
// batches of saveBatchMembers changes.
func (s *CassandraStore) applyMembers(ctx context.Context, gid string, p pendingSave, ts int64) error {
	put := make([]Member, 0, len(p.Put))
	for _, m := range p.Put {
		put = append(put, Member(m))
	}
	del := p.Del
	for len(put)+len(del) > 0 {
		n := min(len(put), saveBatchMembers)
		chunkPut := put[:n]
		put = put[n:]
		d := min(len(del), saveBatchMembers-n)
		chunkDel := del[:d]
		del = del[d:]
		b := s.s.NewBatch(gocql.LoggedBatch).WithContext(ctx).WithTimestamp(ts)
		addMembers(b, gid, chunkPut, chunkDel)
		if err := cassandraErr(ctx, s.s.ExecuteBatch(b), "save group members"); err != nil {
			return err
		}
	}
	return nil
}

func addMembers(b *gocql.Batch, gid string, put []Member, del []string) {
	for _, m := range put {
		b.Entries = append(b.Entries,
			gocql.BatchEntry{Stmt: cqlPutMember, Idempotent: true, Args: []any{gid, m.UserID, string(m.Role), m.JoinedAt, m.JoinedSeq, m.MutedUntil}},
			gocql.BatchEntry{Stmt: cqlPutByUser, Idempotent: true, Args: []any{m.UserID, gid}})
	}
	for _, uid := range del {
		b.Entries = append(b.Entries,
			gocql.BatchEntry{Stmt: cqlDelMember, Idempotent: true, Args: []any{gid, uid}},
			gocql.BatchEntry{Stmt: cqlDelByUser, Idempotent: true, Args: []any{uid, gid}})
	}
}

func (s *CassandraStore) Group(ctx context.Context, gid string) (Group, bool, error) {
	if err := ctx.Err(); err != nil {
		return Group{}, false, err
	}
	g := Group{ID: gid}
	var dissolved *time.Time
	// A row from before versions scans version null as 0.
	err := s.s.Query(cqlGetGroup, gid).WithContext(ctx).Scan(&g.Name, &g.OwnerID, &g.Announcement,
		&g.MembersCanInvite, &g.MutedAll, &g.MemberCount, &g.CreatedAt, &g.UpdatedAt, &dissolved, &g.Version)
	if errors.Is(err, gocql.ErrNotFound) {
		return Group{}, false, nil
	}
	if err != nil {
		return Group{}, false, cassandraErr(ctx, err, "read group")
	}
	g.CreatedAt, g.UpdatedAt, g.DissolvedAt = g.CreatedAt.UTC(), g.UpdatedAt.UTC(), utcPtr(dissolved)
	return g, true, nil
}

func (s *CassandraStore) Member(ctx context.Context, gid, uid string) (Member, bool, error) {
	if err := ctx.Err(); err != nil {
		return Member{}, false, err
	}
	m := Member{UserID: uid}
	var (
		role  string
		muted *time.Time
	)
	err := s.s.Query(cqlGetMember, gid, uid).WithContext(ctx).Scan(&role, &m.JoinedAt, &m.JoinedSeq, &muted)
	if errors.Is(err, gocql.ErrNotFound) {
		return Member{}, false, nil
	}
	if err != nil {
		return Member{}, false, cassandraErr(ctx, err, "read member")
	}
	m.Role, m.JoinedAt, m.MutedUntil = Role(role), m.JoinedAt.UTC(), utcPtr(muted)
	return m, true, nil
}

func (s *CassandraStore) Members(ctx context.Context, gid, after string, limit int) ([]Member, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	iter := s.s.Query(cqlMembers, gid, after, limit).WithContext(ctx).Iter()
	var (
		out   []Member
		m     Member
		role  string
		muted *time.Time
	)
	for iter.Scan(&m.UserID, &role, &m.JoinedAt, &m.JoinedSeq, &muted) {
		m.Role, m.JoinedAt, m.MutedUntil = Role(role), m.JoinedAt.UTC(), utcPtr(muted)
		out = append(out, m)
		muted = nil
	}
	if err := iter.Close(); err != nil {
		return nil, cassandraErr(ctx, err, "list members")
	}
	return out, nil
}

func (s *CassandraStore) MemberIDs(ctx context.Context, gid string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// gocql pages through the partition (the session's page size).
	iter := s.s.Query(cqlMemberIDs, gid).WithContext(ctx).Iter()
	var (
		out []string
		uid string
	)
	for iter.Scan(&uid) {
		out = append(out, uid)
	}
	if err := iter.Close(); err != nil {
		return nil, cassandraErr(ctx, err, "list member ids")
	}
	return out, nil
}

func (s *CassandraStore) GroupsOf(ctx context.Context, uid, after string, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	iter := s.s.Query(cqlGroupsOfAt, uid, after, limit).WithContext(ctx).Iter()
	var (
		out []string
		gid string
	)
	for iter.Scan(&gid) {
		out = append(out, gid)
	}
	if err := iter.Close(); err != nil {
		return nil, cassandraErr(ctx, err, "list groups of user")
	}
	return out, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// cassandraErr maps a Cassandra failure (shared/cassandra.Err).
func cassandraErr(ctx context.Context, err error, what string) error {
	return cassandra.Err(ctx, err, "group store: "+what)
}

//go:build integration

package group_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/group/storetest"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func TestCassandraStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) group.Store { return group.NewCassandraStore(testinfra.CassandraSession(t)) })
}

func TestConcurrentChangesThroughTwoInstancesOverCassandraAllLand(t *testing.T) {
	concurrentChangesAllLand(t, group.NewCassandraStore(testinfra.CassandraSession(t)))
}

// memberTS is the timestamp the member rows of the group's latest change
// were written with.
func memberTS(t *testing.T, s *gocql.Session, gid string) int64 {
	t.Helper()
	var ts int64
	if err := s.Query(`SELECT member_ts FROM groups WHERE group_id = ?`, gid).Scan(&ts); err != nil {
		t.Fatal(err)
	}
	return ts
}

func pendingSave(t *testing.T, s *gocql.Session, gid string) *string {
	t.Helper()
	var p *string
	if err := s.Query(`SELECT pending_save FROM groups WHERE group_id = ?`, gid).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// A Save of more member changes than one Cassandra batch may carry (the
// service allows 500 invites and dissolves groups of 10000).
func TestCassandraStoreSaveLargerThanOneBatch(t *testing.T) {
	ctx := context.Background()
	sess := testinfra.CassandraSession(t)
	s := group.NewCassandraStore(sess)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	users := make([]string, 501)
	for i := range users {
		users[i] = ids.New()
	}
	sort.Strings(users)
	g := group.Group{ID: ids.New(), Name: "big", OwnerID: users[0], MemberCount: len(users), CreatedAt: t0, UpdatedAt: t0}
	var put []group.Member
	for _, u := range users {
		put = append(put, group.Member{UserID: u, Role: group.RoleMember, JoinedAt: t0, JoinedSeq: 7})
	}
	if err := s.Save(ctx, g, put, nil); err != nil {
		t.Fatalf("save 501 members: %v", err)
	}
	got, err := s.MemberIDs(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, users) {
		t.Fatalf("MemberIDs has %d members, want the %d saved", len(got), len(users))
	}
	for _, u := range []string{users[0], users[250], users[500]} {
		gs, err := s.GroupsOf(ctx, u, "", 10)
		if err != nil || !slices.Equal(gs, []string{g.ID}) {
			t.Fatalf("GroupsOf(%s) = %v, %v", u, gs, err)
		}
	}
	if p := pendingSave(t, sess, g.ID); p != nil {
		t.Fatalf("pending_save left after a complete save: %q", *p)
	}

	at := t0.Add(time.Hour)
	g.DissolvedAt, g.MemberCount, g.Version = &at, 0, 1
	if err := s.Save(ctx, g, nil, users); err != nil {
		t.Fatalf("dissolve 501 members: %v", err)
	}
	if left, err := s.MemberIDs(ctx, g.ID); err != nil || len(left) != 0 {
		t.Fatalf("members after dissolution: %d, %v", len(left), err)
	}
	for _, u := range users {
		gs, err := s.GroupsOf(ctx, u, "", 10)
		if err != nil || len(gs) != 0 {
			t.Fatalf("GroupsOf(%s) after dissolution = %v, %v", u, gs, err)
		}
	}
	rec, found, err := s.Group(ctx, g.ID)
	if err != nil || !found || rec.DissolvedAt == nil || !rec.DissolvedAt.Equal(at) {
		t.Fatalf("dissolved group = %+v, %v, %v", rec, found, err)
	}
}

// A Save that stopped after its transaction on the group row (the commit
// point) leaves pending_save; the next Save of the group applies it first,
// so the member views converge and the later Save wins.
func TestCassandraStoreNextSaveFinishesAnInterruptedOne(t *testing.T) {
	ctx := context.Background()
	sess := testinfra.CassandraSession(t)
	s := group.NewCassandraStore(sess)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	owner, gone, a, b := ids.New(), ids.New(), ids.New(), ids.New()
	g := group.Group{ID: ids.New(), Name: "g", OwnerID: owner, MemberCount: 2, CreatedAt: t0, UpdatedAt: t0}
	if err := s.Save(ctx, g, []group.Member{
		{UserID: owner, Role: group.RoleOwner, JoinedAt: t0},
		{UserID: gone, Role: group.RoleMember, JoinedAt: t0},
	}, nil); err != nil {
		t.Fatal(err)
	}
	// What an interrupted Save "add a and b, remove gone" leaves behind.
	pending, err := json.Marshal(map[string]any{
		"put": []map[string]any{
			{"user_id": a, "role": "member", "joined_at": t0, "joined_seq": 3},
			{"user_id": b, "role": "admin", "joined_at": t0, "joined_seq": 4},
		},
		"del": []string{gone},
	})
	if err != nil {
		t.Fatal(err)
	}
	interrupted := memberTS(t, sess, g.ID) + 1
	applied, err := sess.Query(`UPDATE groups SET member_count = 3, version = 2, member_ts = ?, pending_save = ? WHERE group_id = ? IF version = 1`,
		interrupted, string(pending), g.ID).MapScanCAS(map[string]any{})
	if err != nil || !applied {
		t.Fatalf("record the interrupted save: applied %v, %v", applied, err)
	}

	// The next Save removes b again.
	g.MemberCount, g.Version = 2, 2
	if err := s.Save(ctx, g, nil, []string{b}); err != nil {
		t.Fatal(err)
	}
	got, err := s.MemberIDs(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{owner, a}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("members = %v, want %v (pending applied, then the later save)", got, want)
	}
	m, found, err := s.Member(ctx, g.ID, a)
	if err != nil || !found || m.JoinedSeq != 3 || m.Role != group.RoleMember || !m.JoinedAt.Equal(t0) {
		t.Fatalf("replayed member = %+v, %v, %v", m, found, err)
	}
	for u, want := range map[string][]string{a: {g.ID}, b: nil, gone: nil} {
		gs, err := s.GroupsOf(ctx, u, "", 10)
		if err != nil || !slices.Equal(gs, want) {
			t.Fatalf("GroupsOf(%s) = %v, %v; want %v", u, gs, err, want)
		}
	}
	if p := pendingSave(t, sess, g.ID); p != nil {
		t.Fatalf("pending_save not cleared: %q", *p)
	}
	if ts := memberTS(t, sess, g.ID); ts <= interrupted {
		t.Fatalf("member_ts %d after the next change, want above the interrupted one's %d", ts, interrupted)
	}

	// The interrupted change applied once more, late (its own instance
	// finishing, or a Save that read it before): b stays removed, since
	// the later change's rows carry a later timestamp.
	applied, err = sess.Query(`UPDATE groups SET version = 4, member_ts = ?, pending_save = ? WHERE group_id = ? IF version = 3`,
		interrupted, string(pending), g.ID).MapScanCAS(map[string]any{})
	if err != nil || !applied {
		t.Fatalf("record the late replay: applied %v, %v", applied, err)
	}
	g.Version = 4
	if err := s.Save(ctx, g, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.MemberIDs(ctx, g.ID); err != nil || !slices.Equal(got, want) {
		t.Fatalf("members after a late replay = %v, %v; want %v", got, err, want)
	}
}

// A row written before migration 0060 has no version: it reads as version
// 0, a Save from 0 succeeds once (finishing a pending change the old code
// left), and the version counts from there.
func TestCassandraStoreRowFromBeforeVersionsIsVersionZero(t *testing.T) {
	ctx := context.Background()
	sess := testinfra.CassandraSession(t)
	s := group.NewCassandraStore(sess)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	owner, gone, a := ids.New(), ids.New(), ids.New()
	gid := ids.New()
	// What the old code wrote: plain writes at the client's clock, the
	// last a large Save interrupted after its group record (add a, remove
	// gone).
	pending, err := json.Marshal(map[string]any{
		"put": []map[string]any{{"user_id": a, "role": "member", "joined_at": t0, "joined_seq": 3}},
		"del": []string{gone},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		cql  string
		args []any
	}{
		{`INSERT INTO group_members (group_id, user_id, role, joined_at, joined_seq) VALUES (?, ?, ?, ?, ?)`, []any{gid, owner, "owner", t0, int64(0)}},
		{`INSERT INTO groups_by_user (user_id, group_id) VALUES (?, ?)`, []any{owner, gid}},
		{`INSERT INTO group_members (group_id, user_id, role, joined_at, joined_seq) VALUES (?, ?, ?, ?, ?)`, []any{gid, gone, "member", t0, int64(0)}},
		{`INSERT INTO groups_by_user (user_id, group_id) VALUES (?, ?)`, []any{gone, gid}},
		{`INSERT INTO groups (group_id, name, owner_id, member_count, created_at, updated_at, pending_save) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			[]any{gid, "old", owner, 2, t0, t0, string(pending)}},
	} {
		if err := sess.Query(q.cql, q.args...).Exec(); err != nil {
			t.Fatal(err)
		}
	}

	g, found, err := s.Group(ctx, gid)
	if err != nil || !found || g.Version != 0 || g.Name != "old" {
		t.Fatalf("old row = %+v, %v, %v; want version 0", g, found, err)
	}
	g.Name = "new"
	if err := s.Save(ctx, g, nil, nil); err != nil {
		t.Fatalf("save from version 0: %v", err)
	}
	if err := s.Save(ctx, g, nil, nil); !errors.Is(err, group.ErrConflict) {
		t.Fatalf("second save from version 0: %v, want ErrConflict", err)
	}
	g, _, err = s.Group(ctx, gid)
	if err != nil || g.Version != 1 || g.Name != "new" {
		t.Fatalf("group = %+v, %v; want version 1 named new", g, err)
	}
	want := []string{owner, a}
	sort.Strings(want)
	if got, err := s.MemberIDs(ctx, gid); err != nil || !slices.Equal(got, want) {
		t.Fatalf("members = %v, %v; want %v (the old pending change finished)", got, err, want)
	}
	if p := pendingSave(t, sess, gid); p != nil {
		t.Fatalf("pending_save not cleared: %q", *p)
	}
}

func TestCassandraStoreErrorsAreCoded(t *testing.T) {
	sess := testinfra.CassandraSession(t)
	s := group.NewCassandraStore(sess)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Group(cctx, ids.New()); !errs.HasCode(err, errs.Canceled) {
		t.Fatalf("canceled context: %v, want canceled", err)
	}
	sess.Close()
	if _, _, err := s.Group(context.Background(), ids.New()); !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("closed session: %v, want unavailable", err)
	}
	g := group.Group{ID: ids.New(), Name: "g", OwnerID: ids.New()}
	if err := s.Save(context.Background(), g, nil, nil); !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("closed session: %v, want unavailable", err)
	}
}

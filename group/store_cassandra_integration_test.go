//go:build integration

package group_test

import (
	"context"
	"encoding/json"
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
	g.DissolvedAt, g.MemberCount = &at, 0
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

// A large Save that stopped after writing its group record (the commit
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
	if err := sess.Query(`UPDATE groups SET member_count = 3, pending_save = ? WHERE group_id = ?`, string(pending), g.ID).Exec(); err != nil {
		t.Fatal(err)
	}

	// The next Save removes b again.
	g.MemberCount = 2
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

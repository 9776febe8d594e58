// Package storetest is the contract every group.Store passes: the Pebble
// backend runs it in unit tests, a Cassandra backend in integration tests,
// unchanged.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/shared/ids"
)

// Run runs the contract against stores made by newStore. Every test uses
// fresh ids, so a shared store is fine.
func Run(t *testing.T, newStore func(t *testing.T) group.Store) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ctx := context.Background()
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	newGroup := func(owner string, count int) group.Group {
		return group.Group{ID: ids.New(), Name: "hive", OwnerID: owner, Announcement: "hello\nall",
			MembersCanInvite: true, MemberCount: count, CreatedAt: t0, UpdatedAt: t0.Add(time.Second)}
	}
	sortedIDs := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = ids.New()
		}
		sort.Strings(out)
		return out
	}

	t.Run("a saved group and its members read back field for field", func(t *testing.T) {
		s := newStore(t)
		owner, other := ids.New(), ids.New()
		g := newGroup(owner, 2)
		muted := t0.Add(time.Hour)
		must(t, s.Save(ctx, g, []group.Member{
			{UserID: owner, Role: group.RoleOwner, JoinedAt: t0},
			{UserID: other, Role: group.RoleMember, JoinedAt: t0.Add(time.Minute), JoinedSeq: 42, MutedUntil: &muted},
		}, nil))
		got, found, err := s.Group(ctx, g.ID)
		must(t, err)
		if !found || got.ID != g.ID || got.Name != g.Name || got.OwnerID != owner || got.Announcement != g.Announcement ||
			!got.MembersCanInvite || got.MutedAll || got.MemberCount != 2 || !got.CreatedAt.Equal(t0) ||
			!got.UpdatedAt.Equal(g.UpdatedAt) || got.DissolvedAt != nil || got.Version != 1 {
			t.Fatalf("group = %+v, found %v; want %+v", got, found, g)
		}
		m, found, err := s.Member(ctx, g.ID, other)
		must(t, err)
		if !found || m.UserID != other || m.Role != group.RoleMember || m.JoinedSeq != 42 ||
			!m.JoinedAt.Equal(t0.Add(time.Minute)) || m.MutedUntil == nil || !m.MutedUntil.Equal(muted) {
			t.Fatalf("member = %+v, found %v", m, found)
		}
		m, found, err = s.Member(ctx, g.ID, owner)
		must(t, err)
		if !found || m.Role != group.RoleOwner || m.MutedUntil != nil {
			t.Fatalf("owner = %+v, found %v", m, found)
		}
	})

	t.Run("unknown group and non-member are not found, without error", func(t *testing.T) {
		s := newStore(t)
		if _, found, err := s.Group(ctx, ids.New()); err != nil || found {
			t.Fatalf("unknown group: found %v err %v", found, err)
		}
		owner := ids.New()
		g := newGroup(owner, 1)
		must(t, s.Save(ctx, g, []group.Member{{UserID: owner, Role: group.RoleOwner, JoinedAt: t0}}, nil))
		if _, found, err := s.Member(ctx, g.ID, ids.New()); err != nil || found {
			t.Fatalf("non-member: found %v err %v", found, err)
		}
		if _, found, err := s.Member(ctx, ids.New(), owner); err != nil || found {
			t.Fatalf("member of unknown group: found %v err %v", found, err)
		}
		ms, err := s.Members(ctx, ids.New(), "", 10)
		must(t, err)
		if len(ms) != 0 {
			t.Fatalf("members of unknown group = %v", ms)
		}
	})

	t.Run("members page in user id order strictly after the cursor", func(t *testing.T) {
		s := newStore(t)
		users := sortedIDs(7)
		g := newGroup(users[3], len(users))
		// Saved out of order, listed in order.
		var put []group.Member
		for i := len(users) - 1; i >= 0; i-- {
			put = append(put, group.Member{UserID: users[i], Role: group.RoleMember, JoinedAt: t0})
		}
		must(t, s.Save(ctx, g, put, nil))
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			ms, err := s.Members(ctx, g.ID, after, 3)
			must(t, err)
			if len(ms) > 3 {
				t.Fatalf("page of %d members, limit 3", len(ms))
			}
			for _, m := range ms {
				got = append(got, m.UserID)
			}
			if len(ms) < 3 {
				break
			}
			after = ms[len(ms)-1].UserID
		}
		if !slices.Equal(got, users) {
			t.Fatalf("paged members = %v, want %v", got, users)
		}
		all, err := s.MemberIDs(ctx, g.ID)
		must(t, err)
		if !slices.Equal(all, users) {
			t.Fatalf("MemberIDs = %v, want %v", all, users)
		}
	})

	t.Run("members of one group never leak into another", func(t *testing.T) {
		s := newStore(t)
		a, b := ids.New(), ids.New()
		g1, g2 := newGroup(a, 1), newGroup(b, 1)
		must(t, s.Save(ctx, g1, []group.Member{{UserID: a, Role: group.RoleOwner, JoinedAt: t0}}, nil))
		must(t, s.Save(ctx, g2, []group.Member{{UserID: b, Role: group.RoleOwner, JoinedAt: t0}}, nil))
		got, err := s.MemberIDs(ctx, g1.ID)
		must(t, err)
		if !slices.Equal(got, []string{a}) {
			t.Fatalf("members of g1 = %v", got)
		}
	})

	t.Run("upsert replaces a member and delete removes it from both views", func(t *testing.T) {
		s := newStore(t)
		owner, m1, m2 := ids.New(), ids.New(), ids.New()
		g := newGroup(owner, 3)
		must(t, s.Save(ctx, g, []group.Member{
			{UserID: owner, Role: group.RoleOwner, JoinedAt: t0},
			{UserID: m1, Role: group.RoleMember, JoinedAt: t0},
			{UserID: m2, Role: group.RoleMember, JoinedAt: t0},
		}, nil))
		g.MemberCount = 2
		g.Name = "renamed"
		g.Version = 1
		must(t, s.Save(ctx, g, []group.Member{{UserID: m1, Role: group.RoleAdmin, JoinedAt: t0, JoinedSeq: 5}}, []string{m2, ids.New()}))

		m, found, err := s.Member(ctx, g.ID, m1)
		must(t, err)
		if !found || m.Role != group.RoleAdmin || m.JoinedSeq != 5 {
			t.Fatalf("upserted member = %+v", m)
		}
		if _, found, err := s.Member(ctx, g.ID, m2); err != nil || found {
			t.Fatalf("deleted member still found (%v, %v)", found, err)
		}
		gs, err := s.GroupsOf(ctx, m2, "", 10)
		must(t, err)
		if len(gs) != 0 {
			t.Fatalf("groups of removed member = %v", gs)
		}
		gs, err = s.GroupsOf(ctx, m1, "", 10)
		must(t, err)
		if !slices.Equal(gs, []string{g.ID}) {
			t.Fatalf("groups of kept member = %v", gs)
		}
		got, _, err := s.Group(ctx, g.ID)
		must(t, err)
		if got.Name != "renamed" || got.MemberCount != 2 {
			t.Fatalf("group after save = %+v", got)
		}
	})

	t.Run("a user's groups page in group id order", func(t *testing.T) {
		s := newStore(t)
		u := ids.New()
		var want []string
		for i := 0; i < 5; i++ {
			g := newGroup(u, 1)
			must(t, s.Save(ctx, g, []group.Member{{UserID: u, Role: group.RoleOwner, JoinedAt: t0}}, nil))
			want = append(want, g.ID)
		}
		sort.Strings(want)
		first, err := s.GroupsOf(ctx, u, "", 2)
		must(t, err)
		rest, err := s.GroupsOf(ctx, u, first[len(first)-1], 10)
		must(t, err)
		if got := append(first, rest...); !slices.Equal(got, want) {
			t.Fatalf("groups = %v, want %v", got, want)
		}
	})

	t.Run("dissolution is kept on the record and members can all be removed at once", func(t *testing.T) {
		s := newStore(t)
		users := sortedIDs(4)
		g := newGroup(users[0], 4)
		var put []group.Member
		for _, u := range users {
			put = append(put, group.Member{UserID: u, Role: group.RoleMember, JoinedAt: t0})
		}
		must(t, s.Save(ctx, g, put, nil))
		at := t0.Add(time.Hour)
		g.DissolvedAt = &at
		g.MemberCount = 0
		g.Version = 1
		must(t, s.Save(ctx, g, nil, users))
		got, found, err := s.Group(ctx, g.ID)
		must(t, err)
		if !found || got.DissolvedAt == nil || !got.DissolvedAt.Equal(at) {
			t.Fatalf("dissolved group = %+v, found %v", got, found)
		}
		left, err := s.MemberIDs(ctx, g.ID)
		must(t, err)
		if len(left) != 0 {
			t.Fatalf("members after dissolution = %v", left)
		}
		for _, u := range users {
			gs, err := s.GroupsOf(ctx, u, "", 10)
			must(t, err)
			if len(gs) != 0 {
				t.Fatalf("groups of %s after dissolution = %v", u, gs)
			}
		}
	})

	t.Run("the version is 1 after create and grows by one with every change", func(t *testing.T) {
		s := newStore(t)
		owner, m1 := ids.New(), ids.New()
		g := newGroup(owner, 1)
		at := t0.Add(time.Hour)
		steps := []struct {
			name   string
			change func(g *group.Group) (put []group.Member, del []string)
		}{
			{"create", func(*group.Group) ([]group.Member, []string) {
				return []group.Member{{UserID: owner, Role: group.RoleOwner, JoinedAt: t0}}, nil
			}},
			{"rename", func(g *group.Group) ([]group.Member, []string) { g.Name = "renamed"; return nil, nil }},
			{"add a member", func(g *group.Group) ([]group.Member, []string) {
				g.MemberCount = 2
				return []group.Member{{UserID: m1, Role: group.RoleMember, JoinedAt: t0}}, nil
			}},
			{"change a member", func(*group.Group) ([]group.Member, []string) {
				return []group.Member{{UserID: m1, Role: group.RoleAdmin, JoinedAt: t0}}, nil
			}},
			{"remove a member", func(g *group.Group) ([]group.Member, []string) { g.MemberCount = 1; return nil, []string{m1} }},
			{"dissolve", func(g *group.Group) ([]group.Member, []string) {
				g.DissolvedAt, g.MemberCount = &at, 0
				return nil, []string{owner}
			}},
		}
		for i, step := range steps {
			put, del := step.change(&g)
			must(t, s.Save(ctx, g, put, del))
			got, found, err := s.Group(ctx, g.ID)
			must(t, err)
			if want := int64(i + 1); !found || got.Version != want {
				t.Fatalf("after %s: version %d (found %v), want %d", step.name, got.Version, found, want)
			}
			g.Version = got.Version
		}
	})

	// Sizes of a change: one member, and more than one Cassandra batch
	// carries (that backend records such a change before applying it).
	sizes := []struct {
		name string
		n    int
	}{{"small change", 1}, {"large change", 120}}
	newMembers := func(n int) []group.Member {
		out := make([]group.Member, n)
		for i := range out {
			out[i] = group.Member{UserID: ids.New(), Role: group.RoleMember, JoinedAt: t0}
		}
		return out
	}
	// wantState checks the stored group is want and its members are
	// exactly members, in both member views.
	wantState := func(t *testing.T, s group.Store, want group.Group, members []string) {
		t.Helper()
		got, found, err := s.Group(ctx, want.ID)
		must(t, err)
		if !found || got.Version != want.Version || got.Name != want.Name || got.MemberCount != want.MemberCount {
			t.Fatalf("group = %+v (found %v), want version %d name %q member_count %d", got, found, want.Version, want.Name, want.MemberCount)
		}
		ms, err := s.MemberIDs(ctx, want.ID)
		must(t, err)
		members = slices.Clone(members)
		sort.Strings(members)
		if !slices.Equal(ms, members) {
			t.Fatalf("members = %v, want %v", ms, members)
		}
		for _, u := range members {
			gs, err := s.GroupsOf(ctx, u, "", 10)
			must(t, err)
			if !slices.Equal(gs, []string{want.ID}) {
				t.Fatalf("groups of member %s = %v", u, gs)
			}
		}
	}

	for _, size := range sizes {
		t.Run("a save from a stale version fails with ErrConflict and changes nothing: "+size.name, func(t *testing.T) {
			s := newStore(t)
			owner, old := ids.New(), ids.New()
			g := newGroup(owner, 2)
			must(t, s.Save(ctx, g, []group.Member{
				{UserID: owner, Role: group.RoleOwner, JoinedAt: t0},
				{UserID: old, Role: group.RoleMember, JoinedAt: t0},
			}, nil))
			cur := g
			cur.Version, cur.Name = 1, "current"
			must(t, s.Save(ctx, cur, nil, nil))
			cur.Version = 2

			put := newMembers(size.n)
			for _, v := range []int64{0, 1, 3} {
				stale := g
				stale.Version, stale.Name, stale.MemberCount = v, "stale", 1+size.n
				err := s.Save(ctx, stale, put, []string{old})
				if !errors.Is(err, group.ErrConflict) {
					t.Fatalf("save from version %d over version 2: %v, want ErrConflict", v, err)
				}
			}
			wantState(t, s, cur, []string{owner, old})
			for _, m := range put {
				gs, err := s.GroupsOf(ctx, m.UserID, "", 10)
				must(t, err)
				if _, found, err := s.Member(ctx, g.ID, m.UserID); err != nil || found || len(gs) != 0 {
					t.Fatalf("member %s of a refused save: found %v, groups %v, err %v", m.UserID, found, gs, err)
				}
			}
		})

		t.Run("of concurrent saves from one version exactly one wins: "+size.name, func(t *testing.T) {
			s := newStore(t)
			owner := ids.New()
			g := newGroup(owner, 1)
			must(t, s.Save(ctx, g, []group.Member{{UserID: owner, Role: group.RoleOwner, JoinedAt: t0}}, nil))
			g.Version = 1

			const savers = 4
			puts := make([][]group.Member, savers)
			errc := make([]error, savers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range savers {
				puts[i] = newMembers(size.n)
				mine := g
				mine.Name, mine.MemberCount = fmt.Sprintf("saver %d", i), 1+size.n
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errc[i] = s.Save(ctx, mine, puts[i], nil)
				}()
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errc {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("savers %d and %d both won from version 1", winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, group.ErrConflict):
					t.Fatalf("saver %d: %v, want success or ErrConflict", i, err)
				}
			}
			if winner < 0 {
				t.Fatal("no saver won")
			}
			want := g
			want.Version, want.Name, want.MemberCount = 2, fmt.Sprintf("saver %d", winner), 1+size.n
			members := []string{owner}
			for _, m := range puts[winner] {
				members = append(members, m.UserID)
			}
			wantState(t, s, want, members)
			for i, put := range puts {
				if i == winner {
					continue
				}
				for _, m := range put {
					if gs, err := s.GroupsOf(ctx, m.UserID, "", 10); err != nil || len(gs) != 0 {
						t.Fatalf("member %s of losing saver %d: groups %v, err %v", m.UserID, i, gs, err)
					}
				}
			}
		})
	}

	t.Run("a canceled context fails instead of answering", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		owner := ids.New()
		if err := s.Save(cctx, newGroup(owner, 1), nil, nil); err == nil {
			t.Fatal("Save with a canceled context succeeded")
		}
		if _, _, err := s.Group(cctx, ids.New()); err == nil {
			t.Fatal("Group with a canceled context succeeded")
		}
	})
}

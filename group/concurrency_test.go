package group_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// Two services over one store stand for two processes of the distributed
// mode: their stripe locks know nothing of each other, so only the store's
// version check keeps one from overwriting the other's change.
type instances struct {
	svcs  [2]*group.Groups
	users *directory
	rec   *testinfra.Recorder
}

func twoInstances(t *testing.T, store group.Store) *instances {
	in := &instances{users: &directory{known: map[string]bool{}}, rec: &testinfra.Recorder{}}
	seqs := &seqs{last: map[string]int64{}}
	for i := range in.svcs {
		in.svcs[i] = newGroups(t, group.Deps{Store: store, Users: in.users, Seqs: seqs, Events: in.rec}, group.Options{})
	}
	return in
}

// hookStore runs before just ahead of the first Save that reaches it, so
// whatever before changes lands between that Save's load and its write.
type hookStore struct {
	group.Store
	mu               sync.Mutex
	before           func()
	saves, conflicts int
}

func (h *hookStore) Save(ctx context.Context, g group.Group, put []group.Member, del []string) error {
	h.mu.Lock()
	before := h.before
	h.before = nil
	h.mu.Unlock()
	if before != nil {
		before()
	}
	err := h.Store.Save(ctx, g, put, del)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.saves++
	if errors.Is(err, group.ErrConflict) {
		h.conflicts++
	}
	return err
}

// alwaysBehind refuses every Save, as if another instance always came
// first.
type alwaysBehind struct {
	group.Store
	mu    sync.Mutex
	saves int
}

func (a *alwaysBehind) Save(context.Context, group.Group, []group.Member, []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.saves++
	return group.ErrConflict
}

func TestAChangeThatLosesToAnotherInstanceIsRedoneFromTheNewState(t *testing.T) {
	for _, tc := range []struct {
		name string
		// other is the change instance b makes while a is about to save;
		// mine is a's; check sees both.
		other, mine func(t *testing.T, in *instances, c cast)
		check       func(t *testing.T, in *instances, c cast)
	}{
		{
			name: "two admins add different members",
			other: func(t *testing.T, in *instances, c cast) {
				_, err := in.svcs[1].AddMembers(ctx, c.admin, c.g.ID, []string{c.invite})
				must(t, err)
			},
			mine: func(t *testing.T, in *instances, c cast) {
				added, err := in.svcs[0].AddMembers(ctx, c.owner, c.g.ID, []string{c.outsider})
				must(t, err)
				if len(added) != 1 || added[0].UserID != c.outsider {
					t.Fatalf("added = %+v", added)
				}
			},
			check: func(t *testing.T, in *instances, c cast) {
				for _, u := range []string{c.invite, c.outsider} {
					_, err := in.svcs[0].Membership(ctx, c.g.ID, u)
					must(t, err)
				}
				g, err := in.svcs[0].GetGroup(ctx, c.owner, c.g.ID)
				must(t, err)
				if g.MemberCount != c.g.MemberCount+2 {
					t.Fatalf("member_count = %d, want %d", g.MemberCount, c.g.MemberCount+2)
				}
				want := []string{c.invite + ":joined", c.outsider + ":joined"}
				if got := actions(in.rec.Take()); !slices.Equal(got, want) {
					t.Fatalf("events = %v, want %v (one per change, none for the lost attempt)", got, want)
				}
			},
		},
		{
			name: "a mute and a role change of one member",
			other: func(t *testing.T, in *instances, c cast) {
				_, err := in.svcs[1].SetRole(ctx, c.owner, c.g.ID, c.member, group.RoleAdmin)
				must(t, err)
			},
			mine: func(t *testing.T, in *instances, c cast) {
				m, err := in.svcs[0].MuteMember(ctx, c.owner, c.g.ID, c.member, 3600)
				must(t, err)
				if m.Role != group.RoleAdmin || m.MutedUntil == nil {
					t.Fatalf("muted member = %+v, want the admin it became meanwhile", m)
				}
			},
			check: func(t *testing.T, in *instances, c cast) {
				m, err := in.svcs[0].Membership(ctx, c.g.ID, c.member)
				must(t, err)
				if m.Role != group.RoleAdmin || m.MutedUntil == nil {
					t.Fatalf("member = %+v, want admin and muted", m)
				}
			},
		},
		{
			name: "a rename and a group-wide mute",
			other: func(t *testing.T, in *instances, c cast) {
				name := "renamed"
				_, err := in.svcs[1].UpdateGroup(ctx, c.admin, c.g.ID, group.Update{Name: &name})
				must(t, err)
			},
			mine: func(t *testing.T, in *instances, c cast) {
				g, err := in.svcs[0].MuteAll(ctx, c.owner, c.g.ID, true)
				must(t, err)
				if g.Name != "renamed" || !g.MutedAll {
					t.Fatalf("group = %+v", g)
				}
			},
			check: func(t *testing.T, in *instances, c cast) {
				g, err := in.svcs[0].GetGroup(ctx, c.owner, c.g.ID)
				must(t, err)
				if g.Name != "renamed" || !g.MutedAll {
					t.Fatalf("group = %+v, want renamed and muted", g)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook := &hookStore{Store: openPebble(t)}
			in := twoInstances(t, hook)
			f := &fixture{svc: in.svcs[1], users: in.users, rec: in.rec}
			c := f.cast(t)
			hook.mu.Lock()
			hook.saves, hook.conflicts = 0, 0
			hook.before = func() { tc.other(t, in, c) }
			hook.mu.Unlock()
			tc.mine(t, in, c)
			tc.check(t, in, c)
			// a's first save, b's, a's second.
			if hook.saves != 3 || hook.conflicts != 1 {
				t.Fatalf("%d saves, %d conflicts; want 3 and 1", hook.saves, hook.conflicts)
			}
		})
	}
}

func TestAChangeThatKeepsLosingIsARetryableConflictAndChangesNothing(t *testing.T) {
	pebble := openPebble(t)
	users, sq := &directory{known: map[string]bool{}}, &seqs{last: map[string]int64{}}
	f := &fixture{svc: newGroups(t, group.Deps{Store: pebble, Users: users, Seqs: sq, Events: &testinfra.Recorder{}}, group.Options{}), users: users, rec: &testinfra.Recorder{}}
	c := f.cast(t)
	behind := &alwaysBehind{Store: pebble}
	rec := &testinfra.Recorder{}
	svc := newGroups(t, group.Deps{Store: behind, Users: users, Seqs: sq, Events: rec}, group.Options{})
	_, err := svc.AddMembers(ctx, c.owner, c.g.ID, []string{c.invite})
	if !errors.Is(err, group.ErrConcurrentChange) || !errs.HasCode(err, errs.Conflict) {
		t.Fatalf("got %v, want ErrConcurrentChange (conflict)", err)
	}
	if behind.saves != 5 {
		t.Fatalf("%d attempts, want 5", behind.saves)
	}
	if evs := rec.Take(); len(evs) != 0 {
		t.Fatalf("a change that never saved published %v", actions(evs))
	}
	if _, err := f.svc.Membership(ctx, c.g.ID, c.invite); !errs.HasCode(err, errs.PermissionDenied) {
		t.Fatalf("membership of the refused invite: %v, want permission_denied", err)
	}
}

func TestConcurrentChangesThroughTwoInstancesAllLand(t *testing.T) {
	concurrentChangesAllLand(t, openPebble(t))
}

// concurrentChangesAllLand makes conflicting changes of one group at once
// through two instances over store: every change must be there at the
// end. A call may answer ErrConcurrentChange when it lost every attempt
// (nothing changed); the caller then sends it again, as a client would.
func concurrentChangesAllLand(t *testing.T, backend group.Store) {
	// Counting only: how often a change had to be redone.
	store := &hookStore{Store: backend}
	var resent atomic.Int64
	t.Cleanup(func() {
		t.Logf("%d saves, %d lost to a concurrent change, %d calls sent again", store.saves, store.conflicts, resent.Load())
	})
	asAClient := func(call func() error) error {
		for n := 1; ; n++ {
			err := call()
			if !errors.Is(err, group.ErrConcurrentChange) || n == 10 {
				return err
			}
			resent.Add(1)
		}
	}
	t.Run("20 members added one by one through alternating instances", func(t *testing.T) {
		in := twoInstances(t, store)
		owner := in.users.newUser()
		g, err := in.svcs[0].CreateGroup(ctx, owner, group.CreateInput{Name: "race"})
		must(t, err)
		const n = 20
		users := make([]string, n)
		errc := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range users {
			users[i] = in.users.newUser()
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errc[i] = asAClient(func() error {
					_, err := in.svcs[i%2].AddMembers(ctx, owner, g.ID, []string{users[i]})
					return err
				})
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errc {
			if err != nil {
				t.Fatalf("adding user %d: %v", i, err)
			}
		}
		got, err := in.svcs[1].GetGroup(ctx, owner, g.ID)
		must(t, err)
		all, err := in.svcs[1].ListMemberIDs(ctx, g.ID)
		must(t, err)
		want := append([]string{owner}, users...)
		slices.Sort(want)
		if got.MemberCount != n+1 || !slices.Equal(all, want) {
			t.Fatalf("member_count %d, members %v; want %d: %v", got.MemberCount, all, n+1, want)
		}
		if evs := in.rec.Take(); len(evs) != n+1 {
			t.Fatalf("%d events, want one joined per member: %v", len(evs), actions(evs))
		}
	})

	t.Run("mutes and role changes of the same members through the two instances", func(t *testing.T) {
		in := twoInstances(t, store)
		owner := in.users.newUser()
		const n = 10
		users := make([]string, n)
		for i := range users {
			users[i] = in.users.newUser()
		}
		g, err := in.svcs[0].CreateGroup(ctx, owner, group.CreateInput{Name: "race", MemberIDs: users})
		must(t, err)
		errc := make([]error, 2*n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, u := range users {
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				errc[2*i] = asAClient(func() error {
					_, err := in.svcs[i%2].MuteMember(ctx, owner, g.ID, u, 3600)
					return err
				})
			}()
			go func() {
				defer wg.Done()
				<-start
				errc[2*i+1] = asAClient(func() error {
					_, err := in.svcs[(i+1)%2].SetRole(ctx, owner, g.ID, u, group.RoleAdmin)
					return err
				})
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errc {
			if err != nil {
				t.Fatalf("change %d: %v", i, err)
			}
		}
		for _, u := range users {
			m, err := in.svcs[0].Membership(ctx, g.ID, u)
			must(t, err)
			if m.Role != group.RoleAdmin || m.MutedUntil == nil {
				t.Fatalf("member %s = %+v, want admin and muted", u, m)
			}
		}
	})
}

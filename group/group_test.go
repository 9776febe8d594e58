package group_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// directory is the set of existing users.
type directory struct {
	mu    sync.Mutex
	known map[string]bool
}

func (d *directory) UserExists(_ context.Context, id string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.known[id], nil
}

func (d *directory) newUser() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := ids.New()
	d.known[id] = true
	return id
}

// seqs is a fake message service: the last seq of each conversation.
type seqs struct {
	mu   sync.Mutex
	last map[string]int64
}

func (s *seqs) LastSeq(_ context.Context, conv string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[conv], nil
}

func (s *seqs) set(conv string, n int64) { s.mu.Lock(); defer s.mu.Unlock(); s.last[conv] = n }

type fixture struct {
	svc   *group.Groups
	clk   *testinfra.Clock
	rec   *testinfra.Recorder
	users *directory
	seqs  *seqs
}

var ctx = context.Background()

func newFixture(t *testing.T, opts group.Options) *fixture {
	t.Helper()
	f := &fixture{
		clk:   testinfra.NewClock(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)),
		rec:   &testinfra.Recorder{},
		users: &directory{known: map[string]bool{}},
		seqs:  &seqs{last: map[string]int64{}},
	}
	opts.Now = f.clk.Now
	f.svc = newGroups(t, group.Deps{Store: openPebble(t), Users: f.users, Seqs: f.seqs, Events: f.rec}, opts)
	return f
}

func newGroups(t *testing.T, deps group.Deps, opts group.Options) *group.Groups {
	t.Helper()
	svc, err := group.New(deps, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	full := group.Deps{Store: openPebble(t), Users: &directory{known: map[string]bool{}}, Seqs: &seqs{last: map[string]int64{}}, Events: &testinfra.Recorder{}}
	for name, drop := range map[string]func(*group.Deps){
		"Deps.Store":  func(d *group.Deps) { d.Store = nil },
		"Deps.Users":  func(d *group.Deps) { d.Users = nil },
		"Deps.Seqs":   func(d *group.Deps) { d.Seqs = nil },
		"Deps.Events": func(d *group.Deps) { d.Events = nil },
	} {
		t.Run(name, func(t *testing.T) {
			deps := full
			drop(&deps)
			if _, err := group.New(deps, group.Options{}); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want one naming %s", err, name)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, code errs.Code) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("got %v, want success", err)
		}
		return
	}
	if !errs.HasCode(err, code) {
		t.Fatalf("got %v, want %s", err, code)
	}
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	if !errs.HasCode(err, errs.InvalidArgument) || errs.As(err).Field != field {
		t.Fatalf("got %v, want invalid_argument on %q", err, field)
	}
}

func actions(evs []events.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Type == events.GroupMembership {
			var c group.MembershipChange
			_ = json.Unmarshal(e.Data, &c)
			out = append(out, e.UserID+":"+c.Action)
		} else {
			out = append(out, e.Type+":"+e.GroupID)
		}
	}
	return out
}

// cast is a group with one user of each role, plus targets and an outsider.
type cast struct {
	g                                 group.Group
	owner, admin, member, outsider    string
	targetMember, targetAdmin, invite string
}

func (f *fixture) cast(t *testing.T) cast {
	t.Helper()
	c := cast{owner: f.users.newUser(), admin: f.users.newUser(), member: f.users.newUser(),
		outsider: f.users.newUser(), targetMember: f.users.newUser(), targetAdmin: f.users.newUser(), invite: f.users.newUser()}
	g, err := f.svc.CreateGroup(ctx, c.owner, group.CreateInput{Name: "hive", MemberIDs: []string{c.admin, c.member, c.targetMember, c.targetAdmin}})
	must(t, err)
	c.g = g
	_, err = f.svc.SetRole(ctx, c.owner, g.ID, c.admin, group.RoleAdmin)
	must(t, err)
	_, err = f.svc.SetRole(ctx, c.owner, g.ID, c.targetAdmin, group.RoleAdmin)
	must(t, err)
	f.rec.Take()
	return c
}

func TestCreateGroupMakesCallerOwnerAndInvitedMembers(t *testing.T) {
	f := newFixture(t, group.Options{})
	owner, a, b := f.users.newUser(), f.users.newUser(), f.users.newUser()
	g, err := f.svc.CreateGroup(ctx, owner, group.CreateInput{Name: "  Bees  ", Announcement: "welcome", MemberIDs: []string{a, b, a, owner}})
	must(t, err)
	if g.Name != "Bees" || g.OwnerID != owner || g.Announcement != "welcome" || g.MemberCount != 3 ||
		!g.CreatedAt.Equal(f.clk.Now()) || g.MutedAll || g.MembersCanInvite {
		t.Fatalf("group = %+v", g)
	}
	m, err := f.svc.Membership(ctx, g.ID, owner)
	must(t, err)
	if m.Role != group.RoleOwner || m.JoinedSeq != 0 {
		t.Fatalf("owner membership = %+v", m)
	}
	m, err = f.svc.Membership(ctx, g.ID, a)
	must(t, err)
	if m.Role != group.RoleMember {
		t.Fatalf("member membership = %+v", m)
	}
	got, err := f.svc.GetGroup(ctx, b, g.ID)
	must(t, err)
	if got.ID != g.ID || got.MemberCount != 3 {
		t.Fatalf("GetGroup = %+v", got)
	}
	want := []string{owner + ":joined", a + ":joined", b + ":joined"}
	if got := actions(f.rec.Take()); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	page, err := f.svc.ListMyGroups(ctx, a, "", 0)
	must(t, err)
	if len(page.Groups) != 1 || page.Groups[0].ID != g.ID || page.NextCursor != "" {
		t.Fatalf("ListMyGroups = %+v", page)
	}
}

func TestCreateGroupRefusesBadInputNamingTheField(t *testing.T) {
	f := newFixture(t, group.Options{MaxMembers: 3})
	owner, a, b, c := f.users.newUser(), f.users.newUser(), f.users.newUser(), f.users.newUser()
	ghost := ids.New()
	for _, tc := range []struct {
		name  string
		in    group.CreateInput
		code  errs.Code
		field string
	}{
		{"missing name", group.CreateInput{}, errs.InvalidArgument, "name"},
		{"blank name", group.CreateInput{Name: "   "}, errs.InvalidArgument, "name"},
		{"name too long", group.CreateInput{Name: strings.Repeat("b", group.MaxNameLen+1)}, errs.InvalidArgument, "name"},
		{"control character in name", group.CreateInput{Name: "a\x00b"}, errs.InvalidArgument, "name"},
		{"invalid UTF-8 name", group.CreateInput{Name: "a\xffb"}, errs.InvalidArgument, "name"},
		{"announcement too long", group.CreateInput{Name: "n", Announcement: strings.Repeat("x", group.MaxAnnouncementLen+1)}, errs.InvalidArgument, "announcement"},
		{"malformed member id", group.CreateInput{Name: "n", MemberIDs: []string{"not an id"}}, errs.InvalidArgument, "member_ids"},
		{"unknown member", group.CreateInput{Name: "n", MemberIDs: []string{a, ghost}}, errs.NotFound, "member_ids"},
		{"over the member limit", group.CreateInput{Name: "n", MemberIDs: []string{a, b, c}}, errs.Conflict, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.CreateGroup(ctx, owner, tc.in)
			wantCode(t, err, tc.code)
			if errs.As(err).Field != tc.field {
				t.Fatalf("field = %q, want %q (%v)", errs.As(err).Field, tc.field, err)
			}
		})
	}
	if evs := f.rec.Take(); len(evs) != 0 {
		t.Fatalf("refused creates published %v", actions(evs))
	}
	page, err := f.svc.ListMyGroups(ctx, owner, "", 0)
	must(t, err)
	if len(page.Groups) != 0 {
		t.Fatalf("refused creates left groups: %+v", page.Groups)
	}
}

func TestPermissionMatrix(t *testing.T) {
	type actor int
	const (
		owner actor = iota
		admin
		member
		outsider
	)
	roles := []string{"owner", "admin", "member", "outsider"}
	const (
		ok     = errs.Code("")
		denied = errs.PermissionDenied
	)
	type action struct {
		name string
		// setup runs as the owner before the action (optional).
		setup func(f *fixture, c cast)
		do    func(f *fixture, c cast, who string) error
		want  [4]errs.Code // owner, admin, member, outsider
	}
	matrix := []action{
		{name: "get group", do: func(f *fixture, c cast, who string) error {
			_, err := f.svc.GetGroup(ctx, who, c.g.ID)
			return err
		}, want: [4]errs.Code{ok, ok, ok, denied}},
		{name: "update name and announcement", do: func(f *fixture, c cast, who string) error {
			n, a := "renamed", "news"
			_, err := f.svc.UpdateGroup(ctx, who, c.g.ID, group.Update{Name: &n, Announcement: &a})
			return err
		}, want: [4]errs.Code{ok, ok, denied, denied}},
		{name: "dissolve", do: func(f *fixture, c cast, who string) error {
			return f.svc.DissolveGroup(ctx, who, c.g.ID)
		}, want: [4]errs.Code{ok, denied, denied, denied}},
		{name: "list members", do: func(f *fixture, c cast, who string) error {
			_, err := f.svc.ListMembers(ctx, who, c.g.ID, "", 0)
			return err
		}, want: [4]errs.Code{ok, ok, ok, denied}},
		{name: "add members when members may not invite", do: func(f *fixture, c cast, who string) error {
			_, err := f.svc.AddMembers(ctx, who, c.g.ID, []string{c.invite})
			return err
		}, want: [4]errs.Code{ok, ok, denied, denied}},
		{name: "add members when members may invite", setup: func(f *fixture, c cast) {
			yes := true
			if _, err := f.svc.UpdateGroup(ctx, c.owner, c.g.ID, group.Update{MembersCanInvite: &yes}); err != nil {
				panic(err)
			}
		}, do: func(f *fixture, c cast, who string) error {
			_, err := f.svc.AddMembers(ctx, who, c.g.ID, []string{c.invite})
			return err
		}, want: [4]errs.Code{ok, ok, ok, denied}},
		{name: "kick a member", do: func(f *fixture, c cast, who string) error {
			return f.svc.RemoveMember(ctx, who, c.g.ID, c.targetMember)
		}, want: [4]errs.Code{ok, ok, denied, denied}},
		{name: "kick an admin", do: func(f *fixture, c cast, who string) error {
			return f.svc.RemoveMember(ctx, who, c.g.ID, c.targetAdmin)
		}, want: [4]errs.Code{ok, denied, denied, denied}},
		{name: "kick the owner (or leave, for the owner)", do: func(f *fixture, c cast, who string) error {
			return f.svc.RemoveMember(ctx, who, c.g.ID, c.owner)
		}, want: [4]errs.Code{errs.Conflict, denied, denied, denied}},
		{name: "leave", do: func(f *fixture, c cast, who string) error {
			return f.svc.RemoveMember(ctx, who, c.g.ID, who)
		}, want: [4]errs.Code{errs.Conflict, ok, ok, denied}},
		{name: "promote a member to admin", do: func(f *fixture, c cast, who string) error {
			_, err := f.svc.SetRole(ctx, who, c.g.ID, c.targetMember, group.RoleAdmin)
			return err
		}, want: [4]errs.Code{ok, denied, denied, denied}},
		{name: "demote an admin", do: func(f *fixture, c cast, who string) error {
			_, err := f.svc.SetRole(ctx, who, c.g.ID, c.targetAdmin, group.RoleMember)
			return err
		}, want: [4]errs.Code{ok, denied, denied, denied}},
		{name: "transfer ownership", do: func(f *fixture, c cast, who string) error {
			_, err := f.svc.TransferOwnership(ctx, who, c.g.ID, c.targetMember)
			return err
		}, want: [4]errs.Code{ok, denied, denied, denied}},
		{name: "mute a member", do: func(f *fixture, c cast, who string) error {
			_, err := f.svc.MuteMember(ctx, who, c.g.ID, c.targetMember, 60)
			return err
		}, want: [4]errs.Code{ok, ok, denied, denied}},
		{name: "mute an admin", do: func(f *fixture, c cast, who string) error {
			_, err := f.svc.MuteMember(ctx, who, c.g.ID, c.targetAdmin, 60)
			return err
		}, want: [4]errs.Code{ok, denied, denied, denied}},
		{name: "mute the owner", do: func(f *fixture, c cast, who string) error {
			_, err := f.svc.MuteMember(ctx, who, c.g.ID, c.owner, 60)
			return err
		}, want: [4]errs.Code{denied, denied, denied, denied}},
		{name: "mute all", do: func(f *fixture, c cast, who string) error {
			_, err := f.svc.MuteAll(ctx, who, c.g.ID, true)
			return err
		}, want: [4]errs.Code{ok, ok, denied, denied}},
		{name: "post", do: func(f *fixture, c cast, who string) error {
			return f.svc.CanPost(ctx, who, c.g.ID)
		}, want: [4]errs.Code{ok, ok, ok, denied}},
		{name: "post while everyone is muted", setup: func(f *fixture, c cast) {
			if _, err := f.svc.MuteAll(ctx, c.owner, c.g.ID, true); err != nil {
				panic(err)
			}
		}, do: func(f *fixture, c cast, who string) error {
			return f.svc.CanPost(ctx, who, c.g.ID)
		}, want: [4]errs.Code{ok, ok, denied, denied}},
	}
	for _, a := range matrix {
		for who := owner; who <= outsider; who++ {
			t.Run(a.name+"/"+roles[who], func(t *testing.T) {
				f := newFixture(t, group.Options{})
				c := f.cast(t)
				if a.setup != nil {
					a.setup(f, c)
				}
				id := []string{c.owner, c.admin, c.member, c.outsider}[who]
				wantCode(t, a.do(f, c, id), a.want[who])
			})
		}
	}
}

func TestMuteExpiresOnTheInjectedClockAndZeroLiftsIt(t *testing.T) {
	f := newFixture(t, group.Options{})
	c := f.cast(t)
	start := f.clk.Now()
	m, err := f.svc.MuteMember(ctx, c.admin, c.g.ID, c.member, 60)
	must(t, err)
	until := start.Add(time.Minute)
	if m.MutedUntil == nil || !m.MutedUntil.Equal(until) {
		t.Fatalf("muted until %v, want %v", m.MutedUntil, until)
	}
	err = f.svc.CanPost(ctx, c.member, c.g.ID)
	wantCode(t, err, errs.PermissionDenied)
	if msg := errs.As(err).Message; !strings.Contains(msg, "muted") || !strings.Contains(msg, until.Format(time.RFC3339)) {
		t.Fatalf("message %q does not say muted until %s", msg, until.Format(time.RFC3339))
	}
	f.clk.Advance(59 * time.Second)
	wantCode(t, f.svc.CanPost(ctx, c.member, c.g.ID), errs.PermissionDenied)
	f.clk.Advance(time.Second)
	wantCode(t, f.svc.CanPost(ctx, c.member, c.g.ID), "")
	m, err = f.svc.Membership(ctx, c.g.ID, c.member)
	must(t, err)
	if m.MutedUntil != nil {
		t.Fatalf("expired mute still shown: %v", m.MutedUntil)
	}

	// A fresh mute is lifted early by seconds = 0.
	_, err = f.svc.MuteMember(ctx, c.owner, c.g.ID, c.member, 3600)
	must(t, err)
	wantCode(t, f.svc.CanPost(ctx, c.member, c.g.ID), errs.PermissionDenied)
	m, err = f.svc.MuteMember(ctx, c.owner, c.g.ID, c.member, 0)
	must(t, err)
	if m.MutedUntil != nil {
		t.Fatalf("lifted mute still set: %v", m.MutedUntil)
	}
	wantCode(t, f.svc.CanPost(ctx, c.member, c.g.ID), "")

	// The owner may mute an admin; the mute is shown while it runs.
	_, err = f.svc.MuteMember(ctx, c.owner, c.g.ID, c.admin, 10)
	must(t, err)
	wantCode(t, f.svc.CanPost(ctx, c.admin, c.g.ID), errs.PermissionDenied)
	page, err := f.svc.ListMembers(ctx, c.owner, c.g.ID, "", 0)
	must(t, err)
	for _, m := range page.Members {
		if (m.UserID == c.admin) != (m.MutedUntil != nil) {
			t.Fatalf("member %s muted_until %v", m.UserID, m.MutedUntil)
		}
	}

	for _, bad := range []int64{-1, group.MaxMuteSeconds + 1} {
		_, err := f.svc.MuteMember(ctx, c.owner, c.g.ID, c.member, bad)
		wantField(t, err, "seconds")
	}
}

func TestMuteAllSilencesMembersButNotAdminsOrOwner(t *testing.T) {
	f := newFixture(t, group.Options{})
	c := f.cast(t)
	g, err := f.svc.MuteAll(ctx, c.admin, c.g.ID, true)
	must(t, err)
	if !g.MutedAll {
		t.Fatal("muted_all not set")
	}
	err = f.svc.CanPost(ctx, c.member, c.g.ID)
	wantCode(t, err, errs.PermissionDenied)
	if !strings.Contains(errs.As(err).Message, "muted") {
		t.Fatalf("message %q does not say muted", errs.As(err).Message)
	}
	wantCode(t, f.svc.CanPost(ctx, c.admin, c.g.ID), "")
	wantCode(t, f.svc.CanPost(ctx, c.owner, c.g.ID), "")
	_, err = f.svc.MuteAll(ctx, c.owner, c.g.ID, false)
	must(t, err)
	wantCode(t, f.svc.CanPost(ctx, c.member, c.g.ID), "")
}

func TestOwnerLeavingIsAConflictUntilOwnershipIsTransferred(t *testing.T) {
	f := newFixture(t, group.Options{})
	c := f.cast(t)
	err := f.svc.RemoveMember(ctx, c.owner, c.g.ID, c.owner)
	wantCode(t, err, errs.Conflict)
	if !strings.Contains(errs.As(err).Message, "transfer") {
		t.Fatalf("message %q does not say to transfer first", errs.As(err).Message)
	}
	_, err = f.svc.TransferOwnership(ctx, c.owner, c.g.ID, c.outsider)
	wantCode(t, err, errs.NotFound)
	_, err = f.svc.TransferOwnership(ctx, c.owner, c.g.ID, c.owner)
	wantField(t, err, "user_id")

	g, err := f.svc.TransferOwnership(ctx, c.owner, c.g.ID, c.member)
	must(t, err)
	if g.OwnerID != c.member {
		t.Fatalf("owner = %s, want %s", g.OwnerID, c.member)
	}
	old, err := f.svc.Membership(ctx, c.g.ID, c.owner)
	must(t, err)
	neu, err := f.svc.Membership(ctx, c.g.ID, c.member)
	must(t, err)
	if old.Role != group.RoleAdmin || neu.Role != group.RoleOwner {
		t.Fatalf("roles after transfer: old owner %s, new owner %s", old.Role, neu.Role)
	}
	// The old owner is an admin now and may leave; the new owner may not.
	must(t, f.svc.RemoveMember(ctx, c.owner, c.g.ID, c.owner))
	wantCode(t, f.svc.RemoveMember(ctx, c.member, c.g.ID, c.member), errs.Conflict)
	want := []string{c.member + ":role", c.owner + ":role", c.owner + ":left"}
	if got := actions(f.rec.Take()); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	g, err = f.svc.GetGroup(ctx, c.member, c.g.ID)
	must(t, err)
	if g.MemberCount != 4 {
		t.Fatalf("member_count = %d, want 4", g.MemberCount)
	}
}

func TestKickedMemberCannotPostOrReadAndIsGoneFromLists(t *testing.T) {
	f := newFixture(t, group.Options{})
	c := f.cast(t)
	must(t, f.svc.RemoveMember(ctx, c.admin, c.g.ID, c.member))
	wantCode(t, f.svc.CanPost(ctx, c.member, c.g.ID), errs.PermissionDenied)
	_, err := f.svc.Membership(ctx, c.g.ID, c.member)
	wantCode(t, err, errs.PermissionDenied)
	_, err = f.svc.GetGroup(ctx, c.member, c.g.ID)
	wantCode(t, err, errs.PermissionDenied)
	all, err := f.svc.ListMemberIDs(ctx, c.g.ID)
	must(t, err)
	if slices.Contains(all, c.member) || len(all) != 4 {
		t.Fatalf("member ids = %v", all)
	}
	page, err := f.svc.ListMyGroups(ctx, c.member, "", 0)
	must(t, err)
	if len(page.Groups) != 0 {
		t.Fatalf("kicked member still lists %+v", page.Groups)
	}
	if got, want := actions(f.rec.Take()), []string{c.member + ":kicked"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	wantCode(t, f.svc.RemoveMember(ctx, c.admin, c.g.ID, c.member), errs.NotFound)
}

func TestJoinedSeqIsTheConversationsLastSeqAtJoin(t *testing.T) {
	f := newFixture(t, group.Options{})
	c := f.cast(t)
	conv := ids.Group(c.g.ID)
	f.seqs.set(conv, 17)
	added, err := f.svc.AddMembers(ctx, c.owner, c.g.ID, []string{c.invite, c.member})
	must(t, err)
	if len(added) != 1 || added[0].UserID != c.invite || added[0].JoinedSeq != 17 || added[0].Role != group.RoleMember {
		t.Fatalf("added = %+v (existing members must be skipped)", added)
	}
	m, err := f.svc.Membership(ctx, c.g.ID, c.invite)
	must(t, err)
	if m.JoinedSeq != 17 {
		t.Fatalf("joined_seq = %d, want 17", m.JoinedSeq)
	}
	must(t, f.svc.RemoveMember(ctx, c.invite, c.g.ID, c.invite))
	f.seqs.set(conv, 30)
	_, err = f.svc.AddMembers(ctx, c.admin, c.g.ID, []string{c.invite})
	must(t, err)
	m, err = f.svc.Membership(ctx, c.g.ID, c.invite)
	must(t, err)
	if m.JoinedSeq != 30 {
		t.Fatalf("joined_seq after rejoining = %d, want 30", m.JoinedSeq)
	}
	want := []string{c.invite + ":joined", c.invite + ":left", c.invite + ":joined"}
	if got := actions(f.rec.Take()); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	g, err := f.svc.GetGroup(ctx, c.owner, c.g.ID)
	must(t, err)
	if g.MemberCount != 6 {
		t.Fatalf("member_count = %d, want 6", g.MemberCount)
	}
}

func TestAddMembersRefusesUnknownUsersAndTheLimit(t *testing.T) {
	f := newFixture(t, group.Options{MaxMembers: 7})
	c := f.cast(t) // 5 members
	_, err := f.svc.AddMembers(ctx, c.owner, c.g.ID, []string{ids.New()})
	wantCode(t, err, errs.NotFound)
	if errs.As(err).Field != "user_ids" {
		t.Fatalf("field = %q", errs.As(err).Field)
	}
	_, err = f.svc.AddMembers(ctx, c.owner, c.g.ID, nil)
	wantField(t, err, "user_ids")
	_, err = f.svc.AddMembers(ctx, c.owner, c.g.ID, []string{"bad id"})
	wantField(t, err, "user_ids")
	_, err = f.svc.AddMembers(ctx, c.owner, c.g.ID, []string{f.users.newUser(), f.users.newUser(), f.users.newUser()})
	wantCode(t, err, errs.Conflict)
	_, err = f.svc.AddMembers(ctx, c.owner, c.g.ID, []string{f.users.newUser(), f.users.newUser()})
	must(t, err)
	if evs := f.rec.Take(); len(evs) != 2 {
		t.Fatalf("events = %v, want two joins", actions(evs))
	}
}

func TestDissolvedGroupIsNotFoundEverywhere(t *testing.T) {
	f := newFixture(t, group.Options{})
	c := f.cast(t)
	must(t, f.svc.DissolveGroup(ctx, c.owner, c.g.ID))
	wantCode(t, f.svc.CanPost(ctx, c.member, c.g.ID), errs.NotFound)
	_, err := f.svc.GetGroup(ctx, c.owner, c.g.ID)
	wantCode(t, err, errs.NotFound)
	_, err = f.svc.ListMemberIDs(ctx, c.g.ID)
	wantCode(t, err, errs.NotFound)
	_, err = f.svc.Membership(ctx, c.g.ID, c.owner)
	wantCode(t, err, errs.NotFound)
	wantCode(t, f.svc.DissolveGroup(ctx, c.owner, c.g.ID), errs.NotFound)
	page, err := f.svc.ListMyGroups(ctx, c.owner, "", 0)
	must(t, err)
	if len(page.Groups) != 0 {
		t.Fatalf("dissolved group still listed: %+v", page.Groups)
	}
	if got, want := actions(f.rec.Take()), []string{events.GroupDissolved + ":" + c.g.ID}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

func TestUnknownGroupIsNotFoundForEveryAction(t *testing.T) {
	f := newFixture(t, group.Options{})
	u, other := f.users.newUser(), f.users.newUser()
	gid := ids.New()
	name := "x"
	calls := map[string]func() error{
		"get":       func() error { _, err := f.svc.GetGroup(ctx, u, gid); return err },
		"update":    func() error { _, err := f.svc.UpdateGroup(ctx, u, gid, group.Update{Name: &name}); return err },
		"dissolve":  func() error { return f.svc.DissolveGroup(ctx, u, gid) },
		"members":   func() error { _, err := f.svc.ListMembers(ctx, u, gid, "", 0); return err },
		"add":       func() error { _, err := f.svc.AddMembers(ctx, u, gid, []string{other}); return err },
		"remove":    func() error { return f.svc.RemoveMember(ctx, u, gid, other) },
		"role":      func() error { _, err := f.svc.SetRole(ctx, u, gid, other, group.RoleAdmin); return err },
		"transfer":  func() error { _, err := f.svc.TransferOwnership(ctx, u, gid, other); return err },
		"mute":      func() error { _, err := f.svc.MuteMember(ctx, u, gid, other, 5); return err },
		"mute all":  func() error { _, err := f.svc.MuteAll(ctx, u, gid, true); return err },
		"can post":  func() error { return f.svc.CanPost(ctx, u, gid) },
		"member":    func() error { _, err := f.svc.Membership(ctx, gid, u); return err },
		"member id": func() error { _, err := f.svc.ListMemberIDs(ctx, gid); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) { wantCode(t, call(), errs.NotFound) })
	}
	_, err := f.svc.GetGroup(ctx, u, "bad id")
	wantField(t, err, "group_id")
}

func TestMembersPageWithCursorAndLimitBounds(t *testing.T) {
	f := newFixture(t, group.Options{})
	owner := f.users.newUser()
	var others []string
	for i := 0; i < 6; i++ {
		others = append(others, f.users.newUser())
	}
	g, err := f.svc.CreateGroup(ctx, owner, group.CreateInput{Name: "big", MemberIDs: others})
	must(t, err)
	var seen []string
	cursor := ""
	for pages := 1; ; pages++ {
		page, err := f.svc.ListMembers(ctx, owner, g.ID, cursor, 3)
		must(t, err)
		for _, m := range page.Members {
			seen = append(seen, m.UserID)
		}
		if page.NextCursor == "" {
			if pages != 3 || len(page.Members) != 1 {
				t.Fatalf("last page %d has %d members", pages, len(page.Members))
			}
			break
		}
		if len(page.Members) != 3 || pages > 3 {
			t.Fatalf("page %d = %+v", pages, page)
		}
		cursor = page.NextCursor
	}
	want := append([]string{owner}, others...)
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Fatalf("members = %v, want %v", seen, want)
	}
	page, err := f.svc.ListMembers(ctx, owner, g.ID, "", 0)
	must(t, err)
	if len(page.Members) != 7 || page.NextCursor != "" {
		t.Fatalf("default page = %d members, cursor %q", len(page.Members), page.NextCursor)
	}
	for _, bad := range []int{-1, group.MaxPageSize + 1} {
		_, err := f.svc.ListMembers(ctx, owner, g.ID, "", bad)
		wantField(t, err, "limit")
	}
	_, err = f.svc.ListMembers(ctx, owner, g.ID, "not/a/cursor", 3)
	wantField(t, err, "cursor")
}

func TestListMyGroupsPages(t *testing.T) {
	f := newFixture(t, group.Options{})
	u := f.users.newUser()
	var want []string
	for i := 0; i < 5; i++ {
		f.clk.Advance(time.Millisecond)
		g, err := f.svc.CreateGroup(ctx, u, group.CreateInput{Name: "g"})
		must(t, err)
		want = append(want, g.ID)
	}
	first, err := f.svc.ListMyGroups(ctx, u, "", 2)
	must(t, err)
	if len(first.Groups) != 2 || first.NextCursor == "" {
		t.Fatalf("first page = %+v", first)
	}
	rest, err := f.svc.ListMyGroups(ctx, u, first.NextCursor, 10)
	must(t, err)
	var got []string
	for _, g := range append(first.Groups, rest.Groups...) {
		got = append(got, g.ID)
	}
	if !slices.Equal(got, want) || rest.NextCursor != "" {
		t.Fatalf("groups = %v (cursor %q), want %v", got, rest.NextCursor, want)
	}
}

func TestUpdateGroupAndRoleInputChecks(t *testing.T) {
	f := newFixture(t, group.Options{})
	c := f.cast(t)
	_, err := f.svc.UpdateGroup(ctx, c.owner, c.g.ID, group.Update{})
	wantCode(t, err, errs.InvalidArgument)
	empty := " "
	_, err = f.svc.UpdateGroup(ctx, c.owner, c.g.ID, group.Update{Name: &empty})
	wantField(t, err, "name")
	name, no := "Renamed", true
	f.clk.Advance(time.Minute)
	g, err := f.svc.UpdateGroup(ctx, c.admin, c.g.ID, group.Update{Name: &name, MembersCanInvite: &no})
	must(t, err)
	if g.Name != "Renamed" || !g.MembersCanInvite || !g.UpdatedAt.Equal(f.clk.Now()) || g.CreatedAt.Equal(g.UpdatedAt) {
		t.Fatalf("updated group = %+v", g)
	}
	_, err = f.svc.SetRole(ctx, c.owner, c.g.ID, c.member, group.RoleOwner)
	wantField(t, err, "role")
	_, err = f.svc.SetRole(ctx, c.owner, c.g.ID, c.member, "")
	wantField(t, err, "role")
	_, err = f.svc.SetRole(ctx, c.owner, c.g.ID, c.owner, group.RoleMember)
	wantCode(t, err, errs.Conflict)
	_, err = f.svc.SetRole(ctx, c.owner, c.g.ID, c.outsider, group.RoleAdmin)
	wantCode(t, err, errs.NotFound)
	m, err := f.svc.SetRole(ctx, c.owner, c.g.ID, c.member, group.RoleAdmin)
	must(t, err)
	if m.Role != group.RoleAdmin {
		t.Fatalf("role = %s", m.Role)
	}
	if got, want := actions(f.rec.Take()), []string{c.member + ":role"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

func TestConcurrentJoinsKeepCountExactAndRespectTheLimit(t *testing.T) {
	f := newFixture(t, group.Options{MaxMembers: 10})
	owner := f.users.newUser()
	g, err := f.svc.CreateGroup(ctx, owner, group.CreateInput{Name: "race"})
	must(t, err)
	const n = 20
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		u := f.users.newUser()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.AddMembers(ctx, owner, g.ID, []string{u})
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	var okCount, full int
	for err := range errc {
		switch {
		case err == nil:
			okCount++
		case errs.HasCode(err, errs.Conflict):
			full++
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if okCount != 9 || full != n-9 {
		t.Fatalf("%d joins succeeded, %d refused; want 9 and %d", okCount, full, n-9)
	}
	got, err := f.svc.GetGroup(ctx, owner, g.ID)
	must(t, err)
	all, err := f.svc.ListMemberIDs(ctx, g.ID)
	must(t, err)
	if got.MemberCount != 10 || len(all) != 10 {
		t.Fatalf("member_count %d, members %d; want 10", got.MemberCount, len(all))
	}
}

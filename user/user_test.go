package user_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/password"
	"github.com/beehive-im/beehive/shared/testinfra"
	"github.com/beehive-im/beehive/user"
)

var t0 = time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)

func newService(t *testing.T, policy string) (*user.Users, *testinfra.Recorder) {
	t.Helper()
	rec := &testinfra.Recorder{}
	svc, err := user.New(user.Deps{Store: user.NewPebbleStore(testinfra.Pebble(t)), Events: rec}, user.Options{
		BcryptCost: 4, MessagePolicy: policy, Now: func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc, rec
}

func register(t *testing.T, svc user.Service, nick string) user.User {
	t.Helper()
	u, err := svc.Register(context.Background(), user.Registration{
		Nickname: nick, Email: ids.New() + "@example.com", Password: "correct horse",
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func wantErr(t *testing.T, err error, code errs.Code, field string) {
	t.Helper()
	e := errs.As(err)
	if err == nil || e.Code != code || e.Field != field {
		t.Fatalf("err = %v (field %q), want code %s field %q", err, errField(err), code, field)
	}
}

func errField(err error) string {
	if err == nil {
		return ""
	}
	return errs.As(err).Field
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesUnknownPolicy(t *testing.T) {
	if _, err := user.New(user.Deps{Store: user.NewPebbleStore(testinfra.Pebble(t)), Events: events.Nop{}}, user.Options{MessagePolicy: "strangers"}); err == nil {
		t.Fatal("New accepted an unknown message policy")
	}
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	store := user.NewPebbleStore(testinfra.Pebble(t))
	for want, deps := range map[string]user.Deps{
		"Deps.Store":  {Events: events.Nop{}},
		"Deps.Events": {Store: store},
	} {
		t.Run(want, func(t *testing.T) {
			if _, err := user.New(deps, user.Options{}); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want one naming %s", err, want)
			}
		})
	}
}

func TestRegisterValidatesEveryField(t *testing.T) {
	svc, _ := newService(t, "")
	good := user.Registration{Nickname: "Ann", Email: "ann@example.com", Password: "long enough"}
	cases := []struct {
		name  string
		edit  func(r *user.Registration)
		field string
	}{
		{"missing nickname", func(r *user.Registration) { r.Nickname = "  " }, "nickname"},
		{"nickname of 65 runes", func(r *user.Registration) { r.Nickname = strings.Repeat("é", 65) }, "nickname"},
		{"nickname with a control character", func(r *user.Registration) { r.Nickname = "a\x07b" }, "nickname"},
		{"nickname not UTF-8", func(r *user.Registration) { r.Nickname = "a\xffb" }, "nickname"},
		{"missing email", func(r *user.Registration) { r.Email = "" }, "email"},
		{"email without @", func(r *user.Registration) { r.Email = "ann.example.com" }, "email"},
		{"email with a display name", func(r *user.Registration) { r.Email = "Ann <ann@example.com>" }, "email"},
		{"email over 254 bytes", func(r *user.Registration) { r.Email = strings.Repeat("a", 245) + "@example.com" }, "email"},
		{"missing password", func(r *user.Registration) { r.Password = "" }, "password"},
		{"short password", func(r *user.Registration) { r.Password = "short" }, "password"},
		{"password over 72 bytes", func(r *user.Registration) { r.Password = strings.Repeat("p", 73) }, "password"},
		{"avatar over 1024 bytes", func(r *user.Registration) { r.Avatar = strings.Repeat("a", 1025) }, "avatar"},
		{"description of 513 runes", func(r *user.Registration) { r.Description = strings.Repeat("ü", 513) }, "description"},
		{"description not UTF-8", func(r *user.Registration) { r.Description = "\xc3" }, "description"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := good
			c.edit(&r)
			_, err := svc.Register(context.Background(), r)
			wantErr(t, err, errs.InvalidArgument, c.field)
		})
	}
	t.Run("limits themselves are accepted", func(t *testing.T) {
		r := good
		r.Email = ids.New() + "@example.com"
		r.Nickname = strings.Repeat("é", 64)
		r.Description = strings.Repeat("ü", 512)
		r.Avatar = strings.Repeat("a", 1024)
		if _, err := svc.Register(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRegisterStoresAHashNormalizedEmailAndPublishes(t *testing.T) {
	svc, rec := newService(t, "")
	ctx := context.Background()
	u, err := svc.Register(ctx, user.Registration{Nickname: " Ann ", Email: "  Ann@Example.COM ", Password: "long enough", Avatar: "https://img/a", Description: "hi"})
	must(t, err)
	if u.Nickname != "Ann" || u.Email != "ann@example.com" || !u.CreatedAt.Equal(t0) || !u.UpdatedAt.Equal(t0) || !ids.Valid(u.ID) {
		t.Fatalf("user = %+v", u)
	}
	a, err := svc.GetUserByID(ctx, u.ID)
	must(t, err)
	if a.PasswordHash == "long enough" || !password.Check(a.PasswordHash, "long enough") {
		t.Fatalf("stored hash %q does not check", a.PasswordHash)
	}
	got, err := svc.LookupByEmail(ctx, "ANN@example.com")
	must(t, err)
	if got.ID != u.ID {
		t.Fatalf("lookup = %+v", got)
	}
	evs := rec.OfType(events.UserRegistered)
	if len(evs) != 1 || evs[0].UserID != u.ID {
		t.Fatalf("events = %+v", evs)
	}
	var data user.Registered
	must(t, json.Unmarshal(evs[0].Data, &data))
	if data.UserID != u.ID || data.Nickname != "Ann" {
		t.Fatalf("event data = %+v", data)
	}
}

func TestDuplicateEmailIsRefusedCaseInsensitively(t *testing.T) {
	svc, _ := newService(t, "")
	ctx := context.Background()
	_, err := svc.Register(ctx, user.Registration{Nickname: "A", Email: "dup@example.com", Password: "long enough"})
	must(t, err)
	_, err = svc.Register(ctx, user.Registration{Nickname: "B", Email: " DUP@Example.com", Password: "long enough"})
	wantErr(t, err, errs.AlreadyExists, "")
}

func TestConcurrentRegistrationsOfOneEmailCreateOneAccount(t *testing.T) {
	svc, _ := newService(t, "")
	const n = 6
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = svc.Register(context.Background(), user.Registration{Nickname: "N", Email: "race@example.com", Password: "long enough"})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range results {
		if err == nil {
			ok++
		} else if !errs.HasCode(err, errs.AlreadyExists) {
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d registrations succeeded, want 1", ok)
	}
}

func TestEmailIsShownOnlyToTheUserThemself(t *testing.T) {
	svc, _ := newService(t, "")
	ctx := context.Background()
	ann, bob := register(t, svc, "ann"), register(t, svc, "bob")
	me, err := svc.GetUser(ctx, ann.ID, "")
	must(t, err)
	if me.Email != ann.Email || me.ID != ann.ID {
		t.Fatalf("me = %+v", me)
	}
	other, err := svc.GetUser(ctx, bob.ID, ann.ID)
	must(t, err)
	if other.Email != "" || other.Nickname != "ann" {
		t.Fatalf("other's view = %+v", other)
	}
	raw, _ := json.Marshal(other)
	if strings.Contains(string(raw), "email") {
		t.Fatalf("public JSON carries email: %s", raw)
	}
	_, err = svc.GetUser(ctx, ann.ID, ids.New())
	wantErr(t, err, errs.NotFound, "")
	_, err = svc.GetUser(ctx, "", "")
	wantErr(t, err, errs.InvalidArgument, "user_id")
}

func TestUpdateUserChangesOnlyTheGivenFields(t *testing.T) {
	svc, _ := newService(t, "")
	ctx := context.Background()
	u, err := svc.Register(ctx, user.Registration{Nickname: "ann", Email: ids.New() + "@example.com", Password: "long enough", Avatar: "a1", Description: "d1"})
	must(t, err)
	str := func(s string) *string { return &s }
	got, err := svc.UpdateUser(ctx, u.ID, user.ProfileUpdate{Description: str("d2")})
	must(t, err)
	if got.Nickname != "ann" || got.Avatar != "a1" || got.Description != "d2" || got.Email != u.Email {
		t.Fatalf("updated = %+v", got)
	}
	got, err = svc.UpdateUser(ctx, u.ID, user.ProfileUpdate{Nickname: str(" Anna "), Avatar: str("")})
	must(t, err)
	if got.Nickname != "Anna" || got.Avatar != "" || got.Description != "d2" {
		t.Fatalf("updated = %+v", got)
	}
	again, err := svc.GetUser(ctx, u.ID, u.ID)
	must(t, err)
	if again.Nickname != "Anna" || again.Description != "d2" {
		t.Fatalf("stored = %+v", again)
	}
	for _, c := range []struct {
		in    user.ProfileUpdate
		field string
	}{
		{user.ProfileUpdate{Nickname: str("")}, "nickname"},
		{user.ProfileUpdate{Avatar: str(strings.Repeat("x", 1025))}, "avatar"},
		{user.ProfileUpdate{Description: str(strings.Repeat("x", 513))}, "description"},
	} {
		_, err := svc.UpdateUser(ctx, u.ID, c.in)
		wantErr(t, err, errs.InvalidArgument, c.field)
	}
}

func TestSetPasswordHashAcceptsOnlyBcryptHashes(t *testing.T) {
	svc, _ := newService(t, "")
	ctx := context.Background()
	u := register(t, svc, "ann")
	wantErr(t, svc.SetPasswordHash(ctx, u.ID, ""), errs.InvalidArgument, "password_hash")
	wantErr(t, svc.SetPasswordHash(ctx, u.ID, "plaintext"), errs.InvalidArgument, "password_hash")
	wantErr(t, svc.SetPasswordHash(ctx, ids.New(), "$2a$04$x"), errs.NotFound, "")
	h, err := password.Hash("new password", 4)
	must(t, err)
	must(t, svc.SetPasswordHash(ctx, u.ID, h))
	a, err := svc.GetUserByID(ctx, u.ID)
	must(t, err)
	if !password.Check(a.PasswordHash, "new password") {
		t.Fatal("new hash not stored")
	}
}

func TestSendFriendRequestRules(t *testing.T) {
	ctx := context.Background()
	type world struct {
		svc      *user.Users
		ann, bob user.User
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, w world)
		to    func(w world) string
		code  errs.Code
		field string
	}{
		{"to self", nil, func(w world) string { return w.ann.ID }, errs.InvalidArgument, "user_id"},
		{"to a malformed id", nil, func(world) string { return "not an id!" }, errs.InvalidArgument, "user_id"},
		{"to an unknown user", nil, func(world) string { return ids.New() }, errs.NotFound, ""},
		{"when I blocked them", func(t *testing.T, w world) {
			_, err := w.svc.Block(ctx, w.ann.ID, w.bob.ID)
			must(t, err)
		}, func(w world) string { return w.bob.ID }, errs.PermissionDenied, ""},
		{"when they blocked me", func(t *testing.T, w world) {
			_, err := w.svc.Block(ctx, w.bob.ID, w.ann.ID)
			must(t, err)
		}, func(w world) string { return w.bob.ID }, errs.PermissionDenied, ""},
		{"when already friends", func(t *testing.T, w world) {
			r, err := w.svc.SendFriendRequest(ctx, w.ann.ID, w.bob.ID, "")
			must(t, err)
			_, err = w.svc.AcceptFriendRequest(ctx, w.bob.ID, r.ID)
			must(t, err)
		}, func(w world) string { return w.bob.ID }, errs.Conflict, ""},
		{"twice while pending", func(t *testing.T, w world) {
			_, err := w.svc.SendFriendRequest(ctx, w.ann.ID, w.bob.ID, "")
			must(t, err)
		}, func(w world) string { return w.bob.ID }, errs.AlreadyExists, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc, _ := newService(t, "")
			w := world{svc: svc, ann: register(t, svc, "ann"), bob: register(t, svc, "bob")}
			if c.setup != nil {
				c.setup(t, w)
			}
			_, err := svc.SendFriendRequest(ctx, w.ann.ID, c.to(w), "hello")
			wantErr(t, err, c.code, c.field)
		})
	}
	t.Run("message over 512 runes", func(t *testing.T) {
		svc, _ := newService(t, "")
		a, b := register(t, svc, "a"), register(t, svc, "b")
		_, err := svc.SendFriendRequest(ctx, a.ID, b.ID, strings.Repeat("m", 513))
		wantErr(t, err, errs.InvalidArgument, "message")
	})
}

func TestOppositePendingRequestIsAcceptedInsteadOfDuplicated(t *testing.T) {
	svc, rec := newService(t, "")
	ctx := context.Background()
	ann, bob := register(t, svc, "ann"), register(t, svc, "bob")
	first, err := svc.SendFriendRequest(ctx, ann.ID, bob.ID, "hi bob")
	must(t, err)
	got, err := svc.SendFriendRequest(ctx, bob.ID, ann.ID, "hi ann")
	must(t, err)
	if got.ID != first.ID || got.State != user.StateAccepted {
		t.Fatalf("reverse send = %+v, want request %s accepted", got, first.ID)
	}
	ids1, err := svc.ListFriendIDs(ctx, ann.ID)
	must(t, err)
	if len(ids1) != 1 || ids1[0] != bob.ID {
		t.Fatalf("ann's friends = %v", ids1)
	}
	reqs, err := svc.ListFriendRequests(ctx, bob.ID)
	must(t, err)
	if len(reqs.Incoming) != 1 || len(reqs.Outgoing) != 0 {
		t.Fatalf("bob's requests = %+v (a second request was created)", reqs)
	}
	if n := len(rec.OfType(events.FriendAdded)); n != 2 {
		t.Fatalf("%d friend_added events, want one per side", n)
	}
}

func TestOnlyTheAddresseeAnswersARequest(t *testing.T) {
	svc, rec := newService(t, "")
	ctx := context.Background()
	ann, bob, eve := register(t, svc, "ann"), register(t, svc, "bob"), register(t, svc, "eve")
	r, err := svc.SendFriendRequest(ctx, ann.ID, bob.ID, "hi")
	must(t, err)
	if r.State != user.StatePending || r.FromUserID != ann.ID || r.ToUserID != bob.ID || r.Message != "hi" || !r.CreatedAt.Equal(t0) {
		t.Fatalf("request = %+v", r)
	}
	_, err = svc.AcceptFriendRequest(ctx, ann.ID, r.ID)
	wantErr(t, err, errs.PermissionDenied, "")
	_, err = svc.AcceptFriendRequest(ctx, eve.ID, r.ID)
	wantErr(t, err, errs.NotFound, "")
	_, err = svc.DeclineFriendRequest(ctx, eve.ID, r.ID)
	wantErr(t, err, errs.NotFound, "")
	_, err = svc.AcceptFriendRequest(ctx, bob.ID, "bad id!")
	wantErr(t, err, errs.InvalidArgument, "request_id")

	got, err := svc.AcceptFriendRequest(ctx, bob.ID, r.ID)
	must(t, err)
	if got.State != user.StateAccepted {
		t.Fatalf("state %q", got.State)
	}
	_, err = svc.DeclineFriendRequest(ctx, bob.ID, r.ID)
	wantErr(t, err, errs.Conflict, "")

	evs := rec.OfType(events.FriendAdded)
	if len(evs) != 2 {
		t.Fatalf("friend_added events = %+v", evs)
	}
	var c user.FriendChange
	must(t, json.Unmarshal(evs[0].Data, &c))
	if evs[0].UserID != c.UserID || (c.UserID != ann.ID && c.UserID != bob.ID) || c.UserID == c.FriendID {
		t.Fatalf("event %+v data %+v", evs[0], c)
	}
}

func TestDeclineLeavesNoFriendshipAndListsTheRequest(t *testing.T) {
	svc, rec := newService(t, "")
	ctx := context.Background()
	ann, bob := register(t, svc, "ann"), register(t, svc, "bob")
	r, err := svc.SendFriendRequest(ctx, ann.ID, bob.ID, "")
	must(t, err)
	got, err := svc.DeclineFriendRequest(ctx, bob.ID, r.ID)
	must(t, err)
	if got.State != user.StateDeclined {
		t.Fatalf("state %q", got.State)
	}
	fs, err := svc.ListFriendIDs(ctx, ann.ID)
	must(t, err)
	if len(fs) != 0 {
		t.Fatalf("friends after decline = %v", fs)
	}
	reqs, err := svc.ListFriendRequests(ctx, ann.ID)
	must(t, err)
	if len(reqs.Outgoing) != 1 || reqs.Outgoing[0].State != user.StateDeclined || len(reqs.Incoming) != 0 {
		t.Fatalf("ann's requests = %+v", reqs)
	}
	if len(rec.OfType(events.FriendAdded)) != 0 {
		t.Fatal("decline published friend_added")
	}
}

// befriend makes a and b friends.
func befriend(t *testing.T, svc user.Service, a, b string) {
	t.Helper()
	r, err := svc.SendFriendRequest(context.Background(), a, b, "")
	must(t, err)
	_, err = svc.AcceptFriendRequest(context.Background(), b, r.ID)
	must(t, err)
}

func TestFriendsPageWithProfilesAndCursor(t *testing.T) {
	svc, _ := newService(t, "")
	ctx := context.Background()
	me := register(t, svc, "me")
	for i := range 3 {
		f := register(t, svc, "friend"+string(rune('a'+i)))
		befriend(t, svc, me.ID, f.ID)
	}
	p1, err := svc.ListFriends(ctx, me.ID, user.Page{Limit: 2})
	must(t, err)
	if len(p1.Friends) != 2 || p1.NextCursor == "" {
		t.Fatalf("page 1 = %+v", p1)
	}
	for _, f := range p1.Friends {
		if f.Email != "" || f.Nickname == "" || !f.Since.Equal(t0) {
			t.Fatalf("friend entry = %+v", f)
		}
	}
	p2, err := svc.ListFriends(ctx, me.ID, user.Page{Cursor: p1.NextCursor, Limit: 2})
	must(t, err)
	if len(p2.Friends) != 1 || p2.NextCursor != "" || p2.Friends[0].ID <= p1.Friends[1].ID {
		t.Fatalf("page 2 = %+v", p2)
	}
	_, err = svc.ListFriends(ctx, me.ID, user.Page{Cursor: "bad cursor!"})
	wantErr(t, err, errs.InvalidArgument, "cursor")
	_, err = svc.ListFriends(ctx, me.ID, user.Page{Limit: -1})
	wantErr(t, err, errs.InvalidArgument, "limit")
}

func TestRemoveFriendEndsItForBothAndPublishes(t *testing.T) {
	svc, rec := newService(t, "")
	ctx := context.Background()
	ann, bob := register(t, svc, "ann"), register(t, svc, "bob")
	befriend(t, svc, ann.ID, bob.ID)
	must(t, svc.RemoveFriend(ctx, bob.ID, ann.ID))
	for _, u := range []string{ann.ID, bob.ID} {
		fs, err := svc.ListFriendIDs(ctx, u)
		must(t, err)
		if len(fs) != 0 {
			t.Fatalf("friends of %s = %v", u, fs)
		}
	}
	wantErr(t, svc.RemoveFriend(ctx, bob.ID, ann.ID), errs.NotFound, "")
	if n := len(rec.OfType(events.FriendRemoved)); n != 2 {
		t.Fatalf("%d friend_removed events, want 2", n)
	}
}

func TestBlockRemovesFriendshipAndPendingRequests(t *testing.T) {
	svc, rec := newService(t, "")
	ctx := context.Background()
	ann, bob, cat := register(t, svc, "ann"), register(t, svc, "bob"), register(t, svc, "cat")
	befriend(t, svc, ann.ID, bob.ID)
	r, err := svc.SendFriendRequest(ctx, cat.ID, ann.ID, "")
	must(t, err)

	b, err := svc.Block(ctx, ann.ID, bob.ID)
	must(t, err)
	if b.UserID != bob.ID || !b.CreatedAt.Equal(t0) {
		t.Fatalf("block = %+v", b)
	}
	_, err = svc.Block(ctx, ann.ID, cat.ID)
	must(t, err)

	fs, err := svc.ListFriendIDs(ctx, bob.ID)
	must(t, err)
	if len(fs) != 0 {
		t.Fatalf("bob still has friends %v", fs)
	}
	reqs, err := svc.ListFriendRequests(ctx, ann.ID)
	must(t, err)
	if len(reqs.Incoming) != 0 {
		t.Fatalf("pending request survived the block: %+v", reqs.Incoming)
	}
	_, err = svc.AcceptFriendRequest(ctx, ann.ID, r.ID)
	wantErr(t, err, errs.NotFound, "")

	page, err := svc.ListBlocks(ctx, ann.ID, user.Page{Limit: 1})
	must(t, err)
	if len(page.Blocks) != 1 || page.NextCursor == "" {
		t.Fatalf("blocks page 1 = %+v", page)
	}
	page, err = svc.ListBlocks(ctx, ann.ID, user.Page{Cursor: page.NextCursor})
	must(t, err)
	if len(page.Blocks) != 1 || page.NextCursor != "" {
		t.Fatalf("blocks page 2 = %+v", page)
	}

	if n := len(rec.OfType(events.UserBlocked)); n != 2 {
		t.Fatalf("%d user_blocked events, want 2", n)
	}
	if n := len(rec.OfType(events.FriendRemoved)); n != 2 {
		t.Fatalf("%d friend_removed events, want 2 (only ann-bob were friends)", n)
	}

	_, err = svc.Block(ctx, ann.ID, ann.ID)
	wantErr(t, err, errs.InvalidArgument, "user_id")
	_, err = svc.Block(ctx, ann.ID, ids.New())
	wantErr(t, err, errs.NotFound, "")

	must(t, svc.Unblock(ctx, ann.ID, bob.ID))
	must(t, svc.Unblock(ctx, ann.ID, bob.ID))
	_, err = svc.SendFriendRequest(ctx, bob.ID, ann.ID, "again")
	must(t, err)
}

func TestCanMessageFollowsPolicyAndBlocks(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		policy   string
		friends  bool
		block    string // "", "from", "to"
		want     bool
		selfSend bool
	}{
		{policy: user.PolicyAnyone, want: true},
		{policy: user.PolicyAnyone, friends: true, want: true},
		{policy: user.PolicyAnyone, block: "from", want: false},
		{policy: user.PolicyAnyone, block: "to", want: false},
		{policy: user.PolicyFriends, want: false},
		{policy: user.PolicyFriends, friends: true, want: true},
		{policy: user.PolicyFriends, friends: true, block: "to", want: false},
		{policy: user.PolicyFriends, selfSend: true, want: true},
	}
	for _, c := range cases {
		name := c.policy
		if c.friends {
			name += "/friends"
		}
		if c.block != "" {
			name += "/blocked-by-" + c.block
		}
		if c.selfSend {
			name += "/self"
		}
		t.Run(name, func(t *testing.T) {
			svc, _ := newService(t, c.policy)
			from, to := register(t, svc, "from"), register(t, svc, "to")
			if c.friends {
				befriend(t, svc, from.ID, to.ID)
			}
			switch c.block {
			case "from":
				_, err := svc.Block(ctx, from.ID, to.ID)
				must(t, err)
			case "to":
				_, err := svc.Block(ctx, to.ID, from.ID)
				must(t, err)
			}
			target := to.ID
			if c.selfSend {
				target = from.ID
			}
			got, err := svc.CanMessage(ctx, from.ID, target)
			must(t, err)
			if got != c.want {
				t.Fatalf("CanMessage = %v, want %v", got, c.want)
			}
		})
	}
	t.Run("unknown recipient is not_found, malformed ids name the field", func(t *testing.T) {
		svc, _ := newService(t, "")
		u := register(t, svc, "u")
		_, err := svc.CanMessage(ctx, u.ID, ids.New())
		wantErr(t, err, errs.NotFound, "")
		_, err = svc.CanMessage(ctx, "", u.ID)
		wantErr(t, err, errs.InvalidArgument, "from_user_id")
		_, err = svc.CanMessage(ctx, u.ID, "x/y")
		wantErr(t, err, errs.InvalidArgument, "to_user_id")
	})
}

func TestListFriendIDsCoversMoreThanOneStorePage(t *testing.T) {
	svc, _ := newService(t, "")
	ctx := context.Background()
	me := register(t, svc, "me")
	want := map[string]bool{}
	for range user.MaxPageSize + 3 {
		f := register(t, svc, "f")
		befriend(t, svc, f.ID, me.ID)
		want[f.ID] = true
	}
	got, err := svc.ListFriendIDs(ctx, me.ID)
	must(t, err)
	if len(got) != len(want) {
		t.Fatalf("%d friend ids, want %d", len(got), len(want))
	}
	for _, id := range got {
		if !want[id] {
			t.Fatalf("unexpected friend %s", id)
		}
	}
}

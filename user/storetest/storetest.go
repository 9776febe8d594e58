// Package storetest is the contract every user.Store passes: the Pebble
// backend runs it in unit tests, the Cassandra backend in integration
// tests, unchanged. Every test uses fresh ids and emails, so one shared
// store is fine.
package storetest

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/user"
)

// Run runs the contract against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) user.Store) {
	ctx := context.Background()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	wantCode := func(t *testing.T, err error, code errs.Code) {
		t.Helper()
		if !errs.HasCode(err, code) {
			t.Fatalf("err = %v, want code %s", err, code)
		}
	}
	account := func() user.Account {
		id := ids.New()
		return user.Account{User: user.User{
			ID: id, Nickname: "n-" + id, Email: id + "@example.com", Avatar: "https://a/" + id,
			Description: "d", CreatedAt: t0, UpdatedAt: t0,
		}, PasswordHash: "$2a$04$hash-" + id}
	}
	create := func(t *testing.T, s user.Store) user.Account {
		t.Helper()
		a := account()
		must(t, s.CreateUser(ctx, a))
		return a
	}
	request := func(from, to string, at time.Time) user.FriendRequest {
		return user.FriendRequest{ID: ids.NewAt(at), FromUserID: from, ToUserID: to, Message: "hi", State: user.StatePending, CreatedAt: at}
	}
	sameAccount := func(t *testing.T, got, want user.Account) {
		t.Helper()
		if got.ID != want.ID || got.Nickname != want.Nickname || got.Email != want.Email || got.Avatar != want.Avatar ||
			got.Description != want.Description || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) ||
			got.PasswordHash != want.PasswordHash {
			t.Fatalf("account = %+v, want %+v", got, want)
		}
	}

	t.Run("created user reads back by id and by email", func(t *testing.T) {
		s := newStore(t)
		a := create(t, s)
		got, err := s.GetUser(ctx, a.ID)
		must(t, err)
		sameAccount(t, got, a)
		got, err = s.GetUserByEmail(ctx, a.Email)
		must(t, err)
		sameAccount(t, got, a)
	})

	t.Run("unknown user and email are not_found", func(t *testing.T) {
		s := newStore(t)
		_, err := s.GetUser(ctx, ids.New())
		wantCode(t, err, errs.NotFound)
		_, err = s.GetUserByEmail(ctx, ids.New()+"@example.com")
		wantCode(t, err, errs.NotFound)
		wantCode(t, s.UpdateProfile(ctx, user.User{ID: ids.New(), Nickname: "x"}), errs.NotFound)
		wantCode(t, s.SetPasswordHash(ctx, ids.New(), "$2a$x", t0), errs.NotFound)
	})

	t.Run("taken email is already_exists and the first account stays", func(t *testing.T) {
		s := newStore(t)
		a := create(t, s)
		b := account()
		b.Email = a.Email
		wantCode(t, s.CreateUser(ctx, b), errs.AlreadyExists)
		_, err := s.GetUser(ctx, b.ID)
		wantCode(t, err, errs.NotFound)
		got, err := s.GetUserByEmail(ctx, a.Email)
		must(t, err)
		sameAccount(t, got, a)
	})

	t.Run("concurrent creates with one email: exactly one wins", func(t *testing.T) {
		s := newStore(t)
		email := ids.New() + "@example.com"
		const n = 8
		var wg sync.WaitGroup
		results := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := account()
				a.Email = email
				results[i] = s.CreateUser(ctx, a)
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range results {
			switch {
			case err == nil:
				wins++
			case !errs.HasCode(err, errs.AlreadyExists):
				t.Fatalf("unexpected error %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d creates succeeded, want 1", wins)
		}
	})

	t.Run("profile update and password change keep the rest", func(t *testing.T) {
		s := newStore(t)
		a := create(t, s)
		u := a.User
		u.Nickname, u.Avatar, u.Description, u.UpdatedAt = "new", "", "about", t0.Add(time.Hour)
		u.Email = "ignored@example.com"
		must(t, s.UpdateProfile(ctx, u))
		must(t, s.SetPasswordHash(ctx, a.ID, "$2a$04$other", t0.Add(2*time.Hour)))
		got, err := s.GetUser(ctx, a.ID)
		must(t, err)
		want := a
		want.Nickname, want.Avatar, want.Description, want.UpdatedAt = "new", "", "about", t0.Add(2*time.Hour)
		want.PasswordHash = "$2a$04$other"
		sameAccount(t, got, want)
	})

	t.Run("a pending request is unique per direction", func(t *testing.T) {
		s := newStore(t)
		a, b := create(t, s), create(t, s)
		r := request(a.ID, b.ID, t0)
		must(t, s.CreateFriendRequest(ctx, r))
		got, err := s.GetFriendRequest(ctx, r.ID)
		must(t, err)
		if got.FromUserID != a.ID || got.ToUserID != b.ID || got.State != user.StatePending || got.Message != "hi" || !got.CreatedAt.Equal(t0) {
			t.Fatalf("request = %+v", got)
		}
		p, ok, err := s.PendingRequest(ctx, a.ID, b.ID)
		must(t, err)
		if !ok || p.ID != r.ID {
			t.Fatalf("pending = %+v %v", p, ok)
		}
		if _, ok, _ := s.PendingRequest(ctx, b.ID, a.ID); ok {
			t.Fatal("pending in the opposite direction")
		}
		wantCode(t, s.CreateFriendRequest(ctx, request(a.ID, b.ID, t0.Add(time.Second))), errs.AlreadyExists)
		_, err = s.GetFriendRequest(ctx, ids.New())
		wantCode(t, err, errs.NotFound)
	})

	t.Run("accepting makes both sides friends once and settles the reverse request", func(t *testing.T) {
		s := newStore(t)
		a, b := create(t, s), create(t, s)
		r1 := request(a.ID, b.ID, t0)
		r2 := request(b.ID, a.ID, t0.Add(time.Second))
		must(t, s.CreateFriendRequest(ctx, r1))
		must(t, s.CreateFriendRequest(ctx, r2))
		at := t0.Add(time.Minute)
		got, err := s.ResolveFriendRequest(ctx, r1.ID, user.StateAccepted, at)
		must(t, err)
		if got.State != user.StateAccepted || got.ID != r1.ID {
			t.Fatalf("resolved = %+v", got)
		}
		for _, p := range [][2]string{{a.ID, b.ID}, {b.ID, a.ID}} {
			since, ok, err := s.Friendship(ctx, p[0], p[1])
			must(t, err)
			if !ok || !since.Equal(at) {
				t.Fatalf("friendship %v = %v %v", p, since, ok)
			}
			if _, ok, _ := s.PendingRequest(ctx, p[0], p[1]); ok {
				t.Fatalf("request %v still pending", p)
			}
		}
		rev, err := s.GetFriendRequest(ctx, r2.ID)
		must(t, err)
		if rev.State != user.StateAccepted {
			t.Fatalf("reverse request state %q", rev.State)
		}
		_, err = s.ResolveFriendRequest(ctx, r1.ID, user.StateDeclined, at)
		wantCode(t, err, errs.Conflict)
		_, err = s.ResolveFriendRequest(ctx, r2.ID, user.StateAccepted, at)
		wantCode(t, err, errs.Conflict)
		_, err = s.ResolveFriendRequest(ctx, ids.New(), user.StateAccepted, at)
		wantCode(t, err, errs.NotFound)
	})

	t.Run("declining leaves no friendship and allows a new request", func(t *testing.T) {
		s := newStore(t)
		a, b := create(t, s), create(t, s)
		r := request(a.ID, b.ID, t0)
		must(t, s.CreateFriendRequest(ctx, r))
		got, err := s.ResolveFriendRequest(ctx, r.ID, user.StateDeclined, t0)
		must(t, err)
		if got.State != user.StateDeclined {
			t.Fatalf("state %q", got.State)
		}
		if _, ok, _ := s.Friendship(ctx, a.ID, b.ID); ok {
			t.Fatal("declined request made friends")
		}
		must(t, s.CreateFriendRequest(ctx, request(a.ID, b.ID, t0.Add(time.Second))))
	})

	t.Run("requests list incoming and outgoing newest first", func(t *testing.T) {
		s := newStore(t)
		me, x, y, z := create(t, s), create(t, s), create(t, s), create(t, s)
		in1 := request(x.ID, me.ID, t0)
		in2 := request(y.ID, me.ID, t0.Add(time.Second))
		out1 := request(me.ID, z.ID, t0.Add(2*time.Second))
		for _, r := range []user.FriendRequest{in1, in2, out1} {
			must(t, s.CreateFriendRequest(ctx, r))
		}
		_, err := s.ResolveFriendRequest(ctx, in1.ID, user.StateDeclined, t0)
		must(t, err)
		in, out, err := s.ListFriendRequests(ctx, me.ID, 10)
		must(t, err)
		if len(in) != 2 || in[0].ID != in2.ID || in[1].ID != in1.ID || in[1].State != user.StateDeclined {
			t.Fatalf("incoming = %+v", in)
		}
		if len(out) != 1 || out[0].ID != out1.ID {
			t.Fatalf("outgoing = %+v", out)
		}
		in, _, err = s.ListFriendRequests(ctx, me.ID, 1)
		must(t, err)
		if len(in) != 1 || in[0].ID != in2.ID {
			t.Fatalf("limited incoming = %+v", in)
		}
	})

	befriend := func(t *testing.T, s user.Store, a, b string, at time.Time) {
		t.Helper()
		r := request(a, b, at)
		must(t, s.CreateFriendRequest(ctx, r))
		_, err := s.ResolveFriendRequest(ctx, r.ID, user.StateAccepted, at)
		must(t, err)
	}

	t.Run("friends page in id order after the cursor", func(t *testing.T) {
		s := newStore(t)
		me := create(t, s)
		var fids []string
		for i := range 5 {
			f := create(t, s)
			befriend(t, s, me.ID, f.ID, t0.Add(time.Duration(i)*time.Second))
			fids = append(fids, f.ID)
		}
		sort.Strings(fids)
		page, err := s.ListFriends(ctx, me.ID, "", 2)
		must(t, err)
		if len(page) != 2 || page[0].FriendID != fids[0] || page[1].FriendID != fids[1] {
			t.Fatalf("page 1 = %+v, want %v", page, fids[:2])
		}
		page, err = s.ListFriends(ctx, me.ID, fids[1], 10)
		must(t, err)
		if len(page) != 3 || page[0].FriendID != fids[2] || page[2].FriendID != fids[4] {
			t.Fatalf("page 2 = %+v, want %v", page, fids[2:])
		}
		page, err = s.ListFriends(ctx, me.ID, fids[4], 10)
		must(t, err)
		if len(page) != 0 {
			t.Fatalf("past the end = %+v", page)
		}
	})

	t.Run("removing a friendship removes both sides once", func(t *testing.T) {
		s := newStore(t)
		a, b := create(t, s), create(t, s)
		befriend(t, s, a.ID, b.ID, t0)
		ok, err := s.RemoveFriendship(ctx, b.ID, a.ID)
		must(t, err)
		if !ok {
			t.Fatal("removed = false")
		}
		for _, p := range [][2]string{{a.ID, b.ID}, {b.ID, a.ID}} {
			if _, ok, _ := s.Friendship(ctx, p[0], p[1]); ok {
				t.Fatalf("friendship %v remains", p)
			}
		}
		if ok, _ := s.RemoveFriendship(ctx, a.ID, b.ID); ok {
			t.Fatal("second remove reported a friendship")
		}
	})

	t.Run("a block ends the friendship and drops pending requests both ways", func(t *testing.T) {
		s := newStore(t)
		a, b, c := create(t, s), create(t, s), create(t, s)
		befriend(t, s, a.ID, b.ID, t0)
		rac := request(a.ID, c.ID, t0)
		rca := request(c.ID, a.ID, t0.Add(time.Second))
		must(t, s.CreateFriendRequest(ctx, rac))
		must(t, s.CreateFriendRequest(ctx, rca))

		blk, unfriended, err := s.PutBlock(ctx, a.ID, b.ID, t0.Add(time.Minute))
		must(t, err)
		if !unfriended || blk.UserID != b.ID || !blk.CreatedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("block = %+v unfriended %v", blk, unfriended)
		}
		if _, ok, _ := s.Friendship(ctx, b.ID, a.ID); ok {
			t.Fatal("friendship survived the block")
		}
		_, unfriended, err = s.PutBlock(ctx, c.ID, a.ID, t0)
		must(t, err)
		if unfriended {
			t.Fatal("unfriended strangers")
		}
		for _, p := range [][2]string{{a.ID, c.ID}, {c.ID, a.ID}} {
			if _, ok, _ := s.PendingRequest(ctx, p[0], p[1]); ok {
				t.Fatalf("request %v still pending after block", p)
			}
		}
		in, out, err := s.ListFriendRequests(ctx, a.ID, 10)
		must(t, err)
		for _, r := range append(in, out...) {
			if r.State == user.StatePending {
				t.Fatalf("pending request listed after block: %+v", r)
			}
		}
		ok, err := s.Blocked(ctx, a.ID, b.ID)
		must(t, err)
		if !ok {
			t.Fatal("Blocked(a, b) = false")
		}
		if ok, _ := s.Blocked(ctx, b.ID, a.ID); ok {
			t.Fatal("a block is one-directional")
		}
	})

	t.Run("blocking again keeps the first time; unblocking reports once", func(t *testing.T) {
		s := newStore(t)
		a, b := create(t, s), create(t, s)
		_, _, err := s.PutBlock(ctx, a.ID, b.ID, t0)
		must(t, err)
		blk, _, err := s.PutBlock(ctx, a.ID, b.ID, t0.Add(time.Hour))
		must(t, err)
		if !blk.CreatedAt.Equal(t0) {
			t.Fatalf("created_at = %v, want %v", blk.CreatedAt, t0)
		}
		ok, err := s.DeleteBlock(ctx, a.ID, b.ID)
		must(t, err)
		if !ok {
			t.Fatal("delete reported no block")
		}
		if ok, _ := s.DeleteBlock(ctx, a.ID, b.ID); ok {
			t.Fatal("second delete reported a block")
		}
		if ok, _ := s.Blocked(ctx, a.ID, b.ID); ok {
			t.Fatal("still blocked")
		}
	})

	t.Run("blocks page in id order after the cursor", func(t *testing.T) {
		s := newStore(t)
		me := create(t, s)
		var bids []string
		for range 3 {
			b := create(t, s)
			_, _, err := s.PutBlock(ctx, me.ID, b.ID, t0)
			must(t, err)
			bids = append(bids, b.ID)
		}
		sort.Strings(bids)
		page, err := s.ListBlocks(ctx, me.ID, "", 2)
		must(t, err)
		if len(page) != 2 || page[0].UserID != bids[0] || page[1].UserID != bids[1] || !page[0].CreatedAt.Equal(t0) {
			t.Fatalf("page 1 = %+v", page)
		}
		page, err = s.ListBlocks(ctx, me.ID, bids[1], 2)
		must(t, err)
		if len(page) != 1 || page[0].UserID != bids[2] {
			t.Fatalf("page 2 = %+v", page)
		}
	})
}

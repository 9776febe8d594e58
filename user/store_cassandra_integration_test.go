//go:build integration

package user_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
	"github.com/beehive-im/beehive/user"
	"github.com/beehive-im/beehive/user/storetest"
)

func TestCassandraStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) user.Store { return user.NewCassandraStore(testinfra.CassandraSession(t)) })
}

func newAccount(t0 time.Time) user.Account {
	id := ids.New()
	return user.Account{User: user.User{ID: id, Nickname: "n", Email: id + "@example.com", CreatedAt: t0, UpdatedAt: t0},
		PasswordHash: "$2a$04$h"}
}

// A claim whose row is missing or settled (left by a crash between the
// claim and its row, or between a resolve and the claim's release) does
// not lock the email or the direction forever.
func TestCassandraStoreTakesOverStaleClaims(t *testing.T) {
	ctx := context.Background()
	sess := testinfra.CassandraSession(t)
	s := user.NewCassandraStore(sess)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	a := newAccount(t0)
	if err := sess.Query(`INSERT INTO users_by_email (email, user_id) VALUES (?, ?) IF NOT EXISTS`, a.Email, ids.New()).Exec(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUserByEmail(ctx, a.Email); !errs.HasCode(err, errs.NotFound) {
		t.Fatalf("email with a stale claim: err %v, want not_found", err)
	}
	if err := s.CreateUser(ctx, a); err != nil {
		t.Fatalf("create over a stale email claim: %v", err)
	}
	if got, err := s.GetUserByEmail(ctx, a.Email); err != nil || got.ID != a.ID {
		t.Fatalf("by email = %+v, %v", got, err)
	}

	b := newAccount(t0)
	if err := s.CreateUser(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, stale := range []string{ids.New(), "declined"} {
		holder := stale
		if stale == "declined" {
			r := user.FriendRequest{ID: ids.New(), FromUserID: a.ID, ToUserID: b.ID, State: user.StatePending, CreatedAt: t0}
			if err := s.CreateFriendRequest(ctx, r); err != nil {
				t.Fatal(err)
			}
			// Declined without its claim released.
			if err := sess.Query(`UPDATE friend_requests SET state = 'declined' WHERE request_id = ?`, r.ID).Exec(); err != nil {
				t.Fatal(err)
			}
			holder = r.ID
		} else if err := sess.Query(`INSERT INTO friend_requests_pending (from_user_id, to_user_id, request_id) VALUES (?, ?, ?) IF NOT EXISTS`, a.ID, b.ID, holder).Exec(); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.PendingRequest(ctx, a.ID, b.ID); err != nil || ok {
			t.Fatalf("stale claim %s reads as pending (%v, %v)", holder, ok, err)
		}
		r := user.FriendRequest{ID: ids.New(), FromUserID: a.ID, ToUserID: b.ID, State: user.StatePending, CreatedAt: t0}
		if err := s.CreateFriendRequest(ctx, r); err != nil {
			t.Fatalf("request over a stale claim (%s): %v", stale, err)
		}
		if p, ok, err := s.PendingRequest(ctx, a.ID, b.ID); err != nil || !ok || p.ID != r.ID {
			t.Fatalf("pending = %+v %v %v, want %s", p, ok, err, r.ID)
		}
		if _, err := s.ResolveFriendRequest(ctx, r.ID, user.StateDeclined, t0); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCassandraStoreConcurrentRequestsOneDirectionOneWins(t *testing.T) {
	ctx := context.Background()
	s := user.NewCassandraStore(testinfra.CassandraSession(t))
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	a, b := newAccount(t0), newAccount(t0)
	for _, u := range []user.Account{a, b} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	const n = 8
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.CreateFriendRequest(ctx, user.FriendRequest{ID: ids.New(), FromUserID: a.ID, ToUserID: b.ID, State: user.StatePending, CreatedAt: t0})
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
		t.Fatalf("%d requests created, want 1", wins)
	}
	// The losers took their rows back.
	in, _, err := s.ListFriendRequests(ctx, b.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 1 || in[0].State != user.StatePending {
		t.Fatalf("incoming = %+v, want the one winner", in)
	}
}

// Accepting a request while the addressee blocks the sender never leaves
// a friendship beside the block, whichever wins.
func TestCassandraStoreAcceptRacingBlockLeavesNoFriendship(t *testing.T) {
	ctx := context.Background()
	s := user.NewCassandraStore(testinfra.CassandraSession(t))
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for range 15 {
		a, b := newAccount(t0), newAccount(t0)
		for _, u := range []user.Account{a, b} {
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		r := user.FriendRequest{ID: ids.New(), FromUserID: a.ID, ToUserID: b.ID, State: user.StatePending, CreatedAt: t0}
		if err := s.CreateFriendRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var acceptErr, blockErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, acceptErr = s.ResolveFriendRequest(ctx, r.ID, user.StateAccepted, t0)
		}()
		go func() {
			defer wg.Done()
			_, _, blockErr = s.PutBlock(ctx, b.ID, a.ID, t0)
		}()
		wg.Wait()
		if blockErr != nil {
			t.Fatal(blockErr)
		}
		if acceptErr != nil && !errs.HasCode(acceptErr, errs.NotFound) && !errs.HasCode(acceptErr, errs.Conflict) {
			t.Fatalf("accept: %v", acceptErr)
		}
		for _, p := range [][2]string{{a.ID, b.ID}, {b.ID, a.ID}} {
			if _, ok, err := s.Friendship(ctx, p[0], p[1]); err != nil || ok {
				t.Fatalf("friendship %v beside a block (%v, %v); accept err %v", p, ok, err, acceptErr)
			}
			if _, ok, err := s.PendingRequest(ctx, p[0], p[1]); err != nil || ok {
				t.Fatalf("pending request %v beside a block (%v, %v)", p, ok, err)
			}
		}
	}
}

func TestCassandraStoreErrorsAreCoded(t *testing.T) {
	sess := testinfra.CassandraSession(t)
	s := user.NewCassandraStore(sess)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.GetUser(cctx, ids.New()); !errs.HasCode(err, errs.Canceled) {
		t.Fatalf("canceled context: %v, want canceled", err)
	}
	sess.Close()
	if _, err := s.GetUser(context.Background(), ids.New()); !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("closed session: %v, want unavailable", err)
	}
	if err := s.CreateUser(context.Background(), newAccount(time.Now())); !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("closed session: %v, want unavailable", err)
	}
}

package user

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/password"
)

// Options configure the service.
type Options struct {
	// PasswordMinLength in characters (default 8).
	PasswordMinLength int
	// BcryptCost of new password hashes (default 10).
	BcryptCost int
	// MessagePolicy is PolicyAnyone (default) or PolicyFriends.
	MessagePolicy string
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger log.Logger
}

// Deps are the user service's collaborators; all are required.
type Deps struct {
	// Store keeps users, relations and settings.
	Store Store
	// Events receives user events (events.Nop{} to drop them).
	Events events.Publisher
}

// Users implements Service over a Store.
type Users struct {
	store  Store
	pub    events.Publisher
	opts   Options
	logger log.Logger
}

var _ Service = (*Users)(nil)

// New returns the user service. It fails when a dependency is missing or
// on an unknown message policy.
func New(deps Deps, opts Options) (*Users, error) {
	switch {
	case deps.Store == nil:
		return nil, errors.New("user: Deps.Store is nil")
	case deps.Events == nil:
		return nil, errors.New("user: Deps.Events is nil")
	}
	if opts.PasswordMinLength <= 0 {
		opts.PasswordMinLength = 8
	}
	if opts.BcryptCost <= 0 {
		opts.BcryptCost = 10
	}
	switch opts.MessagePolicy {
	case "":
		opts.MessagePolicy = PolicyAnyone
	case PolicyAnyone, PolicyFriends:
	default:
		return nil, fmt.Errorf("user: unknown message policy %q (want %q or %q)", opts.MessagePolicy, PolicyAnyone, PolicyFriends)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	return &Users{store: deps.Store, pub: deps.Events, opts: opts, logger: opts.Logger}, nil
}

// now is millisecond precision, which every backend keeps exactly.
func (s *Users) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

func (s *Users) publish(ctx context.Context, typ, userID string, data any, at time.Time) {
	raw, _ := json.Marshal(data)
	if err := s.pub.Publish(ctx, events.Event{Type: typ, UserID: userID, Data: raw, At: at}); err != nil {
		_ = level.Warn(s.logger).Log("msg", "publish event failed", "type", typ, "userId", userID, "err", err)
	}
}

func (s *Users) Register(ctx context.Context, in Registration) (User, error) {
	nick := strings.TrimSpace(in.Nickname)
	email := NormalizeEmail(in.Email)
	if err := ValidateNickname(nick); err != nil {
		return User{}, err
	}
	if err := ValidateEmail(email); err != nil {
		return User{}, err
	}
	if err := password.Validate("password", in.Password, s.opts.PasswordMinLength); err != nil {
		return User{}, err
	}
	if err := ValidateAvatar(in.Avatar); err != nil {
		return User{}, err
	}
	if err := ValidateDescription(in.Description); err != nil {
		return User{}, err
	}
	// A cheap early answer for the common duplicate; the store's atomic
	// claim below is what guarantees uniqueness.
	if _, err := s.store.GetUserByEmail(ctx, email); err == nil {
		return User{}, ErrEmailTaken
	} else if !errs.HasCode(err, errs.NotFound) {
		return User{}, err
	}
	hash, err := password.Hash(in.Password, s.opts.BcryptCost)
	if err != nil {
		return User{}, err
	}
	now := s.now()
	a := Account{User: User{
		ID: ids.NewAt(now), Nickname: nick, Email: email, Avatar: in.Avatar,
		Description: in.Description, CreatedAt: now, UpdatedAt: now,
	}, PasswordHash: hash}
	if err := s.store.CreateUser(ctx, a); err != nil {
		return User{}, err
	}
	s.publish(ctx, events.UserRegistered, a.ID, Registered{UserID: a.ID, Nickname: a.Nickname}, now)
	return a.User, nil
}

func (s *Users) GetUser(ctx context.Context, viewerID, userID string) (User, error) {
	if userID == "" {
		userID = viewerID
	}
	if err := ids.Validate("user_id", userID); err != nil {
		return User{}, err
	}
	a, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return User{}, err
	}
	if viewerID != userID {
		return a.Public(), nil
	}
	return a.User, nil
}

func (s *Users) UpdateUser(ctx context.Context, userID string, in ProfileUpdate) (User, error) {
	if err := ids.Validate("user_id", userID); err != nil {
		return User{}, err
	}
	if in.Nickname != nil {
		n := strings.TrimSpace(*in.Nickname)
		if err := ValidateNickname(n); err != nil {
			return User{}, err
		}
		in.Nickname = &n
	}
	if in.Avatar != nil {
		if err := ValidateAvatar(*in.Avatar); err != nil {
			return User{}, err
		}
	}
	if in.Description != nil {
		if err := ValidateDescription(*in.Description); err != nil {
			return User{}, err
		}
	}
	a, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return User{}, err
	}
	if in.Nickname == nil && in.Avatar == nil && in.Description == nil {
		return a.User, nil
	}
	u := a.User
	if in.Nickname != nil {
		u.Nickname = *in.Nickname
	}
	if in.Avatar != nil {
		u.Avatar = *in.Avatar
	}
	if in.Description != nil {
		u.Description = *in.Description
	}
	u.UpdatedAt = s.now()
	if err := s.store.UpdateProfile(ctx, u); err != nil {
		return User{}, err
	}
	return u, nil
}

func (s *Users) GetUserByID(ctx context.Context, userID string) (Account, error) {
	if err := ids.Validate("user_id", userID); err != nil {
		return Account{}, err
	}
	return s.store.GetUser(ctx, userID)
}

func (s *Users) LookupByEmail(ctx context.Context, email string) (Account, error) {
	email = NormalizeEmail(email)
	if err := ValidateEmail(email); err != nil {
		return Account{}, err
	}
	return s.store.GetUserByEmail(ctx, email)
}

func (s *Users) SetPasswordHash(ctx context.Context, userID, hash string) error {
	if err := ids.Validate("user_id", userID); err != nil {
		return err
	}
	switch {
	case hash == "":
		return errs.Missing("password_hash")
	case len(hash) > maxPasswordHashBytes:
		return errs.Invalid("password_hash", "is too long")
	case !strings.HasPrefix(hash, "$2"):
		// Only bcrypt hashes from shared/password: a plain password stored
		// here by mistake would be a silent disaster.
		return errs.Invalid("password_hash", "is not a bcrypt hash")
	}
	return s.store.SetPasswordHash(ctx, userID, hash, s.now())
}

// pair validates the acting user and the other user of a relation.
func pair(userID, otherID string) error {
	if err := ids.Validate("user_id", userID); err != nil {
		return err
	}
	return ids.Validate("user_id", otherID)
}

// blockedEither reports whether a blocks b or b blocks a, and which.
func (s *Users) blockedEither(ctx context.Context, a, b string) (aBlocksB, bBlocksA bool, err error) {
	if aBlocksB, err = s.store.Blocked(ctx, a, b); err != nil {
		return false, false, err
	}
	if bBlocksA, err = s.store.Blocked(ctx, b, a); err != nil {
		return false, false, err
	}
	return aBlocksB, bBlocksA, nil
}

func (s *Users) SendFriendRequest(ctx context.Context, fromID, toID, message string) (FriendRequest, error) {
	if err := pair(fromID, toID); err != nil {
		return FriendRequest{}, err
	}
	if fromID == toID {
		return FriendRequest{}, ErrSelfFriend
	}
	if err := ValidateRequestMessage(message); err != nil {
		return FriendRequest{}, err
	}
	if _, err := s.store.GetUser(ctx, toID); err != nil {
		return FriendRequest{}, err
	}
	mine, theirs, err := s.blockedEither(ctx, fromID, toID)
	switch {
	case err != nil:
		return FriendRequest{}, err
	case mine:
		return FriendRequest{}, ErrBlockedByYou
	case theirs:
		return FriendRequest{}, ErrBlocked
	}
	if _, friends, err := s.store.Friendship(ctx, fromID, toID); err != nil {
		return FriendRequest{}, err
	} else if friends {
		return FriendRequest{}, ErrAlreadyFriends
	}
	if rev, ok, err := s.store.PendingRequest(ctx, toID, fromID); err != nil {
		return FriendRequest{}, err
	} else if ok {
		r, err := s.resolve(ctx, rev.ID, StateAccepted)
		// Lost a race with the addressee answering it: fall through and
		// create a request of our own.
		if !errs.HasCode(err, errs.Conflict) && !errs.HasCode(err, errs.NotFound) {
			return r, err
		}
	}
	now := s.now()
	r := FriendRequest{ID: ids.NewAt(now), FromUserID: fromID, ToUserID: toID, Message: message, State: StatePending, CreatedAt: now}
	if err := s.store.CreateFriendRequest(ctx, r); err != nil {
		return FriendRequest{}, err
	}
	return r, nil
}

func (s *Users) resolve(ctx context.Context, requestID, state string) (FriendRequest, error) {
	now := s.now()
	r, err := s.store.ResolveFriendRequest(ctx, requestID, state, now)
	if err != nil {
		return FriendRequest{}, err
	}
	if state == StateAccepted {
		s.publish(ctx, events.FriendAdded, r.FromUserID, FriendChange{UserID: r.FromUserID, FriendID: r.ToUserID}, now)
		s.publish(ctx, events.FriendAdded, r.ToUserID, FriendChange{UserID: r.ToUserID, FriendID: r.FromUserID}, now)
	}
	return r, nil
}

func (s *Users) answer(ctx context.Context, userID, requestID, state string) (FriendRequest, error) {
	if err := ids.Validate("user_id", userID); err != nil {
		return FriendRequest{}, err
	}
	if err := ids.Validate("request_id", requestID); err != nil {
		return FriendRequest{}, err
	}
	r, err := s.store.GetFriendRequest(ctx, requestID)
	if err != nil {
		return FriendRequest{}, err
	}
	switch userID {
	case r.ToUserID:
	case r.FromUserID:
		return FriendRequest{}, ErrNotAddressee
	default:
		// Strangers learn nothing about other people's requests.
		return FriendRequest{}, ErrRequestNotFound
	}
	if r.State != StatePending {
		return FriendRequest{}, ErrRequestResolved
	}
	return s.resolve(ctx, requestID, state)
}

func (s *Users) AcceptFriendRequest(ctx context.Context, userID, requestID string) (FriendRequest, error) {
	return s.answer(ctx, userID, requestID, StateAccepted)
}

func (s *Users) DeclineFriendRequest(ctx context.Context, userID, requestID string) (FriendRequest, error) {
	return s.answer(ctx, userID, requestID, StateDeclined)
}

func (s *Users) ListFriendRequests(ctx context.Context, userID string) (FriendRequests, error) {
	if err := ids.Validate("user_id", userID); err != nil {
		return FriendRequests{}, err
	}
	in, out, err := s.store.ListFriendRequests(ctx, userID, MaxRequestsListed)
	if err != nil {
		return FriendRequests{}, err
	}
	if in == nil {
		in = []FriendRequest{}
	}
	if out == nil {
		out = []FriendRequest{}
	}
	return FriendRequests{Incoming: in, Outgoing: out}, nil
}

func (s *Users) ListFriends(ctx context.Context, userID string, page Page) (FriendPage, error) {
	if err := ids.Validate("user_id", userID); err != nil {
		return FriendPage{}, err
	}
	page, err := normalizePage(page)
	if err != nil {
		return FriendPage{}, err
	}
	// One more than the page tells whether another page follows.
	fs, err := s.store.ListFriends(ctx, userID, page.Cursor, page.Limit+1)
	if err != nil {
		return FriendPage{}, err
	}
	out := FriendPage{Friends: make([]Friend, 0, min(len(fs), page.Limit))}
	if len(fs) > page.Limit {
		fs = fs[:page.Limit]
		out.NextCursor = fs[len(fs)-1].FriendID
	}
	for _, f := range fs {
		a, err := s.store.GetUser(ctx, f.FriendID)
		if errs.HasCode(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return FriendPage{}, err
		}
		out.Friends = append(out.Friends, Friend{User: a.Public(), Since: f.Since})
	}
	return out, nil
}

func (s *Users) RemoveFriend(ctx context.Context, userID, friendID string) error {
	if err := pair(userID, friendID); err != nil {
		return err
	}
	removed, err := s.store.RemoveFriendship(ctx, userID, friendID)
	if err != nil {
		return err
	}
	if !removed {
		return ErrNotFriends
	}
	s.publishUnfriended(ctx, userID, friendID, s.now())
	return nil
}

func (s *Users) publishUnfriended(ctx context.Context, a, b string, at time.Time) {
	s.publish(ctx, events.FriendRemoved, a, FriendChange{UserID: a, FriendID: b}, at)
	s.publish(ctx, events.FriendRemoved, b, FriendChange{UserID: b, FriendID: a}, at)
}

func (s *Users) Block(ctx context.Context, userID, targetID string) (Block, error) {
	if err := pair(userID, targetID); err != nil {
		return Block{}, err
	}
	if userID == targetID {
		return Block{}, ErrSelfBlock
	}
	if _, err := s.store.GetUser(ctx, targetID); err != nil {
		return Block{}, err
	}
	now := s.now()
	b, unfriended, err := s.store.PutBlock(ctx, userID, targetID, now)
	if err != nil {
		return Block{}, err
	}
	if unfriended {
		s.publishUnfriended(ctx, userID, targetID, now)
	}
	s.publish(ctx, events.UserBlocked, userID, BlockChange{UserID: userID, BlockedUserID: targetID}, now)
	return b, nil
}

func (s *Users) Unblock(ctx context.Context, userID, targetID string) error {
	if err := pair(userID, targetID); err != nil {
		return err
	}
	_, err := s.store.DeleteBlock(ctx, userID, targetID)
	return err
}

func (s *Users) ListBlocks(ctx context.Context, userID string, page Page) (BlockPage, error) {
	if err := ids.Validate("user_id", userID); err != nil {
		return BlockPage{}, err
	}
	page, err := normalizePage(page)
	if err != nil {
		return BlockPage{}, err
	}
	bs, err := s.store.ListBlocks(ctx, userID, page.Cursor, page.Limit+1)
	if err != nil {
		return BlockPage{}, err
	}
	out := BlockPage{Blocks: bs}
	if len(bs) > page.Limit {
		out.Blocks = bs[:page.Limit]
		out.NextCursor = out.Blocks[len(out.Blocks)-1].UserID
	}
	if out.Blocks == nil {
		out.Blocks = []Block{}
	}
	return out, nil
}

func (s *Users) CanMessage(ctx context.Context, fromID, toID string) (bool, error) {
	if err := ids.Validate("from_user_id", fromID); err != nil {
		return false, err
	}
	if err := ids.Validate("to_user_id", toID); err != nil {
		return false, err
	}
	if _, err := s.store.GetUser(ctx, toID); err != nil {
		return false, err
	}
	if fromID == toID {
		return true, nil
	}
	a, b, err := s.blockedEither(ctx, fromID, toID)
	if err != nil || a || b {
		return false, err
	}
	if s.opts.MessagePolicy == PolicyAnyone {
		return true, nil
	}
	_, friends, err := s.store.Friendship(ctx, fromID, toID)
	return friends, err
}

func (s *Users) ListFriendIDs(ctx context.Context, userID string) ([]string, error) {
	if err := ids.Validate("user_id", userID); err != nil {
		return nil, err
	}
	out := []string{}
	after := ""
	for {
		fs, err := s.store.ListFriends(ctx, userID, after, MaxPageSize)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			out = append(out, f.FriendID)
		}
		if len(fs) < MaxPageSize {
			return out, nil
		}
		after = fs[len(fs)-1].FriendID
	}
}

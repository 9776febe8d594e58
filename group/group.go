package group

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/ids"
)

// Options configure the service.
type Options struct {
	// MaxMembers bounds a group's size (default DefaultMaxMembers).
	MaxMembers int
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger log.Logger
}

// Groups implements Service over a Store.
type Groups struct {
	store  Store
	users  UserChecker
	seqs   SeqReader
	pub    events.Publisher
	max    int
	now    func() time.Time
	logger log.Logger
	// stripes serialise the read-check-write of one group's changes and the
	// events describing them, so member counts stay exact and events leave
	// in the order of the changes. A call holds one stripe at a time. They
	// are the fast path: changes made by other instances are caught by the
	// store's version check (see change).
	stripes [256]sync.Mutex
}

// A change that lost to one made elsewhere (Store.Save's ErrConflict) is
// done again from the start — load, check, modify, save — at most
// changeAttempts times in all, after a jittered pause of up to
// changeBackoff, doubling. The pause stays short: the winner has already
// saved, and while this one waits the other instance's next queued change
// of the group overtakes it (with pauses of milliseconds, a third of the
// runs of the two-instance Cassandra test had a change lose all attempts).
const (
	changeAttempts = 5
	changeBackoff  = 100 * time.Microsecond
)

var _ Service = (*Groups)(nil)

// Deps are the group service's collaborators; all are required.
type Deps struct {
	// Store keeps groups and members.
	Store Store
	// Users answers whether invited ids exist (the user service).
	Users UserChecker
	// Seqs gives a group conversation's last seq at join time.
	Seqs SeqReader
	// Events receives group events (events.Nop{} to drop them).
	Events events.Publisher
}

// New returns the group service. It fails when a dependency is missing.
func New(deps Deps, opts Options) (*Groups, error) {
	switch {
	case deps.Store == nil:
		return nil, errors.New("group: Deps.Store is nil")
	case deps.Users == nil:
		return nil, errors.New("group: Deps.Users is nil")
	case deps.Seqs == nil:
		return nil, errors.New("group: Deps.Seqs is nil")
	case deps.Events == nil:
		return nil, errors.New("group: Deps.Events is nil")
	}
	if opts.MaxMembers <= 0 {
		opts.MaxMembers = DefaultMaxMembers
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	return &Groups{store: deps.Store, users: deps.Users, seqs: deps.Seqs, pub: deps.Events, max: opts.MaxMembers, now: opts.Now, logger: opts.Logger}, nil
}

func (s *Groups) lock(groupID string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(groupID))
	mu := &s.stripes[h.Sum32()%uint32(len(s.stripes))]
	mu.Lock()
	return mu.Unlock
}

func (s *Groups) clock() time.Time { return s.now().UTC() }

// change runs attempt under groupID's stripe, again while it loses to a
// concurrent change of the group (its save returned ErrConflict), so no
// instance overwrites another's change. attempt must load everything it
// decides on afresh and publish only after its save succeeded.
func (s *Groups) change(ctx context.Context, groupID string, attempt func() error) error {
	backoff := changeBackoff
	for n := 1; ; n++ {
		unlock := s.lock(groupID)
		err := attempt()
		unlock()
		if !errors.Is(err, ErrConflict) {
			return err
		}
		if n == changeAttempts {
			_ = level.Warn(s.logger).Log("msg", "group change lost to concurrent changes", "groupId", groupID, "attempts", n)
			return ErrConcurrentChange
		}
		t := time.NewTimer(rand.N(backoff + 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return errs.As(ctx.Err())
		case <-t.C:
		}
		backoff *= 2
	}
}

// save stores a change from g's loaded version and moves g to the new one.
// ErrConflict stays as it is, for change to retry.
func (s *Groups) save(ctx context.Context, g *Group, put []Member, del []string) error {
	err := s.store.Save(ctx, *g, put, del)
	switch {
	case err == nil:
		g.Version++
		return nil
	case errors.Is(err, ErrConflict):
		return ErrConflict
	}
	return storeErr(err)
}

// storeErr keeps cancellation and deadlines as they are and reports
// anything else as the store being unavailable.
func storeErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errs.As(err)
	}
	return errs.Wrap(errs.Unavailable, err, "group store unavailable")
}

// load returns a live group or not_found.
func (s *Groups) load(ctx context.Context, groupID string) (Group, error) {
	if err := ids.Validate("group_id", groupID); err != nil {
		return Group{}, err
	}
	g, found, err := s.store.Group(ctx, groupID)
	if err != nil {
		return Group{}, storeErr(err)
	}
	if !found || g.DissolvedAt != nil {
		return Group{}, ErrGroupNotFound
	}
	return g, nil
}

// loadFor loads the group and the actor's membership in it.
func (s *Groups) loadFor(ctx context.Context, groupID, actorID string) (Group, Member, error) {
	g, err := s.load(ctx, groupID)
	if err != nil {
		return Group{}, Member{}, err
	}
	me, err := s.actor(ctx, groupID, actorID)
	if err != nil {
		return Group{}, Member{}, err
	}
	return g, me, nil
}

// member returns userID's membership of g (mute normalised), or found=false.
func (s *Groups) member(ctx context.Context, groupID, userID string) (Member, bool, error) {
	m, found, err := s.store.Member(ctx, groupID, userID)
	if err != nil {
		return Member{}, false, storeErr(err)
	}
	if found {
		m = s.visible(m)
	}
	return m, found, nil
}

// actor returns the acting user's membership or permission_denied.
func (s *Groups) actor(ctx context.Context, groupID, actorID string) (Member, error) {
	m, found, err := s.member(ctx, groupID, actorID)
	if err != nil {
		return Member{}, err
	}
	if !found {
		return Member{}, ErrNotMember
	}
	return m, nil
}

// target returns the membership acted upon or not_found.
func (s *Groups) target(ctx context.Context, groupID, userID string) (Member, error) {
	m, found, err := s.member(ctx, groupID, userID)
	if err != nil {
		return Member{}, err
	}
	if !found {
		return Member{}, ErrMemberNotFound
	}
	return m, nil
}

// visible hides a mute that has run out.
func (s *Groups) visible(m Member) Member {
	if m.MutedUntil != nil && !s.clock().Before(*m.MutedUntil) {
		m.MutedUntil = nil
	}
	return m
}

func (s *Groups) publishMembership(ctx context.Context, groupID, userID, action string, role Role, at time.Time) {
	data, _ := json.Marshal(MembershipChange{Action: action, Role: role})
	s.publish(ctx, events.Event{Type: events.GroupMembership, GroupID: groupID, UserID: userID, Data: data, At: at})
}

func (s *Groups) publish(ctx context.Context, e events.Event) {
	if err := s.pub.Publish(ctx, e); err != nil {
		_ = level.Warn(s.logger).Log("msg", "publish group event failed", "type", e.Type, "groupId", e.GroupID, "userId", e.UserID, "err", err)
	}
}

func (s *Groups) userExists(ctx context.Context, field string, userIDs []string) error {
	for _, id := range userIDs {
		ok, err := s.users.UserExists(ctx, id)
		if err != nil {
			return errs.Dependency(err, "user service")
		}
		if !ok {
			return &errs.Error{Code: errs.NotFound, Message: field + ": user " + id + " not found", Field: field}
		}
	}
	return nil
}

func (s *Groups) lastSeq(ctx context.Context, groupID string) (int64, error) {
	seq, err := s.seqs.LastSeq(ctx, ids.Group(groupID))
	if err != nil {
		return 0, errs.Dependency(err, "message service")
	}
	return seq, nil
}

func (s *Groups) full(n int) error {
	return errs.Newf(errs.Conflict, "a group has at most %d members; this would make %d", s.max, n)
}

var (
	errNeedAdmin = errs.New(errs.PermissionDenied, "only the owner and admins may do this")
	errNeedOwner = errs.New(errs.PermissionDenied, "only the owner may do this")
)

func (s *Groups) CreateGroup(ctx context.Context, actorID string, in CreateInput) (Group, error) {
	if err := ids.Validate("user_id", actorID); err != nil {
		return Group{}, err
	}
	name, err := ValidateName(in.Name)
	if err != nil {
		return Group{}, err
	}
	ann, err := ValidateAnnouncement(in.Announcement)
	if err != nil {
		return Group{}, err
	}
	list, err := ValidateUserIDs("member_ids", in.MemberIDs, false)
	if err != nil {
		return Group{}, err
	}
	others := list[:0:0]
	for _, id := range list {
		if id != actorID {
			others = append(others, id)
		}
	}
	if 1+len(others) > s.max {
		return Group{}, s.full(1 + len(others))
	}
	if err := s.userExists(ctx, "member_ids", others); err != nil {
		return Group{}, err
	}
	now := s.clock()
	g := Group{
		ID: ids.NewAt(now), Name: name, OwnerID: actorID, Announcement: ann,
		MemberCount: 1 + len(others), CreatedAt: now, UpdatedAt: now,
	}
	// A new group's conversation is empty: everyone reads from seq 1.
	members := make([]Member, 0, 1+len(others))
	members = append(members, Member{UserID: actorID, Role: RoleOwner, JoinedAt: now})
	for _, id := range others {
		members = append(members, Member{UserID: id, Role: RoleMember, JoinedAt: now})
	}
	// A fresh id has no record: the save conflicts with nothing.
	err = s.change(ctx, g.ID, func() error {
		if err := s.save(ctx, &g, members, nil); err != nil {
			return err
		}
		for _, m := range members {
			s.publishMembership(ctx, g.ID, m.UserID, ActionJoined, m.Role, now)
		}
		return nil
	})
	if err != nil {
		return Group{}, err
	}
	return g, nil
}

func (s *Groups) GetGroup(ctx context.Context, actorID, groupID string) (Group, error) {
	g, _, err := s.loadFor(ctx, groupID, actorID)
	return g, err
}

func (s *Groups) UpdateGroup(ctx context.Context, actorID, groupID string, u Update) (Group, error) {
	if u.Name == nil && u.Announcement == nil && u.MembersCanInvite == nil {
		return Group{}, errs.New(errs.InvalidArgument, "nothing to update: set name, announcement or members_can_invite")
	}
	var name, ann string
	var err error
	if u.Name != nil {
		if name, err = ValidateName(*u.Name); err != nil {
			return Group{}, err
		}
	}
	if u.Announcement != nil {
		if ann, err = ValidateAnnouncement(*u.Announcement); err != nil {
			return Group{}, err
		}
	}
	if err := ids.Validate("group_id", groupID); err != nil {
		return Group{}, err
	}
	var g Group
	err = s.change(ctx, groupID, func() error {
		var me Member
		var err error
		if g, me, err = s.loadFor(ctx, groupID, actorID); err != nil {
			return err
		}
		if me.Role.rank() < RoleAdmin.rank() {
			return errNeedAdmin
		}
		if u.Name != nil {
			g.Name = name
		}
		if u.Announcement != nil {
			g.Announcement = ann
		}
		if u.MembersCanInvite != nil {
			g.MembersCanInvite = *u.MembersCanInvite
		}
		g.UpdatedAt = s.clock()
		return s.save(ctx, &g, nil, nil)
	})
	if err != nil {
		return Group{}, err
	}
	return g, nil
}

func (s *Groups) DissolveGroup(ctx context.Context, actorID, groupID string) error {
	if err := ids.Validate("group_id", groupID); err != nil {
		return err
	}
	return s.change(ctx, groupID, func() error {
		g, me, err := s.loadFor(ctx, groupID, actorID)
		if err != nil {
			return err
		}
		if me.Role != RoleOwner {
			return errNeedOwner
		}
		all, err := s.store.MemberIDs(ctx, groupID)
		if err != nil {
			return storeErr(err)
		}
		now := s.clock()
		g.DissolvedAt = &now
		g.UpdatedAt = now
		g.MemberCount = 0
		if err := s.save(ctx, &g, nil, all); err != nil {
			return err
		}
		s.publish(ctx, events.Event{Type: events.GroupDissolved, GroupID: groupID, UserID: actorID, At: now})
		return nil
	})
}

func (s *Groups) ListMembers(ctx context.Context, actorID, groupID, cursor string, limit int) (MemberPage, error) {
	limit, err := pageArgs(cursor, limit)
	if err != nil {
		return MemberPage{}, err
	}
	if _, _, err := s.loadFor(ctx, groupID, actorID); err != nil {
		return MemberPage{}, err
	}
	ms, err := s.store.Members(ctx, groupID, cursor, limit+1)
	if err != nil {
		return MemberPage{}, storeErr(err)
	}
	page := MemberPage{Members: make([]Member, 0, min(len(ms), limit))}
	if len(ms) > limit {
		ms = ms[:limit]
		page.NextCursor = ms[limit-1].UserID
	}
	for _, m := range ms {
		page.Members = append(page.Members, s.visible(m))
	}
	return page, nil
}

func (s *Groups) AddMembers(ctx context.Context, actorID, groupID string, userIDs []string) ([]Member, error) {
	list, err := ValidateUserIDs("user_ids", userIDs, true)
	if err != nil {
		return nil, err
	}
	if err := ids.Validate("group_id", groupID); err != nil {
		return nil, err
	}
	var added []Member
	err = s.change(ctx, groupID, func() error {
		g, me, err := s.loadFor(ctx, groupID, actorID)
		if err != nil {
			return err
		}
		if me.Role.rank() < RoleAdmin.rank() && !g.MembersCanInvite {
			return errs.New(errs.PermissionDenied, "only the owner and admins may add members to this group")
		}
		var fresh []string
		for _, id := range list {
			_, found, err := s.member(ctx, groupID, id)
			if err != nil {
				return err
			}
			if !found {
				fresh = append(fresh, id)
			}
		}
		added = make([]Member, 0, len(fresh))
		if len(fresh) == 0 {
			return nil
		}
		if g.MemberCount+len(fresh) > s.max {
			return s.full(g.MemberCount + len(fresh))
		}
		if err := s.userExists(ctx, "user_ids", fresh); err != nil {
			return err
		}
		seq, err := s.lastSeq(ctx, groupID)
		if err != nil {
			return err
		}
		now := s.clock()
		for _, id := range fresh {
			added = append(added, Member{UserID: id, Role: RoleMember, JoinedAt: now, JoinedSeq: seq})
		}
		g.MemberCount += len(added)
		g.UpdatedAt = now
		if err := s.save(ctx, &g, added, nil); err != nil {
			return err
		}
		for _, m := range added {
			s.publishMembership(ctx, groupID, m.UserID, ActionJoined, m.Role, now)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return added, nil
}

func (s *Groups) RemoveMember(ctx context.Context, actorID, groupID, userID string) error {
	if err := ids.Validate("user_id", userID); err != nil {
		return err
	}
	if err := ids.Validate("group_id", groupID); err != nil {
		return err
	}
	return s.change(ctx, groupID, func() error {
		g, me, err := s.loadFor(ctx, groupID, actorID)
		if err != nil {
			return err
		}
		action := ActionLeft
		if userID == actorID {
			if me.Role == RoleOwner {
				return ErrOwnerLeaving
			}
		} else {
			if me.Role.rank() < RoleAdmin.rank() {
				return errNeedAdmin
			}
			t, err := s.target(ctx, groupID, userID)
			if err != nil {
				return err
			}
			if me.Role.rank() <= t.Role.rank() {
				return errs.New(errs.PermissionDenied, "admins may remove only members; the owner may remove anyone")
			}
			action = ActionKicked
		}
		now := s.clock()
		g.MemberCount--
		g.UpdatedAt = now
		if err := s.save(ctx, &g, nil, []string{userID}); err != nil {
			return err
		}
		s.publishMembership(ctx, groupID, userID, action, "", now)
		return nil
	})
}

func (s *Groups) SetRole(ctx context.Context, actorID, groupID, userID string, role Role) (Member, error) {
	if err := ids.Validate("user_id", userID); err != nil {
		return Member{}, err
	}
	if err := ValidateRole(role); err != nil {
		return Member{}, err
	}
	if err := ids.Validate("group_id", groupID); err != nil {
		return Member{}, err
	}
	var t Member
	err := s.change(ctx, groupID, func() error {
		g, me, err := s.loadFor(ctx, groupID, actorID)
		if err != nil {
			return err
		}
		if me.Role != RoleOwner {
			return errNeedOwner
		}
		if t, err = s.target(ctx, groupID, userID); err != nil {
			return err
		}
		if t.Role == RoleOwner {
			return errs.New(errs.Conflict, "the owner's role changes only by transferring ownership")
		}
		if t.Role == role {
			return nil
		}
		t.Role = role
		now := s.clock()
		g.UpdatedAt = now
		if err := s.save(ctx, &g, []Member{t}, nil); err != nil {
			return err
		}
		s.publishMembership(ctx, groupID, userID, ActionRole, role, now)
		return nil
	})
	if err != nil {
		return Member{}, err
	}
	return t, nil
}

func (s *Groups) TransferOwnership(ctx context.Context, actorID, groupID, userID string) (Group, error) {
	if err := ids.Validate("user_id", userID); err != nil {
		return Group{}, err
	}
	if err := ids.Validate("group_id", groupID); err != nil {
		return Group{}, err
	}
	var g Group
	err := s.change(ctx, groupID, func() error {
		var me Member
		var err error
		if g, me, err = s.loadFor(ctx, groupID, actorID); err != nil {
			return err
		}
		if me.Role != RoleOwner {
			return errNeedOwner
		}
		if userID == actorID {
			return errs.Invalid("user_id", "is already the owner")
		}
		t, err := s.target(ctx, groupID, userID)
		if err != nil {
			return err
		}
		now := s.clock()
		t.Role, me.Role = RoleOwner, RoleAdmin
		g.OwnerID = userID
		g.UpdatedAt = now
		if err := s.save(ctx, &g, []Member{t, me}, nil); err != nil {
			return err
		}
		s.publishMembership(ctx, groupID, userID, ActionRole, RoleOwner, now)
		s.publishMembership(ctx, groupID, actorID, ActionRole, RoleAdmin, now)
		return nil
	})
	if err != nil {
		return Group{}, err
	}
	return g, nil
}

func (s *Groups) MuteMember(ctx context.Context, actorID, groupID, userID string, seconds int64) (Member, error) {
	if err := ids.Validate("user_id", userID); err != nil {
		return Member{}, err
	}
	if seconds < 0 || seconds > MaxMuteSeconds {
		return Member{}, errs.Invalid("seconds", "must be between 0 and 31622400 (0 lifts the mute)")
	}
	if err := ids.Validate("group_id", groupID); err != nil {
		return Member{}, err
	}
	var t Member
	err := s.change(ctx, groupID, func() error {
		g, me, err := s.loadFor(ctx, groupID, actorID)
		if err != nil {
			return err
		}
		if me.Role.rank() < RoleAdmin.rank() {
			return errNeedAdmin
		}
		if t, err = s.target(ctx, groupID, userID); err != nil {
			return err
		}
		if me.Role.rank() <= t.Role.rank() {
			return errs.New(errs.PermissionDenied, "admins may mute only members; the owner may mute admins and members")
		}
		now := s.clock()
		t.MutedUntil = nil
		if seconds > 0 {
			until := now.Add(time.Duration(seconds) * time.Second)
			t.MutedUntil = &until
		}
		g.UpdatedAt = now
		return s.save(ctx, &g, []Member{t}, nil)
	})
	if err != nil {
		return Member{}, err
	}
	// Senders cache who may post: a mute must reach them at once.
	s.publishMembership(ctx, groupID, userID, ActionMuted, t.Role, s.clock())
	return t, nil
}

func (s *Groups) MuteAll(ctx context.Context, actorID, groupID string, muted bool) (Group, error) {
	if err := ids.Validate("group_id", groupID); err != nil {
		return Group{}, err
	}
	var g Group
	err := s.change(ctx, groupID, func() error {
		var me Member
		var err error
		if g, me, err = s.loadFor(ctx, groupID, actorID); err != nil {
			return err
		}
		if me.Role.rank() < RoleAdmin.rank() {
			return errNeedAdmin
		}
		g.MutedAll = muted
		g.UpdatedAt = s.clock()
		return s.save(ctx, &g, nil, nil)
	})
	if err != nil {
		return Group{}, err
	}
	s.publishMembership(ctx, groupID, "", ActionMuted, "", g.UpdatedAt)
	return g, nil
}

func (s *Groups) ListMyGroups(ctx context.Context, actorID, cursor string, limit int) (GroupPage, error) {
	if err := ids.Validate("user_id", actorID); err != nil {
		return GroupPage{}, err
	}
	limit, err := pageArgs(cursor, limit)
	if err != nil {
		return GroupPage{}, err
	}
	gids, err := s.store.GroupsOf(ctx, actorID, cursor, limit+1)
	if err != nil {
		return GroupPage{}, storeErr(err)
	}
	page := GroupPage{Groups: make([]Group, 0, min(len(gids), limit))}
	if len(gids) > limit {
		gids = gids[:limit]
		page.NextCursor = gids[limit-1]
	}
	for _, gid := range gids {
		g, found, err := s.store.Group(ctx, gid)
		if err != nil {
			return GroupPage{}, storeErr(err)
		}
		if found && g.DissolvedAt == nil {
			page.Groups = append(page.Groups, g)
		}
	}
	return page, nil
}

func (s *Groups) CanPost(ctx context.Context, userID, groupID string) error {
	if err := ids.Validate("user_id", userID); err != nil {
		return err
	}
	g, m, err := s.loadFor(ctx, groupID, userID)
	if err != nil {
		return err
	}
	if m.MutedUntil != nil {
		return errs.Newf(errs.PermissionDenied, "you are muted in this group until %s", m.MutedUntil.UTC().Format(time.RFC3339))
	}
	if g.MutedAll && m.Role == RoleMember {
		return errs.New(errs.PermissionDenied, "the group is muted: only the owner and admins may post")
	}
	return nil
}

func (s *Groups) Membership(ctx context.Context, groupID, userID string) (Member, error) {
	if err := ids.Validate("user_id", userID); err != nil {
		return Member{}, err
	}
	_, m, err := s.loadFor(ctx, groupID, userID)
	return m, err
}

func (s *Groups) ListMemberIDs(ctx context.Context, groupID string) ([]string, error) {
	if _, err := s.load(ctx, groupID); err != nil {
		return nil, err
	}
	out, err := s.store.MemberIDs(ctx, groupID)
	if err != nil {
		return nil, storeErr(err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// Package user owns accounts and the social graph: registration, profiles,
// friend requests, friends, blocks, and the answer to "may A message B?".
// The auth service reads accounts (with their password hash) through the
// internal methods; the message service asks CanMessage; the pusher asks
// ListFriendIDs for presence fan-out.
package user

import (
	"context"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
)

// Service is the user service. Methods that act for a user take that user's
// id explicitly; the endpoint layer fills it from the caller's token
// (identity.Actor), so a user can never act for someone else.
type Service interface {
	// Register creates an account. The email is unique, compared trimmed
	// and case-insensitively.
	Register(ctx context.Context, in Registration) (User, error)
	// GetUser returns userID's profile as viewerID sees it: the email only
	// when viewerID is userID. userID "" means viewerID itself.
	GetUser(ctx context.Context, viewerID, userID string) (User, error)
	// UpdateUser changes the fields of in that are set.
	UpdateUser(ctx context.Context, userID string, in ProfileUpdate) (User, error)
	// GetUserByID returns the account with its password hash. Internal.
	GetUserByID(ctx context.Context, userID string) (Account, error)
	// LookupByEmail returns the account with that email. Internal.
	LookupByEmail(ctx context.Context, email string) (Account, error)
	// SetPasswordHash replaces the password hash (auth's password change). Internal.
	SetPasswordHash(ctx context.Context, userID, hash string) error

	// SendFriendRequest asks toID for friendship. A pending request from
	// toID to fromID is accepted instead (the result is that request,
	// accepted).
	SendFriendRequest(ctx context.Context, fromID, toID, message string) (FriendRequest, error)
	// AcceptFriendRequest and DeclineFriendRequest: only the addressee.
	AcceptFriendRequest(ctx context.Context, userID, requestID string) (FriendRequest, error)
	DeclineFriendRequest(ctx context.Context, userID, requestID string) (FriendRequest, error)
	// ListFriendRequests returns the requests to and from userID, newest first.
	ListFriendRequests(ctx context.Context, userID string) (FriendRequests, error)
	ListFriends(ctx context.Context, userID string, page Page) (FriendPage, error)
	RemoveFriend(ctx context.Context, userID, friendID string) error

	// Block blocks targetID for userID, ending their friendship and
	// dropping pending requests between them. Blocking twice is no error.
	Block(ctx context.Context, userID, targetID string) (Block, error)
	// Unblock lifts a block; lifting an absent block is no error.
	Unblock(ctx context.Context, userID, targetID string) error
	ListBlocks(ctx context.Context, userID string, page Page) (BlockPage, error)

	// CanMessage reports whether fromID may send toID a message under the
	// configured policy. Internal.
	CanMessage(ctx context.Context, fromID, toID string) (bool, error)
	// ListFriendIDs returns every friend of userID. Internal.
	ListFriendIDs(ctx context.Context, userID string) ([]string, error)
}

// User is a profile as PROTOCOL.md shows it. Email is empty (and omitted)
// unless the viewer is the user.
type User struct {
	ID          string    `json:"id"`
	Nickname    string    `json:"nickname"`
	Email       string    `json:"email,omitempty"`
	Avatar      string    `json:"avatar"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Public is u without the email.
func (u User) Public() User { u.Email = ""; return u }

// Account is a user with its credentials, for internal callers only; it is
// never served over HTTP.
type Account struct {
	User
	PasswordHash string `json:"password_hash"`
}

// Registration is the input of Register.
type Registration struct {
	Nickname    string `json:"nickname"`
	Email       string `json:"email"`
	Password    string `json:"password"`
	Avatar      string `json:"avatar"`
	Description string `json:"description"`
}

// ProfileUpdate holds the fields to change; nil leaves a field as it is.
type ProfileUpdate struct {
	Nickname    *string `json:"nickname,omitempty"`
	Avatar      *string `json:"avatar,omitempty"`
	Description *string `json:"description,omitempty"`
}

// Friend request states.
const (
	StatePending  = "pending"
	StateAccepted = "accepted"
	StateDeclined = "declined"
)

// FriendRequest is one request, as PROTOCOL.md shows it.
type FriendRequest struct {
	ID         string    `json:"id"`
	FromUserID string    `json:"from_user_id"`
	ToUserID   string    `json:"to_user_id"`
	Message    string    `json:"message"`
	State      string    `json:"state"`
	CreatedAt  time.Time `json:"created_at"`
}

// FriendRequests is the list of GET /v1/friends/requests.
type FriendRequests struct {
	Incoming []FriendRequest `json:"incoming"`
	Outgoing []FriendRequest `json:"outgoing"`
}

// Friend is a friend's public profile and when the friendship began.
type Friend struct {
	User
	Since time.Time `json:"since"`
}

// FriendPage is one page of friends, ordered by user id.
type FriendPage struct {
	Friends    []Friend `json:"friends"`
	NextCursor string   `json:"next_cursor"`
}

// Block is one user blocked by the caller.
type Block struct {
	UserID    string    `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
}

// BlockPage is one page of blocks, ordered by user id.
type BlockPage struct {
	Blocks     []Block `json:"blocks"`
	NextCursor string  `json:"next_cursor"`
}

// Page selects a page: the entries after Cursor (the next_cursor of the
// previous page, "" for the first), at most Limit of them.
type Page struct {
	Cursor string
	Limit  int
}

// Paging limits of PROTOCOL.md.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
	// MaxRequestsListed bounds each side of ListFriendRequests.
	MaxRequestsListed = 200
)

// Message policies for CanMessage.
const (
	PolicyAnyone  = "anyone"
	PolicyFriends = "friends"
)

// Field limits.
const (
	MaxEmailBytes         = 254
	MaxNicknameRunes      = 64
	MaxDescriptionRunes   = 512
	MaxAvatarBytes        = 1024
	MaxRequestMessageRune = 512
	maxPasswordHashBytes  = 256
)

// Event data published with events.FriendAdded and events.FriendRemoved
// (one event per side, keyed by UserID) and events.UserBlocked.
type FriendChange struct {
	UserID   string `json:"user_id"`
	FriendID string `json:"friend_id"`
}

type BlockChange struct {
	UserID        string `json:"user_id"`
	BlockedUserID string `json:"blocked_user_id"`
}

// Registered is the data of events.UserRegistered.
type Registered struct {
	UserID   string `json:"user_id"`
	Nickname string `json:"nickname"`
}

// Domain errors.
var (
	ErrUserNotFound    = errs.New(errs.NotFound, "user not found")
	ErrEmailTaken      = errs.New(errs.AlreadyExists, "email already registered")
	ErrRequestNotFound = errs.New(errs.NotFound, "friend request not found")
	ErrRequestPending  = errs.New(errs.AlreadyExists, "a friend request to this user is already pending")
	ErrRequestResolved = errs.New(errs.Conflict, "friend request is no longer pending")
	ErrNotAddressee    = errs.New(errs.PermissionDenied, "only the addressee may answer a friend request")
	ErrAlreadyFriends  = errs.New(errs.Conflict, "already friends")
	ErrNotFriends      = errs.New(errs.NotFound, "not friends")
	ErrBlockedByYou    = errs.New(errs.PermissionDenied, "you blocked this user; unblock first")
	ErrBlocked         = errs.New(errs.PermissionDenied, "this user does not accept friend requests from you")
	ErrSelfFriend      = errs.Invalid("user_id", "cannot befriend yourself")
	ErrSelfBlock       = errs.Invalid("user_id", "cannot block yourself")
)

// NormalizeEmail is the form emails are compared and stored in.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// ValidateEmail checks a (normalized) email address: one bare address,
// at most 254 bytes.
func ValidateEmail(email string) error {
	if email == "" {
		return errs.Missing("email")
	}
	if !utf8.ValidString(email) {
		return errs.Invalid("email", "must be UTF-8")
	}
	if len(email) > MaxEmailBytes {
		return errs.Invalid("email", "is too long (at most 254 bytes)")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || !strings.EqualFold(a.Address, email) || !strings.Contains(a.Address, "@") {
		return errs.Invalid("email", "is not a valid email address")
	}
	return nil
}

// ValidateNickname checks a (trimmed) nickname: 1..64 runes, no control
// characters.
func ValidateNickname(nick string) error {
	if nick == "" {
		return errs.Missing("nickname")
	}
	if err := text("nickname", nick, false); err != nil {
		return err
	}
	if utf8.RuneCountInString(nick) > MaxNicknameRunes {
		return errs.Invalid("nickname", "is too long (at most 64 characters)")
	}
	return nil
}

// ValidateDescription checks a description: at most 512 runes.
func ValidateDescription(d string) error {
	if err := text("description", d, true); err != nil {
		return err
	}
	if utf8.RuneCountInString(d) > MaxDescriptionRunes {
		return errs.Invalid("description", "is too long (at most 512 characters)")
	}
	return nil
}

// ValidateAvatar checks an avatar reference (a URL or an opaque key): at
// most 1024 bytes.
func ValidateAvatar(a string) error {
	if len(a) > MaxAvatarBytes {
		return errs.Invalid("avatar", "is too long (at most 1024 bytes)")
	}
	return text("avatar", a, false)
}

// ValidateRequestMessage checks a friend request's message.
func ValidateRequestMessage(m string) error {
	if err := text("message", m, true); err != nil {
		return err
	}
	if utf8.RuneCountInString(m) > MaxRequestMessageRune {
		return errs.Invalid("message", "is too long (at most 512 characters)")
	}
	return nil
}

// text checks UTF-8 and control characters; multiline allows newlines and tabs.
func text(field, s string, multiline bool) error {
	if !utf8.ValidString(s) {
		return errs.Invalid(field, "must be UTF-8")
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t' || r == '\r') {
			continue
		}
		if unicode.IsControl(r) {
			return errs.Invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// normalizePage applies the default and maximum page size and checks the cursor.
func normalizePage(p Page) (Page, error) {
	switch {
	case p.Limit == 0:
		p.Limit = DefaultPageSize
	case p.Limit < 0:
		return p, errs.Invalid("limit", "must be positive")
	case p.Limit > MaxPageSize:
		p.Limit = MaxPageSize
	}
	if p.Cursor != "" && !ids.Valid(p.Cursor) {
		return p, errs.Invalid("cursor", "is not a valid cursor")
	}
	return p, nil
}

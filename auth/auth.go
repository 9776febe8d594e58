package auth

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/logging"
	"github.com/beehive-im/beehive/shared/password"
	"github.com/beehive-im/beehive/shared/ratelimit"
)

// Options configure the service; zero values take the documented defaults
// (config.Default's auth section).
type Options struct {
	Issuer            string        // "beehive"
	AccessTTL         time.Duration // 15 min
	RefreshTTL        time.Duration // 30 days; each rotation starts it anew
	BcryptCost        int           // 10
	PasswordMinLength int           // 8
	// LoginPerIP and LoginPerAccount limit login attempts (and password
	// change attempts, per account). Inject Redis limiters in distributed
	// mode; nil means a local limiter of 30 (per IP) and 10 (per account)
	// attempts a minute.
	LoginPerIP      ratelimit.Keyed
	LoginPerAccount ratelimit.Keyed
	Now             func() time.Time
	Logger          log.Logger
}

func (o *Options) defaults() {
	if o.Issuer == "" {
		o.Issuer = "beehive"
	}
	if o.AccessTTL <= 0 {
		o.AccessTTL = 15 * time.Minute
	}
	if o.RefreshTTL <= 0 {
		o.RefreshTTL = 30 * 24 * time.Hour
	}
	if o.BcryptCost <= 0 {
		o.BcryptCost = 10
	}
	if o.PasswordMinLength <= 0 {
		o.PasswordMinLength = 8
	}
	if o.LoginPerIP == nil {
		o.LoginPerIP = ratelimit.PerMinute(30)
	}
	if o.LoginPerAccount == nil {
		o.LoginPerAccount = ratelimit.PerMinute(10)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = log.NewNopLogger()
	}
}

// Deps are the auth service's collaborators; all are required.
type Deps struct {
	// Store keeps sessions.
	Store Store
	// Accounts looks up the account a login names (the user service).
	Accounts Accounts
	// Keys sign and verify tokens; they must be able to sign (NewKeySet,
	// KeySetFromConfig or LoadOrCreateKeySet).
	Keys *KeySet
	// Events receives session events (events.Nop{} to drop them).
	Events events.Publisher
}

// Sessions implements Service: logins, token refresh and the sessions
// behind them.
type Sessions struct {
	store    Store
	accounts Accounts
	keys     *KeySet
	events   events.Publisher
	verifier *Verifier
	opts     Options
}

var _ Service = (*Sessions)(nil)

// New returns the auth service. It fails when a dependency is missing.
func New(deps Deps, opts Options) (*Sessions, error) {
	switch {
	case deps.Store == nil:
		return nil, errors.New("auth: Deps.Store is nil")
	case deps.Accounts == nil:
		return nil, errors.New("auth: Deps.Accounts is nil")
	case deps.Keys == nil:
		return nil, errors.New("auth: Deps.Keys is nil")
	case deps.Events == nil:
		return nil, errors.New("auth: Deps.Events is nil")
	}
	opts.defaults()
	return &Sessions{
		store: deps.Store, accounts: deps.Accounts, keys: deps.Keys, events: deps.Events, opts: opts,
		verifier: NewVerifier(deps.Keys, opts.Issuer, deps.Store, opts.Now),
	}, nil
}

func (s *Sessions) now() time.Time { return s.opts.Now().UTC() }

func (s *Sessions) allow(ctx context.Context, lim ratelimit.Keyed, key string) error {
	ok, err := lim.Allow(ctx, key)
	if err != nil {
		return err
	}
	if !ok {
		return ErrTooManyLogins
	}
	return nil
}

func (s *Sessions) Login(ctx context.Context, in Credentials) (Tokens, error) {
	if err := in.Validate(); err != nil {
		return Tokens{}, err
	}
	name := in.Email
	if name == "" {
		name = in.ID
	}
	name = strings.TrimSpace(name)
	if in.ClientIP != "" {
		if err := s.allow(ctx, s.opts.LoginPerIP, "ip:"+in.ClientIP); err != nil {
			return Tokens{}, err
		}
	}
	// Keyed by the name as given (not the account found), so guessing at
	// unknown accounts is limited exactly like guessing at real ones.
	if err := s.allow(ctx, s.opts.LoginPerAccount, "login:"+strings.ToLower(name)); err != nil {
		return Tokens{}, err
	}
	acct, err := s.accounts.LookupAccount(ctx, name)
	switch {
	case errs.HasCode(err, errs.NotFound) || (err == nil && acct.PasswordHash == ""):
		password.CheckMissing(in.Password)
		return Tokens{}, ErrInvalidCredentials
	case err != nil:
		return Tokens{}, err
	}
	if !password.Check(acct.PasswordHash, in.Password) {
		return Tokens{}, ErrInvalidCredentials
	}
	deviceID := in.DeviceID
	if deviceID == "" {
		deviceID = ids.New()
	}
	now := s.now()
	sess := Session{ID: ids.NewAt(now), UserID: acct.UserID, DeviceID: deviceID, CreatedAt: now, ExpiresAt: now.Add(s.opts.RefreshTTL)}
	refresh, hash, err := newRefreshToken(sess.ID)
	if err != nil {
		return Tokens{}, err
	}
	sess.RefreshHash = hash
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return Tokens{}, err
	}
	toks, err := s.tokens(sess, refresh, now)
	if err != nil {
		return Tokens{}, err
	}
	toks.User = acct.Profile
	data, _ := json.Marshal(map[string]string{"device_id": deviceID})
	s.publish(ctx, events.Event{Type: events.LoggedIn, UserID: acct.UserID, SessionID: sess.ID, Data: data, At: now})
	return toks, nil
}

func (s *Sessions) tokens(sess Session, refresh string, now time.Time) (Tokens, error) {
	access, err := signAccess(s.keys, s.opts.Issuer, sess, now, s.opts.AccessTTL)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{
		AccessToken: access, RefreshToken: refresh, TokenType: "Bearer",
		ExpiresIn: int64(s.opts.AccessTTL / time.Second), SessionID: sess.ID, DeviceID: sess.DeviceID,
	}, nil
}

func (s *Sessions) RefreshToken(ctx context.Context, refreshToken string) (Tokens, error) {
	if refreshToken == "" {
		return Tokens{}, errs.Missing("refresh_token")
	}
	sid, ok := parseRefreshToken(refreshToken)
	if !ok {
		return Tokens{}, ErrInvalidRefresh
	}
	next, nextHash, err := newRefreshToken(sid)
	if err != nil {
		return Tokens{}, err
	}
	now := s.now()
	sess, err := s.store.RotateRefresh(ctx, sid, hashToken(refreshToken), nextHash, now, now.Add(s.opts.RefreshTTL))
	if err != nil {
		if errors.Is(err, ErrRefreshReused) {
			// The family is compromised: whoever holds the newer token
			// loses it too, and live sockets of the session close.
			_ = level.Warn(logging.With(ctx, s.opts.Logger)).Log("msg", "refresh token reuse revoked session", "sessionId", sid)
			s.publish(ctx, events.Event{Type: events.SessionRevoked, SessionID: sid, UserID: s.sessionUser(ctx, sid), At: now})
		}
		return Tokens{}, err
	}
	return s.tokens(sess, next, now)
}

func (s *Sessions) sessionUser(ctx context.Context, sid string) string {
	sess, err := s.store.GetSession(ctx, sid)
	if err != nil {
		return ""
	}
	return sess.UserID
}

func (s *Sessions) ValidateToken(ctx context.Context, accessToken string) (identity.Principal, error) {
	if accessToken == "" {
		return identity.Principal{}, errs.Missing("token")
	}
	return s.verifier.Authenticate(ctx, accessToken)
}

func (s *Sessions) RevokeToken(ctx context.Context, actorID string, r Revocation) error {
	switch {
	case r.SessionID != "":
		if !ids.Valid(r.SessionID) {
			return errs.Invalid("session_id", "malformed")
		}
		sess, err := s.store.GetSession(ctx, r.SessionID)
		if err != nil {
			return err
		}
		if actorID != "" && sess.UserID != actorID {
			// Same answer as an unknown session: a user learns nothing
			// about others' sessions.
			return ErrSessionNotFound
		}
		if r.UserID != "" && r.UserID != sess.UserID {
			return ErrSessionNotFound
		}
		return s.revokeSession(ctx, sess.ID)
	case r.UserID != "":
		if !ids.Valid(r.UserID) {
			return errs.Invalid("user_id", "malformed")
		}
		if actorID != "" && r.UserID != actorID {
			return ErrNotYourSession
		}
		return s.revokeAll(ctx, r.UserID, "")
	}
	return errs.Missing("session_id")
}

func (s *Sessions) revokeSession(ctx context.Context, sid string) error {
	now := s.now()
	sess, err := s.store.RevokeSession(ctx, sid, now)
	if err != nil {
		return err
	}
	s.publish(ctx, events.Event{Type: events.SessionRevoked, UserID: sess.UserID, SessionID: sid, At: now})
	return nil
}

// revokeAll revokes every session of userID but except. With except "",
// one event for all sessions; otherwise one per revoked session, so the
// kept session's sockets stay open.
func (s *Sessions) revokeAll(ctx context.Context, userID, except string) error {
	now := s.now()
	revoked, err := s.store.RevokeUserSessions(ctx, userID, except, now)
	if err != nil {
		return err
	}
	if except == "" {
		s.publish(ctx, events.Event{Type: events.SessionRevoked, UserID: userID, At: now})
		return nil
	}
	for _, sid := range revoked {
		s.publish(ctx, events.Event{Type: events.SessionRevoked, UserID: userID, SessionID: sid, At: now})
	}
	return nil
}

func (s *Sessions) Logout(ctx context.Context, userID, sessionID string, all bool) error {
	if userID == "" {
		return identity.ErrNoToken
	}
	if all {
		return s.revokeAll(ctx, userID, "")
	}
	if sessionID == "" {
		return errs.Missing("session_id")
	}
	return s.RevokeToken(ctx, userID, Revocation{SessionID: sessionID})
}

func (s *Sessions) ChangePassword(ctx context.Context, userID, keepSessionID string, in PasswordChange) error {
	if userID == "" {
		return identity.ErrNoToken
	}
	if err := in.Validate(s.opts.PasswordMinLength); err != nil {
		return err
	}
	if err := s.allow(ctx, s.opts.LoginPerAccount, "password:"+userID); err != nil {
		return err
	}
	acct, err := s.accounts.LookupAccount(ctx, userID)
	if errs.HasCode(err, errs.NotFound) {
		return ErrSessionRevoked // the account is gone; so is the caller's standing
	}
	if err != nil {
		return err
	}
	if acct.UserID != userID || !password.Check(acct.PasswordHash, in.OldPassword) {
		return ErrWrongOldPassword
	}
	hash, err := password.Hash(in.NewPassword, s.opts.BcryptCost)
	if err != nil {
		return err
	}
	if err := s.accounts.SetPasswordHash(ctx, userID, hash); err != nil {
		return err
	}
	return s.revokeAll(ctx, userID, keepSessionID)
}

func (s *Sessions) Keys(context.Context) (JWKS, error) { return s.keys.JWKS(), nil }

// publish is best effort: the state change is already durable, and a
// gateway that misses the event still refuses the session on its next
// token check.
func (s *Sessions) publish(ctx context.Context, e events.Event) {
	if err := s.events.Publish(ctx, e); err != nil {
		_ = level.Warn(logging.With(ctx, s.opts.Logger)).Log("msg", "publish event failed", "type", e.Type, "err", err)
	}
}

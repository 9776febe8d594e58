package auth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/events"
	"github.com/beehive-im/beehive/shared/password"
	"github.com/beehive-im/beehive/shared/ratelimit"
)

func TestLoginByEmailOrIDReturnsTokensAndProfile(t *testing.T) {
	f := newFixture(t)
	acct := f.accounts.add(t, "ann@example.com", testPassword)
	ctx := context.Background()
	for name, cred := range map[string]auth.Credentials{
		"email":            {Email: "ann@example.com", Password: testPassword},
		"email any case":   {Email: " Ann@Example.com", Password: testPassword},
		"id":               {ID: acct.UserID, Password: testPassword},
		"id with a device": {ID: acct.UserID, Password: testPassword, DeviceID: "phone 1"},
	} {
		t.Run(name, func(t *testing.T) {
			toks, err := f.svc.Login(ctx, cred)
			if err != nil {
				t.Fatal(err)
			}
			if toks.AccessToken == "" || toks.RefreshToken == "" || toks.TokenType != "Bearer" || toks.ExpiresIn != 900 {
				t.Fatalf("tokens = %+v", toks)
			}
			if !bytes.Equal(toks.User, acct.Profile) {
				t.Fatalf("user = %s, want the profile verbatim %s", toks.User, acct.Profile)
			}
			if cred.DeviceID != "" && toks.DeviceID != cred.DeviceID {
				t.Fatalf("device = %q, want %q", toks.DeviceID, cred.DeviceID)
			}
			if cred.DeviceID == "" && toks.DeviceID == "" {
				t.Fatal("no device id assigned")
			}
			p, err := f.svc.ValidateToken(ctx, toks.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if p.UserID != acct.UserID || p.SessionID != toks.SessionID || p.DeviceID != toks.DeviceID {
				t.Fatalf("principal = %+v, tokens = %+v", p, toks)
			}
		})
	}
}

func TestEachLoginIsItsOwnSessionAndPublishesLoggedIn(t *testing.T) {
	f := newFixture(t)
	acct := f.accounts.add(t, "bo@example.com", testPassword)
	a := f.login(t, "bo@example.com", testPassword, "")
	b := f.login(t, "bo@example.com", testPassword, "")
	if a.SessionID == b.SessionID || a.DeviceID == b.DeviceID {
		t.Fatalf("two logins share session or assigned device: %+v %+v", a, b)
	}
	ss, err := f.store.ListSessions(context.Background(), acct.UserID)
	if err != nil || len(ss) != 2 {
		t.Fatalf("sessions = %v, %v", ss, err)
	}
	evs := f.events.OfType(events.LoggedIn)
	if len(evs) != 2 || evs[0].UserID != acct.UserID || evs[0].SessionID != a.SessionID {
		t.Fatalf("logged-in events = %+v", evs)
	}
}

func TestAccessTokenIsEdDSAWithKidAndTheDocumentedClaims(t *testing.T) {
	f := newFixture(t)
	acct := f.accounts.add(t, "cy@example.com", testPassword)
	toks := f.login(t, "cy@example.com", testPassword, "laptop")
	var c auth.Claims
	tok, _, err := jwt.NewParser().ParseUnverified(toks.AccessToken, &c)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["alg"] != "EdDSA" || tok.Header["kid"] != "k1" {
		t.Fatalf("header = %v", tok.Header)
	}
	now := f.clock.Now()
	if c.Subject != acct.UserID || c.SessionID != toks.SessionID || c.DeviceID != "laptop" || c.Issuer != testIssuer ||
		c.ID == "" || !c.IssuedAt.Equal(now.Truncate(time.Second)) || !c.ExpiresAt.Equal(now.Add(15*time.Minute).Truncate(time.Second)) {
		t.Fatalf("claims = %+v", c)
	}
	// Session and refresh token: the token is stored only as its hash.
	sess, err := f.store.GetSession(context.Background(), toks.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if sess.RefreshHash == toks.RefreshToken || strings.Contains(sess.RefreshHash, toks.RefreshToken) || !strings.HasPrefix(toks.RefreshToken, toks.SessionID+".") {
		t.Fatalf("session = %+v, refresh = %s", sess, toks.RefreshToken)
	}
}

func TestWrongPasswordAndUnknownAccountGiveTheSameError(t *testing.T) {
	f := newFixture(t)
	f.accounts.add(t, "di@example.com", testPassword)
	ctx := context.Background()
	_, wrong := f.svc.Login(ctx, auth.Credentials{Email: "di@example.com", Password: "not the password"})
	_, unknown := f.svc.Login(ctx, auth.Credentials{Email: "nobody@example.com", Password: "not the password"})
	if !errors.Is(wrong, auth.ErrInvalidCredentials) || !errors.Is(unknown, auth.ErrInvalidCredentials) {
		t.Fatalf("wrong = %v, unknown = %v", wrong, unknown)
	}
	if pw, pu := errs.Public(wrong), errs.Public(unknown); *pw != *pu {
		t.Fatalf("public errors differ: %+v vs %+v", pw, pu)
	}
}

func TestLoginRejectsMalformedInputNamingTheField(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name  string
		in    auth.Credentials
		field string
	}{
		{"no account", auth.Credentials{Password: "x"}, "email"},
		{"both id and email", auth.Credentials{ID: "a", Email: "b@c", Password: "x"}, "id"},
		{"no password", auth.Credentials{Email: "b@c"}, "password"},
		{"device too long", auth.Credentials{Email: "b@c", Password: "x", DeviceID: strings.Repeat("d", 65)}, "device_id"},
		{"device with control char", auth.Credentials{Email: "b@c", Password: "x", DeviceID: "a\nb"}, "device_id"},
		{"email not utf-8", auth.Credentials{Email: "\xff", Password: "x"}, "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Login(context.Background(), tc.in)
			wantCode(t, err, errs.InvalidArgument)
			if got := errs.As(err).Field; got != tc.field {
				t.Fatalf("field = %q, want %q", got, tc.field)
			}
		})
	}
}

func TestLoginAttemptsAreLimitedPerAccountAndPerIP(t *testing.T) {
	t.Run("per account, whatever the IP, known or not", func(t *testing.T) {
		f := newFixture(t, func(o *auth.Options) { o.LoginPerAccount = ratelimit.NewLocal(1e-6, 2) })
		f.accounts.add(t, "ed@example.com", testPassword)
		ctx := context.Background()
		for i, ip := range []string{"1.1.1.1", "2.2.2.2"} {
			if _, err := f.svc.Login(ctx, auth.Credentials{Email: "ed@example.com", Password: "bad", ClientIP: ip}); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatalf("attempt %d: %v", i, err)
			}
		}
		_, err := f.svc.Login(ctx, auth.Credentials{Email: "ED@example.com", Password: testPassword, ClientIP: "3.3.3.3"})
		wantCode(t, err, errs.RateLimited)
		// Another account is unaffected.
		f.accounts.add(t, "fi@example.com", testPassword)
		f.login(t, "fi@example.com", testPassword, "")
	})
	t.Run("per IP, whatever the account", func(t *testing.T) {
		f := newFixture(t, func(o *auth.Options) { o.LoginPerIP = ratelimit.NewLocal(1e-6, 2) })
		ctx := context.Background()
		for i := 0; i < 2; i++ {
			_, err := f.svc.Login(ctx, auth.Credentials{Email: "x" + string(rune('a'+i)) + "@example.com", Password: "bad", ClientIP: "9.9.9.9"})
			wantCode(t, err, errs.Unauthenticated)
		}
		_, err := f.svc.Login(ctx, auth.Credentials{Email: "xz@example.com", Password: "bad", ClientIP: "9.9.9.9"})
		wantCode(t, err, errs.RateLimited)
		_, err = f.svc.Login(ctx, auth.Credentials{Email: "xz@example.com", Password: "bad", ClientIP: "8.8.8.8"})
		wantCode(t, err, errs.Unauthenticated)
	})
}

// forge signs claims with method and key, with the header kid (none if "").
func forge(t *testing.T, method jwt.SigningMethod, key any, kid string, c auth.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidateTokenRefusesForgedExpiredAndRevokedTokens(t *testing.T) {
	f := newFixture(t)
	acct := f.accounts.add(t, "gu@example.com", testPassword)
	toks := f.login(t, "gu@example.com", testPassword, "")
	now := f.clock.Now()
	good := auth.Claims{SessionID: toks.SessionID, DeviceID: toks.DeviceID, RegisteredClaims: jwt.RegisteredClaims{
		Subject: acct.UserID, Issuer: testIssuer, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: "j",
	}}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	pub := f.priv.Public().(ed25519.PublicKey)
	with := func(mod func(*auth.Claims)) auth.Claims { c := good; mod(&c); return c }

	if _, err := f.svc.ValidateToken(context.Background(), forge(t, jwt.SigningMethodEdDSA, f.priv, "k1", good)); err != nil {
		t.Fatalf("control: a well-formed token must pass: %v", err)
	}
	for _, tc := range []struct {
		name  string
		token func() string
	}{
		{"alg none", func() string { return forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", good) }},
		{"HS256 keyed with the public key", func() string { return forge(t, jwt.SigningMethodHS256, []byte(pub), "k1", good) }},
		{"signed by another key under the same kid", func() string { return forge(t, jwt.SigningMethodEdDSA, otherKey, "k1", good) }},
		{"unknown kid", func() string { return forge(t, jwt.SigningMethodEdDSA, f.priv, "k9", good) }},
		{"no kid", func() string { return forge(t, jwt.SigningMethodEdDSA, f.priv, "", good) }},
		{"wrong issuer", func() string {
			return forge(t, jwt.SigningMethodEdDSA, f.priv, "k1", with(func(c *auth.Claims) { c.Issuer = "evil" }))
		}},
		{"no expiry", func() string {
			return forge(t, jwt.SigningMethodEdDSA, f.priv, "k1", with(func(c *auth.Claims) { c.ExpiresAt = nil }))
		}},
		{"expired", func() string {
			return forge(t, jwt.SigningMethodEdDSA, f.priv, "k1", with(func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second)) }))
		}},
		{"no session", func() string {
			return forge(t, jwt.SigningMethodEdDSA, f.priv, "k1", with(func(c *auth.Claims) { c.SessionID = "" }))
		}},
		{"session that does not exist", func() string {
			return forge(t, jwt.SigningMethodEdDSA, f.priv, "k1", with(func(c *auth.Claims) { c.SessionID = "01nosuchsession" }))
		}},
		{"tampered payload", func() string {
			parts := strings.Split(toks.AccessToken, ".")
			other := strings.Split(forge(t, jwt.SigningMethodEdDSA, otherKey, "k1", with(func(c *auth.Claims) { c.Subject = "someone-else" })), ".")
			return parts[0] + "." + other[1] + "." + parts[2]
		}},
		{"garbage", func() string { return "not.a.jwt" }},
		{"oversized", func() string { return strings.Repeat("a", 5000) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.ValidateToken(context.Background(), tc.token())
			wantCode(t, err, errs.Unauthenticated)
		})
	}
}

func TestAccessTokenExpiresWithTheClock(t *testing.T) {
	f := newFixture(t)
	f.accounts.add(t, "ha@example.com", testPassword)
	toks := f.login(t, "ha@example.com", testPassword, "")
	f.clock.Advance(15*time.Minute - time.Second)
	if _, err := f.verifier.Authenticate(context.Background(), toks.AccessToken); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	f.clock.Advance(2 * time.Second)
	_, err := f.verifier.Authenticate(context.Background(), toks.AccessToken)
	if !errors.Is(err, auth.ErrTokenExpired) {
		t.Fatalf("after expiry: %v, want token expired", err)
	}
}

func TestRefreshRotatesAndReuseRevokesTheFamily(t *testing.T) {
	f := newFixture(t)
	acct := f.accounts.add(t, "io@example.com", testPassword)
	ctx := context.Background()
	first := f.login(t, "io@example.com", testPassword, "tab")
	f.clock.Advance(time.Minute)
	second, err := f.svc.RefreshToken(ctx, first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken ||
		second.SessionID != first.SessionID || second.DeviceID != "tab" || len(second.User) != 0 {
		t.Fatalf("rotated = %+v", second)
	}
	third, err := f.svc.RefreshToken(ctx, second.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	// An attacker replays the first token: the whole session dies.
	_, err = f.svc.RefreshToken(ctx, first.RefreshToken)
	if !errors.Is(err, auth.ErrRefreshReused) {
		t.Fatalf("reuse: %v, want ErrRefreshReused", err)
	}
	_, err = f.svc.RefreshToken(ctx, third.RefreshToken)
	wantCode(t, err, errs.Unauthenticated)
	_, err = f.svc.ValidateToken(ctx, third.AccessToken)
	if !errors.Is(err, auth.ErrSessionRevoked) {
		t.Fatalf("access token of the revoked family: %v", err)
	}
	evs := f.events.OfType(events.SessionRevoked)
	if len(evs) != 1 || evs[0].SessionID != first.SessionID || evs[0].UserID != acct.UserID {
		t.Fatalf("revocation events = %+v", evs)
	}
}

func TestRefreshRefusesForgedAndExpiredTokensWithoutRevoking(t *testing.T) {
	f := newFixture(t)
	f.accounts.add(t, "ju@example.com", testPassword)
	ctx := context.Background()
	toks := f.login(t, "ju@example.com", testPassword, "")
	for name, tok := range map[string]string{
		"forged secret": toks.SessionID + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"no separator":  toks.SessionID,
		"short secret":  toks.SessionID + ".abc",
		"bad session":   "../x." + strings.SplitN(toks.RefreshToken, ".", 2)[1],
		"other session": "01aaaaaaaaaaaaaaaaaaaaaaaa." + strings.SplitN(toks.RefreshToken, ".", 2)[1],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.svc.RefreshToken(ctx, tok)
			if !errors.Is(err, auth.ErrInvalidRefresh) {
				t.Fatalf("err = %v, want ErrInvalidRefresh", err)
			}
		})
	}
	_, err := f.svc.RefreshToken(ctx, "")
	wantCode(t, err, errs.InvalidArgument)
	if len(f.events.OfType(events.SessionRevoked)) != 0 {
		t.Fatal("a forged token revoked a session")
	}
	f.clock.Advance(24 * time.Hour)
	_, err = f.svc.RefreshToken(ctx, toks.RefreshToken)
	if !errors.Is(err, auth.ErrSessionExpired) {
		t.Fatalf("after refresh TTL: %v, want ErrSessionExpired", err)
	}
}

func TestLogoutRevokesTheSessionOrAllSessions(t *testing.T) {
	f := newFixture(t)
	acct := f.accounts.add(t, "ka@example.com", testPassword)
	ctx := context.Background()
	a := f.login(t, "ka@example.com", testPassword, "")
	b := f.login(t, "ka@example.com", testPassword, "")
	c := f.login(t, "ka@example.com", testPassword, "")

	if err := f.svc.Logout(ctx, acct.UserID, a.SessionID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ValidateToken(ctx, a.AccessToken); !errors.Is(err, auth.ErrSessionRevoked) {
		t.Fatalf("logged-out access token: %v", err)
	}
	if _, err := f.svc.RefreshToken(ctx, a.RefreshToken); !errors.Is(err, auth.ErrSessionRevoked) {
		t.Fatalf("logged-out refresh token: %v", err)
	}
	if _, err := f.svc.ValidateToken(ctx, b.AccessToken); err != nil {
		t.Fatalf("other session hit: %v", err)
	}
	if err := f.svc.Logout(ctx, acct.UserID, b.SessionID, true); err != nil {
		t.Fatal(err)
	}
	for _, x := range []auth.Tokens{b, c} {
		if _, err := f.svc.ValidateToken(ctx, x.AccessToken); !errors.Is(err, auth.ErrSessionRevoked) {
			t.Fatalf("after logout all: %v", err)
		}
	}
	evs := f.events.OfType(events.SessionRevoked)
	if len(evs) != 2 || evs[0].SessionID != a.SessionID || evs[1].SessionID != "" || evs[1].UserID != acct.UserID {
		t.Fatalf("events = %+v", evs)
	}
}

func TestChangePasswordKeepsTheCallersSessionAndRevokesTheOthers(t *testing.T) {
	f := newFixture(t)
	acct := f.accounts.add(t, "li@example.com", testPassword)
	ctx := context.Background()
	mine := f.login(t, "li@example.com", testPassword, "")
	other := f.login(t, "li@example.com", testPassword, "")

	err := f.svc.ChangePassword(ctx, acct.UserID, mine.SessionID, auth.PasswordChange{OldPassword: "wrong password", NewPassword: "brand new secret"})
	if errs.As(err).Field != "old_password" {
		t.Fatalf("wrong old password: %v", err)
	}
	for _, tc := range []struct {
		in    auth.PasswordChange
		field string
	}{
		{auth.PasswordChange{NewPassword: "brand new secret"}, "old_password"},
		{auth.PasswordChange{OldPassword: testPassword}, "new_password"},
		{auth.PasswordChange{OldPassword: testPassword, NewPassword: "short"}, "new_password"},
		{auth.PasswordChange{OldPassword: testPassword, NewPassword: testPassword}, "new_password"},
		{auth.PasswordChange{OldPassword: testPassword, NewPassword: strings.Repeat("x", 73)}, "new_password"},
	} {
		err := f.svc.ChangePassword(ctx, acct.UserID, mine.SessionID, tc.in)
		if !errs.HasCode(err, errs.InvalidArgument) || errs.As(err).Field != tc.field {
			t.Fatalf("%+v: %v, want invalid %s", tc.in, err, tc.field)
		}
	}
	if err := f.svc.ChangePassword(ctx, acct.UserID, mine.SessionID, auth.PasswordChange{OldPassword: testPassword, NewPassword: "brand new secret"}); err != nil {
		t.Fatal(err)
	}
	stored, _ := f.accounts.LookupAccount(ctx, acct.UserID)
	if !password.Check(stored.PasswordHash, "brand new secret") {
		t.Fatal("new hash not stored")
	}
	if _, err := f.svc.ValidateToken(ctx, mine.AccessToken); err != nil {
		t.Fatalf("caller's session revoked: %v", err)
	}
	if _, err := f.svc.ValidateToken(ctx, other.AccessToken); !errors.Is(err, auth.ErrSessionRevoked) {
		t.Fatalf("other session still valid: %v", err)
	}
	evs := f.events.OfType(events.SessionRevoked)
	if len(evs) != 1 || evs[0].SessionID != other.SessionID {
		t.Fatalf("events = %+v, want one for the other session only", evs)
	}
	if _, err := f.svc.Login(ctx, auth.Credentials{Email: "li@example.com", Password: testPassword}); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("old password still works: %v", err)
	}
	f.login(t, "li@example.com", "brand new secret", "")
}

func TestRevokeTokenUsersOnlyOwnServiceAnyone(t *testing.T) {
	f := newFixture(t)
	ann := f.accounts.add(t, "ma@example.com", testPassword)
	bob := f.accounts.add(t, "no@example.com", testPassword)
	ctx := context.Background()
	annTok := f.login(t, "ma@example.com", testPassword, "")
	annTok2 := f.login(t, "ma@example.com", testPassword, "")
	bobTok := f.login(t, "no@example.com", testPassword, "")

	err := f.svc.RevokeToken(ctx, ann.UserID, auth.Revocation{SessionID: bobTok.SessionID})
	wantCode(t, err, errs.NotFound)
	err = f.svc.RevokeToken(ctx, ann.UserID, auth.Revocation{UserID: bob.UserID})
	wantCode(t, err, errs.PermissionDenied)
	if _, err := f.svc.ValidateToken(ctx, bobTok.AccessToken); err != nil {
		t.Fatalf("bob's session was hit: %v", err)
	}
	if err := f.svc.RevokeToken(ctx, ann.UserID, auth.Revocation{SessionID: annTok2.SessionID}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ValidateToken(ctx, annTok.AccessToken); err != nil {
		t.Fatalf("ann's other session hit: %v", err)
	}
	// An internal caller (actor "") may revoke anyone's sessions.
	if err := f.svc.RevokeToken(ctx, "", auth.Revocation{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ValidateToken(ctx, bobTok.AccessToken); !errors.Is(err, auth.ErrSessionRevoked) {
		t.Fatalf("bob's session survived: %v", err)
	}
	wantCode(t, f.svc.RevokeToken(ctx, "", auth.Revocation{}), errs.InvalidArgument)
	wantCode(t, f.svc.RevokeToken(ctx, "", auth.Revocation{SessionID: "../x"}), errs.InvalidArgument)
}

func TestKeySetFromConfigAndRotationKeepOldTokensValid(t *testing.T) {
	seed := func(b byte) string { return strings.Repeat(string(rune('A'+b)), 43) + "=" }
	ks, err := auth.KeySetFromConfig(map[string]string{"old": seed(0), "new": seed(1)}, "new")
	if err != nil {
		t.Fatal(err)
	}
	if ks.ActiveKid() != "new" || !ks.CanSign() || len(ks.JWKS().Keys) != 2 {
		t.Fatalf("key set: active %q, keys %+v", ks.ActiveKid(), ks.JWKS())
	}
	for name, tc := range map[string]struct {
		keys   map[string]string
		active string
	}{
		"active missing": {map[string]string{"a": seed(0)}, "b"},
		"not base64":     {map[string]string{"a": "!!!"}, "a"},
		"wrong length":   {map[string]string{"a": "AAAA"}, "a"},
		"empty":          {map[string]string{}, ""},
	} {
		if _, err := auth.KeySetFromConfig(tc.keys, tc.active); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	// Tokens signed by the old active key verify after the new key takes over.
	oldSet, _ := auth.KeySetFromConfig(map[string]string{"old": seed(0)}, "old")
	f := newFixture(t)
	f.accounts.add(t, "oz@example.com", testPassword)
	store := f.store
	oldSvc, err := auth.New(auth.Deps{Store: store, Accounts: f.accounts, Keys: oldSet, Events: events.Nop{}}, auth.Options{Issuer: testIssuer, Now: f.clock.Now, BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := oldSvc.Login(context.Background(), auth.Credentials{Email: "oz@example.com", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.NewVerifier(ks, testIssuer, store, f.clock.Now).Authenticate(context.Background(), toks.AccessToken); err != nil {
		t.Fatalf("old kid after rotation: %v", err)
	}
}

func TestLoadOrCreateKeySetPersistsOneKeyWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth", "keys.json")
	a, err := auth.LoadOrCreateKeySet(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", st.Mode().Perm())
	}
	b, err := auth.LoadOrCreateKeySet(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.ActiveKid() == "" || a.ActiveKid() != b.ActiveKid() || !a.CanSign() {
		t.Fatalf("kids %q, %q", a.ActiveKid(), b.ActiveKid())
	}
	pa, _ := a.PublicKey(a.ActiveKid())
	pb, _ := b.PublicKey(b.ActiveKid())
	if !pa.Equal(pb) {
		t.Fatal("reload produced a different key")
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.LoadOrCreateKeySet(path); err == nil {
		t.Fatal("corrupt key file accepted")
	}
}

func TestVerifierFromJWKSVerifiesLocallyButCannotSign(t *testing.T) {
	f := newFixture(t)
	f.accounts.add(t, "pi@example.com", testPassword)
	toks := f.login(t, "pi@example.com", testPassword, "")
	jwks, err := f.svc.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 1 || jwks.Keys[0].Kid != "k1" || jwks.Keys[0].Kty != "OKP" || jwks.Keys[0].Crv != "Ed25519" || jwks.Keys[0].Alg != "EdDSA" {
		t.Fatalf("jwks = %+v", jwks)
	}
	pubSet, err := jwks.KeySet()
	if err != nil {
		t.Fatal(err)
	}
	if pubSet.CanSign() {
		t.Fatal("a key set from JWKS must not sign")
	}
	p, err := auth.NewVerifier(pubSet, testIssuer, f.store, f.clock.Now).Authenticate(context.Background(), toks.AccessToken)
	if err != nil || p.SessionID != toks.SessionID {
		t.Fatalf("principal %+v, err %v", p, err)
	}
	if _, err := auth.NewVerifier(pubSet, "other-issuer", f.store, f.clock.Now).Authenticate(context.Background(), toks.AccessToken); err == nil {
		t.Fatal("issuer not checked")
	}
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	f := newFixture(t)
	full := auth.Deps{Store: f.store, Accounts: f.accounts, Keys: f.keys, Events: events.Nop{}}
	for name, drop := range map[string]func(*auth.Deps){
		"Deps.Store":    func(d *auth.Deps) { d.Store = nil },
		"Deps.Accounts": func(d *auth.Deps) { d.Accounts = nil },
		"Deps.Keys":     func(d *auth.Deps) { d.Keys = nil },
		"Deps.Events":   func(d *auth.Deps) { d.Events = nil },
	} {
		t.Run(name, func(t *testing.T) {
			deps := full
			drop(&deps)
			if _, err := auth.New(deps, auth.Options{}); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want one naming %s", err, name)
			}
		})
	}
}

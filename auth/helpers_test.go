package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/password"
	"github.com/beehive-im/beehive/shared/ratelimit"
	"github.com/beehive-im/beehive/shared/testinfra"
)

const (
	testPassword = "correct horse battery"
	testIssuer   = "beehive-test"
	serviceToken = "internal-secret"
)

// fakeAccounts is an in-memory stand-in for the user service.
type fakeAccounts struct {
	mu      sync.Mutex
	byID    map[string]auth.Account
	byEmail map[string]string
}

func newFakeAccounts() *fakeAccounts {
	return &fakeAccounts{byID: map[string]auth.Account{}, byEmail: map[string]string{}}
}

func (f *fakeAccounts) add(t *testing.T, email, pw string) auth.Account {
	t.Helper()
	h, err := password.Hash(pw, 4)
	if err != nil {
		t.Fatal(err)
	}
	id := ids.New()
	profile, _ := json.Marshal(map[string]string{"id": id, "nickname": "nick-" + id, "email": email})
	a := auth.Account{UserID: id, PasswordHash: h, Profile: profile}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byID[id] = a
	f.byEmail[strings.ToLower(email)] = id
	return a
}

func (f *fakeAccounts) LookupAccount(_ context.Context, idOrEmail string) (auth.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.byEmail[strings.ToLower(idOrEmail)]; ok {
		return f.byID[id], nil
	}
	if a, ok := f.byID[idOrEmail]; ok {
		return a, nil
	}
	return auth.Account{}, errs.New(errs.NotFound, "user not found")
}

func (f *fakeAccounts) SetPasswordHash(_ context.Context, userID, hash string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.byID[userID]
	if !ok {
		return errs.New(errs.NotFound, "user not found")
	}
	a.PasswordHash = hash
	f.byID[userID] = a
	return nil
}

// keyRecorder is a limiter that allows everything and remembers keys.
type keyRecorder struct {
	mu   sync.Mutex
	keys []string
}

func (k *keyRecorder) Allow(_ context.Context, key string) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, key)
	return true, nil
}

func (k *keyRecorder) seen() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.keys...)
}

type fixture struct {
	svc      auth.Service
	store    auth.Store
	accounts *fakeAccounts
	events   *testinfra.Recorder
	clock    *testinfra.Clock
	keys     *auth.KeySet
	verifier *auth.Verifier
	priv     ed25519.PrivateKey
}

type fixtureOpt func(*auth.Options)

func newFixture(t *testing.T, opts ...fixtureOpt) *fixture {
	t.Helper()
	db := testinfra.OpenPebble(t, t.TempDir())
	t.Cleanup(func() { _ = db.Close() })
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeySet(map[string]ed25519.PrivateKey{"k1": priv}, "k1")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		store: auth.NewPebbleStore(db), accounts: newFakeAccounts(), events: &testinfra.Recorder{},
		clock: testinfra.NewClock(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)), keys: keys, priv: priv,
	}
	o := auth.Options{
		Issuer: testIssuer, AccessTTL: 15 * time.Minute, RefreshTTL: 24 * time.Hour, BcryptCost: 4,
		PasswordMinLength: 8, Now: f.clock.Now,
		// Generous but finite: tests of the limits inject their own.
		LoginPerIP: ratelimit.NewLocal(1e-6, 1000), LoginPerAccount: ratelimit.NewLocal(1e-6, 1000),
	}
	for _, fn := range opts {
		fn(&o)
	}
	svc, err := auth.New(auth.Deps{Store: f.store, Accounts: f.accounts, Keys: keys, Events: f.events}, o)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	f.verifier = auth.NewVerifier(keys, testIssuer, f.store, f.clock.Now)
	return f
}

func (f *fixture) login(t *testing.T, email, pw, device string) auth.Tokens {
	t.Helper()
	toks, err := f.svc.Login(context.Background(), auth.Credentials{Email: email, Password: pw, DeviceID: device, ClientIP: "10.0.0.1"})
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return toks
}

func wantCode(t *testing.T, err error, code errs.Code) {
	t.Helper()
	if !errs.HasCode(err, code) {
		t.Fatalf("err = %v, want code %s", err, code)
	}
}

package auth_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/auth/authpb"
	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/grpcx/grpctest"
	"github.com/beehive-im/beehive/shared/identity"
)

// grpcSetup serves f over a real listener and returns a client factory
// (each client with the given service credential, "" for none).
func grpcSetup(t *testing.T, f *fixture) func(token string) auth.Service {
	t.Helper()
	logger := log.NewNopLogger()
	e := auth.MakeServerEndpoints(f.svc, f.verifier, serviceToken, endpointx.Kit{Policy: endpointx.DefaultPolicy})
	addr := grpctest.Serve(t, authpb.RegisterAuthServiceServer, auth.NewGRPCServer(e, logger))
	conns := grpcx.NewConns()
	t.Cleanup(func() { _ = conns.Close() })
	return func(token string) auth.Service {
		return auth.NewGRPCClient(sd.FixedInstancer{addr}, conns, token, logger)
	}
}

func TestGRPCLoginRefreshAndValidateRoundTrip(t *testing.T) {
	f := newFixture(t)
	acct := f.accounts.add(t, "va@example.com", testPassword)
	client := grpcSetup(t, f)(serviceToken)
	ctx := context.Background()

	toks, err := client.Login(ctx, auth.Credentials{Email: "va@example.com", Password: testPassword, DeviceID: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if toks.DeviceID != "cli" || toks.ExpiresIn != 900 || !bytes.Equal(toks.User, acct.Profile) {
		t.Fatalf("tokens = %+v", toks)
	}
	p, err := client.ValidateToken(ctx, toks.AccessToken)
	if err != nil || p.UserID != acct.UserID || p.SessionID != toks.SessionID || p.DeviceID != "cli" {
		t.Fatalf("principal %+v, err %v", p, err)
	}
	next, err := client.RefreshToken(ctx, toks.RefreshToken)
	if err != nil || next.SessionID != toks.SessionID || len(next.User) != 0 {
		t.Fatalf("refresh %+v, err %v", next, err)
	}
	// Business errors keep their code and message across the wire.
	_, err = client.Login(ctx, auth.Credentials{Email: "va@example.com", Password: "bad password"})
	if !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("wrong password over gRPC: %v", err)
	}
	_, err = client.Login(ctx, auth.Credentials{Password: "x"})
	if !errs.HasCode(err, errs.InvalidArgument) || errs.As(err).Field != "email" {
		t.Fatalf("missing field over gRPC: %v", err)
	}
	_, err = client.RefreshToken(ctx, toks.RefreshToken)
	if !errors.Is(err, auth.ErrRefreshReused) {
		t.Fatalf("reuse over gRPC: %v", err)
	}
	jwks, err := client.Keys(ctx)
	if err != nil || len(jwks.Keys) != 1 || jwks.Keys[0].Kid != "k1" {
		t.Fatalf("keys %+v, err %v", jwks, err)
	}
}

func TestGRPCValidateTokenRefusesUserTokenAndAcceptsServiceToken(t *testing.T) {
	f := newFixture(t)
	f.accounts.add(t, "wo@example.com", testPassword)
	clients := grpcSetup(t, f)
	tok := f.login(t, "wo@example.com", testPassword, "")
	userCtx := identity.WithToken(context.Background(), tok.AccessToken)

	_, err := clients("").ValidateToken(userCtx, tok.AccessToken)
	wantCode(t, err, errs.PermissionDenied)
	_, err = clients("wrong-secret").ValidateToken(context.Background(), tok.AccessToken)
	wantCode(t, err, errs.PermissionDenied)
	if _, err := clients(serviceToken).ValidateToken(context.Background(), tok.AccessToken); err != nil {
		t.Fatalf("service token refused: %v", err)
	}
	// ServiceAuthenticator (what a remote service wires into RequireUser)
	// goes through the same internal RPC.
	p, err := auth.ServiceAuthenticator(clients(serviceToken)).Authenticate(context.Background(), tok.AccessToken)
	if err != nil || p.SessionID != tok.SessionID {
		t.Fatalf("service authenticator: %+v %v", p, err)
	}
}

func TestGRPCRevokeTokenOwnSessionsForUsersAnySessionForServices(t *testing.T) {
	f := newFixture(t)
	f.accounts.add(t, "xa@example.com", testPassword)
	bob := f.accounts.add(t, "yb@example.com", testPassword)
	clients := grpcSetup(t, f)
	annTok := f.login(t, "xa@example.com", testPassword, "")
	annOther := f.login(t, "xa@example.com", testPassword, "")
	bobTok := f.login(t, "yb@example.com", testPassword, "")
	annCtx := identity.WithToken(context.Background(), annTok.AccessToken)
	asUser := clients("")

	wantCode(t, asUser.RevokeToken(annCtx, "", auth.Revocation{SessionID: bobTok.SessionID}), errs.NotFound)
	wantCode(t, asUser.RevokeToken(annCtx, "", auth.Revocation{UserID: bob.UserID}), errs.PermissionDenied)
	wantCode(t, asUser.RevokeToken(context.Background(), "", auth.Revocation{UserID: bob.UserID}), errs.Unauthenticated)
	if err := asUser.RevokeToken(annCtx, "", auth.Revocation{SessionID: annOther.SessionID}); err != nil {
		t.Fatalf("own session: %v", err)
	}
	// The gateway's client carries the service credential too, but a user
	// token in the call wins: it does not lend the user its powers.
	wantCode(t, clients(serviceToken).RevokeToken(annCtx, "", auth.Revocation{UserID: bob.UserID}), errs.PermissionDenied)
	if err := clients(serviceToken).RevokeToken(context.Background(), "", auth.Revocation{SessionID: bobTok.SessionID}); err != nil {
		t.Fatalf("service revoking bob: %v", err)
	}
	if _, err := f.svc.ValidateToken(context.Background(), bobTok.AccessToken); !errors.Is(err, auth.ErrSessionRevoked) {
		t.Fatalf("bob's session survived: %v", err)
	}

}

func TestGRPCLogoutAndChangePasswordNeedTheUsersToken(t *testing.T) {
	f := newFixture(t)
	f.accounts.add(t, "zc@example.com", testPassword)
	client := grpcSetup(t, f)(serviceToken)
	a := f.login(t, "zc@example.com", testPassword, "")
	b := f.login(t, "zc@example.com", testPassword, "")
	ctxA := identity.WithToken(context.Background(), a.AccessToken)

	// A service credential alone does not make a caller a user.
	wantCode(t, client.Logout(context.Background(), "", "", false), errs.Unauthenticated)
	wantCode(t, client.ChangePassword(context.Background(), "", "", auth.PasswordChange{OldPassword: testPassword, NewPassword: "a new secret"}), errs.Unauthenticated)

	if err := client.ChangePassword(ctxA, "", "", auth.PasswordChange{OldPassword: testPassword, NewPassword: "a new secret"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ValidateToken(context.Background(), b.AccessToken); !errors.Is(err, auth.ErrSessionRevoked) {
		t.Fatalf("other session survived a password change: %v", err)
	}
	if err := client.Logout(ctxA, "", "", false); err != nil {
		t.Fatal(err)
	}
	wantCode(t, client.Logout(ctxA, "", "", false), errs.Unauthenticated)
}

func TestGRPCLoginBelievesClientIPOnlyFromServices(t *testing.T) {
	ips := &keyRecorder{}
	f := newFixture(t, func(o *auth.Options) { o.LoginPerIP = ips })
	f.accounts.add(t, "ad@example.com", testPassword)
	clients := grpcSetup(t, f)
	ctx := identity.WithClientIP(context.Background(), "203.0.113.7")

	if _, err := clients("").Login(ctx, auth.Credentials{Email: "ad@example.com", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	if _, err := clients(serviceToken).Login(ctx, auth.Credentials{Email: "ad@example.com", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	got := ips.seen()
	if len(got) != 2 || got[0] != "ip:127.0.0.1" || got[1] != "ip:203.0.113.7" {
		t.Fatalf("limiter keys = %v, want the peer address for a public caller and the forwarded one for the gateway", got)
	}
}

package errs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
)

func TestEveryCodeHasHTTPAndGRPCMapping(t *testing.T) {
	for code, m := range table {
		if m.http == 0 || (m.grpc == codes.OK) {
			t.Errorf("%s: incomplete mapping %+v", code, m)
		}
	}
}

func TestAsTranslatesContextAndUnknownErrors(t *testing.T) {
	cases := []struct {
		err  error
		want Code
	}{
		{context.DeadlineExceeded, DeadlineExceeded},
		{fmt.Errorf("wrapped: %w", context.Canceled), Canceled},
		{errors.New("disk on fire"), Internal},
		{fmt.Errorf("x: %w", New(NotFound, "no user")), NotFound},
	}
	for _, c := range cases {
		if got := CodeOf(c.err); got != c.want {
			t.Errorf("CodeOf(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

func TestPublicHidesInternalCause(t *testing.T) {
	e := Public(errors.New("password=hunter2"))
	if e.Message != "internal error" || e.Err != nil {
		t.Fatalf("internal cause leaked: %+v", e)
	}
	if HTTPStatus(e.Code) != http.StatusInternalServerError {
		t.Fatal("internal must map to 500")
	}
}

func TestInfrastructureClassification(t *testing.T) {
	for _, c := range []Code{InvalidArgument, NotFound, PermissionDenied, RateLimited, Canceled, Conflict} {
		if IsInfrastructure(New(c, "x")) {
			t.Errorf("%s must not count as an infrastructure failure", c)
		}
	}
	for _, err := range []error{New(Unavailable, "x"), context.DeadlineExceeded, errors.New("boom")} {
		if !IsInfrastructure(err) {
			t.Errorf("%v must count as an infrastructure failure", err)
		}
	}
}

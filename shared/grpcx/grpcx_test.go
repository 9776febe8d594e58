package grpcx

import (
	"context"
	"errors"
	"testing"

	"github.com/beehive-im/beehive/shared/errs"
)

func TestErrorsRoundTripThroughStatus(t *testing.T) {
	for _, in := range []*errs.Error{
		errs.Invalid("email", "malformed"),
		errs.New(errs.NotFound, "no such user"),
		errs.New(errs.RateLimited, "slow down"),
		errs.New(errs.Conflict, "owner must transfer first"),
	} {
		out := errs.As(FromStatus(ToStatus(in)))
		if out.Code != in.Code || out.Message != in.Message || out.Field != in.Field {
			t.Errorf("round trip %+v -> %+v", in, out)
		}
	}
}

func TestInternalCauseNotSentOverTheWire(t *testing.T) {
	out := errs.As(FromStatus(ToStatus(errors.New("secret path /etc/x"))))
	if out.Code != errs.Internal || out.Message != "internal error" {
		t.Fatalf("got %+v", out)
	}
	if errs.CodeOf(FromStatus(ToStatus(context.DeadlineExceeded))) != errs.DeadlineExceeded {
		t.Fatal("deadline must survive the round trip")
	}
}

package grpcx

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

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

// A retry hint crosses a gRPC hop as RetryInfo, so the edge can tell the
// client how long to wait; a code a retry cannot get past carries none.
func TestRetryHintRoundTripsAsRetryInfo(t *testing.T) {
	for _, c := range []struct {
		in   *errs.Error
		want time.Duration
	}{
		{&errs.Error{Code: errs.Unavailable, Message: "kafka away", RetryAfter: 3 * time.Second}, 3 * time.Second},
		{errs.New(errs.RateLimited, "slow down"), errs.DefaultRetryAfter},
		{errs.New(errs.Unavailable, "breaker open"), errs.DefaultRetryAfter},
		{errs.New(errs.NotFound, "no such user"), 0},
	} {
		st, _ := status.FromError(ToStatus(c.in))
		var info *errdetails.RetryInfo
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				info = ri
			}
		}
		if got := info.GetRetryDelay().AsDuration(); got != c.want {
			t.Errorf("%s: RetryInfo %v, want %v", c.in.Code, got, c.want)
		}
		if got := errs.RetryAfter(FromStatus(ToStatus(c.in))); got != c.want {
			t.Errorf("%s: hint after the round trip %v, want %v", c.in.Code, got, c.want)
		}
	}
}

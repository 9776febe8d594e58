package grpcx

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
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

// An instance that hangs fails its own attempt in time for the retry to
// reach a healthy one, and its breaker counts it.
func TestAHungInstanceFailsItsAttemptAndTheRetryAnswers(t *testing.T) {
	conns := NewConns()
	defer conns.Close()
	mk := func(cc *grpc.ClientConn) endpoint.Endpoint {
		hung := strings.HasPrefix(cc.Target(), "127.0.0.1:1")
		return func(ctx context.Context, _ any) (any, error) {
			if hung {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return "ok", nil
		}
	}
	e := Balanced("test.hung", sd.FixedInstancer{"127.0.0.1:1", "127.0.0.1:2"}, conns, mk, log.NewNopLogger(), BalanceOptions{Timeout: 400 * time.Millisecond})
	for i := 0; i < 4; i++ { // round robin: half the calls try the hung one first
		resp, err := e(context.Background(), nil)
		if err != nil || resp != "ok" {
			t.Fatalf("call %d: %v %v", i, resp, err)
		}
	}
}

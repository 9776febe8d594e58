package query_test

import (
	"context"
	"errors"
	"testing"

	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/kafkax"
)

// applyFails is a store whose writes fail with err.
type applyFails struct {
	query.Store
	err error
}

func (s applyFails) Apply(context.Context, query.Batch) error { return s.err }

// TestPersistStoreFailuresAreRetriedAndRefusalsArePoison: a store that is
// away (an uncoded driver error, unavailable, a timeout) makes Handle fail
// with an error the consumer retries holding its position; a coded refusal
// of the batch is poison, so the consumer isolates and dead-letters it.
func TestPersistStoreFailuresAreRetriedAndRefusalsArePoison(t *testing.T) {
	u := users(2)
	recs := records(t, msgEvent(ids.P2P(u[0], u[1]), u[0], 1))
	for name, tc := range map[string]struct {
		err    error
		poison bool
	}{
		"driver error":     {errors.New("gocql: no hosts available in the pool"), false},
		"unavailable":      {errs.New(errs.Unavailable, "cassandra unavailable"), false},
		"deadline":         {context.DeadlineExceeded, false},
		"invalid argument": {errs.Invalid("content", "too large for the store"), true},
	} {
		t.Run(name, func(t *testing.T) {
			p := query.NewPersister(applyFails{Store: openPebble(t), err: tc.err}, nil)
			err := p.Handle(t.Context(), recs)
			if err == nil {
				t.Fatal("Handle succeeded with a failing store")
			}
			if got := errors.Is(err, kafkax.ErrPoison); got != tc.poison {
				t.Fatalf("err = %v: poison %v, want %v", err, got, tc.poison)
			}
		})
	}
}

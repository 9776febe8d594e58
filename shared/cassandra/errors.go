package cassandra

import (
	"context"
	"errors"

	"github.com/gocql/gocql"

	"github.com/beehive-im/beehive/shared/errs"
)

// Err maps a gocql failure for every store backend in one way:
//   - the caller's own cancellation or deadline keeps its code (canceled,
//     deadline_exceeded);
//   - a statement Cassandra rejects as wrong (syntax, invalid, schema,
//     credentials, protocol) is a bug or a missed migration: internal;
//   - anything else — no host, a closed session, a timeout, an unavailable
//     or overloaded replica, a lightweight transaction of unknown outcome —
//     is an outage: unavailable (503), so callers fail fast and breakers
//     open.
//
// what names the store and operation for logs and the client message.
func Err(ctx context.Context, err error, what string) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return errs.As(ctx.Err())
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errs.As(err)
	}
	var re gocql.RequestError
	if errors.As(err, &re) {
		switch re.Code() {
		case gocql.ErrCodeSyntax, gocql.ErrCodeInvalid, gocql.ErrCodeUnauthorized, gocql.ErrCodeConfig,
			gocql.ErrCodeAlreadyExists, gocql.ErrCodeCredentials, gocql.ErrCodeProtocol:
			return errs.Wrap(errs.Internal, err, what)
		}
	}
	return errs.Wrap(errs.Unavailable, err, what+": store unavailable")
}

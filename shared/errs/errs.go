// Package errs is Beehive's one coded error type. Every domain returns
// *Error for anything a client caused or may retry; transports map the
// code to HTTP status and gRPC code through the single table below, so the
// two mappings cannot drift.
package errs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
)

// Code is a stable snake_case error code that clients may switch on.
type Code string

// The codes of PROTOCOL.md. Never rename one: clients depend on them.
const (
	InvalidArgument  Code = "invalid_argument"
	Unauthenticated  Code = "unauthenticated"
	PermissionDenied Code = "permission_denied"
	NotFound         Code = "not_found"
	AlreadyExists    Code = "already_exists"
	Conflict         Code = "conflict"
	TooLarge         Code = "too_large"
	RateLimited      Code = "rate_limited"
	Unavailable      Code = "unavailable"
	DeadlineExceeded Code = "deadline_exceeded"
	Canceled         Code = "canceled"
	Internal         Code = "internal"
)

type mapping struct {
	http int
	grpc codes.Code
	// infra marks failures of the system rather than of the request: only
	// these count against circuit breakers.
	infra bool
}

// table is the one place where codes meet HTTP and gRPC.
var table = map[Code]mapping{
	InvalidArgument:  {http.StatusBadRequest, codes.InvalidArgument, false},
	Unauthenticated:  {http.StatusUnauthorized, codes.Unauthenticated, false},
	PermissionDenied: {http.StatusForbidden, codes.PermissionDenied, false},
	NotFound:         {http.StatusNotFound, codes.NotFound, false},
	AlreadyExists:    {http.StatusConflict, codes.AlreadyExists, false},
	Conflict:         {http.StatusConflict, codes.FailedPrecondition, false},
	TooLarge:         {http.StatusRequestEntityTooLarge, codes.ResourceExhausted, false},
	RateLimited:      {http.StatusTooManyRequests, codes.Unavailable, false},
	Unavailable:      {http.StatusServiceUnavailable, codes.Unavailable, true},
	DeadlineExceeded: {http.StatusServiceUnavailable, codes.DeadlineExceeded, true},
	Canceled:         {499, codes.Canceled, false},
	Internal:         {http.StatusInternalServerError, codes.Internal, true},
}

// Error is a coded error. Field names the offending input field for
// invalid_argument, so a client can point at it.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RetryAfter is how long a client should wait before trying again,
	// when the failure is one a retry can get past (zero: the default of
	// the code, see RetryAfter). Transports carry it as HTTP Retry-After,
	// the WebSocket error frame's retry_after_ms and gRPC RetryInfo.
	RetryAfter time.Duration `json:"-"`
	Err        error         `json:"-"`
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, errs.New(code, "")) match on code alone.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// New returns an error with the code and message.
func New(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

// Newf formats the message.
func Newf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap keeps cause for logs while showing clients only msg.
func Wrap(code Code, cause error, msg string) *Error {
	return &Error{Code: code, Message: msg, Err: cause}
}

// Invalid is an invalid_argument error naming the field.
func Invalid(field, msg string) *Error {
	return &Error{Code: InvalidArgument, Message: field + ": " + msg, Field: field}
}

// Missing is the invalid_argument error for an absent required field.
func Missing(field string) *Error { return Invalid(field, "is required") }

// Dependency is the error of a call to a service or store the caller
// depends on: a coded error as it is, cancellation and deadlines as they
// are, anything else Unavailable ("<what> unavailable"). err is not nil.
func Dependency(err error, what string) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return As(err)
	}
	return Wrap(Unavailable, err, what+" unavailable")
}

// As returns err as *Error, translating context errors and wrapping
// unknown errors as internal (their text is not shown to clients).
func As(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: DeadlineExceeded, Message: "deadline exceeded", Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Code: Canceled, Message: "request canceled", Err: err}
	}
	return &Error{Code: Internal, Message: "internal error", Err: err}
}

// CodeOf returns the code of err ("" for nil).
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	return As(err).Code
}

// HasCode reports whether err carries code.
func HasCode(err error, code Code) bool { return err != nil && CodeOf(err) == code }

// HTTPStatus is the HTTP status for code.
func HTTPStatus(code Code) int {
	if m, ok := table[code]; ok {
		return m.http
	}
	return http.StatusInternalServerError
}

// GRPCCode is the gRPC code for code.
func GRPCCode(code Code) codes.Code {
	if m, ok := table[code]; ok {
		return m.grpc
	}
	return codes.Internal
}

// IsInfrastructure reports whether err is a failure of the system (a
// dependency down, a timeout, a bug) rather than a refusal of the request.
// Circuit breakers count only these.
func IsInfrastructure(err error) bool {
	if err == nil {
		return false
	}
	m, ok := table[As(err).Code]
	return !ok || m.infra
}

// Body is the JSON error body of PROTOCOL.md.
type Body struct {
	Error *Error `json:"error"`
}

// DefaultRetryAfter is the retry hint of a retryable failure that names
// none: long enough that a crowd of clients does not turn a blip into an
// overload, short enough that a recovered service is used again soon.
const DefaultRetryAfter = time.Second

// RetryAfter is the retry hint of err: its own, or DefaultRetryAfter for
// a code a retry can get past (rate_limited, unavailable,
// deadline_exceeded); zero for anything a retry would only repeat.
func RetryAfter(err error) time.Duration {
	if err == nil {
		return 0
	}
	e := As(err)
	switch e.Code {
	case RateLimited, Unavailable, DeadlineExceeded:
		if e.RetryAfter > 0 {
			return e.RetryAfter
		}
		return DefaultRetryAfter
	}
	return 0
}

// Public returns the error as clients should see it: internal causes hidden.
func Public(err error) *Error {
	e := As(err)
	out := &Error{Code: e.Code, Message: e.Message, Field: e.Field, RetryAfter: e.RetryAfter}
	if e.Code == Internal {
		out.Message = "internal error"
	}
	return out
}

package pusher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Notifier sends one offline push to a device's platform. An error wrapping
// ErrUnregistered means the token is gone for good (the registration is
// dropped); one for which IsPermanent is true will fail again however often
// it is retried; anything else is worth a retry.
type Notifier interface {
	Notify(ctx context.Context, t Task) error
}

// ErrUnregistered: the platform says the push token is no longer valid.
var ErrUnregistered = errors.New("pusher: push token is no longer registered")

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether retrying err is pointless.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p) || errors.Is(err, ErrUnregistered)
}

// Retry is the retry policy of a notifier: Attempts tries in all, pausing
// Backoff, then twice that, up to MaxBackoff, between them. Permanent
// errors end it at once.
type Retry struct {
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// DefaultRetry is 4 attempts, 200 ms doubling up to 5 s.
var DefaultRetry = Retry{Attempts: 4, Backoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = DefaultRetry.Attempts
	}
	if r.Backoff <= 0 {
		r.Backoff = DefaultRetry.Backoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = DefaultRetry.MaxBackoff
	}
	return r
}

func (r Retry) do(ctx context.Context, f func(ctx context.Context) error) error {
	r = r.withDefaults()
	backoff := r.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		if err = f(ctx); err == nil || IsPermanent(err) || attempt >= r.Attempts {
			return err
		}
		if werr := wait(ctx, backoff); werr != nil {
			return fmt.Errorf("%w (last attempt: %v)", werr, err)
		}
		backoff = min(backoff*2, r.MaxBackoff)
	}
}

// statusError is a non-2xx answer of a push provider.
type statusError struct {
	Provider string
	Status   int
	Reason   string
}

func (e *statusError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s: status %d: %s", e.Provider, e.Status, e.Reason)
	}
	return fmt.Sprintf("%s: status %d", e.Provider, e.Status)
}

// classify turns a provider status into an error: 5xx and 429 are
// transient, other 4xx permanent.
func classify(provider string, status int, reason string) error {
	err := &statusError{Provider: provider, Status: status, Reason: reason}
	if status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout {
		return err
	}
	return Permanent(err)
}

// Router picks the notifier of a task's platform.
type Router map[string]Notifier

// Notify implements Notifier.
func (r Router) Notify(ctx context.Context, t Task) error {
	n, ok := r[t.Platform]
	if !ok || n == nil {
		return Permanent(fmt.Errorf("pusher: no notifier for platform %q", t.Platform))
	}
	return n.Notify(ctx, t)
}

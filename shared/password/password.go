// Package password hashes and checks account passwords with bcrypt. It is
// shared so the user service (register) and the auth service (login,
// password change) cannot disagree on the format.
package password

import (
	"golang.org/x/crypto/bcrypt"
	"sync"

	"github.com/beehive-im/beehive/shared/errs"
)

// MaxBytes is bcrypt's input limit; longer passwords are refused rather
// than silently truncated.
const MaxBytes = 72

// Validate checks length rules and names the field in its error.
func Validate(field, pw string, minLen int) error {
	switch {
	case pw == "":
		return errs.Missing(field)
	case len([]rune(pw)) < minLen:
		return errs.Invalid(field, "too short")
	case len(pw) > MaxBytes:
		return errs.Invalid(field, "too long (at most 72 bytes)")
	}
	return nil
}

// Hash returns the bcrypt hash of pw at cost.
func Hash(pw string, cost int) (string, error) {
	if cost < bcrypt.MinCost {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return "", errs.Wrap(errs.Internal, err, "hash password")
	}
	return string(h), nil
}

// Check reports whether pw matches hash.
func Check(hash, pw string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// dummyHash is compared against when an account does not exist, so an
// unknown account costs as much time as a wrong password. Made on first
// use: commands that never log in do not pay for a bcrypt hash at start.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("beehive-dummy-password"), bcrypt.DefaultCost)
	return h
})

// CheckMissing burns the time of one comparison and returns false.
func CheckMissing(pw string) bool {
	_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(pw))
	return false
}

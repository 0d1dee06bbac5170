// Package errdefs defines the error kinds every domain package returns, so
// that the HTTP edges map them to status codes in one place and never read
// error strings. Wrap them with context: fmt.Errorf("start %s: %w", name, errdefs.ErrConflict).
package errdefs

import (
	"errors"
	"fmt"
)

// The error kinds. Each maps to one HTTP status at the edge.
var (
	ErrInvalidArgument    = errors.New("invalid argument")    // 400
	ErrForbidden          = errors.New("forbidden")           // 403: a wrong secret
	ErrNotFound           = errors.New("not found")           // 404
	ErrConflict           = errors.New("conflict")            // 409: duplicate, busy, wrong state
	ErrPreconditionFailed = errors.New("precondition failed") // 412: ETag mismatch
	ErrNotImplemented     = errors.New("not implemented")     // 501
	ErrNoSpace            = errors.New("no space left")       // 507: a full pool or quota
	ErrCancelled          = errors.New("cancelled")
)

// kinded carries a message of its own and a kind for errors.Is, so that
// "unknown key \"foo\"" does not end in ": invalid argument".
type kinded struct {
	kind error
	msg  string
}

func (e *kinded) Error() string        { return e.msg }
func (e *kinded) Is(target error) bool { return target == e.kind }

// Invalid returns a 400-kind error with the given message.
func Invalid(format string, a ...any) error {
	return &kinded{kind: ErrInvalidArgument, msg: fmt.Sprintf(format, a...)}
}

// Forbidden returns a 403-kind error with the given message.
func Forbidden(format string, a ...any) error {
	return &kinded{kind: ErrForbidden, msg: fmt.Sprintf(format, a...)}
}

// NotFound returns a 404-kind error with the given message.
func NotFound(format string, a ...any) error {
	return &kinded{kind: ErrNotFound, msg: fmt.Sprintf(format, a...)}
}

// Conflict returns a 409-kind error with the given message.
func Conflict(format string, a ...any) error {
	return &kinded{kind: ErrConflict, msg: fmt.Sprintf(format, a...)}
}

// PreconditionFailed returns a 412-kind error with the given message.
func PreconditionFailed(format string, a ...any) error {
	return &kinded{kind: ErrPreconditionFailed, msg: fmt.Sprintf(format, a...)}
}

// NoSpace returns a 507-kind error: a pool or a volume's quota is full.
func NoSpace(format string, a ...any) error {
	return &kinded{kind: ErrNoSpace, msg: fmt.Sprintf(format, a...)}
}

// NotImplemented returns a 501-kind error with the given message.
func NotImplemented(format string, a ...any) error {
	return &kinded{kind: ErrNotImplemented, msg: fmt.Sprintf(format, a...)}
}

package client

import (
	"errors"
	"net/http"

	"github.com/hangar-dev/hangar/api"
)

// Error is an error envelope from hangard (or an HTTP error without one).
type Error struct {
	// StatusCode is the envelope's error_code, else the HTTP status.
	StatusCode int
	// Message is the daemon's message, shown to users as is.
	Message string
}

// Error returns the daemon's message.
func (e *Error) Error() string { return e.Message }

// StatusCodeOf returns the HTTP status of an *Error in err's chain, or 0.
func StatusCodeOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// IsNotFound reports whether the daemon answered 404.
func IsNotFound(err error) bool { return StatusCodeOf(err) == http.StatusNotFound }

// IsConflict reports whether the daemon answered 409 (exists, busy, wrong state).
func IsConflict(err error) bool { return StatusCodeOf(err) == http.StatusConflict }

// IsPreconditionFailed reports whether the daemon refused a change because
// the object's ETag no longer matched (412).
func IsPreconditionFailed(err error) bool {
	return StatusCodeOf(err) == http.StatusPreconditionFailed
}

// IsBadRequest reports whether the daemon answered 400.
func IsBadRequest(err error) bool { return StatusCodeOf(err) == http.StatusBadRequest }

// IsNotImplemented reports whether the daemon answered 501.
func IsNotImplemented(err error) bool { return StatusCodeOf(err) == http.StatusNotImplemented }

// OperationError is the outcome of an operation that ended in Failure or
// Cancelled.
type OperationError struct {
	Operation api.Operation
}

// Error returns the operation's err field, the daemon's own message.
func (e *OperationError) Error() string {
	if e.Operation.Err != "" {
		return e.Operation.Err
	}
	if e.Operation.StatusCode == api.Cancelled {
		return "Operation cancelled"
	}
	return "Operation failed"
}

// Cancelled reports whether the operation was cancelled rather than failed.
func (e *OperationError) Cancelled() bool { return e.Operation.StatusCode == api.Cancelled }

// IsOperationCancelled reports whether err is an operation that was cancelled.
func IsOperationCancelled(err error) bool {
	var e *OperationError
	return errors.As(err, &e) && e.Cancelled()
}

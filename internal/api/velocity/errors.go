package velocity

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	wire "github.com/hangar-dev/hangar/api/velocity"
	"github.com/hangar-dev/hangar/internal/edge"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// errUnauthenticated is a request without a live authkey.
var errUnauthenticated = errors.New("a valid authkey is required (POST /u/auth)")

// deniedError is a caller lacking a permission: each route says its
// status (401 or 403 as the seed has it; 404 where the seed hides).
type deniedError struct{ msg string }

func (e *deniedError) Error() string { return e.msg }

func denied(format string, a ...any) error { return &deniedError{fmt.Sprintf(format, a...)} }

// notAcceptableError is the seed's 406: a quota violation, an invalid
// type or mode, a feature this host does not have.
type notAcceptableError struct{ msg string }

func (e *notAcceptableError) Error() string { return e.msg }

func notAcceptable(format string, a ...any) error {
	return &notAcceptableError{fmt.Sprintf(format, a...)}
}

// transitionError is a state change the VM cannot make or that failed in
// the hypervisor: the seed's 500 of PUT /v/vm/state.
type transitionError struct{ err error }

func (e *transitionError) Error() string { return e.err.Error() }
func (e *transitionError) Unwrap() error { return e.err }

// statusOf is the one place errors become statuses; denied is the
// route's answer to a missing permission.
func statusOf(err error, denied int) int {
	var de *deniedError
	var na *notAcceptableError
	var te *transitionError
	switch {
	case errors.Is(err, errUnauthenticated):
		return http.StatusUnauthorized
	case errors.As(err, &de):
		return denied
	case errors.As(err, &na):
		return http.StatusNotAcceptable
	case errors.As(err, &te):
		return http.StatusInternalServerError
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errdefs.ErrForbidden):
		// The core's own denial, past the edge's checks.
		return denied
	case errors.Is(err, errdefs.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, errdefs.ErrNotImplemented):
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// writeError answers err as {"error": "..."} and returns the status.
func writeError(w http.ResponseWriter, err error, denied int) int {
	status := statusOf(err, denied)
	writeJSON(w, status, wire.Error{Error: err.Error()})
	return status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("velocity api: write response", "err", err)
	}
}

// fieldErr is a 400 naming the field.
func fieldErr(field, format string, a ...any) error {
	return errdefs.Invalid("%s: %s", field, fmt.Sprintf(format, a...))
}

// maxBody bounds a request body.
const maxBody = 1 << 20

// decode reads the JSON body into v strictly (edge.DecodeJSON): an
// unknown field, a wrong type or trailing data is a 400 naming it. An
// empty body is the zero request when empty is true.
func decode(r *http.Request, v any, empty bool) error {
	return edge.DecodeJSON(r.Body, v, maxBody, empty)
}

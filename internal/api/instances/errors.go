package instances

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	wire "github.com/hangar-dev/hangar/api/instances"
	"github.com/hangar-dev/hangar/internal/edge"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// errUnauthorized is the answer to a request without a valid bearer
// token over the network.
var errUnauthorized = errors.New("a valid bearer token is required (Authorization: Bearer TOKEN)")

// statusOf is the one place errors become HTTP statuses and the
// dialect's codes; handlers never choose a status themselves.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized, wire.CodeUnauthorized
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return http.StatusBadRequest, wire.CodeBadRequest
	case errors.Is(err, errdefs.ErrForbidden):
		return http.StatusForbidden, wire.CodeForbidden
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound, wire.CodeNotFound
	case errors.Is(err, errdefs.ErrConflict), errors.Is(err, errdefs.ErrPreconditionFailed):
		return http.StatusConflict, wire.CodeConflict
	case errors.Is(err, errdefs.ErrNotImplemented):
		return http.StatusNotImplemented, wire.CodeNotImplemented
	case errors.Is(err, errdefs.ErrNoSpace):
		return http.StatusInsufficientStorage, wire.CodeInternal
	}
	return http.StatusInternalServerError, wire.CodeInternal
}

func writeError(w http.ResponseWriter, err error) {
	status, code := statusOf(err)
	if status == http.StatusInternalServerError {
		slog.Error("instances api", "err", err)
	}
	writeJSON(w, status, wire.Error{Code: code, Message: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("instances api: write response", "err", err)
	}
}

// fieldErr is a 400 naming the field.
func fieldErr(field, format string, a ...any) error {
	return errdefs.Invalid("%s: %s", field, fmt.Sprintf(format, a...))
}

// maxBody bounds a request body: the largest is a create with its env.
const maxBody = 1 << 20

// decode reads the JSON body into v strictly (edge.DecodeJSON): an
// unknown field, a wrong type or trailing data is a 400 naming it. An
// empty body is the zero request when empty is true.
func decode(r *http.Request, v any, empty bool) error {
	return edge.DecodeJSON(r.Body, v, maxBody, empty)
}

package instances

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	wire "github.com/hangar-dev/hangar/api/instances"
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

// decode reads a JSON body into v: unknown fields, a wrong type, a
// second value or trailing garbage are 400s naming what is wrong. An
// empty body is the zero request when empty is true.
func decode(r *http.Request, v any, empty bool) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody+1))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	switch {
	case errors.Is(err, io.EOF):
		if empty {
			return nil
		}
		return errdefs.Invalid("body: a JSON object is required")
	case err != nil:
		return bodyErr(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errdefs.Invalid("body: one JSON object expected, found more after it")
	}
	return nil
}

func bodyErr(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return fieldErr(field, "want %s, got JSON %s", te.Type, te.Value)
	case errors.As(err, &se):
		return errdefs.Invalid("body: invalid JSON at byte %d: %v", se.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return errdefs.Invalid("%s: unknown field", strings.Trim(f, `"`))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errdefs.Invalid("body: truncated JSON")
	}
	return errdefs.Invalid("body: %v", err)
}

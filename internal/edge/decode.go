package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// DecodeJSON reads one JSON value from body into v strictly, as the
// REST dialects take their bodies: an unknown field, a wrong type, a
// second value or trailing data is an errdefs.Invalid naming what is
// wrong (the field where JSON says which). More than limit bytes are
// never read. An empty body leaves v as it is when empty is true.
func DecodeJSON(body io.Reader, v any, limit int64, empty bool) error {
	dec := json.NewDecoder(io.LimitReader(body, limit+1))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	switch {
	case errors.Is(err, io.EOF):
		if empty {
			return nil
		}
		return errdefs.Invalid("body: a JSON object is required")
	case err != nil:
		return BodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errdefs.Invalid("body: one JSON object expected, found more after it")
	}
	return nil
}

// BodyError turns encoding/json's error into an errdefs.Invalid naming
// the field or the byte at fault.
func BodyError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return errdefs.Invalid("%s: %s", field, fmt.Sprintf("want %s, got JSON %s", te.Type, te.Value))
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

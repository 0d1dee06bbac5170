package lxd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// statusOf maps an error kind to its HTTP status. This is the one place
// where that happens: handlers never pick status codes for errors.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errdefs.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, errdefs.ErrPreconditionFailed):
		return http.StatusPreconditionFailed
	case errors.Is(err, errdefs.ErrNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, errdefs.ErrNoSpace):
		return http.StatusInsufficientStorage
	default:
		return http.StatusInternalServerError
	}
}

// writeJSON writes an envelope with the given HTTP status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		slog.Debug("write response", "err", err)
	}
}

// syncPrefix is api.Response of a successful sync answer as encoding/json
// writes it, up to its metadata. writeSync writes it and the metadata's
// encoding straight into one buffer instead of marshalling the metadata
// and then the envelope, which validates and copies the whole metadata a
// second time (the half of a 1000-instance list's cost on the daemon).
const syncPrefix = `{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":`

// syncBuffers holds the buffers answers are encoded into; a list of 1000
// instances is about 1.5 MB, so reuse spares the collector that much per
// request.
var syncBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer bounds what goes back to the pool, so that one huge
// answer does not pin its memory for good.
const maxPooledBuffer = 8 << 20

// writeSync answers 200 with a sync envelope; etag, when set, is sent as
// the ETag header. The bytes are those of writeJSON with an api.Response
// holding json.Marshal(metadata), with a Content-Length.
func writeSync(w http.ResponseWriter, metadata any, etag string) {
	buf := syncBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			buf.Reset()
			syncBuffers.Put(buf)
		}
	}()
	buf.Reset()
	buf.WriteString(syncPrefix)
	// Encoder.Encode escapes HTML as json.Marshal does; it ends the value
	// with a newline, which the envelope's closing brace replaces.
	if err := json.NewEncoder(buf).Encode(metadata); err != nil {
		writeError(w, fmt.Errorf("encode response: %w", err))
		return
	}
	buf.Truncate(buf.Len() - 1)
	buf.WriteString("}\n")
	if etag != "" {
		w.Header().Set("ETag", `"`+etag+`"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(buf.Bytes()); err != nil {
		slog.Debug("write response", "err", err)
	}
}

// writeAsync answers 202 with an async envelope pointing at an operation.
func writeAsync(w http.ResponseWriter, op api.Operation) {
	raw, _ := json.Marshal(op)
	url := "/1.0/operations/" + op.ID
	w.Header().Set("Location", url)
	writeJSON(w, http.StatusAccepted, api.Response{
		Type:       api.AsyncResponse,
		Status:     api.OperationCreated.String(),
		StatusCode: int(api.OperationCreated),
		Operation:  url,
		Metadata:   raw,
	})
}

// writeError answers with an error envelope. Internal errors are logged,
// since the client cannot act on them.
func writeError(w http.ResponseWriter, err error) {
	code := statusOf(err)
	if code == http.StatusInternalServerError {
		slog.Error("request failed", "err", err)
	}
	writeJSON(w, code, api.Response{
		Type:      api.ErrorResponse,
		ErrorCode: code,
		Error:     err.Error(),
		Metadata:  json.RawMessage("null"),
	})
}

// maxBody bounds request bodies other than image uploads.
const maxBody = 8 << 20

// decode reads a JSON body into v. Type errors name the field, so a client
// sending "ephemeral": "yes" learns which field is wrong.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return errdefs.Invalid("field %q: expected %s, got JSON %s", jsonField(te.Field), te.Type, te.Value)
		case errors.Is(err, io.EOF):
			return errdefs.Invalid("request body is empty")
		case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
			return errdefs.Invalid("request body is not valid JSON: %v", err)
		default:
			return errdefs.Invalid("bad request body: %v", err)
		}
	}
	return nil
}

// jsonField turns encoding/json's field path into the JSON name a client
// sent: embedded Go structs (InstancePut.ephemeral) are not part of it.
func jsonField(path string) string {
	var kept []string
	for _, part := range strings.Split(path, ".") {
		if part != "" && !(part[0] >= 'A' && part[0] <= 'Z') {
			kept = append(kept, part)
		}
	}
	if len(kept) == 0 {
		return "body"
	}
	return strings.Join(kept, ".")
}

// ifMatch returns the ETag a client sent in If-Match, without quotes.
func ifMatch(r *http.Request) string {
	return strings.Trim(r.Header.Get("If-Match"), `"`)
}

// recursion reads ?recursion=N as LXD does: what is not a positive
// integer is 0 (LXD ignores the parse error), and beyond 2 is 2. The error
// is always nil; it stays for the callers' sake.
func recursion(r *http.Request) (int, error) {
	n, err := strconv.Atoi(r.URL.Query().Get("recursion"))
	switch {
	case err != nil || n <= 0:
		return 0, nil
	case n >= 2:
		return 2, nil
	default:
		return 1, nil
	}
}

// etagJSON hashes the JSON of v: the ETag of a resource's writable fields.
func etagJSON(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

package virt

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/hangar-dev/hangar/internal/api/virt/query"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// JSON-RPC 2.0 error codes, and the middleware's own two.
const (
	codeParse          = -32700
	codeInvalidRequest = -32600
	codeNoMethod       = -32601
	codeInvalidParams  = -32602
	codeTooManyCalls   = -32000
	codeCallError      = -32001
)

// errnos the middleware puts in error.data.error, with their names.
const (
	errnoENOENT            = 2
	errnoEACCES            = 13
	errnoEFAULT            = 14
	errnoEBUSY             = 16
	errnoEEXIST            = 17
	errnoEINVAL            = 22
	errnoENOSPC            = 28
	errnoENOTSUP           = 95
	errnoETIMEDOUT         = 110
	errnoENOTAUTHENTICATED = 207
)

var errnames = map[int]string{
	errnoENOENT: "ENOENT", errnoEACCES: "EACCES", errnoEFAULT: "EFAULT", errnoEBUSY: "EBUSY",
	errnoEEXIST: "EEXIST", errnoEINVAL: "EINVAL", errnoENOSPC: "ENOSPC", errnoENOTSUP: "ENOTSUP",
	errnoETIMEDOUT: "ETIMEDOUT", errnoENOTAUTHENTICATED: "ENOTAUTHENTICATED",
}

func errname(errno int) string {
	if n, ok := errnames[errno]; ok {
		return n
	}
	return "EUNKNOWN"
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int        `json:"code"`
	Message string     `json:"message"`
	Data    *errorData `json:"data,omitempty"`
}

// errorData is the middleware's error.data.
type errorData struct {
	Error   int    `json:"error"`
	Errname string `json:"errname"`
	Reason  string `json:"reason"`
	Trace   any    `json:"trace"`
	// Extra is [[attribute, message, errno], ...] for validation errors.
	Extra any `json:"extra"`
}

// callError is the middleware's CallError: an errno and a message.
type callError struct {
	errno int
	msg   string
}

func (e *callError) Error() string { return "[" + errname(e.errno) + "] " + e.msg }

func newCallError(errno int, format string, a ...any) *callError {
	return &callError{errno: errno, msg: fmt.Sprintf(format, a...)}
}

var (
	errNotAuthenticated = newCallError(errnoENOTAUTHENTICATED, "Not authenticated")
	errNotAuthorized    = newCallError(errnoEACCES, "Not authorized")
)

// vError is one invalid attribute.
type vError struct {
	Attr, Msg string
	Errno     int
}

// validationErrors is the middleware's ValidationErrors: every invalid
// attribute of one call, each named by its path
// ("virt.instance.create.devices.0.source_port").
type validationErrors []vError

func (v validationErrors) Error() string {
	var b strings.Builder
	for _, e := range v {
		fmt.Fprintf(&b, "[%s] %s: %s\n", errname(e.Errno), e.Attr, e.Msg)
	}
	return b.String()
}

func (v *validationErrors) add(attr, format string, a ...any) {
	*v = append(*v, vError{Attr: attr, Msg: fmt.Sprintf(format, a...), Errno: errnoEINVAL})
}

// err returns v as an error, nil when empty.
func (v validationErrors) err() error {
	if len(v) == 0 {
		return nil
	}
	return v
}

func invalid(attr, format string, a ...any) error {
	var v validationErrors
	v.add(attr, format, a...)
	return v
}

// toRPCError is the one place errors become JSON-RPC errors. method
// prefixes the attribute of errors that name none (a core's refusal of
// a valid-looking argument, a query-filters path).
func toRPCError(method string, err error, log *slog.Logger) *rpcError {
	var ve validationErrors
	var ce *callError
	var qe *query.Error
	switch {
	case errors.As(err, &ve):
		return validationRPC(ve)
	case errors.As(err, &qe):
		return validationRPC(validationErrors{{Attr: method + "." + qe.Path, Msg: qe.Message, Errno: errnoEINVAL}})
	case errors.As(err, &ce):
		return callRPC(ce.errno, err.Error(), nil)
	case errors.Is(err, errdefs.ErrInvalidArgument):
		// The core refused a value the edge's schema let through (a
		// config value, a device the host lacks): the call's arguments
		// are invalid, so the middleware's shape for it.
		return validationRPC(validationErrors{{Attr: method, Msg: err.Error(), Errno: errnoEINVAL}})
	case errors.Is(err, errdefs.ErrForbidden):
		return callRPC(errnoEACCES, "[EACCES] "+err.Error(), nil)
	case errors.Is(err, errdefs.ErrNotFound):
		return callRPC(errnoENOENT, "[ENOENT] "+err.Error(), nil)
	case errors.Is(err, errdefs.ErrConflict):
		return callRPC(errnoEEXIST, "[EEXIST] "+err.Error(), nil)
	case errors.Is(err, errdefs.ErrPreconditionFailed):
		return callRPC(errnoEBUSY, "[EBUSY] "+err.Error(), nil)
	case errors.Is(err, errdefs.ErrNotImplemented):
		return callRPC(errnoENOTSUP, "[ENOTSUP] "+err.Error(), nil)
	case errors.Is(err, errdefs.ErrNoSpace):
		return callRPC(errnoENOSPC, "[ENOSPC] "+err.Error(), nil)
	}
	if log != nil {
		log.Error("virt api: call failed", "method", method, "err", err)
	}
	return callRPC(errnoEFAULT, "[EFAULT] "+err.Error(), nil)
}

func validationRPC(ve validationErrors) *rpcError {
	extra := make([][]any, 0, len(ve))
	for _, e := range ve {
		extra = append(extra, []any{e.Attr, e.Msg, e.Errno})
	}
	return &rpcError{Code: codeInvalidParams, Message: "Invalid params",
		Data: &errorData{Error: errnoEINVAL, Errname: "EINVAL", Reason: ve.Error(), Extra: extra}}
}

func callRPC(errno int, reason string, extra any) *rpcError {
	msg := "Method call error"
	if errno == errnoENOTAUTHENTICATED {
		msg = "Not authenticated"
	}
	return &rpcError{Code: codeCallError, Message: msg,
		Data: &errorData{Error: errno, Errname: errname(errno), Reason: reason, Extra: extra}}
}

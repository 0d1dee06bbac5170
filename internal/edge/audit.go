package edge

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
)

// AuditLogger returns the audit log: log's records under the logger
// name "audit", so they can be filtered and shipped apart.
func AuditLogger(log *slog.Logger) *slog.Logger {
	return log.With("logger", "audit")
}

// Audit logs, after next answered, every request that was denied (401,
// 403) or that may change something (any method but GET, HEAD and
// OPTIONS), with the identity from the context (Authenticate must run
// first), the project (?project=, "default" without), the method, path,
// status and duration.
func Audit(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK // nothing written: net/http answers 200
		}
		denied := status == http.StatusUnauthorized || status == http.StatusForbidden
		if !denied && !mutating(r.Method) {
			return
		}
		id := auth.From(r.Context())
		project := r.URL.Query().Get("project")
		if project == "" {
			project = "default"
		}
		level := slog.LevelInfo
		if denied {
			level = slog.LevelWarn
		}
		log.LogAttrs(r.Context(), level, "request",
			slog.String("identity_kind", string(id.Kind)),
			slog.String("identity", id.Name),
			slog.String("fingerprint", id.Fingerprint),
			slog.String("source", r.RemoteAddr),
			slog.String("project", project),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Duration("took", time.Since(start)),
		)
	})
}

func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// statusRecorder keeps the status a handler wrote. It passes Flush and
// Hijack through: events and websockets (exec, console) hijack the
// connection, and the audit must not break them.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("response writer cannot be hijacked")
	}
	if s.status == 0 {
		s.status = http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

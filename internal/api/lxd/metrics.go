package lxd

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Metrics is what the edge needs of the metrics registry (package
// metrics): the scrape, and the timing of every API request.
type Metrics interface {
	// Write writes the series in the text format ContentType names;
	// project "" means every project.
	Write(ctx context.Context, w io.Writer, project string) error
	ObserveRequest(method, route string, d time.Duration)
	ContentType() string
}

// getMetrics serves GET /1.0/metrics: the Prometheus series, not JSON.
// ?project= keeps one project's instances (the middleware has checked it
// names a project), as LXD's.
func (s *Server) getMetrics(w http.ResponseWriter, r *http.Request) {
	if s.Metrics == nil {
		writeError(w, errdefs.NotImplemented("hangard serves no metrics"))
		return
	}
	// Written to a buffer first inside Write, so a failure is still an
	// error answer, not a truncated scrape.
	w.Header().Set("Content-Type", s.Metrics.ContentType())
	if err := s.Metrics.Write(r.Context(), w, r.URL.Query().Get("project")); err != nil {
		s.Log.Warn("metrics", "err", err)
		writeError(w, err)
	}
}

// timed records each request's time by the route pattern the router
// matched (never the raw path: instance names would make the series
// unbounded). It wraps the router itself, innermost, because the router
// sets the pattern on the request it is handed, which the outer
// middleware (that may pass a copy with a new context) never sees.
// Websocket upgrades are left out: their time is the session's.
func (s *Server) timed(next http.Handler) http.Handler {
	if s.Metrics == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			return
		}
		route := r.Pattern
		if route == "" {
			route = "none"
		}
		s.Metrics.ObserveRequest(r.Method, route, time.Since(start))
	})
}

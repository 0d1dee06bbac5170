package lxd

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Metrics is what the edge needs of the metrics registry (package
// metrics): the scrape, and the timing of every API request.
type Metrics interface {
	// Write writes the series in the text format ContentType names;
	// no projects means every project's, and the daemon's own.
	Write(ctx context.Context, w io.Writer, projects []string) error
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
	var projects []string
	if p := r.URL.Query().Get("project"); p != "" {
		projects = []string{p}
	}
	// A certificate restricted to some projects reads their series only
	// (as LXD's), and none of the daemon's own; another project it names
	// does not exist for it.
	if id := auth.From(r.Context()); id.Restricted {
		switch {
		case len(projects) == 0:
			projects = id.Projects
			if len(projects) == 0 {
				projects = []string{""} // no project: no instance series
			}
		case !slices.Contains(id.Projects, projects[0]):
			writeError(w, errdefs.NotFound("project %q not found", projects[0]))
			return
		}
	}
	// Written to a buffer first inside Write, so a failure is still an
	// error answer, not a truncated scrape.
	w.Header().Set("Content-Type", s.Metrics.ContentType())
	if err := s.Metrics.Write(r.Context(), w, projects); err != nil {
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

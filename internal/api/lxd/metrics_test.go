package lxd

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/metrics"
)

// GET /1.0/metrics serves the registry's text, and every request is timed
// under the route pattern it matched, never its raw path.
func TestMetricsEndpoint(t *testing.T) {
	ts, _ := newServerWith(t, &fakeDriver{running: map[string]int{}}, func(s *Server) {
		s.Metrics = metrics.New(metrics.Config{Instances: s.Instances})
	})
	get := func(path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	for _, p := range []string{"/1.0/instances/nosuch", "/1.0/instances/other", "/1.0/nowhere/x"} {
		get(p)
	}
	tests := []struct {
		name, path string
		code       int
		want       []string
		wantNot    []string
	}{{
		name: "every project", path: "/1.0/metrics", code: 200,
		want: []string{
			`hangar_api_request_duration_seconds_count{method="GET",route="GET /1.0/instances/{name}"} 2`,
			`hangar_api_request_duration_seconds_count{method="GET",route="/"} 1`,
			"go_goroutines", "# EOF\n",
		},
		wantNot: []string{"nosuch", "/1.0/nowhere"},
	}, {
		name: "one project", path: "/1.0/metrics?project=default", code: 200,
		want:    []string{"# EOF\n"},
		wantNot: []string{"hangar_api", "go_goroutines"},
	}, {
		name: "unknown project", path: "/1.0/metrics?project=nosuch", code: 404,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, ct, body := get(tc.path)
			if code != tc.code {
				t.Fatalf("%s: %d, want %d: %s", tc.path, code, tc.code, body)
			}
			if code != 200 {
				return
			}
			if ct != metrics.ContentType {
				t.Errorf("Content-Type %q", ct)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("no %q in\n%s", w, body)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(body, w) {
					t.Errorf("%q in\n%s", w, body)
				}
			}
		})
	}
}

// fakeMetricsWriter records which projects a scrape asked for.
type fakeMetricsWriter struct{ got []string }

func (f *fakeMetricsWriter) Write(_ context.Context, w io.Writer, projects []string) error {
	f.got = projects
	_, err := io.WriteString(w, "# EOF\n")
	return err
}
func (f *fakeMetricsWriter) ObserveRequest(string, string, time.Duration) {}
func (f *fakeMetricsWriter) ContentType() string                          { return metrics.ContentType }

// A certificate restricted to some projects scrapes their series only,
// and another project it names is not found.
func TestMetricsRestricted(t *testing.T) {
	restricted := auth.Identity{Kind: auth.KindCertificate, Type: "metrics", Restricted: true, Projects: []string{"p1", "p2"}}
	tests := []struct {
		name  string
		id    auth.Identity
		query string
		code  int
		want  []string
	}{
		{"unrestricted, every project", auth.Identity{Kind: auth.KindCertificate, Type: "metrics"}, "", 200, nil},
		{"unrestricted, one project", auth.Identity{Kind: auth.KindCertificate, Type: "metrics"}, "?project=p3", 200, []string{"p3"}},
		{"restricted, its projects", restricted, "", 200, []string{"p1", "p2"}},
		{"restricted, one of its", restricted, "?project=p2", 200, []string{"p2"}},
		{"restricted, another", restricted, "?project=p3", 404, nil},
		{"restricted to none", auth.Identity{Kind: auth.KindCertificate, Type: "metrics", Restricted: true}, "", 200, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeMetricsWriter{}
			s := &Server{Metrics: f, Log: slog.New(slog.DiscardHandler)}
			req := httptest.NewRequest(http.MethodGet, "/1.0/metrics"+tt.query, nil)
			req = req.WithContext(auth.WithIdentity(req.Context(), tt.id))
			rec := httptest.NewRecorder()
			s.getMetrics(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if tt.code == 200 && !slices.Equal(f.got, tt.want) {
				t.Errorf("scraped projects %q, want %q", f.got, tt.want)
			}
		})
	}
}

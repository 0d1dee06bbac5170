package lxd

import (
	"io"
	"net/http"
	"strings"
	"testing"

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

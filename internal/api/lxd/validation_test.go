package lxd

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
)

// TestRefusedBeforeAnOperation: what can be checked at once is answered
// at once with a 4xx naming the problem, never with a 202 whose operation
// fails, nor a 500 from the runtime.
func TestRefusedBeforeAnOperation(t *testing.T) {
	ts := newTestServer(t)
	launch(t, ts, "c1")
	launch(t, ts, "c2")
	json := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		errHas                   string
	}{
		{"rename to a bad name", "POST", "/1.0/instances/c1", `{"name":"1bad"}`, nil, 400, "must not start with a digit"},
		{"rename to a name with a slash", "POST", "/1.0/instances/c1", `{"name":"a/b"}`, nil, 400, "letters, digits and hyphens"},
		{"rename to a taken name", "POST", "/1.0/instances/c1", `{"name":"c2"}`, nil, 409, `"c2" is already in use`},
		{"rename to its own name", "POST", "/1.0/instances/c1", `{"name":"c1"}`, nil, 409, "already in use"},
		{"rename without a name", "POST", "/1.0/instances/c1", `{}`, nil, 409, "already in use"},
		{"rename a missing instance", "POST", "/1.0/instances/ghost", `{"name":"c3"}`, nil, 404, "ghost"},
		{"unknown source type", "POST", "/1.0/instances", `{"name":"x","source":{"type":"teleport"}}`, nil, 400, `"teleport"`},
		{"copy of a missing instance", "POST", "/1.0/instances", `{"name":"x","source":{"type":"copy","source":"ghost"}}`, nil, 404, "ghost"},
		{"copy of a missing snapshot", "POST", "/1.0/instances", `{"name":"x","source":{"type":"copy","source":"c1/nope"}}`, nil, 404, "nope"},
		{"copy with no source", "POST", "/1.0/instances", `{"name":"x","source":{"type":"copy"}}`, nil, 400, "source"},
		{"copy refresh not implemented", "POST", "/1.0/instances", `{"name":"x","source":{"type":"copy","source":"c1","refresh":true}}`, nil, 501, "refresh"},
		{"migration not implemented", "POST", "/1.0/instances", `{"name":"x","source":{"type":"migration"}}`, nil, 501, "migration"},
		{"unknown image source type", "POST", "/1.0/images", `{"source":{"type":"teleport"}}`, json, 400, `"teleport"`},
		{"image from a URL not implemented", "POST", "/1.0/images", `{"source":{"type":"url","url":"https://x"}}`, json, 501, "url"},
		{"processes above the kernel's", "PATCH", "/1.0/instances/c1", `{"config":{"limits.processes":"5000000"}}`, nil, 400, "limits.processes"},
		{"CPUs the host lacks", "PATCH", "/1.0/instances/c1", `{"config":{"limits.cpu":"0-8191"}}`, nil, 400, "limits.cpu"},
		{"memory above the host's", "PUT", "/1.0/profiles/default", `{"config":{"limits.memory":"2GiB"}}`, nil, 400, "limits.memory"},
		{"NUL in the environment", "PATCH", "/1.0/profiles/default", `{"config":{"environment.A":"x\u0000y"}}`, nil, 400, "environment.A"},
		{"NUL at create", "POST", "/1.0/instances", `{"name":"x","source":{"type":"image","alias":"busybox"},"config":{"environment.A":"\u0000"}}`, nil, 400, "environment.A"},
		{"profile create", "POST", "/1.0/profiles", `{"name":"p","config":{"limits.memory":"1MiB"}}`, nil, 400, "limits.memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, env := call(t, ts, tt.method, tt.path, tt.body, tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tt.status, env)
			}
			if env.Type != api.ErrorResponse || env.ErrorCode != tt.status || !strings.Contains(env.Error, tt.errHas) {
				t.Fatalf("error envelope %+v, want code %d containing %q", env, tt.status, tt.errHas)
			}
		})
	}
	// A good rename still runs as an operation.
	resp, env := call(t, ts, "POST", "/1.0/instances/c1", `{"name":"c3"}`, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("rename: %d %+v", resp.StatusCode, env)
	}
	if _, done := call(t, ts, "GET", env.Operation+"/wait?timeout=10", "", nil); done.Type != api.SyncResponse {
		t.Fatalf("wait: %+v", done)
	}
	if resp, _ := call(t, ts, "GET", "/1.0/instances/c3", "", nil); resp.StatusCode != 200 {
		t.Fatalf("c3 after rename: %d", resp.StatusCode)
	}
}

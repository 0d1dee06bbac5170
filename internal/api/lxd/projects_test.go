package lxd

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/store"
)

// newProjectServer serves the API with a project service over a store of
// its own.
func newProjectServer(t *testing.T) *httptest.Server {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "projects.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ps := &project.Service{Store: st}
	ps.Sources = []project.UsageSource{project.StoreCounts{S: ps}}
	ts, _ := newServerWith(t, &fakeDriver{running: map[string]int{}}, func(s *Server) { s.Projects = ps })
	return ts
}

// getProject returns a project and its ETag.
func getAPIProject(t *testing.T, ts *httptest.Server, name string) (api.Project, string) {
	t.Helper()
	resp, env := call(t, ts, "GET", "/1.0/projects/"+name, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET project %s: %d %s", name, resp.StatusCode, env.Error)
	}
	var p api.Project
	if err := json.Unmarshal(env.Metadata, &p); err != nil {
		t.Fatal(err)
	}
	return p, resp.Header.Get("ETag")
}

func TestProjectsAPI(t *testing.T) {
	ts := newProjectServer(t)
	steps := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		errHas                   string
	}{
		{"create", "POST", "/1.0/projects", `{"name":"p1","description":"one","config":{"limits.instances":"2"}}`, nil, 200, ""},
		{"create child", "POST", "/1.0/projects", `{"name":"kid","parent":"p1"}`, nil, 200, ""},
		{"duplicate", "POST", "/1.0/projects", `{"name":"p1"}`, nil, 409, "already exists"},
		{"slash", "POST", "/1.0/projects", `{"name":"a/b"}`, nil, 400, "slashes"},
		{"star", "POST", "/1.0/projects", `{"name":"*"}`, nil, 400, "reserved"},
		{"unknown key", "POST", "/1.0/projects", `{"name":"x","config":{"limits.bananas":"1"}}`, nil, 400, `"limits.bananas"`},
		{"bad limit", "POST", "/1.0/projects", `{"name":"x","config":{"limits.instances":"-2"}}`, nil, 400, "limits.instances"},
		{"missing parent", "POST", "/1.0/projects", `{"name":"x","parent":"nope"}`, nil, 404, "nope"},
		{"bad json", "POST", "/1.0/projects", `{"name":`, nil, 400, "JSON"},
		{"get missing", "GET", "/1.0/projects/nope", "", nil, 404, "not found"},
		{"stale etag", "PUT", "/1.0/projects/p1", `{"config":{}}`, map[string]string{"If-Match": "stale"}, 412, "ETag"},
		{"patch", "PATCH", "/1.0/projects/p1", `{"config":{"limits.cpu":"4"}}`, nil, 200, ""},
		{"patch bad value", "PATCH", "/1.0/projects/p1", `{"config":{"limits.memory":"lots"}}`, nil, 400, "limits.memory"},
		{"loop", "PATCH", "/1.0/projects/p1", `{"parent":"kid"}`, nil, 400, "loop"},
		{"delete with child", "DELETE", "/1.0/projects/p1", "", nil, 409, "child projects kid"},
		{"delete default", "DELETE", "/1.0/projects/default", "", nil, 403, "default"},
		{"rename default", "POST", "/1.0/projects/default", `{"name":"x"}`, nil, 403, "default"},
		{"rename to slash", "POST", "/1.0/projects/kid", `{"name":"a/b"}`, nil, 400, "slashes"},
		{"state missing", "GET", "/1.0/projects/nope/state", "", nil, 404, "not found"},
		{"project param", "GET", "/1.0/instances?project=p1", "", nil, 200, ""},
		{"unknown project param", "GET", "/1.0/instances?project=nope", "", nil, 404, `project "nope" not found`},
		{"unknown project on projects", "GET", "/1.0/projects?project=nope", "", nil, 404, `project "nope" not found`},
		{"bad recursion", "GET", "/1.0/projects?recursion=x", "", nil, 200, ""},
	}
	for _, st := range steps {
		resp, env := call(t, ts, st.method, st.path, st.body, st.header)
		if resp.StatusCode != st.status || !strings.Contains(env.Error, st.errHas) {
			t.Errorf("%s: %d %q, want %d with %q", st.name, resp.StatusCode, env.Error, st.status, st.errHas)
		}
	}

	p1, etag := getAPIProject(t, ts, "p1")
	want := map[string]string{"features.images": "true", "features.profiles": "true", "features.storage.volumes": "true", "limits.instances": "2", "limits.cpu": "4"}
	if !equalMaps(p1.Config, want) || p1.Description != "one" || p1.Parent != nil {
		t.Errorf("p1 = %+v", p1)
	}
	if !slices.Equal(p1.UsedBy, []string{"/1.0/profiles/default?project=p1", "/1.0/projects/kid"}) {
		t.Errorf("p1 used_by = %v", p1.UsedBy)
	}
	kid, _ := getAPIProject(t, ts, "kid")
	if kid.Parent == nil || *kid.Parent != "p1" {
		t.Errorf("kid parent = %v", kid.Parent)
	}

	// PUT with the right ETag; lxc's body has no parent, which stays.
	resp, env := call(t, ts, "PUT", "/1.0/projects/kid", `{"description":"child","config":{"features.profiles":"true","features.images":"true","features.storage.volumes":"true"}}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("PUT kid: %d %s", resp.StatusCode, env.Error)
	}
	if kid, _ = getAPIProject(t, ts, "kid"); kid.Parent == nil || kid.Description != "child" {
		t.Errorf("PUT without parent changed it: %+v", kid)
	}
	resp, env = call(t, ts, "PUT", "/1.0/projects/p1", `{"description":"uno","config":{"limits.instances":"2","features.profiles":"true","features.images":"true","features.storage.volumes":"true"}}`, map[string]string{"If-Match": etag})
	if resp.StatusCode != 200 {
		t.Fatalf("PUT with ETag: %d %s", resp.StatusCode, env.Error)
	}

	// GET /1.0 says which project the request acts in.
	_, env = call(t, ts, "GET", "/1.0?project=kid", "", nil)
	var info api.Server
	_ = json.Unmarshal(env.Metadata, &info)
	if info.Environment.Project != "kid" {
		t.Errorf("environment.project = %q, want kid", info.Environment.Project)
	}

	// State: every resource, -1 where unlimited.
	_, env = call(t, ts, "GET", "/1.0/projects/p1/state", "", nil)
	var state api.ProjectState
	_ = json.Unmarshal(env.Metadata, &state)
	if len(state.Resources) != 8 || state.Resources["instances"] != (api.ProjectStateResource{Limit: 2, Usage: 0}) || state.Resources["memory"].Limit != -1 {
		t.Errorf("state = %+v", state)
	}
	if !strings.Contains(string(env.Metadata), `"Limit":2`) {
		t.Errorf("state fields not as LXD's: %s", env.Metadata)
	}

	// List, both recursions.
	_, env = call(t, ts, "GET", "/1.0/projects", "", nil)
	var urls []string
	_ = json.Unmarshal(env.Metadata, &urls)
	if !slices.Equal(urls, []string{"/1.0/projects/default", "/1.0/projects/kid", "/1.0/projects/p1"}) {
		t.Errorf("list = %v", urls)
	}
	_, env = call(t, ts, "GET", "/1.0/projects?recursion=1", "", nil)
	var all []api.Project
	_ = json.Unmarshal(env.Metadata, &all)
	if len(all) != 3 || all[0].Name != "default" {
		t.Errorf("list recursion=1 = %+v", all)
	}

	// Rename is an operation; the child follows.
	resp, env = call(t, ts, "POST", "/1.0/projects/p1", `{"name":"p2"}`, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("rename: %d %s", resp.StatusCode, env.Error)
	}
	_, done := call(t, ts, "GET", env.Operation+"/wait?timeout=10", "", nil)
	var op api.Operation
	_ = json.Unmarshal(done.Metadata, &op)
	if op.StatusCode != api.Success {
		t.Fatalf("rename operation: %+v", op)
	}
	if kid, _ = getAPIProject(t, ts, "kid"); kid.Parent == nil || *kid.Parent != "p2" {
		t.Errorf("kid parent after rename = %v", kid.Parent)
	}
	// A renamed project is resolved under its new name only.
	if resp, _ := call(t, ts, "GET", "/1.0/instances?project=p1", "", nil); resp.StatusCode != 404 {
		t.Errorf("old name still resolves: %d", resp.StatusCode)
	}

	for _, name := range []string{"kid", "p2"} {
		if resp, env := call(t, ts, "DELETE", "/1.0/projects/"+name, "", nil); resp.StatusCode != 200 {
			t.Errorf("DELETE %s: %d %s", name, resp.StatusCode, env.Error)
		}
	}
	if resp, _ := call(t, ts, "GET", "/1.0/instances?project=kid", "", nil); resp.StatusCode != 404 {
		t.Errorf("deleted project still resolves: %d", resp.StatusCode)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Without a project service only the default project exists.
func TestProjectsWithoutService(t *testing.T) {
	ts := newTestServer(t)
	for _, tt := range []struct {
		path   string
		status int
	}{
		{"/1.0/instances?project=default", 200},
		{"/1.0/instances", 200},
		{"/1.0/instances?project=web", 404},
		{"/1.0/projects", 501},
		{"/1.0/projects/default", 501},
	} {
		if resp, env := call(t, ts, "GET", tt.path, "", nil); resp.StatusCode != tt.status {
			t.Errorf("GET %s: %d %s, want %d", tt.path, resp.StatusCode, env.Error, tt.status)
		}
	}
}

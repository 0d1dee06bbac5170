package cli

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
)

func TestProjectCommands(t *testing.T) {
	conf := t.TempDir()
	t.Setenv(ConfigEnv, conf)
	p1 := api.Project{Name: "p1", ProjectPut: api.ProjectPut{Config: map[string]string{"features.images": "true", "limits.cpu": "4"}}, UsedBy: []string{"/1.0/profiles/default?project=p1"}}
	top := "p1"
	kid := api.Project{Name: "kid", ProjectPut: api.ProjectPut{Config: map[string]string{}, Parent: &top}}
	f := newFakeHangard(t, map[string]http.HandlerFunc{
		"GET /1.0/projects/p1":       fakeOK(p1, `"e1"`),
		"GET /1.0/projects/nope":     fakeFail(404, `project "nope" not found`),
		"PUT /1.0/projects/p1":       fakeOK(map[string]any{}, ""),
		"POST /1.0/projects":         fakeOK(map[string]any{}, ""),
		"GET /1.0/projects":          fakeOK([]api.Project{p1, kid, {Name: "default", ProjectPut: api.ProjectPut{Config: map[string]string{}}}}, ""),
		"GET /1.0/projects/p1/state": fakeOK(api.ProjectState{Resources: map[string]api.ProjectStateResource{"instances": {Limit: 2, Usage: 1}, "memory": {Limit: -1, Usage: 1 << 30}}}, ""),
		"DELETE /1.0/projects/p1":    fakeOK(map[string]any{}, ""),
		"GET /1.0/instances":         fakeOK([]api.InstanceFull{}, ""),
	})
	steps := []struct {
		args    []string
		code    int
		out     string // a part of stdout
		errOut  string // a part of stderr
		request string // the last request
	}{
		{[]string{"project", "switch", "nope"}, 1, "", `project "nope" not found`, "GET /1.0/projects/nope"},
		{[]string{"project", "switch", "p1"}, 0, "", "", "GET /1.0/projects/p1"},
		{[]string{"list", "--format", "csv"}, 0, "", "", "GET /1.0/instances?recursion=2&project=p1"},
		{[]string{"--project", "other", "list", "--format", "csv"}, 0, "", "", "GET /1.0/instances?recursion=2&project=other"},
		{[]string{"list", "--project=x", "--format", "csv"}, 0, "", "", "GET /1.0/instances?recursion=2&project=x"},
		{[]string{"project", "list", "--format", "csv"}, 0, "p1 (current),YES,NO,NO,NO,,,1\n", "", "GET /1.0/projects?recursion=1"},
		{[]string{"project", "list", "--format", "csv"}, 0, "kid,NO,NO,NO,NO,p1,,0\n", "", "GET /1.0/projects?recursion=1"},
		{[]string{"project", "get", "p1", "limits.cpu"}, 0, "4\n", "", "GET /1.0/projects/p1"},
		{[]string{"project", "set", "p1", "limits.instances=2"}, 0, "", "", "PUT /1.0/projects/p1"},
		{[]string{"project", "info", "p1"}, 0, "INSTANCES", "", "GET /1.0/projects/p1/state"},
		{[]string{"project", "info", "p1", "--format", "csv"}, 0, "MEMORY,UNLIMITED,1.00GiB\n", "", "GET /1.0/projects/p1/state"},
		{[]string{"project", "create", "kid", "--parent", "p1", "limits.cpu=2"}, 0, "Project kid created", "", "POST /1.0/projects"},
		{[]string{"project", "delete", "p1"}, 0, "Project p1 deleted", "", "DELETE /1.0/projects/p1"},
		{[]string{"list", "--format", "csv"}, 0, "", "", "GET /1.0/instances?recursion=2"},
	}
	for _, st := range steps {
		code, out, errOut := runCLI(t, f.socket, "", st.args...)
		if code != st.code || !strings.Contains(out, st.out) || !strings.Contains(errOut, st.errOut) {
			t.Errorf("%v: code %d out %q err %q; want %d, %q, %q", st.args, code, out, errOut, st.code, st.out, st.errOut)
		}
		calls := f.calls()
		if len(calls) == 0 || calls[len(calls)-1] != st.request {
			t.Errorf("%v: last request %v, want %s", st.args, calls[len(calls)-1:], st.request)
		}
	}
	put := f.request(t, "PUT", "/1.0/projects/p1")
	if put.IfMatch != `"e1"` || put.Body != `{"config":{"features.images":"true","limits.cpu":"4","limits.instances":"2"},"description":""}` {
		t.Errorf("set sent %q with If-Match %q", put.Body, put.IfMatch)
	}
	post := f.request(t, "POST", "/1.0/projects")
	if diff := cmp.Diff(`{"config":{"limits.cpu":"2"},"description":"","parent":"p1","name":"kid"}`, post.Body); diff != "" {
		t.Errorf("create body (-want +got):\n%s", diff)
	}
	// Deleting the current project switched back to the default.
	data, err := os.ReadFile(filepath.Join(conf, "config.yml"))
	if err != nil || strings.Contains(string(data), "p1") {
		t.Errorf("config after delete: %q, %v", data, err)
	}
}

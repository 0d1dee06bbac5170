package lxd

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
)

// createAs posts a create to path and waits for its operation.
func createAs(t *testing.T, call func(method, path, body string) (*http.Response, api.Response), path, body string) {
	t.Helper()
	resp, env := call("POST", path, body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d %+v", path, resp.StatusCode, env)
	}
	_, done := call("GET", env.Operation+"/wait?timeout=10", "")
	var op api.Operation
	_ = json.Unmarshal(done.Metadata, &op)
	if op.StatusCode != api.Success {
		t.Fatalf("POST %s: operation %+v", path, op)
	}
}

// TestPrefixes checks LXD 5.0's /1.0/containers and /1.0/virtual-machines
// aliases: each serves the instance endpoints for its own type only.
func TestPrefixes(t *testing.T) {
	ts := newTestServer(t)
	do := func(method, path, body string) (*http.Response, api.Response) {
		return call(t, ts, method, path, body, nil)
	}
	// A POST under each alias creates its type when the body names none.
	createAs(t, do, "/1.0/containers", `{"name":"c1","source":{"type":"image","alias":"busybox"}}`)
	createAs(t, do, "/1.0/virtual-machines", `{"name":"v1","source":{"type":"image","alias":"busybox"}}`)
	createAs(t, do, "/1.0/instances?instance-type=virtual-machine", `{"name":"v2","source":{"type":"image","alias":"busybox"}}`)
	createAs(t, do, "/1.0/instances", `{"name":"c2","source":{"type":"image","alias":"busybox"}}`)
	for name, typ := range map[string]string{"c1": "container", "c2": "container", "v1": "virtual-machine", "v2": "virtual-machine"} {
		_, env := do("GET", "/1.0/instances/"+name, "")
		var inst api.Instance
		_ = json.Unmarshal(env.Metadata, &inst)
		if inst.Type != typ {
			t.Errorf("%s: type %q, want %q", name, inst.Type, typ)
		}
	}

	lists := []struct {
		path string
		want string
	}{
		{"/1.0/instances", "/1.0/instances/c1,/1.0/instances/c2,/1.0/instances/v1,/1.0/instances/v2"},
		{"/1.0/containers", "/1.0/containers/c1,/1.0/containers/c2"},
		{"/1.0/virtual-machines", "/1.0/virtual-machines/v1,/1.0/virtual-machines/v2"},
		{"/1.0/instances?instance-type=container", "/1.0/instances/c1,/1.0/instances/c2"},
		{"/1.0/containers?filter=name+eq+c2", "/1.0/containers/c2"},
		{"/1.0/virtual-machines?recursion=1", "v1,v2"},
		{"/1.0/containers?recursion=2", "c1,c2"},
	}
	for _, tt := range lists {
		t.Run("list "+tt.path, func(t *testing.T) {
			resp, env := do("GET", tt.path, "")
			if resp.StatusCode != 200 {
				t.Fatalf("%d %+v", resp.StatusCode, env)
			}
			var got []string
			if strings.Contains(tt.path, "recursion") {
				var insts []api.Instance
				if err := json.Unmarshal(env.Metadata, &insts); err != nil {
					t.Fatal(err)
				}
				for _, in := range insts {
					got = append(got, in.Name)
				}
			} else if err := json.Unmarshal(env.Metadata, &got); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != tt.want {
				t.Errorf("got %v, want %s", got, tt.want)
			}
		})
	}

	tests := []struct {
		method, path, body string
		status             int
		errHas             string
	}{
		{"GET", "/1.0/containers/c1", "", 200, ""},
		{"GET", "/1.0/containers/c1/state", "", 200, ""},
		{"GET", "/1.0/containers/c1/snapshots", "", 200, ""},
		{"GET", "/1.0/containers/c1/backups", "", 200, ""},
		{"GET", "/1.0/containers/c1/logs", "", 200, ""},
		{"GET", "/1.0/containers/c1/console", "", 200, ""},
		// Reaches the files handler, which finds the fake runtime has no root.
		{"GET", "/1.0/containers/c1/files?path=/", "", 501, "file access"},
		{"PATCH", "/1.0/containers/c1", `{"config":{"user.a":"1"}}`, 200, ""},
		{"PUT", "/1.0/containers/c1/state", `{"action":"start"}`, 202, ""},
		{"POST", "/1.0/containers/c1/exec", `{"command":["true"]}`, 202, ""},
		{"GET", "/1.0/virtual-machines/v1", "", 200, ""},
		{"GET", "/1.0/virtual-machines/v1/state", "", 200, ""},
		{"GET", "/1.0/virtual-machines/v1/snapshots", "", 200, ""},
		// The other type under an alias is not there, as in LXD.
		{"GET", "/1.0/containers/v1", "", 404, "Instance not found"},
		{"GET", "/1.0/containers/v1/state", "", 404, "Instance not found"},
		{"POST", "/1.0/containers/v1/exec", `{"command":["true"]}`, 404, "Instance not found"},
		{"DELETE", "/1.0/containers/v1", "", 404, "Instance not found"},
		{"GET", "/1.0/virtual-machines/c1", "", 404, "Instance not found"},
		{"GET", "/1.0/virtual-machines/c1/logs", "", 404, "Instance not found"},
		{"PUT", "/1.0/virtual-machines/c1/state", `{"action":"stop"}`, 404, "Instance not found"},
		{"GET", "/1.0/containers/ghost", "", 404, "not found"},
		{"GET", "/1.0/instances?instance-type=vm", "", 400, "Invalid instance type"},
		{"POST", "/1.0/instances?instance-type=lxc", `{"name":"x","source":{"type":"none"}}`, 400, "Invalid instance type"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, env := do(tt.method, tt.path, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tt.status, env)
			}
			if tt.status >= 400 && !strings.Contains(env.Error, tt.errHas) {
				t.Errorf("error %q, want it to contain %q", env.Error, tt.errHas)
			}
			// A state change is an operation: the rows after it (exec)
			// need it done, not just accepted.
			if tt.status == http.StatusAccepted && strings.HasSuffix(tt.path, "/state") {
				_, done := do("GET", env.Operation+"/wait?timeout=10", "")
				var op api.Operation
				_ = json.Unmarshal(done.Metadata, &op)
				if op.StatusCode != api.Success {
					t.Fatalf("operation %+v", op)
				}
			}
		})
	}
}

// TestOperationResources checks that operations on a container name it
// under "containers" as well as "instances", as LXD does (LXD 3's lxc
// reads a created container's name there), and those on a VM do not.
func TestOperationResources(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name, method, path, body string
		want                     map[string][]string
	}{
		{"create container", "POST", "/1.0/instances", `{"name":"c1","source":{"type":"image","alias":"busybox"},"start":true}`,
			map[string][]string{"instances": {"/1.0/instances/c1"}, "containers": {"/1.0/containers/c1"}}},
		{"create vm", "POST", "/1.0/instances", `{"name":"v1","type":"virtual-machine","source":{"type":"image","alias":"busybox"},"start":true}`,
			map[string][]string{"instances": {"/1.0/instances/v1"}}},
		{"exec in container", "POST", "/1.0/instances/c1/exec", `{"command":["true"]}`,
			map[string][]string{"instances": {"/1.0/instances/c1"}, "containers": {"/1.0/containers/c1"}}},
		{"exec with websockets", "POST", "/1.0/instances/c1/exec", `{"command":["true"],"wait-for-websocket":true}`,
			map[string][]string{"instances": {"/1.0/instances/c1"}, "containers": {"/1.0/containers/c1"}}},
		{"state of vm", "PUT", "/1.0/instances/v1/state", `{"action":"freeze"}`,
			map[string][]string{"instances": {"/1.0/instances/v1"}}},
		{"update container", "PATCH", "/1.0/instances/c1", `{"config":{"user.a":"1"}}`, nil}, // sync in LXD too
		{"stop container", "PUT", "/1.0/containers/c1/state", `{"action":"stop","force":true}`,
			map[string][]string{"instances": {"/1.0/instances/c1"}, "containers": {"/1.0/containers/c1"}}},
		{"delete container", "DELETE", "/1.0/instances/c1", "",
			map[string][]string{"instances": {"/1.0/instances/c1"}, "containers": {"/1.0/containers/c1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, env := call(t, ts, tt.method, tt.path, tt.body, nil)
			if tt.want == nil {
				if resp.StatusCode != 200 {
					t.Fatalf("%d %+v", resp.StatusCode, env)
				}
				return
			}
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("%d %+v", resp.StatusCode, env)
			}
			var op api.Operation
			if err := json.Unmarshal(env.Metadata, &op); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(op.Resources, tt.want) {
				t.Errorf("resources %v, want %v", op.Resources, tt.want)
			}
			if op.Class == api.OperationClassTask {
				call(t, ts, "GET", env.Operation+"/wait?timeout=10", "", nil)
			} else {
				call(t, ts, "DELETE", env.Operation, "", nil)
			}
		})
	}
}

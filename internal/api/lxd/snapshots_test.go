package lxd

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// runOp sends a request LXD answers with an operation, checks the 202 and
// the operation's description, waits for it and returns it.
func runOp(t *testing.T, ts *httptest.Server, method, path, body string, header map[string]string, desc string) api.Operation {
	t.Helper()
	resp, env := call(t, ts, method, path, body, header)
	if resp.StatusCode != http.StatusAccepted || env.Type != api.AsyncResponse {
		t.Fatalf("%s %s: %d %+v", method, path, resp.StatusCode, env)
	}
	var op api.Operation
	_ = json.Unmarshal(env.Metadata, &op)
	if op.Description != desc {
		t.Errorf("%s %s: operation %q, want %q", method, path, op.Description, desc)
	}
	_, done := call(t, ts, "GET", env.Operation+"/wait?timeout=10", "", nil)
	if err := json.Unmarshal(done.Metadata, &op); err != nil {
		t.Fatal(err)
	}
	if op.StatusCode != api.Success {
		t.Fatalf("%s %s: operation %+v", method, path, op)
	}
	return op
}

func metadataAs[T any](t *testing.T, env api.Response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(env.Metadata, &v); err != nil {
		t.Fatalf("metadata %s: %v", env.Metadata, err)
	}
	return v
}

// TestInstanceSnapshotLifecycle walks one snapshot through every route:
// create (named and from the pattern), list, get with its ETag, update,
// rename, restore, delete, and its place in recursion=2 answers.
func TestInstanceSnapshotLifecycle(t *testing.T) {
	ts := newTestServer(t)
	launch(t, ts, "c1")
	const snaps = "/1.0/instances/c1/snapshots"

	op := runOp(t, ts, "POST", snaps, `{"name":"first"}`, nil, "Snapshotting instance")
	if got := op.Resources["instances"]; !slices.Equal(got, []string{"/1.0/instances/c1"}) {
		t.Errorf("resources %v", op.Resources)
	}
	expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	runOp(t, ts, "POST", snaps, `{"expires_at":"`+expires.Format(time.RFC3339)+`"}`, nil, "Snapshotting instance")

	_, env := call(t, ts, "GET", snaps, "", nil)
	if got := metadataAs[[]string](t, env); !slices.Equal(got, []string{snaps + "/first", snaps + "/snap0"}) {
		t.Fatalf("recursion 0: %v", got)
	}
	_, env = call(t, ts, "GET", "/1.0/containers/c1/snapshots?recursion=1", "", nil)
	list := metadataAs[[]api.InstanceSnapshot](t, env)
	if len(list) != 2 || list[0].Name != "first" || list[1].Name != "snap0" || !list[1].ExpiresAt.Equal(expires) ||
		!list[0].ExpiresAt.IsZero() || list[0].Stateful || list[0].Size != -1 || list[0].CreatedAt.IsZero() ||
		list[0].Architecture != "x86_64" || !slices.Equal(list[0].Profiles, []string{"default"}) {
		t.Fatalf("recursion 1: %+v", list)
	}

	// GET with an ETag over the expiry; a PUT guarded by it.
	resp, env := call(t, ts, "GET", snaps+"/first", "", nil)
	etag := resp.Header.Get("ETag")
	if etag == "" || metadataAs[api.InstanceSnapshot](t, env).Name != "first" {
		t.Fatalf("get: %q %s", etag, env.Metadata)
	}
	later := expires.Add(time.Hour)
	body := `{"expires_at":"` + later.Format(time.RFC3339) + `"}`
	if resp, _ := call(t, ts, "PUT", snaps+"/first", body, map[string]string{"If-Match": `"stale"`}); resp.StatusCode != 412 {
		t.Fatalf("stale If-Match: %d", resp.StatusCode)
	}
	runOp(t, ts, "PUT", snaps+"/first", body, map[string]string{"If-Match": etag}, "Updating snapshot")
	resp, env = call(t, ts, "GET", snaps+"/first", "", nil)
	if got := metadataAs[api.InstanceSnapshot](t, env); !got.ExpiresAt.Equal(later) || resp.Header.Get("ETag") == etag {
		t.Fatalf("after PUT: %+v, ETag %s", got, resp.Header.Get("ETag"))
	}
	// A body without expires_at changes nothing (LXD); PATCH is PUT.
	runOp(t, ts, "PATCH", snaps+"/first", `{}`, nil, "Updating snapshot")
	_, env = call(t, ts, "GET", snaps+"/first", "", nil)
	if got := metadataAs[api.InstanceSnapshot](t, env); !got.ExpiresAt.Equal(later) {
		t.Fatalf("after empty PATCH: %+v", got)
	}

	runOp(t, ts, "POST", snaps+"/first", `{"name":"renamed"}`, nil, "Renaming snapshot")
	if resp, _ := call(t, ts, "GET", snaps+"/first", "", nil); resp.StatusCode != 404 {
		t.Fatalf("old name after rename: %d", resp.StatusCode)
	}

	// lxc restore sends "NAME/SNAP"; a running instance is stopped and
	// started again by the core.
	runOp(t, ts, "PUT", "/1.0/instances/c1", `{"restore":"c1/renamed"}`, nil, "Restoring snapshot")
	runOp(t, ts, "PUT", "/1.0/instances/c1", `{"restore":"snap0","stateful":false}`, nil, "Restoring snapshot")
	_, env = call(t, ts, "GET", "/1.0/instances/c1", "", nil)
	if st := metadataAs[api.Instance](t, env).Status; st != "Running" {
		t.Errorf("status after restore %q", st)
	}

	// recursion=2 and the instance's full view count the snapshots.
	_, env = call(t, ts, "GET", "/1.0/instances?recursion=2", "", nil)
	full := metadataAs[[]api.InstanceFull](t, env)
	if len(full) != 1 || len(full[0].Snapshots) != 2 || full[0].Snapshots[0].Name != "renamed" {
		t.Fatalf("recursion 2: %+v", full)
	}
	_, env = call(t, ts, "GET", "/1.0/instances/c1?recursion=1", "", nil)
	if got := metadataAs[api.InstanceFull](t, env); len(got.Snapshots) != 2 {
		t.Fatalf("instance at recursion 1: %+v", got.Snapshots)
	}

	runOp(t, ts, "DELETE", snaps+"/renamed", "", nil, "Deleting snapshot")
	_, env = call(t, ts, "GET", snaps, "", nil)
	if got := metadataAs[[]string](t, env); !slices.Equal(got, []string{snaps + "/snap0"}) {
		t.Fatalf("after delete: %v", got)
	}
}

// TestInstanceSnapshotErrors checks what is refused before any operation
// starts, with LXD's status codes.
func TestInstanceSnapshotErrors(t *testing.T) {
	ts := newTestServer(t)
	launch(t, ts, "c1")
	const snaps = "/1.0/instances/c1/snapshots"
	runOp(t, ts, "POST", snaps, `{"name":"s0"}`, nil, "Snapshotting instance")
	runOp(t, ts, "POST", snaps, `{"name":"s1"}`, nil, "Snapshotting instance")
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		errHas                   string
	}{
		{"list of missing instance", "GET", "/1.0/instances/ghost/snapshots", "", nil, 404, "ghost"},
		{"list of a VM under containers", "GET", "/1.0/virtual-machines/c1/snapshots", "", nil, 404, "not found"},
		{"list of a snapshot name", "GET", "/1.0/instances/c1%2Fs0/snapshots", "", nil, 400, "Invalid instance name"},
		{"create in missing instance", "POST", "/1.0/instances/ghost/snapshots", `{}`, nil, 404, "ghost"},
		{"create not JSON", "POST", snaps, `{"name":`, nil, 400, "JSON"},
		{"create empty body", "POST", snaps, ``, nil, 400, "empty"},
		{"create name not a string", "POST", snaps, `{"name":5}`, nil, 400, `"name"`},
		{"create name with slash", "POST", snaps, `{"name":"a/b"}`, nil, 400, "Invalid snapshot name"},
		{"create name with space", "POST", snaps, `{"name":"a b"}`, nil, 400, "Invalid snapshot name"},
		{"create name dots", "POST", snaps, `{"name":".."}`, nil, 400, "Invalid snapshot name"},
		{"create existing", "POST", snaps, `{"name":"s0"}`, nil, 409, "already exists"},
		{"create bad expiry", "POST", snaps, `{"name":"x","expires_at":"tomorrow"}`, nil, 400, "parsing time"},
		{"create stateful container", "POST", snaps, `{"name":"x","stateful":true}`, nil, 400, "CRIU"},
		{"get missing", "GET", snaps + "/ghost", "", nil, 404, `"ghost"`},
		{"get in missing instance", "GET", "/1.0/instances/ghost/snapshots/s0", "", nil, 404, "ghost"},
		{"put missing", "PUT", snaps + "/ghost", `{}`, nil, 404, `"ghost"`},
		{"put stale", "PUT", snaps + "/s0", `{}`, map[string]string{"If-Match": `"0123"`}, 412, "ETag"},
		{"put bad expiry", "PUT", snaps + "/s0", `{"expires_at":5}`, nil, 400, "Time"},
		{"put not JSON", "PUT", snaps + "/s0", `{`, nil, 400, "JSON"},
		{"patch stale", "PATCH", snaps + "/s0", `{}`, map[string]string{"If-Match": `"0123"`}, 412, "ETag"},
		{"delete missing", "DELETE", snaps + "/ghost", "", nil, 404, `"ghost"`},
		{"rename missing", "POST", snaps + "/ghost", `{"name":"x"}`, nil, 404, `"ghost"`},
		{"rename without name", "POST", snaps + "/s0", `{}`, nil, 400, `"name"`},
		{"rename to taken", "POST", snaps + "/s0", `{"name":"s1"}`, nil, 409, "already in use"},
		{"rename bad name", "POST", snaps + "/s0", `{"name":"a/b"}`, nil, 400, "Invalid snapshot name"},
		{"rename migration", "POST", snaps + "/s0", `{"name":"s9","migration":true}`, nil, 400, "migrate"},
		{"rename live", "POST", snaps + "/s0", `{"name":"s9","live":true}`, nil, 400, "migrate"},
		{"rename target", "POST", snaps + "/s0", `{"name":"s9","target":{"certificate":"x"}}`, nil, 400, "migrate"},
		{"restore missing snapshot", "PUT", "/1.0/instances/c1", `{"restore":"ghost"}`, nil, 404, `"ghost"`},
		{"restore another instance's", "PUT", "/1.0/instances/c1", `{"restore":"c2/s0"}`, nil, 400, "not a snapshot"},
		{"restore nested", "PUT", "/1.0/instances/c1", `{"restore":"c1/s0/x"}`, nil, 400, "not a snapshot"},
		{"restore in missing instance", "PUT", "/1.0/instances/ghost", `{"restore":"s0"}`, nil, 404, "ghost"},
		{"restore stateful of stateless", "PUT", "/1.0/instances/c1", `{"restore":"s0","stateful":true}`, nil, 400, "holds no state"},
		{"restore stale", "PUT", "/1.0/instances/c1", `{"restore":"s0"}`, map[string]string{"If-Match": `"0123"`}, 412, "ETag"},
		{"snapshot collection PUT", "PUT", snaps, `{}`, nil, 501, "not implemented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, env := call(t, ts, tt.method, tt.path, tt.body, tt.header)
			if resp.StatusCode != tt.status || env.Type != api.ErrorResponse || !strings.Contains(env.Error, tt.errHas) {
				t.Fatalf("%d %+v, want %d containing %q", resp.StatusCode, env, tt.status, tt.errHas)
			}
		})
	}
	// Nothing refused above left a trace.
	_, env := call(t, ts, "GET", snaps, "", nil)
	if got := metadataAs[[]string](t, env); !slices.Equal(got, []string{snaps + "/s0", snaps + "/s1"}) {
		t.Fatalf("snapshots after refusals: %v", got)
	}
}

// TestVolumeSnapshotEndpoints drives the volume snapshot routes against
// the fake manager.
func TestVolumeSnapshotEndpoints(t *testing.T) {
	ts, srv := newServer(t, &fakeDriver{running: map[string]int{}})
	f := newFakeStorage()
	srv.Storage = f
	const (
		data  = "/1.0/storage-pools/default/volumes/custom/data"
		snaps = data + "/snapshots"
	)
	op := runOp(t, ts, "POST", snaps, `{}`, nil, "Creating storage volume snapshot")
	if got := op.Resources["storage_volumes"]; !slices.Equal(got, []string{data}) {
		t.Errorf("resources %v", op.Resources)
	}
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	runOp(t, ts, "POST", snaps, `{"name":"keep","expires_at":"2030-01-02T03:04:05Z"}`, nil, "Creating storage volume snapshot")
	runOp(t, ts, "POST", snaps, `{}`, nil, "Creating storage volume snapshot")

	_, env := call(t, ts, "GET", snaps, "", nil)
	if got := metadataAs[[]string](t, env); !slices.Equal(got, []string{snaps + "/snap0", snaps + "/keep", snaps + "/snap1"}) {
		t.Fatalf("recursion 0: %v", got)
	}
	_, env = call(t, ts, "GET", snaps+"?recursion=1", "", nil)
	if got := string(env.Metadata); strings.Count(got, `"expires_at":"`) != 1 || !strings.Contains(got, `"config":{"size":"1GiB"}`) {
		t.Fatalf("recursion 1 (expires_at only where set): %s", got)
	}
	resp, env := call(t, ts, "GET", snaps+"/keep", "", nil)
	got := metadataAs[api.StorageVolumeSnapshot](t, env)
	etag := resp.Header.Get("ETag")
	if got.Name != "keep" || got.ExpiresAt == nil || !got.ExpiresAt.Equal(expires) || got.ContentType != "filesystem" || etag == "" {
		t.Fatalf("get: %+v %q", got, etag)
	}
	// PATCH keeps what it does not name; PUT replaces both.
	if resp, env := call(t, ts, "PATCH", snaps+"/keep", `{"description":"d"}`, map[string]string{"If-Match": etag}); resp.StatusCode != 200 {
		t.Fatalf("patch: %d %+v", resp.StatusCode, env)
	}
	if sn := f.snaps["default/custom/data"][1]; sn.Description != "d" || !sn.ExpiresAt.Equal(expires) {
		t.Fatalf("after patch %+v", sn)
	}
	if resp, _ := call(t, ts, "PUT", snaps+"/keep", `{"description":"e"}`, map[string]string{"If-Match": etag}); resp.StatusCode != 412 {
		t.Fatalf("PUT with the ETag from before the patch: %d", resp.StatusCode)
	}
	if resp, _ := call(t, ts, "PUT", snaps+"/keep", `{"description":"e"}`, nil); resp.StatusCode != 200 {
		t.Fatalf("put: %d", resp.StatusCode)
	}
	if sn := f.snaps["default/custom/data"][1]; sn.Description != "e" || !sn.ExpiresAt.IsZero() {
		t.Fatalf("after put %+v", sn)
	}

	runOp(t, ts, "POST", snaps+"/snap1", `{"name":"later"}`, nil, "Renaming storage volume snapshot")
	// A restore is a PUT of the volume, answered when done; lxc sends
	// the bare name.
	for _, name := range []string{"later", "data/snap0"} {
		if resp, env := call(t, ts, "PUT", data, `{"restore":"`+name+`"}`, nil); resp.StatusCode != 200 {
			t.Fatalf("restore %s: %d %+v", name, resp.StatusCode, env)
		}
	}
	if f.restored != "default/custom/data@snap0" || f.volPut.Config != nil {
		t.Fatalf("restored %q, volume put %+v (a restore without config changes none)", f.restored, f.volPut)
	}
	runOp(t, ts, "DELETE", snaps+"/later", "", nil, "Deleting storage volume snapshot")
	_, env = call(t, ts, "GET", snaps, "", nil)
	if got := metadataAs[[]string](t, env); !slices.Equal(got, []string{snaps + "/snap0", snaps + "/keep"}) {
		t.Fatalf("after delete: %v", got)
	}

	const c1 = "/1.0/storage-pools/default/volumes/container/c1"
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		errHas                   string
	}{
		{"list of an instance volume", "GET", c1 + "/snapshots", "", nil, 200, ""},
		{"list of missing volume", "GET", "/1.0/storage-pools/default/volumes/custom/ghost/snapshots", "", nil, 404, "ghost"},
		{"list bad type", "GET", "/1.0/storage-pools/default/volumes/bogus/data/snapshots", "", nil, 400, "type"},
		{"create on instance volume", "POST", c1 + "/snapshots", `{}`, nil, 400, "only custom"},
		{"create on missing volume", "POST", "/1.0/storage-pools/default/volumes/custom/ghost/snapshots", `{}`, nil, 404, "ghost"},
		{"create on missing pool", "POST", "/1.0/storage-pools/ghost/volumes/custom/data/snapshots", `{}`, nil, 404, "ghost"},
		{"create not JSON", "POST", snaps, `{`, nil, 400, "JSON"},
		{"create bad name", "POST", snaps, `{"name":"a/b"}`, nil, 400, "Invalid snapshot name"},
		{"create existing", "POST", snaps, `{"name":"keep"}`, nil, 409, "already in use"},
		{"create bad expiry", "POST", snaps, `{"expires_at":1}`, nil, 400, "Time"},
		{"get missing", "GET", snaps + "/ghost", "", nil, 404, "ghost"},
		{"put stale", "PUT", snaps + "/keep", `{}`, map[string]string{"If-Match": `"0"`}, 412, "ETag"},
		{"put on instance volume", "PUT", c1 + "/snapshots/s0", `{}`, nil, 400, "only custom"},
		{"put not JSON", "PUT", snaps + "/keep", `x`, nil, 400, "JSON"},
		{"rename without name", "POST", snaps + "/keep", `{}`, nil, 400, "No name"},
		{"rename with slash", "POST", snaps + "/keep", `{"name":"a/b"}`, nil, 400, "slashes"},
		{"rename to taken", "POST", snaps + "/keep", `{"name":"snap0"}`, nil, 409, "already in use"},
		{"rename missing", "POST", snaps + "/ghost", `{"name":"x"}`, nil, 404, "ghost"},
		{"delete missing", "DELETE", snaps + "/ghost", "", nil, 404, "ghost"},
		{"delete on instance volume", "DELETE", c1 + "/snapshots/s0", "", nil, 400, "only custom"},
		{"restore missing", "PUT", data, `{"restore":"ghost"}`, nil, 404, "ghost"},
		{"restore another volume's", "PUT", data, `{"restore":"blk/snap0"}`, nil, 400, "not a snapshot"},
		{"restore instance volume", "PUT", c1, `{"restore":"s0"}`, nil, 400, "through their instance"},
		{"restore stale", "PUT", data, `{"restore":"keep"}`, map[string]string{"If-Match": `"0"`}, 412, "ETag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, env := call(t, ts, tt.method, tt.path, tt.body, tt.header)
			if resp.StatusCode != tt.status || (tt.status >= 400 && !strings.Contains(env.Error, tt.errHas)) {
				t.Fatalf("%d %+v, want %d containing %q", resp.StatusCode, env, tt.status, tt.errHas)
			}
		})
	}
	if len(f.snaps["default/custom/data"]) != 2 {
		t.Fatalf("refusals changed the snapshots: %+v", f.snaps)
	}
}

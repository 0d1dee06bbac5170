package lxd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/image"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/operation"
	"github.com/hangar-dev/hangar/internal/storage"
	"github.com/hangar-dev/hangar/internal/store"
)

// The edge is tested over real HTTP with the real instance service, store,
// event hub and operation registry; only the runtime and the image store
// are fakes, since neither is what these tests are about.

type fakeDriver struct {
	mu      sync.Mutex
	running map[string]int
}

func (f *fakeDriver) Start(_ context.Context, s driver.Spec) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running[s.ID] = 4242
	return 4242, nil
}

func (f *fakeDriver) Stop(_ context.Context, id string, _ syscall.Signal, _ time.Duration, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.running, id)
	return nil
}
func (f *fakeDriver) UpdateLimits(context.Context, string, driver.Limits) error { return nil }
func (f *fakeDriver) Freeze(context.Context, string) error                      { return nil }
func (f *fakeDriver) Unfreeze(context.Context, string) error                    { return nil }
func (f *fakeDriver) State(context.Context, string) (driver.State, error) {
	return driver.State{Status: driver.StatusRunning, Pid: 4242}, nil
}
func (f *fakeDriver) ConsoleLog(context.Context, string) ([]byte, error) {
	return []byte("boot ok\n"), nil
}
func (f *fakeDriver) ClearConsoleLog(context.Context, string) error { return nil }

// Exec "runs" the command at once: it writes its arguments to stdout and
// exits with code 3.
func (f *fakeDriver) Exec(_ context.Context, _ string, spec driver.ExecSpec) (driver.Process, error) {
	if spec.Stdout != nil {
		fmt.Fprintln(spec.Stdout, strings.Join(spec.Args, " "))
	}
	return fakeProcess{}, nil
}

type fakeProcess struct{}

func (fakeProcess) Pid() int                               { return 1 }
func (fakeProcess) Wait() (int, error)                     { return 3, nil }
func (fakeProcess) Signal(syscall.Signal) error            { return nil }
func (fakeProcess) Resize(int, int) error                  { return nil }
func (fakeProcess) TTY() *os.File                          { return nil }
func (f *fakeDriver) Delete(context.Context, string) error { return nil }
func (f *fakeDriver) Recover(context.Context) (map[string]driver.State, error) {
	return nil, nil
}

const fakeFP = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999"

// fakeImages knows one image, aliased "busybox".
type fakeImages struct{}

func (fakeImages) Resolve(_ context.Context, ref string) (string, error) {
	if ref == "busybox" || strings.HasPrefix(fakeFP, ref) {
		return fakeFP, nil
	}
	return "", errdefs.NotFound("image %q not found", ref)
}
func (fakeImages) Get(context.Context, string) (api.Image, error) {
	return api.Image{Fingerprint: fakeFP, Architecture: "x86_64"}, nil
}
func (fakeImages) Image(context.Context, string) (instance.Image, error) {
	return instance.Image{Fingerprint: fakeFP, Type: instance.TypeContainer, Architecture: "x86_64"}, nil
}
func (fakeImages) MarkUsed(context.Context, string) error { return nil }
func (fakeImages) Import(context.Context, io.Reader, image.ImportMeta) (api.Image, error) {
	return api.Image{}, errdefs.Invalid("not a tarball")
}
func (fakeImages) List(context.Context) ([]api.Image, error)               { return nil, nil }
func (fakeImages) Update(context.Context, string, api.ImagePut) error      { return nil }
func (fakeImages) Delete(context.Context, string, []string) error          { return nil }
func (fakeImages) CreateAlias(context.Context, api.ImageAliasesPost) error { return nil }
func (fakeImages) GetAlias(context.Context, string) (api.ImageAliasesEntry, error) {
	return api.ImageAliasesEntry{}, errdefs.NotFound("alias not found")
}
func (fakeImages) ListAliases(context.Context) ([]api.ImageAliasesEntry, error) { return nil, nil }
func (fakeImages) UpdateAlias(context.Context, string, api.ImageAliasesEntryPut) error {
	return nil
}
func (fakeImages) RenameAlias(context.Context, string, string) error { return nil }
func (fakeImages) DeleteAlias(context.Context, string) error         { return nil }
func (fakeImages) Export(context.Context, string) (*image.Export, error) {
	return nil, errdefs.NotFound("image not found")
}

type lifecycle struct{ hub *event.Hub }

func (l lifecycle) Lifecycle(_ context.Context, action string, e event.Entity, ctx map[string]any) {
	l.hub.Lifecycle(action, e, ctx)
}

// fakeRoots is the instance core's storage: roots in memory, on pool
// "default" alone; a root is a bind of /roots/ID, which the fake driver
// never mounts.
type fakeRoots struct {
	mu    sync.Mutex
	roots map[int64]storage.RootRequest
	snaps map[int64][]string
}

func (f *fakeRoots) CheckRoot(_ context.Context, pool string, _ bool, _ int64) error {
	if pool != storage.DefaultPool {
		return errdefs.NotFound("storage pool %q not found", pool)
	}
	return nil
}

func (f *fakeRoots) CreateRoot(ctx context.Context, req storage.RootRequest) error {
	if err := f.CheckRoot(ctx, req.Pool, req.VM, req.Size); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.roots == nil {
		f.roots = map[int64]storage.RootRequest{}
	}
	f.roots[req.InstanceID] = req
	return nil
}

func (f *fakeRoots) Root(_ context.Context, req storage.RootRequest) (driver.Root, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.roots[req.InstanceID]; !ok {
		return driver.Root{}, errdefs.NotFound("instance %d has no root volume", req.InstanceID)
	}
	return driver.Root{Mounts: []driver.Mount{{Type: "bind", Source: "/roots/" + req.RuntimeID}}}, nil
}

func (f *fakeRoots) HasRoot(_ context.Context, id int64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.roots[id]
	return ok, nil
}

func (f *fakeRoots) AdoptRoot(ctx context.Context, req storage.RootRequest, _ storage.LegacyRoot) error {
	return f.CreateRoot(ctx, req)
}

func (f *fakeRoots) DeleteRoot(_ context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.roots, id)
	return nil
}

func (f *fakeRoots) RenameRoot(context.Context, int64, string) error { return nil }

func (f *fakeRoots) ResizeRoot(context.Context, int64, bool, int64, bool) error { return nil }

// RootUsage: no pool here measures a root cheaply (a dir pool).
func (f *fakeRoots) RootUsage(context.Context, int64) (storage.Usage, bool, error) {
	return storage.Usage{}, false, nil
}

func newTestServer(t *testing.T) *httptest.Server {
	ts, _ := newServer(t, &fakeDriver{running: map[string]int{}})
	return ts
}

// newServer serves the API over a real store and instance service, with
// drv as the runtime.
func newServer(tb testing.TB, drv driver.Driver) (*httptest.Server, *Server) {
	tb.Helper()
	return newServerWith(tb, drv, nil)
}

// newServerWith is newServer with setup, when not nil, given the Server
// before it serves.
func newServerWith(tb testing.TB, drv driver.Driver, setup func(*Server)) (*httptest.Server, *Server) {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(tb.TempDir(), "hangar.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	hub := event.New(1000, "none")
	ops := operation.New(hub, time.Minute)
	tb.Cleanup(ops.Close)
	svc := instance.New(instance.Config{
		DB: st, Images: fakeImages{}, Storage: &fakeRoots{}, Drivers: map[instance.Type]driver.Driver{instance.TypeContainer: drv, instance.TypeVM: drv},
		Events: lifecycle{hub}, Architecture: "x86_64", HostMemory: 1 << 30,
		Log: slog.New(slog.DiscardHandler), LogDir: tb.TempDir(), BackupDir: tb.TempDir(),
	})
	if err := svc.Load(ctx); err != nil {
		tb.Fatal(err)
	}
	srv := &Server{Instances: svc, Images: fakeImages{}, Ops: ops, Events: hub, Info: func() api.Server { return api.Server{} }}
	if setup != nil {
		setup(srv)
	}
	ts := httptest.NewServer(srv.Handler())
	tb.Cleanup(ts.Close)
	return ts, srv
}

// call sends a request and decodes the envelope.
func call(t testing.TB, ts *httptest.Server, method, path, body string, header map[string]string) (*http.Response, api.Response) {
	t.Helper()
	resp, b := rawCall(t, ts, method, path, body, header)
	var env api.Response
	_ = json.Unmarshal(b, &env)
	return resp, env
}

// launch creates and starts c1 and waits for the operation.
func launch(t testing.TB, ts *httptest.Server, name string) {
	t.Helper()
	resp, env := call(t, ts, "POST", "/1.0/instances", `{"name":"`+name+`","source":{"type":"image","alias":"busybox"},"start":true}`, nil)
	if resp.StatusCode != http.StatusAccepted || env.Type != api.AsyncResponse {
		t.Fatalf("create: %d %+v", resp.StatusCode, env)
	}
	if loc := resp.Header.Get("Location"); loc != env.Operation || !strings.HasPrefix(loc, "/1.0/operations/") {
		t.Fatalf("Location %q, operation %q", loc, env.Operation)
	}
	_, done := call(t, ts, "GET", env.Operation+"/wait?timeout=10", "", nil)
	var op api.Operation
	_ = json.Unmarshal(done.Metadata, &op)
	if op.StatusCode != api.Success {
		t.Fatalf("create operation: %+v", op)
	}
}

func TestErrorsAndEnvelopes(t *testing.T) {
	ts := newTestServer(t)
	launch(t, ts, "c1")
	tests := []struct {
		name, method, path, body string
		status                   int
		errHas                   string
	}{
		{"server", "GET", "/1.0", "", 200, ""},
		{"root", "GET", "/", "", 200, ""},
		{"unknown endpoint", "GET", "/1.0/nope", "", 404, "not found"},
		{"unknown instance", "GET", "/1.0/instances/ghost", "", 404, `instance "ghost" not found`},
		{"bad filter", "GET", "/1.0/instances?filter=name+gt+x", "", 400, "filter"},
		{"other project", "GET", "/1.0/instances?project=web", "", 404, "project"},
		{"wrong JSON type names the field", "POST", "/1.0/instances", `{"name":"x","ephemeral":"yes"}`, 400, `"ephemeral"`},
		{"not JSON", "POST", "/1.0/instances", `{"name":`, 400, "JSON"},
		{"empty body", "POST", "/1.0/instances", ``, 400, "empty"},
		{"unknown key", "POST", "/1.0/instances", `{"name":"x","config":{"limits.cpus":"1"},"source":{"type":"image","alias":"busybox"}}`, 400, `"limits.cpus"`},
		{"missing image", "POST", "/1.0/instances", `{"name":"x","source":{"type":"image","alias":"nope"}}`, 404, "nope"},
		{"duplicate", "POST", "/1.0/instances", `{"name":"c1","source":{"type":"image","alias":"busybox"}}`, 409, "already exists"},
		{"bad name", "POST", "/1.0/instances", `{"name":"-x","source":{"type":"none"}}`, 400, "hyphen"},
		{"bad action", "PUT", "/1.0/instances/c1/state", `{"action":"explode"}`, 400, "action"},
		{"stateful stop", "PUT", "/1.0/instances/c1/state", `{"action":"stop","stateful":true}`, 400, "stateful"},
		{"delete running", "DELETE", "/1.0/instances/c1", "", 400, "Instance is running"},
		{"exec without command", "POST", "/1.0/instances/c1/exec", `{}`, 400, "command"},
		{"exec bad size", "POST", "/1.0/instances/c1/exec", `{"command":["sh"],"width":-1}`, 400, "width"},
		{"exec record with websockets", "POST", "/1.0/instances/c1/exec", `{"command":["sh"],"record-output":true,"wait-for-websocket":true}`, 400, "record-output"},
		{"exec user type", "POST", "/1.0/instances/c1/exec", `{"command":["sh"],"user":"root"}`, 400, `"user"`},
		{"exec in missing instance", "POST", "/1.0/instances/ghost/exec", `{"command":["sh"]}`, 404, "ghost"},
		{"websocket of unknown operation", "GET", "/1.0/operations/nope/websocket?secret=x", "", 404, "not found"},
		{"bad log name", "GET", "/1.0/instances/c1/logs/exec-output/.hidden", "", 400, "not valid"},
		{"missing log", "GET", "/1.0/instances/c1/logs/lxc.log", "", 404, "lxc.log"},
		{"no networks yet", "GET", "/1.0/networks?recursion=1", "", 200, ""},
		{"network create not yet", "POST", "/1.0/networks", `{}`, 501, "networks"},
		{"projects not yet", "GET", "/1.0/projects", "", 501, "projects"},
		{"bad since", "GET", "/1.0/events?since=x", "", 400, "since"},
		{"bad event type", "GET", "/1.0/events?type=gossip", "", 400, "event type"},
		{"unknown operation", "GET", "/1.0/operations/nope", "", 404, "not found"},
		{"bad wait timeout", "GET", "/1.0/operations/nope/wait?timeout=soon", "", 400, "timeout"},
		{"delete default profile", "DELETE", "/1.0/profiles/default", "", 403, "default"},
		{"unknown server key", "PATCH", "/1.0", `{"config":{"core.trust_password":"x"}}`, 400, "core.trust_password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, env := call(t, ts, tt.method, tt.path, tt.body, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tt.status, env)
			}
			if tt.status >= 400 {
				if env.Type != api.ErrorResponse || env.ErrorCode != tt.status || !strings.Contains(env.Error, tt.errHas) {
					t.Fatalf("error envelope %+v, want code %d containing %q", env, tt.status, tt.errHas)
				}
			}
		})
	}
	resp, _ := call(t, ts, "GET", "/1.0/instances/c1", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("c1 gone after refused delete: %d", resp.StatusCode)
	}
}

func TestExecRecordOutput(t *testing.T) {
	ts := newTestServer(t)
	launch(t, ts, "c1")
	resp, env := call(t, ts, "POST", "/1.0/instances/c1/exec", `{"command":["echo","hi"],"record-output":true}`, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("exec: %d %+v", resp.StatusCode, env)
	}
	_, done := call(t, ts, "GET", env.Operation+"/wait?timeout=10", "", nil)
	var op api.Operation
	_ = json.Unmarshal(done.Metadata, &op)
	out, _ := op.Metadata["output"].(map[string]any)
	stdout, _ := out["1"].(string)
	if op.StatusCode != api.Success || op.Metadata["return"] != float64(3) || !strings.HasPrefix(stdout, "/1.0/instances/c1/logs/exec-output/exec_") {
		t.Fatalf("operation %+v", op)
	}
	r, err := http.Get(ts.URL + stdout)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if string(b) != "echo hi\n" {
		t.Errorf("recorded stdout %q", b)
	}
	_, list := call(t, ts, "GET", "/1.0/instances/c1/logs/exec-output", "", nil)
	var files []string
	_ = json.Unmarshal(list.Metadata, &files)
	if len(files) != 2 {
		t.Errorf("exec outputs %v, want stdout and stderr", files)
	}
	if resp, _ := call(t, ts, "DELETE", stdout, "", nil); resp.StatusCode != 200 {
		t.Errorf("delete output: %d", resp.StatusCode)
	}
	if resp, _ := call(t, ts, "GET", stdout, "", nil); resp.StatusCode != 404 {
		t.Errorf("deleted output still served: %d", resp.StatusCode)
	}
	_, logs := call(t, ts, "GET", "/1.0/instances/c1/logs", "", nil)
	if !strings.Contains(string(logs.Metadata), "/1.0/instances/c1/logs/console.log") {
		t.Errorf("logs %s", logs.Metadata)
	}
}

func TestETag(t *testing.T) {
	ts := newTestServer(t)
	launch(t, ts, "c1")
	resp, env := call(t, ts, "GET", "/1.0/instances/c1", "", nil)
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on GET")
	}
	var inst api.Instance
	_ = json.Unmarshal(env.Metadata, &inst)
	inst.Config["user.a"] = "1"
	body, _ := json.Marshal(inst.InstancePut)
	if resp, env := call(t, ts, "PUT", "/1.0/instances/c1", string(body), map[string]string{"If-Match": `"stale"`}); resp.StatusCode != 412 {
		t.Fatalf("stale If-Match: %d %+v", resp.StatusCode, env)
	}
	if resp, env := call(t, ts, "PUT", "/1.0/instances/c1", string(body), map[string]string{"If-Match": etag}); resp.StatusCode != 202 {
		t.Fatalf("fresh If-Match: %d %+v", resp.StatusCode, env)
	}
	// The old ETag is now stale.
	if resp, _ := call(t, ts, "PATCH", "/1.0/instances/c1", `{"config":{"user.b":"2"}}`, map[string]string{"If-Match": etag}); resp.StatusCode != 412 {
		t.Fatalf("reused ETag: %d", resp.StatusCode)
	}
	resp, _ = call(t, ts, "GET", "/1.0/instances/c1", "", nil)
	if resp.Header.Get("ETag") == etag {
		t.Fatal("ETag did not change with the config")
	}
}

func TestListRecursionAndFilter(t *testing.T) {
	ts := newTestServer(t)
	launch(t, ts, "c1")
	launch(t, ts, "c2")
	_, env := call(t, ts, "GET", "/1.0/instances", "", nil)
	var urls []string
	_ = json.Unmarshal(env.Metadata, &urls)
	if strings.Join(urls, ",") != "/1.0/instances/c1,/1.0/instances/c2" {
		t.Fatalf("recursion 0: %v", urls)
	}
	_, env = call(t, ts, "GET", "/1.0/instances?recursion=2&filter=name+eq+c2", "", nil)
	var full []api.InstanceFull
	_ = json.Unmarshal(env.Metadata, &full)
	if len(full) != 1 || full[0].Name != "c2" || full[0].State == nil || full[0].State.Pid != 4242 {
		t.Fatalf("recursion 2 filtered: %+v", full)
	}
	_, env = call(t, ts, "GET", "/1.0/instances/c1/console", "", nil)
	resp, _ := http.Get(ts.URL + "/1.0/instances/c1/console")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "boot ok\n" {
		t.Fatalf("console log %q", b)
	}
}

// Root snapshots are names per instance.
func (f *fakeRoots) SnapshotRoot(_ context.Context, id int64, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.snaps == nil {
		f.snaps = map[int64][]string{}
	}
	f.snaps[id] = append(f.snaps[id], name)
	return nil
}

func (f *fakeRoots) RootSnapshots(_ context.Context, id int64) ([]storage.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []storage.Snapshot{}
	for _, n := range f.snaps[id] {
		out = append(out, storage.Snapshot{Name: n})
	}
	return out, nil
}

func (f *fakeRoots) DeleteRootSnapshot(_ context.Context, id int64, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kept := f.snaps[id][:0]
	for _, n := range f.snaps[id] {
		if n != name {
			kept = append(kept, n)
		}
	}
	f.snaps[id] = kept
	return nil
}

func (f *fakeRoots) RenameRootSnapshot(_ context.Context, id int64, name, newName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, n := range f.snaps[id] {
		if n == name {
			f.snaps[id][i] = newName
		}
	}
	return nil
}

func (f *fakeRoots) RestoreRoot(context.Context, int64, string) error { return nil }

func (f *fakeRoots) CopyRoot(ctx context.Context, req storage.RootRequest, _ int64, _ string) error {
	return f.CreateRoot(ctx, req)
}

func (f *fakeRoots) ReadRoot(_ context.Context, _ int64, _ string, fn func(storage.RootView) error) error {
	return fn(storage.RootView{Dir: "/roots"})
}

func (f *fakeRoots) CopyRootSnapshot(ctx context.Context, dstID, _ int64, name string) error {
	return f.SnapshotRoot(ctx, dstID, name)
}

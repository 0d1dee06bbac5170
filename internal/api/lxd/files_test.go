package lxd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
	"github.com/hangar-dev/hangar/internal/driver"
)

// fakeRootDriver is fakeDriver with a plain directory per instance as its
// root filesystem: the files API's HTTP and id mapping are under test
// here, the overlay mounts in the container driver's and e2e tests.
type fakeRootDriver struct {
	*fakeDriver
	dir string

	mu   sync.Mutex
	last string // the last instance root opened, a host path
}

func (f *fakeRootDriver) OpenRoot(_ context.Context, spec driver.Spec) (*os.File, error) {
	p := filepath.Join(f.dir, spec.ID)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.last = p
	f.mu.Unlock()
	return os.Open(p)
}

func (f *fakeRootDriver) lastRoot() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// newFilesServer serves the API over TCP (for raw requests) and a unix
// socket (for the SDK), with one running instance c1.
func newFilesServer(tb testing.TB) (*httptest.Server, *client.Client, *fakeRootDriver) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("files are owned by the instance's mapped root: chown needs root")
	}
	ctx := context.Background()
	drv := &fakeRootDriver{fakeDriver: &fakeDriver{running: map[string]int{}}, dir: tb.TempDir()}
	ts, srv := newServer(tb, drv)

	sockDir, err := os.MkdirTemp("", "hfiles") // short: socket paths are limited
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(sockDir) })
	ln, err := net.Listen("unix", filepath.Join(sockDir, "s"))
	if err != nil {
		tb.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	tb.Cleanup(func() { hs.Close() })
	c, err := client.Connect(filepath.Join(sockDir, "s"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	op, err := c.CreateInstance(ctx, api.InstancesPost{Name: "c1", Source: api.InstanceSource{Type: "image", Alias: "busybox"}, Start: true})
	if err == nil {
		err = op.Wait(ctx)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return ts, c, drv
}

// rawCall sends a request and returns the response with its body read.
func rawCall(t testing.TB, ts *httptest.Server, method, path, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func hostOwner(t *testing.T, path string) (uid, gid, mode uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid, st.Mode & 0o7777
}

func TestFilesAPI(t *testing.T) {
	ts, _, drv := newFilesServer(t)
	const files = "/1.0/instances/c1/files?path="
	ok := func(method, path, body string, header map[string]string) (*http.Response, []byte) {
		t.Helper()
		resp, b := rawCall(t, ts, method, path, body, header)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return resp, b
	}

	ok("POST", files+"/hello.txt", "hi", map[string]string{"X-LXD-uid": "1000", "X-LXD-gid": "1001", "X-LXD-mode": "0640"})
	root := drv.lastRoot()
	// Ids inside an unprivileged instance are shifted on the host.
	if uid, gid, mode := hostOwner(t, filepath.Join(root, "hello.txt")); uid != 1001000 || gid != 1001001 || mode != 0o640 {
		t.Fatalf("on the host: %d:%d %o", uid, gid, mode)
	}
	resp, body := ok("GET", files+"/hello.txt", "", nil)
	want := map[string]string{"X-LXD-uid": "1000", "X-LXD-gid": "1001", "X-LXD-mode": "0640", "X-LXD-type": "file", "Content-Type": "application/octet-stream", "Content-Length": "2"}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("GET header %s = %q, want %q", k, got, v)
		}
	}
	if string(body) != "hi" || resp.Header.Get("X-LXD-modified") == "" {
		t.Fatalf("GET body %q, modified %q", body, resp.Header.Get("X-LXD-modified"))
	}
	if resp, body := ok("HEAD", files+"/hello.txt", "", nil); resp.Header.Get("X-LXD-type") != "file" || len(body) != 0 {
		t.Fatalf("HEAD: %v %q", resp.Header, body)
	}
	// LXD takes a relative path from "/" (lxc's push -p probes so).
	if _, body := ok("GET", files+"hello.txt", "", nil); string(body) != "hi" {
		t.Fatalf("relative path: %q", body)
	}

	// Defaults: the instance's root owns it, mode 0644.
	ok("POST", files+"/plain", "x", nil)
	if uid, gid, mode := hostOwner(t, filepath.Join(root, "plain")); uid != 1000000 || gid != 1000000 || mode != 0o644 {
		t.Fatalf("default owner on the host: %d:%d %o", uid, gid, mode)
	}
	ok("POST", files+"/plain", "y", map[string]string{"X-LXD-write": "append"})
	if _, body := ok("GET", files+"/plain", "", nil); string(body) != "xy" {
		t.Fatalf("after append: %q", body)
	}

	ok("POST", files+"/d", "", map[string]string{"X-LXD-type": "directory"})
	if _, _, mode := hostOwner(t, filepath.Join(root, "d")); mode != 0o750 {
		t.Fatalf("default directory mode %o", mode)
	}
	ok("POST", files+"/d", "", map[string]string{"X-LXD-type": "directory", "X-LXD-mode": "0700"}) // exists: fine, unchanged
	ok("POST", files+"/d/l", "../hello.txt", map[string]string{"X-LXD-type": "symlink"})
	resp, body = ok("GET", files+"/d", "", nil)
	var env api.Response
	var entries []string
	if err := json.Unmarshal(body, &env); err != nil || json.Unmarshal(env.Metadata, &entries) != nil {
		t.Fatalf("directory answer %s: %v", body, err)
	}
	if resp.Header.Get("X-LXD-type") != "directory" || resp.Header.Get("X-LXD-mode") != "0750" || env.Type != api.SyncResponse || strings.Join(entries, ",") != "l" {
		t.Fatalf("directory: %v %+v %v", resp.Header, env, entries)
	}
	// A symlink answers its target, made absolute as LXD does.
	resp, body = ok("GET", files+"/d/l", "", nil)
	if resp.Header.Get("X-LXD-type") != "symlink" || string(body) != "/hello.txt" {
		t.Fatalf("symlink: %s %q", resp.Header.Get("X-LXD-type"), body)
	}
	if target, _ := os.Readlink(filepath.Join(root, "d/l")); target != "../hello.txt" {
		t.Fatalf("stored target %q", target)
	}

	if resp, body := rawCall(t, ts, "DELETE", files+"/d", "", nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("delete non-empty dir: %d %s", resp.StatusCode, body)
	}
	ok("DELETE", files+"/d/l", "", nil)
	ok("DELETE", files+"/d", "", nil)
	if resp, _ := rawCall(t, ts, "GET", files+"/d", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("deleted dir: %d", resp.StatusCode)
	}
}

func TestFilesAPIErrors(t *testing.T) {
	ts, _, drv := newFilesServer(t)
	rawCall(t, ts, "POST", "/1.0/instances/c1/files?path=/f", "old", nil)
	root := drv.lastRoot()
	tests := []struct {
		name, method, path string
		header             map[string]string
		status             int
		errHas             string
	}{
		{"missing path", "GET", "/1.0/instances/c1/files", nil, 400, "path"},
		{"unknown instance", "GET", "/1.0/instances/ghost/files?path=/f", nil, 404, "ghost"},
		{"missing file", "GET", "/1.0/instances/c1/files?path=/nope", nil, 404, "/nope"},
		{"escape", "GET", "/1.0/instances/c1/files?path=/../etc/passwd", nil, 400, "leaves"},
		{"escape on write", "POST", "/1.0/instances/c1/files?path=/a/../../x", nil, 400, "leaves"},
		{"bad uid", "POST", "/1.0/instances/c1/files?path=/x", map[string]string{"X-LXD-uid": "root"}, 400, "X-LXD-uid"},
		{"negative uid", "POST", "/1.0/instances/c1/files?path=/x", map[string]string{"X-LXD-uid": "-5"}, 400, "X-LXD-uid"},
		{"bad gid", "POST", "/1.0/instances/c1/files?path=/x", map[string]string{"X-LXD-gid": "1.5"}, 400, "X-LXD-gid"},
		{"uid outside the map", "POST", "/1.0/instances/c1/files?path=/x", map[string]string{"X-LXD-uid": "65536"}, 400, "outside the instance's id map"},
		{"gid outside the map", "POST", "/1.0/instances/c1/files?path=/x", map[string]string{"X-LXD-gid": "4294967294"}, 400, "gid"},
		{"bad mode", "POST", "/1.0/instances/c1/files?path=/x", map[string]string{"X-LXD-mode": "rwxr-xr-x"}, 400, "X-LXD-mode"},
		{"mode not octal", "POST", "/1.0/instances/c1/files?path=/x", map[string]string{"X-LXD-mode": "0999"}, 400, "X-LXD-mode"},
		{"mode too big", "POST", "/1.0/instances/c1/files?path=/x", map[string]string{"X-LXD-mode": "17777"}, 400, "X-LXD-mode"},
		{"bad type", "POST", "/1.0/instances/c1/files?path=/x", map[string]string{"X-LXD-type": "fifo"}, 400, "X-LXD-type"},
		{"bad write", "POST", "/1.0/instances/c1/files?path=/x", map[string]string{"X-LXD-write": "truncate"}, 400, "X-LXD-write"},
		{"append to a directory", "POST", "/1.0/instances/c1/files?path=/x", map[string]string{"X-LXD-type": "directory", "X-LXD-write": "append"}, 400, "X-LXD-write"},
		{"append to a missing file", "POST", "/1.0/instances/c1/files?path=/x", map[string]string{"X-LXD-write": "append"}, 404, "/x"},
		{"file over a directory", "POST", "/1.0/instances/c1/files?path=/", nil, 409, "directory"},
		{"directory over a file", "POST", "/1.0/instances/c1/files?path=/f", map[string]string{"X-LXD-type": "directory"}, 409, "not a directory"},
		{"delete root", "DELETE", "/1.0/instances/c1/files?path=/", nil, 400, "root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := rawCall(t, ts, tt.method, tt.path, "new", tt.header)
			var env api.Response
			_ = json.Unmarshal(body, &env)
			if resp.StatusCode != tt.status || env.Type != api.ErrorResponse || env.ErrorCode != tt.status || !strings.Contains(env.Error, tt.errHas) {
				t.Fatalf("%d %s, want %d containing %q", resp.StatusCode, body, tt.status, tt.errHas)
			}
		})
	}
	// Nothing the refused writes asked for exists, and /f is untouched.
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 || entries[0].Name() != "f" {
		t.Fatalf("root after refused writes: %v", entries)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "f")); string(b) != "old" {
		t.Fatalf("/f is now %q", b)
	}
}

func TestFilesSDK(t *testing.T) {
	_, c, _ := newFilesServer(t)
	ctx := context.Background()
	if err := c.CreateInstanceFile(ctx, "c1", "/etc", client.InstanceFileArgs{Type: client.FileTypeDirectory, Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	args := client.InstanceFileArgs{Content: strings.NewReader("a=1\n"), UID: 33, GID: 34, Mode: 0o600}
	if err := c.CreateInstanceFile(ctx, "c1", "/etc/app.conf", args); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateInstanceFile(ctx, "c1", "/etc/app.conf", client.InstanceFileArgs{Content: strings.NewReader("b=2\n"), Append: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateInstanceFile(ctx, "c1", "/etc/link", client.InstanceFileArgs{Type: client.FileTypeSymlink, Content: strings.NewReader("app.conf")}); err != nil {
		t.Fatal(err)
	}
	r, info, err := c.GetInstanceFile(ctx, "c1", "/etc/app.conf")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "a=1\nb=2\n" || info.Type != client.FileTypeFile || info.UID != 33 || info.GID != 34 || info.Mode != 0o600 || info.Size != 8 || info.ModTime.IsZero() {
		t.Fatalf("file: %q %+v", b, info)
	}
	if r, info, err := c.GetInstanceFile(ctx, "c1", "/etc"); err != nil || r != nil || info.Type != client.FileTypeDirectory || strings.Join(info.Entries, ",") != "app.conf,link" || info.Mode != 0o755 {
		t.Fatalf("dir: %+v %v", info, err)
	}
	if _, info, err := c.GetInstanceFile(ctx, "c1", "/etc/link"); err != nil || info.Type != client.FileTypeSymlink || info.Target != "/etc/app.conf" {
		t.Fatalf("symlink: %+v %v", info, err)
	}
	if err := c.DeleteInstanceFile(ctx, "c1", "/etc/link"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.GetInstanceFile(ctx, "c1", "/etc/link"); !client.IsNotFound(err) {
		t.Fatalf("deleted link: %v", err)
	}
	if err := c.CreateInstanceFile(ctx, "c1", "/x", client.InstanceFileArgs{UID: 70000}); !client.IsBadRequest(err) {
		t.Fatalf("uid outside the map: %v", err)
	}
}

// BenchmarkFilePushPull pushes and pulls 10 MiB through the SDK, the HTTP
// edge and the service, over a unix socket, to a plain directory root.
func BenchmarkFilePushPull(b *testing.B) {
	_, c, _ := newFilesServer(b)
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
	b.SetBytes(2 * int64(len(data)))
	for b.Loop() {
		if err := c.CreateInstanceFile(ctx, "c1", "/big", client.InstanceFileArgs{Content: bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
		r, _, err := c.GetInstanceFile(ctx, "c1", "/big")
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		r.Close()
		if err != nil || n != int64(len(data)) {
			b.Fatalf("pulled %d bytes: %v", n, err)
		}
	}
}

// A runtime that cannot reach its instances' roots says so.
func TestFilesNeedRootOpener(t *testing.T) {
	ts := newTestServer(t)
	launch(t, ts, "c1")
	resp, env := call(t, ts, "GET", "/1.0/instances/c1/files?path=/etc/hosts", "", nil)
	if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(env.Error, "file access") {
		t.Fatalf("%d %+v", resp.StatusCode, env)
	}
}

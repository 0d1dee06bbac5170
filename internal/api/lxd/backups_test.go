package lxd

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/backup"
	"github.com/hangar-dev/hangar/internal/storage"
)

// The fake roots back up as one file per volume and import by reading
// the whole archive (the storage layer's real work is tested there).
func (f *fakeRoots) BackupBackend(_ context.Context, id int64) (storage.BackupInfo, error) {
	return storage.BackupInfo{Driver: "dir", Pool: storage.DefaultPool}, nil
}

func (f *fakeRoots) ExportRoot(ctx context.Context, id int64, w *backup.Writer, req storage.ExportRequest) error {
	for _, s := range req.Snapshots {
		if err := w.AddFile(backup.SnapshotDir(req.Type, s)+"/rootfs/volume", 0o644, []byte(s)); err != nil {
			return err
		}
	}
	if err := w.AddFile(backup.VolumeDir(req.Type)+"/backup.yaml", 0o600, req.Config); err != nil {
		return err
	}
	return w.AddFile(backup.VolumeDir(req.Type)+"/rootfs/volume", 0o644, []byte("root"))
}

func (f *fakeRoots) ImportRoot(ctx context.Context, req storage.ImportRequest, br *backup.Reader) error {
	if err := f.CheckRoot(ctx, req.Root.Pool, req.Root.VM, 0); err != nil {
		return err
	}
	for {
		_, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return f.CreateRoot(ctx, req.Root)
}

// dotDotBackup is a backup whose volume entry climbs out of it.
func dotDotBackup(t *testing.T) []byte {
	t.Helper()
	idx, err := backup.MarshalIndex(&backup.Index{Name: "evil", Backend: "dir", Pool: "default", Type: backup.TypeContainer,
		Config: &backup.Config{Instance: &backup.Instance{Name: "evil", Type: backup.TypeContainer}}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{{backup.IndexName, string(idx)}, {"backup/container/rootfs/../../../etc/evil", "x"}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBackupsAPI(t *testing.T) {
	ts, srv := newServer(t, &fakeDriver{running: map[string]int{}})
	launch(t, ts, "c1")
	do := func(method, path, body string, header map[string]string) (int, api.Response) {
		resp, env := call(t, ts, method, path, body, header)
		return resp.StatusCode, env
	}
	wait := func(env api.Response) api.Operation {
		t.Helper()
		_, done := do("GET", env.Operation+"/wait?timeout=10", "", nil)
		var op api.Operation
		_ = json.Unmarshal(done.Metadata, &op)
		return op
	}
	bad := []struct {
		name, method, path, body string
		status                   int
		errHas                   string
	}{
		{"not JSON", "POST", "/1.0/instances/c1/backups", "{", 400, "JSON"},
		{"bad compression", "POST", "/1.0/instances/c1/backups", `{"compression_algorithm":"rar"}`, 400, "rar"},
		{"slash in name", "POST", "/1.0/instances/c1/backups", `{"name":"a/b"}`, 400, "slash"},
		{"missing instance", "POST", "/1.0/instances/nope/backups", `{}`, 404, "not found"},
		{"missing backup", "GET", "/1.0/instances/c1/backups/nope", "", 404, "not found"},
		{"export missing", "GET", "/1.0/instances/c1/backups/nope/export", "", 404, "not found"},
		{"delete missing", "DELETE", "/1.0/instances/c1/backups/nope", "", 404, "not found"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			status, env := do(tc.method, tc.path, tc.body, nil)
			if status != tc.status || !strings.Contains(env.Error, tc.errHas) {
				t.Fatalf("%d %q, want %d with %q", status, env.Error, tc.status, tc.errHas)
			}
		})
	}
	status, env := do("POST", "/1.0/instances/c1/backups", `{"name":"b1","compression_algorithm":"zstd","expires_at":"0001-01-01T00:00:00Z"}`, nil)
	if status != 202 {
		t.Fatalf("create backup: %d %+v", status, env)
	}
	if op := wait(env); op.StatusCode != api.Success || len(op.Resources["backups"]) != 1 {
		t.Fatalf("backup operation: %+v", op)
	}
	status, env = do("POST", "/1.0/instances/c1/backups", "", nil) // no body: backup0, gzip
	if status != 202 || wait(env).StatusCode != api.Success {
		t.Fatalf("create default backup: %d %+v", status, env)
	}
	_, env = do("GET", "/1.0/instances/c1/backups", "", nil)
	var urls []string
	_ = json.Unmarshal(env.Metadata, &urls)
	if strings.Join(urls, " ") != "/1.0/instances/c1/backups/b1 /1.0/instances/c1/backups/backup0" {
		t.Fatalf("backups %q", urls)
	}
	_, env = do("GET", "/1.0/instances/c1/backups?recursion=1", "", nil)
	var full []api.InstanceBackup
	_ = json.Unmarshal(env.Metadata, &full)
	if len(full) != 2 || full[0].Name != "b1" || !full[0].ExpiresAt.IsZero() {
		t.Fatalf("backups %+v", full)
	}
	resp, data := rawCall(t, ts, "GET", "/1.0/instances/c1/backups/b1/export", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("export: %d %s", resp.StatusCode, data)
	}
	status, env = do("POST", "/1.0/instances/c1/backups/b1", `{"name":"backup0"}`, nil)
	if status != 409 {
		t.Fatalf("rename onto another: %d %+v", status, env)
	}
	status, env = do("POST", "/1.0/instances/c1/backups/b1", `{"name":"kept"}`, nil)
	if status != 202 || wait(env).StatusCode != api.Success {
		t.Fatalf("rename: %d %+v", status, env)
	}
	status, env = do("DELETE", "/1.0/instances/c1/backups/backup0", "", nil)
	if status != 202 || wait(env).StatusCode != api.Success {
		t.Fatalf("delete: %d %+v", status, env)
	}

	octet := func(extra map[string]string) map[string]string {
		h := map[string]string{"Content-Type": "application/octet-stream"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	refused := []struct {
		name   string
		body   []byte
		header map[string]string
		status int
		errHas string
	}{
		{"truncated", data[:len(data)/2], octet(map[string]string{"X-LXD-name": "t1"}), 400, "truncated"},
		{"empty", nil, octet(map[string]string{"X-LXD-name": "t2"}), 400, ""},
		{"not a tarball", []byte("hello, world, this is no backup at all"), octet(map[string]string{"X-LXD-name": "t3"}), 400, ""},
		{"climbs with ..", dotDotBackup(t), octet(map[string]string{"X-LXD-name": "t4"}), 400, ".."},
		{"no such pool", data, octet(map[string]string{"X-LXD-name": "t5", "X-LXD-pool": "nope"}), 400, `"nope" not found`},
		{"name taken", data, octet(nil), 409, "already exists"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			status, env := do("POST", "/1.0/instances", string(tc.body), tc.header)
			if status != tc.status || !strings.Contains(env.Error, tc.errHas) {
				t.Fatalf("%d %q, want %d with %q", status, env.Error, tc.status, tc.errHas)
			}
			if names := srv.Instances.List(context.Background()); len(names) != 1 {
				t.Fatalf("instances after a refused import: %v", names)
			}
		})
	}
	status, env = do("POST", "/1.0/instances", string(data), octet(map[string]string{"X-LXD-name": "c2"}))
	if status != 202 || wait(env).StatusCode != api.Success {
		t.Fatalf("import: %d %+v", status, env)
	}
	if _, err := srv.Instances.Get(context.Background(), "c2"); err != nil {
		t.Fatalf("imported instance: %v", err)
	}
}

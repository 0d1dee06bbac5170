package instance

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/backup"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage"
	"github.com/hangar-dev/hangar/internal/store"
)

// The fake DB's backups: rows of deleted instances are gone, as the
// store's cascade removes them.
func (d *fakeDB) CreateInstanceBackup(_ context.Context, b *store.InstanceBackup) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.backups {
		if o.InstanceID == b.InstanceID && o.Name == b.Name {
			return errdefs.Conflict("backup %q already exists", b.Name)
		}
	}
	if b.State == "" {
		b.State = "pending"
	}
	d.next++
	b.ID = d.next
	d.backups[b.ID] = *b
	return nil
}

func (d *fakeDB) ListInstanceBackups(_ context.Context, instanceID int64) ([]store.InstanceBackup, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []store.InstanceBackup{}
	for _, b := range d.backups {
		if _, ok := d.instances[b.InstanceID]; ok && (instanceID == 0 || b.InstanceID == instanceID) {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (d *fakeDB) GetInstanceBackup(ctx context.Context, instanceID int64, name string) (store.InstanceBackup, error) {
	all, _ := d.ListInstanceBackups(ctx, instanceID)
	for _, b := range all {
		if b.Name == name {
			return b, nil
		}
	}
	return store.InstanceBackup{}, errdefs.NotFound("backup %q not found", name)
}

func (d *fakeDB) UpdateInstanceBackup(_ context.Context, b store.InstanceBackup) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.backups {
		if o.ID != b.ID && o.InstanceID == b.InstanceID && o.Name == b.Name {
			return errdefs.Conflict("backup %q already exists", b.Name)
		}
	}
	if _, ok := d.backups[b.ID]; !ok {
		return errdefs.NotFound("backup %q not found", b.Name)
	}
	d.backups[b.ID] = b
	return nil
}

func (d *fakeDB) DeleteInstanceBackup(_ context.Context, id int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.backups, id)
	return nil
}

// The fake storage writes each volume as a backup.yaml and one file
// rootfs/volume naming it, and imports by reading every entry: an
// imported root records the snapshot names it received.
func (f *fakeStorage) BackupBackend(_ context.Context, id int64) (storage.BackupInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.roots[id]
	if !ok {
		return storage.BackupInfo{}, errdefs.NotFound("no root")
	}
	return storage.BackupInfo{Driver: "dir", Pool: r.Pool}, nil
}

func (f *fakeStorage) ExportRoot(ctx context.Context, id int64, w *backup.Writer, req storage.ExportRequest) error {
	vol := func(dir, what string) error {
		if err := w.AddFile(dir+"/backup.yaml", 0o600, req.Config); err != nil {
			return err
		}
		return w.AddFile(dir+"/rootfs/volume", 0o644, []byte(what))
	}
	for _, s := range req.Snapshots {
		if err := vol(backup.SnapshotDir(req.Type, s), s); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.quiesced = req.Quiesce != nil
	f.mu.Unlock()
	read := func(ctx context.Context) error { return vol(backup.VolumeDir(req.Type), "root") }
	if req.Quiesce != nil {
		return req.Quiesce(ctx, read)
	}
	return read(ctx)
}

func (f *fakeStorage) ImportRoot(ctx context.Context, req storage.ImportRequest, br *backup.Reader) error {
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
	if err := f.CreateRoot(ctx, req.Root); err != nil {
		return err
	}
	for _, s := range req.Snapshots {
		if err := f.SnapshotRoot(ctx, req.Root.InstanceID, s.Name); err != nil {
			return err
		}
	}
	return nil
}

func exportBytes(t *testing.T, s *Service, inst, name string) []byte {
	t.Helper()
	f, _, err := s.OpenBackup(context.Background(), inst, name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newBackupService(t *testing.T) (*Service, *fakeDB) {
	s, _, db, _ := newTestService(t)
	s.cfg.BackupDir = t.TempDir()
	return s, db
}

func TestBackupLifecycle(t *testing.T) {
	s, db := newBackupService(t)
	ctx := context.Background()
	st := s.cfg.Storage.(*fakeStorage)
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSnapshot(ctx, "c1", SnapshotRequest{Name: "snap0"}); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		req  BackupRequest
		kind error
	}{
		{"slash", BackupRequest{Name: "a/b"}, errdefs.ErrInvalidArgument},
		{"compression", BackupRequest{Compression: "rar"}, errdefs.ErrInvalidArgument},
		{"bzip2 cannot be written", BackupRequest{Compression: "bzip2"}, errdefs.ErrInvalidArgument},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.CreateBackup(ctx, "c1", tc.req); !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want %v", err, tc.kind)
			}
		})
	}
	if _, err := s.CreateBackup(ctx, "nope", BackupRequest{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("backup of a missing instance: %v", err)
	}
	expires := time.Now().Add(time.Hour).UTC()
	for i, req := range []BackupRequest{{}, {Compression: "zstd", InstanceOnly: true, ExpiresAt: expires}} {
		c, err := s.CreateBackup(ctx, "c1", req)
		if err != nil {
			t.Fatal(err)
		}
		if want := "backup" + string(rune('0'+i)); c.Name() != want {
			t.Fatalf("name %q, want %q", c.Name(), want)
		}
		if err := c.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !st.quiesced {
		t.Error("the root of running c1 was read without a pause")
	}
	if _, err := s.CreateBackup(ctx, "c1", BackupRequest{Name: "backup0"}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	list, err := s.Backups(ctx, "c1")
	if err != nil || len(list) != 2 || list[0].Compression != "gzip" || !list[1].InstanceOnly || !list[1].ExpiresAt.Equal(expires) {
		t.Fatalf("backups %+v, %v", list, err)
	}
	// The full backup holds the snapshot, the instance-only one not.
	for name, want := range map[string][]string{"backup0": {"snap0"}, "backup1": nil} {
		br, err := backup.Open(bytes.NewReader(exportBytes(t, s, "c1", name)))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(br.Index.Snapshots, want) || br.Index.Config.Instance.Config[backup.KeyLastIDMap] != "[]" {
			t.Errorf("%s: index %+v", name, br.Index)
		}
		br.Close()
	}
	if err := s.RenameBackup(ctx, "c1", "backup1", "backup0"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("rename onto another: %v", err)
	}
	if err := s.RenameBackup(ctx, "c1", "backup1", "x/y"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("rename to a bad name: %v", err)
	}
	if err := s.RenameBackup(ctx, "c1", "backup1", "weekly"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBackup(ctx, "c1", "weekly"); err != nil {
		t.Fatal(err)
	}
	// Expiry: pruned once its time is past, the other kept.
	if n, err := s.PruneBackups(ctx, expires.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	if _, err := s.GetBackup(ctx, "c1", "weekly"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("expired backup still there: %v", err)
	}
	if err := s.DeleteBackup(ctx, "c1", "backup0"); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(s.cfg.BackupDir, "*", "*"))
	if len(files) != 0 || len(db.backups) != 0 {
		t.Fatalf("left: files %q, rows %+v", files, db.backups)
	}
}

// TestBackupKilled: a pending row and its file, and a file with no row,
// are gone after a restart; a finished backup stays.
func TestBackupKilled(t *testing.T) {
	s, db := newBackupService(t)
	ctx := context.Background()
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateBackup(ctx, "c1", BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	half, err := s.CreateBackup(ctx, "c1", BackupRequest{}) // never runs: killed
	if err != nil {
		t.Fatal(err)
	}
	rec, _, _ := s.snapshot(half.in)
	halfPath := s.backupPath(rec.ID, half.row.ID)
	stray := filepath.Join(s.cfg.BackupDir, "h999", "7")
	for _, p := range []string{halfPath, stray} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.reconcileBackups(ctx)
	for _, p := range []string{halfPath, stray, filepath.Dir(stray)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	rows, _ := db.ListInstanceBackups(ctx, 0)
	if len(rows) != 1 || rows[0].Name != "backup0" || rows[0].State != "created" {
		t.Fatalf("rows %+v", rows)
	}
	if _, err := os.Stat(s.backupPath(rec.ID, rows[0].ID)); err != nil {
		t.Fatalf("the finished backup's file: %v", err)
	}
}

func TestImportBackup(t *testing.T) {
	s, db := newBackupService(t)
	ctx := context.Background()
	st := s.cfg.Storage.(*fakeStorage)
	req := imageReq("c1")
	req.Config = map[string]string{"limits.cpu": "2"}
	if err := launch(t, s, req); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"snap0", "snap1"} {
		if _, err := s.CreateSnapshot(ctx, "c1", SnapshotRequest{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.CreateBackup(ctx, "c1", BackupRequest{Compression: "zstd"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	data := exportBytes(t, s, "c1", "backup0")
	src, _ := s.Get(ctx, "c1")

	bad := []struct {
		name string
		data []byte
		opts ImportOptions
		kind error
	}{
		{"existing name", data, ImportOptions{}, errdefs.ErrConflict},
		{"truncated", data[:len(data)*2/3], ImportOptions{Name: "t1"}, errdefs.ErrInvalidArgument},
		{"not a backup", []byte("hello"), ImportOptions{Name: "t2"}, errdefs.ErrInvalidArgument},
		{"no such pool", data, ImportOptions{Name: "t3", Pool: "nope"}, errdefs.ErrInvalidArgument},
		{"bad name", data, ImportOptions{Name: "1bad"}, errdefs.ErrInvalidArgument},
	}
	before := len(db.instances)
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ImportBackup(ctx, bytes.NewReader(tc.data), tc.opts)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want %v", err, tc.kind)
			}
			if len(db.instances) != before || len(st.roots) != before {
				t.Fatalf("left behind: %d records, %d roots, want %d", len(db.instances), len(st.roots), before)
			}
		})
	}
	name, err := s.ImportBackup(ctx, bytes.NewReader(data), ImportOptions{Name: "c2", Pool: "quota"})
	if err != nil || name != "c2" {
		t.Fatalf("import: %q, %v", name, err)
	}
	got, err := s.Get(ctx, "c2")
	if err != nil {
		t.Fatal(err)
	}
	if got.Config["limits.cpu"] != "2" || got.Config[keyUUID] == "" || got.Config[keyUUID] == src.Config[keyUUID] || got.Config[keyCreating] != "" {
		t.Errorf("imported config %v", got.Config)
	}
	if r, _ := rootDiskOf(got.Devices); r.Pool != "quota" {
		t.Errorf("imported devices %v: root not on pool quota", got.Devices)
	}
	snaps, err := s.Snapshots(ctx, "c2")
	if err != nil || len(snaps) != 2 || snaps[0].Name != "snap0" || snaps[1].Name != "snap1" {
		t.Fatalf("snapshots %+v, %v", snaps, err)
	}
	if got.Status != StatusStopped {
		t.Errorf("imported instance is %s", got.Status)
	}
	if err := s.Start(ctx, "c2"); err != nil {
		t.Fatalf("start the import: %v", err)
	}
}

// TestImportKilled: an instance whose import did not finish is deleted
// at the next start.
func TestImportKilled(t *testing.T) {
	s, db := newBackupService(t)
	ctx := context.Background()
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	if err := s.updateRecord(ctx, s.byName[ref{"default", "c1"}], func(r *store.Instance) { r.Config[keyCreating] = creatingImport }); err != nil {
		t.Fatal(err)
	}
	s.recoverRoots(ctx)
	if _, err := s.Get(ctx, "c1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("half-imported instance kept: %v", err)
	}
	if len(db.instances) != 0 {
		t.Fatalf("records left: %v", db.instances)
	}
}

package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/backup"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// treeOf describes a tree file by file: path, type and mode, owner,
// content digest (regular files) or target (symlinks).
func treeOf(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		what := ""
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			what = hex.EncodeToString(sum[:8])
		case unix.S_IFLNK:
			what, _ = os.Readlink(p)
		}
		out = append(out, fmt.Sprintf("%s %o %d:%d %s", rel, st.Mode, st.Uid, st.Gid, what))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rootTree is the tree of an instance's root (or of its snapshot).
func rootTree(t *testing.T, e *env, id int64, snap string) []string {
	t.Helper()
	var out []string
	err := e.m.ReadRoot(e.ctx, id, snap, func(v RootView) error {
		out = treeOf(t, v.Dir)
		return nil
	})
	if err != nil {
		t.Fatalf("read root %d/%q: %v", id, snap, err)
	}
	return out
}

// writableDir is where a test writes into a container root: the
// volume's directory on btrfs, its upper layer on dir.
func writableDir(e *env, pool, runtimeID string, clones bool) string {
	dir := e.path(pool, "container", runtimeID, "filesystem")
	if !clones {
		dir = filepath.Join(dir, "upper")
	}
	return dir
}

// exportOf writes instance id's backup as the core does.
func exportOf(t *testing.T, e *env, id int64, snaps []string) []byte {
	t.Helper()
	return exportAs(t, e, id, snaps, false)
}

// exportAs writes instance id's backup, optimized or not, as the core
// does.
func exportAs(t *testing.T, e *env, id int64, snaps []string, optimized bool) []byte {
	t.Helper()
	info, err := e.m.BackupBackend(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	drv, pool := info.Driver, info.Pool
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, backup.CompressionZstd)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &backup.Config{Instance: &backup.Instance{Name: "c1", Type: backup.TypeContainer,
		Devices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": pool}}}}
	idx := &backup.Index{Name: "c1", Backend: drv, Pool: pool, Type: backup.TypeContainer, Snapshots: snaps, Config: cfg,
		Optimized: optimized, OptimizedHeader: optimized}
	if optimized && !info.Optimized {
		t.Fatalf("BackupBackend: %+v cannot be optimized", info)
	}
	if err := w.WriteIndex(idx); err != nil {
		t.Fatal(err)
	}
	yml, err := backup.MarshalConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	quiesced := false
	err = e.m.ExportRoot(e.ctx, id, w, ExportRequest{Type: backup.TypeContainer, Snapshots: snaps, Config: yml, Optimized: optimized,
		Quiesce: func(ctx context.Context, read func(context.Context) error) error {
			quiesced = true
			return read(ctx)
		}})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if !quiesced {
		t.Error("the root was not read through Quiesce")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func importOf(e *env, data []byte, req ImportRequest) error {
	br, err := backup.Open(bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer br.Close()
	for _, s := range br.Index.Snapshots {
		req.Snapshots = append(req.Snapshots, ImportSnapshot{Name: s})
	}
	return e.m.ImportRoot(e.ctx, req, br)
}

// TestBackupRoundTrip: a root with a snapshot, exported and imported as
// another instance (on the same pool and on another), has the same
// trees, owners and modes, and the snapshot its own.
func TestBackupRoundTrip(t *testing.T) {
	for _, drv := range []string{"dir", "btrfs"} {
		t.Run(drv, func(t *testing.T) {
			e := newEnv(t)
			if drv == "btrfs" {
				e.btrfsPool("p", map[string]string{"size": "512MiB"})
			} else {
				e.dirPool("p", nil)
			}
			e.dirPool("other", nil)
			clones := drv == "btrfs"
			req := RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap}
			if err := e.m.CreateRoot(e.ctx, req); err != nil {
				t.Fatal(err)
			}
			w := writableDir(e, "p", "r1", clones)
			if err := os.WriteFile(filepath.Join(w, "changed"), []byte("before"), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(filepath.Join(w, "changed"), int(testMap.HostID)+33, int(testMap.HostID)+34); err != nil {
				t.Fatal(err)
			}
			if err := e.m.SnapshotRoot(e.ctx, 1, "snap0"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(w, "changed"), []byte("after, longer"), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("changed", filepath.Join(w, "link")); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(filepath.Join(w, "link"), int(testMap.HostID), int(testMap.HostID)); err != nil {
				t.Fatal(err)
			}
			wantRoot, wantSnap := rootTree(t, e, 1, ""), rootTree(t, e, 1, "snap0")
			if slices.Equal(wantRoot, wantSnap) {
				t.Fatal("the root and its snapshot do not differ: the test proves nothing")
			}
			data := exportOf(t, e, 1, []string{"snap0"})
			for i, pool := range []string{"p", "other"} {
				id := int64(10 + i)
				err := importOf(e, data, ImportRequest{Root: RootRequest{InstanceID: id, RuntimeID: fmt.Sprintf("r%d", id),
					Name: fmt.Sprintf("c%d", id), Pool: pool, IDMap: &testMap}})
				if err != nil {
					t.Fatalf("import to %s: %v", pool, err)
				}
				if got := rootTree(t, e, id, ""); !slices.Equal(got, wantRoot) {
					t.Errorf("imported root on %s:\n%q\nwant\n%q", pool, got, wantRoot)
				}
				if got := rootTree(t, e, id, "snap0"); !slices.Equal(got, wantSnap) {
					t.Errorf("imported snapshot on %s:\n%q\nwant\n%q", pool, got, wantSnap)
				}
				snaps, err := e.m.RootSnapshots(e.ctx, id)
				if err != nil || len(snaps) != 1 || snaps[0].Name != "snap0" {
					t.Errorf("snapshots of the import: %+v, %v", snaps, err)
				}
			}
		})
	}
}

// TestImportBadArchive: an archive cut short, or one whose index lies
// about its snapshots, leaves no record and no volume.
func TestImportBadArchive(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", nil)
	req := RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap}
	if err := e.m.CreateRoot(e.ctx, req); err != nil {
		t.Fatal(err)
	}
	// Enough incompressible data that a cut falls after the index.
	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	bigPath := filepath.Join(writableDir(e, "p", "r1", false), "big")
	if err := os.WriteFile(bigPath, big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(bigPath, int(testMap.HostID), int(testMap.HostID)); err != nil {
		t.Fatal(err)
	}
	if err := e.m.SnapshotRoot(e.ctx, 1, "snap0"); err != nil {
		t.Fatal(err)
	}
	data := exportOf(t, e, 1, []string{"snap0"})
	beforeRecs, beforeDisk := e.records("p"), e.onDisk("p")
	tests := []struct {
		name  string
		data  []byte
		snaps []ImportSnapshot // nil: the index's
		pool  string
	}{
		{"truncated in the middle", data[:len(data)/2], nil, "p"},
		{"truncated at the end", data[:len(data)-8], nil, "p"},
		{"snapshot not in the archive", data, []ImportSnapshot{{Name: "snap0"}, {Name: "other"}}, "p"},
		{"no such pool", data, nil, "nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			br, err := backup.Open(bytes.NewReader(tc.data))
			if err != nil {
				t.Fatal(err) // the index is whole in every case
			}
			defer br.Close()
			ir := ImportRequest{Root: RootRequest{InstanceID: 2, RuntimeID: "r2", Name: "c2", Pool: tc.pool, IDMap: &testMap}, Snapshots: tc.snaps}
			if tc.snaps == nil {
				ir.Snapshots = []ImportSnapshot{{Name: "snap0"}}
			}
			err = e.m.ImportRoot(e.ctx, ir, br)
			if err == nil {
				t.Fatal("import succeeded")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("error %v: want invalid or not found", err)
			}
			if got := e.records("p"); !slices.Equal(got, beforeRecs) {
				t.Errorf("records %q, want %q", got, beforeRecs)
			}
			if got := e.onDisk("p"); !slices.Equal(got, beforeDisk) {
				t.Errorf("on disk %q, want %q", got, beforeDisk)
			}
		})
	}
}

// archiveEntries lists a backup's entries, name and size.
func archiveEntries(t *testing.T, data []byte) map[string]int64 {
	t.Helper()
	br, err := backup.Open(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	out := map[string]int64{}
	var order []string
	for {
		e, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out[e.Header.Name] = e.Header.Size
		order = append(order, e.Header.Name)
	}
	want := []string{backup.OptimizedHeaderName,
		"backup/snapshots/snap0.bin", "backup/snapshots/snap0_rootfs.bin",
		"backup/snapshots/snap1.bin", "backup/snapshots/snap1_rootfs.bin",
		"backup/container.bin", "backup/container_rootfs.bin"}
	if !slices.Equal(order, want) {
		t.Errorf("entries %q, want %q", order, want)
	}
	return out
}

// TestOptimizedBackupRoundTrip: on btrfs, an optimized backup holds
// send streams in LXD's order (snapshots oldest first, the first whole,
// the next ones and the root incremental), leaves no scratch volume,
// and imports onto a btrfs pool as the same root and read-only
// snapshots; onto a dir pool, with another id map or cut short it is a
// 400 that leaves nothing.
func TestOptimizedBackupRoundTrip(t *testing.T) {
	needRoot(t)
	e := newEnv(t)
	e.btrfsPool("p", map[string]string{"size": "512MiB"})
	e.btrfsPool("q", map[string]string{"size": "512MiB"})
	e.dirPool("d", nil)
	req := RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap}
	if err := e.m.CreateRoot(e.ctx, req); err != nil {
		t.Fatal(err)
	}
	w := writableDir(e, "p", "r1", true)
	write := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(w, name)
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, int(testMap.HostID)+33, int(testMap.HostID)+34); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 4<<20)
	_, _ = rand.Read(big)
	write("big", big)
	write("changed", []byte("zero"))
	if err := e.m.SnapshotRoot(e.ctx, 1, "snap0"); err != nil {
		t.Fatal(err)
	}
	write("changed", []byte("one"))
	if err := e.m.SnapshotRoot(e.ctx, 1, "snap1"); err != nil {
		t.Fatal(err)
	}
	write("changed", []byte("two, the root"))
	if err := os.Remove(filepath.Join(w, "big")); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"": rootTree(t, e, 1, ""), "snap0": rootTree(t, e, 1, "snap0"), "snap1": rootTree(t, e, 1, "snap1")}
	if slices.Equal(want[""], want["snap1"]) || slices.Equal(want["snap0"], want["snap1"]) {
		t.Fatal("the volumes do not differ: the test proves nothing")
	}
	beforeDisk := e.onDisk("p")
	data := exportAs(t, e, 1, []string{"snap0", "snap1"}, true)
	if got := e.onDisk("p"); !slices.Equal(got, beforeDisk) {
		t.Errorf("the export left %q on the pool, want %q", got, beforeDisk)
	}
	sizes := archiveEntries(t, data)
	// snap0 holds the 4 MiB file whole; snap1 and the root only changes.
	if sizes["backup/snapshots/snap0_rootfs.bin"] < 4<<20 || sizes["backup/snapshots/snap1_rootfs.bin"] > 1<<20 || sizes["backup/container_rootfs.bin"] > 1<<20 {
		t.Errorf("stream sizes %v: want snap0 whole, snap1 and the root incremental", sizes)
	}

	archiveMap := backup.SingleRange(testMap.HostID, testMap.Size)
	recs := map[string][]string{"p": e.records("p"), "d": e.records("d")}
	disk := map[string][]string{"p": e.onDisk("p"), "d": e.onDisk("d")}
	bad := []struct {
		name string
		data []byte
		pool string
		amap backup.IDMap
		want string
	}{
		{"onto a dir pool", data, "d", archiveMap, "own driver"},
		{"another id map", data, "p", backup.SingleRange(otherMap.HostID, otherMap.Size), "id map"},
		{"no id map", data, "p", nil, "id map"},
		{"cut in a stream", data[:len(data)*2/3], "p", archiveMap, "truncated"},
		{"LXD's layout (rootfs a directory)", lxdOptimized(t), "p", archiveMap, "directory of its volume"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := importOf(e, tc.data, ImportRequest{Root: RootRequest{InstanceID: 5, RuntimeID: "r5", Name: "c5", Pool: tc.pool, IDMap: &testMap}, ArchiveMap: tc.amap})
			wantErr(t, "import", err, errdefs.ErrInvalidArgument, tc.want)
			for _, pool := range []string{"p", "d"} {
				if got := e.records(pool); !slices.Equal(got, recs[pool]) {
					t.Errorf("records on %s %q, want %q", pool, got, recs[pool])
				}
				if got := e.onDisk(pool); !slices.Equal(got, disk[pool]) {
					t.Errorf("on disk on %s %q, want %q", pool, got, disk[pool])
				}
			}
		})
	}

	for i, pool := range []string{"p", "q"} {
		id := int64(10 + i)
		rid := fmt.Sprintf("r%d", id)
		err := importOf(e, data, ImportRequest{Root: RootRequest{InstanceID: id, RuntimeID: rid, Name: fmt.Sprintf("c%d", id), Pool: pool, IDMap: &testMap}, ArchiveMap: archiveMap})
		if err != nil {
			t.Fatalf("import onto %s: %v", pool, err)
		}
		for snap, tree := range want {
			if got := rootTree(t, e, id, snap); !slices.Equal(got, tree) {
				t.Errorf("imported %q on %s:\n%q\nwant\n%q", snap, pool, got, tree)
			}
		}
		snaps, err := e.m.RootSnapshots(e.ctx, id)
		if err != nil || len(snaps) != 2 || snaps[0].Name != "snap0" || snaps[1].Name != "snap1" {
			t.Errorf("snapshots of the import: %+v, %v", snaps, err)
		}
		// The root is writable, its snapshots are not.
		if err := os.WriteFile(filepath.Join(writableDir(e, pool, rid, true), "new"), []byte("x"), 0o600); err != nil {
			t.Errorf("the imported root is not writable: %v", err)
		}
		err = e.m.ReadRoot(e.ctx, id, "snap0", func(v RootView) error {
			return os.WriteFile(filepath.Join(v.Dir, "new"), []byte("x"), 0o600)
		})
		if !errors.Is(err, unix.EROFS) {
			t.Errorf("write into an imported snapshot: %v, want EROFS", err)
		}
	}
}

// lxdOptimized is an optimized backup as LXD writes one: the volume's
// stream alone, its rootfs/ a directory in it.
func lxdOptimized(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, backup.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &backup.Config{Instance: &backup.Instance{Name: "c1", Type: backup.TypeContainer,
		Devices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "p"}}}}
	if err := w.WriteIndex(&backup.Index{Name: "c1", Backend: "btrfs", Pool: "p", Type: backup.TypeContainer, Config: cfg, Optimized: true, OptimizedHeader: true}); err != nil {
		t.Fatal(err)
	}
	h, err := backup.MarshalOptimizedHeader(&backup.OptimizedHeader{Subvolumes: []backup.OptimizedSubvolume{{Path: "/"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddFile(backup.OptimizedHeaderName, 0o644, h); err != nil {
		t.Fatal(err)
	}
	stream := []byte("btrfs-stream\x00 not really")
	if err := w.AddStream("backup/container.bin", int64(len(stream)), bytes.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

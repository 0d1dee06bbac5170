package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
	"github.com/hangar-dev/hangar/internal/store"
)

// makePool makes the pool name with driver drv (btrfs skips the test
// where it cannot be made).
func (e *env) makePool(drv, name string) {
	e.t.Helper()
	if drv == "btrfs" {
		e.btrfsPool(name, nil)
		return
	}
	e.dirPool(name, nil)
}

// withMounted mounts a container's root as the runtime would (the mounts
// Root gives), runs fn on the mounted tree and unmounts it.
func withMounted(t *testing.T, e *env, id int64, fn func(dir string)) {
	t.Helper()
	r, err := e.m.Root(e.ctx, RootRequest{InstanceID: id, IDMap: &testMap})
	if err != nil {
		t.Fatal(err)
	}
	dir := mountRoot(t, e, r, fmt.Sprintf("root%d", id))
	fn(dir)
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
}

// fileIn is a file's content, or "<absent>".
func fileIn(t *testing.T, dir, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if errors.Is(err, os.ErrNotExist) {
		return "<absent>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeOwned(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(path, int(testMap.HostID), int(testMap.HostID)); err != nil {
		t.Fatal(err)
	}
}

// snapRecord is the record of volume parent's snapshot snap.
func (e *env) snapRecord(pool, typ, parent, snap string) store.StorageVolume {
	e.t.Helper()
	v, err := e.st.GetStorageVolume(e.ctx, pool, "default", typ, parent+"/"+snap)
	if err != nil {
		e.t.Fatalf("snapshot record %s/%s: %v", parent, snap, err)
	}
	return v
}

// vmDiskOf is the disk file of a VM volume kept on disk as diskName.
func (e *env) vmDiskOf(pool, diskName string) string {
	return filepath.Join(e.path(pool, drivers.TypeVM, diskName, drivers.ContentBlock), drivers.BlockFile)
}

// qemuWrite writes 64KiB of pattern at off of a disk, as its guest would.
func qemuWrite(t *testing.T, path, format string, pattern byte, off int64) {
	t.Helper()
	cmd := fmt.Sprintf("write -P 0x%02x %d 64k", pattern, off)
	if out, err := exec.Command("qemu-io", "-f", format, "-c", cmd, path).CombinedOutput(); err != nil || !strings.Contains(string(out), "wrote") {
		t.Fatalf("qemu-io %s %s: %v: %s", path, cmd, err, out)
	}
}

// guestBytes reads n bytes at off of what the guest sees of a disk (its
// backing chain flattened).
func guestBytes(t *testing.T, path, format string, off, n int64) []byte {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "flat.raw")
	if out, err := exec.Command("qemu-img", "convert", "-U", "-f", format, "-O", "raw", path, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s: %v: %s", path, err, out)
	}
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// patternAt says whether the guest sees 64KiB of pattern at off.
func patternAt(t *testing.T, path, format string, pattern byte, off int64) bool {
	t.Helper()
	return bytes.Equal(guestBytes(t, path, format, off, 64<<10), bytes.Repeat([]byte{pattern}, 64<<10))
}

// sameGuestDisk says whether two disks show their guests the same content
// (qemu-img compare: an area past the smaller disk's end must be zeros).
func sameGuestDisk(t *testing.T, a, af, b, bf string) bool {
	t.Helper()
	out, err := exec.Command("qemu-img", "compare", "-U", "-f", af, "-F", bf, a, b).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		t.Logf("qemu-img compare %s %s: %s", a, b, out)
		return false
	}
	t.Fatalf("qemu-img compare %s %s: %v: %s", a, b, err, out)
	return false
}

func snapNames(s []Snapshot) []string {
	out := []string{}
	for _, v := range s {
		out = append(out, v.Name)
	}
	return out
}

// withPrefix keeps the entries that begin with prefix.
func withPrefix(all []string, prefix string) []string {
	out := []string{}
	for _, s := range all {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// TestRootSnapshots: a container's and a VM's root snapshotted, changed
// and restored on each driver; bad names, taken names and missing
// snapshots refused with nothing left; a rename moves nothing on disk; a
// delete, and the instance's DeleteRoot, remove the volumes.
func TestRootSnapshots(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	for _, drv := range []string{"dir", "btrfs"} {
		t.Run(drv, func(t *testing.T) {
			e := newEnv(t)
			e.images.addDisk(diskImage)
			e.makePool(drv, "p")
			format := map[string]string{"dir": "qcow2", "btrfs": "raw"}[drv]
			for _, r := range []RootRequest{
				{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap},
				{InstanceID: 2, RuntimeID: "r2", Name: "v2", VM: true, Pool: "p", Image: diskImage},
			} {
				if err := e.m.CreateRoot(e.ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			disk := e.vmDiskOf("p", "r2")

			// Changes through the mounted root: a file written, one of
			// the image's deleted (a whiteout in upper on dir).
			withMounted(t, e, 1, func(dir string) {
				writeOwned(t, filepath.Join(dir, "f"), "before")
				if err := os.Remove(filepath.Join(dir, "home/user/file")); err != nil {
					t.Fatal(err)
				}
			})
			qemuWrite(t, disk, format, 0xab, 1<<20)
			for _, id := range []int64{1, 2} {
				if err := e.m.SnapshotRoot(e.ctx, id, "snap0"); err != nil {
					t.Fatalf("snapshot %d: %v", id, err)
				}
			}
			withMounted(t, e, 1, func(dir string) {
				writeOwned(t, filepath.Join(dir, "f"), "after")
				writeOwned(t, filepath.Join(dir, "new"), "new")
				writeOwned(t, filepath.Join(dir, "home/user/file"), "again")
			})
			qemuWrite(t, disk, format, 0xcd, 1<<20)
			for _, id := range []int64{1, 2} {
				if err := e.m.SnapshotRoot(e.ctx, id, "other"); err != nil {
					t.Fatalf("snapshot %d: %v", id, err)
				}
			}
			snaps, err := e.m.RootSnapshots(e.ctx, 1)
			if err != nil || !slices.Equal(snapNames(snaps), []string{"snap0", "other"}) {
				t.Fatalf("snapshots %v %v, want snap0, other (oldest first)", snapNames(snaps), err)
			}
			if snaps[0].ContentType != "filesystem" || snaps[0].CreatedAt.IsZero() || !snaps[0].ExpiresAt.IsZero() {
				t.Errorf("snapshot %+v", snaps[0])
			}
			// The volume API lists an instance root's snapshots too.
			vs, err := e.m.VolumeSnapshots(e.ctx, "p", "virtual-machine", "v2")
			if err != nil || !slices.Equal(snapNames(vs), []string{"snap0", "other"}) || vs[0].ContentType != "block" {
				t.Errorf("volume snapshots of the VM root %+v %v", vs, err)
			}
			if n := len(withPrefix(e.onDisk("p"), "containers/r1@")); n != 2 {
				t.Errorf("%d container snapshot volumes on disk, want 2", n)
			}
			if n := len(withPrefix(e.onDisk("p"), "virtual-machines/r2@")); n != 2 {
				t.Errorf("%d VM snapshot volumes on disk, want 2", n)
			}

			beforeRecs, beforeDisk := e.records("p"), e.onDisk("p")
			refused := []struct {
				name string
				do   func() error
				kind error
				says []string
			}{
				{"empty name", func() error { return e.m.SnapshotRoot(e.ctx, 1, "") }, errdefs.ErrInvalidArgument, []string{"empty"}},
				{"name with a slash", func() error { return e.m.SnapshotRoot(e.ctx, 1, "a/b") }, errdefs.ErrInvalidArgument, []string{`"a/b"`}},
				{"dot dot", func() error { return e.m.SnapshotRoot(e.ctx, 2, "..") }, errdefs.ErrInvalidArgument, []string{`".."`}},
				{"name with a space", func() error { return e.m.SnapshotRoot(e.ctx, 2, "a b") }, errdefs.ErrInvalidArgument, nil},
				{"container name taken", func() error { return e.m.SnapshotRoot(e.ctx, 1, "snap0") }, errdefs.ErrConflict, []string{`"snap0"`, "c1", "already exists"}},
				{"VM name taken", func() error { return e.m.SnapshotRoot(e.ctx, 2, "other") }, errdefs.ErrConflict, []string{`"other"`, "v2"}},
				{"no such instance", func() error { return e.m.SnapshotRoot(e.ctx, 99, "s") }, errdefs.ErrNotFound, nil},
				{"restore a missing snapshot", func() error { return e.m.RestoreRoot(e.ctx, 1, "nope") }, errdefs.ErrNotFound, []string{`"nope"`, "c1"}},
				{"restore a VM's missing snapshot", func() error { return e.m.RestoreRoot(e.ctx, 2, "nope") }, errdefs.ErrNotFound, nil},
				{"rename a missing snapshot", func() error { return e.m.RenameRootSnapshot(e.ctx, 1, "nope", "x") }, errdefs.ErrNotFound, []string{`"nope"`}},
				{"rename to a bad name", func() error { return e.m.RenameRootSnapshot(e.ctx, 1, "snap0", "a/b") }, errdefs.ErrInvalidArgument, nil},
				{"rename to an empty name", func() error { return e.m.RenameRootSnapshot(e.ctx, 2, "snap0", "") }, errdefs.ErrInvalidArgument, nil},
				{"rename onto a taken name", func() error { return e.m.RenameRootSnapshot(e.ctx, 1, "snap0", "other") }, errdefs.ErrConflict, []string{`"other"`, "already exists"}},
				{"VM rename onto a taken name", func() error { return e.m.RenameRootSnapshot(e.ctx, 2, "other", "snap0") }, errdefs.ErrConflict, nil},
				{"delete a missing snapshot is done", func() error { return e.m.DeleteRootSnapshot(e.ctx, 1, "nope") }, nil, nil},
				{"list of no instance", func() error { _, err := e.m.RootSnapshots(e.ctx, 99); return err }, errdefs.ErrNotFound, nil},
				{"a snapshot's own snapshot", func() error { _, err := e.m.VolumeSnapshot(e.ctx, "p", "container", "c1", "snap0/x"); return err }, errdefs.ErrNotFound, nil},
			}
			for _, tt := range refused {
				t.Run(tt.name, func(t *testing.T) {
					wantErr(t, tt.name, tt.do(), tt.kind, tt.says...)
					if got := e.records("p"); !slices.Equal(got, beforeRecs) {
						t.Errorf("records %q, want %q", got, beforeRecs)
					}
					if got := e.onDisk("p"); !slices.Equal(got, beforeDisk) {
						t.Errorf("on disk %q, want %q", got, beforeDisk)
					}
				})
			}

			// Restore: the old content is back, and the other way again.
			restores := []struct {
				snap     string
				f, new   string
				userFile string
				pattern  byte
			}{
				{"snap0", "before", "<absent>", "<absent>", 0xab},
				{"other", "after", "new", "again", 0xcd},
				{"snap0", "before", "<absent>", "<absent>", 0xab},
			}
			for _, r := range restores {
				for _, id := range []int64{1, 2} {
					if err := e.m.RestoreRoot(e.ctx, id, r.snap); err != nil {
						t.Fatalf("restore %d from %s: %v", id, r.snap, err)
					}
				}
				withMounted(t, e, 1, func(dir string) {
					got := [3]string{fileIn(t, dir, "f"), fileIn(t, dir, "new"), fileIn(t, dir, "home/user/file")}
					if want := [3]string{r.f, r.new, r.userFile}; got != want {
						t.Errorf("restored from %s: f, new, home/user/file %q, want %q", r.snap, got, want)
					}
					if got := fileIn(t, dir, "etc/hostname"); got != treeImage+"\n" {
						t.Errorf("restored from %s: the image's etc/hostname %q", r.snap, got)
					}
					if o := owner(t, filepath.Join(dir, "f")); o != int(testMap.HostID) {
						t.Errorf("restored f owned by %d", o)
					}
				})
				if !patternAt(t, disk, format, r.pattern, 1<<20) {
					t.Errorf("VM disk restored from %s does not hold its 0x%02x", r.snap, r.pattern)
				}
				if info := diskInfo(t, disk, format); info.Format != format {
					t.Errorf("restored disk is %s, want %s", info.Format, format)
				}
			}

			// A rename changes the record only: the volume keeps its disk
			// name, and the snapshot restores under its new name.
			diskName := e.snapRecord("p", "container", "c1", "snap0").DiskName
			before := e.onDisk("p")
			for _, id := range []int64{1, 2} {
				if err := e.m.RenameRootSnapshot(e.ctx, id, "snap0", "first"); err != nil {
					t.Fatalf("rename snapshot of %d: %v", id, err)
				}
			}
			if got := e.onDisk("p"); !slices.Equal(got, before) {
				t.Errorf("a snapshot rename changed the disk: %q, was %q", got, before)
			}
			if got := e.snapRecord("p", "container", "c1", "first").DiskName; got != diskName {
				t.Errorf("renamed snapshot on disk as %s, was %s", got, diskName)
			}
			snaps, err = e.m.RootSnapshots(e.ctx, 1)
			if err != nil || !slices.Equal(snapNames(snaps), []string{"first", "other"}) {
				t.Errorf("snapshots after rename %v %v", snapNames(snaps), err)
			}
			_, err = e.m.VolumeSnapshot(e.ctx, "p", "container", "c1", "snap0")
			wantErr(t, "the old name", err, errdefs.ErrNotFound)
			if err := e.m.RestoreRoot(e.ctx, 2, "other"); err != nil {
				t.Fatal(err)
			}
			if err := e.m.RestoreRoot(e.ctx, 2, "first"); err != nil {
				t.Fatal(err)
			}
			if !patternAt(t, disk, format, 0xab, 1<<20) {
				t.Error("the renamed VM snapshot does not restore its content")
			}

			// The instance's rename: its snapshots' records follow.
			if err := e.m.RenameRoot(e.ctx, 1, "c1b"); err != nil {
				t.Fatal(err)
			}
			vs, err = e.m.VolumeSnapshots(e.ctx, "p", "container", "c1b")
			if err != nil || !slices.Equal(snapNames(vs), []string{"first", "other"}) {
				t.Errorf("snapshots under the new instance name %v %v", snapNames(vs), err)
			}
			if got := e.snapRecord("p", "container", "c1b", "first").DiskName; got != diskName {
				t.Errorf("the instance rename moved the snapshot to %s", got)
			}

			// A delete removes the snapshot's volume.
			vmSnapDisk := e.snapRecord("p", "virtual-machine", "v2", "other").DiskName
			if err := e.m.DeleteRootSnapshot(e.ctx, 2, "other"); err != nil {
				t.Fatal(err)
			}
			if slices.Contains(e.onDisk("p"), "virtual-machines/"+vmSnapDisk+".block") {
				t.Errorf("deleted snapshot %s still on disk", vmSnapDisk)
			}
			if snaps, err := e.m.RootSnapshots(e.ctx, 2); err != nil || !slices.Equal(snapNames(snaps), []string{"first"}) {
				t.Errorf("VM snapshots after a delete %v %v", snapNames(snaps), err)
			}
			err = e.m.RestoreRoot(e.ctx, 2, "other")
			wantErr(t, "restore a deleted snapshot", err, errdefs.ErrNotFound)

			// The instance's delete takes its snapshots with it.
			for _, id := range []int64{1, 2} {
				if err := e.m.DeleteRoot(e.ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			for _, r := range e.records("p") {
				if !strings.HasPrefix(r, "image/") {
					t.Errorf("record left after DeleteRoot: %s", r)
				}
			}
			for _, d := range e.onDisk("p") {
				if !strings.HasPrefix(d, "images/") {
					t.Errorf("left on disk after DeleteRoot: %s", d)
				}
			}
		})
	}
}

// TestRestoreRootQuota: a btrfs root restored keeps the size it has now,
// not the limit its snapshot was taken with (the new subvolume's qgroup
// is the snapshot's).
func TestRestoreRootQuota(t *testing.T) {
	e := newEnv(t)
	e.btrfsPool("b", nil)
	if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "b", Image: treeImage, IDMap: &testMap, Size: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	limit := func() int64 {
		t.Helper()
		st, err := e.m.VolumeState(e.ctx, "b", "container", "c1")
		if err != nil {
			t.Fatal(err)
		}
		return st.Usage.Total
	}
	steps := []struct {
		name     string
		snapshot string // taken first
		size     int64  // then the root resized to
		restore  string
		want     int64
	}{
		{"grown after the snapshot", "at64", 96 << 20, "at64", 96 << 20},
		{"shrunk after the snapshot", "at96", 48 << 20, "at96", 48 << 20},
		{"limit removed after the snapshot", "at48", 0, "at48", 0},
		{"limit set after a snapshot without one", "unlimited", 80 << 20, "unlimited", 80 << 20},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if err := e.m.SnapshotRoot(e.ctx, 1, s.snapshot); err != nil {
				t.Fatal(err)
			}
			if err := e.m.ResizeRoot(e.ctx, 1, false, s.size, false); err != nil {
				t.Fatal(err)
			}
			if err := e.m.RestoreRoot(e.ctx, 1, s.restore); err != nil {
				t.Fatal(err)
			}
			if got := limit(); got != s.want {
				t.Errorf("limit after restore %d, want %d", got, s.want)
			}
		})
	}
	// A custom volume's size, removed after its snapshot, stays removed.
	if err := e.m.CreateVolume(e.ctx, CreateVolumeRequest{Pool: "b", Name: "v", Config: map[string]string{"size": "32MiB"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.m.CreateVolumeSnapshot(e.ctx, "b", "custom", "v", "s", SnapshotPut{}); err != nil {
		t.Fatal(err)
	}
	if err := e.m.PatchVolume(e.ctx, "b", "custom", "v", VolumePut{Config: map[string]string{"size": ""}}); err != nil {
		t.Fatal(err)
	}
	if err := e.m.RestoreVolume(e.ctx, "b", "custom", "v", "s"); err != nil {
		t.Fatal(err)
	}
	if st, err := e.m.VolumeState(e.ctx, "b", "custom", "v"); err != nil || st.Usage.Total != 0 {
		t.Errorf("custom volume's limit after restore %+v %v, want none", st.Usage, err)
	}
}

// TestVolumeSnapshots: a custom volume's snapshots on each driver: made,
// listed, changed, renamed, restored (not while in use), deleted; the
// volume's rename takes their records along and its delete their
// volumes; Volumes lists none of them.
func TestVolumeSnapshots(t *testing.T) {
	for _, drv := range []string{"dir", "btrfs"} {
		t.Run(drv, func(t *testing.T) {
			e := newEnv(t)
			e.makePool(drv, "p")
			cfg := map[string]string{"user.k": "v"}
			if drv == "btrfs" {
				cfg["size"] = "32MiB"
			}
			for _, req := range []CreateVolumeRequest{
				{Pool: "p", Name: "v1", Config: cfg},
				{Pool: "p", Name: "blk", ContentType: "block", Config: map[string]string{"size": "8MiB"}},
			} {
				if err := e.m.CreateVolume(e.ctx, req); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap}); err != nil {
				t.Fatal(err)
			}
			a, err := e.m.Attach(e.ctx, "p", "v1")
			if err != nil {
				t.Fatal(err)
			}
			blk, err := e.m.Attach(e.ctx, "p", "blk")
			if err != nil {
				t.Fatal(err)
			}
			writeOwned(t, filepath.Join(a.Path, "data"), "one")
			if err := os.WriteFile(blk.Path, bytes.Repeat([]byte{1}, 4096), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(blk.Path, 8<<20); err != nil {
				t.Fatal(err)
			}
			expiry := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
			e.events.take()
			if err := e.m.CreateVolumeSnapshot(e.ctx, "p", "custom", "v1", "s0", SnapshotPut{Description: "first", ExpiresAt: expiry}); err != nil {
				t.Fatal(err)
			}
			if err := e.m.CreateVolumeSnapshot(e.ctx, "p", "custom", "blk", "s0", SnapshotPut{}); err != nil {
				t.Fatal(err)
			}
			writeOwned(t, filepath.Join(a.Path, "data"), "two")
			writeOwned(t, filepath.Join(a.Path, "more"), "more")
			if err := os.WriteFile(blk.Path, bytes.Repeat([]byte{2}, 4096), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(blk.Path, 8<<20); err != nil {
				t.Fatal(err)
			}
			if err := e.m.CreateVolumeSnapshot(e.ctx, "p", "custom", "v1", "s1", SnapshotPut{}); err != nil {
				t.Fatal(err)
			}
			if got, want := e.events.take(), []string{
				"storage-volume-snapshot-created storage-volume-snapshot p/custom/v1/s0",
				"storage-volume-snapshot-created storage-volume-snapshot p/custom/blk/s0",
				"storage-volume-snapshot-created storage-volume-snapshot p/custom/v1/s1",
			}; !slices.Equal(got, want) {
				t.Errorf("events %q, want %q", got, want)
			}
			s0, err := e.m.VolumeSnapshot(e.ctx, "p", "custom", "v1", "s0")
			if err != nil {
				t.Fatal(err)
			}
			if s0.Name != "s0" || s0.Description != "first" || !s0.ExpiresAt.Equal(expiry) || s0.Config["user.k"] != "v" || s0.ContentType != "filesystem" {
				t.Errorf("snapshot %+v", s0)
			}
			list, err := e.m.VolumeSnapshots(e.ctx, "p", "custom", "v1")
			if err != nil || !slices.Equal(snapNames(list), []string{"s0", "s1"}) {
				t.Errorf("snapshots %v %v", snapNames(list), err)
			}
			// Volumes lists volumes, not their snapshots.
			vols, err := e.m.Volumes(e.ctx, "p")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, v := range vols {
				names = append(names, v.Type+"/"+v.Name)
			}
			slices.Sort(names)
			if want := []string{"container/c1", "custom/blk", "custom/v1", "image/" + treeImage}; !slices.Equal(names, want) {
				t.Errorf("volumes %q, want %q", names, want)
			}

			beforeRecs, beforeDisk := e.records("p"), e.onDisk("p")
			e.users.set("p", "v1", "instances/c9")
			refused := []struct {
				name string
				do   func() error
				kind error
				says []string
			}{
				{"bad name", func() error {
					return e.m.CreateVolumeSnapshot(e.ctx, "p", "custom", "v1", "a/b", SnapshotPut{})
				}, errdefs.ErrInvalidArgument, []string{`"a/b"`}},
				{"empty name", func() error { return e.m.CreateVolumeSnapshot(e.ctx, "p", "custom", "v1", "", SnapshotPut{}) }, errdefs.ErrInvalidArgument, nil},
				{"taken name", func() error { return e.m.CreateVolumeSnapshot(e.ctx, "p", "custom", "v1", "s0", SnapshotPut{}) }, errdefs.ErrConflict, []string{`"s0"`, "v1"}},
				{"missing volume", func() error { return e.m.CreateVolumeSnapshot(e.ctx, "p", "custom", "nope", "s", SnapshotPut{}) }, errdefs.ErrNotFound, nil},
				{"missing pool", func() error { return e.m.CreateVolumeSnapshot(e.ctx, "nope", "custom", "v1", "s", SnapshotPut{}) }, errdefs.ErrNotFound, nil},
				{"an instance root through the volume API", func() error {
					return e.m.CreateVolumeSnapshot(e.ctx, "p", "container", "c1", "s", SnapshotPut{})
				}, errdefs.ErrInvalidArgument, []string{"instance's snapshots API"}},
				{"bad type", func() error { return e.m.CreateVolumeSnapshot(e.ctx, "p", "bogus", "v1", "s", SnapshotPut{}) }, errdefs.ErrInvalidArgument, nil},
				{"show a missing snapshot", func() error { _, err := e.m.VolumeSnapshot(e.ctx, "p", "custom", "v1", "nope"); return err }, errdefs.ErrNotFound, []string{`"nope"`}},
				{"list of a missing volume", func() error { _, err := e.m.VolumeSnapshots(e.ctx, "p", "custom", "nope"); return err }, errdefs.ErrNotFound, nil},
				{"update a missing snapshot", func() error {
					return e.m.UpdateVolumeSnapshot(e.ctx, "p", "custom", "v1", "nope", SnapshotPut{Description: "x"})
				}, errdefs.ErrNotFound, nil},
				{"rename a missing snapshot", func() error { return e.m.RenameVolumeSnapshot(e.ctx, "p", "custom", "v1", "nope", "x") }, errdefs.ErrNotFound, nil},
				{"rename onto a taken name", func() error { return e.m.RenameVolumeSnapshot(e.ctx, "p", "custom", "v1", "s0", "s1") }, errdefs.ErrConflict, []string{`"s1"`}},
				{"rename to a bad name", func() error { return e.m.RenameVolumeSnapshot(e.ctx, "p", "custom", "v1", "s0", "x?y") }, errdefs.ErrInvalidArgument, nil},
				{"delete a missing snapshot", func() error { return e.m.DeleteVolumeSnapshot(e.ctx, "p", "custom", "v1", "nope") }, errdefs.ErrNotFound, nil},
				{"restore a missing snapshot", func() error { return e.m.RestoreVolume(e.ctx, "p", "custom", "v1", "nope") }, errdefs.ErrNotFound, nil},
				{"restore while in use", func() error { return e.m.RestoreVolume(e.ctx, "p", "custom", "v1", "s0") }, errdefs.ErrConflict, []string{`"v1"`, "instances/c9"}},
			}
			for _, tt := range refused {
				t.Run(tt.name, func(t *testing.T) {
					wantErr(t, tt.name, tt.do(), tt.kind, tt.says...)
					if got := e.records("p"); !slices.Equal(got, beforeRecs) {
						t.Errorf("records %q, want %q", got, beforeRecs)
					}
					if got := e.onDisk("p"); !slices.Equal(got, beforeDisk) {
						t.Errorf("on disk %q, want %q", got, beforeDisk)
					}
				})
			}
			if got := fileIn(t, a.Path, "data"); got != "two" {
				t.Errorf("a refused restore changed the volume: data %q", got)
			}
			if got := e.events.take(); len(got) != 0 {
				t.Errorf("refused calls emitted %q", got)
			}
			e.users.set("p", "v1")

			// Update, then restore: the old content, the size kept.
			if err := e.m.UpdateVolumeSnapshot(e.ctx, "p", "custom", "v1", "s0", SnapshotPut{Description: "changed"}); err != nil {
				t.Fatal(err)
			}
			if s, err := e.m.VolumeSnapshot(e.ctx, "p", "custom", "v1", "s0"); err != nil || s.Description != "changed" || !s.ExpiresAt.IsZero() {
				t.Errorf("updated snapshot %+v %v: want the new description and no expiry", s, err)
			}
			if err := e.m.RestoreVolume(e.ctx, "p", "custom", "v1", "s0"); err != nil {
				t.Fatal(err)
			}
			if got := [2]string{fileIn(t, a.Path, "data"), fileIn(t, a.Path, "more")}; got != [2]string{"one", "<absent>"} {
				t.Errorf("restored volume: data, more %q", got)
			}
			if o := owner(t, a.Path); o != int(testMap.HostID) {
				t.Errorf("restored volume owned by %d", o)
			}
			if drv == "btrfs" {
				if st, err := e.m.VolumeState(e.ctx, "p", "custom", "v1"); err != nil || st.Usage.Total != 32<<20 {
					t.Errorf("restored volume's limit %+v %v, want 32MiB", st.Usage, err)
				}
			}
			if err := e.m.RestoreVolume(e.ctx, "p", "custom", "blk", "s0"); err != nil {
				t.Fatal(err)
			}
			if b := readFile(t, blk.Path); b[0] != 1 || len(b) != 8<<20 {
				t.Errorf("restored block volume: first byte %d, %d bytes", b[0], len(b))
			}
			if got, want := e.events.take(), []string{"storage-volume-snapshot-updated storage-volume-snapshot p/custom/v1/s0"}; !slices.Equal(got, want) {
				t.Errorf("events %q, want %q", got, want)
			}

			// Rename the snapshot: nothing moves; the volume's rename
			// takes the records along.
			before := e.onDisk("p")
			if err := e.m.RenameVolumeSnapshot(e.ctx, "p", "custom", "v1", "s0", "zero"); err != nil {
				t.Fatal(err)
			}
			if got := e.onDisk("p"); !slices.Equal(got, before) {
				t.Errorf("a snapshot rename changed the disk: %q, was %q", got, before)
			}
			if err := e.m.RenameVolume(e.ctx, "p", "custom", "v1", "v2"); err != nil {
				t.Fatal(err)
			}
			list, err = e.m.VolumeSnapshots(e.ctx, "p", "custom", "v2")
			if err != nil || !slices.Equal(snapNames(list), []string{"zero", "s1"}) {
				t.Errorf("snapshots after the volume's rename %v %v", snapNames(list), err)
			}
			if got := withPrefix(e.records("p"), "custom/v1"); len(got) != 0 {
				t.Errorf("records under the old name: %q", got)
			}
			if err := e.m.RestoreVolume(e.ctx, "p", "custom", "v2", "s1"); err != nil {
				t.Fatal(err)
			}
			a2, err := e.m.Attach(e.ctx, "p", "v2")
			if err != nil {
				t.Fatal(err)
			}
			if got := fileIn(t, a2.Path, "data"); got != "two" {
				t.Errorf("volume renamed then restored from s1: data %q", got)
			}
			if got, want := e.events.take(), []string{
				"storage-volume-snapshot-renamed storage-volume-snapshot p/custom/v1/zero",
				"storage-volume-renamed storage-volume p/custom/v2",
			}; !slices.Equal(got, want) {
				t.Errorf("events %q, want %q", got, want)
			}

			// Delete one snapshot, then the volume with the rest.
			if err := e.m.DeleteVolumeSnapshot(e.ctx, "p", "custom", "v2", "zero"); err != nil {
				t.Fatal(err)
			}
			if list, err := e.m.VolumeSnapshots(e.ctx, "p", "custom", "v2"); err != nil || !slices.Equal(snapNames(list), []string{"s1"}) {
				t.Errorf("after a delete %v %v", snapNames(list), err)
			}
			if n := len(withPrefix(e.onDisk("p"), "custom/v1@")); n != 1 {
				t.Errorf("%d snapshot volumes of v2 on disk, want 1", n)
			}
			for _, v := range []string{"v2", "blk"} {
				if err := e.m.DeleteVolume(e.ctx, "p", "custom", v); err != nil {
					t.Fatal(err)
				}
			}
			if got := withPrefix(e.records("p"), "custom/"); len(got) != 0 {
				t.Errorf("records left: %q", got)
			}
			if got := withPrefix(e.onDisk("p"), "custom/"); len(got) != 0 {
				t.Errorf("left on disk: %q", got)
			}
		})
	}
}

// TestPruneExpiredVolumeSnapshots: only custom volume snapshots whose
// expiry has passed go; the count says how many.
func TestPruneExpiredVolumeSnapshots(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", nil)
	if err := e.m.CreateVolume(e.ctx, CreateVolumeRequest{Pool: "p", Name: "v"}); err != nil {
		t.Fatal(err)
	}
	if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", IDMap: &testMap}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, s := range []struct {
		name    string
		expires time.Time
	}{
		{"past", now.Add(-time.Hour)},
		{"just-past", now.Add(-time.Second)},
		{"future", now.Add(time.Hour)},
		{"never", time.Time{}},
	} {
		if err := e.m.CreateVolumeSnapshot(e.ctx, "p", "custom", "v", s.name, SnapshotPut{ExpiresAt: s.expires}); err != nil {
			t.Fatal(err)
		}
	}
	// An instance's snapshot that has expired is the core's to delete.
	if err := e.m.SnapshotRoot(e.ctx, 1, "old"); err != nil {
		t.Fatal(err)
	}
	rootSnap := e.snapRecord("p", "container", "c1", "old")
	rootSnap.ExpiresAt = now.Add(-time.Hour)
	if err := e.st.UpdateStorageVolume(e.ctx, rootSnap); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at   time.Time
		n    int
		left []string
	}{
		{now, 2, []string{"future", "never"}},
		{now, 0, []string{"future", "never"}},
		{now.Add(2 * time.Hour), 1, []string{"never"}},
	}
	for i, s := range steps {
		n, err := e.m.PruneExpiredVolumeSnapshots(e.ctx, s.at)
		if err != nil || n != s.n {
			t.Errorf("prune %d: %d, %v; want %d", i, n, err, s.n)
		}
		list, err := e.m.VolumeSnapshots(e.ctx, "p", "custom", "v")
		if err != nil || !slices.Equal(snapNames(list), s.left) {
			t.Errorf("prune %d: left %v %v, want %v", i, snapNames(list), err, s.left)
		}
		if n := len(withPrefix(e.onDisk("p"), "custom/v@")); n != len(s.left) {
			t.Errorf("prune %d: %d snapshot volumes on disk, want %d", i, n, len(s.left))
		}
	}
	if snaps, err := e.m.RootSnapshots(e.ctx, 1); err != nil || !slices.Equal(snapNames(snaps), []string{"old"}) {
		t.Errorf("instance snapshots after prune %v %v", snapNames(snaps), err)
	}
}

// TestSnapshotReconcile: a snapshot whose create was killed (its record
// pending, its volume half-made or whole) and a snapshot volume with no
// record are removed at the next start; made snapshots stay.
func TestSnapshotReconcile(t *testing.T) {
	for _, drv := range []string{"dir", "btrfs"} {
		t.Run(drv, func(t *testing.T) {
			e := newEnv(t)
			e.makePool(drv, "p")
			if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap}); err != nil {
				t.Fatal(err)
			}
			if err := e.m.CreateVolume(e.ctx, CreateVolumeRequest{Pool: "p", Name: "v"}); err != nil {
				t.Fatal(err)
			}
			if err := e.m.SnapshotRoot(e.ctx, 1, "kept"); err != nil {
				t.Fatal(err)
			}
			if err := e.m.CreateVolumeSnapshot(e.ctx, "p", "custom", "v", "kept", SnapshotPut{}); err != nil {
				t.Fatal(err)
			}
			wantRecs, wantDisk := e.records("p"), e.onDisk("p")
			p, err := e.m.get("p")
			if err != nil {
				t.Fatal(err)
			}
			root, err := e.st.GetInstanceVolume(e.ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			vol, err := e.st.GetStorageVolume(e.ctx, "p", "default", "custom", "v")
			if err != nil {
				t.Fatal(err)
			}
			// killed records a snapshot pending as makeSnapshot does and,
			// when made, snapshots its volume: a create killed before or
			// after the driver's work.
			killed := func(parent store.StorageVolume, name, disk string, made bool) {
				t.Helper()
				rec := store.StorageVolume{Pool: "p", Type: parent.Type, Name: parent.Name + "/" + name, DiskName: disk,
					Content: parent.Content, Config: parent.Config, ParentID: parent.ID}
				if err := e.st.CreateStorageVolume(e.ctx, &rec); err != nil {
					t.Fatal(err)
				}
				if made {
					if err := p.drv.SnapshotVolume(e.ctx, diskVolume(rec), diskVolume(parent)); err != nil {
						t.Fatal(err)
					}
				}
			}
			killed(root, "killed-after", "r1@aaaaaaaaaaaa", true)
			killed(root, "killed-before", "r1@bbbbbbbbbbbb", false)
			killed(vol, "killed-after", "v@cccccccccccc", true)
			// A snapshot volume whose record is gone.
			orphan := diskVolume(root)
			orphan.Name = "r1@dddddddddddd"
			if err := p.drv.SnapshotVolume(e.ctx, orphan, diskVolume(root)); err != nil {
				t.Fatal(err)
			}
			// Being deleted when killed: its record says so.
			dying := e.snapRecord("p", "custom", "v", "kept")
			dying.State = "deleting"
			if err := e.st.UpdateStorageVolume(e.ctx, dying); err != nil {
				t.Fatal(err)
			}
			wantRecs = slices.DeleteFunc(wantRecs, func(s string) bool { return strings.HasPrefix(s, "custom/v/kept/") })
			wantDisk = slices.DeleteFunc(wantDisk, func(s string) bool { return s == "custom/"+dying.DiskName })

			e.restart()

			if got := e.records("p"); !slices.Equal(got, wantRecs) {
				t.Errorf("records after restart:\n%q\nwant\n%q", got, wantRecs)
			}
			if got := e.onDisk("p"); !slices.Equal(got, wantDisk) {
				t.Errorf("on disk after restart:\n%q\nwant\n%q", got, wantDisk)
			}
			// The names a killed create held are free again.
			if err := e.m.SnapshotRoot(e.ctx, 1, "killed-after"); err != nil {
				t.Errorf("snapshot under a killed create's name: %v", err)
			}
			if snaps, err := e.m.RootSnapshots(e.ctx, 1); err != nil || !slices.Equal(snapNames(snaps), []string{"kept", "killed-after"}) {
				t.Errorf("snapshots after restart %v %v", snapNames(snaps), err)
			}
		})
	}
}

// TestImageKeptForSnapshots: on a dir pool a root's snapshot is layered
// over the image volume as the root is: the volume stays while either
// lives, and goes with the last of them once the image left the
// catalogue.
func TestImageKeptForSnapshots(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", nil)
	for _, id := range []int64{1, 2} {
		if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: id, RuntimeID: fmt.Sprintf("r%d", id), Name: fmt.Sprintf("c%d", id),
			Pool: "p", Image: treeImage, IDMap: &testMap}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.m.SnapshotRoot(e.ctx, 2, "s"); err != nil {
		t.Fatal(err)
	}
	img := "images/" + treeName(treeImage, &testMap)
	e.images.remove(treeImage)
	e.m.ImageDeleted(e.ctx, treeImage)
	if !slices.Contains(e.onDisk("p"), img) {
		t.Fatal("the image volume went while roots are layered over it")
	}
	if err := e.m.DeleteRoot(e.ctx, 1); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(e.onDisk("p"), img) {
		t.Fatal("the image volume went while a root and its snapshot are layered over it")
	}
	// A snapshot alone keeps it: the root's record no longer names the
	// image (as a root that was given a whole tree), its snapshot does.
	root, err := e.st.GetInstanceVolume(e.ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	delete(root.Config, keyImage)
	if err := e.st.UpdateStorageVolume(e.ctx, root); err != nil {
		t.Fatal(err)
	}
	e.m.ImageDeleted(e.ctx, treeImage)
	if !slices.Contains(e.onDisk("p"), img) {
		t.Fatal("the image volume went while a snapshot is layered over it")
	}
	if got := rootTree(t, e, 2, "s"); len(got) == 0 || !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "etc/hostname ") }) {
		t.Errorf("the snapshot's view lost the image's files: %q", got)
	}
	if err := e.m.DeleteRootSnapshot(e.ctx, 2, "s"); err != nil {
		t.Fatal(err)
	}
	e.m.ImageDeleted(e.ctx, treeImage)
	if slices.Contains(e.onDisk("p"), img) {
		t.Error("the image volume stayed after its last root and snapshot went")
	}
	if got := withPrefix(e.records("p"), "image/"); len(got) != 0 {
		t.Errorf("image records left: %q", got)
	}
}

// TestDeleteRootDropsImageWithSnapshots: an instance deleted with its
// snapshots, the image already gone from the catalogue: the image's
// volume goes with them.
func TestDeleteRootDropsImageWithSnapshots(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", nil)
	if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"s0", "s1"} {
		if err := e.m.SnapshotRoot(e.ctx, 1, s); err != nil {
			t.Fatal(err)
		}
	}
	e.images.remove(treeImage)
	e.m.ImageDeleted(e.ctx, treeImage)
	if n := len(withPrefix(e.onDisk("p"), "images/")); n != 1 {
		t.Fatalf("%d image volumes while the root lives, want 1", n)
	}
	if err := e.m.DeleteRoot(e.ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := e.onDisk("p"); len(got) != 0 {
		t.Errorf("left on disk: %q", got)
	}
	if got := e.records("p"); len(got) != 0 {
		t.Errorf("records left: %q", got)
	}
}

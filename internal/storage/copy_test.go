package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
)

// fullTree is treeOf with, for each regular file, its link count, and
// for every entry its user. xattrs: what a copy must keep.
func fullTree(t *testing.T, dir string) []string {
	t.Helper()
	lines := treeOf(t, dir)
	for i, l := range lines {
		rel, _, _ := strings.Cut(l, " ")
		p := filepath.Join(dir, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			lines[i] += fmt.Sprintf(" nlink=%d", st.Nlink)
		}
		buf := make([]byte, 4096)
		n, err := unix.Llistxattr(p, buf)
		if err != nil {
			t.Fatalf("listxattr %s: %v", p, err)
		}
		for _, name := range strings.Split(string(buf[:n]), "\x00") {
			if !strings.HasPrefix(name, "user.") {
				continue
			}
			val := make([]byte, 256)
			k, err := unix.Lgetxattr(p, name, val)
			if err != nil {
				t.Fatalf("getxattr %s %s: %v", p, name, err)
			}
			lines[i] += fmt.Sprintf(" %s=%s", name, val[:k])
		}
	}
	return lines
}

// rootFullTree is fullTree of an instance's root (or its snapshot).
func rootFullTree(t *testing.T, e *env, id int64, snap string) []string {
	t.Helper()
	var out []string
	err := e.m.ReadRoot(e.ctx, id, snap, func(v RootView) error {
		out = fullTree(t, v.Dir)
		return nil
	})
	if err != nil {
		t.Fatalf("read root %d/%q: %v", id, snap, err)
	}
	return out
}

// oddTree writes, through a mounted root, what a copy easily loses: a
// file of an id outside the map with a setuid bit and an xattr, a hard
// link to it, a symlink, a deep file, and an image file deleted.
func oddTree(t *testing.T, dir string) {
	t.Helper()
	odd := filepath.Join(dir, "odd")
	writeOwned(t, odd, "odd content")
	if err := os.Lchown(odd, 1000005, 1000005); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(odd, "user.hangar", []byte("kept"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(odd, 0o750|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(odd, filepath.Join(dir, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("odd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(filepath.Join(dir, "link"), int(testMap.HostID)+7, int(testMap.HostID)+7); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "a/b"), 0o750); err != nil {
		t.Fatal(err)
	}
	writeOwned(t, filepath.Join(dir, "a/b/deep"), "deep")
	if err := os.Remove(filepath.Join(dir, "home/user/file")); err != nil {
		t.Fatal(err)
	}
}

// copyEnv is a dir pool "d", another "d2" and a btrfs pool "b", with a
// container root on d (1, c1) and on b (2, c2), each given oddTree,
// snapshotted as snap0 and then given the file "after"; and VM roots on
// d (3, v3, qcow2) and b (4, v4, raw), whose guests see 0x11 at 0 (the
// image's), 0xab at 1MiB (snap0's) and 0xcd at 2MiB (after snap0).
func copyEnv(t *testing.T) *env {
	t.Helper()
	needTools(t, "qemu-img", "qemu-io")
	e := newEnv(t)
	e.images.addDisk(diskImage)
	qemuWrite(t, e.images.disks[diskImage], "qcow2", 0x11, 0)
	e.dirPool("d", nil)
	e.dirPool("d2", nil)
	e.btrfsPool("b", map[string]string{"size": "512MiB"})
	for _, r := range []RootRequest{
		{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "d", Image: treeImage, IDMap: &testMap},
		{InstanceID: 2, RuntimeID: "r2", Name: "c2", Pool: "b", Image: treeImage, IDMap: &testMap},
		{InstanceID: 3, RuntimeID: "r3", Name: "v3", VM: true, Pool: "d", Image: diskImage},
		{InstanceID: 4, RuntimeID: "r4", Name: "v4", VM: true, Pool: "b", Image: diskImage},
	} {
		if err := e.m.CreateRoot(e.ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []int64{1, 2} {
		withMounted(t, e, id, func(dir string) { oddTree(t, dir) })
	}
	qemuWrite(t, e.vmDiskOf("d", "r3"), "qcow2", 0xab, 1<<20)
	qemuWrite(t, e.vmDiskOf("b", "r4"), "raw", 0xab, 1<<20)
	for _, id := range []int64{1, 2, 3, 4} {
		if err := e.m.SnapshotRoot(e.ctx, id, "snap0"); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []int64{1, 2} {
		withMounted(t, e, id, func(dir string) { writeOwned(t, filepath.Join(dir, "after"), "after") })
	}
	qemuWrite(t, e.vmDiskOf("d", "r3"), "qcow2", 0xcd, 2<<20)
	qemuWrite(t, e.vmDiskOf("b", "r4"), "raw", 0xcd, 2<<20)
	return e
}

// TestCopyContainerRoot: a container's root, or its snapshot, copied
// within a pool (a copy on dir, a clone on btrfs) and across pools both
// ways keeps every file as it was (owners, modes, links, xattrs, what
// upper deleted), with a quota where asked; the copy is a root of its
// own; CopyRootSnapshot brings the source's snapshot along.
func TestCopyContainerRoot(t *testing.T) {
	e := copyEnv(t)
	for _, id := range []int64{1, 2} {
		tree := rootFullTree(t, e, id, "")
		for _, want := range []string{"odd 104750 1000005:1000005", "hard 104750 1000005:1000005", "link 120777"} {
			if !slices.ContainsFunc(tree, func(s string) bool { return strings.HasPrefix(s, want) }) {
				t.Fatalf("source %d has no %q: the test proves nothing\n%q", id, want, tree)
			}
		}
		if !slices.ContainsFunc(tree, func(s string) bool { return strings.Contains(s, "nlink=2 user.hangar=kept") }) {
			t.Fatalf("source %d: no hard-linked file with its xattr\n%q", id, tree)
		}
	}
	tests := []struct {
		name string
		src  int64
		snap string
		pool string
		size int64
	}{
		{"dir within the pool", 1, "", "d", 0},
		{"dir snapshot within the pool", 1, "snap0", "d", 0},
		{"dir to another dir pool", 1, "", "d2", 0},
		{"dir to btrfs", 1, "", "b", 0},
		{"dir snapshot to btrfs with a size", 1, "snap0", "b", 64 << 20},
		{"btrfs within the pool", 2, "", "b", 0},
		{"btrfs within the pool with a size", 2, "", "b", 48 << 20},
		{"btrfs snapshot within the pool", 2, "snap0", "b", 0},
		{"btrfs to dir", 2, "", "d", 0},
		{"btrfs snapshot to dir", 2, "snap0", "d2", 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := int64(10 + i)
			name := fmt.Sprintf("k%d", id)
			req := RootRequest{InstanceID: id, RuntimeID: name, Name: name, Pool: tt.pool, IDMap: &testMap, Size: tt.size}
			if err := e.m.CopyRoot(e.ctx, req, tt.src, tt.snap); err != nil {
				t.Fatal(err)
			}
			want := rootFullTree(t, e, tt.src, tt.snap)
			if got := rootFullTree(t, e, id, ""); !slices.Equal(got, want) {
				t.Errorf("copy:\n%q\nwant\n%q", got, want)
			}
			v, err := e.m.Volume(e.ctx, tt.pool, "container", name)
			if err != nil {
				t.Fatal(err)
			}
			if v.Config[keyIDMap] != idmapString(&testMap) {
				t.Errorf("copy's id map %q", v.Config[keyIDMap])
			}
			if tt.size > 0 {
				if v.Config["size"] != fmt.Sprint(tt.size) {
					t.Errorf("copy's size %q, want %d", v.Config["size"], tt.size)
				}
				st, err := e.m.VolumeState(e.ctx, tt.pool, "container", name)
				if err != nil || st.Usage.Total != tt.size {
					t.Errorf("copy's limit %+v %v, want %d", st.Usage, err, tt.size)
				}
			}
			// The copy is its own: written through its runtime mount,
			// the source does not see it.
			withMounted(t, e, id, func(dir string) {
				if got := fileIn(t, dir, "odd"); got != "odd content" {
					t.Errorf("the copy's mounted root: odd %q", got)
				}
				writeOwned(t, filepath.Join(dir, "mine"), "mine")
				writeOwned(t, filepath.Join(dir, "odd"), "changed in the copy")
			})
			if err := e.m.ReadRoot(e.ctx, tt.src, tt.snap, func(v RootView) error {
				if got := [2]string{fileIn(t, v.Dir, "mine"), fileIn(t, v.Dir, "odd")}; got != [2]string{"<absent>", "odd content"} {
					t.Errorf("the source sees the copy's writes: %q", got)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if tt.snap != "" {
				return
			}
			// The source's snapshot, brought along.
			if err := e.m.CopyRootSnapshot(e.ctx, id, tt.src, "snap0"); err != nil {
				t.Fatal(err)
			}
			if snaps, err := e.m.RootSnapshots(e.ctx, id); err != nil || !slices.Equal(snapNames(snaps), []string{"snap0"}) {
				t.Errorf("the copy's snapshots %v %v", snapNames(snaps), err)
			}
			if got, want := rootFullTree(t, e, id, "snap0"), rootFullTree(t, e, tt.src, "snap0"); !slices.Equal(got, want) {
				t.Errorf("copied snapshot:\n%q\nwant\n%q", got, want)
			}
			if tt.pool == "b" {
				snap := e.snapRecord(tt.pool, "container", name, "snap0")
				err := os.WriteFile(filepath.Join(e.path(tt.pool, drivers.TypeContainer, snap.DiskName, drivers.ContentFilesystem), "x"), nil, 0o644)
				if !errors.Is(err, unix.EROFS) {
					t.Errorf("a write into the copied btrfs snapshot: %v, want EROFS", err)
				}
			}
			if err := e.m.RestoreRoot(e.ctx, id, "snap0"); err != nil {
				t.Errorf("restore the copy from its copied snapshot: %v", err)
			}
			err = e.m.CopyRootSnapshot(e.ctx, id, tt.src, "snap0")
			wantErr(t, "the snapshot copied again", err, errdefs.ErrConflict)
		})
	}
}

// TestCopyVMRoot: a VM's disk copied within a pool and across pools both
// ways (qcow2 over the image on dir, raw on btrfs) shows its guest the
// same content, grown where asked; its snapshot too.
func TestCopyVMRoot(t *testing.T) {
	e := copyEnv(t)
	format := map[string]string{"d": "qcow2", "d2": "qcow2", "b": "raw"}
	srcPool := map[int64]string{3: "d", 4: "b"}
	imageDisk := func(pool string) string {
		return filepath.Join(e.path(pool, drivers.TypeImage, diskImage, drivers.ContentBlock), drivers.BlockFile)
	}
	// srcDisk is the disk file of a source root or its snapshot.
	srcDisk := func(id int64, snap string) string {
		rid := fmt.Sprintf("r%d", id)
		if snap != "" {
			rid = e.snapRecord(srcPool[id], "virtual-machine", fmt.Sprintf("v%d", id), snap).DiskName
		}
		return e.vmDiskOf(srcPool[id], rid)
	}
	tests := []struct {
		name string
		src  int64
		snap string
		pool string
		size int64
		// backing is the qcow2's backing file ("" none).
		backing string
	}{
		{name: "dir within the pool", src: 3, pool: "d", backing: imageDisk("d")},
		{name: "dir within the pool, grown", src: 3, pool: "d", size: 64 << 20, backing: imageDisk("d")},
		{name: "dir to btrfs", src: 3, pool: "b"},
		{name: "dir snapshot to btrfs, grown", src: 3, snap: "snap0", pool: "b", size: 64 << 20},
		{name: "dir to another dir pool", src: 3, pool: "d2"},
		{name: "btrfs within the pool", src: 4, pool: "b"},
		{name: "btrfs within the pool, grown", src: 4, pool: "b", size: 64 << 20},
		{name: "btrfs to dir", src: 4, pool: "d"},
		{name: "btrfs snapshot to dir, grown", src: 4, snap: "snap0", pool: "d", size: 64 << 20},
		{name: "dir snapshot within the pool", src: 3, snap: "snap0", pool: "d", backing: imageDisk("d")},
		{name: "btrfs snapshot within the pool", src: 4, snap: "snap0", pool: "b"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := int64(20 + i)
			name := fmt.Sprintf("w%d", id)
			req := RootRequest{InstanceID: id, RuntimeID: name, Name: name, VM: true, Pool: tt.pool, Size: tt.size}
			if err := e.m.CopyRoot(e.ctx, req, tt.src, tt.snap); err != nil {
				t.Fatal(err)
			}
			r, err := e.m.Root(e.ctx, RootRequest{InstanceID: id, Name: name, VM: true})
			if err != nil {
				t.Fatal(err)
			}
			dst, f := e.vmDiskOf(tt.pool, name), format[tt.pool]
			if r.Disk == nil || r.Disk.Path != dst || r.Disk.Format != f || !r.Firmware {
				t.Fatalf("copy's root %+v %+v, want a %s disk at %s booting by UEFI", r, r.Disk, f, dst)
			}
			info := diskInfo(t, dst, f)
			wantSize := int64(diskImageSize)
			if tt.size > 0 {
				wantSize = tt.size
			}
			if info.VirtualSize != wantSize || info.Format != f || info.Backing != tt.backing {
				t.Errorf("copy's disk %+v, want %s of %d bytes backed by %q", info, f, wantSize, tt.backing)
			}
			src := srcDisk(tt.src, tt.snap)
			if !sameGuestDisk(t, src, format[srcPool[tt.src]], dst, f) {
				t.Error("the copy's guest does not see the source's disk")
			}
			at2 := byte(0xcd)
			if tt.snap != "" {
				at2 = 0
			}
			for _, c := range []struct {
				off     int64
				pattern byte
			}{{0, 0x11}, {1 << 20, 0xab}, {2 << 20, at2}} {
				if !patternAt(t, dst, f, c.pattern, c.off) {
					t.Errorf("the copy's guest does not see 0x%02x at %d", c.pattern, c.off)
				}
			}
			// The copy is its own disk.
			qemuWrite(t, dst, f, 0xee, 3<<20)
			if patternAt(t, src, format[srcPool[tt.src]], 0xee, 3<<20) {
				t.Error("a write into the copy shows in the source")
			}
			if tt.snap != "" {
				return
			}
			if err := e.m.CopyRootSnapshot(e.ctx, id, tt.src, "snap0"); err != nil {
				t.Fatal(err)
			}
			snapDisk := e.vmDiskOf(tt.pool, e.snapRecord(tt.pool, "virtual-machine", name, "snap0").DiskName)
			if !sameGuestDisk(t, srcDisk(tt.src, "snap0"), format[srcPool[tt.src]], snapDisk, f) {
				t.Error("the copied snapshot's guest does not see the source snapshot's disk")
			}
			if err := e.m.RestoreRoot(e.ctx, id, "snap0"); err != nil {
				t.Fatal(err)
			}
			if !patternAt(t, dst, f, 0, 2<<20) || !patternAt(t, dst, f, 0xab, 1<<20) {
				t.Error("the copy restored from its copied snapshot does not see snap0's content")
			}
		})
	}
}

// TestCopyRootRefused: a copy that cannot be made leaves no record and
// nothing on disk, in any pool.
func TestCopyRootRefused(t *testing.T) {
	e := copyEnv(t)
	pools := []string{"d", "d2", "b"}
	state := func() []string {
		var out []string
		for _, p := range pools {
			out = append(out, e.records(p)...)
			out = append(out, e.onDisk(p)...)
		}
		return out
	}
	before := state()
	tests := []struct {
		name string
		req  RootRequest
		src  int64
		snap string
		kind error
		says []string
	}{
		{"missing source snapshot", RootRequest{Pool: "b"}, 1, "nope", errdefs.ErrNotFound, []string{`"nope"`}},
		{"missing source snapshot within the pool", RootRequest{Pool: "d"}, 1, "nope", errdefs.ErrNotFound, nil},
		{"missing source instance", RootRequest{Pool: "d"}, 99, "", errdefs.ErrNotFound, nil},
		{"a VM from a container", RootRequest{Pool: "d", VM: true}, 1, "", errdefs.ErrInvalidArgument, []string{"container"}},
		{"a container from a VM", RootRequest{Pool: "b"}, 4, "", errdefs.ErrInvalidArgument, []string{"virtual-machine"}},
		{"a size on a dir pool", RootRequest{Pool: "d", Size: 64 << 20}, 2, "", errdefs.ErrInvalidArgument, []string{"cannot limit"}},
		{"no such pool", RootRequest{Pool: "nope"}, 1, "", errdefs.ErrNotFound, []string{`"nope"`}},
		{"the name is taken on the pool", RootRequest{Pool: "d", Name: "c1"}, 2, "", errdefs.ErrConflict, nil},
		{"the instance has a root", RootRequest{Pool: "b", InstanceID: 3}, 1, "", errdefs.ErrConflict, nil},
		// Refused once the copy is made: the copy is removed.
		{"a VM disk below the source's, within dir", RootRequest{Pool: "d", VM: true, Size: 16 << 20}, 3, "", errdefs.ErrInvalidArgument, []string{"below"}},
		{"a VM disk below the source's, within btrfs", RootRequest{Pool: "b", VM: true, Size: 16 << 20}, 4, "", errdefs.ErrInvalidArgument, []string{"below"}},
		{"a VM disk below the source's, dir to btrfs", RootRequest{Pool: "b", VM: true, Size: 16 << 20}, 3, "snap0", errdefs.ErrInvalidArgument, []string{"below"}},
		{"a VM disk below the source's, btrfs to dir", RootRequest{Pool: "d2", VM: true, Size: 16 << 20}, 4, "", errdefs.ErrInvalidArgument, []string{"below"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.IDMap = &testMap
			if req.InstanceID == 0 {
				req.InstanceID = 50
			}
			if req.Name == "" {
				req.Name = "k50"
			}
			req.RuntimeID = "k50"
			wantErr(t, "copy", e.m.CopyRoot(e.ctx, req, tt.src, tt.snap), tt.kind, tt.says...)
			if got := state(); !slices.Equal(got, before) {
				t.Errorf("left:\n%q\nwant\n%q", got, before)
			}
		})
	}
	snaps := []struct {
		name     string
		dst, src int64
		snap     string
		kind     error
	}{
		{"a missing snapshot", 60, 1, "nope", errdefs.ErrNotFound},
		{"to an instance without a root", 61, 1, "snap0", errdefs.ErrNotFound},
		{"from an instance without a root", 60, 99, "snap0", errdefs.ErrNotFound},
	}
	if err := e.m.CopyRoot(e.ctx, RootRequest{InstanceID: 60, RuntimeID: "k60", Name: "k60", Pool: "b", IDMap: &testMap}, 1, ""); err != nil {
		t.Fatal(err)
	}
	before = state()
	for _, tt := range snaps {
		t.Run("snapshot: "+tt.name, func(t *testing.T) {
			wantErr(t, "copy snapshot", e.m.CopyRootSnapshot(e.ctx, tt.dst, tt.src, tt.snap), tt.kind)
			if got := state(); !slices.Equal(got, before) {
				t.Errorf("left:\n%q\nwant\n%q", got, before)
			}
		})
	}
}

// TestCopyRootCancelled: a copy whose context is cancelled while cp is
// writing a big file leaves nothing, within a pool and across pools.
func TestCopyRootCancelled(t *testing.T) {
	e := newEnv(t)
	e.dirPool("d", nil)
	e.dirPool("d2", nil)
	if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "d", Image: treeImage, IDMap: &testMap}); err != nil {
		t.Fatal(err)
	}
	// Many files, then one that marks that cp has begun: cp spends a
	// syscall or more per file whatever the disk's speed (seconds for
	// these), far longer than the cancel takes once the first is seen.
	many := filepath.Join(writableDir(e, "d", "r1", false), "many")
	if err := os.Mkdir(many, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 30000 {
		if err := os.WriteFile(filepath.Join(many, fmt.Sprintf("f%05d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := func() []string {
		return slices.Concat(e.records("d"), e.onDisk("d"), e.records("d2"), e.onDisk("d2"))
	}
	before := state()
	for i, pool := range []string{"d", "d2"} {
		t.Run(pool, func(t *testing.T) {
			ctx, cancel := context.WithCancel(e.ctx)
			defer cancel()
			// Cancel once cp has begun the many files in the new volume.
			stop, fired := make(chan struct{}), make(chan bool, 1)
			go func() {
				defer func() { fired <- ctx.Err() != nil }()
				pattern := filepath.Join(e.poolsDir(), pool, "containers", ".tmp-*", "upper", "many")
				for {
					select {
					case <-stop:
						return
					default:
					}
					if m, _ := filepath.Glob(pattern); len(m) > 0 {
						cancel()
						return
					}
					time.Sleep(time.Millisecond)
				}
			}()
			id := int64(10 + i)
			name := fmt.Sprintf("k%d", id)
			err := e.m.CopyRoot(ctx, RootRequest{InstanceID: id, RuntimeID: name, Name: name, Pool: pool, IDMap: &testMap}, 1, "")
			close(stop)
			if !<-fired {
				t.Fatalf("the copy ended (%v) before cp was seen writing the big file", err)
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("copy: %v, want it cancelled", err)
			}
			if got := state(); !slices.Equal(got, before) {
				t.Errorf("left:\n%q\nwant\n%q", got, before)
			}
			if got := mountPoints(e.poolsDir()); len(got) != 0 {
				t.Errorf("mounts left: %q", got)
			}
			if ok, _ := e.m.HasRoot(e.ctx, id); ok {
				t.Error("a cancelled copy left a root")
			}
		})
	}
}

// TestReadRoot: the views of roots and snapshots: on dir a read-only
// overlay of upper over the image's tree, unmounted once fn returns; on
// btrfs the volume itself (a snapshot read-only); a VM's disk file.
func TestReadRoot(t *testing.T) {
	needTools(t, "qemu-img")
	e := newEnv(t)
	e.images.addDisk(diskImage)
	e.dirPool("d", nil)
	e.btrfsPool("b", nil)
	for _, r := range []RootRequest{
		{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "d", Image: treeImage, IDMap: &testMap},
		{InstanceID: 2, RuntimeID: "r2", Name: "c2", Pool: "b", Image: treeImage, IDMap: &testMap},
		{InstanceID: 3, RuntimeID: "r3", Name: "v3", VM: true, Pool: "d", Image: diskImage},
		{InstanceID: 4, RuntimeID: "r4", Name: "v4", VM: true, Pool: "b", Image: diskImage},
		{InstanceID: 5, RuntimeID: "r5", Name: "c5", Pool: "d", IDMap: &testMap},
	} {
		if err := e.m.CreateRoot(e.ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []int64{1, 2} {
		withMounted(t, e, id, func(dir string) {
			writeOwned(t, filepath.Join(dir, "f"), "old")
			if err := os.Remove(filepath.Join(dir, "home/user/file")); err != nil {
				t.Fatal(err)
			}
		})
		if err := e.m.SnapshotRoot(e.ctx, id, "s"); err != nil {
			t.Fatal(err)
		}
		withMounted(t, e, id, func(dir string) { writeOwned(t, filepath.Join(dir, "f"), "new") })
	}
	for _, id := range []int64{3, 4} {
		if err := e.m.SnapshotRoot(e.ctx, id, "s"); err != nil {
			t.Fatal(err)
		}
	}
	views := filepath.Join(e.poolsDir(), viewsDir)
	snapDir := func(pool, parent, typ string) string {
		r := e.snapRecord(pool, typ, parent, "s")
		content := drivers.ContentFilesystem
		if typ == "virtual-machine" {
			return e.vmDiskOf(pool, r.DiskName)
		}
		return e.path(pool, drivers.VolumeType(typ), r.DiskName, content)
	}
	tests := []struct {
		name string
		id   int64
		snap string
		kind error
		// dir: the view's directory ("views": a mount under .views);
		// f: its file f; disk and format: a VM's.
		dir, f       string
		disk, format string
		readOnly     bool
	}{
		{name: "dir root", id: 1, dir: "views", f: "new", readOnly: true},
		{name: "dir snapshot", id: 1, snap: "s", dir: "views", f: "old", readOnly: true},
		{name: "dir root without an image", id: 5, dir: filepath.Join(e.path("d", "container", "r5", "filesystem"), "upper"), f: "<absent>"},
		{name: "btrfs root", id: 2, dir: e.path("b", "container", "r2", "filesystem"), f: "new"},
		{name: "btrfs snapshot", id: 2, snap: "s", dir: snapDir("b", "c2", "container"), f: "old", readOnly: true},
		{name: "dir VM", id: 3, disk: e.vmDiskOf("d", "r3"), format: "qcow2"},
		{name: "dir VM snapshot", id: 3, snap: "s", disk: snapDir("d", "v3", "virtual-machine"), format: "qcow2"},
		{name: "btrfs VM", id: 4, disk: e.vmDiskOf("b", "r4"), format: "raw"},
		{name: "missing snapshot", id: 1, snap: "nope", kind: errdefs.ErrNotFound},
		{name: "no such instance", id: 99, kind: errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen RootView
			called := false
			err := e.m.ReadRoot(e.ctx, tt.id, tt.snap, func(v RootView) error {
				called, seen = true, v
				if tt.disk != "" {
					if v.Disk != tt.disk || v.Format != tt.format || v.Dir != "" {
						t.Errorf("view %+v, want %s disk %s", v, tt.format, tt.disk)
					}
					return nil
				}
				if v.IDMap == nil || *v.IDMap != testMap {
					t.Errorf("view's id map %v", v.IDMap)
				}
				if tt.dir == "views" {
					if filepath.Dir(v.Dir) != views || !slices.Equal(mountPoints(views), []string{v.Dir}) {
						t.Errorf("view at %s, mounts under .views %q", v.Dir, mountPoints(views))
					}
				} else if v.Dir != tt.dir {
					t.Errorf("view at %s, want %s", v.Dir, tt.dir)
				}
				if got := fileIn(t, v.Dir, "f"); got != tt.f {
					t.Errorf("f %q, want %q", got, tt.f)
				}
				if tt.id == 5 {
					return nil
				}
				if got := fileIn(t, v.Dir, "home/user/file"); got != "<absent>" {
					t.Errorf("a file deleted in the root reads %q", got)
				}
				if got := fileIn(t, v.Dir, "etc/hostname"); got != treeImage+"\n" {
					t.Errorf("the image's etc/hostname %q", got)
				}
				if tt.readOnly {
					if err := os.WriteFile(filepath.Join(v.Dir, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
						t.Errorf("a write into the view: %v, want EROFS", err)
					}
					if err := os.Remove(filepath.Join(v.Dir, "f")); !errors.Is(err, unix.EROFS) {
						t.Errorf("a remove in the view: %v, want EROFS", err)
					}
				}
				return nil
			})
			wantErr(t, "read root", err, tt.kind)
			if tt.kind != nil {
				if called {
					t.Error("fn called for a view that does not exist")
				}
				return
			}
			if !called {
				t.Fatal("fn not called")
			}
			if got := mountPoints(views); len(got) != 0 {
				t.Errorf("mounts left after fn: %q", got)
			}
			if tt.dir == "views" && exists(seen.Dir) {
				t.Errorf("view %s left after fn", seen.Dir)
			}
		})
	}
	// fn's error is ReadRoot's, and the view still goes.
	boom := errors.New("boom")
	var at string
	err := e.m.ReadRoot(e.ctx, 1, "", func(v RootView) error { at = v.Dir; return boom })
	if !errors.Is(err, boom) {
		t.Errorf("ReadRoot returned %v, want fn's error", err)
	}
	if exists(at) || len(mountPoints(views)) != 0 {
		t.Errorf("a failed fn left its view %s mounted or on disk", at)
	}
}

// TestSweepViews: the views a killed daemon left mounted under .views
// are unmounted and removed at the next start.
func TestSweepViews(t *testing.T) {
	e := newEnv(t)
	views := filepath.Join(e.poolsDir(), viewsDir)
	mounted, plain := filepath.Join(views, "view-killed"), filepath.Join(views, "view-plain")
	for _, d := range []string{mounted, plain} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("tmpfs", mounted, "tmpfs", unix.MS_RDONLY, "size=1m"); err != nil {
		t.Fatal(err)
	}
	if got := mountPoints(views); !slices.Equal(got, []string{mounted}) {
		t.Fatalf("mounts %q", got)
	}
	e.restart()
	if got := mountPoints(views); len(got) != 0 {
		t.Errorf("mounts left after start: %q", got)
	}
	ents, err := os.ReadDir(views)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("left under .views: %v", ents)
	}
}

// TestCopiedRootsAndImageVolumes: on a dir pool a copy made within the
// pool is layered over the image volume as its source is, and keeps it;
// one streamed in from another pool is whole (a tree in upper, a qcow2
// with no backing file) and does not keep the image volume once the
// image left the catalogue.
func TestCopiedRootsAndImageVolumes(t *testing.T) {
	needTools(t, "qemu-img")
	e := newEnv(t)
	e.images.addDisk(diskImage)
	e.dirPool("d", nil)
	e.btrfsPool("b", nil)
	for _, r := range []RootRequest{
		{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "d", Image: treeImage, IDMap: &testMap},
		{InstanceID: 2, RuntimeID: "r2", Name: "c2", Pool: "b", Image: treeImage, IDMap: &testMap},
		{InstanceID: 3, RuntimeID: "r3", Name: "v3", VM: true, Pool: "d", Image: diskImage},
		{InstanceID: 4, RuntimeID: "r4", Name: "v4", VM: true, Pool: "b", Image: diskImage},
	} {
		if err := e.m.CreateRoot(e.ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	copies := []struct {
		req RootRequest
		src int64
	}{
		{RootRequest{InstanceID: 11, RuntimeID: "k11", Name: "k11", Pool: "d", IDMap: &testMap}, 1},
		{RootRequest{InstanceID: 12, RuntimeID: "k12", Name: "k12", Pool: "d", IDMap: &testMap}, 2},
		{RootRequest{InstanceID: 13, RuntimeID: "k13", Name: "k13", Pool: "d", VM: true}, 3},
		{RootRequest{InstanceID: 14, RuntimeID: "k14", Name: "k14", Pool: "d", VM: true}, 4},
	}
	for _, c := range copies {
		if err := e.m.CopyRoot(e.ctx, c.req, c.src, ""); err != nil {
			t.Fatal(err)
		}
	}
	tree, disk := "images/"+treeName(treeImage, &testMap), "images/"+diskImage+".block"
	e.images.remove(treeImage)
	e.images.remove(diskImage)
	steps := []struct {
		name   string
		delete []int64
		// kept: the image volumes left on d.
		kept []string
	}{
		{"sources and within-pool copies live", nil, []string{tree, disk}},
		{"the sources deleted: the within-pool copies read the images", []int64{1, 3}, []string{tree, disk}},
		{"the within-pool container copy deleted", []int64{11}, []string{disk}},
		{"the within-pool VM copy deleted: the streamed-in copies need none", []int64{13}, []string{}},
	}
	for _, s := range steps {
		for _, id := range s.delete {
			if err := e.m.DeleteRoot(e.ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		e.m.ImageDeleted(e.ctx, treeImage)
		e.m.ImageDeleted(e.ctx, diskImage)
		if got := withPrefix(e.onDisk("d"), "images/"); !slices.Equal(got, s.kept) {
			t.Errorf("%s: image volumes %q, want %q", s.name, got, s.kept)
		}
	}
	// The streamed-in copies still work without them.
	withMounted(t, e, 12, func(dir string) {
		if got := fileIn(t, dir, "etc/hostname"); got != treeImage+"\n" {
			t.Errorf("streamed-in copy's etc/hostname %q", got)
		}
	})
	if info := diskInfo(t, e.vmDiskOf("d", "k14"), "qcow2"); info.Backing != "" || info.VirtualSize != diskImageSize {
		t.Errorf("streamed-in VM copy %+v, want a whole qcow2", info)
	}
}

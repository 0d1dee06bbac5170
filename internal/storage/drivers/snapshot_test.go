package drivers

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

var allDrivers = []string{"dir", "btrfs"}

// TestCloneKeepsOddFiles: a clone, of a writable volume or of a
// read-only snapshot, holds the same tree as its parent, down to what a
// naive copy loses (see writeOddTree); the sparse 1GiB file stays sparse;
// the clone is writable and writing it leaves the parent alone.
func TestCloneKeepsOddFiles(t *testing.T) {
	for _, driver := range allDrivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t)
			d := e.makePool(driver, "p")
			ctx := e.ctx
			src := Volume{Type: TypeContainer, Name: "src", Content: ContentFilesystem}
			if err := d.CreateVolume(ctx, src, 0, false, writeOddTree); err != nil {
				t.Fatal(err)
			}
			snap := Volume{Type: TypeContainer, Name: "src@snap0", Content: ContentFilesystem}
			if err := d.SnapshotVolume(ctx, snap, src); err != nil {
				t.Fatal(err)
			}
			want := treeOf(t, d.Path(src))
			// The tree is as odd as meant (a capability write or a chown
			// on the way would have cleared setuid or the capability).
			for path, part := range map[string]string{
				"rootfs/bin/arping":  "mode=104755 uid=1000000",
				"rootfs/bin/arping ": "security.capability=01000003",
				"rootfs/bin/ping":    "security.capability=01000002",
				"rootfs/data":        "nlink=3",
				"rootfs/dev/null":    "rdev=1:3",
				"rootfs/tmp":         "mode=41777",
			} {
				if !strings.Contains(want[strings.TrimSpace(path)], part) {
					t.Errorf("source %s is %q, want it to hold %q", path, want[strings.TrimSpace(path)], part)
				}
			}
			clones := []struct{ vol, parent Volume }{
				{Volume{Type: TypeContainer, Name: "of-volume", Content: ContentFilesystem}, src},
				{Volume{Type: TypeContainer, Name: "of-snapshot", Content: ContentFilesystem}, snap},
				{Volume{Type: TypeCustom, Name: "other-type", Content: ContentFilesystem}, snap},
			}
			for _, c := range clones {
				if err := d.CloneVolume(ctx, c.vol, c.parent); err != nil {
					t.Fatalf("clone %s of %s: %v", c.vol.Name, c.parent.Name, err)
				}
				assertSameTree(t, "clone "+c.vol.Name, want, treeOf(t, d.Path(c.vol)))
				sparse := filepath.Join(d.Path(c.vol), "rootfs", "sparse.img")
				if a := allocated(t, sparse); a > 1<<20 {
					t.Errorf("clone %s: the sparse 1GiB file takes %d bytes on disk, want at most 1MiB (%d written)", c.vol.Name, a, oddSparseData)
				}
				writeFile(t, filepath.Join(d.Path(c.vol), "rootfs", "data"), "changed in the clone")
			}
			assertSameTree(t, "parent after writes into its clones", want, treeOf(t, d.Path(src)))
			assertSameTree(t, "snapshot after writes into its clones", want, treeOf(t, d.Path(snap)))

			for _, v := range volumesOf(t, d) {
				if err := d.DeleteVolume(ctx, v); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Delete(ctx); err != nil {
				t.Fatal(err)
			}
			e.assertClean()
		})
	}
}

// TestSnapshotRestore: a snapshot keeps the content its volume had when
// it was taken (read-only on btrfs), is listed and measured like any
// volume, and a restore brings that content back, leaving nothing but
// the volume and its snapshot; for filesystem and block volumes.
func TestSnapshotRestore(t *testing.T) {
	type content struct {
		fill   func(dir string) error
		change func(t *testing.T, dir string)
		read   func(t *testing.T, dir string) string
		// write tries a write into a snapshot.
		write func(dir string) error
	}
	fsContent := content{
		fill: func(dir string) error {
			if err := os.MkdirAll(filepath.Join(dir, "rootfs", "d"), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, "rootfs", "f"), []byte("old"), 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "rootfs", "d", "x"), []byte("x"), 0o644)
		},
		change: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "rootfs", "f"), "new")
			writeFile(t, filepath.Join(dir, "rootfs", "added"), "added")
			if err := os.RemoveAll(filepath.Join(dir, "rootfs", "d")); err != nil {
				t.Fatal(err)
			}
		},
		read: func(t *testing.T, dir string) string {
			var b bytes.Buffer
			for _, p := range []string{"f", "added", "d/x"} {
				c, err := os.ReadFile(filepath.Join(dir, "rootfs", p))
				if err != nil {
					c = []byte("-")
				}
				b.WriteString(p + "=" + string(c) + " ")
			}
			return b.String()
		},
		write: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "rootfs", "new-file"), nil, 0o644)
		},
	}
	blockContent := content{
		fill: func(dir string) error { return writeBlock(filepath.Join(dir, BlockFile), "old-disk") },
		change: func(t *testing.T, dir string) {
			if err := writeBlock(filepath.Join(dir, BlockFile), "new-disk"); err != nil {
				t.Fatal(err)
			}
		},
		read: func(t *testing.T, dir string) string {
			f, err := os.Open(filepath.Join(dir, BlockFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b := make([]byte, 8)
			if _, err := f.ReadAt(b, 1<<20); err != nil {
				t.Fatal(err)
			}
			return string(b)
		},
		write: func(dir string) error { return writeBlock(filepath.Join(dir, BlockFile), "written") },
	}
	tests := []struct {
		driver  string
		content ContentType
		c       content
	}{
		{"dir", ContentFilesystem, fsContent},
		{"dir", ContentBlock, blockContent},
		{"btrfs", ContentFilesystem, fsContent},
		{"btrfs", ContentBlock, blockContent},
	}
	for _, tt := range tests {
		t.Run(tt.driver+"/"+string(tt.content), func(t *testing.T) {
			e := newEnv(t)
			d := e.makePool(tt.driver, "p")
			ctx := e.ctx
			typ := TypeContainer
			if tt.content == ContentBlock {
				typ = TypeVM
			}
			vol := Volume{Type: typ, Name: "c1", Content: tt.content}
			size := int64(0)
			if tt.content == ContentBlock {
				size = 4 << 20
			}
			if err := d.CreateVolume(ctx, vol, size, false, tt.c.fill); err != nil {
				t.Fatal(err)
			}
			// A limit on the volume when the snapshot is taken, another
			// when it is restored: the restored volume has the first
			// (btrfs copies a qgroup's limit into a snapshot's), until
			// the manager sets it again.
			limited := tt.content == ContentFilesystem && d.Info().Quotas
			if limited {
				if err := d.SetQuota(ctx, vol, 64<<20); err != nil {
					t.Fatal(err)
				}
			}
			old := tt.c.read(t, d.Path(vol))
			snap := Volume{Type: typ, Name: "c1@snap0", Content: tt.content}
			if err := d.SnapshotVolume(ctx, snap, vol); err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			tt.c.change(t, d.Path(vol))
			changed := tt.c.read(t, d.Path(vol))
			if changed == old {
				t.Fatalf("the change changed nothing: %q", old)
			}
			if got := tt.c.read(t, d.Path(snap)); got != old {
				t.Errorf("snapshot after a change of its volume: %q, want %q", got, old)
			}
			if d.Info().ReadOnlyVolumes {
				if err := tt.c.write(d.Path(snap)); !errors.Is(err, unix.EROFS) {
					t.Errorf("write into a snapshot: %v, want EROFS", err)
				}
			}
			if u, err := d.VolumeUsage(ctx, snap); err != nil || u.Used <= 0 {
				t.Errorf("usage of the snapshot: %+v, %v", u, err)
			}
			want := []Volume{vol, snap}
			sortVols(want)
			if got := volumesOf(t, d); !slices.Equal(got, want) {
				t.Errorf("volumes %v, want %v", got, want)
			}

			if limited {
				if err := d.SetQuota(ctx, vol, 128<<20); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.RestoreVolume(ctx, vol, snap); err != nil {
				t.Fatalf("restore: %v", err)
			}
			if got := tt.c.read(t, d.Path(vol)); got != old {
				t.Errorf("volume after restore: %q, want %q", got, old)
			}
			if got := volumesOf(t, d); !slices.Equal(got, want) {
				t.Errorf("volumes after restore %v, want %v", got, want)
			}
			assertNoLeftovers(t, d)
			if err := tt.c.write(d.Path(vol)); err != nil {
				t.Errorf("write into the restored volume: %v", err)
			}
			if got := tt.c.read(t, d.Path(snap)); got != old {
				t.Errorf("snapshot after a restore and a write: %q, want %q", got, old)
			}
			if limited {
				if u, err := d.VolumeUsage(ctx, vol); err != nil || u.Total != 64<<20 {
					t.Errorf("usage after restore %+v, %v: want the limit of the snapshot's time, 64MiB", u, err)
				}
				if err := d.SetQuota(ctx, vol, 32<<20); err != nil {
					t.Fatalf("quota on the restored volume: %v", err)
				}
				if u, err := d.VolumeUsage(ctx, vol); err != nil || u.Total != 32<<20 {
					t.Errorf("usage after SetQuota on the restored volume: %+v, %v", u, err)
				}
			}

			// Bad calls change nothing.
			other := typ
			if other == TypeContainer {
				other = TypeCustom
			} else {
				other = TypeImage
			}
			otherContent := ContentFilesystem
			if tt.content == ContentFilesystem {
				otherContent = ContentBlock
			}
			missing := Volume{Type: typ, Name: "nope", Content: tt.content}
			bad := []struct {
				what string
				err  error
				kind error
			}{
				{"snapshot onto an existing volume", d.SnapshotVolume(ctx, snap, vol), errdefs.ErrConflict},
				{"snapshot of a missing volume", d.SnapshotVolume(ctx, Volume{typ, "nope@s", tt.content}, missing), errdefs.ErrNotFound},
				{"snapshot of another type", d.SnapshotVolume(ctx, Volume{other, "c1@s", tt.content}, vol), errdefs.ErrInvalidArgument},
				{"snapshot of another content", d.SnapshotVolume(ctx, Volume{typ, "c1@s", otherContent}, vol), errdefs.ErrInvalidArgument},
				{"snapshot with a slash", d.SnapshotVolume(ctx, Volume{typ, "c1@../x", tt.content}, vol), errdefs.ErrInvalidArgument},
				{"restore from a missing snapshot", d.RestoreVolume(ctx, vol, Volume{typ, "c1@nope", tt.content}), errdefs.ErrNotFound},
				{"restore of a missing volume", d.RestoreVolume(ctx, missing, snap), errdefs.ErrNotFound},
				{"restore across content", d.RestoreVolume(ctx, Volume{typ, "c1", otherContent}, snap), errdefs.ErrInvalidArgument},
				{"clone onto an existing volume", d.CloneVolume(ctx, vol, snap), errdefs.ErrConflict},
				{"clone of a missing volume", d.CloneVolume(ctx, Volume{typ, "c2", tt.content}, missing), errdefs.ErrNotFound},
			}
			for _, b := range bad {
				mustErrIs(t, b.err, b.kind, b.what)
			}
			if got := volumesOf(t, d); !slices.Equal(got, want) {
				t.Errorf("volumes after bad calls %v, want %v", got, want)
			}
			assertNoLeftovers(t, d)

			// A mounted volume is not restored: a 409, the volume as it
			// was, nothing left.
			if tt.content == ContentFilesystem {
				before := tt.c.read(t, d.Path(vol))
				if err := unix.Mount(d.Path(vol), d.Path(vol), "", unix.MS_BIND, ""); err != nil {
					t.Fatal(err)
				}
				mustErrIs(t, d.RestoreVolume(ctx, vol, snap), errdefs.ErrConflict, "restore of a mounted volume")
				if err := unix.Unmount(d.Path(vol), 0); err != nil {
					t.Fatal(err)
				}
				if got := tt.c.read(t, d.Path(vol)); got != before {
					t.Errorf("a refused restore changed the volume: %q, want %q", got, before)
				}
				assertNoLeftovers(t, d)
			}

			for _, v := range []Volume{snap, vol} {
				if err := d.DeleteVolume(ctx, v); err != nil {
					t.Fatalf("delete %s: %v", v.Name, err)
				}
			}
			if got := volumesOf(t, d); len(got) != 0 {
				t.Errorf("volumes left: %v", got)
			}
			if err := d.Delete(ctx); err != nil {
				t.Fatal(err)
			}
			e.assertClean()
		})
	}
}

// writeBlock writes s at 1MiB into a block volume's file.
func writeBlock(p, s string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(s), 1<<20); err != nil {
		return err
	}
	return f.Close()
}

// TestKilledCopiesSwept: the pieces a clone, a snapshot or a restore
// leave when killed at each step (made the way the drivers make them)
// are not listed as volumes, and Sweep removes them, leaving the volumes
// whole: a restore killed before its swap leaves the old content, after
// it the new.
func TestKilledCopiesSwept(t *testing.T) {
	for _, driver := range allDrivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t)
			d := e.makePool(driver, "p")
			ctx := e.ctx
			l := layoutOf(d)
			fill := func(s string) func(string) error {
				return func(dir string) error { return os.WriteFile(filepath.Join(dir, "f"), []byte(s), 0o644) }
			}
			read := func(v Volume) string {
				b, _ := os.ReadFile(filepath.Join(d.Path(v), "f"))
				return string(b)
			}
			before := Volume{Type: TypeContainer, Name: "before", Content: ContentFilesystem}
			after := Volume{Type: TypeContainer, Name: "after", Content: ContentFilesystem}
			for _, v := range []Volume{before, after} {
				if err := d.CreateVolume(ctx, v, 0, false, fill("old")); err != nil {
					t.Fatal(err)
				}
			}
			snaps := map[Volume]Volume{}
			for _, v := range []Volume{before, after} {
				s := Volume{Type: v.Type, Name: v.Name + "@s", Content: v.Content}
				if err := d.SnapshotVolume(ctx, s, v); err != nil {
					t.Fatal(err)
				}
				snaps[v] = s
				writeFile(t, filepath.Join(d.Path(v), "f"), "new")
			}
			// A copy of snap beside v, as each driver makes it.
			copyOf := func(from, v Volume, readOnly bool) string {
				if driver == "btrfs" {
					tmp := l.tmpPath(v)
					if err := btrfsSnapshot(d.Path(from), tmp, readOnly); err != nil {
						t.Fatal(err)
					}
					return tmp
				}
				tmp, err := copyVolume(ctx, l, v, d.Path(from))
				if err != nil {
					t.Fatal(err)
				}
				return tmp
			}
			clone := Volume{Type: TypeContainer, Name: "clone", Content: ContentFilesystem}
			pieces := []string{
				copyOf(before, clone, false),         // a clone killed before its rename
				copyOf(before, snaps[before], true),  // a second snapshot killed before its rename
				copyOf(snaps[before], before, false), // a restore killed before its swap
			}
			// A restore of "after" killed after its swap, before the old
			// content was removed.
			tmp := copyOf(snaps[after], after, false)
			old, err := swapIn(l, tmp, after)
			if err != nil {
				t.Fatal(err)
			}
			pieces = append(pieces, old)

			want := []Volume{before, after, snaps[before], snaps[after]}
			sortVols(want)
			if got := volumesOf(t, d); !slices.Equal(got, want) {
				t.Errorf("volumes with the pieces there: %v, want %v", got, want)
			}
			if err := d.Sweep(ctx); err != nil {
				t.Fatalf("sweep: %v", err)
			}
			for _, p := range pieces {
				if ok, _ := pathExists(p); ok {
					t.Errorf("sweep left %s", p)
				}
			}
			assertNoLeftovers(t, d)
			if got := volumesOf(t, d); !slices.Equal(got, want) {
				t.Errorf("volumes after the sweep: %v, want %v", got, want)
			}
			if got := read(before); got != "new" {
				t.Errorf("a restore killed before its swap: content %q, want the old content, %q", got, "new")
			}
			if got := read(after); got != "old" {
				t.Errorf("a restore killed after its swap: content %q, want the restored %q", got, "old")
			}
			for _, v := range want {
				if err := d.DeleteVolume(ctx, v); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Delete(ctx); err != nil {
				t.Fatal(err)
			}
			e.assertClean()
		})
	}
}

// TestVolumeNames: a snapshot's PARENT@TOKEN name is a usable volume
// name; what could leave the type directory or pass for something else
// on disk is not.
func TestVolumeNames(t *testing.T) {
	long := string(bytes.Repeat([]byte("a"), maxVolumeName))
	tests := []struct {
		name    string
		content ContentType
		ok      bool
	}{
		{"c1@snap0", ContentFilesystem, true},
		{"c1@snap0", ContentBlock, true},
		{"c1@2025-01-02T03:04:05", ContentFilesystem, true},
		{"c1@snap0.block", ContentBlock, true},
		{"c1@snap0.block", ContentFilesystem, false},
		{long, ContentFilesystem, true},
		{long + "@s", ContentFilesystem, false},
		{"c1@../x", ContentFilesystem, false},
		{".c1@s", ContentFilesystem, false},
		{"", ContentFilesystem, false},
		{"c1@s\x00", ContentFilesystem, false},
	}
	for _, tt := range tests {
		err := checkVolumeName(tt.name, tt.content)
		if (err == nil) != tt.ok {
			t.Errorf("name %q (%s): error %v, want ok=%t", tt.name, tt.content, err, tt.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("name %q: error %v is not a 400", tt.name, err)
		}
	}
}

package drivers

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// TestPoolLifecycle makes, uses, remounts and deletes a pool of each
// driver and source kind, on real loop devices and filesystems.
func TestPoolLifecycle(t *testing.T) {
	type setup struct {
		cfg     map[string]string
		after   func(t *testing.T) // checks once the pool is deleted
		release func()             // the test's own sources, undone after Delete
	}
	tests := []struct {
		name    string
		driver  string
		btrfs   bool
		prepare func(e *testEnv) setup
		// wantCfg are keys Create must record (a value "*" means set).
		wantCfg    map[string]string
		ownMount   bool // something is mounted at the pool's directory
		remountNew bool // after Unmount the pool's directory is empty
	}{
		{
			name: "dir", driver: "dir",
			prepare: func(e *testEnv) setup { return setup{} },
			wantCfg: map[string]string{"source": "POOLDIR"},
		},
		{
			name: "dir on a source", driver: "dir", ownMount: true, remountNew: true,
			prepare: func(e *testEnv) setup {
				src := filepath.Join(e.base, "src")
				if err := os.Mkdir(src, 0o755); err != nil {
					e.t.Fatal(err)
				}
				return setup{cfg: map[string]string{"source": src}, after: func(t *testing.T) {
					if empty, err := isEmptyDir(src); err != nil || !empty {
						t.Errorf("source %s not left empty: %v", src, err)
					}
				}}
			},
			wantCfg: map[string]string{"source": "*"},
		},
		{
			name: "btrfs loop file", driver: "btrfs", btrfs: true, ownMount: true, remountNew: true,
			prepare: func(e *testEnv) setup { return setup{cfg: map[string]string{"size": "200MiB"}} },
			wantCfg: map[string]string{"source": "LOOPFILE", "size": "200MiB"},
		},
		{
			name: "btrfs blank device", driver: "btrfs", btrfs: true, ownMount: true, remountNew: true,
			prepare: func(e *testEnv) setup {
				dev, rel := e.loopDevice("dev.img", 200<<20)
				return setup{cfg: map[string]string{"source": dev, "size": "1GiB"}, release: rel, after: func(t *testing.T) {
					// The device keeps its (now empty) btrfs, as LXD leaves it.
					if fsType, _, err := probeDevice(e.ctx, dev); err != nil || fsType != "btrfs" {
						t.Errorf("device after delete holds %q (%v), want the btrfs left", fsType, err)
					}
				}}
			},
			wantCfg: map[string]string{"source": "*", "size": ""},
		},
		{
			name: "btrfs device with an empty btrfs", driver: "btrfs", btrfs: true, ownMount: true, remountNew: true,
			prepare: func(e *testEnv) setup {
				dev, rel := e.loopDevice("dev.img", 200<<20)
				e.run("mkfs.btrfs", "-q", dev)
				return setup{cfg: map[string]string{"source": dev}, release: rel}
			},
			wantCfg: map[string]string{"source": "*"},
		},
		{
			name: "btrfs new subvolume on a btrfs", driver: "btrfs", btrfs: true, ownMount: true, remountNew: true,
			prepare: func(e *testEnv) setup {
				mnt, rel := e.hostBtrfs()
				src := filepath.Join(mnt, "pools-p")
				return setup{cfg: map[string]string{"source": src}, release: rel, after: func(t *testing.T) {
					if ok, _ := pathExists(src); ok {
						t.Errorf("subvolume %s hangard made is left after delete", src)
					}
				}}
			},
			wantCfg: map[string]string{"source": "*"},
		},
		{
			name: "btrfs existing directory on a btrfs", driver: "btrfs", btrfs: true, ownMount: true, remountNew: true,
			prepare: func(e *testEnv) setup {
				mnt, rel := e.hostBtrfs()
				src := filepath.Join(mnt, "given")
				if err := btrfsSubvolCreate(src); err != nil {
					e.t.Fatal(err)
				}
				return setup{cfg: map[string]string{"source": src}, release: rel, after: func(t *testing.T) {
					if empty, err := isEmptyDir(src); err != nil || !empty {
						t.Errorf("the user's subvolume %s should be left, empty: %v", src, err)
					}
				}}
			},
			wantCfg: map[string]string{"source": "*"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.btrfs {
				needBtrfs(t)
			}
			e := newEnv(t)
			s := tt.prepare(e)
			d, p := e.pool("p", tt.driver, s.cfg)
			cfg, err := d.Create(e.ctx)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			for k, want := range tt.wantCfg {
				want = strings.NewReplacer("POOLDIR", p.Dir, "LOOPFILE", filepath.Join(e.dataDir(), "disks", "p.img")).Replace(want)
				switch got, ok := cfg[k]; {
				case want == "*" && got == "":
					t.Errorf("config %s not recorded: %v", k, cfg)
				case want == "" && ok:
					t.Errorf("config %s=%q recorded, want it dropped", k, got)
				case want != "*" && want != "" && got != want:
					t.Errorf("config %s=%q, want %q", k, got, want)
				}
			}
			// The manager reloads the pool with the config it recorded.
			d, _ = e.pool("p", tt.driver, cfg)
			if err := d.Mount(e.ctx); err != nil {
				t.Fatalf("mount of a mounted pool: %v", err)
			}
			if _, ok, _ := mountAt(p.Dir); ok != tt.ownMount {
				t.Errorf("mounted at %s: %t, want %t", p.Dir, ok, tt.ownMount)
			}
			if maj, _, err := d.Device(); err != nil || (tt.btrfs && strings.Contains(cfg["source"], "disks") && maj != 7) {
				t.Errorf("device: major %d, %v (a loop file pool is on a loop device, major 7)", maj, err)
			}
			if u, err := d.Usage(e.ctx); err != nil || u.Total <= 0 || u.Used <= 0 || u.Used > u.Total {
				t.Errorf("usage %+v, %v", u, err)
			}

			exerciseVolumes(t, e, d)

			// Volumes survive an unmount and a remount (a daemon
			// restart: the loop file is attached again).
			keep := Volume{Type: TypeCustom, Name: "keep", Content: ContentFilesystem}
			if err := d.CreateVolume(e.ctx, keep, 0, false, func(dir string) error {
				return os.WriteFile(filepath.Join(dir, "f"), []byte("kept"), 0o644)
			}); err != nil {
				t.Fatal(err)
			}
			if err := d.Unmount(e.ctx); err != nil {
				t.Fatalf("unmount: %v", err)
			}
			if err := d.Unmount(e.ctx); err != nil {
				t.Fatalf("unmount of an unmounted pool: %v", err)
			}
			if tt.remountNew {
				if vols, _ := d.Volumes(e.ctx); len(vols) != 0 {
					t.Errorf("volumes seen with the pool unmounted: %v", vols)
				}
			}
			if err := d.Mount(e.ctx); err != nil {
				t.Fatalf("remount: %v", err)
			}
			if b, err := os.ReadFile(filepath.Join(d.Path(keep), "f")); err != nil || string(b) != "kept" {
				t.Errorf("volume content after remount: %q, %v", b, err)
			}
			// Delete refuses a pool that still holds a volume.
			mustErrIs(t, d.Delete(e.ctx), errdefs.ErrConflict, "delete of a pool with a volume")
			if err := d.DeleteVolume(e.ctx, keep); err != nil {
				t.Fatal(err)
			}
			if err := d.Delete(e.ctx); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if err := d.Delete(e.ctx); err != nil {
				t.Fatalf("delete of a deleted pool: %v", err)
			}
			if s.after != nil {
				s.after(t)
			}
			if s.release != nil {
				s.release()
			}
			e.assertClean()
		})
	}
}

// exerciseVolumes makes, clones, renames, sizes, measures and deletes
// volumes of every type on a mounted pool, leaving none.
func exerciseVolumes(t *testing.T, e *testEnv, d Driver) {
	ctx := e.ctx
	info := d.Info()

	img := Volume{Type: TypeImage, Name: "abc123", Content: ContentFilesystem}
	if err := d.CreateVolume(ctx, img, 0, true, func(dir string) error {
		writeFile(t, filepath.Join(dir, "rootfs", "etc", "hostname"), "image")
		return nil
	}); err != nil {
		t.Fatalf("create image volume: %v", err)
	}
	mustErrIs(t, d.CreateVolume(ctx, img, 0, true, nil), errdefs.ErrConflict, "create of an existing volume")
	if info.ReadOnlyVolumes {
		err := os.WriteFile(filepath.Join(d.Path(img), "rootfs", "x"), nil, 0o644)
		if !errors.Is(err, unix.EROFS) {
			t.Errorf("write into a read-only image volume: %v, want EROFS", err)
		}
	}

	// Every driver clones (Info.Clones says whether instantly).
	ct := Volume{Type: TypeContainer, Name: "c1", Content: ContentFilesystem}
	if err := d.CloneVolume(ctx, ct, img); err != nil {
		t.Fatalf("clone: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(d.Path(ct), "rootfs", "etc", "hostname")); err != nil || string(b) != "image" {
		t.Errorf("clone content %q, %v", b, err)
	}
	writeFile(t, filepath.Join(d.Path(ct), "rootfs", "etc", "hostname"), "c1")
	if b, _ := os.ReadFile(filepath.Join(d.Path(img), "rootfs", "etc", "hostname")); string(b) != "image" {
		t.Errorf("a write into the clone changed the image to %q", b)
	}
	mustErrIs(t, d.CloneVolume(ctx, ct, img), errdefs.ErrConflict, "clone onto an existing volume")
	mustErrIs(t, d.CloneVolume(ctx, Volume{TypeContainer, "c2", ContentFilesystem}, Volume{TypeImage, "nope", ContentFilesystem}), errdefs.ErrNotFound, "clone of a missing volume")
	mustErrIs(t, d.CloneVolume(ctx, Volume{TypeVM, "c2", ContentBlock}, img), errdefs.ErrInvalidArgument, "clone across content types")

	// A VM: its image's disk and its root, a block volume.
	vmImg := Volume{Type: TypeImage, Name: "abc123", Content: ContentBlock}
	if err := d.CreateVolume(ctx, vmImg, 1<<20+1, true, func(dir string) error {
		f, err := os.OpenFile(filepath.Join(dir, BlockFile), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteAt([]byte("bootsector"), 0)
		return err
	}); err != nil {
		t.Fatalf("create block image volume: %v", err)
	}
	if u, err := d.VolumeUsage(ctx, vmImg); err != nil || u.Total != 1<<20+blockAlign || u.Used <= 0 {
		t.Errorf("block usage %+v, %v: want Total %d (size rounded up to 8KiB) and some used", u, err, 1<<20+blockAlign)
	}
	vm := Volume{Type: TypeVM, Name: "vm1", Content: ContentBlock}
	if err := d.CloneVolume(ctx, vm, vmImg); err != nil {
		t.Fatal(err)
	}
	if info.Name == "btrfs" {
		if flags := fileFlags(t, filepath.Join(d.Path(vm), BlockFile)); flags&fsNocowFl == 0 {
			t.Errorf("block file flags %#x: no nodatacow", flags)
		}
	}
	if info.Name == "btrfs" {
		// A fill that writes the disk anew (qemu-img convert) still gets
		// a nodatacow file.
		anew := Volume{Type: TypeImage, Name: "anew", Content: ContentBlock}
		if err := d.CreateVolume(ctx, anew, 0, true, func(dir string) error {
			p := filepath.Join(dir, BlockFile)
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.WriteFile(p, make([]byte, 64<<10), 0o600)
		}); err != nil {
			t.Fatal(err)
		}
		if flags := fileFlags(t, filepath.Join(d.Path(anew), BlockFile)); flags&fsNocowFl == 0 {
			t.Errorf("a disk the fill wrote anew: flags %#x, no nodatacow", flags)
		}
		if err := d.DeleteVolume(ctx, anew); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.SetQuota(ctx, vm, 4<<20); err != nil {
		t.Fatalf("grow block volume: %v", err)
	}
	if st, err := os.Stat(filepath.Join(d.Path(vm), BlockFile)); err != nil || st.Size() != 4<<20 {
		t.Errorf("block file after grow: %v, %v", st, err)
	}
	mustErrIs(t, d.SetQuota(ctx, vm, 2<<20), errdefs.ErrInvalidArgument, "shrink of a block volume")
	mustErrIs(t, d.CreateVolume(ctx, Volume{TypeVM, "vm2", ContentBlock}, 0, false, nil), errdefs.ErrInvalidArgument, "block volume without a size")

	// Custom volumes: a filesystem and a block volume of the same name.
	v1 := Volume{Type: TypeCustom, Name: "v1", Content: ContentFilesystem}
	if err := d.CreateVolume(ctx, v1, 0, false, nil); err != nil {
		t.Fatal(err)
	}
	b1 := Volume{Type: TypeCustom, Name: "v1", Content: ContentBlock}
	if err := d.CreateVolume(ctx, b1, 1<<20, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := writeZeros(filepath.Join(d.Path(v1), "data"), 2<<20); err != nil {
		t.Fatal(err)
	}
	if u, err := d.VolumeUsage(ctx, v1); err != nil || u.Used < 2<<20 || u.Used > 3<<20 {
		t.Errorf("usage of a volume holding 2MiB: %+v, %v", u, err)
	}
	if err := d.RenameVolume(ctx, v1, "v2"); err != nil {
		t.Fatalf("rename: %v", err)
	}
	v2 := Volume{Type: TypeCustom, Name: "v2", Content: ContentFilesystem}
	if _, err := os.Stat(filepath.Join(d.Path(v2), "data")); err != nil {
		t.Errorf("renamed volume content: %v", err)
	}
	mustErrIs(t, d.RenameVolume(ctx, v1, "v3"), errdefs.ErrNotFound, "rename of a missing volume")
	if err := d.CreateVolume(ctx, v1, 0, false, nil); err != nil {
		t.Fatal(err)
	}
	mustErrIs(t, d.RenameVolume(ctx, v2, "v1"), errdefs.ErrConflict, "rename onto an existing volume")
	mustErrIs(t, d.RenameVolume(ctx, v2, "../x"), errdefs.ErrInvalidArgument, "rename to a bad name")
	mustErrIs(t, d.CreateVolume(ctx, Volume{TypeCustom, "../../etc", ContentFilesystem}, 0, false, nil), errdefs.ErrInvalidArgument, "a name with slashes")

	vols, err := d.Volumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Volume{img, vmImg, ct, vm, v1, b1, v2}
	sortVols(vols)
	sortVols(want)
	if !slices.Equal(vols, want) {
		t.Errorf("volumes %v, want %v", vols, want)
	}
	for _, v := range want {
		if err := d.DeleteVolume(ctx, v); err != nil {
			t.Errorf("delete %v: %v", v, err)
		}
		if err := d.DeleteVolume(ctx, v); err != nil {
			t.Errorf("delete of a deleted volume %v: %v", v, err)
		}
	}
	if vols, _ := d.Volumes(ctx); len(vols) != 0 {
		t.Errorf("volumes left: %v", vols)
	}
	mustErrIs(t, func() error { _, err := d.VolumeUsage(ctx, v1); return err }(), errdefs.ErrNotFound, "usage of a missing volume")
}

func sortVols(v []Volume) {
	slices.SortFunc(v, func(a, b Volume) int {
		return strings.Compare(string(a.Type)+a.Name+string(a.Content), string(b.Type)+b.Name+string(b.Content))
	})
}

// TestBadPools: each bad pool is a 400 that says what is wrong, and a
// refused create leaves nothing behind: no pool directory, loop file,
// mount or loop device.
func TestBadPools(t *testing.T) {
	tests := []struct {
		name    string
		driver  string
		btrfs   bool
		prepare func(e *testEnv) (cfg map[string]string, release func())
		want    string
	}{
		{"dir source not empty", "dir", false, func(e *testEnv) (map[string]string, func()) {
			src := filepath.Join(e.base, "src")
			writeFile(e.t, filepath.Join(src, "file"), "x")
			return map[string]string{"source": src}, nil
		}, "is not empty"},
		{"dir source missing", "dir", false, func(e *testEnv) (map[string]string, func()) {
			return map[string]string{"source": filepath.Join(e.base, "nope")}, nil
		}, "does not exist"},
		{"dir source a file", "dir", false, func(e *testEnv) (map[string]string, func()) {
			return map[string]string{"source": e.file("f", 10)}, nil
		}, "is not a directory"},
		{"dir source in the data dir", "dir", false, func(e *testEnv) (map[string]string, func()) {
			src := filepath.Join(e.dataDir(), "images")
			if err := os.MkdirAll(src, 0o700); err != nil {
				e.t.Fatal(err)
			}
			return map[string]string{"source": src}, func() { os.Remove(src) }
		}, "inside hangard's data directory"},
		{"pool directory in use", "dir", false, func(e *testEnv) (map[string]string, func()) {
			dir := filepath.Join(e.dataDir(), "storage-pools", "p")
			if err := os.MkdirAll(dir, 0o711); err != nil {
				e.t.Fatal(err)
			}
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
				e.t.Fatal(err)
			}
			return nil, func() { _ = unix.Unmount(dir, 0); _ = os.Remove(dir) }
		}, "is in use: tmpfs is mounted there"},
		{"btrfs device mounted", "btrfs", true, func(e *testEnv) (map[string]string, func()) {
			dev, rel := e.loopDevice("dev.img", 200<<20)
			e.run("mkfs.ext4", "-q", dev)
			mnt := filepath.Join(e.base, "m")
			if err := os.Mkdir(mnt, 0o755); err != nil {
				e.t.Fatal(err)
			}
			if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
				e.t.Fatal(err)
			}
			return map[string]string{"source": dev}, func() { _ = unix.Unmount(mnt, 0); rel() }
		}, "is in use"},
		{"btrfs device with ext4", "btrfs", true, func(e *testEnv) (map[string]string, func()) {
			dev, rel := e.loopDevice("dev.img", 200<<20)
			e.run("mkfs.ext4", "-q", dev)
			return map[string]string{"source": dev}, rel
		}, "holds a ext4 filesystem"},
		{"btrfs device with a btrfs not empty", "btrfs", true, func(e *testEnv) (map[string]string, func()) {
			dev, rel := e.loopDevice("dev.img", 200<<20)
			e.run("mkfs.btrfs", "-q", dev)
			mnt := filepath.Join(e.base, "m")
			if err := os.Mkdir(mnt, 0o755); err != nil {
				e.t.Fatal(err)
			}
			if err := unix.Mount(dev, mnt, "btrfs", 0, ""); err != nil {
				e.t.Fatal(err)
			}
			writeFile(e.t, filepath.Join(mnt, "data"), "theirs")
			if err := unix.Unmount(mnt, 0); err != nil {
				e.t.Fatal(err)
			}
			return map[string]string{"source": dev}, rel
		}, "holds a btrfs filesystem that is not empty (data)"},
		{"btrfs directory not on btrfs", "btrfs", true, func(e *testEnv) (map[string]string, func()) {
			return map[string]string{"source": filepath.Join(e.base, "newdir")}, nil
		}, "is not on a btrfs filesystem"},
		{"btrfs directory not empty", "btrfs", true, func(e *testEnv) (map[string]string, func()) {
			mnt, rel := e.hostBtrfs()
			writeFile(e.t, filepath.Join(mnt, "given", "x"), "x")
			return map[string]string{"source": filepath.Join(mnt, "given")}, rel
		}, "is not empty"},
		{"btrfs mount options on a directory", "btrfs", true, func(e *testEnv) (map[string]string, func()) {
			mnt, rel := e.hostBtrfs()
			return map[string]string{"source": filepath.Join(mnt, "p"), "btrfs.mount_options": "noatime"}, rel
		}, "btrfs.mount_options needs a pool with a btrfs filesystem of its own"},
		{"btrfs source a file", "btrfs", true, func(e *testEnv) (map[string]string, func()) {
			return map[string]string{"source": e.file("f.img", 200<<20)}, nil
		}, "is a file"},
		{"btrfs loop file too small", "btrfs", true, func(e *testEnv) (map[string]string, func()) {
			return map[string]string{"size": "100MiB"}, nil
		}, "too small for btrfs"},
		{"btrfs bad mount option", "btrfs", true, func(e *testEnv) (map[string]string, func()) {
			return map[string]string{"size": "200MiB", "btrfs.mount_options": "frobnicate"}, nil
		}, `btrfs.mount_options "frobnicate": mount failed`},
		{"btrfs loop file exists", "btrfs", true, func(e *testEnv) (map[string]string, func()) {
			lp := filepath.Join(e.dataDir(), "disks", "p.img")
			writeFile(e.t, lp, "")
			return map[string]string{"size": "200MiB"}, func() { os.Remove(lp) }
		}, "already exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.btrfs {
				needBtrfs(t)
			}
			e := newEnv(t)
			cfg, release := tt.prepare(e)
			d, p := e.pool("p", tt.driver, cfg)
			_, err := d.Create(e.ctx)
			checkInvalid(t, err, tt.want)
			if release != nil {
				release()
			}
			if ok, _ := pathExists(p.Dir); ok {
				t.Errorf("a refused create left %s", p.Dir)
			}
			e.assertClean()
		})
	}
}

// fileFlags are a file's inode flags (lsattr).
func fileFlags(t *testing.T, path string) uint32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatal(err)
	}
	return flags
}

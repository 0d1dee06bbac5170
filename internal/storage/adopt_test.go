package storage

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/storage/drivers"
)

// TestAdoptRoot: an instance made before pools keeps its files, moved
// into a volume; one that never had any gets a fresh root; a move that
// fails half way puts back what it moved.
func TestAdoptRoot(t *testing.T) {
	needTools(t, "qemu-img")
	e := newEnv(t)
	e.images.addDisk(diskImage)
	e.dirPool("p", nil)
	btrfsOK, noBtrfs := hasBtrfs()
	if btrfsOK {
		e.btrfsPool("b", nil)
	}
	legacyDir := filepath.Join(e.base, "legacy")

	// legacyContainer makes a container's old overlay layers: upper with
	// a file the instance wrote, and work unless noWork.
	legacyContainer := func(t *testing.T, name string, noWork bool) LegacyRoot {
		dir := filepath.Join(legacyDir, name)
		l := LegacyRoot{Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work")}
		if err := os.MkdirAll(l.Upper, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(l.Upper, int(testMap.HostID), int(testMap.HostID)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l.Upper, "mine"), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		if !noWork {
			if err := os.Mkdir(l.Work, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		return l
	}
	legacyVM := func(t *testing.T, name string) LegacyRoot {
		dir := filepath.Join(legacyDir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		l := LegacyRoot{Disk: filepath.Join(dir, "root.qcow2")}
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", l.Disk, "40M").CombinedOutput(); err != nil {
			t.Fatalf("qemu-img create: %v: %s", err, out)
		}
		return l
	}
	tests := []struct {
		name   string
		vm     bool
		pool   string
		legacy func(t *testing.T, name string) LegacyRoot
		// fails says what a refused adoption says; the legacy files stay.
		fails []string
		check func(t *testing.T, l LegacyRoot, req RootRequest)
	}{
		{
			name: "container", pool: "p",
			legacy: func(t *testing.T, name string) LegacyRoot { return legacyContainer(t, name, false) },
			check: func(t *testing.T, l LegacyRoot, req RootRequest) {
				checkAdoptedContainer(t, e, req, req.Name)
			},
		},
		{
			name: "container never given a work dir", pool: "p",
			legacy: func(t *testing.T, name string) LegacyRoot { return legacyContainer(t, name, true) },
			check: func(t *testing.T, l LegacyRoot, req RootRequest) {
				checkAdoptedContainer(t, e, req, req.Name)
			},
		},
		{
			name: "container that never started", pool: "p",
			legacy: func(t *testing.T, name string) LegacyRoot {
				dir := filepath.Join(legacyDir, name)
				return LegacyRoot{Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work")}
			},
			check: func(t *testing.T, l LegacyRoot, req RootRequest) {
				checkAdoptedContainer(t, e, req, "")
			},
		},
		{
			name: "VM", vm: true, pool: "p", legacy: legacyVM,
			check: func(t *testing.T, l LegacyRoot, req RootRequest) {
				r, err := e.m.Root(e.ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(e.path("p", "virtual-machine", req.RuntimeID, "block"), drivers.BlockFile)
				if r.Disk == nil || r.Disk.Path != path || r.Disk.Format != "qcow2" || !r.Firmware {
					t.Fatalf("root disk %+v firmware %v", r.Disk, r.Firmware)
				}
				if info := diskInfo(t, path, "qcow2"); info.VirtualSize != 40<<20 || info.Backing != "" {
					t.Errorf("adopted disk %+v: want the legacy file itself", info)
				}
			},
		},
		{
			name: "VM that never started", vm: true, pool: "p",
			legacy: func(t *testing.T, name string) LegacyRoot {
				return LegacyRoot{Disk: filepath.Join(legacyDir, name, "root.qcow2")}
			},
			check: func(t *testing.T, l LegacyRoot, req RootRequest) {
				r, err := e.m.Root(e.ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if r.Disk == nil || r.Disk.Format != "qcow2" {
					t.Fatalf("root %+v", r)
				}
				base := filepath.Join(e.path("p", "image", diskImage, "block"), drivers.BlockFile)
				if info := diskInfo(t, r.Disk.Path, "qcow2"); info.Backing != base {
					t.Errorf("fresh root backed by %q, want the image volume", info.Backing)
				}
			},
		},
		{
			name: "files on another filesystem stay where they are", pool: "p", fails: []string{"cross-device"},
			legacy: func(t *testing.T, name string) LegacyRoot {
				dir := filepath.Join(legacyDir, name)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
				return legacyContainer(t, name, false)
			},
		},
		{
			name: "onto a btrfs pool", pool: "b", fails: []string{"only move onto a dir pool", `"b" is btrfs`},
			legacy: func(t *testing.T, name string) LegacyRoot { return legacyContainer(t, name, false) },
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pool == "b" && !btrfsOK {
				t.Skip(noBtrfs)
			}
			name := "i" + strconv.Itoa(i)
			req := RootRequest{InstanceID: int64(i + 1), RuntimeID: "rt" + name, Name: name, VM: tt.vm, Pool: tt.pool, Image: treeImage}
			if tt.vm {
				req.Image = diskImage
			} else {
				req.IDMap = &testMap
			}
			l := tt.legacy(t, name)
			before := e.onDisk(tt.pool)
			err := e.m.AdoptRoot(e.ctx, req, l)
			if tt.fails != nil {
				if err == nil {
					t.Fatal("adopted")
				}
				for _, w := range tt.fails {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if got := readFile(t, filepath.Join(l.Upper, "mine")); got != name {
					t.Errorf("legacy upper holds %q after a failed adoption", got)
				}
				if !exists(l.Work) {
					t.Error("a failed adoption removed the legacy work directory")
				}
				if got := e.onDisk(tt.pool); !slices.Equal(got, before) {
					t.Errorf("a failed adoption left %v (before %v)", got, before)
				}
				if ok, _ := e.m.HasRoot(e.ctx, req.InstanceID); ok {
					t.Error("a failed adoption left a record")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{l.Upper, l.Work, l.Disk} {
				if p != "" && exists(p) {
					t.Errorf("legacy %s left behind", p)
				}
			}
			rec, err := e.st.GetInstanceVolume(e.ctx, req.InstanceID)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := rec.Config[keyAdopting]; ok || rec.State != "created" || rec.Config[keyImage] != req.Image {
				t.Errorf("record %s %v", rec.State, rec.Config)
			}
			tt.check(t, l, req)
		})
	}
	// Every adopted root survives the next start's reconciliation.
	e.restart()
	for i := range 5 {
		if ok, err := e.m.HasRoot(e.ctx, int64(i+1)); !ok || err != nil {
			t.Errorf("root %d after restart: %v %v", i+1, ok, err)
		}
	}
}

// checkAdoptedContainer: the root is an overlay of the image under the
// moved upper, with the file the instance wrote (mine, "" for none).
func checkAdoptedContainer(t *testing.T, e *env, req RootRequest, mine string) {
	t.Helper()
	vol := e.path(req.Pool, "container", req.RuntimeID, "filesystem")
	r, err := e.m.Root(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	opts := overlayOptions(t, r)
	if opts["upperdir"] != filepath.Join(vol, "upper") || opts["workdir"] != filepath.Join(vol, "work") {
		t.Errorf("overlay %v not on the volume %s", opts, vol)
	}
	dir := mountRoot(t, e, r, req.Name)
	defer unix.Unmount(dir, 0)
	if got := readFile(t, filepath.Join(dir, "etc/hostname")); got != treeImage+"\n" {
		t.Errorf("etc/hostname %q", got)
	}
	got, err := os.ReadFile(filepath.Join(dir, "mine"))
	switch {
	case mine == "" && !os.IsNotExist(err):
		t.Errorf("a fresh root holds mine: %q %v", got, err)
	case mine != "" && string(got) != mine:
		t.Errorf("the instance's own file reads %q %v, want %q", got, err, mine)
	}
	if o := owner(t, dir); o != int(testMap.HostID) {
		t.Errorf("root owned by %d", o)
	}
}

// TestAdoptKilled: a daemon killed during an adoption loses nothing: the
// next start removes a volume the files had not moved into yet (they are
// still where they were, and are adopted again) and keeps one they had.
func TestAdoptKilled(t *testing.T) {
	needTools(t, "qemu-img")
	tests := []struct {
		name  string
		vm    bool
		moved bool
	}{
		{"container killed before the move", false, false},
		{"container killed after the move", false, true},
		{"VM killed before the move", true, false},
		{"VM killed after the move", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.images.addDisk(diskImage)
			e.dirPool("p", nil)
			p, err := e.m.get("p")
			if err != nil {
				t.Fatal(err)
			}
			legacy := filepath.Join(e.base, "legacy")
			if err := os.MkdirAll(legacy, 0o755); err != nil {
				t.Fatal(err)
			}
			req := RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", VM: tt.vm, Image: treeImage, IDMap: &testMap}
			l := LegacyRoot{Upper: filepath.Join(legacy, "upper"), Work: filepath.Join(legacy, "work")}
			if tt.vm {
				req.Image, req.IDMap = diskImage, nil
				l = LegacyRoot{Disk: filepath.Join(legacy, "root.qcow2")}
				if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", l.Disk, "40M").CombinedOutput(); err != nil {
					t.Fatalf("qemu-img create: %v: %s", err, out)
				}
			} else {
				if err := os.MkdirAll(l.Upper, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(l.Upper, "mine"), []byte("only copy"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// The state AdoptRoot is in when killed: its pending record
			// and the volume made empty, then (moved) the files in it.
			rec := rootRecord(e.ctx, req)
			rec.Config[keyAdopting] = "true"
			if err := e.st.CreateStorageVolume(e.ctx, &rec); err != nil {
				t.Fatal(err)
			}
			dv := diskVolume(rec)
			if err := p.drv.CreateVolume(e.ctx, dv, 0, false, func(dir string) error {
				if tt.vm {
					return nil
				}
				return os.Mkdir(filepath.Join(dir, "work"), 0o700)
			}); err != nil {
				t.Fatal(err)
			}
			if tt.moved {
				from := l.Upper
				if tt.vm {
					from = l.Disk
				}
				if err := os.Rename(from, adoptedPath(p, dv)); err != nil {
					t.Fatal(err)
				}
			}

			e.restart()

			has, err := e.m.HasRoot(e.ctx, 1)
			if err != nil || has != tt.moved {
				t.Fatalf("HasRoot after restart %v %v, want %v", has, err, tt.moved)
			}
			if !tt.moved {
				if got := e.onDisk("p"); len(got) != 0 {
					t.Errorf("the unmoved adoption's volume is left: %v", got)
				}
				// The daemon adopts it again, from where the files are.
				if err := e.m.AdoptRoot(e.ctx, req, l); err != nil {
					t.Fatal(err)
				}
			}
			if tt.vm {
				r, err := e.m.Root(e.ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if info := diskInfo(t, r.Disk.Path, "qcow2"); info.VirtualSize != 40<<20 {
					t.Errorf("adopted disk %+v, want the legacy 40MiB qcow2", info)
				}
				return
			}
			checkAdoptedContainer(t, e, req, "only copy")
		})
	}
}

package storage

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
)

// overlayOptions returns a root's single overlay mount's options by key.
func overlayOptions(t *testing.T, r driver.Root) map[string]string {
	t.Helper()
	if len(r.Mounts) != 1 || r.Mounts[0].Type != "overlay" || r.Disk != nil {
		t.Fatalf("root %+v: want one overlay mount", r)
	}
	out := map[string]string{}
	for _, o := range r.Mounts[0].Options {
		k, v, _ := strings.Cut(o, "=")
		out[k] = v
	}
	return out
}

// mountRoot mounts a container's root as the runtime would and returns
// where; it is unmounted when the test ends.
func mountRoot(t *testing.T, e *env, r driver.Root, at string) string {
	t.Helper()
	dir := filepath.Join(e.base, "mnt", at)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := r.Mounts[0]
	var err error
	if m.Type == "bind" {
		err = unix.Mount(m.Source, dir, "", unix.MS_BIND, "")
	} else {
		err = unix.Mount(m.Source, dir, m.Type, 0, strings.Join(m.Options, ","))
	}
	if err != nil {
		t.Fatalf("mount root %+v: %v", m, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, 0) })
	return dir
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestContainerRootOnDir: an unprivileged container's root on a dir pool
// is its image's shifted tree under an upper owned by the map's root; a
// change of map gives another image volume, made once.
func TestContainerRootOnDir(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", nil)
	req := RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap}
	if err := e.m.CreateRoot(e.ctx, req); err != nil {
		t.Fatal(err)
	}
	vol := e.path("p", "container", "r1", "filesystem")
	shifted := e.path("p", "image", treeName(treeImage, &testMap), "filesystem")
	plain := e.path("p", "image", treeImage, "filesystem")

	steps := []struct {
		name  string
		idmap *driver.IDMap
		lower string
		root  int // the merged root's owner
		// unpacks are UnpackTree calls so far, shifted and not.
		unpacksShifted, unpacksPlain int
	}{
		{"unprivileged", &testMap, shifted, int(testMap.HostID), 1, 0},
		{"made privileged", nil, plain, 0, 1, 1},
		{"unprivileged again", &testMap, shifted, int(testMap.HostID), 1, 1},
		{"privileged again", nil, plain, 0, 1, 1},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r, err := e.m.Root(e.ctx, RootRequest{InstanceID: 1, Name: "c1", IDMap: s.idmap})
			if err != nil {
				t.Fatal(err)
			}
			opts := overlayOptions(t, r)
			want := map[string]string{"lowerdir": s.lower, "upperdir": filepath.Join(vol, "upper"), "workdir": filepath.Join(vol, "work")}
			if !mapsEqual(opts, want) {
				t.Errorf("overlay %v, want %v", opts, want)
			}
			if o := owner(t, filepath.Join(vol, "upper")); o != s.root {
				t.Errorf("upper owned by %d, want %d", o, s.root)
			}
			if o := owner(t, filepath.Join(s.lower, "home/user/file")); o != s.root+1000 {
				t.Errorf("image file owned by %d, want %d (uid 1000 shifted)", o, s.root+1000)
			}
			if got := [2]int{e.images.calls(treeImage, &testMap), e.images.calls(treeImage, nil)}; got != [2]int{s.unpacksShifted, s.unpacksPlain} {
				t.Errorf("UnpackTree calls (shifted, plain) %v, want %d, %d", got, s.unpacksShifted, s.unpacksPlain)
			}
			// The runtime can mount it: the image's files under the
			// instance's own changes, the root owned by its root.
			dir := mountRoot(t, e, r, strconv.Itoa(i))
			if got := readFile(t, filepath.Join(dir, "etc/hostname")); got != treeImage+"\n" {
				t.Errorf("etc/hostname %q", got)
			}
			if o := owner(t, dir); o != s.root {
				t.Errorf("mounted root owned by %d, want %d", o, s.root)
			}
			if err := os.WriteFile(filepath.Join(dir, "step"), []byte(s.name), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := unix.Unmount(dir, 0); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(vol, "upper", "step")); got != s.name {
				t.Errorf("the write went to %q, not the volume's upper", got)
			}
		})
	}
	want := []string{
		"container/c1/r1 created",
		"image/" + treeImage + "/" + treeImage + " created",
		"image/" + treeImage + "/" + treeName(treeImage, &testMap) + " created",
	}
	if got := e.records("p"); !slices.Equal(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
}

// TestCreateRootRefused: a root that cannot be made leaves nothing.
func TestCreateRootRefused(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", nil)
	e.images.addTree("broken")
	e.images.fail["broken"] = errors.New("blob is truncated")
	tests := []struct {
		name string
		req  RootRequest
		kind error
		says []string
	}{
		{"size on dir", RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap, Size: 1 << 30},
			errdefs.ErrInvalidArgument, []string{"cannot limit a container's root"}},
		{"missing pool", RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "nope", Image: treeImage},
			errdefs.ErrNotFound, []string{`"nope"`}},
		{"image not in the catalogue", RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: "gone", IDMap: &testMap},
			errdefs.ErrNotFound, []string{"gone"}},
		{"unpack fails half way", RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: "broken", IDMap: &testMap},
			nil, []string{"blob is truncated"}},
		{"bad runtime id", RootRequest{InstanceID: 1, RuntimeID: "../r1", Name: "c1", Pool: "p", IDMap: &testMap},
			errdefs.ErrInvalidArgument, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.m.CreateRoot(e.ctx, tt.req)
			if err == nil {
				t.Fatal("made")
			}
			if tt.kind != nil {
				wantErr(t, "create root", err, tt.kind, tt.says...)
			}
			for _, w := range tt.says {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if got := e.records("p"); len(got) != 0 {
				t.Errorf("records left: %v", got)
			}
			if got := e.onDisk("p"); len(got) != 0 {
				t.Errorf("left on disk: %v", got)
			}
			if ok, err := e.m.HasRoot(e.ctx, 1); ok || err != nil {
				t.Errorf("HasRoot after a refused create: %v %v", ok, err)
			}
		})
	}
	// The same instance is made fine afterwards.
	if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap}); err != nil {
		t.Fatal(err)
	}
	err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 2, RuntimeID: "r2", Name: "c1", Pool: "p", IDMap: &testMap})
	wantErr(t, "a second root of the same name", err, errdefs.ErrConflict)
	err = e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r3", Name: "c3", Pool: "p", IDMap: &testMap})
	wantErr(t, "a second root of one instance", err, errdefs.ErrConflict)
	if got := e.onDisk("p"); !slices.Equal(got, []string{"containers/r1", "images/" + treeName(treeImage, &testMap)}) {
		t.Errorf("on disk: %v", got)
	}
}

// TestConcurrentCreateRoot: two instances of one image made at once share
// one unpack and one image volume.
func TestConcurrentCreateRoot(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", nil)
	gate := make(chan struct{})
	e.images.mu.Lock()
	e.images.gate, e.images.entered = gate, make(chan string, 2)
	e.images.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := int64(i + 1)
			errs[i] = e.m.CreateRoot(e.ctx, RootRequest{InstanceID: id, RuntimeID: "r" + strconv.Itoa(i+1),
				Name: "c" + strconv.Itoa(i+1), Pool: "p", Image: treeImage, IDMap: &testMap})
		}()
	}
	<-e.images.entered
	// The other caller waits for the image volume: two hold its lock.
	key := "image/p/" + treeName(treeImage, &testMap) + "/filesystem"
	waitFor(t, "the second CreateRoot to wait for the image volume", func() bool {
		e.m.locks.mu.Lock()
		defer e.m.locks.mu.Unlock()
		l := e.m.locks.m[key]
		return l != nil && l.refs == 2
	})
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("root %d: %v", i+1, err)
		}
	}
	if n := e.images.calls(treeImage, &testMap); n != 1 {
		t.Errorf("UnpackTree called %d times, want once", n)
	}
	want := []string{
		"container/c1/r1 created", "container/c2/r2 created",
		"image/" + treeImage + "/" + treeName(treeImage, &testMap) + " created",
	}
	if got := e.records("p"); !slices.Equal(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
	for _, id := range []int64{1, 2} {
		r, err := e.m.Root(e.ctx, RootRequest{InstanceID: id, IDMap: &testMap})
		if err != nil {
			t.Fatal(err)
		}
		if got := overlayOptions(t, r)["lowerdir"]; got != e.path("p", "image", treeName(treeImage, &testMap), "filesystem") {
			t.Errorf("root %d over %s", id, got)
		}
	}
}

// qemuInfo is what qemu-img says of a disk file.
type qemuInfo struct {
	VirtualSize int64  `json:"virtual-size"`
	Format      string `json:"format"`
	Backing     string `json:"backing-filename"`
}

func diskInfo(t *testing.T, path, format string) qemuInfo {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "--output=json", "-U", "-f", format, path).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	var info qemuInfo
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// isExt4 says whether a raw disk holds an ext4 filesystem (its
// superblock's magic).
func isExt4(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 2)
	if _, err := f.ReadAt(b, 1024+0x38); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint16(b) == 0xEF53
}

// TestVMRoot: a VM's root is a qcow2 overlay of its image's raw disk on
// dir, a raw clone grown to its size on btrfs; a tree image becomes an
// ext4 disk first.
func TestVMRoot(t *testing.T) {
	needTools(t, "qemu-img", "mkfs.ext4")
	e := newEnv(t)
	e.images.addDisk(diskImage)
	e.dirPool("d", nil)
	btrfsOK, noBtrfs := hasBtrfs()
	if btrfsOK {
		e.btrfsPool("b", nil)
	}
	tests := []struct {
		name  string
		btrfs bool
		image string
		size  int64
		kind  error
		says  []string
		// want: the disk's format, what the guest sees, boots by UEFI.
		format   string
		virtual  int64
		firmware bool
	}{
		{name: "disk image on dir", image: diskImage, format: "qcow2", virtual: diskImageSize, firmware: true},
		{name: "disk image on dir, grown", image: diskImage, size: 64 << 20, format: "qcow2", virtual: 64 << 20, firmware: true},
		{name: "tree image on dir", image: treeImage, format: "qcow2"},
		{name: "disk image on dir, below the image", image: diskImage, size: 16 << 20, kind: errdefs.ErrInvalidArgument, says: []string{"below"}},
		{name: "disk image on btrfs", btrfs: true, image: diskImage, format: "raw", virtual: diskImageSize, firmware: true},
		{name: "disk image on btrfs, grown", btrfs: true, image: diskImage, size: 64 << 20, format: "raw", virtual: 64 << 20, firmware: true},
		{name: "tree image on btrfs", btrfs: true, image: treeImage, format: "raw"},
		{name: "disk image on btrfs, below the image", btrfs: true, image: diskImage, size: 16 << 20, kind: errdefs.ErrInvalidArgument, says: []string{"below"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := "d"
			if tt.btrfs {
				if !btrfsOK {
					t.Skip(noBtrfs)
				}
				pool = "b"
			}
			id := int64(100 + i)
			rid := "vm" + strconv.Itoa(i)
			before := e.onDisk(pool)
			err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: id, RuntimeID: rid, Name: rid, VM: true, Pool: pool, Image: tt.image, Size: tt.size})
			wantErr(t, "create", err, tt.kind, tt.says...)
			if tt.kind != nil {
				// The image's volume may stay (it is a cache); the
				// instance's does not.
				for _, p := range e.onDisk(pool) {
					if !slices.Contains(before, p) && !strings.HasPrefix(p, "images/") {
						t.Errorf("a refused create left %s", p)
					}
				}
				if ok, _ := e.m.HasRoot(e.ctx, id); ok {
					t.Error("a refused create left a record")
				}
				return
			}
			if err != nil {
				t.FailNow()
			}
			r, err := e.m.Root(e.ctx, RootRequest{InstanceID: id, Name: rid, VM: true})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(e.path(pool, "virtual-machine", rid, "block"), drivers.BlockFile)
			if r.Disk == nil || r.Disk.Path != path || r.Disk.Format != tt.format || len(r.Mounts) != 0 {
				t.Fatalf("root %+v disk %+v, want %s at %s", r, r.Disk, tt.format, path)
			}
			if r.Firmware != tt.firmware {
				t.Errorf("firmware %v, want %v", r.Firmware, tt.firmware)
			}
			base := filepath.Join(e.path(pool, "image", tt.image, "block"), drivers.BlockFile)
			if tt.image == treeImage && !isExt4(t, base) {
				t.Errorf("the tree image's disk %s holds no ext4", base)
			}
			info := diskInfo(t, path, tt.format)
			if tt.virtual != 0 && info.VirtualSize != tt.virtual {
				t.Errorf("disk of %d bytes, want %d", info.VirtualSize, tt.virtual)
			}
			if tt.format == "qcow2" && info.Backing != base {
				t.Errorf("overlay backed by %q, want the image volume's %s", info.Backing, base)
			}
			if tt.format == "raw" && fileSize(t, path) != info.VirtualSize {
				t.Errorf("raw file of %d bytes for a %d byte disk", fileSize(t, path), info.VirtualSize)
			}
			v, err := e.m.Volume(e.ctx, pool, "virtual-machine", rid)
			if err != nil {
				t.Fatal(err)
			}
			if v.Config[keyFormat] != tt.format || v.ContentType != "block" || v.Config[keyImage] != tt.image {
				t.Errorf("volume %s %v", v.ContentType, v.Config)
			}
		})
	}
}

// TestResizeRoot: a container's root on dir cannot be limited; a VM's
// disk grows, never shrinks; grown only records what the runtime did.
func TestResizeRoot(t *testing.T) {
	needTools(t, "qemu-img")
	e := newEnv(t)
	e.images.addDisk(diskImage)
	e.dirPool("d", nil)
	btrfsOK, noBtrfs := hasBtrfs()
	if btrfsOK {
		e.btrfsPool("b", nil)
	}
	roots := []RootRequest{
		{InstanceID: 1, RuntimeID: "c", Name: "c", Pool: "d", Image: treeImage, IDMap: &testMap},
		{InstanceID: 2, RuntimeID: "vm", Name: "vm", VM: true, Pool: "d", Image: diskImage},
	}
	if btrfsOK {
		roots = append(roots,
			RootRequest{InstanceID: 3, RuntimeID: "bc", Name: "bc", Pool: "b", Image: treeImage, IDMap: &testMap},
			RootRequest{InstanceID: 4, RuntimeID: "bvm", Name: "bvm", VM: true, Pool: "b", Image: diskImage})
	}
	for _, r := range roots {
		if err := e.m.CreateRoot(e.ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	vmDisk := func(pool, rid string) string {
		return filepath.Join(e.path(pool, "virtual-machine", rid, "block"), drivers.BlockFile)
	}
	tests := []struct {
		name  string
		btrfs bool
		id    int64
		vm    bool
		size  int64
		grown bool
		kind  error
		says  []string
		// check reads what the resize did.
		check func(t *testing.T)
		// wantSize is the recorded size ("" none).
		wantSize string
	}{
		{name: "container on dir", id: 1, size: 1 << 30, kind: errdefs.ErrInvalidArgument, says: []string{"cannot limit a container's root"}},
		{name: "container on dir, no limit", id: 1, size: 0},
		{name: "VM on dir grows", id: 2, vm: true, size: 64 << 20, wantSize: "67108864", check: func(t *testing.T) {
			if n := diskInfo(t, vmDisk("d", "vm"), "qcow2").VirtualSize; n != 64<<20 {
				t.Errorf("qcow2 of %d bytes, want 64MiB", n)
			}
		}},
		{name: "VM on dir shrinks", id: 2, vm: true, size: 48 << 20, kind: errdefs.ErrInvalidArgument, says: []string{"only grow"}, wantSize: "67108864"},
		{name: "VM on dir grown by its runtime", id: 2, vm: true, size: 96 << 20, grown: true, wantSize: "100663296", check: func(t *testing.T) {
			if n := diskInfo(t, vmDisk("d", "vm"), "qcow2").VirtualSize; n != 64<<20 {
				t.Errorf("a grown=true resize changed the disk to %d bytes", n)
			}
		}},
		{name: "VM size 0 keeps the disk", id: 2, vm: true, size: 0, check: func(t *testing.T) {
			if n := diskInfo(t, vmDisk("d", "vm"), "qcow2").VirtualSize; n != 64<<20 {
				t.Errorf("disk of %d bytes after size 0", n)
			}
		}},
		{name: "container on btrfs", btrfs: true, id: 3, size: 64 << 20, wantSize: "67108864", check: func(t *testing.T) {
			st, err := e.m.VolumeState(e.ctx, "b", "container", "bc")
			if err != nil || st.Usage.Total != 64<<20 {
				t.Errorf("container root limit %+v %v, want 64MiB", st, err)
			}
		}},
		{name: "container on btrfs, no limit", btrfs: true, id: 3, size: 0, check: func(t *testing.T) {
			st, err := e.m.VolumeState(e.ctx, "b", "container", "bc")
			if err != nil || st.Usage.Total != 0 {
				t.Errorf("container root limit %+v %v, want none", st, err)
			}
		}},
		{name: "VM on btrfs grows", btrfs: true, id: 4, vm: true, size: 64 << 20, wantSize: "67108864", check: func(t *testing.T) {
			if n := fileSize(t, vmDisk("b", "bvm")); n != 64<<20 {
				t.Errorf("raw disk of %d bytes, want 64MiB", n)
			}
		}},
		{name: "VM on btrfs shrinks", btrfs: true, id: 4, vm: true, size: 8 << 20, kind: errdefs.ErrInvalidArgument, wantSize: "67108864"},
		{name: "no such instance", id: 99, size: 0, kind: errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.btrfs && !btrfsOK {
				t.Skip(noBtrfs)
			}
			err := e.m.ResizeRoot(e.ctx, tt.id, tt.vm, tt.size, tt.grown)
			wantErr(t, "resize", err, tt.kind, tt.says...)
			if tt.check != nil {
				tt.check(t)
			}
			if tt.id == 99 {
				return
			}
			rec, err := e.st.GetInstanceVolume(e.ctx, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Config["size"] != tt.wantSize {
				t.Errorf("recorded size %q, want %q", rec.Config["size"], tt.wantSize)
			}
		})
	}
}

// TestDeleteRootAndImages: a root's delete removes its volume; an image's
// volumes go once the image left the catalogue and no dir root is
// layered over them, at once on btrfs where roots are clones.
func TestDeleteRootAndImages(t *testing.T) {
	needTools(t, "qemu-img")
	for _, drv := range []string{"dir", "btrfs"} {
		t.Run(drv, func(t *testing.T) {
			e := newEnv(t)
			e.images.addDisk(diskImage)
			if drv == "btrfs" {
				e.btrfsPool("p", nil)
			} else {
				e.dirPool("p", nil)
			}
			for _, r := range []RootRequest{
				{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap},
				{InstanceID: 2, RuntimeID: "r2", Name: "c2", Pool: "p", Image: treeImage, IDMap: &testMap},
				{InstanceID: 3, RuntimeID: "r3", Name: "v3", VM: true, Pool: "p", Image: diskImage},
			} {
				if err := e.m.CreateRoot(e.ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			tree := "images/" + treeName(treeImage, &testMap)
			disk := "images/" + diskImage + ".block"
			// layered: the image volumes stay while a root reads them.
			layered := drv == "dir"
			steps := []struct {
				name string
				do   func() error
				want []string // on disk after
			}{
				{"delete one root", func() error { return e.m.DeleteRoot(e.ctx, 1) },
					[]string{"containers/r2", tree, disk, "virtual-machines/r3.block"}},
				{"images leave the catalogue", func() error {
					e.images.remove(treeImage)
					e.images.remove(diskImage)
					e.m.ImageDeleted(e.ctx, treeImage)
					e.m.ImageDeleted(e.ctx, diskImage)
					return nil
				}, map[bool][]string{
					true:  {"containers/r2", tree, disk, "virtual-machines/r3.block"},
					false: {"containers/r2", "virtual-machines/r3.block"},
				}[layered]},
				{"delete the last container root", func() error { return e.m.DeleteRoot(e.ctx, 2) },
					map[bool][]string{
						true:  {disk, "virtual-machines/r3.block"},
						false: {"virtual-machines/r3.block"},
					}[layered]},
				{"delete the VM root", func() error { return e.m.DeleteRoot(e.ctx, 3) }, []string{}},
				{"delete a root again", func() error { return e.m.DeleteRoot(e.ctx, 3) }, []string{}},
			}
			for _, s := range steps {
				if err := s.do(); err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				if got := e.onDisk("p"); !slices.Equal(got, s.want) {
					t.Errorf("%s: on disk %q, want %q", s.name, got, s.want)
				}
				if s.name == "images leave the catalogue" {
					// What is left of the instances still works.
					r, err := e.m.Root(e.ctx, RootRequest{InstanceID: 2, Name: "c2", IDMap: &testMap})
					if err != nil {
						t.Fatalf("root after the image went: %v", err)
					}
					dir := mountRoot(t, e, r, "c2")
					if got := readFile(t, filepath.Join(dir, "etc/hostname")); got != treeImage+"\n" {
						t.Errorf("etc/hostname %q after the image went", got)
					}
					if err := unix.Unmount(dir, 0); err != nil {
						t.Fatal(err)
					}
					if layered {
						// The overlay needs its image volume: Root must
						// not unpack it again from a catalogue without it.
						if n := e.images.calls(treeImage, &testMap); n != 1 {
							t.Errorf("UnpackTree called %d times", n)
						}
					}
				}
			}
			if got := e.records("p"); len(got) != 0 {
				t.Errorf("records left: %v", got)
			}
		})
	}
}

// TestBtrfsRootIDMapChange: a btrfs root is a clone of a tree shifted for
// one map: started with another it is refused, clearly.
func TestBtrfsRootIDMapChange(t *testing.T) {
	e := newEnv(t)
	e.btrfsPool("b", nil)
	if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "b", Image: treeImage, IDMap: &testMap, Size: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	vol := e.path("b", "container", "r1", "filesystem")
	tests := []struct {
		name  string
		idmap *driver.IDMap
		kind  error
		says  []string
	}{
		{"same map", &testMap, nil, nil},
		{"privileged", nil, errdefs.ErrInvalidArgument, []string{"c1", `"200000:65536"`, `""`, "security.privileged"}},
		{"another map", &otherMap, errdefs.ErrInvalidArgument, []string{`"300000:65536"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.m.Root(e.ctx, RootRequest{InstanceID: 1, Name: "c1", IDMap: tt.idmap})
			wantErr(t, "root", err, tt.kind, tt.says...)
			if err != nil {
				return
			}
			if len(r.Mounts) != 1 || r.Mounts[0].Type != "bind" || r.Mounts[0].Source != vol {
				t.Fatalf("root %+v, want a bind of %s", r, vol)
			}
			if o := owner(t, filepath.Join(vol, "home/user/file")); o != int(testMap.HostID)+1000 {
				t.Errorf("clone's file owned by %d", o)
			}
			st, err := e.m.VolumeState(e.ctx, "b", "container", "c1")
			if err != nil || st.Usage.Total != 64<<20 {
				t.Errorf("root's quota %+v %v, want 64MiB", st, err)
			}
		})
	}
}

// TestRootRecord: HasRoot, RenameRoot, the pool's device.
func TestRootRecord(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", nil)
	if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", IDMap: &testMap}); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.m.HasRoot(e.ctx, 1); !ok || err != nil {
		t.Errorf("HasRoot(1) = %v %v", ok, err)
	}
	if ok, err := e.m.HasRoot(e.ctx, 2); ok || err != nil {
		t.Errorf("HasRoot(2) = %v %v", ok, err)
	}
	// An empty root is its upper, bind-mounted, owned by the map's root.
	r, err := e.m.Root(e.ctx, RootRequest{InstanceID: 1, IDMap: &testMap})
	if err != nil {
		t.Fatal(err)
	}
	upper := filepath.Join(e.path("p", "container", "r1", "filesystem"), "upper")
	if len(r.Mounts) != 1 || r.Mounts[0].Type != "bind" || r.Mounts[0].Source != upper || owner(t, upper) != int(testMap.HostID) {
		t.Errorf("empty root %+v", r)
	}
	if err := e.m.RenameRoot(e.ctx, 1, "c1b"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Volume(e.ctx, "p", "container", "c1b"); err != nil {
		t.Errorf("renamed root: %v", err)
	}
	if !exists(e.path("p", "container", "r1", "filesystem")) {
		t.Error("a rename moved the volume on disk")
	}
	if err := e.m.RenameRoot(e.ctx, 2, "x"); err != nil {
		t.Errorf("rename of a root that does not exist: %v", err)
	}
	_, err = e.m.Root(e.ctx, RootRequest{InstanceID: 2})
	wantErr(t, "root of an instance without one", err, errdefs.ErrNotFound)
	ma, mi, err := e.m.RootDevice(e.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	pa, pi, err := e.m.PoolDevice("p")
	if err != nil || pa != ma || pi != mi {
		t.Errorf("pool device %d:%d %v, root device %d:%d", pa, pi, err, ma, mi)
	}
	var st unix.Stat_t
	if err := unix.Stat(e.poolsDir(), &st); err != nil {
		t.Fatal(err)
	}
	if unix.Major(st.Dev) != ma || unix.Minor(st.Dev) != mi {
		t.Errorf("root device %d:%d, the data dir is on %d:%d", ma, mi, unix.Major(st.Dev), unix.Minor(st.Dev))
	}
	_, _, err = e.m.PoolDevice("nope")
	wantErr(t, "device of a missing pool", err, errdefs.ErrNotFound)
}

// TestEmptyVMRoot is a VM made from no image (a VM manager's new EFI
// VM): a sparse raw disk of the asked size that boots by firmware; no
// size is refused, leaving nothing.
func TestEmptyVMRoot(t *testing.T) {
	e := newEnv(t)
	e.dirPool("d", nil)
	if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 7, RuntimeID: "nosize", Name: "nosize", VM: true, Pool: "d"}); err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("empty VM root without a size: %v, want invalid", err)
	}
	req := RootRequest{InstanceID: 8, RuntimeID: "efi", Name: "efi", VM: true, Pool: "d", Size: 32 << 20}
	if err := e.m.CreateRoot(e.ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := fileSize(t, filepath.Join(e.path("d", "virtual-machine", "efi", "block"), drivers.BlockFile)); n != 32<<20 {
		t.Fatalf("empty VM disk: %d bytes, want %d", n, 32<<20)
	}
	root, err := e.m.Root(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !root.Firmware || root.Disk == nil || root.Disk.Format != "raw" {
		t.Fatalf("empty VM root: %+v, want a raw disk booted by firmware", root)
	}
}

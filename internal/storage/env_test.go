package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
	"github.com/hangar-dev/hangar/internal/store"
)

// The manager's tests run on the real pieces under it: a store on a file,
// the dir driver on directories in a t.TempDir, the btrfs driver on a
// loop-backed pool, qemu-img and mkfs.ext4 for VM disks. Only the image
// catalogue (fakeImages) and who uses a pool (fakeUsers) are fakes.

// testMap and otherMap are id maps unprivileged containers run with.
var (
	testMap  = driver.IDMap{HostID: 200000, Size: 65536}
	otherMap = driver.IDMap{HostID: 300000, Size: 65536}
)

// treeImage and diskImage are the fingerprints fakeImages knows by
// default: a root filesystem and a VM disk image.
const (
	treeImage = "1111111111111111111111111111111111111111111111111111111111111111"
	diskImage = "2222222222222222222222222222222222222222222222222222222222222222"
	// diskImageSize is the virtual size of diskImage's disk.
	diskImageSize = 32 << 20
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: volumes are chowned to id maps and pools mount filesystems")
	}
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

func needBtrfs(t *testing.T) {
	t.Helper()
	needTools(t, "mkfs.btrfs", "blkid")
	if _, err := os.Stat("/sys/fs/btrfs"); err != nil {
		t.Skip("this kernel has no btrfs (no /sys/fs/btrfs)")
	}
}

// env is one daemon's storage: a data dir, a store, the fakes, and the
// manager of the current "run" (restart makes a new one on the same
// store and disk, as a daemon restart does).
type env struct {
	t      *testing.T
	ctx    context.Context
	base   string
	st     *store.Store
	images *fakeImages
	users  *fakeUsers
	events *recorder
	m      *Manager
}

// newEnv starts a manager on a fresh data dir: the pool "default" (dir)
// is made by Start.
func newEnv(t *testing.T) *env {
	t.Helper()
	needRoot(t)
	base := t.TempDir()
	t.Cleanup(func() { forceClean(base) })
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(base, "hangar.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, ctx: ctx, base: base, st: st, users: &fakeUsers{m: map[string][]string{}}, events: &recorder{}}
	e.images = newFakeImages(t, filepath.Join(base, "images"))
	if created := e.restart(); !created {
		t.Fatal("the first Start did not make the default pool")
	}
	return e
}

// poolsDir is DataDir/storage-pools.
func (e *env) poolsDir() string { return filepath.Join(e.base, "data", "storage-pools") }

// restart gives the env a new manager on the same store and disk and
// starts it, as a daemon restart does.
func (e *env) restart() (created bool) {
	e.t.Helper()
	e.m = New(Config{
		Store:  e.st,
		Images: e.images,
		Dir:    e.poolsDir(),
		Users:  e.users.fn,
		IDMap:  testMap,
		Events: e.events,
		Log:    slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	created, err := e.m.Start(e.ctx)
	if err != nil {
		e.t.Fatalf("start: %v", err)
	}
	return created
}

// dirPool makes a dir pool.
func (e *env) dirPool(name string, cfg map[string]string) {
	e.t.Helper()
	if err := e.m.CreatePool(e.ctx, CreatePoolRequest{Name: name, Driver: "dir", Config: cfg}); err != nil {
		e.t.Fatalf("create dir pool %s: %v", name, err)
	}
}

// btrfsPool makes a btrfs pool on a loop file under the data dir, as a
// pool with no source is made; it skips the test without btrfs.
func (e *env) btrfsPool(name string, cfg map[string]string) {
	e.t.Helper()
	needBtrfs(e.t)
	if cfg == nil {
		cfg = map[string]string{}
	}
	if cfg["size"] == "" {
		cfg["size"] = "256MiB"
	}
	if err := e.m.CreatePool(e.ctx, CreatePoolRequest{Name: name, Driver: "btrfs", Config: cfg}); err != nil {
		e.t.Fatalf("create btrfs pool %s: %v", name, err)
	}
}

// path is a volume's directory on pool.
func (e *env) path(pool string, typ drivers.VolumeType, name string, content drivers.ContentType) string {
	switch content {
	case drivers.ContentBlock:
		name += ".block"
	case drivers.ContentISO:
		name += "@iso"
	}
	dirs := map[drivers.VolumeType]string{drivers.TypeImage: "images", drivers.TypeContainer: "containers",
		drivers.TypeVM: "virtual-machines", drivers.TypeCustom: "custom"}
	return filepath.Join(e.poolsDir(), pool, dirs[typ], name)
}

// records lists the volume records on pool as "type/name/disk_name state".
func (e *env) records(pool string) []string {
	e.t.Helper()
	vols, err := e.st.ListStorageVolumes(e.ctx, pool)
	if err != nil {
		e.t.Fatal(err)
	}
	out := []string{}
	for _, v := range vols {
		out = append(out, fmt.Sprintf("%s/%s/%s %s", v.Type, v.Name, v.DiskName, v.State))
	}
	sort.Strings(out)
	return out
}

// onDisk lists what is in a pool's type directories, hidden entries too.
func (e *env) onDisk(pool string) []string {
	e.t.Helper()
	out := []string{}
	for _, d := range []string{"images", "containers", "virtual-machines", "custom"} {
		ents, err := os.ReadDir(filepath.Join(e.poolsDir(), pool, d))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		for _, de := range ents {
			out = append(out, d+"/"+de.Name())
		}
	}
	sort.Strings(out)
	return out
}

// fakeImages is the image catalogue: a tree image's UnpackTree writes a
// small tree (ids shifted by the map when given), a disk image's Disk is
// a qcow2 file made by qemu-img. A removed image is NotFound, as the
// catalogue answers once an image is deleted.
type fakeImages struct {
	t   *testing.T
	dir string

	mu      sync.Mutex
	disks   map[string]string // fp -> qcow2 file, for disk images
	trees   map[string]bool   // fp -> a tree image
	unpacks map[string]int    // "fp@map" -> UnpackTree calls
	// gate, when set, holds UnpackTree until it is closed; entered gets
	// a value as each call begins.
	gate    chan struct{}
	entered chan string
	// fail makes UnpackTree of that image fail after writing a file.
	fail map[string]error
}

func newFakeImages(t *testing.T, dir string) *fakeImages {
	f := &fakeImages{t: t, dir: dir, disks: map[string]string{}, trees: map[string]bool{treeImage: true},
		unpacks: map[string]int{}, fail: map[string]error{}}
	return f
}

// addDisk makes fp a disk image: a qcow2 file of diskImageSize.
func (f *fakeImages) addDisk(fp string) {
	f.t.Helper()
	needTools(f.t, "qemu-img")
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		f.t.Fatal(err)
	}
	path := filepath.Join(f.dir, fp+".qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", path, strconv.Itoa(diskImageSize)).CombinedOutput(); err != nil {
		f.t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	f.mu.Lock()
	f.disks[fp] = path
	f.mu.Unlock()
}

func (f *fakeImages) addTree(fp string) {
	f.mu.Lock()
	f.trees[fp] = true
	f.mu.Unlock()
}

// remove deletes an image from the catalogue.
func (f *fakeImages) remove(fp string) {
	f.mu.Lock()
	delete(f.trees, fp)
	delete(f.disks, fp)
	f.mu.Unlock()
}

func (f *fakeImages) calls(fp string, m *driver.IDMap) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unpacks[treeName(fp, m)]
}

// UnpackTree writes etc/hostname (the fingerprint) and home/user/file
// (owned by uid 1000), every owner shifted by idmap.
func (f *fakeImages) UnpackTree(ctx context.Context, fp string, idmap *driver.IDMap, dir string) error {
	f.mu.Lock()
	tree, disk := f.trees[fp], f.disks[fp] != ""
	f.unpacks[treeName(fp, idmap)]++
	gate, entered, fail := f.gate, f.entered, f.fail[fp]
	f.mu.Unlock()
	switch {
	case disk:
		return errdefs.Invalid("image %s is a virtual-machine disk image", fp)
	case !tree:
		return errdefs.NotFound("image %s not found", fp)
	}
	if entered != nil {
		entered <- fp
	}
	if gate != nil {
		<-gate
	}
	shift := 0
	if idmap != nil {
		shift = int(idmap.HostID)
	}
	files := []struct {
		path    string
		dir     bool
		content string
		uid     int
	}{
		{path: ".", dir: true},
		{path: "etc", dir: true},
		{path: "etc/hostname", content: fp + "\n"},
		{path: "home", dir: true},
		{path: "home/user", dir: true, uid: 1000},
		{path: "home/user/file", content: "user's\n", uid: 1000},
	}
	for _, fl := range files {
		p := filepath.Join(dir, fl.path)
		var err error
		if fl.dir {
			err = os.MkdirAll(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte(fl.content), 0o644)
		}
		if err != nil {
			return err
		}
		if err := os.Lchown(p, fl.uid+shift, fl.uid+shift); err != nil {
			return err
		}
	}
	return fail
}

func (f *fakeImages) Disk(ctx context.Context, fp string) (string, string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.disks[fp]; p != "" {
		return p, "qcow2", true, nil
	}
	if f.trees[fp] {
		return "", "", false, nil
	}
	return "", "", false, errdefs.NotFound("image %s not found", fp)
}

// fakeUsers answers Users from a map the test sets: key "pool/" for the
// pool, "pool/volume" for a custom volume.
type fakeUsers struct {
	mu sync.Mutex
	m  map[string][]string
}

func (u *fakeUsers) set(pool, volume string, users ...string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(users) == 0 {
		delete(u.m, pool+"/"+volume)
		return
	}
	u.m[pool+"/"+volume] = users
}

func (u *fakeUsers) fn(_ context.Context, pool, volume string) ([]string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.m[pool+"/"+volume]...), nil
}

// recorder is an Emitter keeping "action kind name" of every event.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) Lifecycle(_ context.Context, action string, e event.Entity, _ map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, action+" "+e.Kind+" "+e.Name)
}

// take returns the events since the last take.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

// wantErr checks err is of kind (nil: no error) and its text has every
// word of want.
func wantErr(t *testing.T, what string, err, kind error, want ...string) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		return
	}
	if !errors.Is(err, kind) {
		t.Errorf("%s: error %v, want kind %v", what, err, kind)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not say %q", what, err, w)
		}
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func owner(t *testing.T, p string) int {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Uid)
}

// mountPoints lists the mount points under dir.
func mountPoints(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := strings.ReplaceAll(f[4], `\040`, " ")
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	return out
}

// forceClean undoes what a test left under dir: mounts (deepest first)
// and loop devices on its files.
func forceClean(dir string) {
	ms := mountPoints(dir)
	sort.Slice(ms, func(i, j int) bool { return len(ms[i]) > len(ms[j]) })
	for _, p := range ms {
		_ = unix.Unmount(p, unix.MNT_DETACH)
	}
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		b, err := os.ReadFile(f)
		backing := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if err != nil || !strings.HasPrefix(backing, dir+"/") {
			continue
		}
		name := filepath.Base(filepath.Dir(filepath.Dir(f)))
		if dev, err := os.OpenFile("/dev/"+name, os.O_RDONLY, 0); err == nil {
			_ = unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_CLR_FD, 0)
			dev.Close()
		}
	}
}

// waitFor polls cond until it holds, failing the test after a deadline
// far beyond what it takes (a hang, not a slow machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

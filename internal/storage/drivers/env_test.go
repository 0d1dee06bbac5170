package drivers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testEnv is a data directory in a t.TempDir for pools, with the loop
// devices and btrfs filesystems a test makes for sources. Everything is
// undone in t.Cleanup even when the test fails half way; assertClean
// checks the test undid it itself.
type testEnv struct {
	t    *testing.T
	base string
	ctx  context.Context
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: pools mount filesystems and attach loop devices")
	}
}

func needBtrfs(t *testing.T) {
	t.Helper()
	needRoot(t)
	for _, tool := range []string{"mkfs.btrfs", "blkid"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (btrfs-progs, util-linux): %v", tool, err)
		}
	}
	if _, err := os.Stat("/sys/fs/btrfs"); err != nil {
		t.Skip("this kernel has no btrfs")
	}
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	needRoot(t)
	base := t.TempDir()
	t.Cleanup(func() { forceClean(base) })
	return &testEnv{t: t, base: base, ctx: context.Background()}
}

func (e *testEnv) pool(name, driver string, cfg map[string]string) (Driver, Pool) {
	e.t.Helper()
	if cfg == nil {
		cfg = map[string]string{}
	}
	p := Pool{
		Name:   name,
		Config: cfg,
		Dir:    filepath.Join(e.dataDir(), "storage-pools", name),
		Log:    slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	d, err := Load(driver, p)
	if err != nil {
		e.t.Fatalf("load %s pool %s: %v", driver, name, err)
	}
	return d, p
}

// dataDir is hangard's data directory in the env; sources the user
// gives are outside it, in base.
func (e *testEnv) dataDir() string { return filepath.Join(e.base, "data") }

// file makes a sparse file of size under the env's devs directory.
func (e *testEnv) file(name string, size int64) string {
	e.t.Helper()
	dir := filepath.Join(e.base, "devs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// loopDevice attaches a fresh file of size to a loop device (autoclear:
// it goes when release is called and nothing mounts it).
func (e *testEnv) loopDevice(name string, size int64) (dev string, release func()) {
	e.t.Helper()
	f, err := attachLoop(e.file(name, size))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { f.Close() })
	return f.Name(), func() { f.Close() }
}

func (e *testEnv) run(name string, args ...string) {
	e.t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		e.t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// hostBtrfs mounts a btrfs of its own at base/host, standing for a
// btrfs filesystem the host already has (for directory sources).
func (e *testEnv) hostBtrfs() (mnt string, release func()) {
	e.t.Helper()
	dev, rel := e.loopDevice("host.img", 256<<20)
	e.run("mkfs.btrfs", "-q", dev)
	mnt = filepath.Join(e.base, "host")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := unix.Mount(dev, mnt, "btrfs", 0, ""); err != nil {
		e.t.Fatal(err)
	}
	return mnt, func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			e.t.Errorf("unmount host btrfs: %v", err)
		}
		rel()
	}
}

// assertClean: nothing of the pools is left under the data dir: no
// mount, no loop device on a file under it, no file in storage-pools or
// disks.
func (e *testEnv) assertClean() {
	e.t.Helper()
	ms, err := mounts()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range ms {
		if inside(m.point, e.base) {
			e.t.Errorf("left mounted: %s (%s)", m.point, m.source)
		}
	}
	// Autoclear detaches a loop device when its last user goes, which
	// the kernel may finish just after the unmount returns: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		loops := loopsUnder(e.base)
		if len(loops) == 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Errorf("loop devices left attached: %v", loops)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, d := range []string{"storage-pools", "disks"} {
		dir := filepath.Join(e.dataDir(), d)
		_ = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
			if err == nil && p != dir {
				e.t.Errorf("left behind: %s", p)
			}
			return nil
		})
	}
}

// loopsUnder lists loop devices backed by files under dir.
func loopsUnder(dir string) []string {
	var out []string
	devs, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range devs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		backing := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if inside(backing, dir) {
			out = append(out, fmt.Sprintf("%s=%s", strings.Split(f, "/")[3], backing))
		}
	}
	return out
}

// forceClean undoes whatever a failed test left: mounts under dir
// (deepest first) and loop devices on its files.
func forceClean(dir string) {
	ms, _ := mounts()
	sort.Slice(ms, func(i, j int) bool { return len(ms[i].point) > len(ms[j].point) })
	for _, m := range ms {
		if inside(m.point, dir) {
			_ = unix.Unmount(m.point, unix.MNT_DETACH)
		}
	}
	for _, l := range loopsUnder(dir) {
		name, _, _ := strings.Cut(l, "=")
		if f, err := os.OpenFile("/dev/"+name, os.O_RDONLY, 0); err == nil {
			_ = unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
			f.Close()
		}
	}
}

func mustErrIs(t *testing.T, err, kind error, what string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: error %v, want kind %v", what, err, kind)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeZeros writes n bytes of zeros to path (real blocks: zeros written
// through write(2) are allocated, not holes) and syncs them.
func writeZeros(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			return err
		}
		n -= k
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

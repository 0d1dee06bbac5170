//lint:file-ignore SA1019 tests of the legacy root (Spec.RootFS), kept until the core fills Root (issue 12)

package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
)

const (
	testHostID = 1000000
	testIDSize = 65536
)

// applets are the busybox commands the test rootfs links.
var applets = []string{"sh", "sleep", "cat", "echo", "id", "ls", "ps", "env", "true", "false", "touch", "usleep", "stat", "mount", "readlink", "pwd", "tty", "stty", "grep"}

// requireRunc skips the test unless it can run real containers.
func requireRunc(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs real containers with runc")
	}
	p, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("needs the runc binary in PATH")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox to build a test rootfs")
	}
	return p
}

// testEnv is one Driver on a fresh Dir, with a busybox rootfs and its
// id-shifted copy, collecting exits.
type testEnv struct {
	t       testing.TB
	d       *Driver
	dir     string
	rootfs  string // owned by host root
	shifted string // owned by testHostID
	exits   *exitLog
	// cgParent is this test's own cgroup parent: a driver removes its
	// parent when it closes, which must not race another test's start.
	cgParent string
}

type exitLog struct {
	mu    sync.Mutex
	cond  *sync.Cond
	exits []driver.Exit
}

func newExitLog() *exitLog {
	l := &exitLog{}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *exitLog) add(e driver.Exit) {
	l.mu.Lock()
	l.exits = append(l.exits, e)
	l.mu.Unlock()
	l.cond.Broadcast()
}

// wait returns the first exit reported for id, failing after timeout.
func (l *exitLog) wait(t testing.TB, id string, timeout time.Duration) driver.Exit {
	t.Helper()
	deadline := time.Now().Add(timeout)
	stop := time.AfterFunc(timeout, l.cond.Broadcast)
	defer stop.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for _, e := range l.exits {
			if e.ID == id {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no exit reported for %s within %v", id, timeout)
		}
		l.cond.Wait()
	}
}

func (l *exitLog) count(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.exits {
		if e.ID == id {
			n++
		}
	}
	return n
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	requireRunc(t)
	base := t.TempDir()
	// Unprivileged container roots must traverse down to their rootfs.
	for p := base; p != "/" && p != "."; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
	e := &testEnv{
		t:       t,
		dir:     filepath.Join(base, "containers"),
		rootfs:  filepath.Join(base, "rootfs"),
		shifted: filepath.Join(base, "rootfs-shifted"),
		exits:   newExitLog(),
	}
	e.cgParent = "/hangar-test-" + randomID(t)
	buildRootfs(t, e.rootfs)
	copyTree(t, e.rootfs, e.shifted, testHostID)
	e.d = e.newDriver(0)
	return e
}

func (e *testEnv) newDriver(logMax int64) *Driver {
	e.t.Helper()
	d, err := New(Config{
		Dir:           e.dir,
		CgroupParent:  e.cgParent,
		OnExit:        e.exits.add,
		ConsoleLogMax: logMax,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		ExecHelper:    testExecHelper,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { d.Close() })
	return d
}

// buildRootfs makes a minimal busybox root filesystem at dir.
func buildRootfs(t testing.TB, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\ntty:x:5:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies src to dst, adding shift to every owner.
func copyTree(t testing.TB, src, dst string, shift int) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		switch {
		case fi.IsDir():
			if err := os.MkdirAll(target, fi.Mode().Perm()); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, b, fi.Mode().Perm()); err != nil {
				return err
			}
		}
		if err := os.Lchown(target, int(st.Uid)+shift, int(st.Gid)+shift); err != nil {
			return err
		}
		if fi.IsDir() {
			return os.Chmod(target, fi.Mode().Perm()|fi.Mode()&fs.ModeSticky)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func randomID(t testing.TB) string {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b)
}

// spec returns a Spec for a new ID running args, unprivileged when userns.
func (e *testEnv) spec(userns bool, args ...string) driver.Spec {
	s := driver.Spec{ID: randomID(e.t), RootFS: e.rootfs, Args: args}
	if userns {
		s.RootFS = e.shifted
		s.IDMap = &driver.IDMap{HostID: testHostID, Size: testIDSize}
	}
	return s
}

// start starts s and registers clean-up (force stop and delete).
func (e *testEnv) start(s driver.Spec) int {
	e.t.Helper()
	d := e.d
	e.t.Cleanup(func() {
		ctx := context.Background()
		if err := d.Stop(ctx, s.ID, 0, 0, true); err != nil {
			e.t.Errorf("cleanup stop: %v", err)
		}
		if err := d.Delete(ctx, s.ID); err != nil {
			e.t.Errorf("cleanup delete: %v", err)
		}
	})
	pid, err := d.Start(context.Background(), s)
	if err != nil {
		e.t.Fatalf("start: %v", err)
	}
	return pid
}

// assertGone checks that id left no process, runc state, cgroup or mount.
func (e *testEnv) assertGone(id string) {
	e.t.Helper()
	out, err := exec.Command("runc", "--root", e.d.runcRoot, "list", "-q").Output()
	if err != nil {
		e.t.Fatalf("runc list: %v", err)
	}
	for _, l := range strings.Fields(string(out)) {
		if l == id {
			e.t.Errorf("runc still lists %s", id)
		}
	}
	// Every hierarchy runc uses: all v1 controllers and, in hybrid mode,
	// the unified one too.
	dirs, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", e.d.cg.path(id)))
	dirs = append(dirs, e.d.cg.dirs(id)...)
	dirs = append(dirs, filepath.Join(cgroupRoot, e.d.cg.path(id)))
	for _, dir := range dirs {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			e.t.Errorf("cgroup %s still exists (err %v)", dir, err)
		}
	}
	mps, err := mountPoints(e.d.instanceDir(id))
	if err != nil {
		e.t.Fatal(err)
	}
	if len(mps) != 0 {
		e.t.Errorf("still mounted: %v", mps)
	}
	if st, err := e.d.State(context.Background(), id); err != nil || st.Status != driver.StatusStopped {
		e.t.Errorf("State = %+v, %v; want Stopped", st, err)
	}
	assertNoZombies(e.t)
}

// assertNoZombies checks that no child of the test process stays a zombie:
// the driver reaps exactly the container PID 1s reparented to it. A zombie
// may exist for a moment (an os/exec runc of a parallel test before its
// Wait), so only one that lasts a second counts.
func assertNoZombies(t testing.TB) {
	t.Helper()
	zombies := func() map[int]uint64 {
		out := map[int]uint64{}
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			b, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/children")
			for _, f := range strings.Fields(string(b)) {
				pid, _ := strconv.Atoi(f)
				if st, err := readProcStat(pid); err == nil && st.state == 'Z' {
					out[pid] = st.startTime
				}
			}
		}
		return out
	}
	first := zombies()
	if len(first) == 0 {
		return
	}
	time.Sleep(time.Second)
	for pid, start := range zombies() {
		if first[pid] == start {
			comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
			t.Errorf("zombie child %d (%s)", pid, strings.TrimSpace(string(comm)))
		}
	}
}

// readProc reads /proc/PID/name.
func readProc(t testing.TB, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func statusField(status, key string) string {
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// waitFor polls cond (test code only) until true or timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

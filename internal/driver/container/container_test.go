package container

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

var bg = context.Background()

// TestStart starts privileged and unprivileged containers and checks what
// PID 1 sees and what the host sees of it.
func TestStart(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, tc := range []struct {
		name    string
		userns  bool
		uidMap  string
		hostUID string
	}{
		{name: "privileged", uidMap: "0 0 4294967295", hostUID: "0"},
		{name: "unprivileged", userns: true, uidMap: "0 1000000 65536", hostUID: "1000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := e.spec(tc.userns, "sh", "-c", "touch /written && exec sleep 1000")
			s.Env = []string{"FOO=bar baz"}
			s.Hostname = "host-" + tc.name
			s.Limits = driver.Limits{CPUCount: 2, CPUSet: "0", MemoryBytes: 64 << 20, Processes: 50}
			pid := e.start(s)

			status := readProc(t, pid, "status")
			if got := statusField(status, "NSpid"); got != strconv.Itoa(pid)+"\t1" {
				t.Errorf("NSpid = %q, want PID 1 in its own namespace", got)
			}
			if got := strings.Fields(statusField(status, "Uid"))[0]; got != tc.hostUID {
				t.Errorf("host uid = %s, want %s", got, tc.hostUID)
			}
			if got := statusField(status, "PPid"); got != strconv.Itoa(os.Getpid()) {
				t.Errorf("PPid = %s, want the daemon (%d): subreaper", got, os.Getpid())
			}
			if got := statusField(status, "Seccomp"); got != "2" {
				t.Errorf("Seccomp = %s, want 2 (filter)", got)
			}
			if got := strings.Join(strings.Fields(readProc(t, pid, "uid_map")), " "); got != tc.uidMap {
				t.Errorf("uid_map = %q, want %q", got, tc.uidMap)
			}
			// runc run returns once PID 1 is released, maybe just before
			// it calls execve: until then /proc shows runc init. PID 1
			// then execs twice (sh, then sleep), and in the middle of an
			// execve environ reads empty (the new mm has no environment
			// yet). sleep is the last exec, so its comm set and a
			// non-empty environ read after it is the final environment.
			var env []string
			waitFor(t, 5*time.Second, "PID 1 to exec sleep", func() bool {
				if strings.TrimSpace(readProc(t, pid, "comm")) != "sleep" {
					return false
				}
				env = strings.Split(strings.TrimRight(readProc(t, pid, "environ"), "\x00"), "\x00")
				return env[0] != ""
			})
			for _, want := range []string{"FOO=bar baz", defaultPath, defaultTerm} {
				if !contains(env, want) {
					t.Errorf("environ %q lacks %q", env, want)
				}
			}
			// The container's root owns "/", and could write to it.
			waitFor(t, 5*time.Second, "/written", func() bool {
				_, err := os.Stat(filepath.Join(layer(t, s), "written"))
				return err == nil
			})
			var st syscall.Stat_t
			if err := syscall.Stat("/proc/"+strconv.Itoa(pid)+"/root/", &st); err != nil {
				t.Fatal(err)
			}
			if strconv.Itoa(int(st.Uid)) != tc.hostUID {
				t.Errorf("/ owned by host uid %d, want %s", st.Uid, tc.hostUID)
			}
			mi := readProc(t, pid, "mountinfo")
			for _, want := range []string{" /sys ro,", " /dev/pts ", " /proc ", " /dev/shm ", " /dev/mqueue ", " /sys/fs/cgroup"} {
				if !strings.Contains(mi, want) {
					t.Errorf("container mountinfo lacks %q", want)
				}
			}
			uts, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/uts")
			if err != nil {
				t.Fatal(err)
			}
			self, _ := os.Readlink("/proc/self/ns/uts")
			if uts == self {
				t.Error("container shares the host UTS namespace")
			}

			cg := e.d.cg
			p := e.d.cg.path(s.ID)
			limits := map[string]string{
				cgFile(cg, "memory", p, "memory.limit_in_bytes", "memory.max"): "67108864",
				cgFile(cg, "pids", p, "pids.max", "pids.max"):                  "50",
				cgFile(cg, "cpuset", p, "cpuset.cpus", "cpuset.cpus"):          "0",
			}
			if cg.v2 {
				limits[cgFile(cg, "cpu", p, "", "cpu.max")] = "200000 100000"
			} else {
				limits[cgFile(cg, "cpu", p, "cpu.cfs_quota_us", "")] = "200000"
				limits[cgFile(cg, "cpu", p, "cpu.cfs_period_us", "")] = "100000"
			}
			for f, want := range limits {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Errorf("read %s: %v", f, err)
					continue
				}
				if got := strings.TrimSpace(string(b)); got != want {
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}

			state, err := e.d.State(bg, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if state.Status != driver.StatusRunning || state.Pid != pid || state.Processes < 1 ||
				state.MemoryUsage <= 0 || state.MemoryPeak < state.MemoryUsage || state.CPUUsage <= 0 {
				t.Errorf("State = %+v, want Running with pid %d and usage", state, pid)
			}

			if err := e.d.Stop(bg, s.ID, 0, 0, true); err != nil {
				t.Fatal(err)
			}
			if got, want := e.exits.wait(t, s.ID, 5*time.Second), (driver.Exit{ID: s.ID, Pid: pid, Code: 137, Known: true, Signal: 9}); got != want {
				t.Errorf("exit = %+v, want %+v", got, want)
			}
			e.assertGone(s.ID)
			// The writable layer survives the stop.
			if _, err := os.Stat(filepath.Join(layer(t, s), "written")); err != nil {
				t.Errorf("write lost after stop: %v", err)
			}
		})
	}
}

// cgFile names a cgroup file of the container for v1 or v2.
func cgFile(l cgroupLayout, controller, path, v1, v2 string) string {
	if l.v2 {
		return filepath.Join(l.unified, path, v2)
	}
	m, ok := l.v1[controller]
	if !ok {
		m = v1Mount{point: filepath.Join(cgroupRoot, controller), root: "/"}
	}
	return filepath.Join(m.point, path, v1)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestFreeze(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, userns := range []bool{false, true} {
		s := e.spec(userns, "sleep", "1000")
		pid := e.start(s)
		for range 2 { // idempotent
			if err := e.d.Freeze(bg, s.ID); err != nil {
				t.Fatal(err)
			}
		}
		if st, _ := e.d.State(bg, s.ID); st.Status != driver.StatusFrozen {
			t.Errorf("after Freeze: %v, want Frozen", st.Status)
		}
		for range 2 {
			if err := e.d.Unfreeze(bg, s.ID); err != nil {
				t.Fatal(err)
			}
		}
		if st, _ := e.d.State(bg, s.ID); st.Status != driver.StatusRunning {
			t.Errorf("after Unfreeze: %v, want Running", st.Status)
		}
		// A frozen container stops, gracefully (SIGKILL as the stop
		// signal, waiting with no timeout) or forced: a frozen task acts
		// on no signal, so without the thaw Stop would wait until ctx
		// ends and fail.
		if err := e.d.Freeze(bg, s.ID); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(bg, 30*time.Second)
		if err := e.d.Stop(ctx, s.ID, syscall.SIGKILL, -1, userns); err != nil {
			t.Fatal(err)
		}
		cancel()
		if got := e.exits.wait(t, s.ID, 5*time.Second); got.Code != 137 || !got.Known || got.Pid != pid {
			t.Errorf("exit = %+v", got)
		}
		e.assertGone(s.ID)
	}
}

// TestStopTimeout stops a PID 1 that ignores the stop signal: the kernel
// drops SIGTERM to a PID namespace's init that has no handler for it.
func TestStopTimeout(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.spec(true, "sleep", "1000")
	pid := e.start(s)
	start := time.Now()
	if err := e.d.Stop(bg, s.ID, syscall.SIGTERM, time.Second, false); err != nil {
		t.Fatal(err)
	}
	// It waited the timeout (a timer never fires early), then killed:
	// the exit below is SIGKILL's.
	if took := time.Since(start); took < time.Second {
		t.Errorf("stop took %v, want the 1s timeout and then a kill", took)
	}
	if got, want := e.exits.wait(t, s.ID, time.Second), (driver.Exit{ID: s.ID, Pid: pid, Code: 137, Known: true, Signal: 9}); got != want {
		t.Errorf("exit = %+v, want %+v", got, want)
	}
	e.assertGone(s.ID)
}

// TestStopGraceful stops a PID 1 that handles the signal; the spec's stop
// signal applies when Stop is given none.
func TestStopGraceful(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.spec(false, "sh", "-c", `trap "exit 3" USR1; echo ready; while :; do usleep 20000; done`)
	s.StopSignal = syscall.SIGUSR1
	pid := e.start(s)
	waitFor(t, 5*time.Second, "trap", func() bool {
		b, _ := e.d.ConsoleLog(bg, s.ID)
		return strings.Contains(string(b), "ready")
	})
	// Exit code 3, not 137: the trap ended it, no kill after the timeout.
	if err := e.d.Stop(bg, s.ID, 0, 10*time.Second, false); err != nil {
		t.Fatal(err)
	}
	if got, want := e.exits.wait(t, s.ID, time.Second), (driver.Exit{ID: s.ID, Pid: pid, Code: 3, Known: true}); got != want {
		t.Errorf("exit = %+v, want %+v", got, want)
	}
	e.assertGone(s.ID)
}

func TestStopForceFast(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.spec(true, "sleep", "1000")
	e.start(s)
	// PID 1 of a user namespace ignores SIGTERM: a Stop that did not
	// kill at once would wait the minute, and fail at ctx's end first.
	// (How fast the kill is, BenchmarkStartStop measures.)
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	if err := e.d.Stop(ctx, s.ID, 0, time.Minute, true); err != nil {
		t.Fatal(err)
	}
	e.assertGone(s.ID)
	// Stop returns once the container is gone; OnExit follows from the
	// watcher's goroutine (doc.go), so wait for it before counting.
	if x := e.exits.wait(t, s.ID, 5*time.Second); x.Code != 137 || !x.Known {
		t.Errorf("exit = %+v, want a known SIGKILL (137)", x)
	}
	if n := e.exits.count(s.ID); n != 1 {
		t.Errorf("%d exits reported, want 1", n)
	}
	// Stopping again, or something never started, is fine.
	for _, id := range []string{s.ID, "never-started"} {
		if err := e.d.Stop(bg, id, 0, 0, true); err != nil {
			t.Errorf("Stop(%s) = %v", id, err)
		}
	}
}

// TestExitCode: a PID 1 that exits by itself is reported once, with its
// code, and leaves nothing behind.
func TestExitCode(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, userns := range []bool{false, true} {
		s := e.spec(userns, "sh", "-c", "echo hello; echo oops >&2; exit 7")
		pid := e.start(s)
		if got, want := e.exits.wait(t, s.ID, 5*time.Second), (driver.Exit{ID: s.ID, Pid: pid, Code: 7, Known: true}); got != want {
			t.Errorf("exit = %+v, want %+v", got, want)
		}
		e.assertGone(s.ID)
		log, err := e.d.ConsoleLog(bg, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if string(log) != "hello\noops\n" {
			t.Errorf("console log = %q", log)
		}
		if err := e.d.ClearConsoleLog(bg, s.ID); err != nil {
			t.Fatal(err)
		}
		if log, _ := e.d.ConsoleLog(bg, s.ID); len(log) != 0 {
			t.Errorf("console log after clear = %q", log)
		}
		if n := e.exits.count(s.ID); n != 1 {
			t.Errorf("%d exits reported, want 1", n)
		}
	}
}

// TestRestart: the writable layer and console log carry over between runs.
func TestRestart(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.spec(true, "sh", "-c", "cat /data 2>/dev/null || echo first > /data")
	for run, want := range []string{"", "first\n"} {
		pid := e.start(s)
		if x := e.exits.wait(t, s.ID, 5*time.Second); x.Pid != pid || x.Code != 0 {
			t.Fatalf("run %d: exit %+v", run, x)
		}
		e.exits.mu.Lock()
		e.exits.exits = nil
		e.exits.mu.Unlock()
		if log, _ := e.d.ConsoleLog(bg, s.ID); string(log) != want {
			t.Errorf("run %d: console %q, want %q", run, log, want)
		}
	}
}

// TestNoImage runs an instance whose writable layer is its whole root:
// storage binds it (an instance from no image, its tree put there by hand).
func TestNoImage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s, upper := e.storageSpec("empty", true, "sh", "-c", "echo own > /own; exec sleep 1000")
	copyTree(t, e.shifted, upper, 0)
	e.start(s)
	waitFor(t, 5*time.Second, "/own", func() bool {
		_, err := os.Stat(filepath.Join(upper, "own"))
		return err == nil
	})
	if err := e.d.Stop(bg, s.ID, 0, 0, true); err != nil {
		t.Fatal(err)
	}
	e.assertGone(s.ID)
	if _, err := os.Stat(filepath.Join(upper, "bin/busybox")); err != nil {
		t.Errorf("upper damaged: %v", err)
	}
}

// TestFailedStart: a start that fails leaves no process, mount, cgroup or
// runc state; it removes the instance dir it made, keeps one that existed
// (with its console log) but for what the start made in it, and never
// touches the root's data.
func TestFailedStart(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, existing := range []bool{false, true} {
		s := e.spec(true, "/no/such/binary")
		dir := e.d.instanceDir(s.ID)
		data := filepath.Join(layer(t, s), "data")
		hostFile(t, data, "keep", testHostID, testHostID)
		if existing {
			hostFile(t, filepath.Join(dir, "console.log"), "earlier run\n", 0, 0)
		}
		_, err := e.d.Start(bg, s)
		if err == nil {
			t.Fatal("Start of a missing binary succeeded")
		}
		t.Logf("error: %v", err)
		if !strings.Contains(err.Error(), "/no/such/binary") {
			t.Errorf("error lacks runc's message: %v", err)
		}
		e.assertGone(s.ID)
		if b, err := os.ReadFile(data); string(b) != "keep" {
			t.Errorf("the root's data lost: %q %v", b, err)
		}
		if existing {
			if b, err := os.ReadFile(filepath.Join(dir, "console.log")); !strings.HasPrefix(string(b), "earlier run\n") {
				t.Errorf("console log lost: %q %v", b, err)
			}
			for _, name := range []string{"rootfs", "config.json", "console.in", "upper", "work"} {
				if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind: %v", name, err)
				}
			}
		} else if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", dir, err)
		}
		if err := e.d.Delete(bg, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	e.exits.mu.Lock()
	defer e.exits.mu.Unlock()
	if len(e.exits.exits) != 0 {
		t.Errorf("failed starts reported exits: %+v", e.exits.exits)
	}
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, s := range []driver.Spec{
		{ID: "../x", Args: []string{"true"}},
		{ID: ".runc", Args: []string{"true"}},
		{ID: "ok"},
		// No root: the driver never makes one of its own.
		{ID: "ok", Args: []string{"true"}},
		{ID: "ok", Args: []string{"true"}, Root: driver.Root{Mounts: []driver.Mount{{Type: "overlay", Source: "overlay",
			Options: []string{"lowerdir=/a,upperdir=/b"}}}}},
	} {
		if _, err := e.d.Start(bg, s); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Start(%+v) = %v, want invalid argument", s, err)
		}
		if s.ID == "ok" {
			if _, err := os.Stat(e.d.instanceDir(s.ID)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Start(%+v) left its instance dir: %v", s, err)
			}
		}
	}
	if _, err := e.d.OpenRoot(bg, driver.Spec{ID: "ok"}); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "no root filesystem") {
		t.Errorf("OpenRoot without a root = %v, want invalid argument: no root filesystem", err)
	}
	if _, err := os.Stat(e.d.instanceDir("ok")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenRoot without a root made the instance dir: %v", err)
	}
	if err := e.d.Freeze(bg, "idle"); !errors.Is(err, driver.ErrNotRunning) {
		t.Errorf("Freeze of a stopped instance = %v", err)
	}
	if st, err := e.d.State(bg, "idle"); err != nil || st != (driver.State{}) {
		t.Errorf("State of a stopped instance = %+v, %v", st, err)
	}
	if log, err := e.d.ConsoleLog(bg, "idle"); err != nil || len(log) != 0 {
		t.Errorf("ConsoleLog of a new instance = %q, %v", log, err)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.spec(false, "sleep", "1000")
	e.start(s)
	if err := e.d.Delete(bg, s.ID); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Delete of a running instance = %v, want conflict", err)
	}
	if _, err := e.d.Start(bg, s); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second Start = %v, want conflict", err)
	}
	if err := e.d.Stop(bg, s.ID, 0, 0, true); err != nil {
		t.Fatal(err)
	}
	dir := e.d.instanceDir(s.ID)
	if _, err := os.Stat(filepath.Join(dir, "console.log")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := e.d.Delete(bg, s.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists: %v", dir, err)
		}
	}
	// The image and the root's writable layer (storage's) are untouched.
	for _, p := range []string{filepath.Join(e.rootfs, "bin/busybox"), layer(t, s)} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
}

// TestRecover restarts the "daemon" (a new Driver on the same Dir) with one
// running container, one frozen and one that died meanwhile.
func TestRecover(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	live := e.spec(true, "sleep", "1000")
	frozen := e.spec(false, "sleep", "1000")
	dead := e.spec(false, "sleep", "1000")
	livePid := e.start(live)
	frozenPid := e.start(frozen)
	deadPid := e.start(dead)
	if err := e.d.Freeze(bg, frozen.ID); err != nil {
		t.Fatal(err)
	}
	e.d.Close()

	// Dies while no daemon watches: runc state, cgroup and mount remain.
	if err := syscall.Kill(deadPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(deadPid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}

	// A rootfs mount runc knows nothing of (a crash between mount and run).
	stale := mkdir(t, e.dir, "tstale", "rootfs")
	if err := mountRootfs(driver.Mount{Type: "bind", Source: e.poolDir("stale")}, stale); err != nil {
		t.Fatal(err)
	}

	d2 := e.newDriver(0)
	e.d = d2 // the clean-ups registered by start use the old driver
	states, err := d2.Recover(bg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]driver.Status{}
	for id, st := range states {
		got[id] = st.Status
	}
	want := map[string]driver.Status{live.ID: driver.StatusRunning, frozen.ID: driver.StatusFrozen}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recovered (-want +got):\n%s", diff)
	}
	if states[live.ID].Pid != livePid || states[frozen.ID].Pid != frozenPid {
		t.Errorf("recovered pids %+v", states)
	}
	e.assertGone(dead.ID)
	e.assertGone("tstale")

	// Recover is idempotent.
	if again, err := d2.Recover(bg); err != nil || len(again) != 2 {
		t.Errorf("second Recover = %v, %v", again, err)
	}
	for _, s := range []driver.Spec{live, frozen} {
		if err := d2.Stop(bg, s.ID, syscall.SIGTERM, 100*time.Millisecond, false); err != nil {
			t.Fatal(err)
		}
		// Still our child in this test process, so the code is known.
		if x := e.exits.wait(t, s.ID, 5*time.Second); x.Code != 137 || !x.Known {
			t.Errorf("exit = %+v", x)
		}
		e.assertGone(s.ID)
		if err := d2.Delete(bg, s.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStartStaleState: without Recover, Start clears what a dead run left,
// and refuses to take over an untracked live one.
func TestStartStaleState(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	dead := e.spec(false, "sleep", "1000")
	live := e.spec(false, "sleep", "1000")
	deadPid := e.start(dead)
	e.start(live)
	e.d.Close()
	if err := syscall.Kill(deadPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(deadPid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	e.d = e.newDriver(0)
	if _, err := e.d.Start(bg, dead); err != nil {
		t.Fatalf("Start over stale state: %v", err)
	}
	if _, err := e.d.Start(bg, live); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Start over a live untracked container = %v, want conflict", err)
	}
	// ...and leaves it alone.
	for _, p := range []string{"rootfs/bin/busybox", "config.json"} {
		if _, err := os.Stat(filepath.Join(e.d.instanceDir(live.ID), p)); err != nil {
			t.Errorf("live container damaged: %v", err)
		}
	}
	if st, _ := e.d.State(bg, live.ID); st.Status != driver.StatusRunning {
		t.Errorf("live container: %+v", st)
	}
	for _, s := range []driver.Spec{dead, live} {
		if err := e.d.Stop(bg, s.ID, 0, 0, true); err != nil {
			t.Fatal(err)
		}
		e.assertGone(s.ID)
	}
}

// TestRecoverNotParent recovers a container whose PID 1 is not the
// daemon's child: its exit is reported, with Known=false. Not parallel: it
// turns the test process's subreaper flag off for a moment, which would
// misplace the PID 1s of concurrent starts.
func TestRecoverNotParent(t *testing.T) {
	e := newTestEnv(t)
	s := e.spec(false, "sleep", "1000")
	// Started by runc from a shell that exits, as after a daemon restart:
	// PID 1 is then the child of some other process, not ours.
	bundle := e.d.instanceDir(s.ID)
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mountRootfs(s.Root.Mounts[0], filepath.Join(bundle, "rootfs")); err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(buildSpec(s, e.d.cg.path(s.ID), e.d.capsFor(s.IDMap != nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.d.Stop(bg, s.ID, 0, 0, true)
		e.d.Delete(bg, s.ID)
	})
	// Without the subreaper flag, PID 1 is reparented to the host's init
	// when runc exits, as it is when the daemon that started it died.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	// Output to a file: runc hands its stdio to PID 1, and a pipe would
	// stay open for as long as the container runs.
	outPath := filepath.Join(bundle, "console.log")
	outFile, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("runc", "--root", e.d.runcRoot, "run", "-d", "--bundle", bundle, s.ID)
	cmd.Stdout, cmd.Stderr = outFile, outFile
	err = cmd.Run()
	outFile.Close()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		out, _ := os.ReadFile(outPath)
		t.Fatalf("runc run: %v: %s", err, out)
	}
	var states map[string]driver.State
	waitFor(t, 10*time.Second, "container", func() bool {
		states, err = e.d.Recover(bg)
		return err == nil && len(states) == 1
	})
	st := states[s.ID]
	if st.Status != driver.StatusRunning {
		t.Fatalf("recovered %+v", states)
	}
	if ppid := statusField(readProc(t, st.Pid, "status"), "PPid"); ppid == strconv.Itoa(os.Getpid()) {
		t.Skip("PID 1 ended up our child; cannot test a foreign parent here")
	}
	if err := e.d.Stop(bg, s.ID, 0, 0, true); err != nil {
		t.Fatal(err)
	}
	if got, want := e.exits.wait(t, s.ID, 5*time.Second), (driver.Exit{ID: s.ID, Pid: st.Pid, Known: false}); got != want {
		t.Errorf("exit = %+v, want %+v", got, want)
	}
	e.assertGone(s.ID)
}

func mkdir(t *testing.T, parts ...string) string {
	p := filepath.Join(parts...)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConsoleBound: the check loop keeps console.log and console.log.1
// near ConsoleLogMax while PID 1 writes steadily.
func TestConsoleBound(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	const max = 8 << 10
	e.d.Close()
	e.d = e.newDriver(max)
	// About 64 KiB/s.
	s := e.spec(false, "sh", "-c", `while :; do echo 0123456789012345678901234567890123456789012345678901234567890; usleep 1000; done`)
	e.start(s)
	log := filepath.Join(e.d.instanceDir(s.ID), "console.log")
	// Three rotations (console.log.1 replaced twice after it first
	// appears), so the bounds below hold over time, not just once.
	var seen []uint64
	waitFor(t, 30*time.Second, "three rotations", func() bool {
		var st syscall.Stat_t
		if err := syscall.Stat(log+".1", &st); err == nil && (len(seen) == 0 || seen[len(seen)-1] != st.Ino) {
			seen = append(seen, st.Ino)
		}
		return len(seen) >= 3
	})
	for _, p := range []string{log, log + ".1"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		// console.log.1 holds at most max; console.log at most max plus
		// one check interval of output.
		limit := int64(max)
		if p == log {
			limit += 200 << 10
		}
		if fi.Size() > limit {
			t.Errorf("%s is %d bytes, bound %d", p, fi.Size(), limit)
		}
	}
	b, err := e.d.ConsoleLog(bg, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < max || len(b) > 2*max+200<<10 {
		t.Errorf("console log of %d bytes, want about max to 2×max", len(b))
	}
}

// TestStateWithoutRunc: State never runs runc (it reads the tracked pid
// and the open cgroup files), so it answers with runc gone. Its speed is
// BenchmarkState's to measure, not a pass/fail test's.
func TestStateWithoutRunc(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.spec(false, "sleep", "1000")
	pid := e.start(s)
	// Restored before the clean-up's Stop (clean-ups run last first).
	saved := e.d.runcPath
	e.d.runcPath = "/nonexistent/runc"
	t.Cleanup(func() { e.d.runcPath = saved })
	for _, freeze := range []bool{false, true, false} {
		// The freezer too is runc-free.
		if freeze {
			if err := e.d.Freeze(bg, s.ID); err != nil {
				t.Fatal(err)
			}
		} else if err := e.d.Unfreeze(bg, s.ID); err != nil {
			t.Fatal(err)
		}
		want := driver.StatusRunning
		if freeze {
			want = driver.StatusFrozen
		}
		st, err := e.d.State(bg, s.ID)
		if err != nil || st.Status != want || st.Pid != pid || st.Processes < 1 || st.MemoryUsage <= 0 {
			t.Errorf("State without runc = %+v, %v; want %v, pid %d and usage", st, err, want, pid)
		}
	}
}

func BenchmarkStartStop(b *testing.B) {
	e := newTestEnv(b)
	for b.Loop() {
		s := e.spec(false, "sleep", "1000")
		if _, err := e.d.Start(bg, s); err != nil {
			b.Fatal(err)
		}
		if err := e.d.Stop(bg, s.ID, 0, 0, true); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := e.d.Delete(bg, s.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkStart measures Start alone (the Stop is not timed).
func BenchmarkStart(b *testing.B) {
	e := newTestEnv(b)
	for b.Loop() {
		s := e.spec(false, "sleep", "1000")
		if _, err := e.d.Start(bg, s); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := e.d.Stop(bg, s.ID, 0, 0, true); err != nil {
			b.Fatal(err)
		}
		if err := e.d.Delete(bg, s.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func BenchmarkState(b *testing.B) {
	e := newTestEnv(b)
	s := e.spec(false, "sleep", "1000")
	e.start(s)
	for b.Loop() {
		if _, err := e.d.State(bg, s.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// seccompProbe calls the denied syscalls with arguments that would fail
// otherwise with another errno (ENOSYS, EFAULT...), and one allowed call.
const seccompProbe = `#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#define TRY(name, ...) do { errno = 0; syscall(__VA_ARGS__); printf("%s=%s\n", name, strerrorname_np(errno)); } while (0)
int main(void) {
	TRY("kexec_load", SYS_kexec_load, 0, 0, 0, 0xdeadbeef);
	TRY("kexec_file_load", SYS_kexec_file_load, -1, -1, 0, 0, 0xdeadbeef);
	TRY("open_by_handle_at", SYS_open_by_handle_at, -1, 0, 0);
	TRY("init_module", SYS_init_module, 0, 0, 0);
	TRY("finit_module", SYS_finit_module, -1, 0, 0);
	TRY("delete_module", SYS_delete_module, "no_such_module", 0);
	TRY("getppid", SYS_getppid);
	return 0;
}
`

// TestSeccomp checks that runc accepts the denylist and that it applies,
// with a static probe built by the host's C compiler.
func TestSeccomp(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("needs gcc to build a static probe")
	}
	src := filepath.Join(t.TempDir(), "probe.c")
	if err := os.WriteFile(src, []byte(seccompProbe), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{e.rootfs, e.shifted} {
		if out, err := exec.Command("gcc", "-static", "-o", filepath.Join(root, "bin/probe"), src).CombinedOutput(); err != nil {
			t.Skipf("cannot build a static probe: %v: %s", err, out)
		}
	}
	want := "kexec_load=EPERM\nkexec_file_load=EPERM\nopen_by_handle_at=EPERM\ninit_module=EPERM\nfinit_module=EPERM\ndelete_module=EPERM\ngetppid=0\n"
	for _, userns := range []bool{false, true} {
		s := e.spec(userns, "/bin/probe")
		e.start(s)
		if x := e.exits.wait(t, s.ID, 5*time.Second); x.Code != 0 {
			t.Fatalf("probe exit %+v", x)
		}
		log, _ := e.d.ConsoleLog(bg, s.ID)
		if diff := cmp.Diff(want, string(log)); diff != "" {
			t.Errorf("userns=%v: probe (-want +got):\n%s", userns, diff)
		}
		// A process exec'd beside PID 1 gets the same filter (the exec
		// path compiles its own: seccomp.go).
		s = e.spec(userns, "/bin/sleep", "1000")
		e.start(s)
		out, errOut, code := runExec(t, e.d, s.ID, driver.ExecSpec{Args: []string{"/bin/probe"}}, "")
		if diff := cmp.Diff(want, out); diff != "" || code != 0 {
			t.Errorf("userns=%v: exec'd probe, code %d, stderr %q (-want +got):\n%s", userns, code, errOut, diff)
		}
	}
}

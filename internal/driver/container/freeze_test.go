package container

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
)

// TestFreezeRuncView freezes and thaws containers through the freezer
// directly and checks that runc sees what the driver did: `runc state`
// says paused and running, and `runc kill` and `runc delete --force` still
// end a frozen container.
func TestFreezeRuncView(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	runcState := func(id string) string {
		t.Helper()
		out, err := exec.Command("runc", "--root", e.d.runcRoot, "state", id).Output()
		if err != nil {
			t.Fatalf("runc state %s: %v", id, err)
		}
		var st struct{ Status string }
		if err := json.Unmarshal(out, &st); err != nil {
			t.Fatalf("runc state %s: %v: %s", id, err, out)
		}
		return st.Status
	}
	for _, tc := range []struct {
		name   string
		userns bool
		end    []string // runc command that ends the frozen container
	}{
		{"privileged/kill", false, []string{"kill", "", "KILL"}},
		{"unprivileged/kill", true, []string{"kill", "", "KILL"}},
		{"privileged/delete", false, []string{"delete", "--force", ""}},
		{"unprivileged/delete", true, []string{"delete", "--force", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := e.spec(tc.userns, "sleep", "1000")
			pid := e.start(s)
			if err := e.d.Freeze(bg, s.ID); err != nil {
				t.Fatal(err)
			}
			if got := runcState(s.ID); got != "paused" {
				t.Errorf("runc state after Freeze = %s, want paused", got)
			}
			if !e.d.cg.v2 {
				// Independent of the freezer file: the task itself.
				if got := statusField(readProc(t, pid, "status"), "State"); !strings.HasPrefix(got, "D") {
					t.Errorf("frozen PID 1 state %q, want D (in the refrigerator)", got)
				}
			}
			if err := e.d.Unfreeze(bg, s.ID); err != nil {
				t.Fatal(err)
			}
			if got := runcState(s.ID); got != "running" {
				t.Errorf("runc state after Unfreeze = %s, want running", got)
			}
			if err := e.d.Freeze(bg, s.ID); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"--root", e.d.runcRoot}, tc.end...)
			for i, a := range args {
				if a == "" {
					args[i] = s.ID
				}
			}
			if out, err := exec.Command("runc", args...).CombinedOutput(); err != nil {
				t.Fatalf("runc %v: %v: %s", tc.end, err, out)
			}
			if got := e.exits.wait(t, s.ID, 10*time.Second); got.Pid != pid || got.Code != 137 {
				t.Errorf("exit = %+v, want pid %d killed (137)", got, pid)
			}
			// The watcher cleans up what runc left.
			waitFor(t, 10*time.Second, "the driver to see the container stopped", func() bool {
				st, _ := e.d.State(bg, s.ID)
				return st.Status == driver.StatusStopped
			})
			e.assertGone(s.ID)
		})
	}
}

// TestFreezer drives the v1 and v2 freezers on a plain process in a cgroup
// of the test's own, wherever this host mounts one (a hybrid host has
// both: the v2 code is tested on its unified hierarchy).
func TestFreezer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates cgroups")
	}
	mounts := map[string]string{} // "v1", "v2" -> hierarchy root
	var fs unix.Statfs_t
	if unix.Statfs(cgroupRoot, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC {
		mounts["v2"] = cgroupRoot
	} else {
		if unix.Statfs(cgroupRoot+"/unified", &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC {
			mounts["v2"] = cgroupRoot + "/unified"
		}
		if l, err := detectCgroups(); err == nil {
			mounts["v1"] = l.v1["freezer"].point
		}
	}
	for _, tc := range []struct {
		version string
		freeze  func(context.Context, string, bool) error
		// frozen tells from the task, not the freezer files, whether it
		// is frozen: v1 parks it in D state, v2 traps it in get_signal.
		frozen func(pid int) bool
	}{
		{"v1", freezeV1, func(pid int) bool {
			return strings.HasPrefix(statusField(readProc(t, pid, "status"), "State"), "D")
		}},
		{"v2", freezeV2, func(pid int) bool {
			w := readProc(t, pid, "wchan")
			return w == "get_signal" || w == "do_freezer_trap"
		}},
	} {
		t.Run(tc.version, func(t *testing.T) {
			root, ok := mounts[tc.version]
			if !ok {
				t.Skipf("no cgroup %s hierarchy mounted", tc.version)
			}
			dir := filepath.Join(root, randomID(t))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("sleep", "1000")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = tc.freeze(bg, dir, false)
				cmd.Process.Kill()
				cmd.Wait()
				if err := os.Remove(dir); err != nil {
					t.Errorf("remove test cgroup: %v", err)
				}
			})
			pid := cmd.Process.Pid
			if err := os.WriteFile(dir+"/cgroup.procs", []byte(strconv.Itoa(pid)), 0); err != nil {
				t.Fatal(err)
			}
			for _, want := range []bool{true, true, false, false, true, false} { // idempotent both ways
				if err := tc.freeze(bg, dir, want); err != nil {
					t.Fatalf("freeze(%v): %v", want, err)
				}
				// Thawing wakes the task, which leaves the freezer's
				// state as soon as it runs: wait for that, no longer.
				waitFor(t, 5*time.Second, "the task to follow the freezer", func() bool { return tc.frozen(pid) == want })
			}
			// Killed while thawed, it dies; the cgroup empties.
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("no such cgroup", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "none")
		for _, f := range []func(context.Context, string, bool) error{freezeV1, freezeV2} {
			for _, frozen := range []bool{true, false} {
				if err := f(bg, missing, frozen); err == nil {
					t.Errorf("freeze(%v) of a missing cgroup succeeded", frozen)
				}
			}
		}
	})
}

// BenchmarkFreezeUnfreeze freezes and thaws one running container; the
// figure is per call (a freeze or an unfreeze). Target: 5 ms.
func BenchmarkFreezeUnfreeze(b *testing.B) {
	e := newTestEnv(b)
	s := e.spec(true, "sleep", "1000")
	e.start(s)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := e.d.Freeze(bg, s.ID); err != nil {
			b.Fatal(err)
		}
		if err := e.d.Unfreeze(bg, s.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(2*b.N)/1000, "ms/call")
}

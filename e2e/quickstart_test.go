package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// TestQuickstart runs the README's first command, scripts/quickstart.sh, as
// a new user would, on a clean data directory (and socket, log and install
// prefix, through the script's HANGAR_* overrides, so that an hangard on the
// default socket is left alone), then runs it again: the second run must
// change nothing. Its cleanup stops the hangard the script started (from
// the pidfile it writes) and removes every instance, mount and process.
func TestQuickstart(t *testing.T) {
	requireE2E(t)
	// Not t.TempDir: hangard runs as root in it and must be gone first.
	dir, err := os.MkdirTemp("", "hangar-quickstart-")
	if err != nil {
		t.Fatal(err)
	}
	// Unprivileged container roots (host uid 1000000) traverse it.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	qs := quickstartEnv{
		dir:    dir,
		data:   filepath.Join(dir, "data"),
		socket: filepath.Join(dir, "data", "unix.socket"),
		log:    filepath.Join(dir, "hangard.log"),
		prefix: filepath.Join(dir, "prefix"),
		netns:  newNetns(t),
	}
	t.Cleanup(func() { qs.cleanup(t) })

	vm := vmSkipReason() == ""
	if !vm {
		t.Logf("no VM in this run: %s", vmSkipReason())
	}
	for _, tc := range []struct {
		name string
		// want and notWant are patterns the script's output must, and
		// must not, match.
		want, notWant []string
	}{
		{
			name: "first run",
			want: []string{`(?m)^starting hangard \(data: ` + regexp.QuoteMeta(qs.data), `Image imported with fingerprint`, `(?m)^Creating first$`},
		},
		{
			name:    "second run",
			notWant: []string{`starting hangard`, `restarting hangard`, `Image imported`, `Creating`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := qs.run(t)
			want := append(tc.want,
				`\|\s*first\s*\|\s*RUNNING\s*\|[^\n]*\|\s*CONTAINER\s*\|`,
				`(?m)^hello from first: uid=0\(root\) gid=0\(root\)$`,
			)
			if vm {
				want = append(want, `\|\s*vm1\s*\|\s*RUNNING\s*\|[^\n]*\|\s*VIRTUAL-MACHINE\s*\|`, `(?m)^Linux vm1 \S+ .*x86_64`)
			} else {
				want = append(want, `(?m)^skipping the VM vm1: `)
			}
			for _, re := range want {
				if !regexp.MustCompile(re).MatchString(out) {
					t.Errorf("output does not match %s:\n%s", re, out)
				}
			}
			for _, re := range tc.notWant {
				if regexp.MustCompile(re).MatchString(out) {
					t.Errorf("output matches %s:\n%s", re, out)
				}
			}
		})
	}

	pid, err := qs.pid()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || exe != filepath.Join(qs.prefix, "bin", "hangard") {
		t.Errorf("pidfile names %d, running %q (%v), want the installed %s", pid, exe, err, filepath.Join(qs.prefix, "bin", "hangard"))
	}
	for _, bin := range []string{"hangard", "hangar", "hangar-agent"} {
		if _, err := os.Stat(filepath.Join(qs.prefix, "bin", bin)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
}

// vmSkipReason says why this host cannot boot a VM, as quickstart.sh
// checks it; "" when it can.
func vmSkipReason() string {
	for _, p := range []string{"qemu-system-x86_64", "qemu-img", "mkfs.ext4"} {
		if lookPath(p) == "" {
			return p + " is not installed"
		}
	}
	if k, _ := filepath.Glob("/boot/vmlinuz-*"); len(k) == 0 {
		return "no guest kernel in /boot"
	}
	return ""
}

// quickstartEnv is one scratch installation made by quickstart.sh.
type quickstartEnv struct {
	dir, data, socket, log, prefix string
	// netns is the network namespace the script's hangard runs in.
	netns string
}

// run runs the script from the checkout and returns its output; it fails
// the test unless the script exits 0.
func (q quickstartEnv) run(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "scripts/quickstart.sh")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(),
		"HANGAR_DATA_DIR="+q.data,
		"HANGAR_SOCKET="+q.socket,
		"HANGAR_LOG="+q.log,
		"HANGAR_PREFIX="+q.prefix,
		"HANGAR_NETNS="+q.netns,
	)
	// Its own process group: a timeout kills the script and what it runs,
	// but not the hangard it started (its own session).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(q.log)
		t.Fatalf("bash scripts/quickstart.sh: %v\noutput:\n%s\nhangard log:\n%s", err, out, log)
	}
	return string(out)
}

// pid reads the pidfile the script writes for the hangard it starts.
func (q quickstartEnv) pid() (int, error) {
	b, err := os.ReadFile(filepath.Join(q.data, "hangard.pid"))
	if err != nil {
		return 0, fmt.Errorf("hangard's pidfile: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("hangard's pidfile holds %q", b)
	}
	return pid, nil
}

// cleanup deletes every instance, stops the hangard, and checks that no
// mount or process of the scratch directory is left, then removes it.
func (q quickstartEnv) cleanup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if c, err := client.Connect(q.socket); err == nil {
		names, _ := c.GetInstanceNames(ctx)
		for _, n := range names {
			if op, err := c.UpdateInstanceState(ctx, n, api.InstanceStatePut{Action: "stop", Force: true}); err == nil {
				_ = op.Wait(ctx)
			}
			op, err := c.DeleteInstance(ctx, n)
			if err == nil {
				err = op.Wait(ctx)
			}
			if err != nil {
				t.Errorf("cleanup: delete %s: %v", n, err)
			}
		}
		c.Close()
	}
	if pid, err := q.pid(); err == nil && processAlive(pid) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(30 * time.Second)
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if processAlive(pid) {
			t.Errorf("hangard (pid %d) still runs 30s after SIGTERM: killing it", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if t.Failed() {
		log, _ := os.ReadFile(q.log)
		t.Logf("hangard log:\n%s", log)
	}
	if mounts := mountsUnder(q.dir); len(mounts) > 0 {
		t.Errorf("mounts left under %s: %v", q.dir, mounts)
	}
	if procs := processesNaming(q.dir); len(procs) > 0 {
		t.Errorf("processes left that name %s: %v", q.dir, procs)
	}
	if err := os.RemoveAll(q.dir); err != nil {
		t.Errorf("remove scratch directory: %v", err)
	}
}

// processesNaming lists the live processes whose command line or
// executable names a path under dir (hangard, QEMU).
func processesNaming(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !processAlive(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if strings.Contains(string(cmdline), dir+"/") || strings.HasPrefix(exe, dir+"/") {
			out = append(out, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
	return out
}

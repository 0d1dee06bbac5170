package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

const execPath = "PATH=/bin:/sbin"

// runExec runs spec to completion with stdin as input and returns stdout,
// stderr and the exit code.
func runExec(t *testing.T, d *Driver, id string, spec driver.ExecSpec, stdin string) (string, string, int) {
	t.Helper()
	if spec.Env == nil {
		spec.Env = []string{execPath}
	}
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	spec.Stdin, spec.Stdout, spec.Stderr = inR, outW, errW
	p, err := d.Exec(bg, id, spec)
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatalf("exec %v: %v", spec.Args, err)
	}
	go func() {
		io.WriteString(inW, stdin)
		inW.Close()
	}()
	var stdout, stderr bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&stderr, errR); close(done) }()
	io.Copy(&stdout, outR)
	<-done
	code, err := p.Wait()
	if err != nil {
		t.Fatalf("wait %v: %v", spec.Args, err)
	}
	return stdout.String(), stderr.String(), code
}

// procStatus returns the named fields of a /proc/PID/status text.
func procStatus(text string, fields ...string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, f := range fields {
			if k == f {
				out[k] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// v1Lines drops the unified hierarchy's line (0::), which exec does not
// join on a hybrid host.
func v1Lines(s string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if !strings.HasPrefix(l, "0::") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestExec(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, userns := range []bool{true, false} {
		t.Run(fmt.Sprintf("userns=%v", userns), func(t *testing.T) {
			s := e.spec(userns, "/bin/sleep", "1000")
			pid := e.start(s)

			t.Run("streams and exit code", func(t *testing.T) {
				out, errOut, code := runExec(t, e.d, s.ID, driver.ExecSpec{Args: []string{"sh", "-c", "cat; echo err >&2; exit 3"}}, "data\n")
				if out != "data\n" || errOut != "err\n" || code != 3 {
					t.Errorf("got stdout %q stderr %q code %d; want data, err, 3", out, errOut, code)
				}
			})

			t.Run("same identity as PID 1", func(t *testing.T) {
				// One exec prints what the host reads of PID 1.
				script := `cat /proc/self/status; echo ===; cat /proc/self/cgroup; echo ===; cat /proc/self/uid_map; echo ===; ` +
					`for n in mnt uts ipc net pid user cgroup; do readlink /proc/self/ns/$n; done; echo ===; readlink /proc/1/exe; pwd`
				out, errOut, code := runExec(t, e.d, s.ID, driver.ExecSpec{Args: []string{"sh", "-c", script}}, "")
				if code != 0 {
					t.Fatalf("code %d, stderr %s", code, errOut)
				}
				parts := strings.Split(out, "===\n")
				if len(parts) != 5 {
					t.Fatalf("output:\n%s", out)
				}
				host := func(f string) string {
					b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
					if err != nil {
						t.Fatal(err)
					}
					return string(b)
				}
				fields := []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters"}
				if diff := cmp.Diff(procStatus(host("status"), fields...), procStatus(parts[0], fields...)); diff != "" {
					t.Errorf("credentials differ from PID 1's (-pid1 +exec):\n%s", diff)
				}
				if diff := cmp.Diff(v1Lines(host("cgroup")), v1Lines(parts[1])); diff != "" {
					t.Errorf("cgroups differ from PID 1's (-pid1 +exec):\n%s", diff)
				}
				if diff := cmp.Diff(host("uid_map"), parts[2]); diff != "" {
					t.Errorf("uid map differs from PID 1's (-pid1 +exec):\n%s", diff)
				}
				var want strings.Builder
				for _, n := range []string{"mnt", "uts", "ipc", "net", "pid", "user", "cgroup"} {
					l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, n))
					if err != nil {
						t.Fatal(err)
					}
					want.WriteString(l + "\n")
				}
				if diff := cmp.Diff(want.String(), parts[3]); diff != "" {
					t.Errorf("namespaces differ from PID 1's (-pid1 +exec):\n%s", diff)
				}
				// In PID 1's PID namespace, PID 1 is the container's sleep.
				if parts[4] != "/bin/busybox\n/\n" {
					t.Errorf("PID 1 exe and cwd = %q, want /bin/busybox and /", parts[4])
				}
			})

			t.Run("env, cwd and user", func(t *testing.T) {
				spec := driver.ExecSpec{
					Args: []string{"sh", "-c", "echo $FOO; pwd; id -u; id -g; grep CapEff /proc/self/status"},
					Env:  []string{execPath, "FOO=bar baz"},
					Cwd:  "/tmp", UID: 1000, GID: 1001,
				}
				out, errOut, code := runExec(t, e.d, s.ID, spec, "")
				want := "bar baz\n/tmp\n1000\n1001\nCapEff:\t0000000000000000\n"
				if out != want || code != 0 {
					t.Errorf("got %q (stderr %q, code %d), want %q", out, errOut, code, want)
				}
			})

			t.Run("cwd cannot leave the root", func(t *testing.T) {
				// A symlink the container made, climbing out: resolved
				// inside the container's root, never the host's.
				upper := layer(t, s)
				os.Symlink("../../../../../../..", filepath.Join(upper, "esc"))
				os.Symlink("/", filepath.Join(upper, "abs"))
				for _, cwd := range []string{"/esc", "/abs", "/../../.."} {
					out, errOut, code := runExec(t, e.d, s.ID, driver.ExecSpec{Args: []string{"sh", "-c", "pwd; ls bin/busybox"}, Cwd: cwd}, "")
					if out != "/\nbin/busybox\n" || code != 0 {
						t.Errorf("cwd %s: got %q (stderr %q, code %d), want the container's root", cwd, out, errOut, code)
					}
				}
				if _, err := e.d.Exec(bg, s.ID, driver.ExecSpec{Args: []string{"true"}, Cwd: "/nonexistent"}); err == nil {
					t.Error("exec with a missing cwd succeeded")
				}
			})

			t.Run("not found", func(t *testing.T) {
				for _, name := range []string{"no-such-command", "/bin/no-such-command", "/etc/passwd", "/tmp"} {
					_, err := e.d.Exec(bg, s.ID, driver.ExecSpec{Args: []string{name}, Env: []string{execPath}})
					if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), name) {
						t.Errorf("exec %s: %v, want not found naming it", name, err)
					}
				}
				// Found through PATH by name, run under that name: busybox
				// applets depend on it.
				out, _, code := runExec(t, e.d, s.ID, driver.ExecSpec{Args: []string{"sh", "-c", "echo $0"}}, "")
				if out != "sh\n" || code != 0 {
					t.Errorf("sh sees $0 = %q (code %d)", out, code)
				}
			})

			t.Run("signal", func(t *testing.T) {
				outR, outW, _ := os.Pipe()
				defer outR.Close()
				p, err := e.d.Exec(bg, s.ID, driver.ExecSpec{Args: []string{"sh", "-c", "echo up; exec sleep 1000"}, Env: []string{execPath}, Stdout: outW})
				outW.Close()
				if err != nil {
					t.Fatal(err)
				}
				line := make([]byte, 3)
				io.ReadFull(outR, line)
				// sh replaces itself by sleep after printing: the signal
				// must reach it, not nsenter. Wait for the exec, by the
				// command's name: nsenter's own (it execs the command in
				// place), or its one child's when it forks.
				waitFor(t, 5*time.Second, "sh to exec sleep", func() bool {
					pid := strconv.Itoa(p.Pid())
					if kids, _ := os.ReadFile("/proc/" + pid + "/task/" + pid + "/children"); len(strings.Fields(string(kids))) == 1 {
						pid = strings.Fields(string(kids))[0]
					}
					comm, _ := os.ReadFile("/proc/" + pid + "/comm")
					return strings.TrimSpace(string(comm)) == "sleep"
				})
				if err := p.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				if code, err := p.Wait(); code != 128+int(syscall.SIGTERM) || err != nil {
					t.Errorf("Wait = %d, %v; want %d", code, err, 128+int(syscall.SIGTERM))
				}
			})

			t.Run("terminal", func(t *testing.T) {
				p, err := e.d.Exec(bg, s.ID, driver.ExecSpec{
					Args: []string{"sh", "-c", `tty; stty size; trap 'echo got-int; exit 5' INT; echo ready; while :; do sleep 1; done`},
					Env:  []string{execPath}, TTY: true, Width: 100, Height: 30,
				})
				if err != nil {
					t.Fatal(err)
				}
				tty := p.TTY()
				defer tty.Close()
				var out bytes.Buffer
				buf := make([]byte, 4096)
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(out.String(), "ready") && time.Now().Before(deadline) {
					tty.SetReadDeadline(deadline)
					n, err := tty.Read(buf)
					out.Write(buf[:n])
					if err != nil {
						break
					}
				}
				// Ctrl-C typed on the terminal reaches the command.
				tty.Write([]byte{3})
				code, err := p.Wait()
				tty.SetReadDeadline(time.Now().Add(time.Second))
				for {
					n, err := tty.Read(buf)
					out.Write(buf[:n])
					if err != nil {
						break
					}
				}
				got := strings.ReplaceAll(out.String(), "\r\n", "\n")
				if code != 5 || err != nil || !strings.HasPrefix(got, "/dev/pts/0\n30 100\n") || !strings.Contains(got, "got-int") {
					t.Errorf("code %d err %v output %q; want /dev/pts/0, 30 100, got-int and code 5", code, err, got)
				}
			})
		})
	}
}

func TestExecNotRunning(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	_, err := e.d.Exec(bg, "tnothere", driver.ExecSpec{Args: []string{"true"}})
	if !errors.Is(err, driver.ErrNotRunning) {
		t.Errorf("err = %v, want ErrNotRunning", err)
	}
	_ = context.Background
	_ = exec.Command
}

// TestExecDescriptors checks that an exec'd process holds descriptors 0,
// 1 and 2 only, even when the daemon has a descriptor without
// close-on-exec open (as one inherited from `hangard 7>file` is): with
// and without a terminal, privileged or not.
func TestExecDescriptors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	host := filepath.Join(t.TempDir(), "host-file")
	leaked, err := unix.Open(host, unix.O_WRONLY|unix.O_CREAT, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leaked)
	if flags, _ := unix.FcntlInt(uintptr(leaked), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
		t.Fatal("the leaked descriptor is close-on-exec: the test would prove nothing")
	}
	// The leaked descriptor, tried by number from inside.
	script := fmt.Sprintf(`ls -l /proc/self/fd; echo ===; echo x >&%d && echo wrote`, leaked)
	for _, userns := range []bool{false, true} {
		s := e.spec(userns, "/bin/sleep", "1000")
		e.start(s)
		for _, tty := range []bool{false, true} {
			t.Run(fmt.Sprintf("userns=%v/tty=%v", userns, tty), func(t *testing.T) {
				// "exec ls" in place of sh, so the listing is of what the
				// command got, not of what sh opened.
				spec := driver.ExecSpec{Args: []string{"sh", "-c", "exec ls -l /proc/self/fd"}, Env: []string{execPath}}
				var out string
				if tty {
					spec.TTY = true
					out = runTTYExec(t, e.d, s.ID, spec)
				} else {
					out, _, _ = runExec(t, e.d, s.ID, spec, "")
				}
				// ls's own descriptor, on the directory it lists, is the
				// lowest free one: 3 when the command got only 0-2.
				var fds []string
				for _, line := range strings.Split(out, "\n") {
					f := strings.Fields(line)
					if len(f) == 0 || len(f[0]) != 10 || f[0][0] != 'l' {
						continue // "total 0", or ls on a link it cannot read
					}
					if i := slices.Index(f, "->"); i > 0 {
						fds = append(fds, f[i-1])
					} else if len(f) > 2 {
						fds = append(fds, f[len(f)-1])
					}
				}
				slices.SortFunc(fds, func(a, b string) int { // numerically
					if len(a) != len(b) {
						return len(a) - len(b)
					}
					return strings.Compare(a, b)
				})
				if diff := cmp.Diff([]string{"0", "1", "2", "3"}, fds); diff != "" {
					t.Errorf("descriptors of an exec'd process, ls's own 3 included (-want +got):\n%s\nls -l:\n%s", diff, out)
				}
				spec.Args = []string{"sh", "-c", script}
				if tty {
					out = runTTYExec(t, e.d, s.ID, spec)
				} else {
					out, _, _ = runExec(t, e.d, s.ID, spec, "")
				}
				if strings.Contains(out, "wrote") {
					t.Errorf("the exec wrote to the daemon's descriptor %d:\n%s", leaked, out)
				}
			})
		}
	}
	if fi, err := os.Stat(host); err != nil || fi.Size() != 0 {
		t.Errorf("host file written from a container: %v, %v", fi, err)
	}
}

// runTTYExec runs spec with a terminal and returns what it printed, with
// the terminal's \r\n made \n.
func runTTYExec(t *testing.T, d *Driver, id string, spec driver.ExecSpec) string {
	t.Helper()
	p, err := d.Exec(bg, id, spec)
	if err != nil {
		t.Fatalf("exec %v: %v", spec.Args, err)
	}
	tty := p.TTY()
	defer tty.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		// Reading ends with EIO once the last holder of the terminal's
		// other end is gone.
		io.Copy(&out, tty)
		close(done)
	}()
	if _, err := p.Wait(); err != nil {
		t.Fatalf("wait %v: %v", spec.Args, err)
	}
	tty.SetReadDeadline(time.Now().Add(5 * time.Second))
	<-done
	return strings.ReplaceAll(out.String(), "\r\n", "\n")
}

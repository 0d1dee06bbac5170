// Package e2e drives a real hangard, started from the freshly built binary
// on a temporary data dir and socket, through the hangar CLI and the Go SDK.
// Containers are real: runc, namespaces, cgroups. The tests need root and
// runc; they skip with the reason when either is missing.
package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
	hangard "github.com/hangar-dev/hangar/internal/daemon"
)

var (
	binDir       string // holds the built hangard and hangar
	imageTarball string // a busybox root filesystem with busybox init, gzipped tar
	// sleeperTarball's /sbin/init prints a line and sleeps: as PID 1 it
	// ignores the stop signal, so only a kill ends it.
	sleeperTarball string
	// exit7Tarball's /sbin/init exits with code 7 at once.
	exit7Tarball string
	skipReason   string
	staticHelper string // hangard built without cgo, for --exec-helper
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	switch {
	case os.Geteuid() != 0:
		skipReason = "end-to-end tests need root (containers need namespaces, cgroups and mounts)"
	case lookPath("runc") == "":
		skipReason = "runc is not installed (apt-get install runc)"
	case lookPath("busybox") == "":
		skipReason = "busybox is not installed (apt-get install busybox-static)"
	}
	if skipReason != "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "hangar-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = filepath.Join(dir, "bin")
	// The binaries are built with the race detector, which otherwise sleeps
	// a second at every exit: a second per CLI call. Races still report.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	// HANGAR_E2E_NORACE=1 builds without the race detector, for
	// measurements (bench/standby.sh): it slows compression 20-fold.
	raceFlag := "-race"
	if os.Getenv("HANGAR_E2E_NORACE") == "1" {
		raceFlag = "-buildvcs=auto"
	}
	build := exec.Command("go", "build", raceFlag, "-o", binDir+"/", "github.com/hangar-dev/hangar/cmd/hangard", "github.com/hangar-dev/hangar/cmd/hangar")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		return 1
	}
	// The race detector needs cgo, so the daemon above is dynamically
	// linked; the program it runs inside containers for terminal execs must
	// be static: the product build of hangard.
	staticHelper = filepath.Join(dir, "static", "hangard")
	build = exec.Command("go", "build", "-o", staticHelper, "github.com/hangar-dev/hangar/cmd/hangard")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build static helper:", err)
		return 1
	}
	imageTarball = filepath.Join(dir, "busybox.tar.gz")
	sleeperTarball = filepath.Join(dir, "sleeper.tar.gz")
	exit7Tarball = filepath.Join(dir, "exit7.tar.gz")
	for path, init := range map[string]string{
		imageTarball:   "",
		sleeperTarball: "#!/bin/sh\necho hello-from-init\nexec /bin/sleep 2147483647\n",
		exit7Tarball:   "#!/bin/sh\nexit 7\n",
	} {
		if err := writeBusyboxTarball(path, init); err != nil {
			fmt.Fprintln(os.Stderr, "rootfs:", err)
			return 1
		}
	}
	return m.Run()
}

func lookPath(name string) string {
	p, _ := exec.LookPath(name)
	return p
}

func requireE2E(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// writeBusyboxTarball builds a root filesystem from the host's static
// busybox. With init empty, /sbin/init is busybox init, whose inittab keeps
// the container up; otherwise /sbin/init is the given script.
func writeBusyboxTarball(path, init string) error {
	bb, err := os.ReadFile(lookPath("busybox"))
	if err != nil {
		return err
	}
	out, err := exec.Command("busybox", "--list-full").Output()
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	now := time.Now()
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: now})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: now}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "etc", "root", "run", "var", "var/log"} {
		if err := dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := dir("tmp", 0o1777); err != nil {
		return err
	}
	if err := file("bin/busybox", 0o755, bb); err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "bin/busybox" || (init != "" && applet == "sbin/init") {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: applet, Linkname: "/bin/busybox", Mode: 0o777, ModTime: now}); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/inittab": "::sysinit:/bin/mount -t tmpfs tmpfs /tmp\n::respawn:/bin/sleep 2147483647\n::shutdown:/bin/true\n",
		"etc/passwd":  "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":   "root:x:0:\n",
	}
	for name, content := range files {
		if err := file(name, 0o644, []byte(content)); err != nil {
			return err
		}
	}
	if init != "" {
		if err := file("sbin/init", 0o755, []byte(init)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// daemon is one running hangard.
type daemon struct {
	t      *testing.T
	dir    string
	socket string
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
	// env is added to hangard's environment (SSL_CERT_FILE: the roots
	// its egress proxy verifies a test's upstream with).
	env []string
	// extraFiles are inherited by hangard as descriptors 3, 4, ...
	extraFiles []*os.File
	// netns is the network namespace (a bind-mounted file) hangard runs
	// in: its bridges, firewall table and dnsmasq never touch the host's
	// network, and it outlives daemon restarts of the same test.
	netns string
	// args are extra hangard flags.
	args []string
}

// startDaemon starts hangard on dir (created when empty) and waits until
// it answers. The test's cleanup removes every instance and stops it.
func startDaemon(t *testing.T, dir string, args ...string) *daemon {
	t.Helper()
	requireE2E(t)
	if dir == "" {
		// Not t.TempDir: hangard runs as root in it and must be gone first.
		var err error
		if dir, err = os.MkdirTemp("", "hangard-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := os.RemoveAll(dir); err != nil {
				t.Errorf("remove data dir: %v", err)
			}
		})
	}
	d := &daemon{t: t, dir: dir, socket: filepath.Join(dir, "unix.socket"), args: args}
	d.netns = newNetns(t)
	d.start()
	return d
}

// startDaemonIn starts hangard on a new data dir in the network namespace
// netns (which the test set up).
func startDaemonIn(t *testing.T, netns string) *daemon {
	t.Helper()
	return startDaemonInEnv(t, netns)
}

// startDaemonInEnv is startDaemonIn with env ("KEY=VALUE") added to
// hangard's environment.
func startDaemonInEnv(t *testing.T, netns string, env ...string) *daemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "hangard-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove data dir: %v", err)
		}
	})
	d := &daemon{t: t, dir: dir, socket: filepath.Join(dir, "unix.socket"), netns: netns, env: env}
	d.start()
	return d
}

// newNetns makes a network namespace with loopback up, removed when the
// test ends (after its daemons stopped: cleanups run last-in first-out).
func newNetns(t *testing.T) string {
	t.Helper()
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(netnsDir, "ns-")
	if err != nil {
		t.Fatal(err)
	}
	path := f.Name()
	f.Close()
	t.Cleanup(func() {
		_ = syscall.Unmount(path, syscall.MNT_DETACH)
		_ = os.Remove(path)
	})
	for _, args := range [][]string{
		{"unshare", "--net=" + path, "true"},
		{"nsenter", "--net=" + path, "ip", "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	return path
}

// netnsDir holds the tests' network namespaces.
const netnsDir = "/run/hangar-e2e"

// startDaemonWithFiles starts hangard as startDaemon does, with files
// inherited as descriptors 3, 4, ... (a nil entry leaves its number
// closed), as a shell's `hangard 7>file` would.
func startDaemonWithFiles(t *testing.T, files []*os.File) *daemon {
	t.Helper()
	requireE2E(t)
	dir, err := os.MkdirTemp("", "hangard-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove data dir: %v", err)
		}
	})
	d := &daemon{t: t, dir: dir, socket: filepath.Join(dir, "unix.socket"), extraFiles: files}
	d.netns = newNetns(t)
	d.start()
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	log, err := os.OpenFile(filepath.Join(d.dir, "hangard.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	d.log = log
	// nsenter execs hangard in the test's network namespace: the pid is
	// hangard's own.
	d.cmd = exec.Command("nsenter", append([]string{"--net=" + d.netns, "--", filepath.Join(binDir, "hangard"),
		"--data-dir", d.dir, "--log-level", "debug", "--exec-helper", staticHelper}, d.args...)...)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.ExtraFiles = d.extraFiles

	if len(d.env) > 0 {
		d.cmd.Env = append(os.Environ(), d.env...)
	}
	// Its own process group, so a test's kill reaches only the daemon.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.exited = make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := client.Connect(d.socket)
		if err == nil {
			_, _, err = c.GetServer(context.Background())
			c.Close()
			if err == nil {
				break
			}
		}
		select {
		case <-d.exited:
			d.t.Fatalf("hangard exited at start:\n%s", d.logText())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("hangard not ready after 20s:\n%s", d.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Cleanup(d.cleanup)
}

func (d *daemon) logText() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "hangard.log"))
	return string(b)
}

// kill9 kills the daemon the hard way: running containers must survive.
func (d *daemon) kill9() {
	d.t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
	d.log.Close()
}

// cleanup stops and deletes every instance, then stops the daemon, so no
// test leaves a process, mount or cgroup behind.
func (d *daemon) cleanup() {
	select {
	case <-d.exited:
		return
	default:
	}
	// The cgroup check below holds only for a daemon this clean-up emptied.
	clean := true
	c, err := client.Connect(d.socket)
	if err != nil {
		clean = false
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Every project's instances: a test that failed before deleting
		// its own must not leave a VM running for the rest of the run.
		projects, err := c.GetProjectNames(ctx)
		if err != nil || len(projects) == 0 {
			projects = []string{"default"}
		}
		for _, p := range projects {
			pc := c.UseProject(p)
			names, _ := pc.GetInstanceNames(ctx)
			for _, n := range names {
				if op, err := pc.UpdateInstanceState(ctx, n, api.InstanceStatePut{Action: "stop", Force: true}); err == nil {
					_ = op.Wait(ctx)
				}
				if op, err := pc.DeleteInstance(ctx, n); err == nil {
					if err := op.Wait(ctx); err != nil {
						clean = false
						d.t.Errorf("cleanup: delete %s/%s: %v", p, n, err)
					}
				} else {
					clean = false
				}
			}
		}
		c.Close()
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		clean = false
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.log.Close()
	if d.t.Failed() {
		d.t.Logf("hangard log:\n%s", d.logText())
	}
	if mounts := mountsUnder(d.dir); len(mounts) > 0 {
		d.t.Errorf("mounts left under %s: %v", d.dir, mounts)
	}
	if clean {
		if left := cgroupsOf(d.dir); len(left) > 0 {
			d.t.Errorf("cgroups left by a daemon that stopped with no instance: %v", left)
		}
		// A container's veth goes with its network namespace, which the
		// kernel tears down in the background once the last user left.
		var left []string
		deadline := time.Now().Add(10 * time.Second)
		for left = d.instanceLinks(); len(left) > 0 && time.Now().Before(deadline); left = d.instanceLinks() {
			time.Sleep(50 * time.Millisecond)
		}
		if len(left) > 0 {
			d.t.Errorf("instance links left by a daemon that stopped with no instance: %v", left)
		}
	}
	if procs := processesNaming(d.dir); len(procs) > 0 {
		d.t.Errorf("processes left by a stopped daemon: %v", procs)
	}
}

// instanceLinks lists the host-side links of instance NICs in the daemon's
// network namespace.
func (d *daemon) instanceLinks() []string {
	out, err := exec.Command("nsenter", "--net="+d.netns, "ip", "-o", "link", "show").Output()
	if err != nil {
		return []string{err.Error()}
	}
	var left []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "hgr") {
			left = append(left, strings.TrimSuffix(f[1], ":"))
		}
	}
	return left
}

// cgroupsOf lists the cgroup directories, in every hierarchy, of the
// daemon on data dir dir.
func cgroupsOf(dir string) []string {
	var out []string
	for _, p := range hangard.CgroupParents(dir) {
		found, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", p))
		out = append(out, found...)
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", p)); err == nil {
			out = append(out, filepath.Join("/sys/fs/cgroup", p))
		}
	}
	return out
}

// mountsUnder lists mount points below dir.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// hangar runs the CLI against this daemon.
func (d *daemon) hangar(args ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "hangar"), append([]string{"--socket", d.socket}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		d.t.Fatalf("run hangar %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// must runs the CLI and fails the test unless it exits 0.
func (d *daemon) must(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.hangar(args...)
	if code != 0 {
		d.t.Fatalf("hangar %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// client returns an SDK client for this daemon.
func (d *daemon) client() *client.Client {
	d.t.Helper()
	c, err := client.Connect(d.socket)
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(c.Close)
	return c
}

// importImages imports the test images as "busybox", "sleeper" and "exit7".
func (d *daemon) importImages() {
	d.t.Helper()
	d.must("image", "import", imageTarball, "--alias", "busybox", "--os", "busybox", "--release", "1.35")
	d.must("image", "import", sleeperTarball, "--alias", "sleeper", "--os", "busybox")
	d.must("image", "import", exit7Tarball, "--alias", "exit7", "--os", "busybox")
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// processAlive reports whether pid runs. A zombie counts as dead: after a
// daemon restart, a container's PID 1 belongs to the host's init, which
// reaps it in its own time.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

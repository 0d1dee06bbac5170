// Command hangar-agent is the guest agent of virtual machines booted from
// OCI images. The daemon puts it in the VM's initramfs as /init, so it runs
// as PID 1: it loads the kernel modules it needs, finds the root disk by
// serial, mounts it, grows its filesystem to the disk, and moves into it,
// waits for the extra disks and links them in /dev/disk/by-id, mounts the
// 9p shares (disks.go), configures the network interfaces the daemon gave
// it (net.go), runs the image's entrypoint with the image's environment,
// working directory and user, reaps orphans, and serves the daemon over a
// virtio-serial port (package vmagent): exec, files, NICs and disks
// plugged later, a grown root, the interfaces' state, shutdown. When the entrypoint ends, the machine
// powers off, as a container stops when its PID 1 exits.
//
// It must be built static (CGO_ENABLED=0): it runs before any root
// filesystem, and then inside one whose libraries are the image's.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

// serveArg starts the agent as an ordinary process that only serves the
// daemon: beside an init system, which must be PID 1 itself. rootEnv
// hands it the root disk (JSON), which it needs to grow the root's
// filesystem: the boot configuration stays in the initramfs, out of reach
// once the root is mounted.
const (
	serveArg = "--serve-beside-init"
	rootEnv  = "HANGAR_AGENT_ROOT"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == serveArg {
		a := &agent{reaper: newReaper(), workload: 1}
		if r := os.Getenv(rootEnv); r != "" {
			var root vmagent.Disk
			if err := json.Unmarshal([]byte(r), &root); err == nil {
				a.cfg.Root = &root
			}
		}
		go a.reaper.run()
		a.serve()
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "hangar-agent runs as PID 1 inside a hangar virtual machine (it is the VM's /init)")
		os.Exit(2)
	}
	a := &agent{reaper: newReaper()}
	if err := a.boot(); err != nil {
		logf("boot failed: %v", err)
		a.powerOff(vmagent.WorkloadExit{Code: 1})
	}
	a.serve()
}

// logf writes to the kernel console, which the daemon keeps as the
// instance's console log.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "hangar-agent: "+format+"\n", args...)
}

type agent struct {
	cfg    vmagent.Config
	reaper *reaper
	// workload is the entrypoint's pid; 0 once it ended.
	workload int
	// w writes to the port (set before session, which carries it to
	// other goroutines); session is the current daemon connection's.
	w       *vmagent.Writer
	session atomic.Pointer[session]
	net     netConfig
	// oom counts the OOM kills of the workload's processes (workload.go).
	oom oomCounter
	// failed is the report of a workload that could not be executed:
	// serve sends it once the daemon is told the agent is up, then the
	// machine powers off.
	failed *vmagent.WorkloadExit
}

func (a *agent) boot() error {
	for _, m := range []struct{ src, dst, fs string }{
		{"devtmpfs", "/dev", "devtmpfs"},
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
	} {
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	console, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
	if err == nil {
		os.Stdout, os.Stderr = console, console
		_ = unix.Dup2(int(console.Fd()), 0)
		_ = unix.Dup2(int(console.Fd()), 1)
		_ = unix.Dup2(int(console.Fd()), 2)
	}
	raw, err := os.ReadFile(vmagent.ConfigPath)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(raw, &a.cfg); err != nil {
		return fmt.Errorf("parse config: %w", err)
	}
	for _, m := range a.cfg.Modules {
		if err := loadModule(m); err != nil {
			return err
		}
	}
	if err := a.mountRoot(); err != nil {
		return err
	}
	if err := waitDisks(a.cfg.Disks); err != nil {
		return err
	}
	if err := mountShares(a.cfg.Mounts); err != nil {
		return err
	}
	// Before the workload or the image's init: its first TLS connection
	// through the egress proxy must already verify. A root that cannot
	// be written still boots; the workload's TLS to a credential's host
	// then fails verification, which names the problem.
	if err := trustEgressCA("/", []byte(a.cfg.EgressCA)); err != nil {
		logf("trust the egress CA: %v", err)
	}
	if a.cfg.Hostname != "" {
		_ = unix.Sethostname([]byte(a.cfg.Hostname))
	}
	// The network is up before the workload (or the image's init)
	// starts, as a container's is.
	if err := a.net.setUp(a.cfg.NICs); err != nil {
		return err
	}
	if isInit(a.cfg.Args, a.cfg.Env) {
		return a.handOver()
	}
	go a.reaper.run()
	pid, err := a.startWorkload()
	if err != nil {
		if e, ok := startFailure(a.cfg.Args[0], err); ok {
			logf("the workload could not be executed: %s", e.Message)
			a.failed = &e
			return nil
		}
		return err
	}
	a.workload = pid
	go a.watchWorkload(pid)
	return nil
}

// isInit tells an init system (busybox init, systemd, sysvinit: the
// /sbin/init of an LXD image) from an application: it must run as PID 1,
// and shuts the machine down itself. A script named init is an
// application that happens to be called so: it runs as the workload.
func isInit(args []string, env []string) bool {
	if len(args) == 0 || !(strings.HasSuffix(args[0], "/init") || strings.HasSuffix(args[0], "/systemd")) {
		return false
	}
	bin, err := lookPath(args[0], env)
	if err != nil {
		return false
	}
	f, err := os.Open(bin)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 2)
	n, _ := f.Read(head)
	return !(n == 2 && string(head) == "#!")
}

// handOver gives PID 1 to the image's init system: the agent starts again
// from its own executable (reachable through /proc/self/exe though the
// initramfs is not by path) as an ordinary process that serves the daemon,
// then this process becomes the init. Orphans and shutdown are the init's
// business from then on; the daemon's stop sends it the stop signal.
func (a *agent) handOver() error {
	env := a.cfg.Env
	if !hasEnv(env, "PATH") {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	bin, err := lookPath(a.cfg.Args[0], env)
	if err != nil {
		return err
	}
	serveEnv := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if a.cfg.Root != nil {
		b, _ := json.Marshal(a.cfg.Root)
		serveEnv = append(serveEnv, rootEnv+"="+string(b))
	}
	_, err = syscall.ForkExec("/proc/self/exe", []string{"hangar-agent", serveArg}, &syscall.ProcAttr{
		Dir:   "/",
		Env:   serveEnv,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return fmt.Errorf("start the agent beside init: %w", err)
	}
	if a.cfg.Cwd != "" {
		_ = os.Chdir(a.cfg.Cwd)
	}
	return syscall.Exec(bin, a.cfg.Args, env)
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	return nil
}

// mountRoot mounts the root disk, grows its filesystem to the disk's size
// (storage may have grown the disk), and makes it the root, keeping /dev,
// /proc and /sys. The initramfs stays in memory beneath it; it is small.
func (a *agent) mountRoot() error {
	dev := a.cfg.RootDevice
	deadline := time.Now().Add(diskWait)
	if a.cfg.Root != nil {
		var err error
		if dev, err = findDisk(*a.cfg.Root, deadline); err != nil {
			return fmt.Errorf("root disk: %w", err)
		}
	}
	for {
		if _, err := os.Stat(dev); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("root device %s did not appear", dev)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := os.MkdirAll("/newroot", 0o755); err != nil {
		return err
	}
	if err := unix.Mount(dev, "/newroot", a.cfg.RootFSType, 0, ""); err != nil {
		return fmt.Errorf("mount root %s: %w", dev, err)
	}
	if a.cfg.RootFSType == "ext4" {
		// A root that cannot grow still boots, at its old size.
		if from, to, err := growExt4(dev, "/newroot"); err != nil {
			logf("%v", err)
		} else if to > from {
			logf("grew the root filesystem from %d to %d blocks", from, to)
		}
	}
	for _, d := range []string{"/dev", "/proc", "/sys"} {
		_ = os.MkdirAll("/newroot"+d, 0o755)
		if err := unix.Mount(d, "/newroot"+d, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s: %w", d, err)
		}
	}
	if err := os.Chdir("/newroot"); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	for _, m := range []struct{ dst, fs, opts string }{
		{"/dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=0620"},
		{"/dev/shm", "tmpfs", "mode=1777"},
		{"/tmp", "", ""},
		{"/run", "tmpfs", "mode=0755"},
	} {
		if m.fs == "" {
			_ = os.MkdirAll(m.dst, 0o1777)
			continue
		}
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.fs, m.dst, m.fs, unix.MS_NOSUID|unix.MS_NOEXEC, m.opts); err != nil {
			logf("mount %s: %v", m.dst, err)
		}
	}
	// The new devpts instance's ptmx: /dev/ptmx from devtmpfs belongs to the
	// initial instance, which is not mounted.
	_ = os.Remove("/dev/ptmx")
	_ = os.Symlink("pts/ptmx", "/dev/ptmx")
	return nil
}

func (a *agent) startWorkload() (int, error) {
	env := a.cfg.Env
	if !hasEnv(env, "PATH") {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if !hasEnv(env, "TERM") {
		env = append(env, "TERM=xterm")
	}
	if len(a.cfg.Args) == 0 {
		return 0, fmt.Errorf("no command to run")
	}
	bin, err := lookPath(a.cfg.Args[0], env)
	if err != nil {
		return 0, err
	}
	cwd := a.cfg.Cwd
	if cwd == "" {
		cwd = "/"
	}
	console, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return 0, fmt.Errorf("open console: %w", err)
	}
	defer console.Close()
	out := console
	// The workload's output goes down the app log port when QEMU has one
	// (it appends to the same console log), the console otherwise: the
	// serial UART is too slow for a chatty workload (vmagent.LogPortName).
	if dev, err := findPort(vmagent.LogPortName, 5*time.Second); err != nil {
		logf("workload output on the console: %v", err)
	} else if f, err := os.OpenFile(dev, os.O_WRONLY, 0); err != nil {
		logf("workload output on the console: open %s: %v", dev, err)
	} else {
		defer f.Close()
		out = f
	}
	null, err := os.Open("/dev/null")
	if err != nil {
		return 0, err
	}
	defer null.Close()
	attr := &syscall.ProcAttr{
		Dir:   cwd,
		Env:   env,
		Files: []uintptr{null.Fd(), out.Fd(), out.Fd()},
		Sys: &syscall.SysProcAttr{
			Setsid:     true,
			Credential: &syscall.Credential{Uid: a.cfg.UID, Gid: a.cfg.GID, NoSetGroups: a.cfg.UID == 0},
		},
	}
	// The guest-wide count is read first: it is the fallback's base.
	a.oom = newOOMCounter(false)
	cg := setUpWorkloadCgroup()
	if cg == nil {
		return a.reaper.start(bin, a.cfg.Args, attr)
	}
	defer cg.Close()
	attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, int(cg.Fd())
	pid, err := a.reaper.start(bin, a.cfg.Args, attr)
	if _, execFailed := startFailure(bin, err); err != nil && !execFailed {
		// clone3 into the cgroup failed (an old kernel): run it in the
		// root cgroup, counted guest-wide.
		logf("start the workload in a cgroup of its own: %v; it runs in the guest's root cgroup", err)
		attr.Sys.UseCgroupFD = false
		return a.reaper.start(bin, a.cfg.Args, attr)
	}
	if err == nil {
		a.oom = newOOMCounter(true)
	}
	return pid, err
}

// watchWorkload powers the machine off when the entrypoint ends.
func (a *agent) watchWorkload(pid int) {
	e := workloadExit(a.reaper.waitStatus(pid), a.oom.killed())
	logf("workload exited with code %d (signal %d, oom %t)", e.Code, e.Signal, e.OOM)
	a.powerOff(e)
}

// powerOff reports the workload's end to the daemon (if one listens), ends
// every process, and turns the machine off.
func (a *agent) powerOff(e vmagent.WorkloadExit) {
	if os.Getpid() != 1 {
		// Beside an init system: powering off is the init's business,
		// and killing every process is not this process's to do.
		logf("exiting (code %d)", e.Code)
		os.Exit(1)
	}
	if s := a.session.Load(); s != nil {
		done := make(chan struct{})
		go func() {
			b, _ := json.Marshal(e)
			_ = s.w.Write(vmagent.MsgWorkloadExit, 0, b)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(500 * time.Millisecond):
		}
	}
	_ = unix.Kill(-1, unix.SIGKILL)
	unix.Sync()
	_ = unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// No ACPI: QEMU runs with -no-reboot, so a reset ends it too.
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	select {}
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// errNotFound and errNotExecutable are the shell's 127 and 126.
type lookupError struct {
	msg  string
	code int
}

func (e *lookupError) Error() string { return e.msg }

func lookPath(name string, env []string) (string, error) {
	check := func(p string) error {
		st, err := os.Stat(p)
		if err != nil {
			return &lookupError{fmt.Sprintf("%s: not found", name), 127}
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return &lookupError{fmt.Sprintf("%s: permission denied", name), 126}
		}
		return nil
	}
	if strings.Contains(name, "/") {
		if err := check(name); err != nil {
			return "", err
		}
		return name, nil
	}
	path := envValue(env, "PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	var last error = &lookupError{fmt.Sprintf("%s: not found", name), 127}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		err := check(p)
		if err == nil {
			return p, nil
		}
		if le, ok := err.(*lookupError); ok && le.code == 126 {
			last = err
		}
	}
	return "", last
}

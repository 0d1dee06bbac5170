package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/cloexec"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/fsroot"
	"github.com/hangar-dev/hangar/internal/osthread"
	"github.com/hangar-dev/hangar/internal/revert"
)

// Exec starts a process inside a running container.
//
// The fast path has no runc and no helper of ours: nsenter (util-linux)
// joins PID 1's namespaces and execs the command in its place. The rest
// is done before it runs, on a throwaway OS thread of the daemon that
// forks it, since a child inherits them from the forking thread: that
// thread joins PID 1's PID namespace (setns of a PID namespace changes
// only where the thread's children are born, and a thread of a
// multithreaded process may do it, unlike the user and mount namespaces
// that nsenter joins), so that nsenter is born in it and need not fork
// and wait a second process; it joins the container's cgroups (v1: one
// thread can move alone; v2: clone3 CLONE_INTO_CGROUP instead), takes PID
// 1's bounding set and no_new_privs, and loads the container's seccomp
// filter. The thread then exits, because none of that can be undone.
//
// The working directory is resolved safely inside the container by the
// daemon (openat2 RESOLVE_IN_ROOT under /proc/PID1/root) and handed to
// nsenter as /proc/<daemon>/fd/N, which it opens before entering the
// namespaces: a container cannot make it point outside its root.
//
// A terminal needs one thing more: the command must lead a new session
// with the terminal as its controlling terminal. For -t, nsenter runs
// this very program (passed as fd 3, run as /proc/self/fd/3) in its
// terminal-helper mode (RunExecTTYHelper), which does setsid and TIOCSCTTY
// and execs the command in place: the helper becomes the command.
//
// The command gets descriptors 0, 1 and 2 and nothing else: just before
// the fork, every other descriptor of the daemon is marked close-on-exec
// (nsenter closes nothing), and the terminal helper marks its own.
func (d *Driver) Exec(ctx context.Context, id string, spec driver.ExecSpec) (driver.Process, error) {
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	if len(spec.Args) == 0 || spec.Args[0] == "" {
		return nil, fmt.Errorf("exec in %s: %w", id, errdefs.Invalid("no command"))
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return nil, fmt.Errorf("exec in %s: %w", id, errdefs.Invalid("working directory %q is not absolute", cwd))
	}
	if d.nsenter == "" {
		return nil, fmt.Errorf("exec in %s: nsenter is not installed (util-linux)", id)
	}
	in := d.lookup(id)
	if in == nil {
		return nil, fmt.Errorf("exec in %s: %w", id, driver.ErrNotRunning)
	}
	p, err := d.exec(in, spec, cwd)
	if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrInvalidArgument) {
		return nil, err // about the request, and says so: the runtime ID would only confuse
	}
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	return p, nil
}

func (d *Driver) exec(in *instance, spec driver.ExecSpec, cwd string) (*process, error) {
	pid1 := in.pid
	// The pidfd pins PID 1: while it is open and PID 1 is alive, the pid
	// below names it and nothing else.
	if err := unix.PidfdSendSignal(int(in.pidfd.Fd()), 0, nil, 0); err != nil {
		return nil, driver.ErrNotRunning
	}
	target, err := readExecTarget(pid1)
	if err != nil {
		return nil, err
	}

	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", pid1), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open container root: %w", err)
	}
	defer unix.Close(root)
	wd, err := openInRoot(root, cwd, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil && spec.CwdOptional {
		wd, err = openInRoot(root, "/", unix.O_RDONLY|unix.O_DIRECTORY)
	}
	if err != nil {
		return nil, errdefs.Invalid("working directory %s: %v", cwd, err)
	}
	// nsenter opens it by path before it forks: keep it open until then,
	// which is until Start returns at the earliest; closing it after Wait
	// is simpler and costs one descriptor per running exec.
	wdFile := os.NewFile(uintptr(wd), "cwd")

	// Checked here, run by name below: nsenter's execvp finds the same
	// file in the same PATH inside the container, and argv[0] stays what
	// was asked (a busybox applet is told what to be by it).
	if err := findCommand(root, spec.Args[0], envValue(spec.Env, "PATH")); err != nil {
		wdFile.Close()
		return nil, err
	}

	// Without --pid: the thread that forks nsenter joins the PID
	// namespace (prepareThread). nsenter forks only to enter a time
	// namespace, which, like a PID namespace, applies to children.
	args := []string{d.nsenter, "--target", strconv.Itoa(pid1)}
	args = append(args, target.nsFlags...)
	if target.userns || spec.UID != 0 || spec.GID != 0 {
		args = append(args, "--setuid", strconv.FormatUint(uint64(spec.UID), 10),
			"--setgid", strconv.FormatUint(uint64(spec.GID), 10))
	}
	args = append(args, fmt.Sprintf("--wd=/proc/%d/fd/%d", os.Getpid(), wd), "--")

	p := &process{forks: target.timens}
	cmd := &exec.Cmd{Path: d.nsenter, Env: spec.Env, SysProcAttr: &syscall.SysProcAttr{}}
	if spec.TTY {
		master, slave, err := openContainerPty(root, target.hostID(spec.UID), target.hostID(ttyGID))
		if err != nil {
			wdFile.Close()
			return nil, err
		}
		if spec.Width > 0 && spec.Height > 0 {
			_ = setWinsize(master, spec.Width, spec.Height)
		}
		defer slave.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		// fd 3 in nsenter, and so in the helper it forks.
		cmd.ExtraFiles = []*os.File{d.selfExe}
		args = append(args, "/proc/self/fd/3", execTTYHelperArg)
		p.tty = master
	} else {
		// Assigned only when set: a nil *os.File in the io.Reader would
		// not be nil, and exec.Cmd gives /dev/null only for nil.
		if spec.Stdin != nil {
			cmd.Stdin = spec.Stdin
		}
		if spec.Stdout != nil {
			cmd.Stdout = spec.Stdout
		}
		if spec.Stderr != nil {
			cmd.Stderr = spec.Stderr
		}
	}
	cmd.Args = append(args, spec.Args...)

	if err := d.startOnPreparedThread(cmd, in, target); err != nil {
		wdFile.Close()
		if p.tty != nil {
			p.tty.Close()
		}
		return nil, err
	}
	p.cmd = cmd
	p.wd = wdFile
	return p, nil
}

// execTarget is what an exec must copy from PID 1.
type execTarget struct {
	nsFlags  []string // nsenter flags for the namespaces PID 1 does not share with us, but its PID namespace
	pidns    bool     // PID 1's PID namespace is not ours: the forking thread joins it
	timens   bool     // nor is its time namespace: nsenter joins it and forks
	userns   bool
	idMap    []idRange // PID 1's uid map (nil: the host's)
	bounding uint64
	noNewPrv bool
	seccomp  bool
	cgroups  []cgroupMembership
}

type idRange struct{ inside, outside, size uint32 }

// hostID maps an id inside the container to the host.
func (t execTarget) hostID(id uint32) int {
	if !t.userns {
		return int(id)
	}
	for _, r := range t.idMap {
		if id >= r.inside && id-r.inside < r.size {
			return int(r.outside + (id - r.inside))
		}
	}
	return -1
}

// cgroupMembership is one line of /proc/PID/cgroup.
type cgroupMembership struct {
	controllers string // "memory", "cpu,cpuacct", "name=systemd"; "" for v2
	path        string
}

// nsTypes are the namespaces an exec joins when PID 1's differ from ours,
// with nsenter's flag for each. The user namespace comes first in nsenter
// whatever the order here.
var nsTypes = []struct{ file, flag string }{
	{"user", "--user"},
	{"mnt", "--mount"},
	{"uts", "--uts"},
	{"ipc", "--ipc"},
	{"net", "--net"},
	{"pid", "--pid"},
	{"cgroup", "--cgroup"},
	{"time", "--time"},
}

// ownNamespaces are the daemon's namespaces, in nsTypes order, read once:
// they never change. A missing one (time, before Linux 5.6) is zero.
var ownNamespaces = sync.OnceValues(func() ([]unix.Stat_t, error) {
	out := make([]unix.Stat_t, len(nsTypes))
	for i, ns := range nsTypes {
		err := unix.Stat("/proc/self/ns/"+ns.file, &out[i])
		if err != nil && !(errors.Is(err, unix.ENOENT) && ns.file == "time") {
			return nil, fmt.Errorf("read own namespaces: %w", err)
		}
	}
	return out, nil
})

// readExecTarget reads PID 1's namespaces, credentials and cgroups.
func readExecTarget(pid int) (execTarget, error) {
	var t execTarget
	own, err := ownNamespaces()
	if err != nil {
		return t, err
	}
	for i, ns := range nsTypes {
		var theirs unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, ns.file), &theirs); err != nil {
			if errors.Is(err, unix.ENOENT) && ns.file == "time" {
				continue // kernels before 5.6
			}
			return t, fmt.Errorf("read namespaces of PID 1: %w", err)
		}
		if theirs.Ino != own[i].Ino || theirs.Dev != own[i].Dev {
			switch ns.file {
			case "pid":
				t.pidns = true
				continue
			case "user":
				t.userns = true
			case "time":
				t.timens = true
			}
			t.nsFlags = append(t.nsFlags, ns.flag)
		}
	}
	status, err := readProcFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return t, fmt.Errorf("read PID 1 status: %w", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "CapBnd":
			if t.bounding, err = strconv.ParseUint(v, 16, 64); err != nil {
				return t, fmt.Errorf("PID 1 CapBnd %q: %w", v, err)
			}
		case "NoNewPrivs":
			t.noNewPrv = v == "1"
		case "Seccomp":
			t.seccomp = v == "2"
		}
	}
	if t.userns {
		if t.idMap, err = readIDMap(fmt.Sprintf("/proc/%d/uid_map", pid)); err != nil {
			return t, err
		}
	}
	cg, err := readProcFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return t, fmt.Errorf("read PID 1 cgroups: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		// hierarchy-id:controllers:path
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		t.cgroups = append(t.cgroups, cgroupMembership{controllers: f[1], path: f[2]})
	}
	return t, nil
}

func readIDMap(p string) ([]idRange, error) {
	b, err := readProcFile(p)
	if err != nil {
		return nil, fmt.Errorf("read id map: %w", err)
	}
	var out []idRange
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		var n [3]uint64
		for i := range f {
			if n[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, fmt.Errorf("parse id map %q: %w", line, err)
			}
		}
		out = append(out, idRange{uint32(n[0]), uint32(n[1]), uint32(n[2])})
	}
	return out, nil
}

// readProcFile reads a small file of /proc with plain syscalls: os.ReadFile
// would also try (and fail) to register it with the runtime's poller,
// which costs five more syscalls per file on every exec.
func readProcFile(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	b := make([]byte, 0, 4096)
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, cap(b))
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// startOnPreparedThread starts cmd from a new OS thread that first takes
// on what the child must inherit from PID 1: PID namespace, cgroups,
// bounding set, no_new_privs and seccomp filter. The thread ends with the
// start (osthread.Throwaway): it is never reused, and never the daemon's
// main thread, which Go would keep, parked in the container's cgroups.
func (d *Driver) startOnPreparedThread(cmd *exec.Cmd, in *instance, t execTarget) error {
	// The v1 hierarchies' tasks files, found before the thread starts
	// so that it only opens and writes them.
	var tasks []string
	if !d.cg.v2 {
		for _, m := range t.cgroups {
			if m.controllers == "" {
				// The unified hierarchy of a hybrid host carries no
				// controller, and v2 cannot move a single thread.
				continue
			}
			// Every hierarchy, not only those with limits: the devices
			// cgroup is what keeps the container off the host's disks.
			dir, err := v1HierarchyDir(m)
			if err != nil {
				return err
			}
			tasks = append(tasks, dir+"/tasks")
		}
	}
	var cgroupFD *os.File
	if d.cg.v2 {
		// v2 moves whole processes only: the child is cloned straight
		// into the cgroup instead.
		for _, m := range t.cgroups {
			if m.controllers == "" {
				f, err := os.Open(d.cg.dir("", m.path))
				if err != nil {
					return fmt.Errorf("open cgroup: %w", err)
				}
				defer f.Close()
				cgroupFD = f
			}
		}
		if cgroupFD == nil {
			return errors.New("PID 1 has no cgroup v2 membership")
		}
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(cgroupFD.Fd())
	}
	var filter []unix.SockFilter
	if t.seccomp {
		if filter = execSeccompFilter(); filter == nil {
			return fmt.Errorf("no seccomp syscall table for %s: cannot give the process PID 1's filter", runtime.GOARCH)
		}
	}
	var err error
	// A thread of its own, never the main one (package osthread): it ends
	// with the fork, taking what prepareThread did to it along.
	osthread.Throwaway(func() {
		if err = d.prepareThread(in, t, tasks, filter); err != nil {
			return
		}
		// nsenter execs the command in place and closes nothing: every
		// descriptor of the daemon without close-on-exec (inherited from
		// whatever started it, or made by a raw dup) would reach the
		// command inside the container. os/exec puts only stdio (and
		// ExtraFiles) on the child's 0-2 (3...), so marking the rest
		// leaves the child exactly those.
		if err = cloexec.From(3); err != nil {
			return
		}
		err = cmd.Start()
	})
	if err != nil && unix.PidfdSendSignal(int(in.pidfd.Fd()), 0, nil, 0) != nil {
		// PID 1 died meanwhile: its PID namespace takes no more
		// processes (ENOMEM), which is not what went wrong.
		return driver.ErrNotRunning
	}
	return err
}

// execSeccompFilter is the compiled filter, the same for every exec
// (loadSeccomp only reads it): compiled once, not per exec.
var execSeccompFilter = sync.OnceValue(seccompFilter)

// prepareThread gives the calling thread (locked, about to fork) PID 1's
// PID namespace, cgroups (v1: tasks, the hierarchies' tasks files),
// bounding set, no_new_privs and seccomp filter.
func (d *Driver) prepareThread(in *instance, t execTarget, tasks []string, filter []unix.SockFilter) error {
	if t.pidns {
		// First, while the thread still has every capability and no
		// filter. By PID 1's pidfd (Linux 5.8), which names PID 1 and
		// nothing else; older kernels (EINVAL) take /proc/PID/ns/pid.
		// EBADF is a pidfd already closed (the driver closing): by pid
		// then, a reused pid could name another process's namespace.
		err := unix.Setns(int(in.pidfd.Fd()), unix.CLONE_NEWPID)
		if errors.Is(err, unix.EINVAL) {
			err = setnsPath(fmt.Sprintf("/proc/%d/ns/pid", in.pid), unix.CLONE_NEWPID)
		}
		if errors.Is(err, unix.EBADF) {
			return driver.ErrNotRunning
		}
		if err != nil {
			return fmt.Errorf("join PID namespace: %w", err)
		}
	}
	if len(tasks) > 0 {
		// Plain syscalls: os.WriteFile would register each file with
		// the runtime's poller, tripling the syscalls of the join.
		tid := []byte(strconv.Itoa(unix.Gettid()))
		for _, f := range tasks {
			if err := writeCgroupFile(f, tid); err != nil {
				return fmt.Errorf("join cgroup %s: %w", path.Dir(f), err)
			}
		}
	}
	for c := 0; c < 64; c++ {
		if t.bounding&(1<<c) != 0 || d.capAll&(1<<c) == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from bounding set: %w", c, err)
		}
	}
	if t.noNewPrv {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if filter != nil {
		if err := loadSeccomp(filter); err != nil {
			return fmt.Errorf("load seccomp filter: %w", err)
		}
	}
	return nil
}

func setnsPath(p string, nstype int) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Setns(fd, nstype)
}

func writeCgroupFile(p string, b []byte) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, b)
		if err != unix.EINTR {
			return err
		}
	}
}

// v1Hierarchies maps the controllers of each cgroup v1 hierarchy, as
// /proc/PID/cgroup names them, to the hierarchy's mount.
var v1Hierarchies = sync.OnceValues(func() (map[string]v1Mount, error) {
	return readV1Hierarchies("/proc/self/mountinfo")
})

// v1HierarchyDir is the directory of membership m in its v1 hierarchy.
func v1HierarchyDir(m cgroupMembership) (string, error) {
	hs, err := v1Hierarchies()
	if err != nil {
		return "", fmt.Errorf("read cgroup mounts: %w", err)
	}
	mnt, ok := hs[sortedJoin(strings.Split(m.controllers, ","))]
	if !ok {
		return "", fmt.Errorf("cgroup hierarchy %q of PID 1 is not mounted here", m.controllers)
	}
	l := cgroupLayout{v1: map[string]v1Mount{"h": mnt}}
	return l.dir("h", m.path), nil
}

// process is one exec: nsenter, which becomes the command; or, to enter
// a time namespace, nsenter whose exit status is the command's and the
// command, nsenter's only child.
type process struct {
	cmd   *exec.Cmd
	tty   *os.File
	wd    *os.File
	forks bool // nsenter forks the command

	mu     sync.Mutex
	child  *os.File // pidfd of the command, once found
	waited bool
}

func (p *process) Pid() int       { return p.cmd.Process.Pid }
func (p *process) TTY() *os.File  { return p.tty }
func (p *process) String() string { return fmt.Sprintf("exec pid %d", p.Pid()) }

func (p *process) Wait() (int, error) {
	err := p.cmd.Wait()
	p.mu.Lock()
	p.waited = true
	if p.child != nil {
		p.child.Close()
		p.child = nil
	}
	p.mu.Unlock()
	p.wd.Close()
	st := p.cmd.ProcessState
	if st == nil {
		return -1, err
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return -1, err
	}
	return st.ExitCode(), nil
}

// Signal signals the command. Before nsenter has exec'd or forked it
// there is no command yet: the signal then goes to nsenter, which it ends
// as well.
func (p *process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waited {
		return errors.New("process has exited")
	}
	if p.forks && p.child == nil {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.Pid(), p.Pid()))
		if err == nil {
			if f := strings.Fields(string(b)); len(f) == 1 {
				if pid, err := strconv.Atoi(f[0]); err == nil {
					if fd, err := unix.PidfdOpen(pid, 0); err == nil {
						p.child = os.NewFile(uintptr(fd), "pidfd")
					}
				}
			}
		}
	}
	if p.child != nil {
		return unix.PidfdSendSignal(int(p.child.Fd()), sig, nil, 0)
	}
	return p.cmd.Process.Signal(sig)
}

func (p *process) Resize(width, height int) error {
	if p.tty == nil {
		return errors.New("not a terminal")
	}
	return setWinsize(p.tty, width, height)
}

func setWinsize(f *os.File, width, height int) error {
	if width <= 0 || height <= 0 || width > 0xffff || height > 0xffff {
		return errdefs.Invalid("terminal size %dx%d out of range", width, height)
	}
	return unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(height), Col: uint16(width)})
}

// findCommand looks for name as a shell would in PATH, inside the
// container (PID 1's root). A command that is not there is a NotFound
// error before anything runs, as LXD reports it, rather than a message
// from nsenter.
func findCommand(root int, name, searchPath string) error {
	if strings.Contains(name, "/") {
		if !path.IsAbs(name) {
			return nil // relative to the working directory: nsenter's to find
		}
		return isExecutableIn(root, name)
	}
	for _, dir := range strings.Split(searchPath, ":") {
		if path.IsAbs(dir) && isExecutableIn(root, strings.TrimSuffix(dir, "/")+"/"+name) == nil {
			return nil
		}
	}
	return errdefs.NotFound("command %q not found", name)
}

// isExecutableIn checks that p, inside root, is a regular file someone may
// execute.
func isExecutableIn(root int, p string) error {
	fd, err := openInRoot(root, p, unix.O_PATH)
	if err != nil {
		return errdefs.NotFound("command %q not found", p)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o111 == 0 {
		return errdefs.NotFound("command %q not found or not executable", p)
	}
	return nil
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// openInRoot opens p inside the directory root as if root were "/":
// symlinks and ".." cannot leave it, and magic links are refused.
func openInRoot(root int, p string, flags int) (int, error) {
	rel := strings.TrimLeft(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	return fsroot.Openat2(root, rel, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// openContainerPty allocates a terminal in the container's own devpts, so
// the command sees it as /dev/pts/N of its /dev (ttyname and `tty` work),
// owned by the exec's user and the tty group as the container maps them.
func openContainerPty(root, uid, gid int) (master, slave *os.File, err error) {
	mfd, err := openInRoot(root, "/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY)
	if err != nil {
		return nil, nil, fmt.Errorf("open container's /dev/pts/ptmx: %w", err)
	}
	r := revert.New()
	defer r.Fail()
	r.Add(func() { unix.Close(mfd) })
	var fs unix.Statfs_t
	if err := unix.Fstatfs(mfd, &fs); err != nil {
		return nil, nil, err
	}
	if fs.Type != unix.DEVPTS_SUPER_MAGIC {
		return nil, nil, fmt.Errorf("container's /dev/pts is not a devpts filesystem")
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		return nil, nil, fmt.Errorf("open pty peer: %w", errno)
	}
	if uid >= 0 {
		if gid < 0 {
			gid = -1
		}
		if err := unix.Fchown(int(sfd), uid, gid); err != nil {
			unix.Close(int(sfd))
			return nil, nil, fmt.Errorf("chown pty: %w", err)
		}
	}
	// Non-blocking, so the runtime poller serves reads and read deadlines
	// work on the master.
	if err := unix.SetNonblock(mfd, true); err != nil {
		unix.Close(int(sfd))
		return nil, nil, err
	}
	r.Success()
	return os.NewFile(uintptr(mfd), "ptmx"), os.NewFile(sfd, "pts"), nil
}

// readV1Hierarchies reads the cgroup v1 mounts from mountinfo, keyed by
// their controllers as /proc/PID/cgroup lists them ("cpu,cpuacct",
// "name=systemd").
func readV1Hierarchies(mountinfo string) (map[string]v1Mount, error) {
	b, err := os.ReadFile(mountinfo)
	if err != nil {
		return nil, err
	}
	known, err := knownControllers()
	if err != nil {
		return nil, err
	}
	out := map[string]v1Mount{}
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf, sf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(sf) < 3 || sf[0] != "cgroup" {
			continue
		}
		var ctrl []string
		for _, opt := range strings.Split(sf[2], ",") {
			if known[opt] || strings.HasPrefix(opt, "name=") {
				ctrl = append(ctrl, opt)
			}
		}
		// /proc/PID/cgroup lists a hierarchy's controllers in the
		// kernel's order, which is mountinfo's too; sort both to be sure.
		key := sortedJoin(ctrl)
		if _, dup := out[key]; !dup && key != "" {
			out[key] = v1Mount{point: unescapeMountinfo(pf[4]), root: unescapeMountinfo(pf[3])}
		}
	}
	return out, nil
}

func sortedJoin(s []string) string {
	s = slices.Clone(s)
	slices.Sort(s)
	return strings.Join(s, ",")
}

// knownControllers lists the cgroup controllers of /proc/cgroups.
func knownControllers() (map[string]bool, error) {
	b, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			out[f[0]] = true
		}
	}
	return out, nil
}

package container

import (
	"bytes"
	"cmp"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// DefaultConsoleLogMax is the console log bound when Config.ConsoleLogMax is 0.
const DefaultConsoleLogMax = 1 << 20

// DefaultCgroupParent is the cgroup every container's cgroup is created
// under when Config.CgroupParent is empty.
const DefaultCgroupParent = "/hangar"

// cleanupTimeout bounds the clean-up work done after a context was
// cancelled: leaving state behind is worse than ignoring the cancellation.
const cleanupTimeout = 30 * time.Second

// Config configures a Driver.
type Config struct {
	// Dir is the driver's state root (e.g. DATA/containers). It holds one
	// directory per instance and runc's state root, Dir/.runc.
	Dir string
	// RuncBinary is the runc executable, looked up in PATH; "runc" when empty.
	RuncBinary string
	// OnExit receives every exit of a container's PID 1.
	OnExit driver.ExitHandler
	// ConsoleLogMax bounds console.log (and console.log.1); 1 MiB when 0.
	ConsoleLogMax int64
	// CgroupParent is the cgroup containers are created under
	// (DefaultCgroupParent when empty). Two daemons on one host need two
	// parents, since container IDs are only unique within one daemon.
	CgroupParent string
	// Logger receives the driver's logs; slog.Default() when nil.
	Logger *slog.Logger
	// ExecHelper is the program that runs inside a container to give an
	// exec its terminal (RunExecTTYHelper); empty means this program. It
	// runs in the container's mount namespace, where the host's libraries
	// are not, so it must be statically linked (CGO_ENABLED=0).
	ExecHelper string
}

// Driver runs containers with runc. It implements driver.Driver.
type Driver struct {
	dir      string
	runcRoot string
	runcPath string
	onExit   driver.ExitHandler
	logMax   int64
	log      *slog.Logger
	cg       cgroupLayout
	capBnd   uint64   // the daemon's bounding set: privileged containers get no more
	capAll   uint64   // every capability the kernel knows
	selfExe  *os.File // this program, run inside containers as the terminal helper
	nsenter  string   // nsenter's path; "" when missing (Exec then fails)
	selfPid  int

	mu     sync.Mutex
	insts  map[string]*instance // live PID 1s, by ID
	closed bool

	consoleMu sync.Mutex // serialises console rotation, reads and clears

	weightWarn sync.Once // the warning that the host has no block I/O weight

	stopLoop chan struct{}
	loopDone chan struct{}
}

var _ driver.Driver = (*Driver)(nil)

// instance is one live run of a container: its PID 1 and its watcher.
type instance struct {
	id         string
	pid        int
	startTime  uint64 // /proc/PID/stat field 22, guards against pid reuse
	pidfd      *os.File
	stopSignal syscall.Signal
	stats      *cgroupStats
	done       chan struct{} // closed once the exit is handled and cleaned up
	freezeMu   sync.Mutex    // serialises freezes and thaws
	ifaces     ifaceCache    // its network interfaces (network.go)

	mountsMu sync.Mutex             // serialises attaches and detaches
	mounts   map[string]mountRecord // extra mounts by destination (mounts.go)
}

// New returns a Driver. It makes the calling process a child subreaper, so
// that container PID 1s are reparented to it when `runc run -d` exits and
// their exit statuses can be read. Its errors do not name the driver: the
// caller does. A missing runc is an exec.ErrNotFound.
func New(cfg Config) (*Driver, error) {
	if cfg.Dir == "" {
		return nil, errdefs.Invalid("empty Dir")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", cfg.Dir, err)
	}
	if strings.ContainsAny(dir, ",:\\") {
		// They would need escaping in overlayfs mount options.
		return nil, errdefs.Invalid("Dir %q contains one of , : \\", dir)
	}
	bin := cfg.RuncBinary
	if bin == "" {
		bin = "runc"
	}
	runcPath, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("find runc: %w", err)
	}
	d := &Driver{
		dir:      dir,
		runcRoot: filepath.Join(dir, ".runc"),
		runcPath: runcPath,
		onExit:   cfg.OnExit,
		logMax:   cfg.ConsoleLogMax,
		log:      cfg.Logger,
		selfPid:  os.Getpid(),
		insts:    make(map[string]*instance),
		stopLoop: make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	if d.logMax <= 0 {
		d.logMax = DefaultConsoleLogMax
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	d.log = d.log.With("driver", "container")
	// 0711: unprivileged container roots (host uid HostID) must traverse
	// Dir and Dir/<id> to reach their rootfs mount, but not list them.
	for _, p := range []string{dir, d.runcRoot} {
		if err := os.MkdirAll(p, 0o711); err != nil {
			return nil, fmt.Errorf("create state dir: %w", err)
		}
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return nil, fmt.Errorf("state dir permissions: %w", err)
	}
	if d.cg, err = detectCgroups(); err != nil {
		return nil, fmt.Errorf("detect cgroups: %w", err)
	}
	d.cg.parent = cfg.CgroupParent
	if d.cg.parent == "" {
		d.cg.parent = DefaultCgroupParent
	}
	if !strings.HasPrefix(d.cg.parent, "/") || strings.Contains(d.cg.parent, "..") {
		return nil, errdefs.Invalid("cgroup parent %q must be an absolute cgroup path", d.cg.parent)
	}
	if d.capBnd, err = boundingSet(); err != nil {
		return nil, fmt.Errorf("read capability bounding set: %w", err)
	}
	if d.capAll, err = allCapabilities(); err != nil {
		return nil, fmt.Errorf("read capabilities: %w", err)
	}
	helper := cmp.Or(cfg.ExecHelper, "/proc/self/exe")
	if d.selfExe, err = os.Open(helper); err != nil {
		return nil, fmt.Errorf("open exec helper: %w", err)
	}
	if interp := elfInterpreter(d.selfExe); interp != "" {
		d.log.Warn("the exec helper is dynamically linked: exec with a terminal will fail inside containers (build hangard with CGO_ENABLED=0 or pass --exec-helper)", "helper", helper, "interpreter", interp)
	}
	if p, err := exec.LookPath("nsenter"); err == nil {
		d.nsenter = p
	} else {
		d.log.Warn("nsenter not found: exec into containers will fail (install util-linux)")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("set child subreaper: %w", err)
	}
	go d.consoleLoop()
	return d, nil
}

// Close stops the driver's background work and its exit watchers. Running
// containers are left running (a later Driver recovers them); their exits
// are no longer reported by this Driver.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	insts := make([]*instance, 0, len(d.insts))
	for _, in := range d.insts {
		insts = append(insts, in)
	}
	d.insts = map[string]*instance{}
	d.mu.Unlock()
	close(d.stopLoop)
	<-d.loopDone
	for _, in := range insts {
		// Wakes the watcher, which sees d.closed and returns quietly.
		in.pidfd.Close()
		in.stats.close()
	}
	d.cg.removeParent()
	d.selfExe.Close()
	return nil
}

// capsFor is the capability set PID 1 gets. In a user namespace it is
// every capability: they act only on what the namespace owns, and a process
// entering the namespace (exec) gets the full set from the kernel anyway,
// so granting less to PID 1 would make the two differ.
func (d *Driver) capsFor(userns bool) uint64 {
	if userns {
		return d.capAll
	}
	return d.capBnd
}

// instanceDir returns Dir/<id>.
func (d *Driver) instanceDir(id string) string { return filepath.Join(d.dir, id) }

func (d *Driver) rootfsDir(id string) string { return filepath.Join(d.dir, id, "rootfs") }

func (l cgroupLayout) path(id string) string { return l.parent + "/" + id }

// lookup returns the live instance of id, or nil.
func (d *Driver) lookup(id string) *instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.insts[id]
}

// validID rejects IDs that are not safe as a single path element, a runc ID
// and a cgroup name.
func validID(id string) error {
	if id == "" || len(id) > 128 || id[0] == '.' || id[0] == '-' {
		return errdefs.Invalid("invalid instance ID %q", id)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return errdefs.Invalid("invalid instance ID %q", id)
		}
	}
	return nil
}

// runc runs one runc command against the driver's state root and returns its
// stdout. Errors carry runc's stderr.
func (d *Driver) runc(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"--root", d.runcRoot}, args...)
	cmd := exec.CommandContext(ctx, d.runcPath, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	d.log.Debug("runc", "args", args, "took", time.Since(start), "err", err)
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("runc %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// hasRuncState says whether runc keeps state for id, without running runc.
func (d *Driver) hasRuncState(id string) bool {
	_, err := os.Lstat(filepath.Join(d.runcRoot, id))
	return err == nil
}

// runcDelete force-deletes id's runc state (killing what runs, removing its
// cgroup). A missing container is not an error.
func (d *Driver) runcDelete(ctx context.Context, id string) error {
	if !d.hasRuncState(id) {
		return nil
	}
	_, err := d.runc(ctx, "delete", "--force", id)
	return err
}

// cleanupRun removes what a run leaves once its PID 1 is gone: runc state,
// cgroup, the rootfs mount and the record of extra mounts (they went with
// the mount namespace). The root's data and the console log stay.
func (d *Driver) cleanupRun(ctx context.Context, id string) error {
	var errs []error
	if err := os.Remove(filepath.Join(d.instanceDir(id), mountsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := d.runcDelete(ctx, id); err != nil {
		errs = append(errs, err)
	}
	if err := unmountAll(d.rootfsDir(id)); err != nil {
		errs = append(errs, err)
	}
	if err := d.removeCgroup(ctx, id); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cgroupGoneWait bounds how long a delete waits for a container's cgroup
// to empty.
const cgroupGoneWait = 2 * time.Second

// removeCgroup removes what runc delete left of id's cgroup: runc gives up
// quietly on a cgroup that is still busy, and a delete must not say it is
// done while one stays behind. Busy means a task of the container is still
// being torn down, or (a bug, which this error surfaces: see package
// osthread) a daemon thread joined it and never left. Nothing signals an
// emptied v1 cgroup, so rmdir is retried, briefly.
func (d *Driver) removeCgroup(ctx context.Context, id string) error {
	deadline := time.Now().Add(cgroupGoneWait)
	for _, dir := range d.cg.allDirs(d.cg.path(id)) {
		for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
			err := unix.Rmdir(dir)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				return fmt.Errorf("remove cgroup %s: %w", dir, err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("remove cgroup %s: %w", dir, ctx.Err())
			case <-time.After(delay):
			}
		}
	}
	return nil
}

// detached returns a context for clean-up that survives ctx's cancellation.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// boundingSet returns the calling process's capability bounding set. No
// process it starts can hold a capability outside it (a host may withhold
// some, e.g. CAP_SYS_RESOURCE), so asking runc for one fails the start.
func boundingSet() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("parse CapBnd: %w", err)
			}
			return n, nil
		}
	}
	return 0, errors.New("no CapBnd in /proc/self/status")
}

// elfInterpreter returns the program interpreter (dynamic loader) an ELF
// file asks for; "" for a static executable.
func elfInterpreter(f *os.File) string {
	ef, err := elf.NewFile(f)
	if err != nil {
		return ""
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err == nil {
				return string(bytes.TrimRight(b, "\x00"))
			}
			return "unknown"
		}
	}
	return ""
}

// allCapabilities is the set of every capability the running kernel knows.
func allCapabilities() (uint64, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, err
	}
	last, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || last < 0 || last > 63 {
		return 0, fmt.Errorf("parse cap_last_cap %q", b)
	}
	return 1<<(last+1) - 1, nil
}

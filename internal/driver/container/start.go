package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Start runs the container and returns the host pid of its PID 1.
func (d *Driver) Start(ctx context.Context, spec driver.Spec) (int, error) {
	id := spec.ID
	if err := validID(id); err != nil {
		return 0, fmt.Errorf("start %s: %w", id, err)
	}
	if len(spec.Args) == 0 {
		return 0, fmt.Errorf("start %s: %w", id, errdefs.Invalid("no command to run"))
	}
	if strings.ContainsAny(spec.RootFS, ",:\\") {
		return 0, fmt.Errorf("start %s: %w", id, errdefs.Invalid("root filesystem path %q contains one of , : \\", spec.RootFS))
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("start %s: %w", id, errors.Join(errdefs.ErrCancelled, err))
	}
	d.mu.Lock()
	closed, running := d.closed, d.insts[id] != nil
	d.mu.Unlock()
	if closed {
		return 0, fmt.Errorf("start %s: driver closed", id)
	}
	if running {
		return 0, fmt.Errorf("start %s: %w", id, errdefs.Conflict("instance is already running"))
	}

	s := &starter{d: d, spec: spec, id: id, dir: d.instanceDir(id)}
	// Before anything is created: there is nothing to roll back if this
	// fails, and a live container's rootfs must not be touched.
	if err := s.clearStaleRuncState(); err != nil {
		return 0, fmt.Errorf("start %s: %w", id, err)
	}
	pid, err := s.start()
	if err != nil {
		cctx, cancel := detached(ctx)
		defer cancel()
		if cerr := s.rollback(cctx); cerr != nil {
			d.log.Error("clean up failed start", "id", id, "err", cerr)
			err = errors.Join(err, cerr)
		}
		return 0, fmt.Errorf("start %s: %w", id, err)
	}
	return pid, nil
}

// starter is one Start: what it did so far, so a failure undoes exactly
// that.
type starter struct {
	d    *Driver
	spec driver.Spec
	id   string
	dir  string

	dirExisted   bool
	upperExisted bool
	mounted      bool
	ranRunc      bool
	pid          int      // PID 1, once runc started it
	pidfd        *os.File // and its pidfd, once opened
}

func (s *starter) start() (int, error) {
	d := s.d
	upper := filepath.Join(s.dir, "upper")
	work := filepath.Join(s.dir, "work")
	rootfs := filepath.Join(s.dir, "rootfs")

	if _, err := os.Lstat(s.dir); err == nil {
		s.dirExisted = true
	}
	if _, err := os.Lstat(upper); err == nil {
		s.upperExisted = true
	}
	if err := os.MkdirAll(s.dir, 0o711); err != nil {
		return 0, err
	}
	if err := os.Mkdir(upper, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return 0, err
	}
	for _, p := range []string{work, rootfs} {
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return 0, err
		}
	}
	// The root of the merged tree takes its owner from upper: make it the
	// container's root, so that root owns "/" in a user namespace.
	var rootID uint32
	if s.spec.IDMap != nil {
		rootID = s.spec.IDMap.HostID
	}
	if err := os.Lchown(upper, int(rootID), int(rootID)); err != nil {
		return 0, err
	}
	// A mount left by a crash would hide the new one.
	if err := unmountAll(rootfs); err != nil {
		return 0, err
	}
	if err := mountRootfs(s.spec.RootFS, upper, work, rootfs); err != nil {
		return 0, err
	}
	s.mounted = true

	if resolv := resolvConf(s.spec.NICs); resolv != "" {
		if err := os.WriteFile(filepath.Join(s.dir, resolvConfFile), []byte(resolv), 0o644); err != nil {
			return 0, err
		}
	}
	cfg, err := json.Marshal(buildSpec(s.spec, d.cg.path(s.spec.ID), d.capsFor(s.spec.IDMap != nil)))
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(s.dir, "config.json"), cfg, 0o600); err != nil {
		return 0, err
	}

	console, logStart, err := d.openConsole(s.id)
	if err != nil {
		return 0, err
	}
	defer console.Close()

	// One exec: `runc run -d` is create+start without a second runc and
	// its second state load. With no terminal and -d, runc hands its own
	// stdio to PID 1 ("pass-through"), so the console file is written by
	// the container directly and no process of ours stays per container.
	// Not bound to ctx: killing runc half-way would orphan its init
	// processes; the whole exec takes tens of milliseconds.
	pidFile := filepath.Join(s.dir, "init.pid")
	os.Remove(pidFile)
	cmd := exec.Command(d.runcPath, "--root", d.runcRoot, "run", "--detach",
		"--bundle", s.dir, "--pid-file", pidFile, s.id)
	cmd.Stdout = console
	cmd.Stderr = console
	consoleIn, err := d.openConsoleInput(s.id)
	if err != nil {
		return 0, err
	}
	defer consoleIn.Close()
	cmd.Stdin = consoleIn
	s.ranRunc = true
	if err := cmd.Run(); err != nil {
		// runc's stderr is the console: its message is what it appended.
		return 0, fmt.Errorf("runc run: %w: %s", err, consoleTail(console.Name(), logStart))
	}

	b, err := os.ReadFile(pidFile)
	os.Remove(pidFile)
	if err != nil {
		return 0, fmt.Errorf("read pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %q", b)
	}
	s.pid = pid
	pidfd, st, err := openPidfd(pid, 0)
	if err != nil {
		return 0, err
	}
	s.pidfd = pidfd
	if st.ppid != d.selfPid {
		// Exits are then reported with Known=false. Expected never to
		// happen: runc exits before returning, so PID 1 is reparented to
		// us, the nearest child subreaper.
		d.log.Warn("container PID 1 is not our child", "id", s.id, "pid", pid, "ppid", st.ppid)
	}

	in := &instance{
		id:         s.id,
		pid:        pid,
		startTime:  st.startTime,
		pidfd:      pidfd,
		stopSignal: s.spec.StopSignal,
		stats:      openStats(d.cg.files(s.id)),
		done:       make(chan struct{}),
	}
	d.mu.Lock()
	if d.closed || d.insts[s.id] != nil {
		d.mu.Unlock()
		in.stats.close()
		return 0, fmt.Errorf("driver closed or instance started concurrently")
	}
	d.insts[s.id] = in
	d.mu.Unlock()
	go d.watch(in)
	d.log.Info("container started", "id", s.id, "pid", pid)
	return pid, nil
}

// clearStaleRuncState removes runc state a crash left for this ID (no
// Recover ran since). A container runc still runs is not ours to replace:
// it is adopted (watched from now on) and the start is a conflict.
func (s *starter) clearStaleRuncState() error {
	d := s.d
	if !d.hasRuncState(s.id) {
		return nil
	}
	in, err := d.adopt(s.id)
	if err != nil {
		return err
	}
	if in != nil {
		return errdefs.Conflict("instance is already running (pid %d, not tracked until now)", in.pid)
	}
	d.log.Warn("removing stale runc state", "id", s.id)
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	return d.cleanupRun(ctx, s.id)
}

// rollback undoes a failed start: kill and reap PID 1 if it ran, delete
// runc's state and cgroup, unmount, and remove what this start created.
// upper is kept if it existed: it is the instance's data.
func (s *starter) rollback(ctx context.Context) error {
	var errs []error
	if s.pidfd == nil && s.pid > 0 {
		// Failed after runc ran but before the pidfd was checked: take one
		// now if PID 1 is our child, so it is reaped below.
		if fd, st, err := openPidfd(s.pid, 0); err == nil {
			if st.ppid == s.d.selfPid {
				s.pidfd = fd
			} else {
				fd.Close()
			}
		}
	}
	if s.pidfd != nil {
		if err := unix.PidfdSendSignal(int(s.pidfd.Fd()), unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("kill: %w", err))
		}
	}
	if s.ranRunc {
		if err := s.d.runcDelete(ctx, s.id); err != nil {
			errs = append(errs, err)
		}
	}
	if s.pidfd != nil {
		// Our child until reaped: a zombie otherwise.
		if _, _, err := waitPidfd(int(s.pidfd.Fd()), true); err != nil {
			errs = append(errs, fmt.Errorf("reap: %w", err))
		}
		s.pidfd.Close()
	}
	if s.mounted {
		if err := unmountAll(filepath.Join(s.dir, "rootfs")); err != nil {
			errs = append(errs, err)
		}
	}
	// Removing files under a mount would delete through it.
	if mps, err := mountPoints(s.dir); err != nil || len(mps) > 0 {
		return errors.Join(append(errs, fmt.Errorf("not removing %s: mounts %v (%v)", s.dir, mps, err))...)
	}
	if !s.dirExisted {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	rm := []string{"rootfs", "work", "config.json", "console.in"}
	if !s.upperExisted {
		rm = append(rm, "upper")
	}
	for _, name := range rm {
		if err := os.RemoveAll(filepath.Join(s.dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// consoleTail returns what was appended to the console log from offset on,
// at most 4 KiB of its end: runc's error message after a failed run.
func consoleTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() < offset {
		return ""
	}
	if fi.Size()-offset > 4096 {
		offset = fi.Size() - 4096
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, offset, fi.Size()-offset))
	return string(bytes.TrimSpace(b))
}

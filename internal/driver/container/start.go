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
//
// Its root is spec.Root's mount (storage's), mounted on Dir/<id>/rootfs.
// Its extra mounts (spec.Mounts) are binds runc makes, but for id-shifted
// ones in a user namespace: runc 1.1 has no idmapped mounts, so the
// driver makes those itself, between `runc create` and `runc start` (PID
// 1 is runc's init waiting on its exec FIFO, its mounts done), through
// the hot-attach path (AttachMount). Only such a start costs a second
// runc; any other is one `runc run --detach`.
func (d *Driver) Start(ctx context.Context, spec driver.Spec) (int, error) {
	id := spec.ID
	if err := validID(id); err != nil {
		return 0, fmt.Errorf("start %s: %w", id, err)
	}
	if len(spec.Args) == 0 {
		return 0, fmt.Errorf("start %s: %w", id, errdefs.Invalid("no command to run"))
	}
	root, err := rootMount(spec)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", id, err)
	}
	extra, err := checkMounts(spec.Mounts)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", id, err)
	}
	if err := checkBlockIO(spec.Limits); err != nil {
		return 0, fmt.Errorf("start %s: %w", id, err)
	}
	if len(spec.Limits.BlockIO) > 0 && d.blkioDir(id) == "" {
		return 0, fmt.Errorf("start %s: %w", id, errdefs.Invalid("block I/O limits: the blkio cgroup controller is not mounted"))
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

	s := &starter{d: d, spec: spec, id: id, dir: d.instanceDir(id), root: root, extra: extra}
	// Before anything is created: there is nothing to roll back if this
	// fails, and a live container's rootfs must not be touched.
	if err := s.clearStaleRuncState(); err != nil {
		return 0, fmt.Errorf("start %s: %w", id, err)
	}
	pid, err := s.start(ctx)
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
	d     *Driver
	spec  driver.Spec
	id    string
	dir   string
	root  driver.Mount // checked
	extra []extraMount // checked

	dirExisted bool
	mounted    bool
	ranRunc    bool
	pid        int      // PID 1, once runc started it
	pidfd      *os.File // and its pidfd, once opened
}

func (s *starter) start(ctx context.Context) (int, error) {
	d := s.d
	rootfs := filepath.Join(s.dir, "rootfs")
	userns := s.spec.IDMap != nil

	if _, err := os.Lstat(s.dir); err == nil {
		s.dirExisted = true
	}
	if err := os.MkdirAll(s.dir, 0o711); err != nil {
		return 0, err
	}
	if err := os.Mkdir(rootfs, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return 0, err
	}
	// A mount left by a crash would hide the new one.
	if err := unmountAll(rootfs); err != nil {
		return 0, err
	}
	if err := mountRootfs(s.root, rootfs); err != nil {
		return 0, err
	}
	s.mounted = true
	// Before PID 1 exists: its first TLS connection through the egress
	// proxy must already verify. A read-only root is left as it is.
	if s.root.ReadOnly {
		if len(s.spec.EgressCA) > 0 {
			d.log.Warn("read-only root: the egress CA is not added to its trusted roots", "id", s.id)
		}
	} else {
		var owner uint32
		if s.spec.IDMap != nil {
			owner = s.spec.IDMap.HostID
		}
		if err := trustEgressCA(rootfs, s.spec.EgressCA, owner); err != nil {
			return 0, fmt.Errorf("trust the egress CA: %w", err)
		}
	}

	if resolv := resolvConf(s.spec.NICs); resolv != "" {
		if err := os.WriteFile(filepath.Join(s.dir, resolvConfFile), []byte(resolv), 0o644); err != nil {
			return 0, err
		}
	}
	rs := buildSpec(s.spec, d.cg.path(s.spec.ID), d.capsFor(userns))
	rs.Root.Readonly = s.root.ReadOnly
	rs.Mounts = append(rs.Mounts, specMounts(s.extra, userns)...)
	cfg, err := json.Marshal(rs)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(s.dir, "config.json"), cfg, 0o600); err != nil {
		return 0, err
	}
	var byRunc, byDriver []extraMount
	for _, m := range s.extra {
		if m.attachedAtStart(userns) {
			byDriver = append(byDriver, m)
		} else {
			byRunc = append(byRunc, m)
		}
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
	// `runc create` does the same, leaving PID 1 to a later `runc start`.
	// Not bound to ctx: killing runc half-way would orphan its init
	// processes; the whole exec takes tens of milliseconds.
	pidFile := filepath.Join(s.dir, "init.pid")
	os.Remove(pidFile)
	// --log: runc's own log, the instance's runtime log (LogFile); runc
	// still prints its error on stderr, the console.
	sub := []string{"run", "--detach"}
	if len(byDriver) > 0 {
		sub = []string{"create"}
	}
	args := append([]string{"--root", d.runcRoot, "--log", filepath.Join(s.dir, runcLogFile)}, sub...)
	cmd := exec.Command(d.runcPath, append(args, "--bundle", s.dir, "--pid-file", pidFile, s.id)...)
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
		return 0, fmt.Errorf("runc %s: %w: %s", sub[0], err, consoleTail(console.Name(), logStart))
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
		done:       make(chan struct{}),
		mounts:     map[string]mountRecord{},
	}
	if err := recordStartMounts(in, byRunc); err != nil {
		// PID 1 may have exited already (a short command): the run is
		// still a run, its exit reported; only a detach of these mounts
		// while it runs would find nothing to unmount.
		d.log.Warn("record extra mounts", "id", s.id, "err", err)
	}
	for _, m := range byDriver {
		mid, err := attachMount(in, m)
		if err != nil {
			return 0, fmt.Errorf("mount %s at %s: %w", m.Source, m.Destination, err)
		}
		in.mounts[m.Destination] = mountRecord{Destination: m.Destination, Name: m.Name, MntID: mid}
	}
	if len(in.mounts) > 0 {
		if err := d.saveMounts(in); err != nil {
			return 0, err
		}
	}
	if err := d.applyWeight(s.id, s.spec.Limits.DiskPriority, false); err != nil {
		return 0, err
	}
	if len(byDriver) > 0 {
		if _, err := d.runc(context.WithoutCancel(ctx), "start", s.id); err != nil {
			return 0, err
		}
	}

	in.stats = openStats(d.cg.files(s.id))
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
// The root's data is storage's and never touched. Extra mounts the driver
// made went with PID 1's mount namespace.
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
	for _, name := range []string{"rootfs", "config.json", "console.in", mountsFile} {
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

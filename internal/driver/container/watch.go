package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
)

// procStat is what the driver reads of /proc/PID/stat.
type procStat struct {
	ppid      int
	startTime uint64 // field 22, clock ticks after boot
	state     byte
}

// readProcStat reads /proc/PID/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted after its last ')'.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	// After ") ": field 3 (state) is index 0, field 4 (ppid) index 1,
	// field 22 (starttime) index 19.
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	st, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return procStat{ppid: ppid, startTime: st, state: f[0][0]}, nil
}

// openPidfd returns a pollable pidfd for pid, checked to still be the
// process that started at startTime (0: do not check). The check comes after
// the open: a pidfd pins its process, so if /proc/PID still shows the right
// start time now, the pidfd refers to that process and not to a reuse.
func openPidfd(pid int, startTime uint64) (*os.File, procStat, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, procStat{}, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	st, err := readProcStat(pid)
	if err != nil {
		f.Close()
		return nil, procStat{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	if startTime != 0 && st.startTime != startTime {
		f.Close()
		return nil, procStat{}, fmt.Errorf("pid %d was reused (start time %d, want %d)", pid, st.startTime, startTime)
	}
	// A file the netpoller cannot watch would make the watcher spin.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, procStat{}, fmt.Errorf("pidfd %d is not pollable: %w", pid, err)
	}
	return f, st, nil
}

// siginfoChld is the SIGCHLD view of siginfo_t (128 bytes), which
// unix.Siginfo does not expose.
type siginfoChld struct {
	Signo  int32
	Errno  int32
	Code   int32
	_      int32
	Pid    int32
	UID    uint32
	Status int32
	_      [100]byte
}

// Values of siginfo.si_code for SIGCHLD.
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// waitPidfd reaps the process of pidfd, which must have exited. It uses
// waitid(P_PIDFD) rather than wait4(pid): the pidfd cannot name a reused
// pid, so it can never take the status of another child (an os/exec one).
// known is false when the process is not the caller's child (ECHILD).
func waitPidfd(fd int, block bool) (code int, known bool, err error) {
	code, _, known, err = waitPidfdSignal(fd, block)
	return code, known, err
}

// waitPidfdSignal is waitPidfd with the signal that killed the process
// (0: it exited), which a code of 128+N alone cannot tell from exit(128+N).
func waitPidfdSignal(fd int, block bool) (code, signal int, known bool, err error) {
	var si siginfoChld
	opts := unix.WEXITED
	if !block {
		opts |= unix.WNOHANG
	}
	for {
		_, _, e := unix.Syscall6(unix.SYS_WAITID, unix.P_PIDFD, uintptr(fd), uintptr(unsafe.Pointer(&si)), uintptr(opts), 0, 0)
		switch e {
		case 0:
		case unix.EINTR:
			continue
		case unix.ECHILD:
			return 0, 0, false, nil
		default:
			return 0, 0, false, e
		}
		break
	}
	if si.Pid == 0 {
		return 0, 0, false, errWouldBlock
	}
	switch si.Code {
	case cldExited:
		return int(si.Status), 0, true, nil
	case cldKilled, cldDumped:
		return 128 + int(si.Status), int(si.Status), true, nil
	}
	return 0, 0, false, fmt.Errorf("waitid: unexpected si_code %d", si.Code)
}

var errWouldBlock = errors.New("process has not exited")

// watch waits for in's PID 1 to exit, reaps it, cleans up after it, and
// reports the exit. It is a goroutine parked in the netpoller on the pidfd:
// no OS thread is blocked per container.
func (d *Driver) watch(in *instance) {
	rc, err := in.pidfd.SyscallConn()
	if err != nil {
		d.log.Error("watch exit", "id", in.id, "pid", in.pid, "err", err)
		return
	}
	var (
		code, sig int
		known     bool
		werr      error
	)
	err = rc.Read(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 0)
		for err == unix.EINTR {
			n, err = unix.Poll(pfd, 0)
		}
		if err != nil || n == 0 {
			return false // not exited yet: park until the pidfd is readable
		}
		code, sig, known, werr = waitPidfdSignal(int(fd), false)
		if errors.Is(werr, errWouldBlock) {
			// Readable but not yet waitable cannot last: block briefly.
			code, sig, known, werr = waitPidfdSignal(int(fd), true)
		}
		return true
	})
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if err != nil {
		if !closed {
			d.log.Error("watch exit", "id", in.id, "pid", in.pid, "err", err)
		}
		return
	}
	if werr != nil {
		d.log.Warn("read exit status", "id", in.id, "pid", in.pid, "err", werr)
		known = false
		code = 0
	}
	in.pidfd.Close()
	// Read before the cgroup goes: its OOM kills tell an OOM's SIGKILL
	// from any other.
	oomKills := in.stats.oomKills()
	in.stats.close()

	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	if err := d.cleanupRun(ctx, in.id); err != nil {
		d.log.Error("clean up after exit", "id", in.id, "pid", in.pid, "err", err)
	}
	cancel()

	d.mu.Lock()
	if d.insts[in.id] == in {
		delete(d.insts, in.id)
	}
	d.mu.Unlock()
	close(in.done)

	ex := driver.Exit{ID: in.id, Pid: in.pid, Code: code, Known: known}
	if known {
		ex.Signal = sig
		ex.OOM = sig == int(unix.SIGKILL) && oomKills > 0
	}
	d.log.Info("container exited", "id", in.id, "pid", in.pid, "code", code, "known", known)
	if d.onExit != nil {
		// This goroutine is the driver's own and holds no lock. The exit
		// is reported even after Close: it was reaped here, so no later
		// Driver could report it.
		d.onExit(ex)
	}
}

// signal sends sig to in's PID 1 through its pidfd, so a reused pid is
// never signalled. A process already gone is not an error.
func (in *instance) signal(sig unix.Signal) error {
	rc, err := in.pidfd.SyscallConn()
	if err != nil {
		return nil // closed: the watcher saw the exit
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), sig, nil, 0)
	}); err != nil {
		return nil // closed: the watcher saw the exit
	}
	if serr != nil && !errors.Is(serr, unix.ESRCH) {
		return fmt.Errorf("signal %d: %w", sig, serr)
	}
	return nil
}

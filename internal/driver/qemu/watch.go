package qemu

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
)

// ended handles the end of a QEMU process: it closes the connections,
// decides whether the VM stopped or crashed, cleans up and reports the
// exit. reaped says whether the daemon read QEMU's exit status itself.
func (d *Driver) ended(v *vm, qemuCode int, reaped bool) {
	v.mu.Lock()
	state, reason, stopping, why := v.state, v.reason, v.stopping, v.shutdownWhy
	wexit, wdone := v.workloadExit, v.workloadDone
	mon, ac := v.mon, v.agent
	v.mu.Unlock()
	if mon != nil {
		mon.close()
	}
	if ac != nil {
		ac.close()
	}
	var errMsg string
	switch {
	case state == stateCrashed:
		errMsg = reason
	case why == "guest-reset" && !stopping && !wdone:
		// QEMU runs with -no-reboot and the agent powers off, never
		// resets: a reset is the kernel's panic=-1 or a triple fault.
		errMsg = "the guest reset itself (kernel panic or triple fault): see the console log"
	case stopping || state == stateShutdown:
	case reaped && qemuCode != 0:
		errMsg = fmt.Sprintf("QEMU exited with code %d: %s", qemuCode, logTail(filepath.Join(v.dir, fileLog), 500))
	default:
		errMsg = "QEMU ended without the guest shutting down"
	}
	if errMsg != "" {
		appendLog(filepath.Join(v.dir, fileConsole), "the VM crashed: "+errMsg)
		d.log.Warn("vm crashed", "id", v.id, "pid", v.pid, "reason", errMsg)
	}
	// swtpm ends with QEMU's connection (--terminate); this makes sure,
	// before the VM counts as stopped.
	stopTPM(v.dir)
	for _, f := range []string{fileQMP, fileAgent, fileConsoleSock, filePid} {
		_ = os.Remove(filepath.Join(v.dir, f))
	}
	v.cg.remove()
	d.mu.Lock()
	if d.vms[v.id] == v {
		delete(d.vms, v.id)
	}
	d.mu.Unlock()
	close(v.done)
	if d.cfg.OnExit != nil {
		e := driver.Exit{ID: v.id, Pid: v.pid, Known: wdone, Error: errMsg}
		if wdone {
			e.Code, e.Signal, e.OOM, e.NotFound = wexit.Code, wexit.Signal, wexit.OOM, wexit.NotFound
		}
		d.cfg.OnExit(e)
	}
}

// watchPidfd waits for a QEMU the daemon did not start (adopted after a
// restart) to end. The daemon is not its parent and cannot read its exit
// status; the pidfd guards against pid reuse.
func (d *Driver) watchPidfd(v *vm, fd int) {
	defer unix.Close(fd)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil || fds[0].Revents != 0 {
			break
		}
	}
	d.ended(v, 0, false)
}

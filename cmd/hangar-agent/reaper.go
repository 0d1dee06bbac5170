package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// reaper waits for every child, as PID 1 must: orphans are reparented to
// it. It is the only caller of wait in the agent, so that no exit status is
// stolen from the process that wants it; processes are started through it
// so their waiter is registered before they can exit.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan exitStatus
	sig     chan os.Signal
}

// exitStatus is how a child ended: its exit code, or 128+signal with the
// signal that killed it.
type exitStatus struct {
	code, signal int
}

func newReaper() *reaper {
	r := &reaper{waiters: map[int]chan exitStatus{}, sig: make(chan os.Signal, 16)}
	signal.Notify(r.sig, unix.SIGCHLD)
	return r
}

// start forks and execs, registering the child's waiter under the lock
// the reaper takes to hand out statuses.
func (r *reaper) start(bin string, args []string, attr *syscall.ProcAttr) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(bin, args, attr)
	if err != nil {
		return 0, err
	}
	r.waiters[pid] = make(chan exitStatus, 1)
	return pid, nil
}

// wait returns pid's exit code (128+signal when killed). pid must come
// from start and be waited for once.
func (r *reaper) wait(pid int) int { return r.waitStatus(pid).code }

// waitStatus is wait with the signal that killed pid, if one did.
func (r *reaper) waitStatus(pid int) exitStatus {
	r.mu.Lock()
	ch := r.waiters[pid]
	r.mu.Unlock()
	if ch == nil {
		return exitStatus{code: -1}
	}
	st := <-ch
	r.mu.Lock()
	delete(r.waiters, pid)
	r.mu.Unlock()
	return st
}

func (r *reaper) run() {
	for {
		r.reap()
		<-r.sig
	}
}

func (r *reaper) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		st := exitStatus{code: ws.ExitStatus()}
		if ws.Signaled() {
			st = exitStatus{code: 128 + int(ws.Signal()), signal: int(ws.Signal())}
		}
		r.mu.Lock()
		ch := r.waiters[pid]
		r.mu.Unlock()
		if ch != nil {
			ch <- st
		}
	}
}

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
	waiters map[int]chan int
	sig     chan os.Signal
}

func newReaper() *reaper {
	r := &reaper{waiters: map[int]chan int{}, sig: make(chan os.Signal, 16)}
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
	r.waiters[pid] = make(chan int, 1)
	return pid, nil
}

// wait returns pid's exit code (128+signal when killed). pid must come
// from start and be waited for once.
func (r *reaper) wait(pid int) int {
	r.mu.Lock()
	ch := r.waiters[pid]
	r.mu.Unlock()
	if ch == nil {
		return -1
	}
	code := <-ch
	r.mu.Lock()
	delete(r.waiters, pid)
	r.mu.Unlock()
	return code
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
		code := ws.ExitStatus()
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		r.mu.Lock()
		ch := r.waiters[pid]
		r.mu.Unlock()
		if ch != nil {
			ch <- code
		}
	}
}

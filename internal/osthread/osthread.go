// Package osthread runs work that changes its OS thread for good (joins a
// container's cgroups or namespaces, drops capabilities, loads a seccomp
// filter) on a thread of its own that ends with the work, so no other
// goroutine ever runs with what the work did to it.
//
// The main thread is never used: the Go runtime does not let it exit, and
// a locked goroutine that ends on it leaves it parked forever, still in
// whatever cgroup or namespace the work put it in. A daemon whose main
// thread sits in a container's cgroup keeps that cgroup from ever being
// removed, is charged to its limits, and can be chosen by its OOM killer.
package osthread

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// Throwaway runs fn on a locked OS thread that exits when fn returns, and
// waits for fn. fn must not start work that outlives it on its thread.
func Throwaway(fn func()) {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		if onMainThread() {
			elsewhere(fn)
			runtime.UnlockOSThread()
			close(done)
			return
		}
		defer close(done)
		fn() // never unlocked: the thread exits with this goroutine
	}()
	<-done
}

// elsewhere runs fn on another thread that exits when fn returns. The
// caller is locked to its own thread, so the runtime cannot run fn there.
func elsewhere(fn func()) {
	inner := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(inner)
		fn()
	}()
	<-inner
}

// onMainThread tells whether the calling (locked) goroutine runs on the
// process's main thread, whose thread id is the process id.
func onMainThread() bool { return unix.Gettid() == unix.Getpid() }

// Package cloexec keeps hangard's descriptors out of the programs it
// starts. Go opens everything close-on-exec, and os/exec hands a child only
// its stdio and ExtraFiles; but a descriptor the daemon inherited from
// whatever started it (`hangard 7>/some/file`), or one made by a raw
// syscall without the flag (dup, SCM_RIGHTS), survives every exec: into
// runc, QEMU, the image tools and, through nsenter, into containers.
//
// Two lines of defence: Inherited, once at daemon start, and From, just
// before a fork whose child must get nothing else (container exec).
// Marking a descriptor close-on-exec never closes it in the daemon.
package cloexec

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// From marks every descriptor from lowfd up close-on-exec. One syscall
// (close_range, Linux 5.11); older kernels walk /proc/self/fd.
func From(lowfd int) error {
	return markRange(lowfd, ^uint(0))
}

// Inherited marks every descriptor above stderr close-on-exec, except
// those systemd socket activation handed this very process (LISTEN_PID is
// our pid: descriptors 3 to 3+LISTEN_FDS-1): they are left as systemd
// passed them for whoever consumes them. Call it first thing in main,
// before anything opens a descriptor on purpose without the flag.
func Inherited() error {
	low := 3 + ListenFDs()
	return markRange(low, ^uint(0))
}

// ListenFDs is the number of socket-activation descriptors passed to this
// process (0 when none, or when they were meant for another process).
func ListenFDs() int {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return 0
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 0 || n > 1<<16 {
		return 0
	}
	return n
}

func markRange(low int, high uint) error {
	if low < 0 {
		return fmt.Errorf("mark descriptors close-on-exec: bad first descriptor %d", low)
	}
	err := unix.CloseRange(uint(low), high, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("mark descriptors close-on-exec: %w", err)
	}
	// Before 5.11 (EINVAL: the flag is unknown; ENOSYS: no close_range).
	return walk(low)
}

// walk marks each open descriptor >= low, as /proc/self/fd lists them.
// The listing's own descriptor is close-on-exec already.
func walk(low int) error {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("mark descriptors close-on-exec: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("mark descriptors close-on-exec: %w", err)
	}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd < low {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue // closed since the listing, or marked already
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("mark descriptor %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}

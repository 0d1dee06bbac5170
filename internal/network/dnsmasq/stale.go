package dnsmasq

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// staleWait bounds how long a stale dnsmasq gets to exit after SIGTERM,
// then after SIGKILL.
const staleWait = 5 * time.Second

// isOurs tells whether the process pid is a dnsmasq serving confPath: its
// command line carries --conf-file=confPath, which only a dnsmasq started
// for this Dir does. A zombie's command line is empty: never ours.
func isOurs(pid int, confPath string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	want := []byte("--conf-file=" + confPath)
	for _, arg := range bytes.Split(b, []byte{0}) {
		if bytes.Equal(arg, want) {
			return true
		}
	}
	return false
}

// findStale returns the pids of the dnsmasq processes serving confPath: the
// one the pid file names if it is still ours, and any other found in /proc
// (one started by a daemon killed between its fork and dnsmasq's pid file
// write, or whose pid file was removed).
func findStale(pidFile, confPath string) []int {
	var pids []int
	seen := map[int]bool{}
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && isOurs(pid, confPath) {
			pids = append(pids, pid)
			seen[pid] = true
		}
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return pids
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || seen[pid] || pid == os.Getpid() {
			continue
		}
		if isOurs(pid, confPath) {
			pids = append(pids, pid)
			seen[pid] = true
		}
	}
	return pids
}

// killStale ends every dnsmasq serving confPath that is not ours to wait
// for (left by a daemon killed with SIGKILL), so that there are never two
// for one network: the second could not bind the bridge's port 53 anyway.
func killStale(pidFile, confPath string) error {
	var errs []error
	for _, pid := range findStale(pidFile, confPath) {
		if err := killPid(pid, confPath); err != nil {
			errs = append(errs, fmt.Errorf("stale dnsmasq %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// killPid sends SIGTERM to pid, then SIGKILL if it has not exited within
// staleWait, and waits for it to exit. It works on a pidfd, opened then
// checked to still be ours, so a pid reused in between is never signalled.
func killPid(pid int, confPath string) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(fd)
	if !isOurs(pid, confPath) {
		return nil // exited, or pid reused, since it was found
	}
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGKILL} {
		if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
			if errors.Is(err, unix.ESRCH) {
				return nil
			}
			return fmt.Errorf("signal %v: %w", sig, err)
		}
		exited, err := waitPidfd(fd, staleWait)
		if err != nil {
			return err
		}
		if exited {
			return nil
		}
	}
	return fmt.Errorf("still running %v after SIGKILL", staleWait)
}

// waitPidfd waits up to d for the process of fd to exit (a pidfd polls
// readable once it has: exited, not necessarily reaped).
func waitPidfd(fd int, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("poll pidfd: %w", err)
		}
		if n > 0 {
			return true, nil
		}
	}
}

package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

// How the workload's end is told apart: an OOM kill is a SIGKILL like any
// other, so the agent counts the guest kernel's OOM kills. The workload
// runs in a cgroup v2 of its own (workloadCgroup) when the guest kernel
// has one, whose memory.events oom_kill counts the kills of its
// processes only, whatever OOM (the whole guest's or a limit's) chose
// them; without it, the guest-wide /proc/vmstat oom_kill counter's growth
// over the workload's life is taken instead.

const (
	cgroupMount    = "/sys/fs/cgroup"
	workloadCgroup = cgroupMount + "/workload"
)

// oomCounter reads the OOM kills that concern the workload.
type oomCounter struct {
	// events is the workload cgroup's memory.events, "" without one.
	events string
	// base is /proc/vmstat's oom_kill at the start, when events is "".
	base int64
}

// setUpWorkloadCgroup mounts cgroup2 (unless mounted) and makes the
// workload's cgroup with the memory controller, returning the cgroup's
// directory opened for clone3's CLONE_INTO_CGROUP; nil when the guest
// kernel cannot (the workload then runs in the root cgroup).
func setUpWorkloadCgroup() *os.File {
	var fs unix.Statfs_t
	if unix.Statfs(cgroupMount, &fs) != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
		if err := os.MkdirAll(cgroupMount, 0o755); err != nil {
			return nil
		}
		if err := unix.Mount("cgroup2", cgroupMount, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			logf("no cgroup2 in the guest (%v): OOM kills are counted guest-wide", err)
			return nil
		}
	}
	if err := os.WriteFile(filepath.Join(cgroupMount, "cgroup.subtree_control"), []byte("+memory"), 0); err != nil {
		logf("no memory controller in the guest (%v): OOM kills are counted guest-wide", err)
		return nil
	}
	if err := os.Mkdir(workloadCgroup, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil
	}
	f, err := os.Open(workloadCgroup)
	if err != nil {
		return nil
	}
	return f
}

// newOOMCounter starts counting: in the cgroup when the workload is in
// one, else guest-wide from now.
func newOOMCounter(inCgroup bool) oomCounter {
	if inCgroup {
		return oomCounter{events: filepath.Join(workloadCgroup, "memory.events")}
	}
	n, _ := readCounter("/proc/vmstat", "oom_kill")
	return oomCounter{base: n}
}

// killed says whether the OOM killer killed one of the workload's
// processes since the counter started.
func (c oomCounter) killed() bool {
	if c.events != "" {
		n, err := readCounter(c.events, "oom_kill")
		return err == nil && n > 0
	}
	n, err := readCounter("/proc/vmstat", "oom_kill")
	return err == nil && n > c.base
}

// readCounter reads "KEY VALUE" from a flat-keyed kernel file
// (/proc/vmstat, memory.events).
func readCounter(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// workloadExit is the report of a workload that ended with st.
func workloadExit(st exitStatus, oom bool) vmagent.WorkloadExit {
	e := vmagent.WorkloadExit{Code: st.code, Signal: st.signal}
	// Only a kill can be the OOM killer's: a workload that exited by
	// itself after one of its children was killed exited.
	e.OOM = oom && st.signal == int(unix.SIGKILL)
	return e
}

// startFailure is the report of a workload that could not be executed:
// the shell's 127 (not found, also a missing interpreter or loader) or
// 126 (not executable).
func startFailure(name string, err error) (vmagent.WorkloadExit, bool) {
	var le *lookupError
	if errors.As(err, &le) {
		return vmagent.WorkloadExit{Code: le.code, NotFound: true, Message: le.msg}, true
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return vmagent.WorkloadExit{}, false
	}
	switch errno {
	case unix.ENOENT:
		return vmagent.WorkloadExit{Code: 127, NotFound: true, Message: fmt.Sprintf("%s: %v", name, errno)}, true
	case unix.EACCES, unix.ENOEXEC, unix.EISDIR, unix.ETXTBSY:
		return vmagent.WorkloadExit{Code: 126, NotFound: true, Message: fmt.Sprintf("%s: %v", name, errno)}, true
	}
	return vmagent.WorkloadExit{}, false
}

package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// ConsoleLogMax bounds what ConsoleLog returns.
const ConsoleLogMax = 1 << 20

// State reads the VM's state as QMP events left it.
func (d *Driver) State(ctx context.Context, id string) (driver.State, error) {
	v := d.get(id)
	if v == nil {
		return driver.State{Status: driver.StatusStopped}, nil
	}
	v.mu.Lock()
	st := driver.State{Status: v.state.status(), Pid: v.pid, Processes: 1}
	if v.state == stateCrashed {
		st.Error = v.reason
	}
	ac, withAgent := v.agent, v.withAgent
	v.mu.Unlock()
	// A VM booted by firmware has no agent to tell: its OS is the
	// workload, running once the machine runs.
	st.WorkloadStarted = st.Status == driver.StatusRunning && (!withAgent || (ac != nil && ac.workloadStarted()))
	st.MemoryUsage = v.cg.memoryUsage()
	st.CPUUsage = procCPU(v.pid)
	return st, nil
}

// procCPU is a process's user+system time in nanoseconds.
func procCPU(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return (ut + st) * int64(time.Second/100) // USER_HZ is 100 on Linux
}

// Freeze pauses the VM's vCPUs (QMP stop) and returns once QEMU says so.
func (d *Driver) Freeze(ctx context.Context, id string) error {
	return d.pauseResume(ctx, id, "stop", func(s vmState) bool { return s == statePaused })
}

// Unfreeze resumes the vCPUs (QMP cont).
func (d *Driver) Unfreeze(ctx context.Context, id string) error {
	return d.pauseResume(ctx, id, "cont", func(s vmState) bool { return s == stateRunning || s == statePoweringDown })
}

func (d *Driver) pauseResume(ctx context.Context, id, cmd string, reached func(vmState) bool) error {
	v := d.get(id)
	if v == nil {
		return driver.ErrNotRunning
	}
	mon := v.monitor()
	if mon == nil {
		return driver.ErrNotRunning
	}
	if _, err := mon.run(cmd, nil); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return v.waitState(wctx, reached)
}

// UpdateLimits changes the CPU bound of QEMU's cgroup. A VM's vCPU count
// and RAM are fixed while it runs: they change at the next start.
func (d *Driver) UpdateLimits(ctx context.Context, id string, limits driver.Limits) error {
	v := d.get(id)
	if v == nil {
		return driver.ErrNotRunning
	}
	v.mu.Lock()
	hotplug := v.hotplug
	v.mu.Unlock()
	return v.cg.setLimits(driver.Limits{CPUCount: limits.CPUCount, MemoryHotplug: hotplug}, v.mem)
}

// ConsoleLog returns the end of the serial console's output.
func (d *Driver) ConsoleLog(ctx context.Context, id string) ([]byte, error) {
	dir, err := d.instanceDir(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, fileConsole))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > ConsoleLogMax {
		if _, err := f.Seek(st.Size()-ConsoleLogMax, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, ConsoleLogMax))
}

// LogFile returns the path of a VM's console log (the serial console and
// the workload's output) or of QEMU's own (driver.LogFiler).
func (d *Driver) LogFile(id string, kind driver.LogKind) (string, error) {
	dir, err := d.instanceDir(id)
	if err != nil {
		return "", err
	}
	switch kind {
	case driver.LogConsole:
		return filepath.Join(dir, fileConsole), nil
	case driver.LogRuntime:
		return filepath.Join(dir, fileLog), nil
	}
	return "", errdefs.Invalid("unknown log kind %d", kind)
}

var _ driver.LogFiler = (*Driver)(nil)

// ClearConsoleLog empties the console log (QEMU appends, so it goes on at
// the new end).
func (d *Driver) ClearConsoleLog(ctx context.Context, id string) error {
	dir, err := d.instanceDir(id)
	if err != nil {
		return err
	}
	if err := os.Truncate(filepath.Join(dir, fileConsole), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clear console log: %w", err)
	}
	return nil
}

// Delete removes a stopped VM's directory: its runtime files, logs and
// saved state (its disks are storage's).
func (d *Driver) Delete(ctx context.Context, id string) error {
	if d.get(id) != nil {
		return fmt.Errorf("delete %s: the VM is running", id)
	}
	dir, err := d.instanceDir(id)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	cgroupFor(d.cfg.CgroupParent, id).remove()
	return nil
}

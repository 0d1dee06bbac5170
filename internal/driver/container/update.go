package container

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/driver"
)

// UpdateLimits rewrites a running container's cgroup limits with `runc
// update`, so `config set limits.memory` takes effect at once, as in LXD.
// Every limit is written, zero meaning "none", so a removed key lifts its
// limit rather than leaving the old one in place. Block I/O limits, which
// runc update cannot lift, are written to the cgroup files directly, after
// runc's (which rewrites the start's throttles).
func (d *Driver) UpdateLimits(ctx context.Context, id string, l driver.Limits) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	if err := checkBlockIO(l); err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	if d.lookup(id) == nil {
		return fmt.Errorf("update %s: %w", id, driver.ErrNotRunning)
	}
	memory, pids, quota := "-1", "-1", "-1"
	if l.MemoryBytes > 0 {
		memory = strconv.FormatInt(l.MemoryBytes, 10)
	}
	if l.Processes > 0 {
		pids = strconv.FormatInt(l.Processes, 10)
	}
	if l.CPUCount > 0 {
		quota = strconv.Itoa(l.CPUCount * cpuPeriod)
	}
	cpus := l.CPUSet
	if cpus == "" {
		b, err := os.ReadFile("/sys/devices/system/cpu/online")
		if err != nil {
			return fmt.Errorf("update %s: read online CPUs: %w", id, err)
		}
		cpus = strings.TrimSpace(string(b))
	}
	_, err := d.runc(ctx, "update",
		"--memory", memory,
		"--pids-limit", pids,
		"--cpu-period", strconv.Itoa(cpuPeriod), "--cpu-quota", quota,
		"--cpuset-cpus", cpus,
		id)
	if err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	if err := d.applyThrottles(id, l); err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	if err := d.applyWeight(id, l.DiskPriority, true); err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	return nil
}

package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
)

const cgroupRoot = "/sys/fs/cgroup"

// cgroup is the QEMU process's cgroup: Parent/<id> in the unified
// hierarchy, or in the v1 memory, cpu and cpuacct hierarchies. It bounds
// what the whole emulator may use (guest RAM plus QEMU's own), not only
// what the guest sees.
type cgroup struct {
	v2    bool
	paths []string // one per hierarchy
}

func cgroupV2() bool {
	var fs unix.Statfs_t
	return unix.Statfs(cgroupRoot, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC
}

func cgroupFor(parent, id string) *cgroup {
	if cgroupV2() {
		return &cgroup{v2: true, paths: []string{filepath.Join(cgroupRoot, parent, id)}}
	}
	var paths []string
	seen := map[string]bool{}
	for _, c := range []string{"memory", "cpu", "cpuacct"} {
		dir := filepath.Join(cgroupRoot, c)
		real, err := filepath.EvalSymlinks(dir)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		paths = append(paths, filepath.Join(dir, parent, id))
	}
	return &cgroup{paths: paths}
}

// create makes the cgroup (and its parent, enabling controllers on v2).
func (c *cgroup) create() error {
	for _, p := range c.paths {
		if c.v2 {
			parent := filepath.Dir(p)
			if err := os.MkdirAll(parent, 0o755); err != nil {
				return err
			}
			// Best effort: a controller the root does not delegate is
			// simply not limited.
			_ = os.WriteFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"), []byte("+memory +cpu"), 0)
			_ = os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory +cpu"), 0)
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", p, err)
		}
	}
	return nil
}

// open returns the v2 cgroup directory for clone3's CLONE_INTO_CGROUP.
func (c *cgroup) open() (*os.File, error) {
	if !c.v2 {
		return nil, errors.New("cgroup v1")
	}
	return os.Open(c.paths[0])
}

// add moves pid into the cgroup (v1: the process ran outside it for the
// moment between its start and this call).
func (c *cgroup) add(pid int) error {
	for _, p := range c.paths {
		if err := os.WriteFile(filepath.Join(p, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("cgroup %s: %w", p, err)
		}
	}
	return nil
}

// qemuOverhead is what QEMU itself needs beside guest RAM: its code, the
// TCG translation cache (bounded by -accel tcg,tb-size) and device state.
const qemuOverhead = 320 << 20

// setLimits writes the memory and CPU bounds: the memory bound leaves
// room for the guest RAM the machine may grow by (l.MemoryHotplug).
func (c *cgroup) setLimits(l driver.Limits, guestMem int64) error {
	mem := guestMem + l.MemoryHotplug + qemuOverhead
	if l.MemoryBytes > 0 {
		mem = l.MemoryBytes + l.MemoryHotplug + qemuOverhead
	}
	for _, p := range c.paths {
		var writes [][2]string
		switch {
		case c.v2:
			writes = append(writes, [2]string{"memory.max", strconv.FormatInt(mem, 10)})
			if l.CPUCount > 0 {
				writes = append(writes, [2]string{"cpu.max", fmt.Sprintf("%d 100000", l.CPUCount*100000)})
			} else {
				writes = append(writes, [2]string{"cpu.max", "max 100000"})
			}
		case strings.Contains(p, "/memory/"):
			writes = append(writes, [2]string{"memory.limit_in_bytes", strconv.FormatInt(mem, 10)})
		case strings.Contains(p, "/cpu/") || strings.Contains(p, "/cpu,cpuacct/"):
			q := "-1"
			if l.CPUCount > 0 {
				q = strconv.Itoa(l.CPUCount * 100000)
			}
			writes = append(writes, [2]string{"cpu.cfs_period_us", "100000"}, [2]string{"cpu.cfs_quota_us", q})
		}
		for _, w := range writes {
			if err := os.WriteFile(filepath.Join(p, w[0]), []byte(w[1]), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("cgroup %s: %w", w[0], err)
			}
		}
	}
	return nil
}

// memoryUsage reads the cgroup's memory use, 0 when unknown.
func (c *cgroup) memoryUsage() int64 {
	for _, p := range c.paths {
		for _, f := range []string{"memory.current", "memory.usage_in_bytes"} {
			if b, err := os.ReadFile(filepath.Join(p, f)); err == nil {
				n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
				return n
			}
		}
	}
	return 0
}

// remove deletes the cgroup once it is empty.
func (c *cgroup) remove() {
	for _, p := range c.paths {
		_ = os.Remove(p)
	}
}

// Close removes the driver's parent cgroup where it is empty, so a daemon
// that stops with no VM running leaves no cgroup behind. Running VMs keep
// theirs (rmdir fails with EBUSY) and a later driver reattaches to them.
func (d *Driver) Close() error {
	cgroupFor(d.cfg.CgroupParent, "").remove()
	return nil
}

package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

var (
	_ driver.VMStatsReader    = (*Driver)(nil)
	_ driver.GuestStater      = (*Driver)(nil)
	_ driver.MemoryHotplugger = (*Driver)(nil)
)

// hotplugSlots is how many DIMMs a machine with memory headroom can take:
// each live growth plugs one.
const hotplugSlots = 8

// MemoryHotplug says whether VMs booted from image trees can have memory
// headroom: q35 has ACPI memory hotplug (pc-dimm), microvm has no ACPI
// and no DIMM slots. Disk-image VMs boot q35 and always can.
func (d *Driver) MemoryHotplug() error {
	return machineHotplug(d.cfg.Machine)
}

func machineHotplug(machine string) error {
	if machine == "microvm" || machine == "" {
		return errdefs.Invalid("this host runs VMs booted from images on QEMU's microvm machine, which has no memory hotplug: start hangard with --vm-machine q35 for limits.memory.hotplug")
	}
	return nil
}

// memoryArg is -m's value: the boot RAM, with DIMM slots and the maximum
// it may grow to when there is headroom. QEMU's bare numbers are MiB; the
// headroom is rounded up to a whole MiB.
func memoryArg(mem, hotplug int64) string {
	arg := strconv.FormatInt(mem>>20, 10) + "M"
	if hotplug <= 0 {
		return arg
	}
	maxMiB := mem>>20 + (hotplug+(1<<20)-1)>>20
	return fmt.Sprintf("size=%s,slots=%d,maxmem=%dM", arg, hotplugSlots, maxMiB)
}

// VMStats reads a running VM's figures: CPU time and memory of its QEMU
// process, its machine's size, and its taps' counters.
func (d *Driver) VMStats(ctx context.Context, id string) (driver.VMStats, error) {
	v := d.get(id)
	if v == nil {
		return driver.VMStats{}, driver.ErrNotRunning
	}
	v.mu.Lock()
	st := driver.VMStats{Memory: v.mem, MemoryHotplug: v.hotplug, VCPUs: v.cpus}
	taps := make([]string, 0, len(v.taps))
	for _, t := range v.taps {
		taps = append(taps, t)
	}
	v.mu.Unlock()
	pid := strconv.Itoa(v.pid)
	u, s, ok := statTimes(filepath.Join("/proc", pid, "stat"))
	if !ok {
		return driver.VMStats{}, driver.ErrNotRunning
	}
	st.CPUSeconds = u + s
	b, err := os.ReadFile(filepath.Join("/proc", pid, "statm"))
	if err != nil {
		return driver.VMStats{}, driver.ErrNotRunning
	}
	if st.MemoryVMS, st.MemoryRSS, err = parseStatm(b, int64(os.Getpagesize())); err != nil {
		return driver.VMStats{}, err
	}
	for _, t := range taps {
		// A tap's transmit is what reaches the guest; a macvtap's
		// receive is (it is a macvlan on the wire's side).
		rx, tx := tapCounters("/sys/class/net", t)
		if isMacvtap("/sys/class/net", t) {
			rx, tx = tx, rx
		}
		st.NetRx += tx
		st.NetTx += rx
	}
	if d.get(id) != v {
		return driver.VMStats{}, driver.ErrNotRunning
	}
	return st, nil
}

// parseStatm reads /proc/PID/statm's size and resident fields (pages) as
// bytes.
func parseStatm(b []byte, pageSize int64) (vms, rss int64, err error) {
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("statm %q: want at least 2 fields", b)
	}
	size, err1 := strconv.ParseInt(f[0], 10, 64)
	res, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || size < 0 || res < 0 {
		return 0, 0, fmt.Errorf("statm %q: not page counts", b)
	}
	return size * pageSize, res * pageSize, nil
}

// tapCounters reads a host interface's byte counters; 0 for one that is
// gone.
func tapCounters(sysNet, name string) (rx, tx int64) {
	read := func(f string) int64 {
		b, err := os.ReadFile(filepath.Join(sysNet, name, "statistics", f))
		if err != nil {
			return 0
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return n
	}
	return read("rx_bytes"), read("tx_bytes")
}

// isMacvtap reports whether the host interface name is a macvtap (sysfs
// gives one a macvtap directory holding its character device).
func isMacvtap(sysNet, name string) bool {
	_, err := os.Stat(filepath.Join(sysNet, name, "macvtap"))
	return err == nil
}

// GuestStat stats a guest path through the agent.
func (d *Driver) GuestStat(ctx context.Context, id, path string, follow bool) (driver.GuestStat, error) {
	ac, err := d.readyAgent(ctx, id)
	if err != nil {
		return driver.GuestStat{}, err
	}
	if ac.agentVersion() < vmagent.VersionStat {
		return driver.GuestStat{}, errdefs.NotImplemented("the guest agent of this VM is too old to stat a path: restart the VM")
	}
	ch, q, err := ac.open()
	if err != nil {
		return driver.GuestStat{}, err
	}
	defer ac.release(ch)
	if err := ac.send(vmagent.MsgStat, ch, vmagent.Stat{Path: path, FollowLinks: follow}); err != nil {
		return driver.GuestStat{}, err
	}
	f, err := q.pop(ctx)
	if err != nil {
		return driver.GuestStat{}, err
	}
	switch f.Type {
	case vmagent.MsgError:
		return driver.GuestStat{}, fileError(f)
	case vmagent.MsgStatInfo:
	default:
		return driver.GuestStat{}, fmt.Errorf("guest agent: unexpected reply %d to a stat", f.Type)
	}
	var info vmagent.StatInfo
	if err := json.Unmarshal(f.Payload, &info); err != nil {
		return driver.GuestStat{}, fmt.Errorf("guest agent: %w", err)
	}
	return driver.GuestStat{Exists: info.Exists, Type: info.Type, Mode: info.Mode, Size: info.Size, Target: info.Target, Err: info.Err}, nil
}

// withMemoryHotplug gives a command line built for mem of RAM the
// headroom hotplug: -m gets DIMM slots and a maximum, and a kernel booted
// by the driver onlines plugged memory by itself (the default leaves it
// offline until userspace says otherwise, and the agent has no udev).
func withMemoryHotplug(args []string, mem, hotplug int64) []string {
	if hotplug <= 0 {
		return args
	}
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		switch out[i] {
		case "-m":
			out[i+1] = memoryArg(mem, hotplug)
		case "-append":
			out[i+1] += " memhp_default_state=online"
		}
	}
	return out
}

package container

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
)

var _ driver.MetricsReader = (*Driver)(nil)

// Metrics reads a running container's figures from the cgroup files State
// already holds open (one pread each), /proc/PID/net/dev (the counters of
// PID 1's network namespace, without entering it) and a statfs of its
// root through /proc/PID/root.
func (d *Driver) Metrics(ctx context.Context, id string) (driver.Metrics, error) {
	in := d.lookup(id)
	if in == nil {
		return driver.Metrics{}, driver.ErrNotRunning
	}
	m := in.stats.metrics(hostMemTotal())
	if m.Processes < 0 {
		return driver.Metrics{}, driver.ErrNotRunning
	}
	if dev, err := readProcFile(fmt.Sprintf("/proc/%d/net/dev", in.pid)); err == nil {
		if counters, err := parseNetDev(dev); err == nil {
			m.Network = make(map[string]driver.NetCounters, len(counters))
			for name, c := range counters {
				m.Network[name] = driver.NetCounters{
					ReceiveBytes: c[0], ReceivePackets: c[1], ReceiveErrs: c[2], ReceiveDrop: c[3],
					TransmitBytes: c[8], TransmitPackets: c[9], TransmitErrs: c[10], TransmitDrop: c[11],
				}
			}
		}
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(fmt.Sprintf("/proc/%d/root", in.pid), &fs); err == nil {
		bs := fs.Bsize
		m.Filesystem = []driver.Filesystem{{
			Type: fsTypeName(fs.Type), Mountpoint: "/",
			Size: int64(fs.Blocks) * bs, Free: int64(fs.Bfree) * bs, Avail: int64(fs.Bavail) * bs,
		}}
	}
	// PID 1 is the daemon's child (it is the subreaper), so its pid cannot
	// be reused before the watcher reaps it and closes the stats: still
	// open after the reads means what was read was this container's.
	in.stats.mu.RLock()
	closed := in.stats.closed
	in.stats.mu.RUnlock()
	if closed {
		return driver.Metrics{}, driver.ErrNotRunning
	}
	return m, nil
}

// metricsBuf holds one cgroup file's contents; memory.stat, the longest,
// is under 2 KiB on v1 and 1.5 KiB on v2.
var metricsBuf = sync.Pool{New: func() any { return new([8192]byte) }}

// metrics reads the cgroup figures. A file that could not be opened or
// read leaves its figures out. Processes is -1 once the container is gone.
func (c *cgroupStats) metrics(hostMem int64) driver.Metrics {
	bp := metricsBuf.Get().(*[8192]byte)
	defer metricsBuf.Put(bp)
	buf := bp[:]
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return driver.Metrics{Processes: -1}
	}
	m := driver.Metrics{Processes: -1}
	if b, err := c.read(statPids, buf); err == nil {
		if v, err := parseInt(bytes.TrimSpace(b)); err == nil {
			m.Processes = v
		} else {
			m.Processes = 0
		}
	} else {
		m.Processes = 0 // the pids file is missing: not the container's end
	}
	if b, err := c.read(statCPUAll, buf); err == nil {
		m.CPU = parseCPU(b, c.v2)
	}
	if b, err := c.read(statCPUSet, buf); err == nil {
		m.CPUs = countCPUs(bytes.TrimSpace(b))
	}
	m.Memory = c.memory(buf, hostMem)
	m.Disk = c.disk(buf)
	return m
}

// parseCPU reads v1 cpuacct.usage_all ("cpu user system" then one line of
// nanoseconds per CPU) or v2 cpu.stat (user_usec, system_usec: no split
// by CPU).
func parseCPU(b []byte, v2 bool) []driver.CPUTime {
	if v2 {
		u, uok := keyedValue(b, "user_usec")
		s, sok := keyedValue(b, "system_usec")
		if !uok || !sok {
			return nil
		}
		return []driver.CPUTime{{User: float64(u) / 1e6, System: float64(s) / 1e6}}
	}
	var out []driver.CPUTime
	for i, line := range bytes.Split(b, []byte{'\n'}) {
		f := bytes.Fields(line)
		if i == 0 || len(f) != 3 {
			continue // the header
		}
		u, err1 := parseInt(f[1])
		s, err2 := parseInt(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, driver.CPUTime{CPU: string(f[0]), User: float64(u) / 1e9, System: float64(s) / 1e9})
	}
	return out
}

// countCPUs counts the CPUs of a cpuset list ("0-3,6"); 0 when malformed.
func countCPUs(b []byte) int {
	n := 0
	for part := range bytes.SplitSeq(b, []byte{','}) {
		lo, hi, isRange := bytes.Cut(part, []byte{'-'})
		a, err := parseInt(lo)
		if err != nil {
			return 0
		}
		if !isRange {
			n++
			continue
		}
		z, err := parseInt(hi)
		if err != nil || z < a {
			return 0
		}
		n += int(z-a) + 1
	}
	return n
}

// memory reads memory.stat (and, on v2, memory.swap.current), the limit
// and the OOM kill count. MemTotal is the limit, or the host's RAM when
// there is none; MemFree is what the limit leaves, and MemAvailable adds
// the inactive page cache the kernel reclaims first.
func (c *cgroupStats) memory(buf []byte, hostMem int64) []driver.MemoryFigure {
	var out []driver.MemoryFigure
	add := func(k driver.MemoryKind, v int64) {
		out = append(out, driver.MemoryFigure{Kind: k, Value: v})
	}
	var usage, inactiveFile int64 = -1, 0
	if b, err := c.read(statMemStat, buf); err == nil {
		// v1 reports the hierarchy's totals under total_*; v2's keys are
		// hierarchical already.
		keys := memStatV1
		if c.v2 {
			keys = memStatV2
		}
		var st [driver.NumMemoryKinds]int64
		var seen [driver.NumMemoryKinds]bool
		for line := range bytes.SplitSeq(b, []byte{'\n'}) {
			k, v, ok := bytes.Cut(line, []byte{' '})
			if !ok {
				continue
			}
			kind, ok := keys[string(k)]
			if !ok {
				continue
			}
			n, err := parseInt(bytes.TrimSpace(v))
			if err != nil {
				continue
			}
			st[kind] += n
			seen[kind] = true
		}
		// Active and Inactive are the sums of their anon and file lists.
		st[driver.MemActive] = st[driver.MemActiveAnon] + st[driver.MemActiveFile]
		seen[driver.MemActive] = seen[driver.MemActiveAnon] && seen[driver.MemActiveFile]
		st[driver.MemInactive] = st[driver.MemInactiveAnon] + st[driver.MemInactiveFile]
		seen[driver.MemInactive] = seen[driver.MemInactiveAnon] && seen[driver.MemInactiveFile]
		for k := range driver.NumMemoryKinds {
			if seen[k] {
				add(k, st[k])
			}
		}
		inactiveFile = st[driver.MemInactiveFile]
	}
	if c.v2 {
		if v := c.readInt64(statSwap, buf); v >= 0 {
			add(driver.MemSwap, v)
		}
	}
	if v := c.readInt64(statMemUsage, buf); v >= 0 {
		usage = v
	}
	total := hostMem
	if l := c.readInt64(statMemLimit, buf); l > 0 && (hostMem <= 0 || l < hostMem) {
		total = l // v1's "no limit" is a huge number, v2's "max" no number
	}
	if total > 0 {
		add(driver.MemTotal, total)
		if usage >= 0 {
			free := max(total-usage, 0)
			add(driver.MemFree, free)
			add(driver.MemAvailable, min(free+inactiveFile, total))
		}
	}
	if b, err := c.read(statOOM, buf); err == nil {
		if v, ok := keyedValue(b, "oom_kill"); ok {
			add(driver.MemOOMKills, v)
		}
	}
	return out
}

// readInt64 is a single-number file's value, -1 when unreadable.
func (c *cgroupStats) readInt64(i int, buf []byte) int64 {
	b, err := c.read(i, buf)
	if err != nil {
		return -1
	}
	v, err := parseInt(bytes.TrimSpace(b))
	if err != nil {
		return -1
	}
	return v
}

// memory.stat's keys for each memory figure (v1: the hierarchical
// totals; v2 names them differently).
var (
	memStatV1 = map[string]driver.MemoryKind{
		"total_active_anon": driver.MemActiveAnon, "total_active_file": driver.MemActiveFile,
		"total_inactive_anon": driver.MemInactiveAnon, "total_inactive_file": driver.MemInactiveFile,
		"total_cache": driver.MemCached, "total_dirty": driver.MemDirty, "total_mapped_file": driver.MemMapped,
		"total_rss": driver.MemRSS, "total_shmem": driver.MemShmem, "total_swap": driver.MemSwap,
		"total_unevictable": driver.MemUnevictable, "total_writeback": driver.MemWriteback,
	}
	memStatV2 = map[string]driver.MemoryKind{
		"active_anon": driver.MemActiveAnon, "active_file": driver.MemActiveFile,
		"inactive_anon": driver.MemInactiveAnon, "inactive_file": driver.MemInactiveFile,
		"file": driver.MemCached, "file_dirty": driver.MemDirty, "file_mapped": driver.MemMapped,
		"anon": driver.MemRSS, "shmem": driver.MemShmem,
		"unevictable": driver.MemUnevictable, "file_writeback": driver.MemWriteback,
	}
)

// disk reads the block I/O by device: v1's io_service_bytes and
// io_serviced ("MAJ:MIN Read N" lines), v2's io.stat ("MAJ:MIN rbytes=N
// wbytes=N rios=N wios=N ...").
func (c *cgroupStats) disk(buf []byte) map[string]driver.DiskIO {
	b, err := c.read(statIOBytes, buf)
	if err != nil {
		return nil
	}
	out := map[string]driver.DiskIO{}
	if c.v2 {
		for line := range bytes.SplitSeq(b, []byte{'\n'}) {
			f := bytes.Fields(line)
			if len(f) < 2 {
				continue
			}
			name := blockDevName(string(f[0]))
			var io driver.DiskIO
			for _, kv := range f[1:] {
				k, v, _ := bytes.Cut(kv, []byte{'='})
				n, err := parseInt(v)
				if err != nil {
					continue
				}
				switch string(k) {
				case "rbytes":
					io.ReadBytes = n
				case "wbytes":
					io.WrittenBytes = n
				case "rios":
					io.ReadsCompleted = n
				case "wios":
					io.WritesCompleted = n
				}
			}
			out[name] = io
		}
		return out
	}
	v1IO(b, out, func(io *driver.DiskIO, op string, n int64) {
		switch op {
		case "Read":
			io.ReadBytes = n
		case "Write":
			io.WrittenBytes = n
		}
	})
	if b, err := c.read(statIOOps, buf); err == nil {
		v1IO(b, out, func(io *driver.DiskIO, op string, n int64) {
			switch op {
			case "Read":
				io.ReadsCompleted = n
			case "Write":
				io.WritesCompleted = n
			}
		})
	}
	return out
}

// v1IO parses "MAJ:MIN OP N" lines into out by device name.
func v1IO(b []byte, out map[string]driver.DiskIO, set func(*driver.DiskIO, string, int64)) {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) != 3 {
			continue // "Total N"
		}
		n, err := parseInt(f[2])
		if err != nil {
			continue
		}
		name := blockDevName(string(f[0]))
		io := out[name]
		set(&io, string(f[1]), n)
		out[name] = io
	}
}

// blockNames caches device numbers' names ("8:0" -> "sda"): a block
// device's name does not change while it exists.
var blockNames sync.Map

// blockDevName is the kernel's name of block device MAJ:MIN, or MAJ:MIN
// itself when /sys does not know it.
func blockDevName(majMin string) string {
	if v, ok := blockNames.Load(majMin); ok {
		return v.(string)
	}
	name := majMin
	if b, err := os.ReadFile("/sys/dev/block/" + majMin + "/uevent"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && v != "" {
				name = v
			}
		}
		blockNames.Store(majMin, name)
	}
	return name
}

// fsTypeName names a statfs magic number as /proc/mounts would.
func fsTypeName(magic int64) string {
	switch uint32(magic) {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case 0x2fc12fc1:
		return "zfs"
	case unix.SQUASHFS_MAGIC:
		return "squashfs"
	}
	return "0x" + strconv.FormatUint(uint64(uint32(magic)), 16)
}

// hostMemTotal is the host's RAM in bytes (MemTotal of /proc/meminfo),
// read once: what an unlimited container may use.
var hostMemTotal = sync.OnceValue(func() int64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
})

// oomKills is how many processes of the cgroup the OOM killer killed
// (v1 memory.oom_control's or v2 memory.events' oom_kill); 0 when the
// kernel does not say.
func (c *cgroupStats) oomKills() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return 0
	}
	var buf [512]byte
	b, err := c.read(statOOM, buf[:])
	if err != nil {
		return 0
	}
	v, _ := keyedValue(b, "oom_kill")
	return v
}

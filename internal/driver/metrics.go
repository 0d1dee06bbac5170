package driver

import "context"

// MetricsReader is implemented by drivers that can read a running
// instance's resource figures for monitoring (GET /1.0/metrics). It is
// separate from State because it reads much more (memory breakdown, block
// I/O, per-CPU time, filesystems) and only a scraper needs it.
type MetricsReader interface {
	// Metrics reads the figures of a running instance; ErrNotRunning
	// when it does not run (it may stop at any moment, so callers treat
	// that as "gone", not as a failure). A figure the runtime cannot read
	// (a cgroup file the host lacks) is left out, not reported as zero.
	Metrics(ctx context.Context, id string) (Metrics, error)
}

// Metrics are one instance's figures, counters since it started.
type Metrics struct {
	// CPU is CPU time by CPU. CPU is the CPU's number ("0"), or "" for a
	// total over all CPUs where the runtime cannot split it (a cgroup v2
	// host, a VM whose vCPUs share one thread).
	CPU []CPUTime
	// CPUs is how many CPUs the instance may run on (its cpuset, a VM's
	// vCPU count); 0 when unknown.
	CPUs int
	// Memory holds the memory figures the runtime knows, each once.
	Memory []MemoryFigure
	// Disk is block I/O by device: a container's host block devices
	// ("sda"), a VM's disk devices by their device name ("root").
	Disk map[string]DiskIO
	// Network is traffic by interface name as the instance sees it.
	Network map[string]NetCounters
	// Filesystem is the filesystems the instance's disks hold. Device is
	// left empty for the root filesystem: the caller names it after the
	// instance's root disk device.
	Filesystem []Filesystem
	// Processes is how many processes the instance has; -1 when unknown
	// (a VM: they are the guest's).
	Processes int64
}

// CPUTime is time spent by one CPU (or all, CPU ""), in seconds.
type CPUTime struct {
	CPU          string
	User, System float64
}

// MemoryKind names a memory figure, in /proc/meminfo's vocabulary (which
// LXD's metric names follow).
type MemoryKind int

// The memory figures, all in bytes except OOMKills (a count).
const (
	MemActiveAnon MemoryKind = iota
	MemActiveFile
	MemActive
	MemCached
	MemDirty
	MemInactiveAnon
	MemInactiveFile
	MemInactive
	MemMapped
	MemAvailable
	MemFree
	MemTotal
	MemRSS
	MemShmem
	MemSwap
	MemUnevictable
	MemWriteback
	MemOOMKills
	NumMemoryKinds
)

// MemoryFigure is one memory figure.
type MemoryFigure struct {
	Kind  MemoryKind
	Value int64
}

// DiskIO is one block device's completed I/O.
type DiskIO struct {
	ReadBytes, ReadsCompleted, WrittenBytes, WritesCompleted int64
}

// NetCounters are an interface's traffic counters.
type NetCounters struct {
	ReceiveBytes, ReceivePackets, ReceiveErrs, ReceiveDrop     int64
	TransmitBytes, TransmitPackets, TransmitErrs, TransmitDrop int64
}

// Filesystem is one mounted filesystem's space, in bytes.
type Filesystem struct {
	Device            string // the disk device holding it; "" for the root disk
	Type              string // "ext4", "overlay", "btrfs", ...
	Mountpoint        string // inside the instance
	Size, Free, Avail int64
}

package driver

import "context"

// What the instances API of issue 15 asks of a VM beyond the Driver
// contract: the emulator's resource use, one guest path's kind, and
// whether the machine can take more memory while it runs. Each is an
// optional interface the service asks for by type assertion.

// VMStatsReader reads a running VM's resource use from the host side:
// its emulator process and its NICs' host ends.
type VMStatsReader interface {
	// VMStats reads a running VM's figures; ErrNotRunning when it does
	// not run.
	VMStats(ctx context.Context, id string) (VMStats, error)
}

// VMStats are a running VM's figures.
type VMStats struct {
	// CPUSeconds is the emulator process's utime+stime.
	CPUSeconds float64
	// MemoryRSS and MemoryVMS are the emulator's resident and virtual
	// sizes in bytes (/proc/PID/statm).
	MemoryRSS, MemoryVMS int64
	// Memory is the guest RAM the machine booted with; MemoryHotplug the
	// headroom it may grow by (0: none).
	Memory, MemoryHotplug int64
	// VCPUs is the machine's vCPU count.
	VCPUs int
	// NetRx and NetTx are the bytes the guest received and sent over its
	// NICs, summed, read from the host ends (a tap's tx is the guest's rx).
	NetRx, NetTx int64
}

// GuestStater says what a path in a running instance is, through its
// guest agent.
type GuestStater interface {
	// GuestStat stats path in the guest (lstat, or stat with follow). A
	// missing path is Exists false with no error; a path the agent cannot
	// stat (EACCES, ENOTDIR on a component) is Exists false with Err set.
	// ErrNotRunning when the instance does not run; a GuestFileError with
	// Disabled when the instance's agent serves no requests (agent.skip).
	GuestStat(ctx context.Context, id, path string, follow bool) (GuestStat, error)
}

// GuestStat is what GuestStat found.
type GuestStat struct {
	Exists bool
	// Type is "file", "directory", "symlink" or "other".
	Type string
	// Mode is the permission and special bits (07777).
	Mode   uint32
	Size   int64
	Target string // a symlink's target
	Err    string
}

// MemoryHotplugger is implemented by drivers whose machines may be given
// memory headroom (Limits.MemoryHotplug).
type MemoryHotplugger interface {
	// MemoryHotplug returns nil when VMs booted from an image tree can
	// take memory hotplug, else an error saying why not and how to get
	// a machine that can.
	MemoryHotplug() error
}

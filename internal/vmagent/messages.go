package vmagent

import "net/netip"

// Config is what the agent runs at boot, written by the daemon into the
// initramfs at ConfigPath.
type Config struct {
	Hostname string   `json:"hostname"`
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	Cwd      string   `json:"cwd"`
	UID      uint32   `json:"uid"`
	GID      uint32   `json:"gid"`
	// Root is the disk holding the root filesystem, found by its serial
	// (the kernel names disks in probe order, which varies with the
	// buses and the extra disks). The agent grows its filesystem to the
	// disk's size after mounting it (storage may have grown the disk).
	Root *Disk `json:"root,omitempty"`
	// RootDevice is the root's block device when Root is nil
	// ("/dev/vda"); RootFSType its filesystem.
	RootDevice string `json:"root_device"`
	RootFSType string `json:"root_fstype"`
	// Disks are the extra disks: the agent waits for each before the
	// workload starts and links it in /dev/disk/by-id as udev would.
	Disks []Disk `json:"disks,omitempty"`
	// Mounts are 9p shares the agent mounts before the workload starts.
	Mounts []Mount `json:"mounts,omitempty"`
	// Modules are kernel module files in the initramfs, loaded in order
	// before anything else.
	Modules []string `json:"modules"`
	// NICs are the network interfaces the agent configures before the
	// workload starts.
	NICs []NIC `json:"nics,omitempty"`
	// SkipAgent: the agent boots the guest, runs the workload and
	// reports its start and end, but serves no exec, file or stat
	// request (each is answered Error with Disabled). Being PID 1 it
	// still reaps orphans, applies plugged NICs and disks, and powers
	// the machine off at a stop.
	SkipAgent bool `json:"skip_agent,omitempty"`
}

// Disk is a block device the daemon gave the VM. It is also the request
// of MsgDisk (a disk plugged or grown while the VM runs): the agent waits
// for the device with Serial (of at least Size bytes, when Size > 0),
// links it in /dev/disk/by-id, grows the root filesystem when it is the
// root disk, and answers Done. A request without a Serial only removes
// the links of disks that are gone (an unplug).
type Disk struct {
	// Serial is the device's serial: the disk's key.
	Serial string `json:"serial"`
	// Bus is "virtio-blk", "virtio-scsi" or "nvme".
	Bus  string `json:"bus"`
	Size int64  `json:"size,omitempty"`
	// ReadOnly makes the guest's block device read-only (BLKROSET):
	// QEMU refuses the writes of a read-only disk, but its NVMe
	// controller does not tell the guest, which would only see I/O
	// errors at write-back.
	ReadOnly bool `json:"read_only,omitempty"`
}

// Mount is a 9p share the agent mounts at Path (made if missing) with
// trans=virtio, version 9p2000.L.
type Mount struct {
	Tag      string `json:"tag"`
	Path     string `json:"path"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// NIC is one network interface as the agent configures it: the device
// with MAC Hwaddr is renamed Name, given MTU, brought up, and given the
// addresses and default routes. Nameservers and SearchDomain make
// /etc/resolv.conf. It is also the request of MsgNetConfig (a NIC
// plugged into a running VM).
type NIC struct {
	Name         string         `json:"name"`
	Hwaddr       string         `json:"hwaddr"`
	MTU          int            `json:"mtu,omitempty"`
	Addresses    []netip.Prefix `json:"addresses,omitempty"`
	Gateway4     netip.Addr     `json:"gateway4,omitzero"`
	Gateway6     netip.Addr     `json:"gateway6,omitzero"`
	Nameservers  []netip.Addr   `json:"nameservers,omitempty"`
	SearchDomain string         `json:"search_domain,omitempty"`
}

// NetState is the agent's reply to MsgNetState: every interface of the
// guest, loopback included.
type NetState struct {
	Interfaces []Interface `json:"interfaces"`
}

// Interface is one network interface of the guest.
type Interface struct {
	Name      string    `json:"name"`
	Hwaddr    string    `json:"hwaddr"`
	MTU       int       `json:"mtu"`
	Up        bool      `json:"up"`
	Type      string    `json:"type"` // "loopback", "broadcast" or "point-to-point"
	Addresses []Address `json:"addresses"`
	// Counters since the interface was created.
	BytesReceived   int64 `json:"bytes_received"`
	BytesSent       int64 `json:"bytes_sent"`
	PacketsReceived int64 `json:"packets_received"`
	PacketsSent     int64 `json:"packets_sent"`
	ErrorsReceived  int64 `json:"errors_received"`
	ErrorsSent      int64 `json:"errors_sent"`
	DroppedReceived int64 `json:"dropped_received"`
	DroppedSent     int64 `json:"dropped_sent"`
}

// Address is one address of an interface.
type Address struct {
	Family    string `json:"family"` // "inet" or "inet6"
	Address   string `json:"address"`
	PrefixLen int    `json:"prefix_len"`
	Scope     string `json:"scope"` // "local", "link" or "global"
}

// Ready is the agent's greeting.
type Ready struct {
	Version string `json:"version"`
	// WorkloadPid is the guest pid of the workload, 0 once it ended.
	WorkloadPid int `json:"workload_pid"`
}

// Error is a failed request.
type Error struct {
	Message string `json:"message"`
	// NotFound and Exists classify file errors.
	NotFound bool `json:"not_found,omitempty"`
	Exists   bool `json:"exists,omitempty"`
	Invalid  bool `json:"invalid,omitempty"`
	// Disabled: the agent serves no such request (Config.SkipAgent).
	Disabled bool `json:"disabled,omitempty"`
}

// Exec starts a process in the guest.
type Exec struct {
	Args        []string `json:"args"`
	Env         []string `json:"env"`
	Cwd         string   `json:"cwd"`
	CwdOptional bool     `json:"cwd_optional"`
	UID         uint32   `json:"uid"`
	GID         uint32   `json:"gid"`
	TTY         bool     `json:"tty"`
	Width       int      `json:"width"`
	Height      int      `json:"height"`
}

// Started reports a started process.
type Started struct {
	Pid int `json:"pid"`
}

// Signal sends a signal to an exec'd process.
type Signal struct {
	Signal int `json:"signal"`
}

// Resize changes an exec's terminal size.
type Resize struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

// Exit is a process's end: its exit code, or 128+signal.
type Exit struct {
	Code int `json:"code"`
}

// FileGet asks for a file, directory or symlink, not following a symlink
// in last place.
type FileGet struct {
	Path string `json:"path"`
}

// File types in FileInfo and FilePut.
const (
	TypeFile      = "file"
	TypeDirectory = "directory"
	TypeSymlink   = "symlink"
)

// FileInfo describes what FileGet found; a file's content follows as Data.
type FileInfo struct {
	Type    string   `json:"type"`
	UID     int64    `json:"uid"`
	GID     int64    `json:"gid"`
	Mode    uint32   `json:"mode"`
	Size    int64    `json:"size"`
	ModTime int64    `json:"mtime_ns"`
	Entries []string `json:"entries,omitempty"`
	Target  string   `json:"target,omitempty"`
}

// FilePut creates or changes a file, directory or symlink; a file's
// content or a symlink's target follows as Data.
type FilePut struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	UID    int64  `json:"uid"`
	GID    int64  `json:"gid"`
	Mode   uint32 `json:"mode"`
	Append bool   `json:"append"`
}

// FileDelete removes a file, symlink or empty directory.
type FileDelete struct {
	Path string `json:"path"`
}

// Shutdown asks the agent to stop the workload with Signal, kill what is
// left after TimeoutMs, and power the machine off.
type Shutdown struct {
	Signal    int   `json:"signal"`
	TimeoutMs int64 `json:"timeout_ms"`
}

// WorkloadExit reports the end of the workload (the VM powers off next).
type WorkloadExit struct {
	// Code is the exit code, or 128+Signal.
	Code int `json:"code"`
	// Signal killed the workload (0: it exited).
	Signal int `json:"signal,omitempty"`
	// OOM: the guest kernel's OOM killer killed a process of the
	// workload's (its cgroup's memory.events oom_kill grew, or, without
	// a cgroup, /proc/vmstat's oom_kill).
	OOM bool `json:"oom,omitempty"`
	// NotFound: the workload never ran, as its command could not be
	// executed (execve failed); Code is 127 (not found) or 126.
	NotFound bool `json:"not_found,omitempty"`
	// Message is the agent's reason in words for a NotFound.
	Message string `json:"message,omitempty"`
}

// Stat asks what a path is (MsgStat): lstat, or stat with FollowLinks.
type Stat struct {
	Path        string `json:"path"`
	FollowLinks bool   `json:"follow_links,omitempty"`
}

// StatInfo answers Stat. A missing path is Exists false with Err empty;
// one the agent could not stat (EACCES...) is Exists false with Err.
type StatInfo struct {
	Exists bool   `json:"exists"`
	Type   string `json:"type,omitempty"` // TypeFile, TypeDirectory, TypeSymlink or "other"
	Mode   uint32 `json:"mode,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Target string `json:"target,omitempty"`
	Err    string `json:"err,omitempty"`
}

// Identity is the request of MsgIdentity: the VM runs from another VM's
// saved state (a live fork, a copy of a stateful snapshot), so its
// hostname, MACs and addresses are that VM's, and so is its random
// number generator's state. The agent sets the hostname, gives each NIC
// its new MAC (virtio-net passes the change on to QEMU), replaces its
// addresses and routes with the new ones, bounces the link so that a
// DHCP client of the image's asks again with the new MAC, rewrites
// resolv.conf, and mixes Seed into the kernel's random pool and reseeds
// it.
type Identity struct {
	Hostname string        `json:"hostname"`
	NICs     []IdentityNIC `json:"nics,omitempty"`
	Seed     []byte        `json:"seed,omitempty"`
}

// IdentityNIC is a NIC's new configuration. The NIC is found by Name, or
// else by OldHwaddr, the MAC the saved VM gave it.
type IdentityNIC struct {
	NIC
	OldHwaddr string `json:"old_hwaddr,omitempty"`
}

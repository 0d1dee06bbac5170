// Package driver is the contract between the instance service and the
// runtimes that run instances: runc for containers (package container) and
// QEMU for virtual machines (package qemu). The service translates an
// instance's expanded config into a Spec; drivers never parse config keys and
// never touch the database, the API or events. A driver owns everything under
// its own directory (one sub-directory per instance ID) and its runtime's
// state.
//
// Driver is what every runtime does. What only some can do is an optional
// interface the service asks for by type assertion: ConsoleAttacher (an
// attachable console), RootOpener (a root the host can open: containers),
// GuestFiles (files through a guest agent: VMs), Stateful (standby and
// restore: VMs), Checkpointer (a running VM's state saved for a snapshot
// or a fork) and NetworkReader (the instance's interfaces: a container's
// namespace, a VM's guest agent).
package driver

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"
)

// ErrNotRunning is returned by operations that need a running instance.
var ErrNotRunning = errors.New("instance is not running")

// Spec is everything a driver needs to start one instance. The service builds
// it afresh at every start, so config changes apply on the next start.
type Spec struct {
	// ID is the stable runtime identity of the instance. It never changes,
	// not even on rename, and is safe as a file and cgroup name.
	ID string
	// Hostname is set in the instance's UTS namespace (the instance name).
	Hostname string
	// Args is the command PID 1 runs: the image's entrypoint+cmd, else /sbin/init.
	Args []string
	// Env is PID 1's environment, "KEY=VALUE". The driver adds a default
	// PATH and TERM when missing.
	Env []string
	// Cwd is PID 1's working directory ("/" when empty).
	Cwd string
	// UID and GID run PID 1 (ids inside the instance).
	UID, GID uint32
	// IDMap maps the instance's ids to host ids; nil runs privileged (no
	// user namespace).
	IDMap *IDMap
	// Limits are the cgroup limits.
	Limits Limits
	// StopSignal asks PID 1 to shut down cleanly.
	StopSignal syscall.Signal
	// SecureBoot boots a Root.Firmware disk with UEFI Secure Boot
	// (Microsoft's keys enrolled), when the firmware supports it
	// (security.secureboot).
	SecureBoot bool
	// NetNS, for a container, is the path of a network namespace (a bind
	// mount of an nsfs file) that the network layer created and put the
	// instance's NICs into, addresses and routes set, before the start:
	// the container joins it, so PID 1 starts with its network up. Empty
	// gives the container a namespace of its own with loopback only.
	NetNS string
	// UserNS, with NetNS and IDMap, is the user namespace that owns NetNS,
	// made with IDMap's mapping: the container joins it rather than make
	// its own, so its root holds the network capabilities over its
	// network namespace.
	UserNS string
	// Root is the instance's root as storage made it (package storage):
	// for a container the mounts that make its root filesystem, for a
	// virtual machine its own writable root disk. The driver mounts or
	// boots it and never builds a root itself.
	Root Root
	// Mounts are more filesystems for the instance (disk devices: host
	// directories and filesystem volumes). A container bind-mounts each
	// at its Destination; a virtual machine gets each as a 9p share its
	// agent mounts there.
	Mounts []Mount
	// Disks are a virtual machine's extra block devices (block volumes),
	// plugged in this order after the root disk.
	Disks []Disk
	// Displays are a virtual machine's graphical consoles (display
	// devices), each a VNC or SPICE server on loopback. CONTRACT (issues
	// 16/17): the VM-devices helper builds them.
	Displays []Display
	// TPM, when set, is the instance's TPM 2.0 (a tpm device), emulated
	// by swtpm. CONTRACT (issue 16): the VM-devices helper builds it.
	TPM *TPM
	// NICs are the instance's network interfaces. For a container they are
	// already in NetNS and are for information. For a virtual machine the
	// host side (HostName, a tap) exists; the driver plugs a virtio-net
	// device with Hwaddr into it, and the guest agent applies the rest.
	NICs []NIC
	// RestoreState, for a virtual machine, is a state file Checkpoint
	// saved (Checkpointer): the VM starts from it, running the processes
	// it had, instead of booting. The file is left as it is (a snapshot
	// keeps it). The machine's RAM size and vCPU count are the saved
	// ones; its disks, NICs and shares must be those it was saved with
	// (the disks as they were at the save: a snapshot or clone of them
	// taken then).
	RestoreState string
	// SkipAgent, for a VM booted from an image tree, tells the guest
	// agent to run the entrypoint and report its start and end but serve
	// no exec, file or stat request (agent.skip).
	SkipAgent bool
	// Forked says RestoreState was saved by another instance (a live
	// fork, a copy of a stateful snapshot): once the guest runs it is
	// told its new identity, Hostname and each NIC's Hwaddr and
	// addresses (the saved device state has the other instance's MACs),
	// and its random number generator is reseeded.
	Forked bool
	// EgressCA is the egress proxy's CA certificate (PEM) when the
	// instance's traffic goes through the proxy (egress.enabled or a
	// credential), else nil. Before PID 1 runs, the driver makes the
	// guest trust it (GuestCAFile, GuestCABundle, TrustCA): a container's
	// root from the host, a VM's through its agent. Without it an earlier
	// start's block is removed. A VM booted by firmware has no agent of
	// ours and is left alone. It is a certificate only; no key.
	EgressCA []byte
}

// NIC is one network interface of an instance.
type NIC struct {
	// Name is the interface's name inside the instance ("eth0").
	Name string
	// HostName is the host side: the veth peer of a container, the tap of
	// a virtual machine.
	HostName string
	// Hwaddr is the instance side's MAC address ("00:16:3e:..").
	Hwaddr string
	// MTU is the interface's MTU; 0 leaves the default.
	MTU int
	// Addresses are the interface's static addresses with their prefix.
	Addresses []netip.Prefix
	// Gateway4 and Gateway6 are the default routes' next hops; invalid
	// (zero) addresses mean no default route of that family.
	Gateway4, Gateway6 netip.Addr
	// Nameservers and SearchDomain make the instance's resolv.conf.
	Nameservers  []netip.Addr
	SearchDomain string
}

// Root is where an instance's root lives.
type Root struct {
	// Mounts, for a container, make its root filesystem: the first is
	// mounted at the root, any others stacked over it. Storage gives an
	// overlay (a dir pool: the image's tree under the instance's writable
	// layer) or a bind of a directory (a btrfs subvolume).
	Mounts []Mount
	// Disk, for a virtual machine, is its root disk: the instance's own,
	// writable, on its storage pool.
	Disk *Disk
	// Firmware says Disk boots by UEFI with its own boot loader and
	// kernel (a cloud image). False: it holds an ext4 root filesystem that
	// hangar's guest kernel and agent boot (an image's tree).
	Firmware bool
}

// Mount is one filesystem, in the shape of containerd's mount.Mount.
type Mount struct {
	// Type is "overlay" or "bind".
	Type string
	// Source is the host path (bind), or "overlay".
	Source string
	// Options are the filesystem's options: an overlay's
	// lowerdir=, upperdir=, workdir=.
	Options []string
	// Destination is where an extra mount (Spec.Mounts) goes inside the
	// instance, absolute; empty for a root mount.
	Destination string
	// Name is the disk device the mount comes from (a VM's 9p tag, the
	// key a hot detach names).
	Name string
	// ReadOnly mounts it read-only.
	ReadOnly bool
	// Shift, for an unprivileged container, maps ids through an idmapped
	// mount: files the host sees as 0.. are the instance's 0.., so data
	// not shifted for its id map (a host directory, a volume with
	// security.shifted) is shared with the right owners.
	Shift bool
}

// Disk is a disk image file a virtual machine uses.
type Disk struct {
	// Name is the disk device's name ("root" for the root disk).
	Name string
	// Path is the file (or block device) and Format "qcow2" or "raw".
	Path   string
	Format string
	// Bus is how the guest sees it: "virtio-blk" (the default when
	// empty), "virtio-scsi" or "nvme".
	Bus string
	// ReadOnly attaches it read-only.
	ReadOnly bool
	// CDROM attaches it as an optical drive (an ISO image), read-only.
	CDROM bool
	// BootPriority orders bootable disks: higher boots first, as LXD's
	// boot.priority; 0 is not a boot disk unless nothing else is.
	BootPriority int
	// Limits throttle its I/O; zero fields are no limit.
	Limits IOLimits
}

// Display is one graphical console of a VM: its own video output served
// over VNC or SPICE on 127.0.0.1.
type Display struct {
	// Name is the display device's name.
	Name string
	// Protocol is "vnc" or "spice".
	Protocol string
	// Port is the TCP port on 127.0.0.1; 0 lets the driver pick a free
	// one (the instance records it as volatile.NAME.port).
	Port int
	// Password, when set, is required of clients (VNC authentication or
	// SPICE ticket).
	Password string
	// Width and Height are the output's resolution in pixels (0: the
	// device's default); PPI is recorded but QEMU has no setting for it.
	Width, Height, PPI int
}

// TPM is an emulated TPM 2.0: swtpm keeps its state in StateDir (one per
// instance and device, kept across restarts like NVRAM).
type TPM struct {
	Name     string
	StateDir string
	// Path and PathRM, for a container, are where the TPM and its
	// resource manager appear inside (/dev/tpm0, /dev/tpmrm0).
	Path, PathRM string
}

// IOLimits throttle a disk: bytes and operations per second.
type IOLimits struct {
	ReadBps, WriteBps   int64
	ReadIops, WriteIops int64
}

// BlockIOLimit throttles a container's I/O to one host block device
// (major:minor) through the blkio (v1) or io (v2) cgroup controller.
type BlockIOLimit struct {
	Major, Minor int64
	IOLimits
}

// IDMap maps instance uid/gid 0..Size-1 to host HostID..HostID+Size-1.
type IDMap struct {
	HostID uint32
	Size   uint32
}

// Limits are cgroup limits; zero values mean no limit.
type Limits struct {
	CPUCount    int    // CFS quota worth this many CPUs
	CPUSet      string // cpuset pinning, "0-1,3"
	MemoryBytes int64
	// MemoryHotplug is a VM's memory headroom in bytes: the machine
	// boots with MemoryBytes and may grow by this much while it runs
	// (limits.memory.hotplug). 0: none.
	MemoryHotplug int64
	Processes     int64
	// BlockIO throttles a container's reads and writes per host block
	// device (the devices under its root and disk devices); a VM's disks
	// carry their own limits (Disk.Limits).
	BlockIO []BlockIOLimit
	// DiskPriority is limits.disk.priority, 0 (lowest) to 10; -1 leaves
	// the kernel's default weight.
	DiskPriority int
}

// Status is what the runtime says of an instance.
type Status int

// The runtime statuses.
const (
	StatusStopped Status = iota
	StatusRunning
	StatusFrozen
	// StatusError is a runtime that says the instance crashed (a VM whose
	// guest panicked); State.Error says why.
	StatusError
)

func (s Status) String() string {
	switch s {
	case StatusRunning:
		return "Running"
	case StatusFrozen:
		return "Frozen"
	case StatusError:
		return "Error"
	default:
		return "Stopped"
	}
}

// State is the live state of one instance, read from the runtime and cgroups.
type State struct {
	Status      Status
	Pid         int   // host pid of PID 1; 0 when stopped
	Processes   int64 // processes in the instance's cgroup
	MemoryUsage int64 // bytes
	MemoryPeak  int64 // bytes
	CPUUsage    int64 // nanoseconds of CPU time
	// Error says why a StatusError instance crashed.
	Error string
	// WorkloadStarted says the instance's entrypoint runs: a VM's agent
	// reported it started; a running container's PID 1 is its entrypoint.
	WorkloadStarted bool
}

// Exit reports that an instance's PID 1 ended.
type Exit struct {
	ID string
	// Pid is the host pid of the PID 1 that ended, so that a late report
	// about a previous run is never taken for the current one.
	Pid int
	// Code is the exit code, or 128+signal for a process killed by a signal.
	Code int
	// Known is false when the daemon could not read the exit status (it was
	// not the process's parent, e.g. the process started before a daemon
	// restart). Code is then 0 and must not be shown: exit codes are never
	// invented.
	Known bool
	// Error is set when the instance crashed rather than stopped (a VM
	// whose guest panicked, a QEMU that died): the instance's status
	// becomes Error, and this is the reason logged.
	Error string
	// Signal is the signal that killed the workload (0: it exited with
	// Code); OOM says the kernel's OOM killer sent it; NotFound says the
	// command could not be executed at all (Code is then 127, or 126 when
	// it is not executable). Known only.
	Signal   int
	OOM      bool
	NotFound bool
}

// Driver runs instances of one type.
//
// All methods are safe for concurrent use on different IDs; the service never
// calls two of them concurrently for one ID.
type Driver interface {
	// Start runs the instance and returns the host pid of its PID 1. On any
	// failure it leaves nothing behind: no process, mount, cgroup or runtime
	// state.
	Start(ctx context.Context, spec Spec) (pid int, err error)
	// Stop asks PID 1 to exit with the spec's stop signal, waits up to
	// timeout, then kills; force kills at once. It returns once the process
	// is gone and the runtime state, cgroup and rootfs mount are cleaned up.
	// Stopping a stopped instance is not an error.
	Stop(ctx context.Context, id string, signal syscall.Signal, timeout time.Duration, force bool) error
	// UpdateLimits changes a running instance's cgroup limits in place;
	// zero fields remove the limit. A stopped instance is ErrNotRunning.
	UpdateLimits(ctx context.Context, id string, limits Limits) error
	// Freeze and Unfreeze pause and resume every process of the instance.
	Freeze(ctx context.Context, id string) error
	Unfreeze(ctx context.Context, id string) error
	// State reads the live state. An unknown or stopped ID is StatusStopped.
	State(ctx context.Context, id string) (State, error)
	// ConsoleLog returns the instance's console log (PID 1's stdout and
	// stderr), bounded in size; ClearConsoleLog empties it.
	ConsoleLog(ctx context.Context, id string) ([]byte, error)
	ClearConsoleLog(ctx context.Context, id string) error
	// Exec starts a process in a running instance (ErrNotRunning
	// otherwise). It returns once the process runs. A command not found in
	// the instance (in Env's PATH, or at its path) is an
	// errdefs.ErrNotFound error and nothing runs; one that fails to run
	// after all is reported by the process on its stderr and by its exit
	// code (127, 126), as a shell does.
	Exec(ctx context.Context, id string, spec ExecSpec) (Process, error)
	// Delete removes everything the driver keeps for a stopped instance.
	Delete(ctx context.Context, id string) error
	// Recover is called once at daemon start. It returns the live state of
	// every instance the runtime still runs (by ID) and watches them again, so
	// their exits are reported; it cleans up what dead ones left behind.
	Recover(ctx context.Context) (map[string]State, error)
}

// ExecSpec is a process to run in a running instance beside PID 1, with
// PID 1's namespaces, cgroups, capabilities, id map, no_new_privs and
// seccomp filter.
type ExecSpec struct {
	// Args is the command; Args[0] is looked up in Env's PATH inside the
	// instance.
	Args []string
	// Env is the process's whole environment, "KEY=VALUE".
	Env []string
	// Cwd is the working directory inside the instance, absolute; "/" when
	// empty.
	Cwd string
	// CwdOptional makes a missing Cwd fall back to "/" instead of failing:
	// Cwd is then a default (the user's home), not something asked for.
	CwdOptional bool
	// UID and GID run the process (ids inside the instance).
	UID, GID uint32
	// TTY runs the process on a new terminal of the instance's own devpts,
	// as the leader of a new session with that terminal as its controlling
	// terminal. Stdin, Stdout and Stderr are then ignored: Process.TTY is
	// the terminal's master side.
	TTY bool
	// Width and Height are the terminal's initial size (TTY only; 0 leaves
	// the kernel's default).
	Width, Height int
	// Stdin, Stdout and Stderr are the process's standard streams; nil
	// means /dev/null. The driver does not close them: the caller closes
	// its copies once Exec returns.
	Stdin, Stdout, Stderr *os.File
}

// Process is a process Exec started.
type Process interface {
	// Pid is the host pid of the process that Wait waits for.
	Pid() int
	// Wait waits for the process to end and returns its exit code, or
	// 128+signal when a signal killed it. It may be called once.
	Wait() (int, error)
	// Signal sends sig to the command (not to any helper around it).
	Signal(sig syscall.Signal) error
	// Resize sets the terminal's size; an error without a terminal.
	Resize(width, height int) error
	// TTY is the terminal's master side, or nil. The caller reads the
	// process's output from it and writes its input to it, and closes it
	// after Wait.
	TTY() *os.File
}

// ExitHandler receives exits. Drivers call it from a goroutine of their own,
// holding no lock, once per run of an instance, whether the exit was asked
// for (Stop) or not.
type ExitHandler func(Exit)

// Equal says whether two sets of limits are the same.
func (l Limits) Equal(o Limits) bool {
	return l.CPUCount == o.CPUCount && l.CPUSet == o.CPUSet && l.MemoryBytes == o.MemoryBytes && l.MemoryHotplug == o.MemoryHotplug &&
		l.Processes == o.Processes && l.DiskPriority == o.DiskPriority && slices.Equal(l.BlockIO, o.BlockIO)
}

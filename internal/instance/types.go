package instance

import (
	"os"
	"syscall"
	"time"

	"github.com/hangar-dev/hangar/internal/project"
)

// The core's own types: what every edge (LXD REST, the seeds' instances
// API, JSON-RPC, /v/ REST) passes in and gets back. They follow LXD's field
// set, as Incus keeps one shared model, but carry no URLs, no ETags, no
// envelope and no wire tags: each edge renders them in its dialect.

// Type is an instance's kind.
type Type string

// Instance types; the values are LXD's names.
const (
	TypeContainer Type = "container"
	TypeVM        Type = "virtual-machine"
)

// Devices maps a device name to its config.
type Devices = map[string]map[string]string

// Instance is an instance's record and status.
type Instance struct {
	// ID is the instance's CUID2 id: set at create, kept across renames
	// and restarts, new for copies and forks.
	ID string
	// Project holds the instance.
	Project      string
	Name         string
	Type         Type
	Architecture string
	Description  string
	// Config and Devices are the instance's own; Expanded* are them
	// layered over its profiles, in order. Never nil.
	Config          map[string]string
	Devices         Devices
	ExpandedConfig  map[string]string
	ExpandedDevices Devices
	Profiles        []string
	Ephemeral       bool
	Stateful        bool
	Status          Status
	CreatedAt       time.Time
	LastUsedAt      time.Time
	// StartedAt and StoppedAt are the last start and stop; zero: never.
	StartedAt, StoppedAt time.Time
	// ExitCode is the workload's last exit code, nil while it never
	// ended; ExitMessage says how it ended ("exited with code 3",
	// "killed by signal 9 (SIGKILL) - OOM").
	ExitCode    *int
	ExitMessage string
}

// Full is an instance with its live state.
type Full struct {
	Instance
	State State
}

// State is an instance's live state, read from its runtime.
type State struct {
	Status    Status
	Pid       int
	Processes int64
	// CPUUsage is CPU time used, in nanoseconds.
	CPUUsage int64
	// MemoryUsage and MemoryPeak are bytes.
	MemoryUsage, MemoryPeak int64
	// Network is the instance's interfaces by name, as seen inside it;
	// empty when it is not running or the runtime cannot tell.
	Network map[string]NetworkState
	// Disk is the usage of the instance's disks by device name (its root
	// disk), where storage measures it cheaply; empty otherwise.
	Disk map[string]DiskState
	// WorkloadStarted: a VM's agent reported its entrypoint started (a
	// container: true while it runs).
	WorkloadStarted bool
}

// DiskState is one disk's usage in bytes; Total is 0 with no limit.
type DiskState struct {
	Usage, Total int64
}

// NetworkState is one interface inside an instance.
type NetworkState struct {
	Addresses []NetworkAddress
	Counters  NetworkCounters
	Hwaddr    string
	HostName  string // the host side of a veth pair, "" for others
	MTU       int
	State     string // "up" or "down"
	Type      string // "loopback", "broadcast", "point-to-point"
}

// NetworkAddress is one address of an interface.
type NetworkAddress struct {
	Family  string // "inet" or "inet6"
	Address string
	Netmask string // prefix length
	Scope   string // "local", "link" or "global"
}

// NetworkCounters are an interface's traffic counters since it came up.
type NetworkCounters struct {
	BytesReceived, BytesSent                      int64
	PacketsReceived, PacketsSent                  int64
	ErrorsReceived, ErrorsSent                    int64
	PacketsDroppedInbound, PacketsDroppedOutbound int64
}

// Put is the part of an instance a client replaces wholesale.
type Put struct {
	Architecture string // must be the instance's when set
	Config       map[string]string
	Devices      Devices
	Ephemeral    bool
	Profiles     []string
	Stateful     bool
	Description  string
	// Restore names a snapshot to restore (with Stateful: its saved
	// state too); the other fields are then ignored, as in LXD.
	Restore string
}

// Patch merges into an instance: nil fields are left as they are; Config
// and Devices are merged key by key.
type Patch struct {
	Architecture *string
	Config       map[string]string
	Devices      Devices
	Ephemeral    *bool
	Profiles     *[]string
	Description  *string
}

// Precondition is checked against the instance as it is, under the
// instance's record lock, before an update changes it; an error (the
// LXD edge returns errdefs.PreconditionFailed on an ETag mismatch) leaves
// the instance unchanged. This is how an edge makes its optimistic
// concurrency check atomic with the change without the core knowing the
// edge's ETags. nil means no precondition.
type Precondition func(current Instance) error

// Source types of a create.
const (
	SourceImage     = "image"
	SourceNone      = "none"
	SourceCopy      = "copy"
	SourceMigration = "migration"
)

// Source says where a new instance's root comes from.
type Source struct {
	Type        string // SourceImage, SourceNone ("" is none)
	Alias       string
	Fingerprint string
	// Server and Protocol name a remote image server (protocol "oci": a
	// registry); both empty for the local image store.
	Server, Protocol string
	// Instance is a copy's source: "NAME" or "NAME/SNAPSHOT".
	Instance string
	// InstanceOnly copies the instance without its snapshots.
	InstanceOnly bool
}

// CreateRequest is a new instance.
type CreateRequest struct {
	Name         string // "" picks a free random name
	Type         Type   // "" is a container
	Architecture string
	Description  string
	Config       map[string]string
	Devices      Devices
	Profiles     []string // nil means ["default"]
	Ephemeral    bool
	Start        bool
	// Preset is a cloud instance type preset (LXD's instance_type):
	// refused, as presets are not supported.
	Preset string
	Source Source
	// Secrets are the real values of the instance's credentials
	// (credentials.NAME keys), by their source.env name. They are never
	// written to the instance's config nor returned by any API: the
	// egress path keeps them in a store table of their own.
	Secrets map[string]string
}

// Profile is a named set of config and devices that instances layer under
// their own.
type Profile struct {
	// Project holds the profile.
	Project     string
	Name        string
	Description string
	Config      map[string]string
	Devices     Devices
	// UsedBy names the instances that use the profile, sorted.
	UsedBy []Ref
}

// ProfilePut is the part of a profile a client replaces.
type ProfilePut struct {
	Description string
	Config      map[string]string
	Devices     Devices
}

// ProfilePrecondition is a Precondition for profiles.
type ProfilePrecondition func(current Profile) error

// Process is a command started by Exec.
type Process interface {
	// Pid is the host pid of the process that Wait waits for.
	Pid() int
	// Wait waits for the command to end and returns its exit code, or
	// 128+signal when a signal killed it. It may be called once.
	Wait() (int, error)
	// Signal sends sig to the command.
	Signal(sig syscall.Signal) error
	// Resize sets the terminal's size; an error without a terminal.
	Resize(width, height int) error
	// TTY is the terminal's master side, or nil; the caller closes it
	// after Wait.
	TTY() *os.File
}

// Ref names an instance: names are unique per project.
type Ref struct {
	Project string
	Name    string
}

// RefNames names instances as Ref.String does.
func RefNames(refs []Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.String()
	}
	return out
}

// String is the name, qualified by its project outside the default one.
func (r Ref) String() string {
	if r.Project == "" || r.Project == project.Default {
		return r.Name
	}
	return r.Project + "/" + r.Name
}

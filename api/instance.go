package api

import "time"

// Instance types.
const (
	InstanceTypeContainer = "container"
	InstanceTypeVM        = "virtual-machine"
)

// InstancePut holds the fields a client may replace with PUT.
type InstancePut struct {
	Architecture string                       `json:"architecture" yaml:"architecture"`
	Config       map[string]string            `json:"config" yaml:"config"`
	Devices      map[string]map[string]string `json:"devices" yaml:"devices"`
	Ephemeral    bool                         `json:"ephemeral" yaml:"ephemeral"`
	Profiles     []string                     `json:"profiles" yaml:"profiles"`
	Restore      string                       `json:"restore,omitempty" yaml:"restore,omitempty"`
	Stateful     bool                         `json:"stateful" yaml:"stateful"`
	Description  string                       `json:"description" yaml:"description"`
}

// Instance is /1.0/instances/{name} at recursion 0 and 1.
type Instance struct {
	InstancePut     `yaml:",inline"`
	CreatedAt       time.Time                    `json:"created_at" yaml:"created_at"`
	ExpandedConfig  map[string]string            `json:"expanded_config" yaml:"expanded_config"`
	ExpandedDevices map[string]map[string]string `json:"expanded_devices" yaml:"expanded_devices"`
	Name            string                       `json:"name" yaml:"name"`
	Status          string                       `json:"status" yaml:"status"`
	StatusCode      StatusCode                   `json:"status_code" yaml:"status_code"`
	LastUsedAt      time.Time                    `json:"last_used_at" yaml:"last_used_at"`
	Location        string                       `json:"location" yaml:"location"`
	Type            string                       `json:"type" yaml:"type"`
	Project         string                       `json:"project" yaml:"project"`
}

// InstanceFull is an instance at recursion 2: with its state.
type InstanceFull struct {
	Instance  `yaml:",inline"`
	State     *InstanceState     `json:"state" yaml:"state"`
	Snapshots []InstanceSnapshot `json:"snapshots" yaml:"snapshots"`
	Backups   []any              `json:"backups" yaml:"backups"`
}

// InstanceSource says where a new instance's root filesystem comes from.
type InstanceSource struct {
	Type        string            `json:"type" yaml:"type"`
	Alias       string            `json:"alias,omitempty" yaml:"alias,omitempty"`
	Fingerprint string            `json:"fingerprint,omitempty" yaml:"fingerprint,omitempty"`
	Properties  map[string]string `json:"properties,omitempty" yaml:"properties,omitempty"`
	Server      string            `json:"server,omitempty" yaml:"server,omitempty"`
	Protocol    string            `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	Secret      string            `json:"secret,omitempty" yaml:"secret,omitempty"`
	Certificate string            `json:"certificate,omitempty" yaml:"certificate,omitempty"`
	Mode        string            `json:"mode,omitempty" yaml:"mode,omitempty"`
	Source      string            `json:"source,omitempty" yaml:"source,omitempty"`
	Project     string            `json:"project,omitempty" yaml:"project,omitempty"`
	// A copy's options (source type "copy").
	InstanceOnly bool   `json:"instance_only,omitempty" yaml:"instance_only,omitempty"`
	Live         bool   `json:"live,omitempty" yaml:"live,omitempty"`
	Refresh      bool   `json:"refresh,omitempty" yaml:"refresh,omitempty"`
	BaseImage    string `json:"base-image,omitempty" yaml:"base-image,omitempty"`
}

// InstancesPost is the body of POST /1.0/instances.
type InstancesPost struct {
	InstancePut  `yaml:",inline"`
	Name         string         `json:"name" yaml:"name"`
	Source       InstanceSource `json:"source" yaml:"source"`
	InstanceType string         `json:"instance_type" yaml:"instance_type"`
	Type         string         `json:"type" yaml:"type"`
	Start        bool           `json:"start" yaml:"start"`
}

// InstanceForkPost is the body of POST /1.0/instances/{name}/fork
// (extension hangar_fork).
type InstanceForkPost struct {
	Name string `json:"name" yaml:"name"`
}

// InstanceFork is a finished fork operation's metadata: processes says
// whether the fork runs the source's processes (a VM) or booted afresh (a
// container); pause_ms is how long the source was paused.
type InstanceFork struct {
	Name      string  `json:"name" yaml:"name"`
	Processes bool    `json:"processes" yaml:"processes"`
	PauseMS   float64 `json:"pause_ms" yaml:"pause_ms"`
}

// InstancePost is the body of POST /1.0/instances/{name}: a rename here.
type InstancePost struct {
	Name      string `json:"name" yaml:"name"`
	Migration bool   `json:"migration" yaml:"migration"`
	Live      bool   `json:"live" yaml:"live"`
}

// State actions of PUT /1.0/instances/{name}/state.
const (
	ActionStart    = "start"
	ActionStop     = "stop"
	ActionRestart  = "restart"
	ActionFreeze   = "freeze"
	ActionUnfreeze = "unfreeze"
)

// InstanceStatePut is the body of PUT /1.0/instances/{name}/state.
type InstanceStatePut struct {
	Action   string `json:"action" yaml:"action"`
	Timeout  int    `json:"timeout" yaml:"timeout"`
	Force    bool   `json:"force" yaml:"force"`
	Stateful bool   `json:"stateful" yaml:"stateful"`
}

// InstanceState is GET /1.0/instances/{name}/state.
type InstanceState struct {
	Status     string                          `json:"status" yaml:"status"`
	StatusCode StatusCode                      `json:"status_code" yaml:"status_code"`
	Disk       map[string]InstanceStateDisk    `json:"disk" yaml:"disk"`
	Memory     InstanceStateMemory             `json:"memory" yaml:"memory"`
	Network    map[string]InstanceStateNetwork `json:"network" yaml:"network"`
	Pid        int64                           `json:"pid" yaml:"pid"`
	Processes  int64                           `json:"processes" yaml:"processes"`
	CPU        InstanceStateCPU                `json:"cpu" yaml:"cpu"`
}

// InstanceStateDisk is one disk's usage.
type InstanceStateDisk struct {
	Usage int64 `json:"usage" yaml:"usage"`
	Total int64 `json:"total" yaml:"total"`
}

// InstanceStateCPU is the CPU time used, in nanoseconds.
type InstanceStateCPU struct {
	Usage int64 `json:"usage" yaml:"usage"`
}

// InstanceStateMemory is memory use in bytes.
type InstanceStateMemory struct {
	Usage         int64 `json:"usage" yaml:"usage"`
	UsagePeak     int64 `json:"usage_peak" yaml:"usage_peak"`
	Total         int64 `json:"total" yaml:"total"`
	SwapUsage     int64 `json:"swap_usage" yaml:"swap_usage"`
	SwapUsagePeak int64 `json:"swap_usage_peak" yaml:"swap_usage_peak"`
}

// InstanceStateNetwork is one interface as seen inside the instance.
type InstanceStateNetwork struct {
	Addresses []InstanceStateNetworkAddress `json:"addresses" yaml:"addresses"`
	Counters  InstanceStateNetworkCounters  `json:"counters" yaml:"counters"`
	Hwaddr    string                        `json:"hwaddr" yaml:"hwaddr"`
	HostName  string                        `json:"host_name" yaml:"host_name"`
	Mtu       int                           `json:"mtu" yaml:"mtu"`
	State     string                        `json:"state" yaml:"state"`
	Type      string                        `json:"type" yaml:"type"`
}

// InstanceStateNetworkAddress is one address of an interface.
type InstanceStateNetworkAddress struct {
	Family  string `json:"family" yaml:"family"`
	Address string `json:"address" yaml:"address"`
	Netmask string `json:"netmask" yaml:"netmask"`
	Scope   string `json:"scope" yaml:"scope"`
}

// InstanceStateNetworkCounters are an interface's traffic counters.
type InstanceStateNetworkCounters struct {
	BytesReceived   int64 `json:"bytes_received" yaml:"bytes_received"`
	BytesSent       int64 `json:"bytes_sent" yaml:"bytes_sent"`
	PacketsReceived int64 `json:"packets_received" yaml:"packets_received"`
	PacketsSent     int64 `json:"packets_sent" yaml:"packets_sent"`
	// LXD's network_counters_errors_dropped extension.
	ErrorsReceived         int64 `json:"errors_received" yaml:"errors_received"`
	ErrorsSent             int64 `json:"errors_sent" yaml:"errors_sent"`
	PacketsDroppedOutbound int64 `json:"packets_dropped_outbound" yaml:"packets_dropped_outbound"`
	PacketsDroppedInbound  int64 `json:"packets_dropped_inbound" yaml:"packets_dropped_inbound"`
}

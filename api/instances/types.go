// Package instances holds the wire types of the instances API of seed 002
// (hypeman's instance service): the JSON hangard's edge
// (internal/api/instances) answers and the in-tree client
// (client/instances) sends. Written from the seed's types with its exact
// JSON names; a field the seed marks nullable is a pointer, rendered as
// null (never omitted) when unset. Request fields that are optional are
// pointers or omitempty, so the edge can tell "absent" from "zero" and
// refuse a zero it does not accept (vcpus: 0).
package instances

import "time"

// State is an instance's state as the seed names it.
type State string

// States.
const (
	StateCreated      State = "Created"      // the VMM exists, the guest has not started
	StateInitializing State = "Initializing" // the guest runs; its program has not started
	StateRunning      State = "Running"      // the guest's program has started
	StatePaused       State = "Paused"       // the VM is paused
	StateShutdown     State = "Shutdown"     // the guest is shutting down, the VMM still exists
	StateStopped      State = "Stopped"      // no VMM, no saved state
	StateStandby      State = "Standby"      // no VMM, saved state to restore from
	StateUnknown      State = "Unknown"      // see state_error
)

// States lists every state, in the seed's order.
var States = []State{StateCreated, StateInitializing, StateRunning, StatePaused, StateShutdown, StateStopped, StateStandby, StateUnknown}

// Hypervisor names a VMM.
type Hypervisor string

// Hypervisors the seed names.
const (
	HypervisorCloudHypervisor Hypervisor = "cloud-hypervisor"
	HypervisorFirecracker     Hypervisor = "firecracker"
	HypervisorQEMU            Hypervisor = "qemu"
	HypervisorVZ              Hypervisor = "vz"
)

// Instance is an instance as the API shows it.
type Instance struct {
	ID             string            `json:"id"`
	CreatedAt      time.Time         `json:"created_at"`
	Image          string            `json:"image"`
	Name           string            `json:"name"`
	State          State             `json:"state"`
	AutoStandby    AutoStandbyPolicy `json:"auto_standby"`
	DiskIoBps      string            `json:"disk_io_bps"`
	Env            map[string]string `json:"env"`
	ExitCode       *int64            `json:"exit_code"`
	ExitMessage    string            `json:"exit_message"`
	GPU            InstanceGPU       `json:"gpu"`
	HasSnapshot    bool              `json:"has_snapshot"`
	HotplugSize    string            `json:"hotplug_size"`
	Hypervisor     Hypervisor        `json:"hypervisor"`
	Network        InstanceNetwork   `json:"network"`
	OverlaySize    string            `json:"overlay_size"`
	Size           string            `json:"size"`
	SnapshotPolicy SnapshotPolicy    `json:"snapshot_policy"`
	StartedAt      *time.Time        `json:"started_at"`
	StateError     *string           `json:"state_error"`
	StoppedAt      *time.Time        `json:"stopped_at"`
	Tags           map[string]string `json:"tags"`
	Vcpus          int64             `json:"vcpus"`
	Volumes        []VolumeMount     `json:"volumes"`
}

// AutoStandbyPolicy is when an idle instance goes to standby by itself:
// after IdleTimeout without qualifying inbound TCP connections, counted
// from the host's conntrack table.
type AutoStandbyPolicy struct {
	Enabled                bool     `json:"enabled"`
	IdleTimeout            string   `json:"idle_timeout"`
	IgnoreDestinationPorts []int64  `json:"ignore_destination_ports"`
	IgnoreSourceCidrs      []string `json:"ignore_source_cidrs"`
}

// AutoStandbyPolicyParams is the policy in a create request.
type AutoStandbyPolicyParams struct {
	Enabled                *bool    `json:"enabled,omitempty"`
	IdleTimeout            *string  `json:"idle_timeout,omitempty"`
	IgnoreDestinationPorts []int64  `json:"ignore_destination_ports,omitempty"`
	IgnoreSourceCidrs      []string `json:"ignore_source_cidrs,omitempty"`
}

// AutoStandbyReason says why an instance is or is not eligible.
type AutoStandbyReason string

// Reasons.
const (
	ReasonUnsupportedPlatform      AutoStandbyReason = "unsupported_platform"
	ReasonPolicyMissing            AutoStandbyReason = "policy_missing"
	ReasonPolicyDisabled           AutoStandbyReason = "policy_disabled"
	ReasonInstanceNotRunning       AutoStandbyReason = "instance_not_running"
	ReasonNetworkDisabled          AutoStandbyReason = "network_disabled"
	ReasonMissingIP                AutoStandbyReason = "missing_ip"
	ReasonHasVgpu                  AutoStandbyReason = "has_vgpu"
	ReasonActiveInboundConnections AutoStandbyReason = "active_inbound_connections"
	ReasonIdleTimeoutNotElapsed    AutoStandbyReason = "idle_timeout_not_elapsed"
	ReasonObserverError            AutoStandbyReason = "observer_error"
	ReasonReadyForStandby          AutoStandbyReason = "ready_for_standby"
)

// AutoStandbyStatusValue is the controller's view of an instance.
type AutoStandbyStatusValue string

// Statuses.
const (
	AutoStandbyUnsupported      AutoStandbyStatusValue = "unsupported"
	AutoStandbyDisabled         AutoStandbyStatusValue = "disabled"
	AutoStandbyIneligible       AutoStandbyStatusValue = "ineligible"
	AutoStandbyActive           AutoStandbyStatusValue = "active"
	AutoStandbyIdleCountdown    AutoStandbyStatusValue = "idle_countdown"
	AutoStandbyReadyForStandby  AutoStandbyStatusValue = "ready_for_standby"
	AutoStandbyStandbyRequested AutoStandbyStatusValue = "standby_requested"
	AutoStandbyError            AutoStandbyStatusValue = "error"
)

// AutoStandbyStatus is GET /instances/{id}/auto-standby/status.
type AutoStandbyStatus struct {
	ActiveInboundConnections int64                  `json:"active_inbound_connections"`
	Configured               bool                   `json:"configured"`
	Eligible                 bool                   `json:"eligible"`
	Enabled                  bool                   `json:"enabled"`
	Reason                   AutoStandbyReason      `json:"reason"`
	Status                   AutoStandbyStatusValue `json:"status"`
	Supported                bool                   `json:"supported"`
	TrackingMode             string                 `json:"tracking_mode"`
	CountdownRemaining       *string                `json:"countdown_remaining"`
	IdleSince                *time.Time             `json:"idle_since"`
	IdleTimeout              *string                `json:"idle_timeout"`
	LastInboundActivityAt    *time.Time             `json:"last_inbound_activity_at"`
	NextStandbyAt            *time.Time             `json:"next_standby_at"`
}

// InstanceGPU is the GPU attached to an instance (none on this host).
type InstanceGPU struct {
	MdevUUID string `json:"mdev_uuid"`
	Profile  string `json:"profile"`
}

// InstanceNetwork is an instance's network.
type InstanceNetwork struct {
	BandwidthDownload string  `json:"bandwidth_download"`
	BandwidthUpload   string  `json:"bandwidth_upload"`
	Enabled           bool    `json:"enabled"`
	IP                *string `json:"ip"`
	Mac               *string `json:"mac"`
	Name              string  `json:"name"`
}

// InstanceStats is GET /instances/{id}/stats.
type InstanceStats struct {
	AllocatedMemoryBytes   int64    `json:"allocated_memory_bytes"`
	AllocatedVcpus         int64    `json:"allocated_vcpus"`
	CPUSeconds             float64  `json:"cpu_seconds"`
	InstanceID             string   `json:"instance_id"`
	InstanceName           string   `json:"instance_name"`
	MemoryRssBytes         int64    `json:"memory_rss_bytes"`
	MemoryVmsBytes         int64    `json:"memory_vms_bytes"`
	NetworkRxBytes         int64    `json:"network_rx_bytes"`
	NetworkTxBytes         int64    `json:"network_tx_bytes"`
	MemoryUtilizationRatio *float64 `json:"memory_utilization_ratio"`
}

// PathInfo is GET /instances/{id}/stat.
type PathInfo struct {
	Exists     bool    `json:"exists"`
	Error      *string `json:"error"`
	IsDir      bool    `json:"is_dir"`
	IsFile     bool    `json:"is_file"`
	IsSymlink  bool    `json:"is_symlink"`
	LinkTarget *string `json:"link_target"`
	Mode       int64   `json:"mode"`
	Size       int64   `json:"size"`
}

// SnapshotPolicy is an instance's snapshot and standby compression.
type SnapshotPolicy struct {
	Compression SnapshotCompressionConfig `json:"compression"`
}

// SnapshotPolicyParams is the policy in a create request.
type SnapshotPolicyParams struct {
	Compression *SnapshotCompressionConfigParams `json:"compression,omitempty"`
}

// Compression algorithms.
const (
	CompressionZstd = "zstd"
	CompressionLz4  = "lz4"
)

// SnapshotCompressionConfig is how saved memory is compressed.
type SnapshotCompressionConfig struct {
	Enabled   bool   `json:"enabled"`
	Algorithm string `json:"algorithm"`
	Level     int64  `json:"level"`
}

// SnapshotCompressionConfigParams is a compression setting in a request:
// enabled is required; algorithm defaults to zstd, level to the
// algorithm's (zstd 1, lz4 0).
type SnapshotCompressionConfigParams struct {
	Enabled   *bool  `json:"enabled"`
	Algorithm string `json:"algorithm,omitempty"`
	Level     *int64 `json:"level,omitempty"`
}

// SnapshotSchedule is GET/PUT /instances/{id}/snapshot-schedule.
type SnapshotSchedule struct {
	CreatedAt      time.Time                 `json:"created_at"`
	InstanceID     string                    `json:"instance_id"`
	Interval       string                    `json:"interval"`
	NextRunAt      time.Time                 `json:"next_run_at"`
	Retention      SnapshotScheduleRetention `json:"retention"`
	UpdatedAt      time.Time                 `json:"updated_at"`
	LastError      *string                   `json:"last_error"`
	LastRunAt      *time.Time                `json:"last_run_at"`
	LastSnapshotID *string                   `json:"last_snapshot_id"`
	Metadata       map[string]string         `json:"metadata"`
	NamePrefix     *string                   `json:"name_prefix"`
}

// SnapshotScheduleRetention is which scheduled snapshots are kept.
type SnapshotScheduleRetention struct {
	MaxAge   string `json:"max_age"`
	MaxCount int64  `json:"max_count"`
}

// SnapshotScheduleRetentionParams is the retention in a request: at
// least one of the two.
type SnapshotScheduleRetentionParams struct {
	MaxAge   *string `json:"max_age,omitempty"`
	MaxCount *int64  `json:"max_count,omitempty"`
}

// SetSnapshotScheduleRequest is PUT /instances/{id}/snapshot-schedule.
type SetSnapshotScheduleRequest struct {
	Interval   string                           `json:"interval"`
	Retention  *SnapshotScheduleRetentionParams `json:"retention"`
	NamePrefix *string                          `json:"name_prefix,omitempty"`
	Metadata   map[string]string                `json:"metadata,omitempty"`
}

// VolumeMount is a volume attached to an instance.
type VolumeMount struct {
	MountPath   string `json:"mount_path"`
	VolumeID    string `json:"volume_id"`
	Overlay     bool   `json:"overlay"`
	OverlaySize string `json:"overlay_size"`
	Readonly    bool   `json:"readonly"`
}

// VolumeMountParams is a volume in a create request.
type VolumeMountParams struct {
	MountPath   string  `json:"mount_path"`
	VolumeID    string  `json:"volume_id"`
	Overlay     *bool   `json:"overlay,omitempty"`
	OverlaySize *string `json:"overlay_size,omitempty"`
	Readonly    *bool   `json:"readonly,omitempty"`
}

// WaitForStateResponse is GET /instances/{id}/wait.
type WaitForStateResponse struct {
	State      State   `json:"state"`
	TimedOut   bool    `json:"timed_out"`
	StateError *string `json:"state_error"`
}

// InstanceNewParams is POST /instances: create and start an instance.
type InstanceNewParams struct {
	Image             string                        `json:"image"`
	Name              string                        `json:"name"`
	DiskIoBps         *string                       `json:"disk_io_bps,omitempty"`
	HotplugSize       *string                       `json:"hotplug_size,omitempty"`
	OverlaySize       *string                       `json:"overlay_size,omitempty"`
	Size              *string                       `json:"size,omitempty"`
	SkipGuestAgent    *bool                         `json:"skip_guest_agent,omitempty"`
	SkipKernelHeaders *bool                         `json:"skip_kernel_headers,omitempty"`
	Vcpus             *int64                        `json:"vcpus,omitempty"`
	AutoStandby       *AutoStandbyPolicyParams      `json:"auto_standby,omitempty"`
	Cmd               []string                      `json:"cmd,omitempty"`
	Credentials       map[string]InstanceCredential `json:"credentials,omitempty"`
	Devices           []string                      `json:"devices,omitempty"`
	Entrypoint        []string                      `json:"entrypoint,omitempty"`
	Env               map[string]string             `json:"env,omitempty"`
	GPU               *InstanceNewParamsGPU         `json:"gpu,omitempty"`
	Hypervisor        Hypervisor                    `json:"hypervisor,omitempty"`
	Network           *InstanceNewParamsNetwork     `json:"network,omitempty"`
	SnapshotPolicy    *SnapshotPolicyParams         `json:"snapshot_policy,omitempty"`
	Tags              map[string]string             `json:"tags,omitempty"`
	Volumes           []VolumeMountParams           `json:"volumes,omitempty"`
}

// InstanceCredential brokers one secret: the guest's env var (the map
// key) holds a placeholder; the real value (request env[Source.Env])
// stays on the host and is written into outbound requests by Inject.
type InstanceCredential struct {
	Inject []CredentialInject `json:"inject"`
	Source CredentialSource   `json:"source"`
}

// CredentialInject is where and how the real value goes out.
type CredentialInject struct {
	As CredentialInjectAs `json:"as"`
	// Hosts are destination host patterns ("api.example.com",
	// "*.example.com"); none: every host.
	Hosts []string `json:"hosts,omitempty"`
}

// CredentialInjectAs is a header template; Format contains ${value}.
type CredentialInjectAs struct {
	Format string `json:"format"`
	Header string `json:"header"`
}

// CredentialSource names the real value in the request's env.
type CredentialSource struct {
	Env string `json:"env"`
}

// InstanceNewParamsGPU asks for a vGPU profile.
type InstanceNewParamsGPU struct {
	Profile *string `json:"profile,omitempty"`
}

// InstanceNewParamsNetwork is the network of a new instance.
type InstanceNewParamsNetwork struct {
	BandwidthDownload *string                         `json:"bandwidth_download,omitempty"`
	BandwidthUpload   *string                         `json:"bandwidth_upload,omitempty"`
	Enabled           *bool                           `json:"enabled,omitempty"`
	Egress            *InstanceNewParamsNetworkEgress `json:"egress,omitempty"`
}

// InstanceNewParamsNetworkEgress is the mediated egress policy.
type InstanceNewParamsNetworkEgress struct {
	Enabled     *bool                         `json:"enabled,omitempty"`
	Enforcement *InstanceNewParamsEnforcement `json:"enforcement,omitempty"`
}

// Egress enforcement modes.
const (
	EgressModeAll           = "all"
	EgressModeHTTPHTTPSOnly = "http_https_only"
)

// InstanceNewParamsEnforcement is what direct egress is refused.
type InstanceNewParamsEnforcement struct {
	Mode string `json:"mode,omitempty"`
}

// InstanceUpdateParams is PATCH /instances/{id}: new real values for
// credentials' source.env keys.
type InstanceUpdateParams struct {
	Env map[string]string `json:"env,omitempty"`
}

// InstanceForkParams is POST /instances/{id}/fork.
type InstanceForkParams struct {
	Name        string `json:"name"`
	FromRunning *bool  `json:"from_running,omitempty"`
	// TargetState is Stopped, Standby or Running; "" is the source's.
	TargetState State `json:"target_state,omitempty"`
}

// InstanceStandbyParams is POST /instances/{id}/standby.
type InstanceStandbyParams struct {
	Compression *SnapshotCompressionConfigParams `json:"compression,omitempty"`
}

// InstanceStartParams is POST /instances/{id}/start: overrides for this
// run and later ones (omitted: keep the previous).
type InstanceStartParams struct {
	Cmd        []string `json:"cmd,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
}

// Log sources of GET /instances/{id}/logs.
const (
	LogSourceApp     = "app"
	LogSourceVMM     = "vmm"
	LogSourceHypeman = "hypeman"
)

// Snapshot kinds.
const (
	SnapshotKindStandby = "Standby" // with the memory state
	SnapshotKindStopped = "Stopped" // the disks only
)

// Snapshot is one snapshot of an instance.
type Snapshot struct {
	ID                 string            `json:"id"`
	CreatedAt          time.Time         `json:"created_at"`
	Kind               string            `json:"kind"`
	SizeBytes          int64             `json:"size_bytes"`
	SourceHypervisor   Hypervisor        `json:"source_hypervisor"`
	SourceInstanceID   string            `json:"source_instance_id"`
	SourceInstanceName string            `json:"source_instance_name"`
	Name               *string           `json:"name"`
	Tags               map[string]string `json:"tags"`
}

// InstanceSnapshotNewParams is POST /instances/{id}/snapshots.
type InstanceSnapshotNewParams struct {
	Kind        string                           `json:"kind"`
	Name        *string                          `json:"name,omitempty"`
	Compression *SnapshotCompressionConfigParams `json:"compression,omitempty"`
	Tags        map[string]string                `json:"tags,omitempty"`
}

// InstanceSnapshotRestoreParams is POST
// /instances/{id}/snapshots/{snapshotId}/restore.
type InstanceSnapshotRestoreParams struct {
	TargetHypervisor Hypervisor `json:"target_hypervisor,omitempty"`
	TargetState      State      `json:"target_state,omitempty"`
}

// InstanceVolumeAttachParams is POST /instances/{id}/volumes/{volumeId}.
type InstanceVolumeAttachParams struct {
	MountPath string `json:"mount_path"`
	Readonly  *bool  `json:"readonly,omitempty"`
}

// Error codes.
const (
	CodeBadRequest     = "bad_request"
	CodeUnauthorized   = "unauthorized"
	CodeForbidden      = "forbidden"
	CodeNotFound       = "not_found"
	CodeConflict       = "conflict"
	CodeNotImplemented = "not_implemented"
	CodeInternal       = "internal_error"
)

// Error is every error answer's body.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

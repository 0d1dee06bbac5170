package api

import (
	"encoding/json"
	"time"
)

// Extensions lists the API extensions hangard implements: LXD's names for
// what it shares with LXD, "hangar_" names for its own additions.
var Extensions = append(append([]string{
	"instances",
	"api_filtering",
	"container_full",
	"container_backup",
	"instance_type",
	"etag",
	"patch",
	"operation_wait",
	"image_aliases",
	"profiles",
	"container_stop_priority",
	"container_exec_recording",
	"container_exec_signal_handling",
	"container_exec_user_group_cwd",
	"console",
	"file_delete",
	"file_append",
	"file_symlinks",
	"directory_manipulation",
	"hangar_event_sequence",   // events carry "sequence"; GET /1.0/events?since=N replays
	"hangar_operation_retain", // finished operations stay queryable for 10 minutes
	"hangar_oci_images",       // images from OCI registries and archives; oci.* instance keys
	// The server key images.max_unpacked_size caps what an image expands to.
	"hangar_images_max_unpacked_size",
	// POST /1.0/instances/NAME/fork: a running VM's live fork (its
	// processes carry over), a container's fork from a frozen clone.
	"hangar_fork",
	// Snapshots and copies (LXD's names for what lxc checks).
	"snapshot_expiry",
	"snapshot_expiry_creation",
	"snapshot_schedule_aliases",
	"container_copy_project",
	// Backups: export and import (lxc export, lxc import --storage NAME).
	"backup_compression",
	"backup_compression_algorithm",
	"container_backup_override_pool",
	"backup_override_name",
	// Projects (/1.0/projects, ?project= everywhere) with LXD 5.0's
	// limits, restrictions and usage state, and hangar's nesting: a
	// project's parent, whose limits count its children's usage.
	"projects",
	"projects_limits",
	"projects_restrictions",
	"projects_limits_disk",
	"projects_networks",
	"projects_limits_instances",
	"project_usage",
	"projects_restricted_backups_and_snapshots",
	"hangar_project_nesting",
	// Groups of identities holding entitlements (/1.0/auth/groups).
	"access_management",
	// Bearer API tokens (/1.0/auth/tokens, Authorization: Bearer).
	"hangar_api_tokens",
	// Local users with passwords (/1.0/users), for the dialects' logins;
	// auth groups name them as identities of method "user".
	"hangar_users",
	// The /v/ API of seed 003 (/v/ and /u/auth over HTTPS, /velocity/ on
	// the socket), the server key velocity.host_nics and the project
	// entitlements can_view_instances and can_operate_instances, which
	// apply to nested projects too.
	"hangar_velocity",
	// ISO custom volumes (content type iso): imported with a raw POST to
	// /1.0/storage-pools/POOL/volumes/custom (X-LXD-type: iso), attached
	// to VMs as read-only CD-ROMs.
	"custom_volume_iso",
	// The remote API: /1.0/certificates with PUT/PATCH, restricted
	// certificates, trust tokens and their expiry (core.remote_token_expiry).
	"certificate_update",
	"certificate_project",
	"certificate_token",
	"remote_token_expiry",
	// GET /1.0/metrics: Prometheus series with LXD's names.
	"metrics",
	// The instances API of seed 002 (OCI images as VMs) beside this one:
	// /instances-api/ on the socket, hangard --instances-api over TCP.
	"hangar_instances_api",
	// The NAS middleware's virt.instance.* JSON-RPC API of seeds 000/001
	// at /api/current (websocket), on the socket and over HTTPS.
	"hangar_virt_api",
}, NetworkExtensions...), StorageExtensions...)

// NetworkExtensions are the extensions of the network API, which a daemon
// serves only with a network manager: the names lxc checks before it asks
// for networks (network), their leases and state, and forwards; managed
// networks attached by name (instance_nic_network, which `lxc network
// attach` checks) and macvlan networks.
var NetworkExtensions = []string{
	"network",
	"network_leases",
	"network_state",
	"network_state_bond_bridge",
	"network_forward",
	"network_type_macvlan",
	"instance_nic_network",
}

// StorageExtensions are the extensions of the storage API, which a daemon
// serves only with a storage manager: pools and volumes (storage), a pool's
// space (resources, which lxc checks for `lxc storage info`; hangard serves
// no /1.0/resources), renaming custom volumes, block volumes, shifted
// volumes, volume usage (state, with its total), filtered volume lists and
// custom volume snapshots (storage_api_volume_snapshots).
var StorageExtensions = []string{
	"storage",
	"resources",
	"storage_api_volume_rename",
	"storage_api_volume_snapshots",
	"storage_shifted",
	"custom_block_volumes",
	"storage_volume_state",
	"storage_volume_state_total",
	"storage_volume_api_filtering",
}

// ServerUntrusted is what GET /1.0 shows to any client.
type ServerUntrusted struct {
	APIExtensions []string `json:"api_extensions" yaml:"api_extensions"`
	APIStatus     string   `json:"api_status" yaml:"api_status"`
	APIVersion    string   `json:"api_version" yaml:"api_version"`
	Auth          string   `json:"auth" yaml:"auth"`
	Public        bool     `json:"public" yaml:"public"`
	AuthMethods   []string `json:"auth_methods" yaml:"auth_methods"`
}

// Server is GET /1.0 for a trusted client.
type Server struct {
	Config map[string]any `json:"config" yaml:"config"`
	ServerUntrusted
	Environment ServerEnvironment `json:"environment" yaml:"environment"`
}

// ServerEnvironment describes the host and the daemon.
type ServerEnvironment struct {
	Addresses              []string          `json:"addresses" yaml:"addresses"`
	Architectures          []string          `json:"architectures" yaml:"architectures"`
	Certificate            string            `json:"certificate" yaml:"certificate"`
	CertificateFingerprint string            `json:"certificate_fingerprint" yaml:"certificate_fingerprint"`
	Driver                 string            `json:"driver" yaml:"driver"`
	DriverVersion          string            `json:"driver_version" yaml:"driver_version"`
	Firewall               string            `json:"firewall" yaml:"firewall"`
	Kernel                 string            `json:"kernel" yaml:"kernel"`
	KernelArchitecture     string            `json:"kernel_architecture" yaml:"kernel_architecture"`
	KernelFeatures         map[string]string `json:"kernel_features" yaml:"kernel_features"`
	KernelVersion          string            `json:"kernel_version" yaml:"kernel_version"`
	LXCFeatures            map[string]string `json:"lxc_features" yaml:"lxc_features"`
	OSName                 string            `json:"os_name" yaml:"os_name"`
	OSVersion              string            `json:"os_version" yaml:"os_version"`
	Project                string            `json:"project" yaml:"project"`
	Server                 string            `json:"server" yaml:"server"`
	ServerClustered        bool              `json:"server_clustered" yaml:"server_clustered"`
	ServerEventMode        string            `json:"server_event_mode" yaml:"server_event_mode"`
	ServerName             string            `json:"server_name" yaml:"server_name"`
	ServerPid              int               `json:"server_pid" yaml:"server_pid"`
	ServerVersion          string            `json:"server_version" yaml:"server_version"`
	Storage                string            `json:"storage" yaml:"storage"`
	StorageVersion         string            `json:"storage_version" yaml:"storage_version"`
	// StorageSupportedDrivers keeps LXD's field names, which have no
	// JSON tags there and so are capitalised on the wire.
	StorageSupportedDrivers []ServerStorageDriverInfo `json:"storage_supported_drivers" yaml:"storage_supported_drivers"`
}

// ServerStorageDriverInfo is one storage driver the server can use.
type ServerStorageDriverInfo struct {
	Name    string `json:"Name" yaml:"name"`
	Version string `json:"Version" yaml:"version"`
	Remote  bool   `json:"Remote" yaml:"remote"`
}

// Event types.
const (
	EventTypeLifecycle = "lifecycle"
	EventTypeOperation = "operation"
	EventTypeLogging   = "logging"
)

// Event is one message on /1.0/events. Sequence is hangar's addition: it
// grows by one per event, so a reconnecting client asks for ?since=N.
type Event struct {
	Type      string          `json:"type" yaml:"type"`
	Timestamp time.Time       `json:"timestamp" yaml:"timestamp"`
	Metadata  json.RawMessage `json:"metadata" yaml:"metadata"`
	Location  string          `json:"location,omitempty" yaml:"location,omitempty"`
	Project   string          `json:"project,omitempty" yaml:"project,omitempty"`
	Sequence  uint64          `json:"sequence" yaml:"sequence"`
}

// EventLifecycle is the metadata of a lifecycle event.
type EventLifecycle struct {
	Action  string         `json:"action" yaml:"action"`
	Source  string         `json:"source" yaml:"source"`
	Context map[string]any `json:"context,omitempty" yaml:"context,omitempty"`
	Name    string         `json:"name,omitempty" yaml:"name,omitempty"`
	Project string         `json:"project,omitempty" yaml:"project,omitempty"`
	// Requestor is who caused the event.
	Requestor *EventLifecycleRequestor `json:"requestor,omitempty" yaml:"requestor,omitempty"`
}

// EventLifecycleRequestor is who caused a lifecycle event.
type EventLifecycleRequestor struct {
	Username string `json:"username" yaml:"username"`
	Protocol string `json:"protocol" yaml:"protocol"`
	Address  string `json:"address,omitempty" yaml:"address,omitempty"`
}

// EventLogging is the metadata of a logging event.
type EventLogging struct {
	Message string            `json:"message" yaml:"message"`
	Level   string            `json:"level" yaml:"level"`
	Context map[string]string `json:"context" yaml:"context"`
}

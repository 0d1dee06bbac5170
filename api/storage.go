package api

import "time"

// The storage shapes of LXD 5.0's API (/1.0/storage-pools and below), with
// LXD's JSON names, so that lxc and LXD's Go client read them unchanged.

// Storage pool statuses, LXD's words.
const (
	StoragePoolStatusCreated     = "Created"
	StoragePoolStatusUnavailable = "Unavailable"
)

// Storage volume types, as they appear in URLs and in "type".
const (
	StorageVolumeTypeCustom    = "custom"
	StorageVolumeTypeContainer = "container"
	StorageVolumeTypeVM        = "virtual-machine"
	StorageVolumeTypeImage     = "image"
)

// Storage volume content types.
const (
	StorageContentTypeFilesystem = "filesystem"
	StorageContentTypeBlock      = "block"
	// StorageContentTypeISO is an ISO 9660 (or UDF) image imported as a
	// custom volume: read-only, attached to VMs as a CD-ROM.
	StorageContentTypeISO = "iso"
)

// StoragePoolPut holds the fields of a pool a client may replace with PUT.
type StoragePoolPut struct {
	Config      map[string]string `json:"config" yaml:"config"`
	Description string            `json:"description" yaml:"description"`
}

// StoragePool is /1.0/storage-pools/{name}.
type StoragePool struct {
	StoragePoolPut `yaml:",inline"`
	Name           string   `json:"name" yaml:"name"`
	Driver         string   `json:"driver" yaml:"driver"`
	UsedBy         []string `json:"used_by" yaml:"used_by"`
	Status         string   `json:"status" yaml:"status"`
	Locations      []string `json:"locations" yaml:"locations"`
}

// StoragePoolsPost is the body of POST /1.0/storage-pools.
type StoragePoolsPost struct {
	StoragePoolPut `yaml:",inline"`
	Name           string `json:"name" yaml:"name"`
	Driver         string `json:"driver" yaml:"driver"`
}

// StoragePoolResources is /1.0/storage-pools/{name}/resources (LXD's
// ResourcesStoragePool): space and inodes, used and total.
type StoragePoolResources struct {
	Space  StoragePoolSpace  `json:"space,omitempty" yaml:"space,omitempty"`
	Inodes StoragePoolInodes `json:"inodes,omitempty" yaml:"inodes,omitempty"`
}

// StoragePoolSpace is a pool's disk space in bytes.
type StoragePoolSpace struct {
	Used  uint64 `json:"used,omitempty" yaml:"used,omitempty"`
	Total uint64 `json:"total" yaml:"total"`
}

// StoragePoolInodes is a pool's inode count.
type StoragePoolInodes struct {
	Used  uint64 `json:"used" yaml:"used"`
	Total uint64 `json:"total" yaml:"total"`
}

// StorageVolumePut holds the fields of a volume a client may replace with
// PUT. Restore names a snapshot to restore (hangard has no volume
// snapshots and refuses it).
type StorageVolumePut struct {
	Config      map[string]string `json:"config" yaml:"config"`
	Description string            `json:"description" yaml:"description"`
	Restore     string            `json:"restore,omitempty" yaml:"restore,omitempty"`
}

// StorageVolume is /1.0/storage-pools/{pool}/volumes/{type}/{name}.
type StorageVolume struct {
	StorageVolumePut `yaml:",inline"`
	Name             string    `json:"name" yaml:"name"`
	Type             string    `json:"type" yaml:"type"`
	UsedBy           []string  `json:"used_by" yaml:"used_by"`
	Location         string    `json:"location" yaml:"location"`
	ContentType      string    `json:"content_type" yaml:"content_type"`
	Project          string    `json:"project" yaml:"project"`
	CreatedAt        time.Time `json:"created_at" yaml:"created_at"`
}

// StorageVolumesPost is the body of POST /1.0/storage-pools/{pool}/volumes
// (and .../volumes/{type}, where the path gives the type).
type StorageVolumesPost struct {
	StorageVolumePut `yaml:",inline"`
	Name             string              `json:"name" yaml:"name"`
	Type             string              `json:"type" yaml:"type"`
	Source           StorageVolumeSource `json:"source" yaml:"source"`
	ContentType      string              `json:"content_type" yaml:"content_type"`
}

// StorageVolumeSource is where a new volume's content comes from: nothing
// (an empty volume), or a copy or migration, which hangard refuses.
type StorageVolumeSource struct {
	Name        string            `json:"name" yaml:"name"`
	Type        string            `json:"type" yaml:"type"`
	Pool        string            `json:"pool" yaml:"pool"`
	Certificate string            `json:"certificate" yaml:"certificate"`
	Mode        string            `json:"mode,omitempty" yaml:"mode,omitempty"`
	Operation   string            `json:"operation,omitempty" yaml:"operation,omitempty"`
	Websockets  map[string]string `json:"secrets,omitempty" yaml:"secrets,omitempty"`
	VolumeOnly  bool              `json:"volume_only" yaml:"volume_only"`
	Refresh     bool              `json:"refresh" yaml:"refresh"`
	Project     string            `json:"project,omitempty" yaml:"project,omitempty"`
}

// StorageVolumePost is the body of POST
// /1.0/storage-pools/{pool}/volumes/{type}/{name}: a rename (name), or a
// move to another pool or project, or a migration, which hangard refuses.
type StorageVolumePost struct {
	Name       string                   `json:"name" yaml:"name"`
	Pool       string                   `json:"pool,omitempty" yaml:"pool,omitempty"`
	Migration  bool                     `json:"migration" yaml:"migration"`
	Target     *StorageVolumePostTarget `json:"target" yaml:"target"`
	VolumeOnly bool                     `json:"volume_only" yaml:"volume_only"`
	Project    string                   `json:"project,omitempty" yaml:"project,omitempty"`
}

// StorageVolumePostTarget is where a migrated volume goes.
type StorageVolumePostTarget struct {
	Certificate string            `json:"certificate" yaml:"certificate"`
	Operation   string            `json:"operation,omitempty" yaml:"operation,omitempty"`
	Websockets  map[string]string `json:"secrets,omitempty" yaml:"secrets,omitempty"`
}

// StorageVolumeState is .../volumes/{type}/{name}/state.
type StorageVolumeState struct {
	Usage *StorageVolumeStateUsage `json:"usage" yaml:"usage"`
}

// StorageVolumeStateUsage is a volume's usage in bytes; Total is its size
// limit, 0 when it has none.
type StorageVolumeStateUsage struct {
	Used  uint64 `json:"used,omitempty" yaml:"used,omitempty"`
	Total int64  `json:"total" yaml:"total"`
}

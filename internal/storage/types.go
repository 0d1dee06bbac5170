package storage

import (
	"time"

	"github.com/hangar-dev/hangar/internal/storage/drivers"
)

// Pool is a storage pool as every edge sees it.
type Pool struct {
	Name        string
	Driver      string
	Description string
	Config      map[string]string
	// Status is "Created" for a pool whose backing store is mounted,
	// "Unavailable" when it could not be at start.
	Status string
	// UsedBy names who uses the pool, relative to /1.0: "instances/c1",
	// "profiles/default", "storage-pools/default/volumes/custom/v1".
	UsedBy []string
}

// PoolPut is the writable part of a pool.
type PoolPut struct {
	Description string
	Config      map[string]string
}

// CreatePoolRequest is a new pool.
type CreatePoolRequest struct {
	Name        string
	Driver      string
	Description string
	Config      map[string]string
}

// Usage is space used and available in bytes (drivers.Usage).
type Usage = drivers.Usage

// Resources is a pool's space and inodes, as GET .../resources gives.
type Resources struct {
	Space  Usage
	Inodes Usage
}

// Volume is a storage volume as every edge sees it.
type Volume struct {
	Pool string
	// Project holds the volume (a custom volume's, an instance root's
	// instance's; "default" for image volumes).
	Project string
	// Type is "container", "virtual-machine", "image" or "custom".
	Type string
	// Name is the instance's name, the image's fingerprint, or the custom
	// volume's name.
	Name        string
	Description string
	Config      map[string]string
	// ContentType is "filesystem" or "block".
	ContentType string
	UsedBy      []string
	CreatedAt   time.Time
}

// VolumePut is the writable part of a volume.
type VolumePut struct {
	Description string
	Config      map[string]string
}

// CreateVolumeRequest is a new custom volume.
type CreateVolumeRequest struct {
	Pool        string
	Name        string
	ContentType string // "filesystem" (default) or "block"
	Description string
	Config      map[string]string
}

// VolumeState is a volume's live state.
type VolumeState struct {
	Usage Usage
}

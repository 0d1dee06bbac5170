package api

import "time"

// Instance and storage volume snapshots, as LXD 5.0 shows them.

// InstanceSnapshotsPost is the body of POST /1.0/instances/{name}/snapshots.
type InstanceSnapshotsPost struct {
	// Name is the snapshot's name; empty takes the next name of the
	// instance's snapshots.pattern (snap0, snap1...).
	Name     string `json:"name" yaml:"name"`
	Stateful bool   `json:"stateful" yaml:"stateful"`
	// ExpiresAt, when set, is when the snapshot is deleted (a zero time:
	// never, what lxc snapshot --no-expiry sends); nil takes the
	// instance's snapshots.expiry.
	ExpiresAt *time.Time `json:"expires_at" yaml:"expires_at"`
}

// InstanceSnapshotPost is the body of POST
// /1.0/instances/{name}/snapshots/{snap}: a rename (hangard does not
// migrate snapshots).
type InstanceSnapshotPost struct {
	Name      string `json:"name" yaml:"name"`
	Migration bool   `json:"migration" yaml:"migration"`
	Live      bool   `json:"live,omitempty" yaml:"live,omitempty"`
	// Target is where a migration goes (a pull from another server);
	// hangard refuses it as any migration.
	Target *InstancePostTarget `json:"target,omitempty" yaml:"target,omitempty"`
}

// InstancePostTarget is the other end of a migration in push mode.
type InstancePostTarget struct {
	Certificate string            `json:"certificate" yaml:"certificate"`
	Operation   string            `json:"operation,omitempty" yaml:"operation,omitempty"`
	Websockets  map[string]string `json:"secrets,omitempty" yaml:"secrets,omitempty"`
}

// InstanceSnapshotPut is the writable part of an instance snapshot.
type InstanceSnapshotPut struct {
	ExpiresAt time.Time `json:"expires_at" yaml:"expires_at"`
}

// InstanceSnapshot is /1.0/instances/{name}/snapshots/{snap}.
type InstanceSnapshot struct {
	InstanceSnapshotPut `yaml:",inline"`
	Architecture        string                       `json:"architecture" yaml:"architecture"`
	Config              map[string]string            `json:"config" yaml:"config"`
	CreatedAt           time.Time                    `json:"created_at" yaml:"created_at"`
	Devices             map[string]map[string]string `json:"devices" yaml:"devices"`
	Ephemeral           bool                         `json:"ephemeral" yaml:"ephemeral"`
	ExpandedConfig      map[string]string            `json:"expanded_config,omitempty" yaml:"expanded_config,omitempty"`
	ExpandedDevices     map[string]map[string]string `json:"expanded_devices,omitempty" yaml:"expanded_devices,omitempty"`
	LastUsedAt          time.Time                    `json:"last_used_at" yaml:"last_used_at"`
	// Name is the snapshot's own name, without its instance's.
	Name     string   `json:"name" yaml:"name"`
	Profiles []string `json:"profiles" yaml:"profiles"`
	Stateful bool     `json:"stateful" yaml:"stateful"`
	// Size is the snapshot's own disk usage in bytes; -1: not known.
	Size int64 `json:"size" yaml:"size"`
}

// StorageVolumeSnapshotsPost is the body of POST
// /1.0/storage-pools/{pool}/volumes/{type}/{name}/snapshots.
type StorageVolumeSnapshotsPost struct {
	Name      string     `json:"name" yaml:"name"`
	ExpiresAt *time.Time `json:"expires_at" yaml:"expires_at"`
}

// StorageVolumeSnapshotPost is the body of a volume snapshot's POST: a
// rename.
type StorageVolumeSnapshotPost struct {
	Name string `json:"name" yaml:"name"`
}

// StorageVolumeSnapshotPut is the writable part of a volume snapshot.
type StorageVolumeSnapshotPut struct {
	Description string     `json:"description" yaml:"description"`
	ExpiresAt   *time.Time `json:"expires_at" yaml:"expires_at"`
}

// StorageVolumeSnapshot is
// /1.0/storage-pools/{pool}/volumes/{type}/{name}/snapshots/{snap}.
type StorageVolumeSnapshot struct {
	StorageVolumeSnapshotPut `yaml:",inline"`
	Name                     string            `json:"name" yaml:"name"`
	Config                   map[string]string `json:"config" yaml:"config"`
	ContentType              string            `json:"content_type" yaml:"content_type"`
	CreatedAt                time.Time         `json:"created_at" yaml:"created_at"`
}

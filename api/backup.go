package api

import "time"

// InstanceBackup is an instance backup (GET /1.0/instances/NAME/backups/B).
type InstanceBackup struct {
	Name             string    `json:"name" yaml:"name"`
	CreatedAt        time.Time `json:"created_at" yaml:"created_at"`
	ExpiresAt        time.Time `json:"expires_at" yaml:"expires_at"`
	InstanceOnly     bool      `json:"instance_only" yaml:"instance_only"`
	ContainerOnly    bool      `json:"container_only" yaml:"container_only"` // LXD's old name of InstanceOnly
	OptimizedStorage bool      `json:"optimized_storage" yaml:"optimized_storage"`
}

// InstanceBackupsPost is a new backup (POST /1.0/instances/NAME/backups).
// A zero ExpiresAt never expires; an empty Name is backupN.
type InstanceBackupsPost struct {
	Name                 string    `json:"name" yaml:"name"`
	ExpiresAt            time.Time `json:"expires_at" yaml:"expires_at"`
	InstanceOnly         bool      `json:"instance_only" yaml:"instance_only"`
	ContainerOnly        bool      `json:"container_only" yaml:"container_only"`
	OptimizedStorage     bool      `json:"optimized_storage" yaml:"optimized_storage"`
	CompressionAlgorithm string    `json:"compression_algorithm" yaml:"compression_algorithm"`
}

// InstanceBackupPost renames a backup (POST /1.0/instances/NAME/backups/B).
type InstanceBackupPost struct {
	Name string `json:"name" yaml:"name"`
}

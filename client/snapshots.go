package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/hangar-dev/hangar/api"
)

// Instance snapshots.

func snapshotPath(name, snap string) string {
	return instancePath(name) + "/snapshots/" + escape(snap)
}

// GetInstanceSnapshotNames returns the names of an instance's snapshots,
// oldest first.
func (c *Client) GetInstanceSnapshotNames(ctx context.Context, name string) ([]string, error) {
	var urls []string
	if _, err := c.queryStruct(ctx, http.MethodGet, instancePath(name)+"/snapshots", nil, "", &urls); err != nil {
		return nil, fmt.Errorf("list snapshots of %s: %w", name, err)
	}
	return namesFromURLs(urls, instancePath(name)+"/snapshots/"), nil
}

// GetInstanceSnapshots returns an instance's snapshots, oldest first.
func (c *Client) GetInstanceSnapshots(ctx context.Context, name string) ([]api.InstanceSnapshot, error) {
	snaps := []api.InstanceSnapshot{}
	if _, err := c.queryStruct(ctx, http.MethodGet, instancePath(name)+"/snapshots?recursion=1", nil, "", &snaps); err != nil {
		return nil, fmt.Errorf("list snapshots of %s: %w", name, err)
	}
	return snaps, nil
}

// GetInstanceSnapshot returns one snapshot and its ETag.
func (c *Client) GetInstanceSnapshot(ctx context.Context, name, snap string) (*api.InstanceSnapshot, string, error) {
	var sn api.InstanceSnapshot
	etag, err := c.queryStruct(ctx, http.MethodGet, snapshotPath(name, snap), nil, "", &sn)
	if err != nil {
		return nil, "", err
	}
	return &sn, etag, nil
}

// CreateInstanceSnapshot snapshots an instance; an empty req.Name takes
// the next name of the instance's snapshots.pattern.
func (c *Client) CreateInstanceSnapshot(ctx context.Context, name string, req api.InstanceSnapshotsPost) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, instancePath(name)+"/snapshots", req, "")
}

// UpdateInstanceSnapshot sets a snapshot's expiry; etag, when not empty,
// makes the daemon refuse if the snapshot changed since it was read.
func (c *Client) UpdateInstanceSnapshot(ctx context.Context, name, snap string, put api.InstanceSnapshotPut, etag string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPut, snapshotPath(name, snap), put, etag)
}

// RenameInstanceSnapshot renames a snapshot.
func (c *Client) RenameInstanceSnapshot(ctx context.Context, name, snap, newName string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, snapshotPath(name, snap), api.InstanceSnapshotPost{Name: newName}, "")
}

// DeleteInstanceSnapshot deletes a snapshot.
func (c *Client) DeleteInstanceSnapshot(ctx context.Context, name, snap string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodDelete, snapshotPath(name, snap), nil, "")
}

// RestoreInstanceSnapshot makes an instance what its snapshot was, as lxc
// restore does (a PUT of the instance naming the snapshot). A running
// instance is stopped and started again; stateful restores a VM's saved
// memory too.
func (c *Client) RestoreInstanceSnapshot(ctx context.Context, name, snap string, stateful bool) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPut, instancePath(name), api.InstancePut{Restore: name + "/" + snap, Stateful: stateful}, "")
}

// Custom volume snapshots.

func volumeSnapshotPath(pool, volType, name, snap string) string {
	return volumePath(pool, volType, name) + "/snapshots/" + escape(snap)
}

// GetStoragePoolVolumeSnapshots returns a volume's snapshots, oldest first.
func (c *Client) GetStoragePoolVolumeSnapshots(ctx context.Context, pool, volType, name string) ([]api.StorageVolumeSnapshot, error) {
	snaps := []api.StorageVolumeSnapshot{}
	if _, err := c.queryStruct(ctx, http.MethodGet, volumePath(pool, volType, name)+"/snapshots?recursion=1", nil, "", &snaps); err != nil {
		return nil, fmt.Errorf("list snapshots of %s: %w", name, err)
	}
	return snaps, nil
}

// GetStoragePoolVolumeSnapshot returns one volume snapshot and its ETag.
func (c *Client) GetStoragePoolVolumeSnapshot(ctx context.Context, pool, volType, name, snap string) (*api.StorageVolumeSnapshot, string, error) {
	var sn api.StorageVolumeSnapshot
	etag, err := c.queryStruct(ctx, http.MethodGet, volumeSnapshotPath(pool, volType, name, snap), nil, "", &sn)
	if err != nil {
		return nil, "", err
	}
	return &sn, etag, nil
}

// CreateStoragePoolVolumeSnapshot snapshots a custom volume; an empty
// req.Name takes the first free snapN.
func (c *Client) CreateStoragePoolVolumeSnapshot(ctx context.Context, pool, volType, name string, req api.StorageVolumeSnapshotsPost) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, volumePath(pool, volType, name)+"/snapshots", req, "")
}

// UpdateStoragePoolVolumeSnapshot replaces a volume snapshot's
// description and expiry; etag as in UpdateInstanceSnapshot.
func (c *Client) UpdateStoragePoolVolumeSnapshot(ctx context.Context, pool, volType, name, snap string, put api.StorageVolumeSnapshotPut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, volumeSnapshotPath(pool, volType, name, snap), put, etag, nil)
	return err
}

// RenameStoragePoolVolumeSnapshot renames a volume snapshot.
func (c *Client) RenameStoragePoolVolumeSnapshot(ctx context.Context, pool, volType, name, snap, newName string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, volumeSnapshotPath(pool, volType, name, snap), api.StorageVolumeSnapshotPost{Name: newName}, "")
}

// DeleteStoragePoolVolumeSnapshot deletes a volume snapshot.
func (c *Client) DeleteStoragePoolVolumeSnapshot(ctx context.Context, pool, volType, name, snap string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodDelete, volumeSnapshotPath(pool, volType, name, snap), nil, "")
}

// RestoreStoragePoolVolume makes a custom volume's content its
// snapshot's (a volume attached to an instance is refused).
func (c *Client) RestoreStoragePoolVolume(ctx context.Context, pool, volType, name, snap string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, volumePath(pool, volType, name), api.StorageVolumePut{Restore: snap}, "", nil)
	return err
}

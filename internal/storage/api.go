package storage

import (
	"context"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// The manager's API for the edges. Bodies land with the manager (issue 12);
// until then every call says so.

var errTODO = errdefs.NotImplemented("storage pools are being built")

// Pools lists every pool.
func (m *Manager) Pools(ctx context.Context) ([]Pool, error) { return nil, errTODO }

// Pool returns one pool.
func (m *Manager) Pool(ctx context.Context, name string) (Pool, error) { return Pool{}, errTODO }

// CreatePool makes a pool: its record and its backing store.
func (m *Manager) CreatePool(ctx context.Context, req CreatePoolRequest) error { return errTODO }

// UpdatePool replaces a pool's writable part (PUT).
func (m *Manager) UpdatePool(ctx context.Context, name string, put PoolPut) error { return errTODO }

// PatchPool merges into a pool's writable part (PATCH).
func (m *Manager) PatchPool(ctx context.Context, name string, put PoolPut) error { return errTODO }

// DeletePool removes an unused pool.
func (m *Manager) DeletePool(ctx context.Context, name string) error { return errTODO }

// PoolResources is a pool's space and inodes.
func (m *Manager) PoolResources(ctx context.Context, name string) (Resources, error) {
	return Resources{}, errTODO
}

// Volumes lists a pool's volumes of every type.
func (m *Manager) Volumes(ctx context.Context, pool string) ([]Volume, error) { return nil, errTODO }

// Volume returns one volume.
func (m *Manager) Volume(ctx context.Context, pool, typ, name string) (Volume, error) {
	return Volume{}, errTODO
}

// CreateVolume makes a custom volume.
func (m *Manager) CreateVolume(ctx context.Context, req CreateVolumeRequest) error { return errTODO }

// UpdateVolume replaces a volume's writable part (PUT).
func (m *Manager) UpdateVolume(ctx context.Context, pool, typ, name string, put VolumePut) error {
	return errTODO
}

// PatchVolume merges into a volume's writable part (PATCH).
func (m *Manager) PatchVolume(ctx context.Context, pool, typ, name string, put VolumePut) error {
	return errTODO
}

// RenameVolume renames a custom volume.
func (m *Manager) RenameVolume(ctx context.Context, pool, typ, name, newName string) error {
	return errTODO
}

// DeleteVolume removes an unused custom volume.
func (m *Manager) DeleteVolume(ctx context.Context, pool, typ, name string) error { return errTODO }

// VolumeState is a volume's usage.
func (m *Manager) VolumeState(ctx context.Context, pool, typ, name string) (VolumeState, error) {
	return VolumeState{}, errTODO
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// StoragePool is a storage pool's stored record.
type StoragePool struct {
	ID          int64
	Name        string
	Driver      string
	Description string
	Config      map[string]string
	// State is "pending" while its backing store is being made, then
	// "created".
	State string
}

// StorageVolume is a storage volume's stored record.
type StorageVolume struct {
	ID   int64
	Pool string // the pool's name (joined)
	// PoolID is the pool's id (set by CreateStorageVolume from Pool).
	PoolID int64
	// Project holds the volume: a custom volume's project (names are
	// unique per pool, project and type), an instance root's instance's.
	// Image volumes are the default project's. "" is stored as
	// "default".
	Project     string
	Type        string
	Name        string
	DiskName    string
	Content     string
	Description string
	Config      map[string]string
	// InstanceID is the instance whose root this is (0: none).
	InstanceID int64
	// ParentID is the volume this is a snapshot of (0: not a snapshot);
	// a snapshot's Name is "PARENT/SNAP".
	ParentID int64
	// ExpiresAt is when a snapshot is due to be deleted (zero: never).
	ExpiresAt time.Time
	CreatedAt time.Time
	// State is "pending" while being made, "created", or "deleting".
	State string
}

const poolSelect = `SELECT id, name, driver, description, config, state FROM storage_pools`

func scanPool(row rowScanner) (StoragePool, error) {
	var (
		p      StoragePool
		config string
	)
	if err := row.Scan(&p.ID, &p.Name, &p.Driver, &p.Description, &config, &p.State); err != nil {
		return StoragePool{}, err
	}
	var err error
	if p.Config, err = decodeStringMap(config); err != nil {
		return StoragePool{}, fmt.Errorf("storage pool %q config: %w", p.Name, err)
	}
	return p, nil
}

// CreateStoragePool stores a new pool and sets p.ID. An existing name is
// ErrConflict.
func (q *Queries) CreateStoragePool(ctx context.Context, p *StoragePool) error {
	config, err := marshalMap(p.Config)
	if err != nil {
		return fmt.Errorf("create storage pool %q config: %w", p.Name, err)
	}
	if p.State == "" {
		p.State = "pending"
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"INSERT INTO storage_pools (name, driver, description, config, state) VALUES (?, ?, ?, ?, ?)",
			p.Name, p.Driver, p.Description, config, p.State)
		switch {
		case isUnique(err):
			return errdefs.Conflict("storage pool %q already exists", p.Name)
		case isCheck(err):
			return errdefs.Invalid("create storage pool %q: %v", p.Name, err)
		case err != nil:
			return fmt.Errorf("create storage pool %q: %w", p.Name, err)
		}
		if p.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("create storage pool %q: %w", p.Name, err)
		}
		return nil
	})
}

// GetStoragePool returns the pool called name.
func (q *Queries) GetStoragePool(ctx context.Context, name string) (StoragePool, error) {
	p, err := scanPool(q.reader().QueryRowContext(ctx, poolSelect+" WHERE name = ?", name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return StoragePool{}, errdefs.NotFound("storage pool %q not found", name)
	case err != nil:
		return StoragePool{}, fmt.Errorf("get storage pool %q: %w", name, err)
	}
	return p, nil
}

// ListStoragePools returns every pool, ordered by name.
func (q *Queries) ListStoragePools(ctx context.Context) ([]StoragePool, error) {
	return listRows(ctx, q.reader(), "storage pools", scanPool, poolSelect+" ORDER BY name")
}

// UpdateStoragePool replaces the description, config and state of the
// pool with p.ID.
func (q *Queries) UpdateStoragePool(ctx context.Context, p StoragePool) error {
	config, err := marshalMap(p.Config)
	if err != nil {
		return fmt.Errorf("update storage pool %q config: %w", p.Name, err)
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE storage_pools SET description = ?, config = ?, state = ? WHERE id = ?",
			p.Description, config, p.State, p.ID)
		if err != nil {
			return fmt.Errorf("update storage pool %q: %w", p.Name, err)
		}
		if k, err := rowsAffected(res); err != nil {
			return fmt.Errorf("update storage pool %q: %w", p.Name, err)
		} else if k == 0 {
			return errdefs.NotFound("storage pool %q not found", p.Name)
		}
		return nil
	})
}

// DeleteStoragePool deletes the pool called name. A pool with volume
// records is ErrConflict.
func (q *Queries) DeleteStoragePool(ctx context.Context, name string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM storage_pools WHERE name = ?", name)
		switch {
		case isForeignKey(err):
			return errdefs.Conflict("storage pool %q still has volumes", name)
		case err != nil:
			return fmt.Errorf("delete storage pool %q: %w", name, err)
		}
		if k, err := rowsAffected(res); err != nil {
			return fmt.Errorf("delete storage pool %q: %w", name, err)
		} else if k == 0 {
			return errdefs.NotFound("storage pool %q not found", name)
		}
		return nil
	})
}

const volumeSelect = `
SELECT v.id, p.name, v.pool_id, v.project, v.type, v.name, v.disk_name, v.content, v.description, v.config,
       COALESCE(v.instance_id, 0), COALESCE(v.parent_id, 0), v.expires_at, v.created_at, v.state
  FROM storage_volumes v JOIN storage_pools p ON p.id = v.pool_id`

func scanVolume(row rowScanner) (StorageVolume, error) {
	var (
		v                        StorageVolume
		config, expires, created string
	)
	if err := row.Scan(&v.ID, &v.Pool, &v.PoolID, &v.Project, &v.Type, &v.Name, &v.DiskName, &v.Content,
		&v.Description, &config, &v.InstanceID, &v.ParentID, &expires, &created, &v.State); err != nil {
		return StorageVolume{}, err
	}
	var err error
	if v.Config, err = decodeStringMap(config); err != nil {
		return StorageVolume{}, fmt.Errorf("storage volume %q config: %w", v.Name, err)
	}
	if v.CreatedAt, err = parseTime(created); err != nil {
		return StorageVolume{}, fmt.Errorf("storage volume %q: %w", v.Name, err)
	}
	if v.ExpiresAt, err = parseOptionalTime(expires); err != nil {
		return StorageVolume{}, fmt.Errorf("storage volume %q: %w", v.Name, err)
	}
	return v, nil
}

// CreateStorageVolume stores a new volume record on pool v.Pool and sets
// v.ID and v.PoolID. A name taken on the pool in the project, or a disk
// name taken on the pool, is ErrConflict.
func (q *Queries) CreateStorageVolume(ctx context.Context, v *StorageVolume) error {
	config, err := marshalMap(v.Config)
	if err != nil {
		return fmt.Errorf("create storage volume %q config: %w", v.Name, err)
	}
	if v.State == "" {
		v.State = "pending"
	}
	if v.Project == "" {
		v.Project = "default"
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = time.Now()
	}
	var inst, parent any
	if v.InstanceID != 0 {
		inst = v.InstanceID
	}
	if v.ParentID != 0 {
		parent = v.ParentID
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT id FROM storage_pools WHERE name = ?", v.Pool).Scan(&v.PoolID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return errdefs.NotFound("storage pool %q not found", v.Pool)
			}
			return fmt.Errorf("create storage volume %q: %w", v.Name, err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO storage_volumes
			(pool_id, project, type, name, disk_name, content, description, config, instance_id, parent_id, expires_at, created_at, state)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.PoolID, v.Project, v.Type, v.Name, v.DiskName, v.Content, v.Description, config, inst, parent,
			fmtOptionalTime(v.ExpiresAt), fmtTime(v.CreatedAt), v.State)
		switch {
		case isUnique(err):
			return errdefs.Conflict("storage volume %s/%s already exists on pool %q", v.Type, v.Name, v.Pool)
		case isForeignKey(err):
			return errdefs.NotFound("project %q not found", v.Project)
		case isCheck(err):
			return errdefs.Invalid("create storage volume %q: %v", v.Name, err)
		case err != nil:
			return fmt.Errorf("create storage volume %q: %w", v.Name, err)
		}
		if v.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("create storage volume %q: %w", v.Name, err)
		}
		return nil
	})
}

// ListStorageVolumes returns the volumes on pool (every pool when pool is
// empty), ordered by pool, type and name.
func (q *Queries) ListStorageVolumes(ctx context.Context, pool string) ([]StorageVolume, error) {
	query, args := volumeSelect, []any{}
	if pool != "" {
		query += " WHERE p.name = ?"
		args = append(args, pool)
	}
	return listRows(ctx, q.reader(), "storage volumes", scanVolume, query+" ORDER BY p.name, v.type, v.project, v.name, v.disk_name", args...)
}

// ListProjectCustomVolumes returns project's custom volumes (not their
// snapshots) on every pool: what counts against its limits.disk, read
// on every quota check, so without the instances' and images' volumes.
func (q *Queries) ListProjectCustomVolumes(ctx context.Context, project string) ([]StorageVolume, error) {
	return listRows(ctx, q.reader(), "storage volumes", scanVolume,
		volumeSelect+" WHERE v.project = ? AND v.type = 'custom' AND v.parent_id IS NULL ORDER BY p.name, v.name", project)
}

// GetStorageVolume returns project's volume of type typ called name on
// pool (for images, of the default project: one of its id maps' volumes).
func (q *Queries) GetStorageVolume(ctx context.Context, pool, project, typ, name string) (StorageVolume, error) {
	v, err := scanVolume(q.reader().QueryRowContext(ctx,
		volumeSelect+" WHERE p.name = ? AND v.project = ? AND v.type = ? AND v.name = ? ORDER BY v.disk_name LIMIT 1",
		pool, project, typ, name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return StorageVolume{}, errdefs.NotFound("storage volume %s/%s not found on pool %q", typ, name, pool)
	case err != nil:
		return StorageVolume{}, fmt.Errorf("get storage volume %s/%s: %w", typ, name, err)
	}
	return v, nil
}

// UpdateStorageVolume replaces the names, description, config, expiry
// and state of the volume with v.ID.
func (q *Queries) UpdateStorageVolume(ctx context.Context, v StorageVolume) error {
	config, err := marshalMap(v.Config)
	if err != nil {
		return fmt.Errorf("update storage volume %q config: %w", v.Name, err)
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE storage_volumes SET name = ?, disk_name = ?, description = ?, config = ?, expires_at = ?, state = ? WHERE id = ?",
			v.Name, v.DiskName, v.Description, config, fmtOptionalTime(v.ExpiresAt), v.State, v.ID)
		switch {
		case isUnique(err):
			return errdefs.Conflict("storage volume %s/%s already exists on pool %q", v.Type, v.Name, v.Pool)
		case err != nil:
			return fmt.Errorf("update storage volume %q: %w", v.Name, err)
		}
		if k, err := rowsAffected(res); err != nil {
			return fmt.Errorf("update storage volume %q: %w", v.Name, err)
		} else if k == 0 {
			return errdefs.NotFound("storage volume %s/%s not found", v.Type, v.Name)
		}
		return nil
	})
}

// DeleteStorageVolume deletes the volume record with id; a missing one is
// not an error.
func (q *Queries) DeleteStorageVolume(ctx context.Context, id int64) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM storage_volumes WHERE id = ?", id); err != nil {
			return fmt.Errorf("delete storage volume %d: %w", id, err)
		}
		return nil
	})
}

// GetInstanceVolume returns the root volume of the instance with id.
func (q *Queries) GetInstanceVolume(ctx context.Context, instanceID int64) (StorageVolume, error) {
	v, err := scanVolume(q.reader().QueryRowContext(ctx, volumeSelect+" WHERE v.instance_id = ?", instanceID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return StorageVolume{}, errdefs.NotFound("instance %d has no root volume", instanceID)
	case err != nil:
		return StorageVolume{}, fmt.Errorf("get root volume of instance %d: %w", instanceID, err)
	}
	return v, nil
}

// GetStorageVolumeByDisk returns the volume of type typ and content kept
// on pool under diskName (an image volume for one id map, say).
func (q *Queries) GetStorageVolumeByDisk(ctx context.Context, pool, typ, content, diskName string) (StorageVolume, error) {
	v, err := scanVolume(q.reader().QueryRowContext(ctx,
		volumeSelect+" WHERE p.name = ? AND v.type = ? AND v.content = ? AND v.disk_name = ?", pool, typ, content, diskName))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return StorageVolume{}, errdefs.NotFound("storage volume %s %s not found on pool %q", typ, diskName, pool)
	case err != nil:
		return StorageVolume{}, fmt.Errorf("get storage volume %s %s: %w", typ, diskName, err)
	}
	return v, nil
}

// ListVolumeSnapshots returns the snapshots of the volume with id
// parentID, oldest first.
func (q *Queries) ListVolumeSnapshots(ctx context.Context, parentID int64) ([]StorageVolume, error) {
	return listRows(ctx, q.reader(), fmt.Sprintf("snapshots of volume %d", parentID), scanVolume,
		volumeSelect+" WHERE v.parent_id = ? ORDER BY v.created_at, v.id", parentID)
}

// RenameVolumeSnapshots follows a parent volume's rename: its snapshots'
// names "OLD/SNAP" become "NEW/SNAP".
func (q *Queries) RenameVolumeSnapshots(ctx context.Context, parentID int64, newParent string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			"UPDATE storage_volumes SET name = ? || substr(name, instr(name, '/')) WHERE parent_id = ?",
			newParent, parentID)
		if isUnique(err) {
			return errdefs.Conflict("storage volume snapshots of %q: a name is taken", newParent)
		}
		if err != nil {
			return fmt.Errorf("rename snapshots of volume %d: %w", parentID, err)
		}
		return nil
	})
}

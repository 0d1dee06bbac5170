package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/hangar-dev/hangar/internal/auth"
	"maps"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/snapshotpolicy"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
	"github.com/hangar-dev/hangar/internal/store"
	"github.com/hangar-dev/hangar/internal/units"
)

// A snapshot is a volume of its parent's type and content, named
// "PARENT/SNAP" in its record (as LXD names them) and kept on disk as
// "DISK@TOKEN": the token never changes, so renaming the snapshot or its
// parent moves nothing on disk. The driver makes it natively (a read-only
// btrfs snapshot; a copy on dir, reflinked where the filesystem can). Its
// record goes through the same pending/created/deleting states as any
// volume, so the start-up reconciliation removes a half-made one.

// Snapshot is a volume snapshot as every edge sees it.
type Snapshot struct {
	// Name is the snapshot's own name (without its volume's).
	Name        string
	Description string
	Config      map[string]string
	ContentType string
	CreatedAt   time.Time
	ExpiresAt   time.Time // zero: never
}

// SnapshotPut is the writable part of a snapshot.
type SnapshotPut struct {
	Description string
	ExpiresAt   time.Time
}

func snapshotOf(v store.StorageVolume) Snapshot {
	_, name, _ := strings.Cut(v.Name, "/")
	return Snapshot{Name: name, Description: v.Description, Config: maps.Clone(v.Config),
		ContentType: v.Content, CreatedAt: v.CreatedAt, ExpiresAt: v.ExpiresAt}
}

func snapshotToken() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// snapshots are a volume's created snapshot records, oldest first.
func (m *Manager) snapshots(ctx context.Context, parent store.StorageVolume) ([]store.StorageVolume, error) {
	all, err := m.cfg.Store.ListVolumeSnapshots(ctx, parent.ID)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, v := range all {
		if v.State == "created" {
			out = append(out, v)
		}
	}
	return out, nil
}

// snapshotRecord is parent's created snapshot called name.
func (m *Manager) snapshotRecord(ctx context.Context, parent store.StorageVolume, name string) (store.StorageVolume, error) {
	v, err := m.cfg.Store.GetStorageVolume(ctx, parent.Pool, parent.Project, parent.Type, parent.Name+"/"+name)
	if err == nil && (v.ParentID != parent.ID || v.State != "created") {
		err = errdefs.NotFound("snapshot %q of %s not found", name, parent.Name)
	}
	if errors.Is(err, errdefs.ErrNotFound) {
		return store.StorageVolume{}, errdefs.NotFound("snapshot %q of %s not found", name, parent.Name)
	}
	return v, err
}

// createSnapshot snapshots parent (whose lock the caller holds). On
// failure nothing is left.
func (m *Manager) createSnapshot(ctx context.Context, p *pool, parent store.StorageVolume, name, description string, expires time.Time) (store.StorageVolume, error) {
	return m.makeSnapshot(ctx, p, parent, name, description, expires, func(dv drivers.Volume) error {
		return p.drv.SnapshotVolume(ctx, dv, diskVolume(parent))
	})
}

// makeSnapshot records a snapshot of parent called name and has fill make
// its volume dv. On failure nothing is left.
func (m *Manager) makeSnapshot(ctx context.Context, p *pool, parent store.StorageVolume, name, description string, expires time.Time, fill func(dv drivers.Volume) error) (store.StorageVolume, error) {
	if err := snapshotpolicy.ValidateName(name); err != nil {
		return store.StorageVolume{}, err
	}
	rec := store.StorageVolume{Pool: parent.Pool, Project: parent.Project, Type: parent.Type, Name: parent.Name + "/" + name,
		DiskName: parent.DiskName + "@" + snapshotToken(), Content: parent.Content, Description: description,
		Config: maps.Clone(parent.Config), ParentID: parent.ID, ExpiresAt: expires}
	if err := m.cfg.Store.CreateStorageVolume(ctx, &rec); err != nil {
		if errors.Is(err, errdefs.ErrConflict) {
			return store.StorageVolume{}, errdefs.Conflict("snapshot %q of %s already exists", name, parent.Name)
		}
		return store.StorageVolume{}, err
	}
	dv := diskVolume(rec)
	if err := fill(dv); err != nil {
		bg := context.WithoutCancel(ctx)
		_ = p.drv.DeleteVolume(bg, dv)
		m.forget(bg, rec)
		return store.StorageVolume{}, fmt.Errorf("snapshot %s/%s on pool %q: %w", parent.Name, name, p.rec.Name, noSpace(err))
	}
	rec.State = "created"
	if err := m.cfg.Store.UpdateStorageVolume(ctx, rec); err != nil {
		bg := context.WithoutCancel(ctx)
		_ = p.drv.DeleteVolume(bg, dv)
		m.forget(bg, rec)
		return store.StorageVolume{}, err
	}
	return rec, nil
}

// restoreSnapshot makes parent's content snap's (the caller holds the
// lock and has made sure nothing runs on parent).
func (m *Manager) restoreSnapshot(ctx context.Context, p *pool, parent, snap store.StorageVolume) error {
	dv := diskVolume(parent)
	if err := p.drv.RestoreVolume(ctx, dv, diskVolume(snap)); err != nil {
		return fmt.Errorf("restore %s from %s on pool %q: %w", parent.Name, snap.Name, p.rec.Name, noSpace(err))
	}
	if parent.Content != string(drivers.ContentFilesystem) || !p.drv.Info().Quotas {
		return nil
	}
	// The restored volume carries the limit snap was taken with (btrfs
	// copies a qgroup's limit into a snapshot); the parent's size now is
	// what holds, and a limit removed since must not come back.
	size := parent.Config["size"]
	if size == "" && snap.Config["size"] == "" {
		return nil
	}
	var n int64
	var err error
	if size != "" {
		// A custom volume's size is written "32MiB", a root's in bytes.
		n, err = units.ParseByteSize(size)
	}
	if err == nil {
		err = p.drv.SetQuota(ctx, dv, n)
	}
	if err != nil {
		return fmt.Errorf("restore %s: size: %w", parent.Name, err)
	}
	return nil
}

// deleteSnapshots removes every snapshot of parent, newest first (the
// caller holds the lock): before the parent goes.
func (m *Manager) deleteSnapshots(ctx context.Context, p *pool, parent store.StorageVolume) error {
	all, err := m.cfg.Store.ListVolumeSnapshots(ctx, parent.ID)
	if err != nil {
		return err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if err := m.deleteVolumeRecord(ctx, p, all[i]); err != nil {
			return err
		}
	}
	return nil
}

// renameSnapshot renames one snapshot record (nothing moves on disk).
func (m *Manager) renameSnapshot(ctx context.Context, parent, snap store.StorageVolume, newName string) error {
	if err := snapshotpolicy.ValidateName(newName); err != nil {
		return err
	}
	snap.Name = parent.Name + "/" + newName
	if err := m.cfg.Store.UpdateStorageVolume(ctx, snap); err != nil {
		if errors.Is(err, errdefs.ErrConflict) {
			return errdefs.Conflict("snapshot %q of %s already exists", newName, parent.Name)
		}
		return err
	}
	return nil
}

// rootLocked takes an instance root's lock and returns its pool and record.
func (m *Manager) rootLocked(ctx context.Context, instanceID int64) (*pool, store.StorageVolume, func(), error) {
	unlock := m.locks.lock(fmt.Sprintf("instance/%d", instanceID))
	p, rec, err := m.rootRecord(ctx, instanceID)
	if err != nil {
		unlock()
		return nil, store.StorageVolume{}, nil, err
	}
	return p, rec, unlock, nil
}

// SnapshotRoot snapshots an instance's root volume as name. The caller
// makes the root consistent first (a frozen container, a paused VM).
func (m *Manager) SnapshotRoot(ctx context.Context, instanceID int64, name string) error {
	p, rec, unlock, err := m.rootLocked(ctx, instanceID)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = m.createSnapshot(ctx, p, rec, name, "", time.Time{})
	return err
}

// RootSnapshots lists an instance root's snapshots, oldest first.
func (m *Manager) RootSnapshots(ctx context.Context, instanceID int64) ([]Snapshot, error) {
	_, rec, err := m.rootRecord(ctx, instanceID)
	if err != nil {
		return nil, err
	}
	recs, err := m.snapshots(ctx, rec)
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, 0, len(recs))
	for _, v := range recs {
		out = append(out, snapshotOf(v))
	}
	return out, nil
}

// DeleteRootSnapshot removes one snapshot of an instance's root; a
// missing one is not an error (a snapshot record may outlive a volume
// whose create was killed).
func (m *Manager) DeleteRootSnapshot(ctx context.Context, instanceID int64, name string) error {
	p, rec, unlock, err := m.rootLocked(ctx, instanceID)
	if err != nil {
		return err
	}
	defer unlock()
	snap, err := m.snapshotRecord(ctx, rec, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return m.deleteVolumeRecord(ctx, p, snap)
}

// RenameRootSnapshot renames one snapshot of an instance's root.
func (m *Manager) RenameRootSnapshot(ctx context.Context, instanceID int64, name, newName string) error {
	_, rec, unlock, err := m.rootLocked(ctx, instanceID)
	if err != nil {
		return err
	}
	defer unlock()
	snap, err := m.snapshotRecord(ctx, rec, name)
	if err != nil {
		return err
	}
	return m.renameSnapshot(ctx, rec, snap, newName)
}

// RestoreRoot makes an instance's root what its snapshot name holds. The
// instance must not be running.
func (m *Manager) RestoreRoot(ctx context.Context, instanceID int64, name string) error {
	p, rec, unlock, err := m.rootLocked(ctx, instanceID)
	if err != nil {
		return err
	}
	defer unlock()
	snap, err := m.snapshotRecord(ctx, rec, name)
	if err != nil {
		return err
	}
	return m.restoreSnapshot(ctx, p, rec, snap)
}

// customSnapshotParent checks a volume API call on snapshots: only custom
// volumes' snapshots are made, changed or deleted there (an instance's
// through the instance API), and returns the parent locked.
func (m *Manager) customSnapshotParent(ctx context.Context, poolName, typ, name string) (*pool, store.StorageVolume, func(), error) {
	return m.lockCustom(ctx, poolName, typ, name, "use the instance's snapshots API")
}

// VolumeSnapshots lists a volume's snapshots (any type: an instance's
// root's snapshots are listed here too, as LXD does).
func (m *Manager) VolumeSnapshots(ctx context.Context, poolName, typ, name string) ([]Snapshot, error) {
	if err := m.allowVolume(ctx, poolName, typ, name, auth.CanView); err != nil {
		return nil, err
	}
	rec, err := m.volumeRecord(ctx, poolName, typ, name)
	if err != nil {
		return nil, err
	}
	recs, err := m.snapshots(ctx, rec)
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, 0, len(recs))
	for _, v := range recs {
		out = append(out, snapshotOf(v))
	}
	return out, nil
}

// VolumeSnapshot returns one snapshot of a volume.
func (m *Manager) VolumeSnapshot(ctx context.Context, poolName, typ, name, snap string) (Snapshot, error) {
	if err := m.allowVolume(ctx, poolName, typ, name, auth.CanView); err != nil {
		return Snapshot{}, err
	}
	rec, err := m.volumeRecord(ctx, poolName, typ, name)
	if err != nil {
		return Snapshot{}, err
	}
	v, err := m.snapshotRecord(ctx, rec, snap)
	if err != nil {
		return Snapshot{}, err
	}
	return snapshotOf(v), nil
}

// CreateVolumeSnapshot snapshots a custom volume. A volume in use by a
// running instance is snapshotted as it is (LXD does the same for custom
// volumes).
func (m *Manager) CreateVolumeSnapshot(ctx context.Context, poolName, typ, name, snap string, put SnapshotPut) error {
	if err := m.allowVolume(ctx, poolName, typ, name, auth.CanEdit); err != nil {
		return err
	}
	p, rec, unlock, err := m.customSnapshotParent(ctx, poolName, typ, name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := refuseISO(rec, "have snapshots"); err != nil {
		return err
	}
	if _, err := m.createSnapshot(ctx, p, rec, snap, put.Description, put.ExpiresAt); err != nil {
		return err
	}
	m.emit(ctx, "storage-volume-snapshot-created", event.EntityStorageVolumeSnapshot, poolName+"/custom/"+name+"/"+snap, nil)
	return nil
}

// withCustomSnapshot runs fn on a custom volume's snapshot snap, the
// volume's lock held.
func (m *Manager) withCustomSnapshot(ctx context.Context, poolName, typ, name, snap string, fn func(p *pool, parent, v store.StorageVolume) error) error {
	p, rec, unlock, err := m.customSnapshotParent(ctx, poolName, typ, name)
	if err != nil {
		return err
	}
	defer unlock()
	v, err := m.snapshotRecord(ctx, rec, snap)
	if err != nil {
		return err
	}
	return fn(p, rec, v)
}

// UpdateVolumeSnapshot sets a custom volume snapshot's description and
// expiry.
func (m *Manager) UpdateVolumeSnapshot(ctx context.Context, poolName, typ, name, snap string, put SnapshotPut) error {
	if err := m.allowVolume(ctx, poolName, typ, name, auth.CanEdit); err != nil {
		return err
	}
	err := m.withCustomSnapshot(ctx, poolName, typ, name, snap, func(_ *pool, _, v store.StorageVolume) error {
		v.Description, v.ExpiresAt = put.Description, put.ExpiresAt
		return m.cfg.Store.UpdateStorageVolume(ctx, v)
	})
	if err == nil {
		m.emit(ctx, "storage-volume-snapshot-updated", event.EntityStorageVolumeSnapshot, poolName+"/custom/"+name+"/"+snap, nil)
	}
	return err
}

// RenameVolumeSnapshot renames a custom volume's snapshot.
func (m *Manager) RenameVolumeSnapshot(ctx context.Context, poolName, typ, name, snap, newName string) error {
	if err := m.allowVolume(ctx, poolName, typ, name, auth.CanEdit); err != nil {
		return err
	}
	err := m.withCustomSnapshot(ctx, poolName, typ, name, snap, func(_ *pool, parent, v store.StorageVolume) error {
		return m.renameSnapshot(ctx, parent, v, newName)
	})
	if err == nil {
		m.emit(ctx, "storage-volume-snapshot-renamed", event.EntityStorageVolumeSnapshot, poolName+"/custom/"+name+"/"+newName, map[string]any{"old_name": snap})
	}
	return err
}

// DeleteVolumeSnapshot removes a custom volume's snapshot.
func (m *Manager) DeleteVolumeSnapshot(ctx context.Context, poolName, typ, name, snap string) error {
	if err := m.allowVolume(ctx, poolName, typ, name, auth.CanEdit); err != nil {
		return err
	}
	err := m.withCustomSnapshot(ctx, poolName, typ, name, snap, func(p *pool, _, v store.StorageVolume) error {
		return m.deleteVolumeRecord(ctx, p, v)
	})
	if err == nil {
		m.emit(ctx, "storage-volume-snapshot-deleted", event.EntityStorageVolumeSnapshot, poolName+"/custom/"+name+"/"+snap, nil)
	}
	return err
}

// RestoreVolume makes a custom volume's content its snapshot's. A volume
// attached to an instance is refused: its mounts would keep the old one.
func (m *Manager) RestoreVolume(ctx context.Context, poolName, typ, name, snap string) error {
	if err := m.allowVolume(ctx, poolName, typ, name, auth.CanEdit); err != nil {
		return err
	}
	return m.withCustomSnapshot(ctx, poolName, typ, name, snap, func(p *pool, parent, v store.StorageVolume) error {
		if err := m.refuseInUse(ctx, poolName, name); err != nil {
			return err
		}
		return m.restoreSnapshot(ctx, p, parent, v)
	})
}

// PruneExpiredVolumeSnapshots deletes custom volume snapshots whose
// expiry has passed (instances' snapshots expire through the core, which
// keeps their records). It returns how many it deleted.
func (m *Manager) PruneExpiredVolumeSnapshots(ctx context.Context, now time.Time) (int, error) {
	all, err := m.cfg.Store.ListStorageVolumes(ctx, "")
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, v := range all {
		if v.ParentID == 0 || v.Type != string(drivers.TypeCustom) || v.ExpiresAt.IsZero() || v.ExpiresAt.After(now) || v.State != "created" {
			continue
		}
		parent, snap, _ := strings.Cut(v.Name, "/")
		// Acting in the volume's own project, which has its volumes.
		pctx := project.WithProject(ctx, project.Project{Name: v.Project, Config: map[string]string{project.FeatureStorageVolumes: "true"}})
		if err := m.DeleteVolumeSnapshot(pctx, v.Pool, v.Type, parent, snap); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

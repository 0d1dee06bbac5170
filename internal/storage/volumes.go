package storage

import (
	"context"
	"errors"
	"fmt"
	"github.com/hangar-dev/hangar/internal/auth"
	"maps"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/revert"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
	"github.com/hangar-dev/hangar/internal/store"
	"github.com/hangar-dev/hangar/internal/units"
)

// defaultBlockSize is a block volume's size when none is given (LXD's).
const defaultBlockSize = 10 << 30

func isTrue(v string) bool {
	b, _ := strconv.ParseBool(v)
	return b
}

// checkVolumeConfig checks a custom volume's config against its driver's
// keys, and that the pool can honour a filesystem volume's size.
func checkVolumeConfig(p *pool, content string, cfg map[string]string) error {
	vol := drivers.Volume{Type: drivers.TypeCustom, Content: drivers.ContentType(content)}
	if err := drivers.ValidateVolumeConfig(p.rec.Driver, vol, cfg); err != nil {
		return err
	}
	if content == string(drivers.ContentFilesystem) && cfg["size"] != "" {
		if info := p.drv.Info(); !info.Quotas {
			return errdefs.Invalid("size: storage pool %q (%s) cannot limit a filesystem volume's size: %s", p.rec.Name, info.Name, info.QuotaUnsupported)
		}
	}
	return nil
}

// Volumes lists a pool's volumes of every type that ctx's project sees
// (volumeProject): its custom volumes and its instances' roots, and one
// volume per image, however many id maps it is cached for.
func (m *Manager) Volumes(ctx context.Context, poolName string) ([]Volume, error) {
	if err := m.allowPool(ctx, poolName, auth.CanView); err != nil {
		return nil, err
	}
	if _, err := m.pool(poolName); err != nil {
		return nil, err
	}
	recs, err := m.cfg.Store.ListStorageVolumes(ctx, poolName)
	if err != nil {
		return nil, err
	}
	out := []Volume{}
	seen := map[string]bool{}
	for _, v := range recs {
		if v.State != "created" || v.ParentID != 0 {
			continue // snapshots are listed under their volume
		}
		if v.Project != volumeProject(ctx, v.Type) {
			continue
		}
		key := v.Type + "/" + v.Name
		if seen[key] {
			continue
		}
		seen[key] = true
		if !m.canViewVolume(ctx, Volume{Pool: v.Pool, Project: v.Project, Type: v.Type, Name: v.Name}) {
			continue
		}
		vol, err := m.volumeOf(ctx, v)
		if err != nil {
			return nil, err
		}
		out = append(out, vol)
	}
	return out, nil
}

// pool returns a loaded pool, usable or not.
func (m *Manager) pool(name string) (*pool, error) {
	m.mu.RLock()
	p := m.pools[name]
	m.mu.RUnlock()
	if p == nil {
		return nil, errdefs.NotFound("storage pool %q not found", name)
	}
	return p, nil
}

func (m *Manager) volumeOf(ctx context.Context, v store.StorageVolume) (Volume, error) {
	vol := Volume{Pool: v.Pool, Project: v.Project, Type: v.Type, Name: v.Name, Description: v.Description,
		Config: maps.Clone(v.Config), ContentType: v.Content, CreatedAt: v.CreatedAt, UsedBy: []string{}}
	switch v.Type {
	case string(drivers.TypeCustom):
		users, err := m.cfg.Users(ctx, v.Pool, v.Name)
		if err != nil {
			return Volume{}, err
		}
		vol.UsedBy = append(vol.UsedBy, users...)
	case string(drivers.TypeContainer), string(drivers.TypeVM):
		vol.UsedBy = append(vol.UsedBy, "instances/"+v.Name+projectQuery(v.Project))
	case string(drivers.TypeImage):
		vol.UsedBy = append(vol.UsedBy, "images/"+v.Name)
	}
	return vol, nil
}

func checkType(typ string) error {
	switch drivers.VolumeType(typ) {
	case drivers.TypeCustom, drivers.TypeContainer, drivers.TypeVM, drivers.TypeImage:
		return nil
	}
	return errdefs.Invalid("storage volume type %q: custom, container, virtual-machine or image", typ)
}

// Volume returns one volume.
func (m *Manager) Volume(ctx context.Context, pool, typ, name string) (Volume, error) {
	if err := m.allowVolume(ctx, pool, typ, name, auth.CanView); err != nil {
		return Volume{}, err
	}
	v, err := m.volumeRecord(ctx, pool, typ, name)
	if err != nil {
		return Volume{}, err
	}
	return m.volumeOf(ctx, v)
}

func (m *Manager) volumeRecord(ctx context.Context, pool, typ, name string) (store.StorageVolume, error) {
	if err := checkType(typ); err != nil {
		return store.StorageVolume{}, err
	}
	if _, err := m.pool(pool); err != nil {
		return store.StorageVolume{}, err
	}
	v, err := m.cfg.Store.GetStorageVolume(ctx, pool, volumeProject(ctx, typ), typ, name)
	if err != nil {
		return store.StorageVolume{}, err
	}
	if v.State != "created" {
		return store.StorageVolume{}, errdefs.NotFound("storage volume %s/%s not found on pool %q", typ, name, pool)
	}
	return v, nil
}

// CreateVolume makes a custom volume: a filesystem (a directory, owned by
// the unprivileged containers' root unless security.shifted, when it
// holds unshifted ids) or a block volume (a sparse file of size, default
// 10GiB).
func (m *Manager) CreateVolume(ctx context.Context, req CreateVolumeRequest) error {
	if err := m.allowCreateVolume(ctx); err != nil {
		return err
	}
	if err := checkName("storage volume", req.Name); err != nil {
		return err
	}
	if req.ContentType == "" {
		req.ContentType = string(drivers.ContentFilesystem)
	}
	if req.ContentType == string(drivers.ContentISO) {
		return errdefs.Invalid("content_type iso: an ISO volume is imported from its image (lxc storage volume import POOL FILE NAME --type=iso), not created empty")
	}
	if req.ContentType != string(drivers.ContentFilesystem) && req.ContentType != string(drivers.ContentBlock) {
		return errdefs.Invalid("content_type %q: filesystem or block", req.ContentType)
	}
	p, err := m.get(req.Pool)
	if err != nil {
		return err
	}
	// The pool's volume.* keys are the defaults, as in LXD.
	cfg := drivers.VolumeDefaults(p.rec.Config, drivers.Volume{Type: drivers.TypeCustom, Content: drivers.ContentType(req.ContentType)})
	if req.ContentType == string(drivers.ContentFilesystem) && !p.drv.Info().Quotas {
		// A pool's volume.size there sizes its block volumes; only a size
		// asked for this volume is refused.
		delete(cfg, "size")
	}
	maps.Copy(cfg, req.Config)
	if err := checkVolumeConfig(p, req.ContentType, cfg); err != nil {
		return err
	}
	var size int64
	if cfg["size"] != "" {
		size, _ = units.ParseByteSize(cfg["size"])
	}
	if req.ContentType == string(drivers.ContentBlock) {
		if isTrue(cfg["security.shifted"]) {
			return errdefs.Invalid("security.shifted: a block volume has no files to shift")
		}
		if size == 0 {
			size = defaultBlockSize
			cfg["size"] = units.FormatByteSize(size)
		}
	}
	proj := volumeProject(ctx, string(drivers.TypeCustom))
	unlock := m.locks.lock(customLockKey(req.Pool, proj, req.Name))
	defer unlock()
	if err := m.diskNameFree(ctx, req.Pool, customDiskName(proj, req.Name)); err != nil {
		return err
	}
	// The project's limits.disk counts custom volumes' sizes, checked and
	// recorded under one lock so two creates cannot both take the rest.
	m.quotaMu.Lock()
	if err := m.checkDisk(ctx, proj, size); err != nil {
		m.quotaMu.Unlock()
		return err
	}
	rec := store.StorageVolume{Pool: req.Pool, Project: proj, Type: string(drivers.TypeCustom), Name: req.Name,
		DiskName: customDiskName(proj, req.Name), Content: req.ContentType, Description: req.Description, Config: cfg, CreatedAt: time.Now()}
	err = m.cfg.Store.CreateStorageVolume(ctx, &rec)
	m.quotaMu.Unlock() // the row is what usage counts from here on
	if err != nil {
		return err
	}
	r := revert.New()
	defer r.Fail()
	r.Add(func() { m.forget(ctx, rec) })
	dv := diskVolume(rec)
	var fill func(dir string) error
	if req.ContentType == string(drivers.ContentFilesystem) && !isTrue(cfg["security.shifted"]) {
		// Every unprivileged container maps its root to the same host id:
		// owned by it, the volume's root is theirs.
		fill = func(dir string) error {
			id := int(m.cfg.IDMap.HostID)
			return os.Lchown(dir, id, id)
		}
	}
	if err := p.drv.CreateVolume(ctx, dv, size, false, fill); err != nil {
		return fmt.Errorf("create storage volume %q: %w", req.Name, noSpace(err))
	}
	if req.ContentType == string(drivers.ContentFilesystem) && size > 0 {
		if err := p.drv.SetQuota(ctx, dv, size); err != nil {
			_ = p.drv.DeleteVolume(context.WithoutCancel(ctx), dv)
			return fmt.Errorf("create storage volume %q: %w", req.Name, err)
		}
	}
	rec.State = "created"
	if err := m.cfg.Store.UpdateStorageVolume(ctx, rec); err != nil {
		_ = p.drv.DeleteVolume(context.WithoutCancel(ctx), dv)
		return err
	}
	r.Success()
	m.emitIn(ctx, proj, "storage-volume-created", event.EntityStorageVolume, req.Pool+"/custom/"+req.Name, nil)
	return nil
}

// forget drops a volume record that never got its volume.
func (m *Manager) forget(ctx context.Context, rec store.StorageVolume) {
	if err := m.cfg.Store.DeleteStorageVolume(context.WithoutCancel(ctx), rec.ID); err != nil {
		m.cfg.Log.Error("forget failed volume", "pool", rec.Pool, "volume", rec.Name, "err", err)
	}
}

// noSpace turns a full filesystem or quota into errdefs.ErrNoSpace (a
// 507), where the drivers and tools did not already.
func noSpace(err error) error {
	if err == nil || errors.Is(err, errdefs.ErrNoSpace) {
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return errdefs.NoSpace("%v", err)
	}
	return err
}

// UpdateVolume replaces a custom volume's writable part (PUT).
func (m *Manager) UpdateVolume(ctx context.Context, pool, typ, name string, put VolumePut) error {
	if err := m.allowVolume(ctx, pool, typ, name, auth.CanEdit); err != nil {
		return err
	}
	return m.updateVolume(ctx, pool, typ, name, put, true)
}

// PatchVolume merges into a custom volume's writable part (PATCH).
func (m *Manager) PatchVolume(ctx context.Context, pool, typ, name string, put VolumePut) error {
	if err := m.allowVolume(ctx, pool, typ, name, auth.CanEdit); err != nil {
		return err
	}
	return m.updateVolume(ctx, pool, typ, name, put, false)
}

func (m *Manager) updateVolume(ctx context.Context, poolName, typ, name string, put VolumePut, replace bool) error {
	p, rec, unlock, err := m.lockCustom(ctx, poolName, typ, name, "an instance's root is changed through its root disk device")
	if err != nil {
		return err
	}
	defer unlock()
	next := maps.Clone(rec.Config)
	if replace {
		next = map[string]string{}
	}
	for k, v := range put.Config {
		if v == "" {
			delete(next, k)
			continue
		}
		next[k] = v
	}
	if rec.Content == string(drivers.ContentISO) {
		if err := isoConfig(rec, next); err != nil {
			return err
		}
	}
	if err := checkVolumeConfig(p, rec.Content, next); err != nil {
		return err
	}
	if next["security.shifted"] != rec.Config["security.shifted"] {
		users, shown, err := m.users(ctx, poolName, name)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return errdefs.Conflict("security.shifted cannot change while storage volume %q is in use by %s", name, inUse(users, shown))
		}
	}
	if next["size"] != rec.Config["size"] {
		var size int64
		if next["size"] != "" {
			size, _ = units.ParseByteSize(next["size"])
		} else if rec.Content == string(drivers.ContentBlock) {
			return errdefs.Invalid("size: a block volume always has a size")
		}
		old, _ := units.ParseByteSize(rec.Config["size"])
		m.quotaMu.Lock()
		defer m.quotaMu.Unlock()
		if err := m.checkDisk(ctx, rec.Project, size-old); err != nil {
			return err
		}
		if err := p.drv.SetQuota(ctx, diskVolume(rec), size); err != nil {
			return fmt.Errorf("resize storage volume %q: %w", name, noSpace(err))
		}
	}
	rec.Config = next
	if put.Description != "" || replace {
		rec.Description = put.Description
	}
	if err := m.cfg.Store.UpdateStorageVolume(ctx, rec); err != nil {
		return err
	}
	m.emitIn(ctx, rec.Project, "storage-volume-updated", event.EntityStorageVolume, poolName+"/custom/"+name, nil)
	return nil
}

// lockCustom takes a custom volume's lock and returns its pool and record:
// only custom volumes are changed, renamed or deleted through the volume
// API (instead says how the others are).
func (m *Manager) lockCustom(ctx context.Context, poolName, typ, name, instead string) (*pool, store.StorageVolume, func(), error) {
	if typ != string(drivers.TypeCustom) {
		if err := checkType(typ); err != nil {
			return nil, store.StorageVolume{}, nil, err
		}
		return nil, store.StorageVolume{}, nil, errdefs.Invalid("storage volume %s/%s: only custom volumes are changed through the volume API; %s", typ, name, instead)
	}
	p, err := m.get(poolName)
	if err != nil {
		return nil, store.StorageVolume{}, nil, err
	}
	unlock := m.locks.lock(customLockKey(poolName, volumeProject(ctx, typ), name))
	rec, err := m.volumeRecord(ctx, poolName, typ, name)
	if err != nil {
		unlock()
		return nil, store.StorageVolume{}, nil, err
	}
	return p, rec, unlock, nil
}

// refuseInUse is a conflict naming who uses a custom volume, if any one
// does.
func (m *Manager) refuseInUse(ctx context.Context, poolName, name string) error {
	users, shown, err := m.users(ctx, poolName, name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return errdefs.Conflict("storage volume %q is in use by %s", name, inUse(users, shown))
	}
	return nil
}

// RenameVolume renames an unused custom volume.
func (m *Manager) RenameVolume(ctx context.Context, poolName, typ, name, newName string) error {
	if err := m.allowVolume(ctx, poolName, typ, name, auth.CanEdit); err != nil {
		return err
	}
	if err := checkName("storage volume", newName); err != nil {
		return err
	}
	p, rec, unlock, err := m.lockCustom(ctx, poolName, typ, name, "rename the instance")
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.refuseInUse(ctx, poolName, name); err != nil {
		return err
	}
	if _, err := m.cfg.Store.GetStorageVolume(ctx, poolName, rec.Project, typ, newName); err == nil {
		return errdefs.Conflict("storage volume custom/%s already exists on pool %q", newName, poolName)
	}
	newDisk := customDiskName(rec.Project, newName)
	if err := m.diskNameFree(ctx, poolName, newDisk); err != nil {
		return err
	}
	if err := p.drv.RenameVolume(ctx, diskVolume(rec), newDisk); err != nil {
		return fmt.Errorf("rename storage volume %q: %w", name, err)
	}
	old := rec
	rec.Name, rec.DiskName = newName, newDisk
	err = m.cfg.Store.UpdateStorageVolume(ctx, rec)
	if err == nil {
		// Snapshots keep their disk names: only their records follow.
		err = m.cfg.Store.RenameVolumeSnapshots(ctx, rec.ID, newName)
	}
	if err != nil {
		bg := context.WithoutCancel(ctx)
		if rerr := p.drv.RenameVolume(bg, diskVolume(rec), old.DiskName); rerr != nil {
			m.cfg.Log.Error("rename volume back", "pool", poolName, "volume", name, "err", rerr)
		}
		_ = m.cfg.Store.UpdateStorageVolume(bg, old)
		return err
	}
	m.emitIn(ctx, rec.Project, "storage-volume-renamed", event.EntityStorageVolume, poolName+"/custom/"+newName, map[string]any{"old_name": name})
	return nil
}

// DeleteVolume removes an unused custom volume.
func (m *Manager) DeleteVolume(ctx context.Context, poolName, typ, name string) error {
	if err := m.allowVolume(ctx, poolName, typ, name, auth.CanDelete); err != nil {
		return err
	}
	p, rec, unlock, err := m.lockCustom(ctx, poolName, typ, name, "delete the instance or image")
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.refuseInUse(ctx, poolName, name); err != nil {
		return err
	}
	if err := m.deleteSnapshots(ctx, p, rec); err != nil {
		return err
	}
	if err := m.deleteVolumeRecord(ctx, p, rec); err != nil {
		return err
	}
	m.emitIn(ctx, rec.Project, "storage-volume-deleted", event.EntityStorageVolume, poolName+"/custom/"+name, nil)
	return nil
}

// VolumeState is a volume's usage, read from the driver.
func (m *Manager) VolumeState(ctx context.Context, poolName, typ, name string) (VolumeState, error) {
	if err := m.allowVolume(ctx, poolName, typ, name, auth.CanView); err != nil {
		return VolumeState{}, err
	}
	p, err := m.get(poolName)
	if err != nil {
		return VolumeState{}, err
	}
	rec, err := m.volumeRecord(ctx, poolName, typ, name)
	if err != nil {
		return VolumeState{}, err
	}
	u, err := p.drv.VolumeUsage(ctx, diskVolume(rec))
	if err != nil {
		return VolumeState{}, fmt.Errorf("storage volume %s/%s: %w", typ, name, err)
	}
	return VolumeState{Usage: u}, nil
}

// Attachment is what a disk device needs of a custom volume.
type Attachment struct {
	// Path is the volume's directory (filesystem) or file (block, ISO).
	Path string
	// Block says the volume is a block volume.
	Block bool
	// ISO says the volume is an ISO image (content type iso): a VM's
	// read-only CD-ROM or disk, never mounted (Block is false).
	ISO bool
	// Shifted says the volume holds unshifted ids (security.shifted):
	// an unprivileged container mounts it through an idmapped mount.
	Shifted bool
}

// Attach resolves a custom volume a disk device names.
func (m *Manager) Attach(ctx context.Context, poolName, name string) (Attachment, error) {
	p, err := m.get(poolName)
	if err != nil {
		return Attachment{}, err
	}
	rec, err := m.volumeRecord(ctx, poolName, string(drivers.TypeCustom), name)
	if err != nil {
		return Attachment{}, err
	}
	dv := diskVolume(rec)
	a := Attachment{Path: p.drv.Path(dv), Shifted: isTrue(rec.Config["security.shifted"])}
	switch rec.Content {
	case string(drivers.ContentBlock):
		a.Block = true
		a.Path = p.drv.Path(dv) + "/" + drivers.BlockFile
	case string(drivers.ContentISO):
		a.ISO = true
		a.Path = p.drv.Path(dv) + "/" + drivers.BlockFile
	}
	return a, nil
}

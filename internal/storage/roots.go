package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/revert"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
	"github.com/hangar-dev/hangar/internal/store"
	"github.com/hangar-dev/hangar/internal/units"
	"github.com/hangar-dev/hangar/internal/vmdisk"
)

// An instance's root volume, by pool kind:
//
//	                 container                         virtual machine
//	clones (btrfs)   a writable snapshot of the        a snapshot of the image's
//	                 image's tree, bind-mounted        raw disk (root.img), grown
//	no clones (dir)  the image's tree (lower) under    a qcow2 overlay (root.img)
//	                 the volume's upper/ (overlayfs)   backed by the image's raw disk
//
// The image's tree or disk is an image volume on the same pool, made once
// per image (and id map, for trees) on first use and read-only after.
// Volume config keys under volatile. record how a root was made.
const (
	keyImage  = "volatile.image"  // the image fingerprint the root came from
	keyIDMap  = "volatile.idmap"  // "HOSTID:SIZE" a container's tree is shifted for; "" privileged
	keyFormat = "volatile.format" // a VM root's disk format (raw, qcow2)
	keyUEFI   = "volatile.uefi"   // "true": the disk boots by UEFI (a cloud image)
	// keyAdopting marks a volume whose files were moved in from before
	// pools existed (adopt.go), until its record is complete.
	keyAdopting = "volatile.adopting"
)

// RootRequest is an instance's root volume.
type RootRequest struct {
	InstanceID int64
	// RuntimeID names the volume on disk (it never changes); Name is the
	// instance's name, the volume's name users see.
	RuntimeID string
	Name      string
	VM        bool
	Pool      string
	// Image is the fingerprint of the image the root comes from; "" makes
	// an empty root.
	Image string
	// IDMap is an unprivileged container's id map (nil: privileged, VM).
	IDMap *driver.IDMap
	// Size is the root disk's size in bytes (its device's size key); 0
	// leaves it unlimited (a container) or the image's (a VM).
	Size int64
}

func idmapString(m *driver.IDMap) string {
	if m == nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", m.HostID, m.Size)
}

func treeName(fp string, m *driver.IDMap) string {
	if m == nil {
		return fp
	}
	return fmt.Sprintf("%s@%d-%d", fp, m.HostID, m.Size)
}

// CheckRoot says whether a pool can hold a root as asked: the pool exists
// and, for a container's size, can enforce it.
func (m *Manager) CheckRoot(ctx context.Context, poolName string, vm bool, size int64) error {
	p, err := m.get(poolName)
	if err != nil {
		return err
	}
	if size > 0 && !vm {
		if info := p.drv.Info(); !info.Quotas {
			return errdefs.Invalid("size: storage pool %q (%s) cannot limit a container's root: %s", poolName, info.Name, info.QuotaUnsupported)
		}
	}
	return nil
}

// CreateRoot makes an instance's root volume. On failure nothing is left.
func (m *Manager) CreateRoot(ctx context.Context, req RootRequest) error {
	if err := m.CheckRoot(ctx, req.Pool, req.VM, req.Size); err != nil {
		return err
	}
	p, err := m.get(req.Pool)
	if err != nil {
		return err
	}
	unlock := m.locks.lock(fmt.Sprintf("instance/%d", req.InstanceID))
	defer unlock()
	rec := rootRecord(ctx, req)
	if req.Size > 0 {
		rec.Config["size"] = strconv.FormatInt(req.Size, 10)
	}
	// The image volume first: a failed unpack leaves no instance record.
	var img store.StorageVolume
	if req.Image != "" {
		if img, err = m.imageVolume(ctx, p, req.Image, req.VM, req.IDMap); err != nil {
			return err
		}
	}
	if req.VM {
		rec.Config[keyFormat] = "raw"
		if !p.drv.Info().Clones {
			rec.Config[keyFormat] = "qcow2"
		}
		if img.Config[keyUEFI] == "true" {
			rec.Config[keyUEFI] = "true"
		}
		if req.Image == "" {
			// An empty disk (a VM manager's new VM, installed from
			// attached media): nothing but firmware can boot it, and a
			// sparse raw file is its cheapest form on every driver.
			if req.Size <= 0 {
				return errdefs.Invalid("size: an empty virtual machine disk needs a size (the root disk device's size key)")
			}
			rec.Config[keyFormat] = "raw"
			rec.Config[keyUEFI] = "true"
		}
	}
	if err := m.cfg.Store.CreateStorageVolume(ctx, &rec); err != nil {
		return err
	}
	r := revert.New()
	defer r.Fail()
	r.Add(func() { m.forget(ctx, rec) })
	dv := diskVolume(rec)
	if err := m.makeRoot(ctx, p, req, dv, img); err != nil {
		_ = p.drv.DeleteVolume(context.WithoutCancel(ctx), dv)
		return fmt.Errorf("create root of %s on pool %q: %w", req.Name, req.Pool, noSpace(err))
	}
	r.Add(func() { _ = p.drv.DeleteVolume(context.WithoutCancel(ctx), dv) })
	rec.State = "created"
	if err := m.cfg.Store.UpdateStorageVolume(ctx, rec); err != nil {
		return err
	}
	r.Success()
	return nil
}

// rootRecord is the record of an instance's new root volume: named by the
// instance, kept on disk by its runtime ID; the image it comes from and a
// container's id map recorded.
// rootRecord is the record of a new instance root: in the project ctx acts
// in, the instance's (the core calls with its instance's project), so two
// projects' instances of one name have a root each; the disk name is the
// runtime id, unique whatever the project.
func rootRecord(ctx context.Context, req RootRequest) store.StorageVolume {
	typ, content := drivers.TypeContainer, drivers.ContentFilesystem
	if req.VM {
		typ, content = drivers.TypeVM, drivers.ContentBlock
	}
	rec := store.StorageVolume{Pool: req.Pool, Project: project.Name(ctx), Type: string(typ), Name: req.Name, DiskName: req.RuntimeID,
		Content: string(content), InstanceID: req.InstanceID, Config: map[string]string{}}
	if req.Image != "" {
		rec.Config[keyImage] = req.Image
	}
	if !req.VM {
		rec.Config[keyIDMap] = idmapString(req.IDMap)
	}
	return rec
}

// makeRoot fills an instance's new volume dv.
func (m *Manager) makeRoot(ctx context.Context, p *pool, req RootRequest, dv drivers.Volume, img store.StorageVolume) error {
	clones := p.drv.Info().Clones
	rootID := 0
	if req.IDMap != nil {
		rootID = int(req.IDMap.HostID)
	}
	switch {
	case req.VM && img.ID == 0:
		// An empty disk: the driver makes the block file of that size.
		return p.drv.CreateVolume(ctx, dv, req.Size, false, nil)
	case req.VM && clones:
		if err := p.drv.CloneVolume(ctx, dv, diskVolume(img)); err != nil {
			return err
		}
		if req.Size > 0 {
			return growRaw(filepath.Join(p.drv.Path(dv), drivers.BlockFile), req.Size)
		}
		return nil
	case req.VM:
		base := filepath.Join(p.drv.Path(diskVolume(img)), drivers.BlockFile)
		qemuImg, err := m.tool(m.cfg.QEMUImg, "qemu-img")
		if err != nil {
			return err
		}
		return p.drv.CreateVolume(ctx, dv, 0, false, func(dir string) error {
			dst := filepath.Join(dir, drivers.BlockFile)
			_ = os.Remove(dst)
			return vmdisk.CreateOverlay(ctx, qemuImg, base, "raw", dst, req.Size)
		})
	case img.ID != 0 && clones:
		if req.Size > 0 {
			// The clone starts out referencing the whole image: a limit
			// below it would leave the instance unable to write a byte.
			u, err := p.drv.VolumeUsage(ctx, diskVolume(img))
			if err != nil {
				return err
			}
			if req.Size < u.Used {
				return errdefs.Invalid("size: %s is below the %s the image %s needs", units.FormatByteSize(req.Size), units.FormatByteSize(u.Used), shortFP(req.Image))
			}
		}
		if err := p.drv.CloneVolume(ctx, dv, diskVolume(img)); err != nil {
			return err
		}
	case clones:
		if err := p.drv.CreateVolume(ctx, dv, 0, false, func(dir string) error {
			return os.Lchown(dir, rootID, rootID)
		}); err != nil {
			return err
		}
	default:
		// Overlay layers: the merged root takes its owner from upper.
		if err := p.drv.CreateVolume(ctx, dv, 0, false, func(dir string) error {
			if err := os.Mkdir(filepath.Join(dir, "upper"), 0o755); err != nil {
				return err
			}
			if err := os.Lchown(filepath.Join(dir, "upper"), rootID, rootID); err != nil {
				return err
			}
			return os.Mkdir(filepath.Join(dir, "work"), 0o700)
		}); err != nil {
			return err
		}
	}
	if req.Size > 0 {
		if err := p.drv.SetQuota(ctx, dv, req.Size); err != nil {
			return err
		}
	}
	return nil
}

// growRaw grows a raw disk file to size; it never shrinks one.
func growRaw(path string, size int64) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if size < st.Size() {
		return errdefs.Invalid("size: %d bytes is below the image's disk of %d bytes", size, st.Size())
	}
	return os.Truncate(path, size)
}

func (m *Manager) tool(configured, name string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s is not installed: run `bash scripts/quickstart.sh` from a Hangar checkout, the README's first command", name)
	}
	return p, nil
}

// imageVolume returns the image volume of fp on p for a container tree
// shifted for idmap, or for a VM's disk, making it on first use. Callers
// for one image volume share one make (the volume's lock).
func (m *Manager) imageVolume(ctx context.Context, p *pool, fp string, vm bool, idmap *driver.IDMap) (store.StorageVolume, error) {
	disk, content := treeName(fp, idmap), drivers.ContentFilesystem
	if vm {
		disk, content = fp, drivers.ContentBlock
	}
	unlock := m.locks.lock("image/" + p.rec.Name + "/" + disk + "/" + string(content))
	defer unlock()
	// One row by its unique key: a dir container asks at every start.
	v, err := m.cfg.Store.GetStorageVolumeByDisk(ctx, p.rec.Name, string(drivers.TypeImage), string(content), disk)
	switch {
	case err == nil && v.State == "created":
		return v, nil
	case err != nil && !errors.Is(err, errdefs.ErrNotFound):
		return store.StorageVolume{}, err
	}
	rec := store.StorageVolume{Pool: p.rec.Name, Type: string(drivers.TypeImage), Name: fp, DiskName: disk,
		Content: string(content), Config: map[string]string{}}
	var fill func(dir string) error
	if vm {
		path, format, isDisk, err := m.cfg.Images.Disk(ctx, fp)
		if err != nil {
			return store.StorageVolume{}, err
		}
		if isDisk {
			rec.Config[keyUEFI] = "true"
		}
		fill = func(dir string) error { return m.fillVMImage(ctx, fp, dir, path, format, isDisk) }
	} else {
		rec.Config[keyIDMap] = idmapString(idmap)
		fill = func(dir string) error { return m.cfg.Images.UnpackTree(ctx, fp, idmap, dir) }
	}
	if err := m.cfg.Store.CreateStorageVolume(ctx, &rec); err != nil {
		return store.StorageVolume{}, err
	}
	dv := diskVolume(rec)
	// Not bound to the caller: others may be waiting for this volume.
	bg := context.WithoutCancel(ctx)
	if err := p.drv.CreateVolume(bg, dv, 0, true, fill); err != nil {
		m.forget(bg, rec)
		return store.StorageVolume{}, fmt.Errorf("image %s on pool %q: %w", shortFP(fp), p.rec.Name, noSpace(err))
	}
	rec.State = "created"
	if err := m.cfg.Store.UpdateStorageVolume(bg, rec); err != nil {
		_ = p.drv.DeleteVolume(bg, dv)
		m.forget(bg, rec)
		return store.StorageVolume{}, err
	}
	m.cfg.Log.Info("image cached on pool", "pool", p.rec.Name, "image", shortFP(fp), "volume", disk, "content", content)
	return rec, nil
}

// fillVMImage writes a VM image volume's raw disk: a disk image converted
// to raw (sparse), or an ext4 filesystem of an image's tree.
func (m *Manager) fillVMImage(ctx context.Context, fp, dir, path, format string, isDisk bool) error {
	dst := filepath.Join(dir, drivers.BlockFile)
	_ = os.Remove(dst)
	if isDisk {
		qemuImg, err := m.tool(m.cfg.QEMUImg, "qemu-img")
		if err != nil {
			return err
		}
		return vmdisk.Convert(ctx, qemuImg, path, format, dst)
	}
	mkfs, err := m.tool(m.cfg.Mkfs, "mkfs.ext4")
	if err != nil {
		return err
	}
	tree := filepath.Join(dir, ".tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(tree)
	if err := m.cfg.Images.UnpackTree(ctx, fp, nil, tree); err != nil {
		return err
	}
	return vmdisk.BuildExt4(ctx, mkfs, tree, dst, 0)
}

func shortFP(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

// rootRecord is an instance's root volume record and its pool.
func (m *Manager) rootRecord(ctx context.Context, instanceID int64) (*pool, store.StorageVolume, error) {
	rec, err := m.cfg.Store.GetInstanceVolume(ctx, instanceID)
	if err != nil {
		return nil, store.StorageVolume{}, err
	}
	if rec.State != "created" {
		return nil, store.StorageVolume{}, errdefs.NotFound("instance %d has no root volume", instanceID)
	}
	p, err := m.get(rec.Pool)
	if err != nil {
		return nil, store.StorageVolume{}, err
	}
	return p, rec, nil
}

// HasRoot says whether an instance has a root volume (an instance made
// before pools existed has none until it is adopted).
func (m *Manager) HasRoot(ctx context.Context, instanceID int64) (bool, error) {
	_, err := m.cfg.Store.GetInstanceVolume(ctx, instanceID)
	if errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Root is what the runtime mounts or boots for an instance: req.IDMap is
// the map it starts with now.
func (m *Manager) Root(ctx context.Context, req RootRequest) (driver.Root, error) {
	p, rec, err := m.rootRecord(ctx, req.InstanceID)
	if err != nil {
		return driver.Root{}, err
	}
	dv := diskVolume(rec)
	dir := p.drv.Path(dv)
	if req.VM {
		return driver.Root{Disk: &driver.Disk{Name: "root", Path: filepath.Join(dir, drivers.BlockFile),
			Format: rec.Config[keyFormat]}, Firmware: rec.Config[keyUEFI] == "true"}, nil
	}
	if p.drv.Info().Clones {
		if made := rec.Config[keyIDMap]; made != idmapString(req.IDMap) {
			return driver.Root{}, errdefs.Invalid("the root of %s on pool %q was made for id map %q and the instance now runs with %q (security.privileged changed): a root on a %s pool is not shifted again; set security.privileged back",
				req.Name, rec.Pool, made, idmapString(req.IDMap), p.rec.Driver)
		}
		return driver.Root{Mounts: []driver.Mount{{Type: "bind", Source: dir}}}, nil
	}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	rootID := 0
	if req.IDMap != nil {
		rootID = int(req.IDMap.HostID)
	}
	// The merged root's owner is upper's: the container's root now.
	if err := os.Lchown(upper, rootID, rootID); err != nil {
		return driver.Root{}, err
	}
	fp := rec.Config[keyImage]
	if fp == "" {
		return driver.Root{Mounts: []driver.Mount{{Type: "bind", Source: upper}}}, nil
	}
	img, err := m.imageVolume(ctx, p, fp, false, req.IDMap)
	if err != nil {
		return driver.Root{}, err
	}
	lower := p.drv.Path(diskVolume(img))
	return driver.Root{Mounts: []driver.Mount{{Type: "overlay", Source: "overlay",
		Options: []string{"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}}}}, nil
}

// DeleteRoot removes an instance's root volume; none is not an error.
func (m *Manager) DeleteRoot(ctx context.Context, instanceID int64) error {
	unlock := m.locks.lock(fmt.Sprintf("instance/%d", instanceID))
	defer unlock()
	rec, err := m.cfg.Store.GetInstanceVolume(ctx, instanceID)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	p, err := m.get(rec.Pool)
	if err != nil {
		return err
	}
	if err := m.deleteSnapshots(ctx, p, rec); err != nil {
		return err
	}
	if err := m.deleteVolumeRecord(ctx, p, rec); err != nil {
		return err
	}
	if fp := rec.Config[keyImage]; fp != "" {
		if err := m.gcImage(ctx, p, fp); err != nil {
			m.cfg.Log.Warn("drop image volumes", "pool", p.rec.Name, "image", shortFP(fp), "err", err)
		}
	}
	return nil
}

// RenameRoot follows an instance's rename (the volume on disk keeps its
// runtime ID).
func (m *Manager) RenameRoot(ctx context.Context, instanceID int64, name string) error {
	rec, err := m.cfg.Store.GetInstanceVolume(ctx, instanceID)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rec.Name = name
	if err := m.cfg.Store.UpdateStorageVolume(ctx, rec); err != nil {
		return err
	}
	return m.cfg.Store.RenameVolumeSnapshots(ctx, rec.ID, name)
}

// ResizeRoot changes an instance's root size: a container's quota (0
// removes it), a VM's disk (grown only). A running VM's disk is grown by
// its runtime, which holds the file (QMP block_resize): then grown is
// true and only the size is recorded here.
func (m *Manager) ResizeRoot(ctx context.Context, instanceID int64, vm bool, size int64, grown bool) error {
	unlock := m.locks.lock(fmt.Sprintf("instance/%d", instanceID))
	defer unlock()
	p, rec, err := m.rootRecord(ctx, instanceID)
	if err != nil {
		return err
	}
	if recVM := rec.Type == string(drivers.TypeVM); recVM != vm {
		return fmt.Errorf("resize root of instance %d: its volume is a %s, not what the caller said", instanceID, rec.Type)
	}
	if err := m.CheckRoot(ctx, rec.Pool, vm, size); err != nil {
		return err
	}
	dv := diskVolume(rec)
	switch {
	case vm && (size == 0 || grown):
		// The disk keeps its size (a disk never shrinks), or its runtime
		// grew it.
	case vm && rec.Config[keyFormat] == "qcow2":
		qemuImg, err := m.tool(m.cfg.QEMUImg, "qemu-img")
		if err != nil {
			return err
		}
		if err := vmdisk.Resize(ctx, qemuImg, filepath.Join(p.drv.Path(dv), drivers.BlockFile), size); err != nil {
			return err
		}
	case vm:
		if err := growRaw(filepath.Join(p.drv.Path(dv), drivers.BlockFile), size); err != nil {
			return err
		}
	default:
		if err := p.drv.SetQuota(ctx, dv, size); err != nil {
			return noSpace(err)
		}
	}
	if size > 0 {
		rec.Config["size"] = strconv.FormatInt(size, 10)
	} else {
		delete(rec.Config, "size")
	}
	return m.cfg.Store.UpdateStorageVolume(ctx, rec)
}

// RootDevice is the host block device under an instance's root, for its
// I/O limits.
func (m *Manager) RootDevice(ctx context.Context, instanceID int64) (major, minor uint32, err error) {
	p, _, err := m.rootRecord(ctx, instanceID)
	if err != nil {
		return 0, 0, err
	}
	return p.drv.Device()
}

// PoolDevice is the host block device under a pool.
func (m *Manager) PoolDevice(poolName string) (major, minor uint32, err error) {
	p, err := m.get(poolName)
	if err != nil {
		return 0, 0, err
	}
	return p.drv.Device()
}

// ImageDeleted drops an image's volumes from every pool once the image is
// gone from the catalogue: at once where no instance needs them (a clone
// does not), or with the last instance layered over them (deleteRoot).
func (m *Manager) ImageDeleted(ctx context.Context, fp string) {
	m.mu.RLock()
	pools := make([]*pool, 0, len(m.pools))
	for _, p := range m.pools {
		if p.err == nil {
			pools = append(pools, p)
		}
	}
	m.mu.RUnlock()
	for _, p := range pools {
		if err := m.gcImage(ctx, p, fp); err != nil {
			m.cfg.Log.Warn("drop image volumes", "pool", p.rec.Name, "image", shortFP(fp), "err", err)
		}
	}
}

// gcImage removes fp's image volumes on p when the image is no longer in
// the catalogue and no instance on p is layered over them.
func (m *Manager) gcImage(ctx context.Context, p *pool, fp string) error {
	if _, _, _, err := m.cfg.Images.Disk(ctx, fp); !errors.Is(err, errdefs.ErrNotFound) {
		return err // still in the catalogue (or cannot tell): kept
	}
	vols, err := m.cfg.Store.ListStorageVolumes(ctx, p.rec.Name)
	if err != nil {
		return err
	}
	clones := p.drv.Info().Clones
	var drop []store.StorageVolume
	for _, v := range vols {
		switch {
		case v.Type == string(drivers.TypeImage) && v.Name == fp:
			drop = append(drop, v)
		case !clones && (v.InstanceID != 0 || v.ParentID != 0) && v.Config[keyImage] == fp:
			return nil // an overlay or qcow2 (a root's or its snapshot's) still reads them
		}
	}
	for _, v := range drop {
		unlock := m.locks.lock("image/" + p.rec.Name + "/" + v.DiskName + "/" + v.Content)
		err := m.deleteVolumeRecord(ctx, p, v)
		unlock()
		if err != nil {
			return err
		}
	}
	if len(drop) > 0 {
		m.cfg.Log.Info("image volumes dropped", "pool", p.rec.Name, "image", shortFP(fp), "volumes", len(drop))
	}
	return nil
}

// RootUsage is an instance's root disk usage where the driver reads it
// cheaply: a VM's disk file, a container root on a pool with quotas
// (qgroups). On a dir pool a container's usage would be a walk of its
// tree at every state read, so ok is false there, as in LXD.
func (m *Manager) RootUsage(ctx context.Context, instanceID int64) (u Usage, ok bool, err error) {
	p, rec, err := m.rootRecord(ctx, instanceID)
	if err != nil {
		return Usage{}, false, err
	}
	if rec.Type == string(drivers.TypeContainer) && !p.drv.Info().Quotas {
		return Usage{}, false, nil
	}
	u, err = p.drv.VolumeUsage(ctx, diskVolume(rec))
	return u, err == nil, err
}

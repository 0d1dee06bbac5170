package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/revert"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
	"github.com/hangar-dev/hangar/internal/store"
	"github.com/hangar-dev/hangar/internal/vmdisk"
)

// viewsDir holds the read-only overlay mounts ReadRoot makes for roots
// on pools without clones; Start unmounts what a killed daemon left.
const viewsDir = ".views"

// RootView is a read-only view of an instance's root or of one of its
// snapshots: a container's whole tree, or a VM's disk.
type RootView struct {
	// Dir is a container root's tree (ids on disk as the root was made:
	// shifted for IDMap).
	Dir   string
	IDMap *driver.IDMap
	// Disk and Format are a VM root's disk file and its format.
	Disk, Format string
}

// ReadRoot calls fn with a read-only view of an instance's root (snap
// "") or of its snapshot snap. A running container's root should be
// frozen by the caller for a consistent view; the view is gone after fn.
func (m *Manager) ReadRoot(ctx context.Context, instanceID int64, snap string, fn func(RootView) error) error {
	p, rec, err := m.rootRecord(ctx, instanceID)
	if err != nil {
		return err
	}
	if snap != "" {
		if rec, err = m.snapshotRecord(ctx, rec, snap); err != nil {
			return err
		}
	}
	return m.readVolume(ctx, p, rec, fn)
}

// readVolume gives fn a view of a root volume record (a root or a root's
// snapshot) on p.
func (m *Manager) readVolume(ctx context.Context, p *pool, rec store.StorageVolume, fn func(RootView) error) error {
	dir := p.drv.Path(diskVolume(rec))
	idmap, err := parseIDMap(rec.Config[keyIDMap])
	if err != nil {
		return fmt.Errorf("root volume %s: %w", rec.Name, err)
	}
	switch {
	case rec.Type == string(drivers.TypeVM):
		return fn(RootView{Disk: filepath.Join(dir, drivers.BlockFile), Format: rec.Config[keyFormat]})
	case p.drv.Info().Clones:
		return fn(RootView{Dir: dir, IDMap: idmap})
	case rec.Config[keyImage] == "":
		return fn(RootView{Dir: filepath.Join(dir, "upper"), IDMap: idmap})
	}
	img, err := m.imageVolume(ctx, p, rec.Config[keyImage], false, idmap)
	if err != nil {
		return err
	}
	// The upper layer over the image's tree, both read-only: an overlay
	// with no upperdir cannot be written.
	views := filepath.Join(m.cfg.Dir, viewsDir)
	if err := os.MkdirAll(views, 0o700); err != nil {
		return err
	}
	mnt, err := os.MkdirTemp(views, "view-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	opts := "lowerdir=" + filepath.Join(dir, "upper") + ":" + p.drv.Path(diskVolume(img))
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, opts); err != nil {
		return fmt.Errorf("read root %s: mount overlay: %w", rec.Name, err)
	}
	defer func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			m.cfg.Log.Warn("unmount root view", "path", mnt, "err", err)
		}
	}()
	return fn(RootView{Dir: mnt, IDMap: idmap})
}

// sweepViews unmounts and removes the views a killed daemon left.
func (m *Manager) sweepViews() {
	views := filepath.Join(m.cfg.Dir, viewsDir)
	ents, err := os.ReadDir(views)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(views, e.Name())
		_ = unix.Unmount(p, unix.MNT_DETACH)
		if err := os.Remove(p); err != nil {
			m.cfg.Log.Warn("remove root view", "path", p, "err", err)
		}
	}
}

func parseIDMap(s string) (*driver.IDMap, error) {
	if s == "" {
		return nil, nil
	}
	host, size, ok := strings.Cut(s, ":")
	h, err1 := strconv.ParseUint(host, 10, 32)
	n, err2 := strconv.ParseUint(size, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("id map %q: want HOSTID:SIZE", s)
	}
	return &driver.IDMap{HostID: uint32(h), Size: uint32(n)}, nil
}

// CopyRoot makes the root of a new instance (req) a copy of the root of
// instance srcID, or of its snapshot srcSnap. Within one pool the driver
// clones (a btrfs snapshot, a dir copy); across pools the content is
// streamed: a container's whole tree copied, a VM's disk converted to the
// format the target pool keeps. On failure nothing is left.
func (m *Manager) CopyRoot(ctx context.Context, req RootRequest, srcID int64, srcSnap string) error {
	if err := m.CheckRoot(ctx, req.Pool, req.VM, req.Size); err != nil {
		return err
	}
	p, err := m.get(req.Pool)
	if err != nil {
		return err
	}
	// Both roots' locks, in one order, so two crossed copies cannot
	// deadlock.
	a, b := srcID, req.InstanceID
	if a > b {
		a, b = b, a
	}
	defer m.locks.lock(fmt.Sprintf("instance/%d", a))()
	defer m.locks.lock(fmt.Sprintf("instance/%d", b))()
	sp, src, err := m.rootRecord(ctx, srcID)
	if err != nil {
		return err
	}
	if srcSnap != "" {
		if src, err = m.snapshotRecord(ctx, src, srcSnap); err != nil {
			return err
		}
	}
	if (src.Type == string(drivers.TypeVM)) != req.VM {
		return errdefs.Invalid("copy: the source is a %s", src.Type)
	}
	rec := rootRecord(ctx, req)
	for _, k := range []string{keyImage, keyIDMap, keyFormat, keyUEFI} {
		if v, ok := src.Config[k]; ok {
			rec.Config[k] = v
		}
	}
	if req.Size > 0 {
		rec.Config["size"] = strconv.FormatInt(req.Size, 10)
	}
	same := sp == p
	if !same {
		switch {
		case req.VM && p.drv.Info().Clones:
			rec.Config[keyFormat] = "raw"
		case req.VM:
			// A whole qcow2 (no backing file): no image volume under it.
			rec.Config[keyFormat] = "qcow2"
			delete(rec.Config, keyImage)
		case !p.drv.Info().Clones:
			// The whole tree lands in the upper layer: no image under it.
			delete(rec.Config, keyImage)
		}
	}
	if err := m.cfg.Store.CreateStorageVolume(ctx, &rec); err != nil {
		return err
	}
	r := revert.New()
	defer r.Fail()
	r.Add(func() { m.forget(context.WithoutCancel(ctx), rec) })
	dv := diskVolume(rec)
	r.Add(func() { _ = p.drv.DeleteVolume(context.WithoutCancel(ctx), dv) })
	if same {
		err = p.drv.CloneVolume(ctx, dv, diskVolume(src))
	} else {
		err = m.streamRoot(ctx, sp, src, p, rec, dv, false)
	}
	if err == nil {
		err = m.sizeCopy(ctx, p, rec, dv, req.Size)
	}
	if err != nil {
		return fmt.Errorf("copy root of %s to pool %q: %w", src.Name, req.Pool, noSpace(err))
	}
	rec.State = "created"
	if err := m.cfg.Store.UpdateStorageVolume(ctx, rec); err != nil {
		return err
	}
	r.Success()
	return nil
}

// sizeCopy applies the new root's size: a quota, or a VM disk grown.
func (m *Manager) sizeCopy(ctx context.Context, p *pool, rec store.StorageVolume, dv drivers.Volume, size int64) error {
	if size == 0 {
		return nil
	}
	disk := filepath.Join(p.drv.Path(dv), drivers.BlockFile)
	switch {
	case rec.Type == string(drivers.TypeVM) && rec.Config[keyFormat] == "qcow2":
		qemuImg, err := m.tool(m.cfg.QEMUImg, "qemu-img")
		if err != nil {
			return err
		}
		return vmdisk.Resize(ctx, qemuImg, disk, size)
	case rec.Type == string(drivers.TypeVM):
		return growRaw(disk, size)
	}
	return p.drv.SetQuota(ctx, dv, size)
}

// streamRoot fills the new root (or root snapshot: readOnly) dv on p from
// src on another pool.
func (m *Manager) streamRoot(ctx context.Context, sp *pool, src store.StorageVolume, p *pool, rec store.StorageVolume, dv drivers.Volume, readOnly bool) error {
	return m.readVolume(ctx, sp, src, func(v RootView) error {
		if v.Disk != "" {
			qemuImg, err := m.tool(m.cfg.QEMUImg, "qemu-img")
			if err != nil {
				return err
			}
			return p.drv.CreateVolume(ctx, dv, 0, readOnly, func(dir string) error {
				dst := filepath.Join(dir, drivers.BlockFile)
				_ = os.Remove(dst)
				from := v.Format
				if from == "" {
					from = vmdisk.FormatRaw
				}
				return vmdisk.ConvertTo(ctx, qemuImg, v.Disk, from, dst, rec.Config[keyFormat])
			})
		}
		return p.drv.CreateVolume(ctx, dv, 0, readOnly, func(dir string) error {
			if p.drv.Info().Clones {
				return drivers.CopyTree(ctx, v.Dir, dir)
			}
			if err := os.Mkdir(filepath.Join(dir, "work"), 0o700); err != nil {
				return err
			}
			return drivers.CopyTree(ctx, v.Dir, filepath.Join(dir, "upper"))
		})
	})
}

// CopyRootSnapshot gives instance dstID's root (a copy of srcID's) the
// snapshot name that srcID's root has: within a pool a snapshot of the
// source's snapshot, across pools its content streamed.
func (m *Manager) CopyRootSnapshot(ctx context.Context, dstID, srcID int64, name string) error {
	a, b := srcID, dstID
	if a > b {
		a, b = b, a
	}
	defer m.locks.lock(fmt.Sprintf("instance/%d", a))()
	defer m.locks.lock(fmt.Sprintf("instance/%d", b))()
	sp, srcRoot, err := m.rootRecord(ctx, srcID)
	if err != nil {
		return err
	}
	src, err := m.snapshotRecord(ctx, srcRoot, name)
	if err != nil {
		return err
	}
	p, dst, err := m.rootRecord(ctx, dstID)
	if err != nil {
		return err
	}
	_, err = m.makeSnapshot(ctx, p, dst, name, src.Description, src.ExpiresAt, func(dv drivers.Volume) error {
		if sp == p {
			return p.drv.SnapshotVolume(ctx, dv, diskVolume(src))
		}
		return m.streamRoot(ctx, sp, src, p, dst, dv, true)
	})
	return err
}

package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
)

// LegacyRoot is where an instance made before storage pools existed keeps
// its root: a container's overlay layers in its runtime directory, a VM's
// qcow2 overlay (backed by a base disk the runtime kept).
type LegacyRoot struct {
	Upper, Work string // container
	Disk        string // VM
}

// AdoptRoot gives an instance made before pools existed a root volume on
// req.Pool (a dir pool), moving its files into it: a rename on one
// filesystem, so nothing is copied. A root with no files yet (an instance
// that never started) gets a fresh volume.
//
// The volume is made first, empty (a fresh overlay work directory, or the
// driver's empty disk file), and the instance's files then move into it
// by one rename: at every moment they are whole in one place. A daemon
// killed before the rename finds a pending adopting volume without them
// and removes it (the files are still where they were, and are adopted
// again); killed after, it finds them in the volume and keeps it
// (reconcile). Moving them inside the driver's fill would put them under
// the driver's temporary name until the volume is made, where a kill
// would leave them for the next start's sweep to remove.
func (m *Manager) AdoptRoot(ctx context.Context, req RootRequest, legacy LegacyRoot) error {
	p, err := m.get(req.Pool)
	if err != nil {
		return err
	}
	have := legacy.Disk
	if !req.VM {
		have = legacy.Upper
	}
	if _, err := os.Lstat(have); errors.Is(err, os.ErrNotExist) {
		return m.CreateRoot(ctx, req)
	}
	if p.drv.Info().Clones {
		return errdefs.Invalid("adopt root of %s: its files from before storage pools can only move onto a dir pool, and %q is %s", req.Name, req.Pool, p.rec.Driver)
	}
	unlock := m.locks.lock(fmt.Sprintf("instance/%d", req.InstanceID))
	defer unlock()
	rec := rootRecord(ctx, req)
	rec.Config[keyAdopting] = "true"
	if req.VM {
		rec.Config[keyFormat] = "qcow2"
		if req.Image != "" {
			if _, _, isDisk, err := m.cfg.Images.Disk(ctx, req.Image); err == nil && isDisk {
				rec.Config[keyUEFI] = "true"
			}
		}
	}
	if err := m.cfg.Store.CreateStorageVolume(ctx, &rec); err != nil {
		return err
	}
	dv := diskVolume(rec)
	err = p.drv.CreateVolume(ctx, dv, 0, false, func(dir string) error {
		if req.VM {
			return nil // the driver's empty disk file, replaced by the move
		}
		// overlayfs' scratch space: a fresh one serves, the old one is
		// not moved.
		return os.Mkdir(filepath.Join(dir, "work"), 0o700)
	})
	if err != nil {
		m.forget(ctx, rec)
		return fmt.Errorf("adopt root of %s: %w", req.Name, err)
	}
	if err := os.Rename(have, adoptedPath(p, dv)); err != nil {
		// Nothing moved: the files stay where they were.
		if derr := p.drv.DeleteVolume(context.WithoutCancel(ctx), dv); derr != nil {
			m.cfg.Log.Error("remove volume of a failed adoption", "instance", req.Name, "err", derr)
		}
		m.forget(ctx, rec)
		return fmt.Errorf("adopt root of %s: %w", req.Name, err)
	}
	if !req.VM && legacy.Work != "" {
		if err := os.RemoveAll(legacy.Work); err != nil {
			m.cfg.Log.Warn("remove old overlay work directory", "instance", req.Name, "path", legacy.Work, "err", err)
		}
	}
	delete(rec.Config, keyAdopting)
	rec.State = "created"
	if err := m.cfg.Store.UpdateStorageVolume(ctx, rec); err != nil {
		return err
	}
	m.cfg.Log.Info("instance root moved onto a storage pool", "instance", req.Name, "pool", req.Pool)
	return nil
}

// adoptedPath is where an adopted root's files are in its volume: a
// container's overlay upper, a VM's disk.
func adoptedPath(p *pool, dv drivers.Volume) string {
	if dv.Type == drivers.TypeVM {
		return filepath.Join(p.drv.Path(dv), drivers.BlockFile)
	}
	return filepath.Join(p.drv.Path(dv), "upper")
}

// adopted says whether an adopting volume holds the instance's files
// (AdoptRoot's rename happened): a container's upper, a VM's disk (the
// empty file the volume was made with is not one).
func adopted(p *pool, dv drivers.Volume) bool {
	st, err := os.Lstat(adoptedPath(p, dv))
	if err != nil {
		return false
	}
	return dv.Type != drivers.TypeVM || st.Size() > 0
}

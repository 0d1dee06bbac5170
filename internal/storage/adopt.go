package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
		return fmt.Errorf("adopt root of %s: pool %q is not a dir pool", req.Name, req.Pool)
	}
	unlock := m.locks.lock(fmt.Sprintf("instance/%d", req.InstanceID))
	defer unlock()
	// The files are the instance's only copy: a daemon killed after they
	// moved keeps the volume (keyAdopting), where a pending volume of a
	// create would be removed.
	rec := rootRecord(req)
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
		// A failed fill puts back what it moved before the driver
		// removes its half-made volume.
		var moved [][2]string
		move := func(from, to string) error {
			if err := os.Rename(from, to); err != nil {
				return err
			}
			moved = append(moved, [2]string{from, to})
			return nil
		}
		err := func() error {
			if req.VM {
				dst := filepath.Join(dir, drivers.BlockFile)
				_ = os.Remove(dst)
				return move(legacy.Disk, dst)
			}
			if err := move(legacy.Upper, filepath.Join(dir, "upper")); err != nil {
				return err
			}
			if err := move(legacy.Work, filepath.Join(dir, "work")); !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return os.Mkdir(filepath.Join(dir, "work"), 0o700)
		}()
		if err != nil {
			for i := len(moved) - 1; i >= 0; i-- {
				_ = os.Rename(moved[i][1], moved[i][0])
			}
		}
		return err
	})
	if err != nil {
		m.forget(ctx, rec)
		return fmt.Errorf("adopt root of %s: %w", req.Name, err)
	}
	delete(rec.Config, keyAdopting)
	rec.State = "created"
	if err := m.cfg.Store.UpdateStorageVolume(ctx, rec); err != nil {
		return err
	}
	m.cfg.Log.Info("instance root moved onto a storage pool", "instance", req.Name, "pool", req.Pool)
	return nil
}

package instance

import (
	"context"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage"
)

// RootView is an instance's root (or a snapshot's) lent for reading: a
// container's tree, with ids on disk shifted by IDMap (nil: not
// shifted), or a virtual machine's disk.
type RootView struct {
	Dir          string
	IDMap        *driver.IDMap
	Disk         string
	DiskFormat   string
	Architecture string
	Type         Type
}

// ReadRoot calls fn with a read-only view of an instance's root, or of its
// snapshot snap, held still while fn runs: a running container is frozen
// (as LXD does to publish or export it); a running VM's own root is
// refused (its disk is changing: stop it, or read a snapshot).
func (s *Service) ReadRoot(ctx context.Context, name, snap string, fn func(RootView) error) error {
	if err := s.allow(ctx, name, canManageBackups); err != nil {
		return err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	rec, status, _ := s.snapshot(in)
	if snap != "" {
		if _, err := s.cfg.DB.GetInstanceSnapshot(ctx, rec.ID, snap); err != nil {
			return snapshotNotFound(err, name, snap)
		}
	}
	read := func(ctx context.Context) error {
		return s.cfg.Storage.ReadRoot(ctx, rec.ID, snap, func(v storage.RootView) error {
			return fn(RootView{Dir: v.Dir, IDMap: v.IDMap, Disk: v.Disk, DiskFormat: v.Format,
				Architecture: rec.Architecture, Type: Type(rec.Type)})
		})
	}
	switch {
	case snap != "" || !isActive(status):
		return read(ctx)
	case Type(rec.Type) == TypeVM:
		return errdefs.Conflict("instance %q is running: stop it, or use one of its snapshots", name)
	case status == StatusFrozen:
		return read(ctx)
	}
	return s.whileFrozen(ctx, rec, read)
}

package instance

import (
	"context"
	"errors"
	"fmt"
	"github.com/hangar-dev/hangar/internal/auth"
	"sort"

	"github.com/hangar-dev/hangar/internal/backup"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage"
	"github.com/hangar-dev/hangar/internal/store"
	"github.com/hangar-dev/hangar/internal/units"
)

// Storage makes and hands out instances' roots (*storage.Manager).
type Storage interface {
	CheckRoot(ctx context.Context, pool string, vm bool, size int64) error
	CreateRoot(ctx context.Context, req storage.RootRequest) error
	Root(ctx context.Context, req storage.RootRequest) (driver.Root, error)
	HasRoot(ctx context.Context, instanceID int64) (bool, error)
	AdoptRoot(ctx context.Context, req storage.RootRequest, legacy storage.LegacyRoot) error
	DeleteRoot(ctx context.Context, instanceID int64) error
	RenameRoot(ctx context.Context, instanceID int64, name string) error
	ResizeRoot(ctx context.Context, instanceID int64, vm bool, size int64, grown bool) error
	RootUsage(ctx context.Context, instanceID int64) (storage.Usage, bool, error)
	SnapshotRoot(ctx context.Context, instanceID int64, name string) error
	RootSnapshots(ctx context.Context, instanceID int64) ([]storage.Snapshot, error)
	DeleteRootSnapshot(ctx context.Context, instanceID int64, name string) error
	RenameRootSnapshot(ctx context.Context, instanceID int64, name, newName string) error
	RestoreRoot(ctx context.Context, instanceID int64, name string) error
	CopyRoot(ctx context.Context, req storage.RootRequest, srcID int64, srcSnap string) error
	CopyRootSnapshot(ctx context.Context, dstID, srcID int64, name string) error
	ReadRoot(ctx context.Context, instanceID int64, snap string, fn func(storage.RootView) error) error
	BackupBackend(ctx context.Context, instanceID int64) (storage.BackupInfo, error)
	ExportRoot(ctx context.Context, instanceID int64, w *backup.Writer, req storage.ExportRequest) error
	ImportRoot(ctx context.Context, req storage.ImportRequest, br *backup.Reader) error
}

// rootDisk is an instance's root disk device: the disk device at "/".
type rootDisk struct {
	Device string
	Pool   string
	Size   int64
}

// rootDiskOf finds the root disk among expanded devices. None is the
// default pool, as LXD would refuse but instances made before pools
// existed have none.
func rootDiskOf(devs map[string]map[string]string) (rootDisk, error) {
	var found []string
	var r rootDisk
	for name, d := range devs {
		if d["type"] != "disk" || d["path"] != "/" {
			continue
		}
		found = append(found, name)
		r.Device, r.Pool = name, d["pool"]
		if v := d["size"]; v != "" {
			n, err := units.ParseByteSize(v)
			if err != nil {
				return rootDisk{}, errdefs.Invalid("device %q: size: %v", name, err)
			}
			r.Size = n
		}
	}
	switch {
	case len(found) > 1:
		return rootDisk{}, errdefs.Invalid("devices %q: only one disk device may have path \"/\"", found)
	case len(found) == 0:
		r.Pool = storage.DefaultPool
	case r.Pool == "":
		return rootDisk{}, errdefs.Invalid("device %q: the root disk needs a pool", r.Device)
	}
	return r, nil
}

// checkRoot checks that an instance's root disk, from its devices over its
// profiles', names a pool that can hold it.
func (s *Service) checkRoot(ctx context.Context, typ Type, devs map[string]map[string]string) error {
	r, err := rootDiskOf(devs)
	if err != nil {
		return err
	}
	if err := s.cfg.Storage.CheckRoot(ctx, r.Pool, typ == TypeVM, r.Size); err != nil {
		if r.Device != "" {
			return fmt.Errorf("device %q: %w", r.Device, err)
		}
		return err
	}
	return nil
}

// rootRequest is what storage needs to know of an instance's root.
func (s *Service) rootRequest(rec store.Instance, cfg map[string]string, r rootDisk) storage.RootRequest {
	typ := Type(rec.Type)
	return storage.RootRequest{InstanceID: rec.ID, RuntimeID: runtimeID(rec.ID), Name: rec.Name,
		VM: typ == TypeVM, Pool: r.Pool, Image: rec.Config[keyBaseImage],
		IDMap: s.idmapOf(typ, cfg), Size: r.Size}
}

// createRoot makes a new instance's root volume.
func (s *Service) createRoot(ctx context.Context, rec store.Instance) error {
	cfg, devs, err := s.expanded(rec)
	if err != nil {
		return err
	}
	r, err := rootDiskOf(devs)
	if err != nil {
		return err
	}
	return s.cfg.Storage.CreateRoot(ctx, s.rootRequest(rec, cfg, r))
}

// rootOf is the root an instance starts with. One that has no root
// volume yet (recoverRoots could not give it one at daemon start) gets it
// here first, or the reason it cannot.
func (s *Service) rootOf(ctx context.Context, rec store.Instance, cfg map[string]string, devs map[string]map[string]string) (driver.Root, error) {
	r, err := rootDiskOf(devs)
	if err != nil {
		return driver.Root{}, err
	}
	req := s.rootRequest(rec, cfg, r)
	root, err := s.cfg.Storage.Root(ctx, req)
	if !errors.Is(err, errdefs.ErrNotFound) {
		return root, err
	}
	if err := s.adoptRoot(ctx, rec, req); err != nil {
		return driver.Root{}, err
	}
	return s.cfg.Storage.Root(ctx, req)
}

// adoptRoot moves an instance made before pools existed onto its root
// disk's pool (the default dir pool: older instances have no other), or
// makes the root a killed create did not; an instance with a root volume
// is left alone.
func (s *Service) adoptRoot(ctx context.Context, rec store.Instance, req storage.RootRequest) error {
	has, err := s.cfg.Storage.HasRoot(ctx, rec.ID)
	if err != nil || has {
		return err
	}
	if s.cfg.LegacyRoot == nil {
		return errdefs.NotFound("instance %s has no root volume", rec.Name)
	}
	// Before pools, every root was where the default dir pool now is;
	// an instance with no files there gets a fresh root on its own pool.
	return s.cfg.Storage.AdoptRoot(ctx, req, s.cfg.LegacyRoot(req.RuntimeID, req.VM))
}

// deleteRoot removes an instance's root volume.
func (s *Service) deleteRoot(ctx context.Context, rec store.Instance) error {
	return s.cfg.Storage.DeleteRoot(ctx, rec.ID)
}

// checkRootWithProfiles checks the root disk an instance with devs and
// profiles would have.
func (s *Service) checkRootWithProfiles(ctx context.Context, typ Type, devs map[string]map[string]string, profiles []ref) error {
	s.mu.RLock()
	views, err := s.profileViewsLocked(profiles)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	return s.checkRoot(ctx, typ, expandDevices(devs, views))
}

// rootChange checks a change of an instance's root disk, from rec to
// next (checkRootChange); a new size is returned for applyRootResize.
func (s *Service) rootChange(ctx context.Context, rec, next store.Instance) (*int64, error) {
	_, old, err := s.expanded(rec)
	if err != nil {
		return nil, err
	}
	_, cur, err := s.expanded(next)
	if err != nil {
		return nil, err
	}
	return s.checkRootChange(ctx, rec, old, cur)
}

// rootResize is a root size change to apply once the change is saved.
type rootResize struct {
	rec    store.Instance
	status Status
	size   int64
}

// checkRootChange checks what a change of an instance's expanded devices,
// its own or its profiles', does to its root disk: the pool cannot change
// (a move is a copy, not an edit); a new size is checked against the pool
// and returned (nil: the size stays).
func (s *Service) checkRootChange(ctx context.Context, rec store.Instance, old, cur map[string]map[string]string) (*int64, error) {
	before, err := rootDiskOf(old)
	if err != nil {
		return nil, err
	}
	after, err := rootDiskOf(cur)
	if err != nil {
		return nil, err
	}
	if before.Pool != after.Pool {
		return nil, errdefs.Invalid("the root disk's pool cannot change (%q to %q): the instance's root lives on %q", before.Pool, after.Pool, before.Pool)
	}
	if before.Size == after.Size {
		return nil, nil
	}
	vm := Type(rec.Type) == TypeVM
	if vm && after.Size < before.Size {
		return nil, errdefs.Invalid("size: a virtual machine's root disk can grow, not shrink (%d to %d bytes)", before.Size, after.Size)
	}
	if err := s.cfg.Storage.CheckRoot(ctx, after.Pool, vm, after.Size); err != nil {
		return nil, err
	}
	return &after.Size, nil
}

// applyRootResize applies a new root size; a running VM's driver grows
// the disk, so the guest sees it.
func (s *Service) applyRootResize(ctx context.Context, r rootResize) error {
	vm := Type(r.rec.Type) == TypeVM
	grown := false
	if vm && isActive(r.status) && r.size > 0 {
		// QEMU holds the disk: it grows the file and tells the guest.
		rs, ok := s.driverOf(r.rec).(driver.DiskResizer)
		if !ok {
			return errdefs.Invalid("size: the root disk of running %s cannot grow here: stop it first", r.rec.Name)
		}
		if err := rs.ResizeDisk(ctx, runtimeID(r.rec.ID), "root", r.size); err != nil {
			return fmt.Errorf("resize root of %s: %w", r.rec.Name, err)
		}
		grown = true
	}
	if err := s.cfg.Storage.ResizeRoot(ctx, r.rec.ID, vm, r.size, grown); err != nil {
		return fmt.Errorf("resize root of %s: %w", r.rec.Name, err)
	}
	return nil
}

// StorageUsers names who uses a storage pool (volume "": an instance's
// root or any disk device on it) or one custom volume on it (a disk
// device with that source), as "instances/NAME" and "profiles/NAME",
// instances first, of every project ("?project=P" outside the default
// one), those ctx may see: ask as the daemon (auth.AsDaemon) to know
// whether anything uses it.
func (s *Service) StorageUsers(ctx context.Context, pool, volume string) ([]string, error) {
	uses := func(devs map[string]map[string]string, root bool) bool {
		for _, d := range devs {
			if d["type"] != "disk" || d["pool"] != pool {
				continue
			}
			if volume == "" || d["path"] != "/" && d["source"] == volume {
				return true
			}
		}
		if root && volume == "" {
			r, err := rootDiskOf(devs)
			return err == nil && r.Pool == pool
		}
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var insts, profiles []string
	for r, in := range s.byName {
		if !s.shows(ctx, auth.Instance(r.project, r.name)) {
			continue
		}
		views, err := s.profileViewsLocked(profileRefs(in.rec))
		if err != nil {
			continue
		}
		if uses(expandDevices(in.rec.Devices, views), true) {
			insts = append(insts, r.usedBy("instances"))
		}
	}
	for r, p := range s.profiles {
		if uses(p.Devices, false) && s.shows(ctx, auth.Profile(r.project, r.name)) {
			profiles = append(profiles, r.usedBy("profiles"))
		}
	}
	sort.Strings(insts)
	sort.Strings(profiles)
	return append(insts, profiles...), nil
}

// recoverRoots gives every instance without a root volume one, at daemon
// start: one made before storage pools existed has its files moved onto
// the default pool; one whose create was killed between its record and
// its root gets a fresh root. A failure is logged; the instance's next
// start tries again and reports it.
func (s *Service) recoverRoots(ctx context.Context) {
	s.mu.RLock()
	recs := make([]store.Instance, 0, len(s.byName))
	for _, in := range s.byName {
		recs = append(recs, cloneRecord(in.rec))
	}
	s.mu.RUnlock()
	for _, rec := range recs {
		if rec.Config[keyCreating] != "" {
			s.abandonCreate(ctx, rec)
			continue
		}
		cfg, devs, err := s.expanded(rec)
		if err == nil {
			var r rootDisk
			if r, err = rootDiskOf(devs); err == nil {
				err = s.adoptRoot(ctx, rec, s.rootRequest(rec, cfg, r))
			}
		}
		if err != nil {
			s.log.Error("give instance its root volume", "instance", rec.Name, "err", err)
		}
	}
}

// abandonCreate removes an instance whose create (a copy, an import) a
// killed daemon left unfinished: what was made of it goes with its
// record.
func (s *Service) abandonCreate(ctx context.Context, rec store.Instance) {
	in, err := s.lockInstance(ctx, rec.Name)
	if err != nil {
		return
	}
	defer in.op.Unlock()
	if err := s.deleteLocked(ctx, in, true); err != nil {
		s.log.Error("remove an unfinished create", "instance", rec.Name, "err", err)
		return
	}
	s.log.Info("removed an instance whose create did not finish", "instance", rec.Name, "source", rec.Config[keyCreating])
}

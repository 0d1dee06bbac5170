package instance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/snapshotpolicy"
	"github.com/hangar-dev/hangar/internal/store"
)

// An instance snapshot is two things with one name: the instance's record
// as it was (a row in instance_snapshots: config, devices, profiles) and
// its root volume's snapshot (storage). The row is written first and the
// volume made after; a kill between leaves a row with no volume, which
// Load removes (reconcileSnapshots), as it removes a root snapshot with no
// row. A stateful snapshot of a VM also has its RAM and device state in a
// file of the core's (StateDir/RUNTIMEID/SNAPSHOTID.state: the ID never
// changes, so a rename moves nothing).

// Snapshot is an instance snapshot.
type Snapshot struct {
	Name         string // the snapshot's own name
	Instance     string // the instance's name
	Type         Type
	Architecture string
	Description  string
	Config       map[string]string
	Devices      Devices
	// Expanded* are Config and Devices over the snapshot's profiles as
	// they are now.
	ExpandedConfig  map[string]string
	ExpandedDevices Devices
	Profiles        []string
	Ephemeral       bool
	Stateful        bool
	CreatedAt       time.Time
	ExpiresAt       time.Time // zero: never
	// Kind is "Standby" for a snapshot with saved state, else "Stopped".
	Kind string
	// Metadata is the snapshot's user key-value tags.
	Metadata map[string]string
}

// SnapshotRequest is a new snapshot.
type SnapshotRequest struct {
	// Name is the snapshot's name; "" takes the next name from the
	// instance's snapshots.pattern.
	Name string
	// Stateful saves a running VM's memory too.
	Stateful bool
	// ExpiresAt, when not nil, is when the snapshot is deleted (a zero
	// time: never); nil takes the instance's snapshots.expiry.
	ExpiresAt   *time.Time
	Description string
	// Metadata is the snapshot's user key-value tags (Snapshot.Metadata).
	Metadata map[string]string
	// Compression, when set, overrides the instance's
	// snapshots.compression for a stateful snapshot's saved state
	// (driver.ParseCompression's syntax).
	Compression string
	// scheduled marks a snapshot its instance's schedule took: only
	// those count against snapshots.schedule.max_count.
	scheduled bool
}

// SnapshotPut is the writable part of a snapshot.
type SnapshotPut struct {
	Description string
	ExpiresAt   time.Time
}

// checkpointer saves a running VM's state while its disks are snapshotted
// (driver.Checkpointer: the QEMU driver).
type checkpointer interface {
	Checkpoint(ctx context.Context, id, statePath string, comp driver.Compression, paused func(ctx context.Context) error) (time.Duration, error)
}

func snapshotEntity(project, inst, snap string) event.Entity {
	return event.Entity{Kind: event.EntityInstanceSnapshot, Name: inst + "/" + snap, Project: project}
}

// statePath is where a stateful snapshot keeps its RAM and device state.
func (s *Service) statePath(instanceID, snapshotID int64) string {
	return filepath.Join(s.cfg.StateDir, runtimeID(instanceID), strconv.FormatInt(snapshotID, 10)+".state")
}

func (s *Service) snapshotOf(rec store.Instance, sn store.InstanceSnapshot) Snapshot {
	out := Snapshot{Name: sn.Name, Instance: rec.Name, Type: Type(rec.Type), Architecture: rec.Architecture,
		Description: sn.Description, Config: cloneMap(sn.Config), Devices: cloneDevices(sn.Devices),
		Profiles: append([]string{}, sn.Profiles...), Ephemeral: sn.Ephemeral, Stateful: sn.Stateful,
		CreatedAt: sn.CreatedAt, ExpiresAt: sn.ExpiresAt, Kind: snapshotKind(sn.Stateful), Metadata: snapshotMetadata(sn.Config)}
	s.mu.RLock()
	views, _ := s.profileViewsLocked(refsIn(rec.ProfileProject, existingProfiles(s.profiles, rec.ProfileProject, sn.Profiles)))
	s.mu.RUnlock()
	out.ExpandedConfig, out.ExpandedDevices = expandConfig(sn.Config, views), expandDevices(sn.Devices, views)
	return out
}

// existingProfiles drops the names of profiles deleted since a snapshot
// was taken (its record keeps them).
func existingProfiles(have map[ref]store.Profile, project string, names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if _, ok := have[ref{project, n}]; ok {
			out = append(out, n)
		}
	}
	return out
}

// Snapshots lists an instance's snapshots, oldest first.
func (s *Service) Snapshots(ctx context.Context, name string) ([]Snapshot, error) {
	if err := s.allow(ctx, name, canView); err != nil {
		return nil, err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	rec, _, _ := s.snapshot(in)
	rows, err := s.cfg.DB.ListInstanceSnapshots(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, 0, len(rows))
	for _, sn := range rows {
		out = append(out, s.snapshotOf(rec, sn))
	}
	return out, nil
}

// GetSnapshot returns one snapshot of an instance.
func (s *Service) GetSnapshot(ctx context.Context, name, snap string) (Snapshot, error) {
	if err := s.allow(ctx, name, canView); err != nil {
		return Snapshot{}, err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return Snapshot{}, err
	}
	rec, _, _ := s.snapshot(in)
	sn, err := s.cfg.DB.GetInstanceSnapshot(ctx, rec.ID, snap)
	if err != nil {
		return Snapshot{}, snapshotNotFound(err, name, snap)
	}
	return s.snapshotOf(rec, sn), nil
}

func snapshotNotFound(err error, name, snap string) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return errdefs.NotFound("snapshot %q of instance %q not found", snap, name)
	}
	return err
}

// CreateSnapshot snapshots an instance: its record and its root. A running
// container's root is taken as it is (crash-consistent, as LXD does); a
// running VM is paused for it, and a stateful snapshot saves its memory in
// the same pause.
func (s *Service) CreateSnapshot(ctx context.Context, name string, req SnapshotRequest) (Snapshot, error) {
	if err := s.allow(ctx, name, canManageSnapshots); err != nil {
		return Snapshot{}, err
	}
	if err := project.AllowSnapshot(project.From(ctx)); err != nil {
		return Snapshot{}, err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return Snapshot{}, err
	}
	defer in.op.Unlock()
	return s.createSnapshotLocked(ctx, in, req)
}

// CheckSnapshot says whether CreateSnapshot would refuse req now (a bad
// or taken name, a stateful snapshot the instance cannot take), so an
// edge can answer at once instead of with a failed operation.
// CreateSnapshot checks again under the instance's lock.
func (s *Service) CheckSnapshot(ctx context.Context, name string, req SnapshotRequest) error {
	if err := s.allow(ctx, name, canManageSnapshots); err != nil {
		return err
	}
	if err := project.AllowSnapshot(project.From(ctx)); err != nil {
		return err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return err
	}
	rec, status, _ := s.snapshot(in)
	return s.checkSnapshot(ctx, rec, status, req)
}

func (s *Service) checkSnapshot(ctx context.Context, rec store.Instance, status Status, req SnapshotRequest) error {
	if err := validateMetadata(req.Metadata); err != nil {
		return err
	}
	if req.Name != "" {
		if err := snapshotpolicy.ValidateName(req.Name); err != nil {
			return err
		}
		if _, err := s.cfg.DB.GetInstanceSnapshot(ctx, rec.ID, req.Name); err == nil {
			return errdefs.Conflict("snapshot %q of instance %q already exists", req.Name, rec.Name)
		}
	}
	if req.Compression != "" {
		if !req.Stateful {
			return errdefs.Invalid("compression: only a stateful snapshot has a saved state to compress")
		}
		if _, err := driver.ParseCompression(req.Compression); err != nil {
			return err
		}
	}
	if !req.Stateful {
		return nil
	}
	switch {
	case Type(rec.Type) != TypeVM:
		return errdefs.Invalid("stateful snapshots of containers need CRIU, which hangard does not use: take a stateless snapshot")
	case !isActive(status):
		return errdefs.Invalid("a stateful snapshot needs the instance running")
	}
	if _, ok := s.driverOf(rec).(checkpointer); !ok {
		return errdefs.Invalid("stateful snapshots are not supported by the %s driver", rec.Type)
	}
	return nil
}

func (s *Service) createSnapshotLocked(ctx context.Context, in *inst, req SnapshotRequest) (Snapshot, error) {
	rec, status, _ := s.snapshot(in)
	if err := s.checkSnapshot(ctx, rec, status, req); err != nil {
		return Snapshot{}, err
	}
	cfg, _, err := s.expanded(rec)
	if err != nil {
		return Snapshot{}, err
	}
	now := nowUTC()
	sn := store.InstanceSnapshot{InstanceID: rec.ID, Name: req.Name, Description: req.Description,
		Config: cloneMap(rec.Config), Devices: cloneDevices(rec.Devices), Profiles: append([]string{}, rec.Profiles...),
		Ephemeral: rec.Ephemeral, Stateful: req.Stateful, CreatedAt: now}
	setSnapshotMetadata(sn.Config, req.Metadata, req.scheduled)
	if sn.Name == "" {
		if sn.Name, err = s.nextSnapshotName(ctx, rec, cfg, now); err != nil {
			return Snapshot{}, err
		}
	}
	if err := snapshotpolicy.ValidateName(sn.Name); err != nil {
		return Snapshot{}, err
	}
	if req.ExpiresAt != nil {
		sn.ExpiresAt = *req.ExpiresAt
	} else if sn.ExpiresAt, err = snapshotExpiry(cfg[keySnapshotsExpiry], now); err != nil {
		return Snapshot{}, err
	}
	vm := Type(rec.Type) == TypeVM
	var cp checkpointer
	if req.Stateful {
		cp = s.driverOf(rec).(checkpointer) // checkSnapshot made sure
	}
	if err := s.cfg.DB.CreateInstanceSnapshot(ctx, &sn); err != nil {
		if errors.Is(err, errdefs.ErrConflict) {
			return Snapshot{}, errdefs.Conflict("snapshot %q of instance %q already exists", sn.Name, rec.Name)
		}
		return Snapshot{}, err
	}
	take := func(ctx context.Context) error { return s.cfg.Storage.SnapshotRoot(ctx, rec.ID, sn.Name) }
	switch {
	case cp != nil:
		path := s.statePath(rec.ID, sn.ID)
		if err = os.MkdirAll(filepath.Dir(path), 0o700); err == nil {
			var pause time.Duration
			var comp driver.Compression
			if comp, err = s.compressionOf(rec, req.Compression); err == nil {
				pause, err = cp.Checkpoint(ctx, runtimeID(rec.ID), path, comp, take)
			}
			s.log.Info("stateful snapshot", "instance", rec.Name, "snapshot", sn.Name, "pause", pause)
		}
	case vm && status == StatusRunning:
		// A paused guest has flushed its disk: the snapshot is whole.
		err = s.whileFrozen(ctx, rec, take)
	default:
		err = take(ctx)
	}
	if err != nil {
		bg := context.WithoutCancel(ctx)
		if derr := s.cfg.DB.DeleteInstanceSnapshot(bg, sn.ID); derr != nil {
			s.log.Error("drop snapshot record after a failed snapshot", "instance", rec.Name, "snapshot", sn.Name, "err", derr)
		}
		if cp != nil {
			_ = os.Remove(s.statePath(rec.ID, sn.ID))
		}
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", rec.Name, err)
	}
	s.cfg.Events.Lifecycle(ctx, "instance-snapshot-created", snapshotEntity(rec.Project, rec.Name, sn.Name), nil)
	s.log.Info("snapshot created", "instance", rec.Name, "snapshot", sn.Name, "stateful", sn.Stateful)
	return s.snapshotOf(rec, sn), nil
}

// whileFrozen runs fn with a running instance's processes paused.
func (s *Service) whileFrozen(ctx context.Context, rec store.Instance, fn func(ctx context.Context) error) error {
	drv, id := s.driverOf(rec), runtimeID(rec.ID)
	if err := drv.Freeze(ctx, id); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	err := fn(ctx)
	if uerr := drv.Unfreeze(context.WithoutCancel(ctx), id); uerr != nil {
		err = errors.Join(err, fmt.Errorf("resume: %w", uerr))
	}
	return err
}

// nextSnapshotName is the name snapshots.pattern gives now.
func (s *Service) nextSnapshotName(ctx context.Context, rec store.Instance, cfg map[string]string, now time.Time) (string, error) {
	rows, err := s.cfg.DB.ListInstanceSnapshots(ctx, rec.ID)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(rows))
	for _, r := range rows {
		names = append(names, r.Name)
	}
	return snapshotpolicy.Name(cfg[keySnapshotsPattern], now, names)
}

// UpdateSnapshot sets a snapshot's description and expiry.
func (s *Service) UpdateSnapshot(ctx context.Context, name, snap string, put SnapshotPut) error {
	if err := s.allow(ctx, name, canManageSnapshots); err != nil {
		return err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	rec, _, _ := s.snapshot(in)
	sn, err := s.cfg.DB.GetInstanceSnapshot(ctx, rec.ID, snap)
	if err != nil {
		return snapshotNotFound(err, name, snap)
	}
	sn.Description, sn.ExpiresAt = put.Description, put.ExpiresAt
	if err := s.cfg.DB.UpdateInstanceSnapshot(ctx, sn); err != nil {
		return err
	}
	s.cfg.Events.Lifecycle(ctx, "instance-snapshot-updated", snapshotEntity(project.Name(ctx), name, snap), nil)
	return nil
}

// RenameSnapshot renames a snapshot.
func (s *Service) RenameSnapshot(ctx context.Context, name, snap, newName string) error {
	if err := s.allow(ctx, name, canManageSnapshots); err != nil {
		return err
	}
	if err := snapshotpolicy.ValidateName(newName); err != nil {
		return err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	rec, _, _ := s.snapshot(in)
	sn, err := s.cfg.DB.GetInstanceSnapshot(ctx, rec.ID, snap)
	if err != nil {
		return snapshotNotFound(err, name, snap)
	}
	if _, err := s.cfg.DB.GetInstanceSnapshot(ctx, rec.ID, newName); err == nil {
		return errdefs.Conflict("snapshot %q of instance %q already exists", newName, name)
	}
	if err := s.cfg.Storage.RenameRootSnapshot(ctx, rec.ID, snap, newName); err != nil {
		return err
	}
	sn.Name = newName
	if err := s.cfg.DB.UpdateInstanceSnapshot(ctx, sn); err != nil {
		if rerr := s.cfg.Storage.RenameRootSnapshot(context.WithoutCancel(ctx), rec.ID, newName, snap); rerr != nil {
			s.log.Error("rename root snapshot back", "instance", name, "snapshot", snap, "err", rerr)
		}
		return err
	}
	s.cfg.Events.Lifecycle(ctx, "instance-snapshot-renamed", snapshotEntity(project.Name(ctx), name, newName), map[string]any{"old_name": snap})
	return nil
}

// DeleteSnapshot deletes a snapshot: its root volume's snapshot, its
// saved state and its record.
func (s *Service) DeleteSnapshot(ctx context.Context, name, snap string) error {
	if err := s.allow(ctx, name, canManageSnapshots); err != nil {
		return err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	rec, _, _ := s.snapshot(in)
	sn, err := s.cfg.DB.GetInstanceSnapshot(ctx, rec.ID, snap)
	if err != nil {
		return snapshotNotFound(err, name, snap)
	}
	return s.deleteSnapshotLocked(ctx, rec, sn)
}

func (s *Service) deleteSnapshotLocked(ctx context.Context, rec store.Instance, sn store.InstanceSnapshot) error {
	if err := s.cfg.Storage.DeleteRootSnapshot(ctx, rec.ID, sn.Name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("delete snapshot %s/%s: %w", rec.Name, sn.Name, err)
	}
	if err := os.Remove(s.statePath(rec.ID, sn.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("remove snapshot state", "instance", rec.Name, "snapshot", sn.Name, "err", err)
	}
	if err := s.cfg.DB.DeleteInstanceSnapshot(ctx, sn.ID); err != nil {
		return err
	}
	s.cfg.Events.Lifecycle(ctx, "instance-snapshot-deleted", snapshotEntity(rec.Project, rec.Name, sn.Name), nil)
	s.log.Info("snapshot deleted", "instance", rec.Name, "snapshot", sn.Name)
	return nil
}

// RestoreSnapshot makes an instance what its snapshot was: its root, its
// config, devices and profiles (the instance's volatile keys are kept:
// its identity and addresses do not go back). As LXD does, a running
// instance is stopped first and started again after; a stateful
// snapshot restored with stateful brings the VM back running with the
// processes it had.
func (s *Service) RestoreSnapshot(ctx context.Context, name, snap string, stateful bool) error {
	if err := s.allow(ctx, name, canManageSnapshots); err != nil {
		return err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	rec, status, _ := s.snapshot(in)
	sn, err := s.cfg.DB.GetInstanceSnapshot(ctx, rec.ID, snap)
	if err != nil {
		return snapshotNotFound(err, name, snap)
	}
	if stateful && !sn.Stateful {
		return errdefs.Invalid("snapshot %q of %q holds no state: restore it without stateful", snap, name)
	}
	wasRunning := isActive(status)
	if wasRunning {
		if err := s.stopLocked(ctx, in, StopOptions{Force: true}, powerRunning); err != nil {
			return fmt.Errorf("restore %s: %w", name, err)
		}
	}
	if err := s.cfg.Storage.RestoreRoot(ctx, rec.ID, snap); err != nil {
		return fmt.Errorf("restore %s: %w", name, err)
	}
	err = s.updateRecord(ctx, in, func(r *store.Instance) {
		cfg := cloneMap(sn.Config)
		for k := range cfg {
			if strings.HasPrefix(k, "volatile.") {
				delete(cfg, k)
			}
		}
		for k, v := range r.Config {
			if strings.HasPrefix(k, "volatile.") {
				cfg[k] = v
			}
		}
		r.Config, r.Devices = cfg, cloneDevices(sn.Devices)
		s.mu.RLock()
		r.Profiles = existingProfiles(s.profiles, r.ProfileProject, sn.Profiles)
		s.mu.RUnlock()
		r.Ephemeral = sn.Ephemeral
	})
	if err != nil {
		return fmt.Errorf("restore %s: %w", name, err)
	}
	s.cfg.Events.Lifecycle(ctx, "instance-restored", instanceEntity(project.Name(ctx), name), map[string]any{"snapshot": snap})
	s.log.Info("instance restored", "instance", name, "snapshot", snap, "stateful", stateful)
	switch {
	case stateful:
		return s.startFromState(ctx, in, s.statePath(rec.ID, sn.ID))
	case wasRunning:
		return s.startLocked(ctx, in)
	}
	return s.setPower(ctx, in, powerStopped)
}

// reconcileSnapshots makes snapshot records and root snapshots agree after
// a daemon killed between writing one and the other: a record whose root
// snapshot is missing goes, and so does a root snapshot with no record.
func (s *Service) reconcileSnapshots(ctx context.Context) {
	rows, err := s.cfg.DB.ListInstanceSnapshots(ctx, 0)
	if err != nil {
		s.log.Error("reconcile snapshots", "err", err)
		return
	}
	byInstance := map[int64]map[string]store.InstanceSnapshot{}
	for _, r := range rows {
		if byInstance[r.InstanceID] == nil {
			byInstance[r.InstanceID] = map[string]store.InstanceSnapshot{}
		}
		byInstance[r.InstanceID][r.Name] = r
	}
	s.mu.RLock()
	ins := make([]store.Instance, 0, len(s.byName))
	for _, in := range s.byName {
		ins = append(ins, cloneRecord(in.rec))
	}
	s.mu.RUnlock()
	for _, rec := range ins {
		vols, err := s.cfg.Storage.RootSnapshots(ctx, rec.ID)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // no root yet (adopted later): nothing to match
		}
		if err != nil {
			s.log.Error("reconcile snapshots", "instance", rec.Name, "err", err)
			continue
		}
		have := map[string]bool{}
		for _, v := range vols {
			have[v.Name] = true
			if _, ok := byInstance[rec.ID][v.Name]; !ok {
				if err := s.cfg.Storage.DeleteRootSnapshot(ctx, rec.ID, v.Name); err != nil {
					s.log.Error("remove root snapshot with no record", "instance", rec.Name, "snapshot", v.Name, "err", err)
				} else {
					s.log.Info("removed a root snapshot with no record", "instance", rec.Name, "snapshot", v.Name)
				}
			}
		}
		for name, r := range byInstance[rec.ID] {
			if have[name] {
				continue
			}
			_ = os.Remove(s.statePath(rec.ID, r.ID))
			if err := s.cfg.DB.DeleteInstanceSnapshot(ctx, r.ID); err != nil {
				s.log.Error("remove snapshot record with no root snapshot", "instance", rec.Name, "snapshot", name, "err", err)
			} else {
				s.log.Info("removed a snapshot whose create did not finish", "instance", rec.Name, "snapshot", name)
			}
		}
	}
}

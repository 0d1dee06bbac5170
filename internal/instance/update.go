package instance

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/store"
)

// Update replaces an instance's config, devices, profiles, description and
// ephemeral flag (PUT). pre, when not nil, is checked against the current
// instance under its record lock first (an edge's ETag). New limits apply
// to a running instance at once; environment changes at the next start.
func (s *Service) Update(ctx context.Context, name string, put Put, pre Precondition) error {
	if err := s.allow(ctx, name, canEdit); err != nil {
		return err
	}
	if put.Restore != "" {
		// LXD: a PUT naming a snapshot restores it and changes nothing
		// else.
		return s.RestoreSnapshot(ctx, name, put.Restore, put.Stateful)
	}
	return s.change(ctx, name, pre, func(store.Instance) Put { return put })
}

// Patch merges config and devices into an instance's own and replaces the
// other fields that are set (PATCH). pre is as for Update.
func (s *Service) Patch(ctx context.Context, name string, patch Patch, pre Precondition) error {
	if err := s.allow(ctx, name, canEdit); err != nil {
		return err
	}
	return s.change(ctx, name, pre, func(rec store.Instance) Put {
		put := Put{
			Architecture: rec.Architecture,
			Config:       cloneMap(rec.Config),
			Devices:      cloneDevices(rec.Devices),
			Ephemeral:    rec.Ephemeral,
			Profiles:     rec.Profiles,
			Description:  rec.Description,
		}
		for k, v := range patch.Config {
			put.Config[k] = v
		}
		for k, v := range patch.Devices {
			put.Devices[k] = v
		}
		if patch.Profiles != nil {
			put.Profiles = *patch.Profiles
		}
		if patch.Description != nil {
			put.Description = *patch.Description
		}
		if patch.Ephemeral != nil {
			put.Ephemeral = *patch.Ephemeral
		}
		if patch.Architecture != nil {
			put.Architecture = *patch.Architecture
		}
		return put
	})
}

// change applies the PUT body that body makes of the current record. It
// takes only the locks the change needs (doc.go, Locking): the record lock
// always; profileMu too when the instance's profile list changes; the op
// lock too when the change must reach a running instance's runtime (new
// limits). A change that is neither waits for no freeze, start or stop.
// What it needs is known only once it has seen the current record, so a
// first try under the record lock alone may start over with more locks.
func (s *Service) change(ctx context.Context, name string, pre Precondition, body func(store.Instance) Put) error {
	var need changeLocks
	for {
		more, err := s.tryChange(ctx, name, pre, body, need)
		if more == need {
			return err
		}
		need = more
	}
}

// changeLocks are the locks beyond the record lock that a change takes.
type changeLocks struct{ profiles, op bool }

// tryChange makes the change holding the locks need names, or returns the
// locks it turned out to need.
func (s *Service) tryChange(ctx context.Context, name string, pre Precondition, body func(store.Instance) Put, need changeLocks) (changeLocks, error) {
	in, err := s.lookup(ctx, name)
	if err != nil {
		return need, err
	}
	if need.profiles {
		s.profileMu.Lock()
		defer s.profileMu.Unlock()
	}
	if need.op {
		in.op.Lock()
		defer in.op.Unlock()
	}
	if err := s.lockRecord(in, name); err != nil {
		return need, err
	}
	defer in.cfg.Unlock()
	if err := s.checkPrecondition(in, pre); err != nil {
		return need, err
	}
	rec, status, _ := s.snapshot(in)
	next, err := s.applyPut(ctx, rec, body(rec))
	if err != nil {
		return need, err
	}
	if !need.profiles && !slices.Equal(next.Profiles, rec.Profiles) {
		return changeLocks{profiles: true, op: need.op}, nil
	}
	if err := s.checkProjectChange(ctx, rec, next); err != nil {
		return need, err
	}
	// Starting counts: the status leaves Stopped under the record lock,
	// so a start either reads this change or is seen here.
	if isActive(status) || status == StatusStarting {
		before, err := s.expandedLimits(ctx, rec)
		if err != nil {
			return need, err
		}
		after, err := s.expandedLimits(ctx, next)
		if err != nil {
			return need, err
		}
		devsChanged, err := s.devicesDiffer(rec, next)
		if err != nil {
			return need, err
		}
		if (!before.Equal(after) || devsChanged) && !need.op {
			return changeLocks{profiles: need.profiles, op: true}, nil
		}
		if !before.Equal(after) {
			// Under the op lock the status is settled: active means a
			// runtime to update. If the runtime refuses, nothing is saved.
			if err := s.driverOf(next).UpdateLimits(ctx, runtimeID(next.ID), after); err != nil {
				return need, fmt.Errorf("apply limits to %s: %w", next.Name, err)
			}
		}
		if devsChanged && isActive(status) {
			if err := s.updateDevices(ctx, rec, next); err != nil {
				// Nothing is saved: the devices and limits go back to
				// the record's.
				bg := context.WithoutCancel(ctx)
				if rerr := s.updateDevices(bg, next, rec); rerr != nil {
					s.log.Error("restore devices after a refused change", "instance", rec.Name, "err", rerr)
				}
				if !before.Equal(after) {
					if rerr := s.driverOf(next).UpdateLimits(bg, runtimeID(next.ID), before); rerr != nil {
						s.log.Error("restore limits after a refused change", "instance", rec.Name, "err", rerr)
					}
				}
				return need, fmt.Errorf("apply devices to %s: %w", next.Name, err)
			}
		}
	}
	if size, err := s.rootChange(ctx, rec, next); err != nil {
		return need, err
	} else if size != nil && !need.op {
		return changeLocks{profiles: need.profiles, op: true}, nil
	} else if size != nil {
		if err := s.applyRootResize(ctx, rootResize{next, status, *size}); err != nil {
			return need, err
		}
	}
	// In standby, what the devices keep for a client to reach the
	// instance (DeviceLayer.Standby) is the old devices': it goes with
	// them. Under the record lock, a start cannot be under way.
	standbyChanged := false
	if status == StatusStopped && rec.Stateful {
		if standbyChanged, err = s.devicesDiffer(rec, next); err != nil {
			return need, err
		}
	}
	if err := s.saveRecord(ctx, in, next); err != nil {
		return need, err
	}
	if standbyChanged {
		s.stopDevices(ctx, rec, false)
	}
	s.releaseRemovedNICs(ctx, rec, next)
	s.cfg.Events.Lifecycle(ctx, "instance-updated", instanceEntity(next.Project, next.Name), nil)
	return need, nil
}

// applyPut validates a PUT body against the current record and returns the
// new record.
func (s *Service) applyPut(ctx context.Context, rec store.Instance, put Put) (store.Instance, error) {
	if put.Architecture != "" && put.Architecture != rec.Architecture {
		return rec, errdefs.Invalid("architecture cannot be changed (is %q)", rec.Architecture)
	}
	if put.Stateful && Type(rec.Type) != TypeVM {
		return rec, errdefs.Invalid("stateful: stateful stop is not supported for containers")
	}
	if err := validateUserConfig(put.Config, rec.Config); err != nil {
		return rec, err
	}
	if err := s.validateForType(Type(rec.Type), put.Config); err != nil {
		return rec, err
	}
	if err := s.validateDevices(ctx, put.Devices, Type(rec.Type) == TypeVM); err != nil {
		return rec, err
	}
	profiles := put.Profiles
	if profiles == nil {
		profiles = []string{}
	}
	prefs := refsIn(rec.ProfileProject, profiles)
	if err := s.checkProfiles(prefs); err != nil {
		return rec, err
	}
	config := cloneMap(put.Config)
	// Read-only and internal keys belong to the daemon: a client that
	// leaves them out of a PUT does not delete them.
	for k, v := range rec.Config {
		if strings.HasPrefix(k, prefixImage) || strings.HasPrefix(k, prefixVolatile) {
			config[k] = v
		}
	}
	if err := s.checkWithProfiles(Type(rec.Type), config, prefs); err != nil {
		return rec, err
	}
	next := cloneRecord(rec)
	next.Config = config
	next.Devices = cloneDevices(put.Devices)
	next.Profiles = append([]string{}, profiles...)
	next.Description = put.Description
	next.Ephemeral = put.Ephemeral
	s.setIdmapKeys(&next)
	return next, nil
}

// expandedLimits reads the limits of a record layered over its profiles.
func (s *Service) expandedLimits(ctx context.Context, rec store.Instance) (driver.Limits, error) {
	s.mu.RLock()
	views, err := s.profileViewsLocked(profileRefs(rec))
	s.mu.RUnlock()
	if err != nil {
		return driver.Limits{}, err
	}
	return s.limitsWithDisks(ctx, rec, expandConfig(rec.Config, views), expandDevices(rec.Devices, views))
}

// limitsWithDisks are an instance's limits with its disk devices' I/O
// limits (a container's: a VM's disks carry theirs).
func (s *Service) limitsWithDisks(ctx context.Context, rec store.Instance, cfg map[string]string, devs map[string]map[string]string) (driver.Limits, error) {
	l, err := s.limitsOf(cfg)
	if err != nil || s.cfg.Devices == nil || Type(rec.Type) == TypeVM {
		return l, err
	}
	l.BlockIO, err = s.cfg.Devices.BlockIO(ctx, s.deviceInstance(rec, cfg), devs)
	return l, err
}

// CheckRename answers at once what makes a rename fail, as LXD does before
// it starts the operation: an invalid name is a 400, an unknown instance a
// 404, a name in use (its own too; an empty name means its own) a 409.
func (s *Service) CheckRename(ctx context.Context, name, newName string) error {
	if err := s.allow(ctx, name, canEdit); err != nil {
		return err
	}
	if newName == "" {
		newName = name
	}
	if err := validateName(newName); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.byName[instanceRef(ctx, name)] == nil {
		return notFound(name)
	}
	if nr := instanceRef(ctx, newName); s.byName[nr] != nil || s.reserved[nr] {
		return errdefs.Conflict("name %q is already in use", newName)
	}
	return nil
}

// Rename gives an instance a new name. Its runtime identity does not change,
// so a running instance can be renamed too; the new hostname applies at the
// next start.
func (s *Service) Rename(ctx context.Context, name, newName string) error {
	if err := s.allow(ctx, name, canEdit); err != nil {
		return err
	}
	if err := validateName(newName); err != nil {
		return err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	if name == newName {
		return nil
	}
	if err := s.lockRecord(in, name); err != nil {
		return err
	}
	defer in.cfg.Unlock()
	if _, err := s.reserveName(project.Name(ctx), newName); err != nil {
		return err
	}
	defer s.releaseName(instanceRef(ctx, newName))
	rec, _, _ := s.snapshot(in)
	rec.Name = newName
	if err := s.saveRecord(ctx, in, rec); err != nil {
		return fmt.Errorf("rename %s: %w", name, err)
	}
	if err := s.cfg.Storage.RenameRoot(ctx, rec.ID, newName); err != nil {
		s.log.Warn("rename root volume", "instance", newName, "err", err)
	}
	if s.cfg.Devices != nil {
		// DNS answers with instance names.
		if err := s.cfg.Devices.Renamed(ctx); err != nil {
			s.log.Warn("rename in DNS", "instance", newName, "err", err)
		}
	}
	s.cfg.Events.Lifecycle(ctx, "instance-renamed", instanceEntity(project.Name(ctx), newName), map[string]any{"old_name": name})
	s.log.Info("instance renamed", "instance", newName, "old_name", name)
	return nil
}

package instance

import (
	"context"
	"fmt"
	"strings"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// Update replaces an instance's config, devices, profiles, description and
// ephemeral flag (PUT). pre, when not nil, is checked against the current
// instance under its lock first (an edge's ETag). New limits apply to a
// running instance at once; environment changes at the next start.
func (s *Service) Update(ctx context.Context, name string, put Put, pre Precondition) error {
	in, err := s.lockInstance(name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	if err := s.checkPrecondition(in, pre); err != nil {
		return err
	}
	rec, _, _ := s.snapshot(in)
	next, err := s.applyPut(rec, put)
	if err != nil {
		return err
	}
	return s.commitUpdate(ctx, in, next)
}

// Patch merges config and devices into an instance's own and replaces the
// other fields that are set (PATCH). pre is as for Update.
func (s *Service) Patch(ctx context.Context, name string, patch Patch, pre Precondition) error {
	in, err := s.lockInstance(name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	if err := s.checkPrecondition(in, pre); err != nil {
		return err
	}
	rec, _, _ := s.snapshot(in)
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
	next, err := s.applyPut(rec, put)
	if err != nil {
		return err
	}
	return s.commitUpdate(ctx, in, next)
}

// applyPut validates a PUT body against the current record and returns the
// new record.
func (s *Service) applyPut(rec store.Instance, put Put) (store.Instance, error) {
	if put.Architecture != "" && put.Architecture != rec.Architecture {
		return rec, errdefs.Invalid("architecture cannot be changed (is %q)", rec.Architecture)
	}
	if put.Restore != "" {
		return rec, errdefs.Invalid("restore: snapshots are not supported yet")
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
	if err := validateDevices(put.Devices); err != nil {
		return rec, err
	}
	profiles := put.Profiles
	if profiles == nil {
		profiles = []string{}
	}
	if err := s.checkProfiles(profiles); err != nil {
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
	if err := s.checkWithProfiles(Type(rec.Type), config, profiles); err != nil {
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

// commitUpdate applies changed limits to a running instance, then saves
// the record. If the runtime refuses the limits, nothing is saved.
func (s *Service) commitUpdate(ctx context.Context, in *inst, next store.Instance) error {
	prev, status, _ := s.snapshot(in)
	if isActive(status) {
		before, err := s.expandedLimits(prev)
		if err != nil {
			return err
		}
		after, err := s.expandedLimits(next)
		if err != nil {
			return err
		}
		if before != after {
			if err := s.driverOf(next).UpdateLimits(ctx, runtimeID(next.ID), after); err != nil {
				return fmt.Errorf("apply limits to %s: %w", next.Name, err)
			}
		}
	}
	if err := s.saveRecord(ctx, in, next); err != nil {
		return err
	}
	s.cfg.Events.Lifecycle("instance-updated", instanceEntity(next.Name), nil)
	return nil
}

// expandedLimits reads the limits of a record layered over its profiles.
func (s *Service) expandedLimits(rec store.Instance) (driver.Limits, error) {
	s.mu.RLock()
	views, err := s.profileViewsLocked(rec.Profiles)
	s.mu.RUnlock()
	if err != nil {
		return driver.Limits{}, err
	}
	return s.limitsOf(expandConfig(rec.Config, views))
}

// CheckRename answers at once what makes a rename fail, as LXD does before
// it starts the operation: an invalid name is a 400, an unknown instance a
// 404, a name in use (its own too; an empty name means its own) a 409.
func (s *Service) CheckRename(ctx context.Context, name, newName string) error {
	if newName == "" {
		newName = name
	}
	if err := validateName(newName); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.byName[name] == nil {
		return notFound(name)
	}
	if s.byName[newName] != nil || s.reserved[newName] {
		return errdefs.Conflict("name %q is already in use", newName)
	}
	return nil
}

// Rename gives an instance a new name. Its runtime identity does not change,
// so a running instance can be renamed too; the new hostname applies at the
// next start.
func (s *Service) Rename(ctx context.Context, name, newName string) error {
	if err := validateName(newName); err != nil {
		return err
	}
	in, err := s.lockInstance(name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	if name == newName {
		return nil
	}
	if _, err := s.reserveName(newName); err != nil {
		return err
	}
	defer s.releaseName(newName)
	rec, _, _ := s.snapshot(in)
	rec.Name = newName
	if err := s.saveRecord(ctx, in, rec); err != nil {
		return fmt.Errorf("rename %s: %w", name, err)
	}
	s.cfg.Events.Lifecycle("instance-renamed", instanceEntity(newName), map[string]any{"old_name": name})
	s.log.Info("instance renamed", "instance", newName, "old_name", name)
	return nil
}

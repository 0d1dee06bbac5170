package instance

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/store"
)

// Profiles live with instances because an instance's meaning is its
// profiles' config layered under its own: a profile change must be checked
// against every instance using it, under the same lock as instance reads.

const defaultProfile = "default"

func validateProfileName(name string) error {
	if name == "" || len(name) > 63 || strings.ContainsAny(name, "/ \t\n") || name == "." || name == ".." {
		return errdefs.Invalid("invalid profile name %q", name)
	}
	return nil
}

// Profiles lists profiles, sorted by name.
func (s *Service) Profiles(ctx context.Context) []Profile {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Profile, 0, len(s.profiles))
	for _, n := range sortedNames(s.profiles) {
		out = append(out, s.profileLocked(s.profiles[n]))
	}
	return out
}

// Profile returns one profile.
func (s *Service) Profile(ctx context.Context, name string) (Profile, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.profiles[name]
	if !ok {
		return Profile{}, errdefs.NotFound("profile %q not found", name)
	}
	return s.profileLocked(p), nil
}

// profileLocked renders a profile; the caller holds s.mu.
func (s *Service) profileLocked(p store.Profile) Profile {
	used := []string{}
	for _, n := range sortedNames(s.byName) {
		if slices.Contains(s.byName[n].rec.Profiles, p.Name) {
			used = append(used, n)
		}
	}
	return Profile{
		Name:        p.Name,
		Description: p.Description,
		Config:      cloneMap(p.Config),
		Devices:     cloneDevices(p.Devices),
		UsedBy:      used,
	}
}

func validateProfileContent(put ProfilePut) error {
	for k, v := range put.Config {
		if strings.HasPrefix(k, prefixImage) || strings.HasPrefix(k, prefixVolatile) {
			return errdefs.Invalid("config key %q cannot be set in a profile", k)
		}
		if err := validateKey(k, v); err != nil {
			return err
		}
	}
	return validateDevices(put.Devices)
}

// CreateProfile adds a profile.
func (s *Service) CreateProfile(ctx context.Context, name string, put ProfilePut) error {
	if err := validateProfileName(name); err != nil {
		return err
	}
	if err := validateProfileContent(put); err != nil {
		return err
	}
	// The write lock is held across the database write so two creates of
	// one name cannot both pass the check.
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.profiles[name]; ok {
		return errdefs.Conflict("profile %q already exists", name)
	}
	p := store.Profile{Name: name, Description: put.Description, Config: cloneMap(put.Config), Devices: cloneDevices(put.Devices)}
	if err := s.cfg.DB.CreateProfile(ctx, &p); err != nil {
		return fmt.Errorf("create profile %s: %w", name, err)
	}
	s.profiles[p.Name] = p
	s.cfg.Events.Lifecycle("profile-created", profileEntity(p.Name), nil)
	return nil
}

// UpdateProfile replaces a profile's config, description and devices, and
// applies changed limits to the running instances that use it. pre, when
// not nil, is checked against the current profile under the lock that
// orders profile changes (an edge's ETag).
func (s *Service) UpdateProfile(ctx context.Context, name string, put ProfilePut, pre ProfilePrecondition) error {
	if err := validateProfileContent(put); err != nil {
		return err
	}
	users, err := s.replaceProfile(ctx, name, put, pre)
	if err != nil {
		return err
	}
	s.cfg.Events.Lifecycle("profile-updated", profileEntity(name), nil)
	var failed []string
	for _, n := range users {
		if err := s.reapplyLimits(ctx, n); err != nil {
			s.log.Error("apply profile limits", "profile", name, "instance", n, "err", err)
			failed = append(failed, n)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("profile %q saved, but its limits could not be applied to %s until they restart", name, strings.Join(failed, ", "))
	}
	return nil
}

// replaceProfile stores the new profile content and returns the names of
// the instances using it.
func (s *Service) replaceProfile(ctx context.Context, name string, put ProfilePut, pre ProfilePrecondition) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.profiles[name]
	if !ok {
		return nil, errdefs.NotFound("profile %q not found", name)
	}
	if pre != nil {
		if err := pre(s.profileLocked(p)); err != nil {
			return nil, err
		}
	}
	p.Config, p.Description, p.Devices = cloneMap(put.Config), put.Description, cloneDevices(put.Devices)
	if err := s.cfg.DB.UpdateProfile(ctx, p); err != nil {
		return nil, fmt.Errorf("update profile %s: %w", name, err)
	}
	s.profiles[name] = p
	var users []string
	for _, n := range sortedNames(s.byName) {
		if slices.Contains(s.byName[n].rec.Profiles, name) {
			users = append(users, n)
		}
	}
	return users, nil
}

// reapplyLimits writes an instance's current expanded limits to its
// running cgroup; a stopped instance gets them at its next start.
func (s *Service) reapplyLimits(ctx context.Context, name string) error {
	in, err := s.lockInstance(name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	rec, status, _ := s.snapshot(in)
	if !isActive(status) {
		return nil
	}
	limits, err := s.expandedLimits(rec)
	if err != nil {
		return err
	}
	return s.driverOf(rec).UpdateLimits(ctx, runtimeID(rec.ID), limits)
}

// RenameProfile renames a profile and every instance's reference to it.
func (s *Service) RenameProfile(ctx context.Context, name, newName string) error {
	if name == defaultProfile {
		return errdefs.Invalid("the default profile cannot be renamed")
	}
	if err := validateProfileName(newName); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.profiles[name]
	if !ok {
		return errdefs.NotFound("profile %q not found", name)
	}
	if _, ok := s.profiles[newName]; ok {
		return errdefs.Conflict("profile %q already exists", newName)
	}
	p.Name = newName
	if err := s.cfg.DB.UpdateProfile(ctx, p); err != nil {
		return fmt.Errorf("rename profile %s: %w", name, err)
	}
	delete(s.profiles, name)
	s.profiles[newName] = p
	for _, in := range s.byName {
		for i, pn := range in.rec.Profiles {
			if pn == name {
				rec := cloneRecord(in.rec)
				rec.Profiles[i] = newName
				if err := s.cfg.DB.UpdateInstance(ctx, rec); err != nil {
					return fmt.Errorf("rename profile %s in instance %s: %w", name, rec.Name, err)
				}
				in.rec = rec
			}
		}
	}
	s.cfg.Events.Lifecycle("profile-renamed", profileEntity(newName), map[string]any{"old_name": name})
	return nil
}

// DeleteProfile removes an unused profile.
func (s *Service) DeleteProfile(ctx context.Context, name string) error {
	if name == defaultProfile {
		return errdefs.Invalid("the default profile cannot be deleted")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.profiles[name]
	if !ok {
		return errdefs.NotFound("profile %q not found", name)
	}
	if used := s.profileLocked(p).UsedBy; len(used) > 0 {
		return errdefs.Conflict("profile %q is used by %s", name, strings.Join(used, ", "))
	}
	if err := s.cfg.DB.DeleteProfile(ctx, name); err != nil {
		return fmt.Errorf("delete profile %s: %w", name, err)
	}
	delete(s.profiles, name)
	s.cfg.Events.Lifecycle("profile-deleted", profileEntity(name), nil)
	return nil
}

// ImageUsers lists the instances created from an image, for the image
// store's refusal to delete an image in use.
func (s *Service) ImageUsers(ctx context.Context, fingerprint string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, n := range sortedNames(s.byName) {
		if s.byName[n].rec.Config[keyBaseImage] == fingerprint {
			out = append(out, n)
		}
	}
	return out
}

// profileEntity names a profile in lifecycle events.
func profileEntity(name string) event.Entity {
	return event.Entity{Kind: event.EntityProfile, Name: name}
}

func notFound(name string) error { return errdefs.NotFound("instance %q not found", name) }

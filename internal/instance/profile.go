package instance

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hangar-dev/hangar/internal/auth"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/store"
)

// Profiles live with instances because an instance's meaning is its
// profiles' config layered under its own: a profile change must be checked
// against every instance using it, under the same lock as instance reads.

const defaultProfile = "default"

// validateProfileName refuses what LXD refuses, in LXD's words
// (lxd/profiles.go profilesPost), and what LXD lets through to fail later.
func validateProfileName(name string) error {
	switch {
	case name == "":
		return errdefs.Invalid("No name provided")
	case strings.Contains(name, "/"):
		return errdefs.Invalid("Profile names may not contain slashes")
	case len(name) > 63 || strings.ContainsAny(name, " \t\n") || name == "." || name == "..":
		return errdefs.Invalid("Invalid profile name %q", name)
	}
	return nil
}

// Profiles lists the profiles ctx's project sees, sorted by name.
func (s *Service) Profiles(ctx context.Context) []Profile {
	scope := profileRef(ctx, "").project
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Profile, 0, len(s.profiles))
	var refs []ref
	for _, r := range sortedRefs(s.profiles) {
		if r.project == scope {
			refs = append(refs, r)
		}
	}
	for _, r := range s.viewableProfiles(ctx, refs) {
		out = append(out, s.profileLocked(r, s.profiles[r]))
	}
	return out
}

// Profile returns one profile of those ctx's project sees.
func (s *Service) Profile(ctx context.Context, name string) (Profile, error) {
	if err := s.allowProfile(ctx, name, canView); err != nil {
		return Profile{}, err
	}
	r := profileRef(ctx, name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.profiles[r]
	if !ok {
		return Profile{}, errdefs.NotFound("profile %q not found", name)
	}
	return s.profileLocked(r, p), nil
}

// profileLocked renders profile r; the caller holds s.mu.
func (s *Service) profileLocked(r ref, p store.Profile) Profile {
	used := []Ref{}
	for _, ir := range sortedRefs(s.byName) {
		if usesProfile(s.byName[ir].rec, r) {
			used = append(used, Ref{Project: ir.project, Name: ir.name})
		}
	}
	return Profile{
		Project:     r.project,
		Name:        p.Name,
		Description: p.Description,
		Config:      cloneMap(p.Config),
		Devices:     cloneDevices(p.Devices),
		UsedBy:      used,
	}
}

// validateProfileContent checks a profile's config alone: every key, and
// its limits against the host. checkProfileUsers checks it as each
// instance using it sees it.
func (s *Service) validateProfileContent(ctx context.Context, put ProfilePut) error {
	for _, k := range sortedNames(put.Config) {
		v := put.Config[k]
		if strings.HasPrefix(k, prefixImage) || strings.HasPrefix(k, prefixVolatile) {
			return errdefs.Invalid("config key %q cannot be set in a profile", k)
		}
		if err := validateKey(k, v); err != nil {
			return err
		}
	}
	if err := s.checkHost(put.Config); err != nil {
		return err
	}
	return s.validateDevices(ctx, put.Devices, false)
}

// CreateProfile adds a profile.
func (s *Service) CreateProfile(ctx context.Context, name string, put ProfilePut) error {
	if err := s.allowCreateProfile(ctx); err != nil {
		return err
	}
	if err := validateProfileName(name); err != nil {
		return err
	}
	if err := s.validateProfileContent(ctx, put); err != nil {
		return err
	}
	r := profileRef(ctx, name)
	s.profileMu.Lock()
	defer s.profileMu.Unlock()
	s.mu.RLock()
	_, exists := s.profiles[r]
	s.mu.RUnlock()
	if exists {
		return errdefs.Conflict("profile %q already exists", name)
	}
	p := store.Profile{Project: r.project, Name: name, Description: put.Description, Config: cloneMap(put.Config), Devices: cloneDevices(put.Devices)}
	if err := s.cfg.DB.CreateProfile(ctx, &p); err != nil {
		return fmt.Errorf("create profile %s: %w", name, err)
	}
	s.mu.Lock()
	s.profiles[r] = p
	s.usageGen.Add(1) // profiles feed the cached usage
	s.mu.Unlock()
	s.cfg.Events.Lifecycle(ctx, "profile-created", profileEntity(r.project, p.Name), nil)
	return nil
}

// UpdateProfile replaces a profile's config, description and devices, and
// applies changed limits to the running instances that use it. A change
// that some instance using the profile could not run with is refused, and
// one that the runtime refuses for a running instance is undone (the
// profile and the limits already applied to others), so what is saved is
// what runs. pre, when not nil, is checked against the current profile
// under the lock that orders profile changes (an edge's ETag).
func (s *Service) UpdateProfile(ctx context.Context, name string, put ProfilePut, pre ProfilePrecondition) error {
	if err := s.allowProfile(ctx, name, canEdit); err != nil {
		return err
	}
	if err := s.validateProfileContent(ctx, put); err != nil {
		return err
	}
	r := profileRef(ctx, name)
	s.profileMu.Lock()
	defer s.profileMu.Unlock()
	s.mu.RLock()
	old, ok := s.profiles[r]
	users := s.profileUsersLocked(r)
	var cur Profile
	if ok {
		cur = s.profileLocked(r, old)
	}
	s.mu.RUnlock()
	if !ok {
		return errdefs.NotFound("profile %q not found", name)
	}
	if pre != nil {
		if err := pre(cur); err != nil {
			return err
		}
	}
	// The users cannot change (profileMu), and their op locks keep them
	// from starting or stopping while the profile is checked, saved and
	// applied.
	locked := s.lockAll(users)
	defer func() {
		for _, in := range locked {
			in.cfg.Unlock()
			in.op.Unlock()
		}
	}()
	// And their record locks, after every op lock: no config change of
	// theirs is checked against the old profile while this one is
	// checked against their old config.
	for _, in := range locked {
		in.cfg.Lock()
	}
	next := old
	next.Config, next.Description, next.Devices = cloneMap(put.Config), put.Description, cloneDevices(put.Devices)
	type apply struct {
		in            *inst
		rec           store.Instance
		before, after driver.Limits
	}
	var live []apply
	// Running users whose devices change get them live, as LXD does.
	type devChange struct {
		rec      store.Instance
		cfg      map[string]string
		old, cur Devices
	}
	var devLive []devChange
	// grows is, per project, what the change adds to its users' usage.
	grows := map[string]project.Usage{}
	var resizes []rootResize
	for _, in := range locked {
		rec, status, _ := s.snapshot(in)
		s.mu.RLock()
		views, err := s.profileViewsLocked(profileRefs(rec))
		s.mu.RUnlock()
		if err != nil {
			return err
		}
		before, err := s.limitsWithDisks(ctx, rec, expandConfig(rec.Config, views), expandDevices(rec.Devices, views))
		if err != nil {
			before = driver.Limits{} // a stored value this host refuses: replaced below
		}
		for i := range views {
			if views[i].Name == name {
				views[i] = profileView{Name: name, Config: next.Config, Devices: next.Devices}
			}
		}
		cfg := expandConfig(rec.Config, views)
		if err := s.checkExpanded(Type(rec.Type), rec.Config, cfg); err != nil {
			return fmt.Errorf("profile %q as instance %q would use it: %w", name, rec.Name, err)
		}
		// The instance's project judges it: its restrictions, and its
		// limits on what the change grows (summed per project below).
		pctx := s.inProject(ctx, rec.Project)
		newDevs := expandDevices(rec.Devices, views)
		if err := s.checkProjectRules(pctx, Type(rec.Type), cfg, newDevs); err != nil {
			return fmt.Errorf("profile %q as instance %q would use it: %w", name, rec.Name, err)
		}
		if oldViews, err := s.profileViewsLocked(profileRefs(rec)); err == nil {
			was := s.usageOf(Type(rec.Type), expandConfig(rec.Config, oldViews), expandDevices(rec.Devices, oldViews))
			grows[rec.Project] = grows[rec.Project].Add(s.usageOf(Type(rec.Type), cfg, newDevs)).Add(negate(was))
		}
		after, err := s.limitsWithDisks(ctx, rec, cfg, expandDevices(rec.Devices, views))
		if err != nil {
			return fmt.Errorf("profile %q as instance %q would use it: %w", name, rec.Name, err)
		}
		if isActive(status) && !before.Equal(after) {
			live = append(live, apply{in, rec, before, after})
		}
		oldViews, _ := s.profileViewsLocked(profileRefs(rec))
		resize, err := s.checkRootChange(ctx, rec, expandDevices(rec.Devices, oldViews), expandDevices(rec.Devices, views))
		if err != nil {
			return fmt.Errorf("profile %q as instance %q would use it: %w", name, rec.Name, err)
		}
		if resize != nil {
			resizes = append(resizes, rootResize{rec, status, *resize})
		}
		if s.cfg.Devices != nil && isActive(status) {
			oldViews, _ := s.profileViewsLocked(profileRefs(rec))
			old, cur := expandDevices(rec.Devices, oldViews), expandDevices(rec.Devices, views)
			if !sameDevices(old, cur) {
				devLive = append(devLive, devChange{rec, cfg, old, cur})
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(grows)) {
		if err := s.checkGrowth(ctx, p, project.Usage{}, grows[p]); err != nil {
			return fmt.Errorf("profile %q: %w", name, err)
		}
	}
	if err := s.saveProfile(ctx, next); err != nil {
		return err
	}
	for i, a := range live {
		err := s.driverOf(a.rec).UpdateLimits(ctx, runtimeID(a.rec.ID), a.after)
		if err == nil {
			continue
		}
		// Undo: the instances already changed get their old limits back,
		// and the profile its old content.
		for _, done := range slices.Backward(live[:i]) {
			if uerr := s.driverOf(done.rec).UpdateLimits(context.WithoutCancel(ctx), runtimeID(done.rec.ID), done.before); uerr != nil {
				s.log.Error("restore limits after a refused profile change", "profile", name, "instance", done.rec.Name, "err", uerr)
			}
		}
		if uerr := s.saveProfile(context.WithoutCancel(ctx), old); uerr != nil {
			s.log.Error("restore profile after a refused change", "profile", name, "err", uerr)
		}
		return fmt.Errorf("profile %q not changed: apply its limits to %s: %w", name, a.rec.Name, err)
	}
	for i, c := range devLive {
		err := s.applyDevices(ctx, c.rec, c.cfg, c.old, c.cur)
		if err == nil {
			continue
		}
		// Undo as for limits: devices back, limits back, profile back.
		for _, done := range slices.Backward(devLive[:i+1]) {
			if uerr := s.applyDevices(context.WithoutCancel(ctx), done.rec, done.cfg, done.cur, done.old); uerr != nil {
				s.log.Error("restore devices after a refused profile change", "profile", name, "instance", done.rec.Name, "err", uerr)
			}
		}
		for _, done := range live {
			if uerr := s.driverOf(done.rec).UpdateLimits(context.WithoutCancel(ctx), runtimeID(done.rec.ID), done.before); uerr != nil {
				s.log.Error("restore limits after a refused profile change", "profile", name, "instance", done.rec.Name, "err", uerr)
			}
		}
		if uerr := s.saveProfile(context.WithoutCancel(ctx), old); uerr != nil {
			s.log.Error("restore profile after a refused change", "profile", name, "err", uerr)
		}
		return fmt.Errorf("profile %q not changed: apply its devices to %s: %w", name, c.rec.Name, err)
	}
	var errs []error
	for _, r := range resizes {
		if err := s.applyRootResize(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	s.cfg.Events.Lifecycle(ctx, "profile-updated", profileEntity(r.project, name), nil)
	if len(errs) > 0 {
		return fmt.Errorf("profile %q changed, but: %w", name, errors.Join(errs...))
	}
	return nil
}

// ReloadProfiles reads every profile again from the database: the project
// domain writes profiles of its own (a new project's default profile, a
// project rename moving its profiles).
func (s *Service) ReloadProfiles(ctx context.Context) error {
	s.profileMu.Lock()
	defer s.profileMu.Unlock()
	profiles, err := s.cfg.DB.ListProfiles(ctx)
	if err != nil {
		return fmt.Errorf("reload profiles: %w", err)
	}
	m := make(map[ref]store.Profile, len(profiles))
	for _, p := range profiles {
		p.Project = cmp.Or(p.Project, project.Default)
		m[ref{p.Project, p.Name}] = p
	}
	s.mu.Lock()
	s.profiles = m
	s.usageGen.Add(1) // profiles feed the cached usage
	s.mu.Unlock()
	return nil
}

// sameDevices tells whether two device maps are equal.
func sameDevices(a, b Devices) bool {
	if len(a) != len(b) {
		return false
	}
	for name, d := range a {
		e, ok := b[name]
		if !ok || len(d) != len(e) {
			return false
		}
		for k, v := range d {
			if e[k] != v {
				return false
			}
		}
	}
	return true
}

// saveProfile writes a profile through to the database and memory.
func (s *Service) saveProfile(ctx context.Context, p store.Profile) error {
	if err := s.cfg.DB.UpdateProfile(ctx, p); err != nil {
		return fmt.Errorf("update profile %s: %w", p.Name, err)
	}
	s.mu.Lock()
	s.profiles[ref{p.Project, p.Name}] = p
	s.usageGen.Add(1) // profiles feed the cached usage
	s.mu.Unlock()
	return nil
}

// profileUsersLocked returns the instances using profile r, in project
// and name order; the caller holds s.mu.
func (s *Service) profileUsersLocked(r ref) []*inst {
	var out []*inst
	for _, ir := range sortedRefs(s.byName) {
		if in := s.byName[ir]; usesProfile(in.rec, r) {
			out = append(out, in)
		}
	}
	return out
}

// lockAll takes the op locks of several instances in name order (the one
// order in which several are ever held) and returns those not deleted
// meanwhile.
func (s *Service) lockAll(ins []*inst) []*inst {
	out := make([]*inst, 0, len(ins))
	for _, in := range ins {
		in.op.Lock()
		s.mu.RLock()
		gone := in.deleted
		s.mu.RUnlock()
		if gone {
			in.op.Unlock()
			continue
		}
		out = append(out, in)
	}
	return out
}

// RenameProfile renames a profile and every instance's reference to it.
func (s *Service) RenameProfile(ctx context.Context, name, newName string) error {
	if err := s.allowProfile(ctx, name, canEdit); err != nil {
		return err
	}
	if name == defaultProfile {
		return errdefs.Forbidden(`The "default" profile cannot be renamed`)
	}
	if err := validateProfileName(newName); err != nil {
		return err
	}
	r, nr := profileRef(ctx, name), profileRef(ctx, newName)
	s.profileMu.Lock()
	defer s.profileMu.Unlock()
	s.mu.RLock()
	p, ok := s.profiles[r]
	_, taken := s.profiles[nr]
	users := s.profileUsersLocked(r)
	s.mu.RUnlock()
	if !ok {
		return errdefs.NotFound("profile %q not found", name)
	}
	if taken {
		return errdefs.Conflict("profile %q already exists", newName)
	}
	// The users' records change: their record locks, in name order.
	for _, in := range users {
		in.cfg.Lock()
		defer in.cfg.Unlock()
	}
	p.Name = newName
	if err := s.cfg.DB.UpdateProfile(ctx, p); err != nil {
		return fmt.Errorf("rename profile %s: %w", name, err)
	}
	s.mu.Lock()
	delete(s.profiles, r)
	s.profiles[nr] = p
	s.usageGen.Add(1) // profiles feed the cached usage
	s.mu.Unlock()
	for _, in := range users {
		rec, _, _ := s.snapshot(in)
		for i, pn := range rec.Profiles {
			if pn == name {
				rec.Profiles[i] = newName
			}
		}
		if err := s.saveRecord(ctx, in, rec); err != nil {
			return fmt.Errorf("rename profile %s in instance %s: %w", name, rec.Name, err)
		}
	}
	s.cfg.Events.Lifecycle(ctx, "profile-renamed", profileEntity(nr.project, newName), map[string]any{"old_name": name})
	return nil
}

// DeleteProfile removes an unused profile.
func (s *Service) DeleteProfile(ctx context.Context, name string) error {
	if err := s.allowProfile(ctx, name, canDelete); err != nil {
		return err
	}
	if name == defaultProfile {
		return errdefs.Forbidden(`The "default" profile cannot be deleted`)
	}
	r := profileRef(ctx, name)
	s.profileMu.Lock()
	defer s.profileMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.profiles[r]
	if !ok {
		return errdefs.NotFound("profile %q not found", name)
	}
	if used := s.profileLocked(r, p).UsedBy; len(used) > 0 {
		names := make([]string, len(used))
		for i, u := range used {
			names[i] = u.String()
		}
		return errdefs.Conflict("profile %q is used by %s", name, strings.Join(names, ", "))
	}
	if err := s.cfg.DB.DeleteProfile(ctx, r.project, name); err != nil {
		return fmt.Errorf("delete profile %s: %w", name, err)
	}
	delete(s.profiles, r)
	s.usageGen.Add(1) // profiles feed the cached usage
	s.cfg.Events.Lifecycle(ctx, "profile-deleted", profileEntity(r.project, name), nil)
	return nil
}

// ImageUsers lists the instances of every project created from an image
// that ctx may see. The refusal to delete an image in use asks as the
// daemon (auth.AsDaemon): an instance the caller cannot see still holds
// the image.
func (s *Service) ImageUsers(ctx context.Context, fingerprint string) []Ref {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Ref
	for _, r := range sortedRefs(s.byName) {
		if s.byName[r].rec.Config[keyBaseImage] == fingerprint && s.shows(ctx, auth.Instance(r.project, r.name)) {
			out = append(out, Ref{Project: r.project, Name: r.name})
		}
	}
	return out
}

// profileEntity names a profile in lifecycle events.
func profileEntity(project, name string) event.Entity {
	return event.Entity{Kind: event.EntityProfile, Name: name, Project: project}
}

func notFound(name string) error { return errdefs.NotFound("instance %q not found", name) }

package project

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/store"
)

// Kinds of Object.
const (
	KindInstance = store.ObjectInstance
	KindProfile  = store.ObjectProfile
	KindImage    = store.ObjectImage
	KindVolume   = store.ObjectVolume
	KindNetwork  = store.ObjectNetwork
	KindProject  = store.ObjectProject
)

// Object is one thing a project holds: an instance (Type is its type), a
// profile, an image (Name is its fingerprint), a custom storage volume
// (Pool is its pool), a network, or a child project.
type Object struct {
	Kind, Name, Type, Pool string
}

// Service owns the projects: their records, config rules, nesting, limits
// and what they hold. Writes are serialised, so a check and the write it
// guards see one state of the projects.
type Service struct {
	Store *store.Store
	// Sources report usage for limits; StoreCounts is the usual first.
	Sources []UsageSource
	// HostMemory returns the host's memory in bytes, for a limits.memory
	// percentage; nil reads /proc/meminfo.
	HostMemory func() (int64, error)
	// Changed, when set, hears of every write to projects once it is
	// done: the instance core reloads its profiles, since a new project
	// comes with its own default profile and a rename moves profiles.
	Changed func(ctx context.Context)
	// Events publishes projects' lifecycle events (LXD's
	// project-created, -updated, -renamed, -deleted); nil: none.
	Events Emitter

	mu    sync.Mutex
	cache cache
}

func fromStore(p store.Project) Project {
	if p.Config == nil {
		p.Config = map[string]string{}
	}
	return Project{Name: p.Name, Description: p.Description, Parent: p.Parent, Config: p.Config}
}

// List returns every project, ordered by name.
func (s *Service) List(ctx context.Context) ([]Project, error) {
	rows, err := s.Store.ListProjects(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Project, len(rows))
	for i, r := range rows {
		out[i] = fromStore(r)
	}
	return out, nil
}

// Get returns the project called name.
func (s *Service) Get(ctx context.Context, name string) (Project, error) {
	r, err := s.Store.GetProject(ctx, name)
	if err != nil {
		return Project{}, err
	}
	return fromStore(r), nil
}

// Contents returns what the project called name holds.
func (s *Service) Contents(ctx context.Context, name string) ([]Object, error) {
	rows, err := s.Store.ProjectContents(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]Object, len(rows))
	for i, r := range rows {
		out[i] = Object{Kind: r.Kind, Name: r.Name, Type: r.Type, Pool: r.Pool}
	}
	return out, nil
}

// Create makes a project. Features the config does not mention take LXD's
// defaults (images, profiles and storage volumes on, networks off); with
// features.profiles the project gets its own "default" profile in the
// same transaction. A parent must exist and gets the new project's
// (empty) usage counted against it from then on.
func (s *Service) Create(ctx context.Context, p Project) error {
	if err := ValidateName(p.Name); err != nil {
		return err
	}
	config := maps.Clone(p.Config)
	if config == nil {
		config = map[string]string{}
	}
	for _, f := range Features {
		if _, ok := config[f.Key]; !ok && f.DefaultEnabled {
			config[f.Key] = "true"
		}
	}
	if err := ValidateConfig(config); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Parent != "" {
		if _, err := s.Store.GetProject(ctx, p.Parent); err != nil {
			return fmt.Errorf("parent: %w", err)
		}
	}
	rec := store.Project{Name: p.Name, Description: p.Description, Config: config, Parent: p.Parent}
	defer s.changed(ctx)
	if err := s.Store.CreateProject(ctx, &rec, isTrue(config[FeatureProfiles])); err != nil {
		return err
	}
	s.emit(ctx, "project-created", rec.Name, nil)
	return nil
}

// Put is a project's writable part. Parent nil leaves the parent as it is
// (lxc knows no parent and must not unset it); "" makes it top-level.
type Put struct {
	Description string
	Config      map[string]string
	Parent      *string
}

// Precondition is checked against the current project under the write
// lock; the LXD edge passes its ETag check.
type Precondition func(cur Project) error

// Update replaces a project's description and config, and its parent when
// put says. As LXD: the default project's features are fixed, and a
// feature may only change while the project is empty. Limits may not go
// below what the project's subtree uses; a new parent's limits must hold
// the moved subtree's usage; nesting may not loop.
func (s *Service) Update(ctx context.Context, name string, put Put, pre Precondition) error {
	config := maps.Clone(put.Config)
	if config == nil {
		config = map[string]string{}
	}
	if err := ValidateConfig(config); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.tree(ctx)
	if err != nil {
		return err
	}
	cur, ok := t.byName[name]
	if !ok {
		return errdefs.NotFound("project %q not found", name)
	}
	if pre != nil {
		if err := pre(cur); err != nil {
			return err
		}
	}

	var changed []string
	for _, f := range Features {
		if isTrue(cur.Config[f.Key]) != isTrue(config[f.Key]) {
			changed = append(changed, f.Key)
		}
	}
	profiles := store.ProfileKeep
	if len(changed) > 0 {
		if name == Default {
			return errdefs.Invalid("the features of the default project cannot be changed")
		}
		left, err := s.leftIn(ctx, name, false)
		if err != nil {
			return err
		}
		if left != "" {
			verb := "enabled"
			if isTrue(cur.Config[changed[0]]) {
				verb = "disabled"
			}
			return errdefs.Invalid("project feature %q cannot be %s on a non-empty project (%s)", changed[0], verb, left)
		}
		if slices.Contains(changed, FeatureProfiles) {
			profiles = store.ProfileDeleteDefault
			if isTrue(config[FeatureProfiles]) {
				profiles = store.ProfileCreateDefault
			}
		}
	}

	parent := cur.Parent
	if put.Parent != nil {
		parent = *put.Parent
	}
	if parent != cur.Parent {
		if err := s.checkReparent(ctx, t, name, parent); err != nil {
			return err
		}
	}
	if err := s.checkLimits(ctx, t, name, config); err != nil {
		return err
	}
	rec := store.Project{Name: name, Description: put.Description, Config: config, Parent: parent}
	defer s.changed(ctx)
	if err := s.Store.UpdateProject(ctx, rec, profiles); err != nil {
		return err
	}
	s.emit(ctx, "project-updated", name, nil)
	return nil
}

// checkReparent checks that name may move under parent: it exists, the
// move makes no loop, and the projects that become ancestors can hold the
// moved subtree's usage.
func (s *Service) checkReparent(ctx context.Context, t tree, name, parent string) error {
	if parent == "" {
		return nil
	}
	if name == Default {
		return errdefs.Invalid("the default project cannot have a parent")
	}
	if _, ok := t.byName[parent]; !ok {
		return errdefs.NotFound("parent project %q not found", parent)
	}
	if slices.Contains(t.subtree(name), parent) {
		return errdefs.Invalid("project %q cannot be nested in %q: that would make a loop", name, parent)
	}
	moved, err := s.subtreeUsage(ctx, t, name)
	if err != nil {
		return err
	}
	old := t.ancestors(name)
	var gained []string
	for _, a := range append([]string{parent}, t.ancestors(parent)...) {
		if !slices.Contains(old, a) {
			gained = append(gained, a)
		}
	}
	return s.checkChain(ctx, t, name, gained, moved)
}

// leftIn describes what keeps the project called name from being empty,
// or returns "": anything but its default profile, and with children also
// child projects.
func (s *Service) leftIn(ctx context.Context, name string, children bool) (string, error) {
	objs, err := s.Contents(ctx, name)
	if err != nil {
		return "", err
	}
	byKind := map[string][]string{}
	var kinds []string
	for _, o := range objs {
		if (o.Kind == KindProfile && o.Name == "default") || (o.Kind == KindProject && !children) {
			continue
		}
		n := o.Name
		if o.Kind == KindVolume {
			n = o.Pool + "/" + o.Name
		}
		if _, ok := byKind[o.Kind]; !ok {
			kinds = append(kinds, o.Kind)
		}
		byKind[o.Kind] = append(byKind[o.Kind], n)
	}
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		plural := map[string]string{
			KindInstance: "instances", KindProfile: "profiles", KindImage: "images",
			KindVolume: "storage volumes", KindNetwork: "networks", KindProject: "child projects",
		}[k]
		parts[i] = plural + " " + strings.Join(byKind[k], ", ")
	}
	return strings.Join(parts, "; "), nil
}

// Rename renames a project. As LXD, only an empty one (child projects
// aside: they follow through the schema's ON UPDATE CASCADE), and never
// the default project.
func (s *Service) Rename(ctx context.Context, name, newName string) error {
	if name == Default {
		return errdefs.Forbidden("the default project cannot be renamed")
	}
	if err := ValidateName(newName); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.Store.GetProject(ctx, name); err != nil {
		return err
	}
	left, err := s.leftIn(ctx, name, false)
	if err != nil {
		return err
	}
	if left != "" {
		return errdefs.Conflict("only empty projects can be renamed: project %q has %s", name, left)
	}
	defer s.changed(ctx)
	if err := s.Store.RenameProject(ctx, name, newName); err != nil {
		return err
	}
	s.emit(ctx, "project-renamed", newName, map[string]any{"old_name": name})
	return nil
}

// Delete deletes an empty project (its default profile goes with it). One
// that still holds anything, child projects included, is ErrConflict
// saying what is left; the default project is ErrForbidden, as LXD.
func (s *Service) Delete(ctx context.Context, name string) error {
	if name == Default {
		return errdefs.Forbidden("the default project cannot be deleted")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.Store.GetProject(ctx, name); err != nil {
		return err
	}
	left, err := s.leftIn(ctx, name, true)
	if err != nil {
		return err
	}
	if left != "" {
		return errdefs.Conflict("project %q is not empty: it has %s", name, left)
	}
	defer s.changed(ctx)
	if err := s.Store.DeleteProject(ctx, name); err != nil {
		return err
	}
	s.emit(ctx, "project-deleted", name, nil)
	return nil
}

// cache holds projects Resolve has read, so that resolving a request's
// project costs no query. Every write through the Service empties it; gen
// counts the writes, so that a read that raced with one is not cached.
type cache struct {
	mu    sync.RWMutex
	gen   uint64
	byKey map[string]Project
	// tree is every project, for limits (tree).
	tree   tree
	treeOK bool
}

// Resolve returns the project called name ("" is the default project) for
// a request to act in, from memory when it can.
func (s *Service) Resolve(ctx context.Context, name string) (Project, error) {
	if name == "" {
		name = Default
	}
	s.cache.mu.RLock()
	p, ok := s.cache.byKey[name]
	gen := s.cache.gen
	s.cache.mu.RUnlock()
	if ok {
		return p, nil
	}
	p, err := s.Get(ctx, name)
	if err != nil {
		return Project{}, err
	}
	s.cache.mu.Lock()
	if s.cache.gen == gen {
		if s.cache.byKey == nil {
			s.cache.byKey = map[string]Project{}
		}
		s.cache.byKey[name] = p
	}
	s.cache.mu.Unlock()
	return p, nil
}

// Emitter publishes lifecycle events.
type Emitter interface {
	Lifecycle(ctx context.Context, action string, e event.Entity, meta map[string]any)
}

func (s *Service) emit(ctx context.Context, action, name string, meta map[string]any) {
	if s.Events != nil {
		s.Events.Lifecycle(ctx, action, event.Entity{Kind: event.EntityProject, Name: name}, meta)
	}
}

// changed forgets the cache and tells Changed, after a write.
func (s *Service) changed(ctx context.Context) {
	s.forget()
	if s.Changed != nil {
		s.Changed(context.WithoutCancel(ctx))
	}
}

// forget empties the cache after a write.
func (s *Service) forget() {
	s.cache.mu.Lock()
	s.cache.gen++
	s.cache.byKey = nil
	s.cache.tree, s.cache.treeOK = tree{}, false
	s.cache.mu.Unlock()
}

package auth

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// GroupStore persists groups. The store implements it; nil keeps groups
// in memory only (unit tests).
type GroupStore interface {
	AuthGroups(ctx context.Context) ([]Group, error)
	CreateAuthGroup(ctx context.Context, g Group) error
	UpdateAuthGroup(ctx context.Context, name string, g Group) error
	RenameAuthGroup(ctx context.Context, name, newName string) error
	DeleteAuthGroup(ctx context.Context, name string) error
}

// Authorizer answers "may the identity in ctx do e on o?". It holds an
// immutable snapshot of the groups, swapped whole on every change, so a
// check takes no lock and allocates nothing.
type Authorizer struct {
	store GroupStore
	mu    sync.Mutex // serialises group writes and the snapshot swap
	snap  atomic.Pointer[snapshot]
}

type snapshot struct {
	groups  []Group             // sorted by name
	byName  map[string]*grants  // compiled
	members map[Member][]string // identity -> group names
}

// New returns an Authorizer over store (nil: in memory). Call Load before
// use when store holds groups.
func New(store GroupStore) *Authorizer {
	a := &Authorizer{store: store}
	a.swap(nil)
	return a
}

// Load reads the groups from the store.
func (a *Authorizer) Load(ctx context.Context) error {
	if a.store == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	gs, err := a.store.AuthGroups(ctx)
	if err != nil {
		return fmt.Errorf("load auth groups: %w", err)
	}
	a.swap(gs)
	return nil
}

func (a *Authorizer) swap(gs []Group) {
	s := &snapshot{groups: gs, byName: map[string]*grants{}, members: map[Member][]string{}}
	slices.SortFunc(s.groups, func(x, y Group) int { return cmpString(x.Name, y.Name) })
	for _, g := range gs {
		s.byName[g.Name] = compile(g.Permissions)
		for _, m := range g.Members {
			s.members[m] = append(s.members[m], g.Name)
		}
	}
	a.snap.Store(s)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Allowed tells whether the identity in ctx holds e on o.
func (a *Authorizer) Allowed(ctx context.Context, o Object, e Entitlement) bool {
	return a.allowed(From(ctx), o, e)
}

// CanView tells whether the identity in ctx may see o: the filter for
// lists.
func (a *Authorizer) CanView(ctx context.Context, o Object) bool {
	return a.allowed(From(ctx), o, CanView)
}

// Check returns nil when the identity in ctx holds e on o. A denial is
// errdefs.Forbidden, except that an object the identity may not even see,
// inside a project it may not see, is errdefs.NotFound with the words a
// missing object gets: whether another project's instance exists is not
// the caller's business.
func (a *Authorizer) Check(ctx context.Context, o Object, e Entitlement) error {
	id := From(ctx)
	if a.allowed(id, o, e) {
		return nil
	}
	if o.Project != "" && !a.allowed(id, Project(o.Project), CanView) && !a.allowed(id, o, CanView) {
		if o.Type == TypeProject {
			return errdefs.NotFound("project %q not found", o.Name)
		}
		return errdefs.NotFound("%s %q not found", noun(o.Type), o.Name)
	}
	return errdefs.Forbidden("not authorized: %s on %s needs %s", who(id), o, e)
}

func noun(t ObjectType) string {
	switch t {
	case TypeStorageVolume:
		return "storage volume"
	case TypeStoragePool:
		return "storage pool"
	}
	return string(t)
}

func who(id Identity) string {
	if id.Name != "" {
		return fmt.Sprintf("%s %q", id.Kind, id.Name)
	}
	return string(id.Kind)
}

// allowed is the decision: the identity's built-in rules, then its groups.
func (a *Authorizer) allowed(id Identity, o Object, e Entitlement) bool {
	switch builtin(id) {
	case roleAdmin:
		return true
	case roleNone:
		return false
	case roleMetrics:
		if o.Type == TypeServer && e == CanViewMetrics {
			return true
		}
		// Metrics certificates hold nothing else, whatever their groups.
		return false
	case roleRestricted:
		if restrictedAllows(id, o, e) {
			return true
		}
	case roleViewer:
		if viewing(e) && restrictedAllows(id, o, e) {
			return true
		}
	case roleGroups:
		// Nothing built in: only the groups below.
	}
	s := a.snap.Load()
	for _, g := range id.Groups {
		if gr := s.byName[g]; gr != nil && gr.allows(o, e) {
			return true
		}
	}
	if m, ok := MemberOf(id); ok {
		for _, g := range s.members[m] {
			if s.byName[g].allows(o, e) {
				return true
			}
		}
	}
	return false
}

type role int

const (
	roleNone       role = iota // untrusted: nothing, not even its groups
	roleAdmin                  // the unix socket, the daemon, unrestricted clients
	roleRestricted             // operator on its projects, plus its groups
	roleMetrics                // can_view_metrics only
	roleViewer                 // viewer on its projects, plus its groups
	roleGroups                 // nothing of its own, only its groups (local users)
)

// builtin is what an identity holds by what it is. Certificates and
// tokens share the rules: a "metrics" type reads metrics only, a
// restricted one is confined to its projects, any other is admin as an
// unrestricted LXD client is. A bearer token's Type is its role
// (trust.TokenIdentity): "admin" over the whole server (unrestricted),
// "operator" is operator on its project (the restricted certificate's
// rule), "viewer" is viewer on its project (the same rule, can_view*
// only). A local user (KindUser) holds nothing by being one: only what
// the groups naming it grant. Any other kind holds nothing at all.
func builtin(id Identity) role {
	switch id.Kind {
	case KindUnix, KindInternal:
		return roleAdmin
	case KindUser:
		return roleGroups
	case KindCertificate, KindToken:
		switch {
		case id.Type == "metrics":
			return roleMetrics
		case id.Kind == KindToken && id.Type == "viewer":
			return roleViewer
		case id.Restricted:
			return roleRestricted
		}
		return roleAdmin
	}
	return roleNone
}

// restrictedAllows is LXD 5.0's restricted client: every project-level
// permission on each of its projects (lxd/daemon.go gives "view",
// "manage-containers", "manage-images", "manage-networks",
// "manage-profiles", "manage-storage-volumes", "operate-containers", not
// "manage-projects"), and what LXD serves to any trusted client: GET /1.0,
// the storage pools (allowAuthenticated in lxd/storage_pools.go) and the
// networks of the default project, which projects without
// features.networks use.
func restrictedAllows(id Identity, o Object, e Entitlement) bool {
	switch o.Type {
	case TypeServer:
		return e == CanView
	case TypeStoragePool:
		return e == CanView
	case TypeNetwork, TypeImage, TypeProfile:
		// Projects without features.networks (images, profiles) use the
		// default project's: a restricted client must see them to launch.
		if o.Project == "default" && e == CanView {
			return true
		}
	}
	if o.Project == "" || !slices.Contains(id.Projects, o.Project) {
		return false
	}
	return o.Type != TypeProject || (e != CanEdit && e != CanDelete)
}

// Groups lists the groups; it needs viewer on the server.
func (a *Authorizer) Groups(ctx context.Context) ([]Group, error) {
	if err := a.Check(ctx, Server(), Viewer); err != nil {
		return nil, err
	}
	return slices.Clone(a.snap.Load().groups), nil
}

// Group returns one group; it needs viewer on the server.
func (a *Authorizer) Group(ctx context.Context, name string) (Group, error) {
	if err := a.Check(ctx, Server(), Viewer); err != nil {
		return Group{}, err
	}
	for _, g := range a.snap.Load().groups {
		if g.Name == name {
			return g, nil
		}
	}
	return Group{}, errdefs.NotFound("group %q not found", name)
}

// CreateGroup adds a group. Managing groups hands out rights, so it needs
// admin.
func (a *Authorizer) CreateGroup(ctx context.Context, g Group) error {
	if err := g.Validate(); err != nil {
		return err
	}
	return a.write(ctx, func(gs []Group) ([]Group, error) {
		if index(gs, g.Name) >= 0 {
			return nil, errdefs.Conflict("group %q already exists", g.Name)
		}
		if a.store != nil {
			if err := a.store.CreateAuthGroup(ctx, g); err != nil {
				return nil, err
			}
		}
		return append(gs, g), nil
	})
}

// UpdateGroup replaces a group's description, permissions and members.
func (a *Authorizer) UpdateGroup(ctx context.Context, name string, g Group) error {
	g.Name = name
	if err := g.Validate(); err != nil {
		return err
	}
	return a.write(ctx, func(gs []Group) ([]Group, error) {
		i := index(gs, name)
		if i < 0 {
			return nil, errdefs.NotFound("group %q not found", name)
		}
		if a.store != nil {
			if err := a.store.UpdateAuthGroup(ctx, name, g); err != nil {
				return nil, err
			}
		}
		gs[i] = g
		return gs, nil
	})
}

// RenameGroup renames a group; its members and permissions follow.
func (a *Authorizer) RenameGroup(ctx context.Context, name, newName string) error {
	if err := (Group{Name: newName}).Validate(); err != nil {
		return err
	}
	return a.write(ctx, func(gs []Group) ([]Group, error) {
		i := index(gs, name)
		if i < 0 {
			return nil, errdefs.NotFound("group %q not found", name)
		}
		if index(gs, newName) >= 0 {
			return nil, errdefs.Conflict("group %q already exists", newName)
		}
		if a.store != nil {
			if err := a.store.RenameAuthGroup(ctx, name, newName); err != nil {
				return nil, err
			}
		}
		gs[i].Name = newName
		return gs, nil
	})
}

// DeleteGroup removes a group.
func (a *Authorizer) DeleteGroup(ctx context.Context, name string) error {
	return a.write(ctx, func(gs []Group) ([]Group, error) {
		i := index(gs, name)
		if i < 0 {
			return nil, errdefs.NotFound("group %q not found", name)
		}
		if a.store != nil {
			if err := a.store.DeleteAuthGroup(ctx, name); err != nil {
				return nil, err
			}
		}
		return slices.Delete(gs, i, i+1), nil
	})
}

// RemoveMember takes m out of every group. persist, when not nil, runs
// first under the group write lock and must make the removal durable
// (with whatever goes with it, such as deleting a user in the same
// transaction): no group change can slip in between it and the new
// snapshot and write m back. Like every group change it needs admin.
func (a *Authorizer) RemoveMember(ctx context.Context, m Member, persist func() error) error {
	return a.write(ctx, func(gs []Group) ([]Group, error) {
		if persist != nil {
			if err := persist(); err != nil {
				return nil, err
			}
		}
		for i := range gs {
			// Clone: the old snapshot shares the slice and is still read.
			gs[i].Members = slices.DeleteFunc(slices.Clone(gs[i].Members), func(x Member) bool { return x == m })
		}
		return gs, nil
	})
}

// write checks admin, applies fn to a copy of the groups (fn persists)
// and swaps in the result.
func (a *Authorizer) write(ctx context.Context, fn func([]Group) ([]Group, error)) error {
	if err := a.Check(ctx, Server(), Admin); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	gs, err := fn(slices.Clone(a.snap.Load().groups))
	if err != nil {
		return err
	}
	a.swap(gs)
	return nil
}

func index(gs []Group, name string) int {
	return slices.IndexFunc(gs, func(g Group) bool { return g.Name == name })
}

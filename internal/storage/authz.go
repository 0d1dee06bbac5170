package storage

import (
	"context"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/project"
)

// Authorizer is what the manager asks before it acts: every exported
// method an edge calls starts with one check, so no dialect can forget
// it. internal/auth implements it; a nil Authorizer allows everything and
// is for this package's unit tests only (the daemon always wires one).
type Authorizer interface {
	Check(ctx context.Context, o auth.Object, e auth.Entitlement) error
	CanView(ctx context.Context, o auth.Object) bool
}

// allowPool checks e on the pool name.
func (m *Manager) allowPool(ctx context.Context, name string, e auth.Entitlement) error {
	if m.cfg.Authorizer == nil {
		return nil
	}
	return m.cfg.Authorizer.Check(ctx, auth.StoragePool(name), e)
}

// allowServer checks e on the server: making a pool is the host's
// business, as in LXD (an admin's).
func (m *Manager) allowServer(ctx context.Context, e auth.Entitlement) error {
	if m.cfg.Authorizer == nil {
		return nil
	}
	return m.cfg.Authorizer.Check(ctx, auth.Server(), e)
}

// volumeObject is the volume of type typ called name on pool as ctx's
// project sees it: in the project that holds that type (volumeProject).
func volumeObject(ctx context.Context, pool, typ, name string) auth.Object {
	return auth.StorageVolume(volumeProject(ctx, typ), pool, typ, name)
}

// allowVolume checks e on a volume.
func (m *Manager) allowVolume(ctx context.Context, pool, typ, name string, e auth.Entitlement) error {
	if m.cfg.Authorizer == nil {
		return nil
	}
	return m.cfg.Authorizer.Check(ctx, volumeObject(ctx, pool, typ, name), e)
}

// allowCreateVolume checks that ctx may create custom volumes where its
// project keeps them.
func (m *Manager) allowCreateVolume(ctx context.Context) error {
	if m.cfg.Authorizer == nil {
		return nil
	}
	return m.cfg.Authorizer.Check(ctx, auth.Project(project.From(ctx).Scope(project.FeatureStorageVolumes)), auth.CanCreateStorageVolumes)
}

// canViewPool tells whether ctx may see the pool name (Pools filters).
func (m *Manager) canViewPool(ctx context.Context, name string) bool {
	return m.cfg.Authorizer == nil || m.cfg.Authorizer.CanView(ctx, auth.StoragePool(name))
}

// canViewVolume tells whether ctx may see a volume (Volumes filters).
func (m *Manager) canViewVolume(ctx context.Context, v Volume) bool {
	return m.cfg.Authorizer == nil || m.cfg.Authorizer.CanView(ctx, auth.StorageVolume(v.Project, v.Pool, v.Type, v.Name))
}

// users returns every user of a pool or custom volume (whoever asks: a
// user the caller cannot see still holds it) and those the caller may
// see, for a refusal that names only the latter.
func (m *Manager) users(ctx context.Context, pool, volume string) (all, shown []string, err error) {
	all, err = m.cfg.Users(auth.AsDaemon(ctx), pool, volume)
	if err != nil || len(all) == 0 {
		return all, all, err
	}
	shown, err = m.cfg.Users(ctx, pool, volume)
	return all, shown, err
}

// inUse names the users of a refusal: those shown, the others counted,
// so another project's names do not leak.
func inUse(users, shown []string) string {
	hidden := len(users) - len(shown)
	switch {
	case hidden <= 0:
		return strings.Join(users, ", ")
	case len(shown) == 0:
		return strconv.Itoa(hidden) + " object(s) in projects you cannot see"
	}
	return strings.Join(shown, ", ") + " and " + strconv.Itoa(hidden) + " object(s) in projects you cannot see"
}

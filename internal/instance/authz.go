package instance

import (
	"context"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/project"
)

// Authorizer is what the service asks before it acts: every exported
// method an edge calls starts with one check, so no dialect can forget
// it. internal/auth implements it; a nil Authorizer allows everything and
// is for this package's unit tests only (the daemon always wires one).
type Authorizer interface {
	Check(ctx context.Context, o auth.Object, e auth.Entitlement) error
	CanView(ctx context.Context, o auth.Object) bool
}

// The entitlements the checks use, named here so that the files with the
// checks need no import of their own.
const (
	canView            = auth.CanView
	canEdit            = auth.CanEdit
	canDelete          = auth.CanDelete
	canExec            = auth.CanExec
	canUpdateState     = auth.CanUpdateState
	canManageSnapshots = auth.CanManageSnapshots
	canManageBackups   = auth.CanManageBackups
)

// allow checks e on the instance name in ctx's project.
func (s *Service) allow(ctx context.Context, name string, e auth.Entitlement) error {
	if s.cfg.Authorizer == nil {
		return nil
	}
	return s.cfg.Authorizer.Check(ctx, auth.Instance(project.Name(ctx), name), e)
}

// allowCreate checks that ctx may create (and so delete) instances in its
// project.
func (s *Service) allowCreate(ctx context.Context) error {
	if s.cfg.Authorizer == nil {
		return nil
	}
	return s.cfg.Authorizer.Check(ctx, auth.Project(project.Name(ctx)), auth.CanManageInstances)
}

// profileObject is the profile name as ctx's project sees it: in the
// project that holds its profiles.
func profileObject(ctx context.Context, name string) auth.Object {
	return auth.Profile(project.From(ctx).Scope(project.FeatureProfiles), name)
}

// allowProfile checks e on the profile name.
func (s *Service) allowProfile(ctx context.Context, name string, e auth.Entitlement) error {
	if s.cfg.Authorizer == nil {
		return nil
	}
	return s.cfg.Authorizer.Check(ctx, profileObject(ctx, name), e)
}

// allowCreateProfile checks that ctx may create profiles where its
// project keeps them.
func (s *Service) allowCreateProfile(ctx context.Context) error {
	if s.cfg.Authorizer == nil {
		return nil
	}
	return s.cfg.Authorizer.Check(ctx, auth.Project(project.From(ctx).Scope(project.FeatureProfiles)), auth.CanCreateProfiles)
}

// viewable keeps the instances ctx may see, in order.
func (s *Service) viewable(ctx context.Context, refs []ref) []ref {
	if s.cfg.Authorizer == nil {
		return refs
	}
	out := refs[:0]
	for _, r := range refs {
		if s.cfg.Authorizer.CanView(ctx, auth.Instance(r.project, r.name)) {
			out = append(out, r)
		}
	}
	return out
}

// viewableProfiles keeps the profiles ctx may see, in order.
func (s *Service) viewableProfiles(ctx context.Context, refs []ref) []ref {
	if s.cfg.Authorizer == nil {
		return refs
	}
	out := refs[:0]
	for _, r := range refs {
		if s.cfg.Authorizer.CanView(ctx, auth.Profile(r.project, r.name)) {
			out = append(out, r)
		}
	}
	return out
}

// shows tells whether a used_by list may name o to ctx: what the caller
// may not see is left out of what it is shown. A refusal because
// something is in use asks as the daemon (auth.AsDaemon), which sees all.
func (s *Service) shows(ctx context.Context, o auth.Object) bool {
	return s.cfg.Authorizer == nil || s.cfg.Authorizer.CanView(ctx, o)
}

package image

import (
	"context"
	"errors"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Authorizer is what the service asks before it acts: every exported
// method an edge calls starts with one check, so no dialect can forget
// it. internal/auth implements it; without one (SetAuthorizer not
// called) everything is allowed, for this package's tests only (the
// daemon always sets one).
type Authorizer interface {
	Check(ctx context.Context, o auth.Object, e auth.Entitlement) error
	CanView(ctx context.Context, o auth.Object) bool
}

// SetAuthorizer sets the checks of the methods the edges call.
func (s *Service) SetAuthorizer(a Authorizer) { s.authz = a }

// publicFor tells whether ctx may read rec because it is public: as in
// LXD any trusted client reads a public image, but a metrics certificate
// reads only metrics and an untrusted client reads nothing here.
func publicFor(ctx context.Context, rec Record) bool {
	id := auth.From(ctx)
	return rec.Public && id.Trusted() && id.Type != "metrics"
}

// allowImage checks e on rec as the scope project holds it.
func (s *Service) allowImage(ctx context.Context, rec Record, e auth.Entitlement) error {
	if s.authz == nil || e == auth.CanView && publicFor(ctx, rec) {
		return nil
	}
	return s.authz.Check(ctx, auth.Image(scope(ctx), rec.Fingerprint), e)
}

// canView tells whether ctx may see rec (lists filter).
func (s *Service) canView(ctx context.Context, rec Record) bool {
	return s.authz == nil || publicFor(ctx, rec) || s.authz.CanView(ctx, auth.Image(scope(ctx), rec.Fingerprint))
}

// allowCreate checks that ctx may add images (and aliases) where its
// project keeps them.
func (s *Service) allowCreate(ctx context.Context) error {
	if s.authz == nil {
		return nil
	}
	return s.authz.Check(ctx, auth.Project(scope(ctx)), auth.CanCreateImages)
}

// missing is the answer to a lookup of fpOrPrefix that failed with err: a
// caller the check denies gets the check's answer (403, or 404 with the
// same words in a project it may not see), so every request reaches a
// check and a denied caller cannot tell a missing image from a hidden one.
func (s *Service) missing(ctx context.Context, fpOrPrefix string, e auth.Entitlement, err error) error {
	if s.authz == nil || !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	if cerr := s.authz.Check(ctx, auth.Image(scope(ctx), fpOrPrefix), e); cerr != nil {
		return cerr
	}
	return err
}

// checked reads an image of the scope project and checks e on it.
func (s *Service) checked(ctx context.Context, fpOrPrefix string, e auth.Entitlement) (Record, error) {
	rec, err := s.record(ctx, fpOrPrefix)
	if err != nil {
		return Record{}, s.missing(ctx, fpOrPrefix, e, err)
	}
	if err := s.allowImage(ctx, rec, e); err != nil {
		return Record{}, err
	}
	return rec, nil
}

// allowAlias checks that ctx may read alias a: it may read its target.
func (s *Service) allowAlias(ctx context.Context, a AliasRecord) error {
	if s.authz == nil || s.authz.CanView(ctx, auth.Image(scope(ctx), a.Target)) {
		return nil
	}
	if rec, err := s.record(ctx, a.Target); err == nil && publicFor(ctx, rec) {
		return nil
	}
	err := s.authz.Check(ctx, auth.Image(scope(ctx), a.Target), auth.CanView)
	if errors.Is(err, errdefs.ErrNotFound) {
		// Not the target's fingerprint: the alias is what was asked for.
		return errdefs.NotFound("alias %q not found", a.Name)
	}
	return err
}

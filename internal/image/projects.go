package image

import (
	"context"
	"errors"
	"slices"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/project"
)

// scope is the project whose images a request sees: its own with
// features.images, else the default project's.
func scope(ctx context.Context) string {
	return project.From(ctx).Scope(project.FeatureImages)
}

// imageSource names an image in lifecycle events, in the project that
// holds it for ctx.
func imageSource(ctx context.Context, fp string) event.Entity {
	return event.Entity{Kind: event.EntityImage, Name: fp, Project: scope(ctx)}
}

// stored reads an image by fingerprint or prefix whichever project holds
// it: for the daemon's own use of an image already resolved in a project
// (unpacking it into a pool, booting its disk, collecting blobs), never to
// answer a request about images.
func (s *Service) stored(ctx context.Context, fpOrPrefix string) (Record, error) {
	return s.lookup(ctx, "", fpOrPrefix)
}

// holdLocked makes the scope project hold the stored image rec, which
// another project holds: an import, pull or publish of bytes already
// stored adds no second copy. A project already holding it is
// ErrConflict, as an import of an image present. The caller holds
// commitMu.
func (s *Service) holdLocked(ctx context.Context, rec Record, alias string) (Record, []AliasRecord, error) {
	p := scope(ctx)
	if slices.Contains(rec.Projects, p) {
		return Record{}, nil, errdefs.Conflict("image already exists")
	}
	if err := s.db.AddImageProject(ctx, rec.Fingerprint, p); err != nil {
		return Record{}, nil, err
	}
	rec.Projects = append(rec.Projects, p)
	var aliases []AliasRecord
	if alias != "" {
		a := AliasRecord{Project: p, Name: alias, Target: rec.Fingerprint, Type: rec.Type}
		if err := s.db.CreateAlias(ctx, a); err != nil {
			if derr := s.db.RemoveImageProject(context.WithoutCancel(ctx), rec.Fingerprint, p); derr != nil {
				s.log.Error("cannot undo image membership", "fingerprint", rec.Fingerprint, "project", p, "error", derr)
			}
			return Record{}, nil, err
		}
		aliases = append(aliases, a)
	}
	s.log.Info("stored image added to a project", "fingerprint", rec.Fingerprint, "project", p)
	s.em.Lifecycle(ctx, EventImageCreated, imageSource(ctx, rec.Fingerprint), map[string]any{"type": rec.Type})
	if alias != "" {
		s.em.Lifecycle(ctx, EventImageAliasCreated, aliasSource(ctx, alias), map[string]any{"target": rec.Fingerprint})
	}
	return rec, aliases, nil
}

// ensureHeld makes the scope project hold the stored image fp if it does
// not yet (a pull that found the image stored, or that another project's
// pull fetched).
func (s *Service) ensureHeld(ctx context.Context, fp string) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	rec, err := s.stored(ctx, fp)
	if err != nil {
		return err
	}
	if slices.Contains(rec.Projects, scope(ctx)) {
		return nil
	}
	_, _, err = s.holdLocked(ctx, rec, "")
	return err
}

// existing returns the stored image fp, in whichever project, or ok false.
func (s *Service) existing(ctx context.Context, fp string) (rec Record, ok bool, err error) {
	rec, err = s.db.GetImage(ctx, "", fp)
	switch {
	case err == nil:
		return rec, true, nil
	case errors.Is(err, errdefs.ErrNotFound):
		return Record{}, false, nil
	}
	return Record{}, false, err
}

package image

import (
	"context"
	"errors"
	"github.com/hangar-dev/hangar/internal/auth"
	"sort"
	"unicode"
	"unicode/utf8"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
)

const maxAliasName = 255

// aliasSource names an image alias of the scope project in lifecycle
// events.
func aliasSource(ctx context.Context, name string) event.Entity {
	return event.Entity{Kind: event.EntityImageAlias, Name: name, Project: scope(ctx)}
}

// validAliasName checks an alias name: non-empty, at most 255 bytes of
// UTF-8, no "/", whitespace or control characters, not "." or "..".
func validAliasName(name string) error {
	switch {
	case name == "":
		return errdefs.Invalid("alias name must not be empty")
	case len(name) > maxAliasName:
		return errdefs.Invalid("alias name must be at most %d bytes", maxAliasName)
	case !utf8.ValidString(name):
		return errdefs.Invalid("alias name %q is not valid UTF-8", name)
	case name == "." || name == "..":
		return errdefs.Invalid("alias name %q is not allowed", name)
	}
	for _, r := range name {
		if r == '/' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return errdefs.Invalid("alias name %q must not contain slashes, spaces or control characters", name)
		}
	}
	return nil
}

// aliasFree returns a conflict if the scope project has the alias.
func (s *Service) aliasFree(ctx context.Context, name string) error {
	_, err := s.db.GetAlias(ctx, scope(ctx), name)
	switch {
	case err == nil:
		return errdefs.Conflict("alias %q already exists", name)
	case errors.Is(err, errdefs.ErrNotFound):
		return nil
	default:
		return err
	}
}

// aliasTarget resolves an alias target (a fingerprint or unique prefix) to
// its image, which the scope project must hold.
func (s *Service) aliasTarget(ctx context.Context, target string) (Record, error) {
	if target == "" {
		return Record{}, errdefs.Invalid("alias target must not be empty")
	}
	return s.record(ctx, target)
}

// CreateAlias creates an alias in the scope project for one of its
// images. Its type is the image's.
func (s *Service) CreateAlias(ctx context.Context, req api.ImageAliasesPost) error {
	if err := s.allowCreate(ctx); err != nil {
		return err
	}
	if err := validAliasName(req.Name); err != nil {
		return err
	}
	rec, err := s.aliasTarget(ctx, req.Target)
	if err != nil {
		return err
	}
	if err := s.aliasFree(ctx, req.Name); err != nil {
		return err
	}
	a := AliasRecord{Project: scope(ctx), Name: req.Name, Description: req.Description, Target: rec.Fingerprint, Type: rec.Type}
	if err := s.db.CreateAlias(ctx, a); err != nil {
		return err
	}
	s.em.Lifecycle(ctx, EventImageAliasCreated, aliasSource(ctx, a.Name), map[string]any{"target": a.Target})
	return nil
}

// GetAlias returns an alias.
func (s *Service) GetAlias(ctx context.Context, name string) (api.ImageAliasesEntry, error) {
	a, err := s.alias(ctx, name)
	if err != nil {
		return api.ImageAliasesEntry{}, s.missing(ctx, name, auth.CanView, err)
	}
	if err := s.allowAlias(ctx, a); err != nil {
		return api.ImageAliasesEntry{}, err
	}
	return aliasToAPI(a), nil
}

// ListAliases returns the scope project's aliases, by name.
func (s *Service) ListAliases(ctx context.Context) ([]api.ImageAliasesEntry, error) {
	all, err := s.db.ListAliases(ctx, scope(ctx))
	if err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	out := make([]api.ImageAliasesEntry, 0, len(all))
	for _, a := range all {
		if s.allowAlias(ctx, a) == nil {
			out = append(out, aliasToAPI(a))
		}
	}
	return out, nil
}

// UpdateAlias replaces an alias's description and target.
func (s *Service) UpdateAlias(ctx context.Context, name string, put api.ImageAliasesEntryPut) error {
	if err := s.allowCreate(ctx); err != nil {
		return err
	}
	a, err := s.alias(ctx, name)
	if err != nil {
		return err
	}
	rec, err := s.aliasTarget(ctx, put.Target)
	if err != nil {
		return err
	}
	a.Description, a.Target, a.Type = put.Description, rec.Fingerprint, rec.Type
	if err := s.db.UpdateAlias(ctx, a); err != nil {
		return err
	}
	s.em.Lifecycle(ctx, EventImageAliasUpdated, aliasSource(ctx, name), map[string]any{"target": a.Target})
	return nil
}

// RenameAlias renames an alias; the new name must be free.
func (s *Service) RenameAlias(ctx context.Context, oldName, newName string) error {
	if err := s.allowCreate(ctx); err != nil {
		return err
	}
	if err := validAliasName(newName); err != nil {
		return err
	}
	if _, err := s.alias(ctx, oldName); err != nil {
		return err
	}
	if oldName == newName {
		return nil
	}
	if err := s.aliasFree(ctx, newName); err != nil {
		return err
	}
	if err := s.db.RenameAlias(ctx, scope(ctx), oldName, newName); err != nil {
		return err
	}
	s.em.Lifecycle(ctx, EventImageAliasRenamed, aliasSource(ctx, newName), map[string]any{"old_name": oldName})
	return nil
}

// DeleteAlias deletes an alias; the image stays.
func (s *Service) DeleteAlias(ctx context.Context, name string) error {
	if err := s.allowCreate(ctx); err != nil {
		return err
	}
	if _, err := s.alias(ctx, name); err != nil {
		return err
	}
	if err := s.db.DeleteAlias(ctx, scope(ctx), name); err != nil {
		return err
	}
	s.em.Lifecycle(ctx, EventImageAliasDeleted, aliasSource(ctx, name), nil)
	return nil
}

// alias reads an alias of the scope project, with a uniform not-found
// message.
func (s *Service) alias(ctx context.Context, name string) (AliasRecord, error) {
	a, err := s.db.GetAlias(ctx, scope(ctx), name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return AliasRecord{}, errdefs.NotFound("alias %q not found", name)
	}
	return a, err
}

func aliasToAPI(a AliasRecord) api.ImageAliasesEntry {
	return api.ImageAliasesEntry{
		ImageAliasesEntryPut: api.ImageAliasesEntryPut{Description: a.Description, Target: a.Target},
		Name:                 a.Name,
		Type:                 a.Type,
	}
}

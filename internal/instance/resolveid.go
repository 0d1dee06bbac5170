package instance

import (
	"context"
	"strings"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// ResolveID returns the name of the instance that idOrName names in ctx's
// project: the one whose id it is, else the one whose name it is, else
// the one whose id starts with it when exactly one does (as the seed's
// clients shorten ids). Instances ctx may not see are not candidates, so
// a resolve tells nothing about them. Anything else is ErrNotFound.
func (s *Service) ResolveID(ctx context.Context, idOrName string) (string, error) {
	if idOrName == "" {
		return "", errdefs.NotFound("instance \"\" not found")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	refs := s.visibleLocked(ctx)
	for _, r := range refs {
		if s.byName[r].rec.UID == idOrName {
			return r.name, nil
		}
	}
	for _, r := range refs {
		if r.name == idOrName {
			return r.name, nil
		}
	}
	var match []string
	for _, r := range refs {
		if strings.HasPrefix(s.byName[r].rec.UID, idOrName) {
			match = append(match, r.name)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return "", notFound(idOrName)
	}
	return "", errdefs.NotFound("instance %q not found: the id prefix matches %d instances", idOrName, len(match))
}

// FindID returns the instance whose id is id, in whatever project holds
// it: for dialects whose ids name an instance without a project (seed
// 003's VMID). An instance ctx may not see is ErrNotFound, as a missing
// one.
func (s *Service) FindID(ctx context.Context, id string) (Ref, error) {
	if id != "" {
		s.mu.RLock()
		var found *ref
		for r, in := range s.byName {
			if in.rec.UID == id {
				r := r
				found = &r
				break
			}
		}
		s.mu.RUnlock()
		if found != nil && (s.cfg.Authorizer == nil || s.cfg.Authorizer.CanView(ctx, auth.Instance(found.project, found.name))) {
			return Ref{Project: found.project, Name: found.name}, nil
		}
	}
	return Ref{}, errdefs.NotFound("instance %q not found", id)
}

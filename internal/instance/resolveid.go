package instance

import (
	"context"
	"strings"

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

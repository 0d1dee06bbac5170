package image

import (
	"context"
	"errors"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// PruneCached deletes the cached images (copies of remote ones,
// Record.Cached) unused for maxAge or longer: since their last use, or their
// upload if never used. An image an instance uses is kept whatever its age:
// inUse, asked just before each delete, names an image's instances (of
// every project). An expired image goes from every project holding it. maxAge <= 0 prunes nothing, as LXD's 0 days. It returns
// the fingerprints deleted; a failure to delete one does not stop the others.
func (s *Service) PruneCached(ctx context.Context, maxAge time.Duration, inUse func(fp string) []string) ([]string, error) {
	if maxAge <= 0 {
		return nil, nil
	}
	recs, err := s.db.ListImages(ctx, "")
	if err != nil {
		return nil, err
	}
	now := s.now()
	var deleted []string
	var errs []error
	for _, rec := range recs {
		if !rec.Cached {
			continue
		}
		last := rec.LastUsedAt
		if last.IsZero() {
			last = rec.UploadedAt
		}
		if now.Sub(last) < maxAge {
			continue
		}
		users := inUse(rec.Fingerprint)
		if len(users) > 0 {
			s.log.Debug("cached image expired but in use; kept", "fingerprint", rec.Fingerprint, "instances", users)
			continue
		}
		err := s.purge(ctx, rec.Fingerprint)
		switch {
		case err == nil:
			s.log.Info("expired cached image deleted", "fingerprint", rec.Fingerprint, "last_used", last)
			deleted = append(deleted, rec.Fingerprint)
		case errors.Is(err, errdefs.ErrNotFound), errors.Is(err, errdefs.ErrConflict):
		default:
			errs = append(errs, err)
		}
	}
	return deleted, errors.Join(errs...)
}

// purge deletes a stored image from every project, with its files.
func (s *Service) purge(ctx context.Context, fp string) error {
	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	rec, err := s.stored(ctx, fp)
	if err != nil {
		return err
	}
	return s.purgeLocked(ctx, rec)
}

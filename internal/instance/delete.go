package instance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// Delete removes a stopped instance: its runtime files, its writable layer
// and its record.
func (s *Service) Delete(ctx context.Context, name string) error {
	if err := s.allow(ctx, name, canDelete); err != nil {
		return err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	return s.deleteLocked(ctx, in, false)
}

// CheckDelete says whether Delete would be refused now (running, or
// protected), so an API can answer at once instead of with a failed
// operation. Delete checks again under the instance's lock.
func (s *Service) CheckDelete(ctx context.Context, name string) error {
	if err := s.allow(ctx, name, canDelete); err != nil {
		return err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return err
	}
	_, status, _ := s.snapshot(in)
	return s.deletable(instanceRef(ctx, name), status)
}

func (s *Service) deletable(r ref, status Status) error {
	// LXD's words and kind (a 400, not a 409): clients match on them.
	if isActive(status) || status == StatusStarting {
		return errdefs.Invalid("Instance is running")
	}
	if protected, _ := parseBool(s.expandedKey(r, "security.protection.delete")); protected {
		return errdefs.Conflict("instance %q is protected from deletion (security.protection.delete)", r.name)
	}
	return nil
}

// deleteLocked deletes an instance whose op lock the caller holds. rollback
// skips the checks that guard a user's data: it undoes a create that
// failed.
func (s *Service) deleteLocked(ctx context.Context, in *inst, rollback bool) error {
	// The record lock too, for the whole: a config change (protection
	// from deletion above all) is before the check or finds no instance.
	in.cfg.Lock()
	defer in.cfg.Unlock()
	rec, status, _ := s.snapshot(in)
	if !rollback {
		if err := s.deletable(ref{rec.Project, rec.Name}, status); err != nil {
			return err
		}
	}
	if err := s.driverOf(rec).Delete(ctx, runtimeID(rec.ID)); err != nil {
		return fmt.Errorf("delete %s: %w", rec.Name, err)
	}
	if err := s.deleteRoot(ctx, rec); err != nil {
		return fmt.Errorf("delete %s: %w", rec.Name, err)
	}
	if rec.Stateful && !isActive(status) {
		// In standby: its kept proxy rules and pinned neighbours go
		// (while its devices can still be expanded).
		s.stopDevices(ctx, rec, false)
	}
	if err := s.cfg.DB.DeleteInstance(ctx, rec.ID); err != nil {
		return fmt.Errorf("delete %s: %w", rec.Name, err)
	}
	// The store released the addresses with the record; the DNS servers
	// learn of it here.
	s.releaseRemovedNICs(ctx, rec, store.Instance{ID: rec.ID, Name: rec.Name, Type: rec.Type})
	if s.cfg.StateDir != "" {
		if err := os.RemoveAll(filepath.Join(s.cfg.StateDir, runtimeID(rec.ID))); err != nil {
			s.log.Warn("remove snapshot states", "instance", rec.Name, "err", err)
		}
	}
	s.removeBackupFiles(rec)
	if err := s.removeLogs(rec.ID); err != nil {
		// The record is gone: leftover logs are only disk space.
		s.log.Warn("remove instance logs", "instance", rec.Name, "err", err)
	}
	s.mu.Lock()
	in.deleted = true
	delete(s.byName, ref{rec.Project, rec.Name})
	delete(s.byRuntime, runtimeID(rec.ID))
	s.mu.Unlock()
	s.cfg.Events.Lifecycle(ctx, "instance-deleted", instanceEntity(rec.Project, rec.Name), nil)
	s.log.Info("instance deleted", "instance", rec.Name)
	return nil
}

// expandedKey reads one key of an instance's expanded config.
func (s *Service) expandedKey(r ref, key string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in, ok := s.byName[r]
	if !ok {
		return ""
	}
	if v, ok := in.rec.Config[key]; ok {
		return v
	}
	views, _ := s.profileViewsLocked(profileRefs(in.rec))
	return expandConfig(nil, views)[key]
}

package instance

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/snapshotpolicy"
)

// Instance keys of scheduled snapshots (LXD's); their rules are package
// snapshotpolicy's.
const (
	keySnapshotsSchedule        = "snapshots.schedule"
	keySnapshotsScheduleStopped = "snapshots.schedule.stopped"
	keySnapshotsPattern         = "snapshots.pattern"
	keySnapshotsExpiry          = "snapshots.expiry"
)

func validateSnapshotSchedule(v string) error {
	_, err := snapshotpolicy.ParseSchedule(v, "")
	return err
}

func validateSnapshotExpiry(v string) error {
	_, err := snapshotpolicy.ParseExpiry(v)
	return err
}

// snapshotExpiry is when a snapshot taken at now expires under the
// instance's snapshots.expiry; zero is never.
func snapshotExpiry(spec string, now time.Time) (time.Time, error) {
	e, err := snapshotpolicy.ParseExpiry(spec)
	if err != nil {
		return time.Time{}, err
	}
	return e.After(now), nil
}

// SnapshotTick takes the scheduled snapshots due at tk (of running
// instances, and of stopped ones with snapshots.schedule.stopped) and
// deletes the instance snapshots whose expiry has passed. The daemon
// calls it from snapshotpolicy.Run, once a minute.
func (s *Service) SnapshotTick(ctx context.Context, tk snapshotpolicy.Tick) {
	s.mu.RLock()
	ins := make([]*inst, 0, len(s.byName))
	for _, in := range s.byName {
		ins = append(ins, in)
	}
	s.mu.RUnlock()
	for _, in := range ins {
		rec, status, _ := s.snapshot(in)
		cfg, _, err := s.expanded(rec)
		if err != nil || cfg[keySnapshotsSchedule] == "" {
			continue
		}
		sched, err := snapshotpolicy.ParseSchedule(cfg[keySnapshotsSchedule], strconv.FormatInt(rec.ID, 10))
		if err != nil {
			continue
		}
		if every := sched.Every(); every > 0 {
			s.runEvery(ctx, in, every, tk.Minute)
			continue
		}
		if !tk.Due(sched) {
			continue
		}
		if stopped, _ := parseBool(cfg[keySnapshotsScheduleStopped]); !isActive(status) && !stopped {
			continue
		}
		pctx := s.inProject(ctx, rec.Project)
		if _, err := s.CreateSnapshot(pctx, rec.Name, SnapshotRequest{scheduled: true}); err != nil {
			if !errors.Is(err, errdefs.ErrNotFound) {
				s.log.Error("scheduled snapshot", "instance", rec.Name, "err", err)
			}
			continue
		}
		s.retainScheduled(pctx, rec, cfg)
	}
	s.pruneSnapshots(ctx, tk.Minute)
}

// pruneSnapshots deletes the instance snapshots that expired by now.
func (s *Service) pruneSnapshots(ctx context.Context, now time.Time) {
	rows, err := s.cfg.DB.ListInstanceSnapshots(ctx, 0)
	if err != nil {
		s.log.Error("list snapshots to prune", "err", err)
		return
	}
	for _, sn := range rows {
		if sn.ExpiresAt.IsZero() || sn.ExpiresAt.After(now) {
			continue
		}
		s.mu.RLock()
		in := s.byRuntime[runtimeID(sn.InstanceID)]
		var name, proj string
		if in != nil && !in.deleted {
			name, proj = in.rec.Name, in.rec.Project
		}
		s.mu.RUnlock()
		if name == "" {
			continue
		}
		if err := s.DeleteSnapshot(s.inProject(ctx, proj), name, sn.Name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			s.log.Error("delete expired snapshot", "instance", name, "snapshot", sn.Name, "err", err)
			continue
		}
		s.log.Info("expired snapshot deleted", "instance", name, "snapshot", sn.Name, "expired_at", sn.ExpiresAt)
	}
}

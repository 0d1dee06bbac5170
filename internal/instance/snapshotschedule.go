package instance

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/snapshotpolicy"
	"github.com/hangar-dev/hangar/internal/store"
)

// A snapshot schedule (the instances API's SnapshotSchedule) is LXD's
// scheduled snapshots written in the instance's config, so that both APIs
// see and drive one schedule:
//
//	interval     snapshots.schedule = "@every INTERVAL" (a Go duration,
//	             at least a minute; the schedule runs stopped instances
//	             too: snapshots.schedule.stopped = true)
//	max_age      snapshots.expiry, in seconds ("3600S"): LXD's key, so,
//	             as in LXD, it applies too to manual snapshots taken
//	             without an expiry of their own
//	max_count    snapshots.schedule.max_count: past it, the oldest
//	             snapshots the schedule took go (not manual ones)
//	name_prefix  snapshots.pattern = PREFIX-{{ creation_date|date:... }}
//	             (UTC, 20060102-150405: a name is at most 47+16
//	             bytes; two in one second get "-1" appended)
//	metadata     snapshots.schedule.meta.KEY; each scheduled snapshot
//	             carries it as its own Metadata
//	times, last  volatile.snapshots.schedule.{created_at, updated_at,
//	             next_run_at, last_run_at, last_error, last_snapshot}
//
// The daemon's minute tick (SnapshotTick) runs it: a run is due at the
// first tick at or after next_run_at, and the next one is an interval
// later (skipped intervals are not made up). A running or frozen VM gets
// a stateful snapshot (Kind Standby); anything else a disk-only one
// (Kind Stopped). A schedule set through LXD as a cron spec is not one of
// these: SnapshotSchedule answers 404 for it.

// SnapshotSchedule is an instance's periodic snapshots and their
// retention.
type SnapshotSchedule struct {
	Interval             time.Duration
	MaxCount             int
	MaxAge               time.Duration
	NamePrefix           string
	Metadata             map[string]string
	CreatedAt, UpdatedAt time.Time
	NextRunAt, LastRunAt time.Time
	LastError            string
	LastSnapshot         string
}

const (
	keySnapshotsScheduleMaxCount = "snapshots.schedule.max_count"
	prefixScheduleMeta           = "snapshots.schedule.meta."
	prefixScheduleVolatile       = "volatile.snapshots.schedule."
	keyScheduleCreated           = prefixScheduleVolatile + "created_at"
	keyScheduleUpdated           = prefixScheduleVolatile + "updated_at"
	keyScheduleNext              = prefixScheduleVolatile + "next_run_at"
	keyScheduleLastRun           = prefixScheduleVolatile + "last_run_at"
	keyScheduleLastError         = prefixScheduleVolatile + "last_error"
	keyScheduleLastSnapshot      = prefixScheduleVolatile + "last_snapshot"

	// MaxNamePrefix bounds a schedule's name prefix (the instances API's
	// limit): with the 16-byte date it stays a short name.
	MaxNamePrefix = 47
	// scheduleDate is the suffix of a scheduled snapshot's name.
	scheduleDate = `{{ creation_date|date:"20060102-150405" }}`
	everyPrefix  = "@every "
)

// SnapshotSchedule returns an instance's snapshot schedule; 404 when it
// has none (or only a cron one set through LXD).
func (s *Service) SnapshotSchedule(ctx context.Context, name string) (SnapshotSchedule, error) {
	if err := s.allow(ctx, name, canView); err != nil {
		return SnapshotSchedule{}, err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return SnapshotSchedule{}, err
	}
	rec, _, _ := s.snapshot(in)
	sch, ok := scheduleOf(rec.Config)
	if !ok {
		return SnapshotSchedule{}, errdefs.NotFound("instance %q has no snapshot schedule", name)
	}
	return sch, nil
}

// SetSnapshotSchedule creates or replaces an instance's snapshot schedule
// from sch's Interval, MaxCount, MaxAge, NamePrefix and Metadata (the
// times are the service's). A new interval starts the cadence over (the
// next run is an interval from now); changing only the rest keeps it.
func (s *Service) SetSnapshotSchedule(ctx context.Context, name string, sch SnapshotSchedule) (SnapshotSchedule, error) {
	if err := s.allow(ctx, name, canManageSnapshots); err != nil {
		return SnapshotSchedule{}, err
	}
	if err := validateSchedule(sch); err != nil {
		return SnapshotSchedule{}, err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return SnapshotSchedule{}, err
	}
	defer in.op.Unlock()
	now := nowUTC()
	var out SnapshotSchedule
	err = s.updateRecord(ctx, in, func(r *store.Instance) {
		old, had := scheduleOf(r.Config)
		clearSchedule(r.Config, false)
		c := r.Config
		c[keySnapshotsSchedule] = everyPrefix + sch.Interval.String()
		c[keySnapshotsScheduleStopped] = "true"
		if sch.MaxCount > 0 {
			c[keySnapshotsScheduleMaxCount] = strconv.Itoa(sch.MaxCount)
		}
		if sch.MaxAge > 0 {
			c[keySnapshotsExpiry] = strconv.FormatInt(int64(sch.MaxAge/time.Second), 10) + "S"
		}
		c[keySnapshotsPattern] = scheduleDate
		if sch.NamePrefix != "" {
			c[keySnapshotsPattern] = sch.NamePrefix + "-" + scheduleDate
		}
		for k, v := range sch.Metadata {
			c[prefixScheduleMeta+k] = v
		}
		created, next := now, now.Add(sch.Interval)
		if had {
			created = old.CreatedAt
			if old.Interval == sch.Interval && !old.NextRunAt.IsZero() {
				next = old.NextRunAt
			}
			setTime(c, keyScheduleLastRun, old.LastRunAt)
			setString(c, keyScheduleLastError, old.LastError)
			setString(c, keyScheduleLastSnapshot, old.LastSnapshot)
		}
		setTime(c, keyScheduleCreated, created)
		setTime(c, keyScheduleUpdated, now)
		setTime(c, keyScheduleNext, next)
		out, _ = scheduleOf(c)
	})
	if err != nil {
		return SnapshotSchedule{}, fmt.Errorf("set the snapshot schedule of %s: %w", name, err)
	}
	s.cfg.Events.Lifecycle(ctx, "instance-updated", instanceEntity(project.Name(ctx), name), nil)
	s.log.Info("snapshot schedule set", "instance", name, "interval", sch.Interval, "max_count", sch.MaxCount, "max_age", sch.MaxAge, "next_run_at", out.NextRunAt)
	return out, nil
}

// DeleteSnapshotSchedule removes an instance's snapshot schedule (every
// key SetSnapshotSchedule writes); the snapshots it took stay.
func (s *Service) DeleteSnapshotSchedule(ctx context.Context, name string) error {
	if err := s.allow(ctx, name, canManageSnapshots); err != nil {
		return err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	rec, _, _ := s.snapshot(in)
	if _, ok := scheduleOf(rec.Config); !ok {
		return errdefs.NotFound("instance %q has no snapshot schedule", name)
	}
	if err := s.updateRecord(ctx, in, func(r *store.Instance) { clearSchedule(r.Config, true) }); err != nil {
		return fmt.Errorf("delete the snapshot schedule of %s: %w", name, err)
	}
	s.cfg.Events.Lifecycle(ctx, "instance-updated", instanceEntity(project.Name(ctx), name), nil)
	s.log.Info("snapshot schedule deleted", "instance", name)
	return nil
}

func validateSchedule(sch SnapshotSchedule) error {
	switch {
	case sch.Interval < snapshotpolicy.MinEvery:
		return errdefs.Invalid("interval: %s is shorter than the minimum, %s", sch.Interval, snapshotpolicy.MinEvery)
	case sch.MaxCount < 0:
		return errdefs.Invalid("retention.max_count: %d is negative", sch.MaxCount)
	case sch.MaxAge < 0:
		return errdefs.Invalid("retention.max_age: %s is negative", sch.MaxAge)
	case sch.MaxCount == 0 && sch.MaxAge == 0:
		return errdefs.Invalid("retention: set max_count or max_age (or both)")
	case sch.MaxAge > 0 && sch.MaxAge < time.Second:
		return errdefs.Invalid("retention.max_age: %s is shorter than a second", sch.MaxAge)
	case len(sch.NamePrefix) > MaxNamePrefix:
		return errdefs.Invalid("name_prefix: %d bytes, at most %d", len(sch.NamePrefix), MaxNamePrefix)
	case strings.ContainsAny(sch.NamePrefix, "%{}"):
		return errdefs.Invalid("name_prefix %q: %%, { and } are not allowed", sch.NamePrefix)
	}
	if sch.NamePrefix != "" {
		if err := snapshotpolicy.ValidateName(sch.NamePrefix); err != nil {
			return errdefs.Invalid("name_prefix: %v", err)
		}
	}
	if _, err := snapshotpolicy.ParseExpiry(strconv.FormatInt(int64(sch.MaxAge/time.Second), 10) + "S"); err != nil {
		return errdefs.Invalid("retention.max_age: %v", err)
	}
	if err := validateMetadata(sch.Metadata); err != nil {
		return err
	}
	return nil
}

// scheduleOf reads the schedule SetSnapshotSchedule wrote into cfg.
func scheduleOf(cfg map[string]string) (SnapshotSchedule, bool) {
	spec, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(cfg[keySnapshotsSchedule])), everyPrefix)
	if !ok {
		return SnapshotSchedule{}, false
	}
	every, err := time.ParseDuration(strings.TrimSpace(spec))
	if err != nil {
		return SnapshotSchedule{}, false
	}
	sch := SnapshotSchedule{Interval: every, Metadata: map[string]string{},
		LastError: cfg[keyScheduleLastError], LastSnapshot: cfg[keyScheduleLastSnapshot]}
	sch.MaxCount, _ = strconv.Atoi(cfg[keySnapshotsScheduleMaxCount])
	if e, err := snapshotpolicy.ParseExpiry(cfg[keySnapshotsExpiry]); err == nil && !e.IsZero() {
		// Calendar units (set through LXD) are read from now.
		now := nowUTC()
		sch.MaxAge = e.After(now).Sub(now)
	}
	if p, ok := strings.CutSuffix(cfg[keySnapshotsPattern], scheduleDate); ok {
		sch.NamePrefix = strings.TrimSuffix(p, "-")
	}
	for k, v := range cfg {
		if key, ok := strings.CutPrefix(k, prefixScheduleMeta); ok {
			sch.Metadata[key] = v
		}
	}
	sch.CreatedAt = getTime(cfg, keyScheduleCreated)
	sch.UpdatedAt = getTime(cfg, keyScheduleUpdated)
	sch.NextRunAt = getTime(cfg, keyScheduleNext)
	sch.LastRunAt = getTime(cfg, keyScheduleLastRun)
	return sch, true
}

// clearSchedule removes a schedule's keys; all also the times and last
// run (a delete), which a replacement keeps.
func clearSchedule(cfg map[string]string, all bool) {
	for k := range cfg {
		switch {
		case k == keySnapshotsSchedule, k == keySnapshotsScheduleStopped, k == keySnapshotsScheduleMaxCount,
			k == keySnapshotsExpiry, k == keySnapshotsPattern, strings.HasPrefix(k, prefixScheduleMeta):
			delete(cfg, k)
		case strings.HasPrefix(k, prefixScheduleVolatile):
			if all || k == keyScheduleNext {
				delete(cfg, k)
			}
		}
	}
}

func setTime(cfg map[string]string, k string, t time.Time) {
	if t.IsZero() {
		delete(cfg, k)
		return
	}
	cfg[k] = t.UTC().Format(time.RFC3339Nano)
}

func setString(cfg map[string]string, k, v string) {
	if v == "" {
		delete(cfg, k)
		return
	}
	cfg[k] = v
}

func getTime(cfg map[string]string, k string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, cfg[k])
	if err != nil {
		return time.Time{}
	}
	return t
}

// runEvery runs an "@every" schedule of an instance when due at now: a
// snapshot (stateful for a running or frozen VM), its outcome in the
// volatile keys, then the count retention.
func (s *Service) runEvery(ctx context.Context, in *inst, every time.Duration, now time.Time) {
	rec, status, _ := s.snapshot(in)
	spec := rec.Config[keySnapshotsSchedule]
	next := getTime(rec.Config, keyScheduleNext)
	if next.IsZero() {
		// Set through LXD: the first run is an interval from now.
		if err := s.updateRecord(ctx, in, func(r *store.Instance) {
			if r.Config[keySnapshotsSchedule] == spec {
				setTime(r.Config, keyScheduleNext, now.Add(every))
			}
		}); err != nil {
			s.log.Error("snapshot schedule: record the next run", "instance", rec.Name, "err", err)
		}
		return
	}
	if now.Before(next) {
		return
	}
	cfg, _, err := s.expanded(rec)
	if err != nil {
		return
	}
	if stopped, _ := parseBool(cfg[keySnapshotsScheduleStopped]); !isActive(status) && !stopped {
		return
	}
	req := SnapshotRequest{scheduled: true, Metadata: map[string]string{},
		Stateful: Type(rec.Type) == TypeVM && isActive(status)}
	for k, v := range cfg {
		if key, ok := strings.CutPrefix(k, prefixScheduleMeta); ok {
			req.Metadata[key] = v
		}
	}
	pctx := s.inProject(ctx, rec.Project)
	sn, err := s.CreateSnapshot(pctx, rec.Name, req)
	if errors.Is(err, errdefs.ErrNotFound) {
		return // deleted meanwhile
	}
	for !next.After(now) {
		next = next.Add(every)
	}
	if uerr := s.updateRecord(ctx, in, func(r *store.Instance) {
		if r.Config[keySnapshotsSchedule] != spec {
			return // replaced meanwhile: its own cadence holds
		}
		setTime(r.Config, keyScheduleLastRun, now)
		setTime(r.Config, keyScheduleNext, next)
		if err != nil {
			r.Config[keyScheduleLastError] = err.Error()
		} else {
			delete(r.Config, keyScheduleLastError)
			r.Config[keyScheduleLastSnapshot] = sn.Name
		}
	}); uerr != nil {
		s.log.Error("snapshot schedule: record the run", "instance", rec.Name, "err", uerr)
	}
	if err != nil {
		s.log.Error("scheduled snapshot", "instance", rec.Name, "err", err)
		return
	}
	s.retainScheduled(pctx, rec, cfg)
}

// retainScheduled deletes the oldest scheduled snapshots of rec beyond
// its snapshots.schedule.max_count (0: no count limit).
func (s *Service) retainScheduled(ctx context.Context, rec store.Instance, cfg map[string]string) {
	limit, _ := strconv.Atoi(cfg[keySnapshotsScheduleMaxCount])
	if limit <= 0 {
		return
	}
	rows, err := s.cfg.DB.ListInstanceSnapshots(ctx, rec.ID)
	if err != nil {
		s.log.Error("snapshot retention: list", "instance", rec.Name, "err", err)
		return
	}
	var sched []store.InstanceSnapshot
	for _, r := range rows {
		if isScheduledSnapshot(r.Config) {
			sched = append(sched, r)
		}
	}
	sort.SliceStable(sched, func(i, j int) bool {
		if !sched[i].CreatedAt.Equal(sched[j].CreatedAt) {
			return sched[i].CreatedAt.Before(sched[j].CreatedAt)
		}
		return sched[i].ID < sched[j].ID
	})
	for len(sched) > limit {
		victim := sched[0]
		sched = sched[1:]
		if err := s.DeleteSnapshot(ctx, rec.Name, victim.Name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			s.log.Error("snapshot retention: delete", "instance", rec.Name, "snapshot", victim.Name, "err", err)
			continue
		}
		s.log.Info("scheduled snapshot deleted by max_count", "instance", rec.Name, "snapshot", victim.Name, "max_count", limit)
	}
}

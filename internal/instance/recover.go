package instance

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/store"
)

// HandleExit is the driver's ExitHandler: PID 1 of an instance ended. An
// exit that a Stop asked for is that Stop's business; any other is an
// instance that shut down by itself, and is recorded with its exit code
// when the code is known.
func (s *Service) HandleExit(ctx context.Context, e driver.Exit) {
	s.mu.RLock()
	in, ok := s.byRuntime[e.ID]
	s.mu.RUnlock()
	if !ok {
		return
	}
	// Wait for whatever operation is running on the instance (a Start that
	// has not recorded the pid yet, or the Stop that caused this exit).
	in.op.Lock()
	defer in.op.Unlock()
	s.mu.Lock()
	stale := in.deleted || in.pid != e.Pid || !isActive(in.status)
	// The exit of a run a Stop ended: the stop is recorded, the
	// workload's end is added to it.
	stopped := stale && !in.deleted && in.status == StatusStopped && e.Pid != 0 && in.stoppedPid == e.Pid
	if stopped {
		in.stoppedPid = 0
	}
	if !stale {
		in.status, in.pid = StatusStopped, 0
		if e.Error != "" {
			in.status = StatusError
		}
	}
	rec := cloneRecord(in.rec)
	s.mu.Unlock()
	if stopped && e.Known {
		if err := s.updateRecord(ctx, in, func(r *store.Instance) { recordExit(r, e) }); err != nil {
			s.log.Error("record exit", "instance", rec.Name, "err", err)
		}
		return
	}
	if stale {
		return
	}
	s.stopDevices(ctx, rec, false)
	evCtx := map[string]any{}
	if e.Known {
		evCtx["exit_code"] = e.Code
		evCtx["exit_message"] = exitMessage(e)
	}
	stoppedAt := stamp(time.Now())
	err := s.updateRecord(ctx, in, func(r *store.Instance) {
		r.Config[keyLastPower] = powerStopped
		r.Config[keyLastStop] = stoppedAt
		recordExit(r, e)
	})
	if err != nil {
		s.log.Error("record exit", "instance", rec.Name, "err", err)
	}
	if e.Error != "" {
		evCtx["error"] = e.Error
		s.log.Error("instance crashed", "instance", rec.Name, "reason", e.Error)
	}
	s.log.Info("instance exited", "instance", rec.Name, "exit_code", e.Code, "known", e.Known)
	s.cfg.Events.Lifecycle(ctx, "instance-shutdown", instanceEntity(rec.Project, rec.Name), evCtx)
	if rec.Ephemeral {
		if err := s.deleteLocked(ctx, in, false); err != nil {
			s.log.Error("delete ephemeral instance", "instance", rec.Name, "err", err)
		}
	}
}

// Recover reconciles every instance with what the runtime really runs,
// after a daemon start. Running instances are reattached; instances the
// runtime no longer has are stopped, with no exit code (it was never seen).
// It returns the instances to start (boot.autostart), in start order.
func (s *Service) Recover(ctx context.Context) ([]Ref, error) {
	live, err := s.recoverDrivers(ctx)
	if err != nil {
		return nil, err
	}
	type candidate struct {
		ref      Ref
		priority int
	}
	var toStart []candidate
	s.mu.Lock()
	changed := []*inst{}
	for _, in := range s.byName {
		st, running := live[runtimeID(in.rec.ID)]
		cfg := s.expandedLocked(in)
		switch {
		case running:
			in.pid = st.Pid
			in.status = StatusRunning
			switch st.Status {
			case driver.StatusFrozen:
				in.status = StatusFrozen
			case driver.StatusError:
				in.status = StatusError
			}
			if in.rec.Config[keyLastPower] != powerRunning {
				changed = append(changed, in)
			}
		default:
			in.status, in.pid = StatusStopped, 0
			wasRunning := in.rec.Config[keyLastPower] == powerRunning
			if wasRunning {
				s.log.Warn("instance vanished while the daemon was down", "instance", in.rec.Name)
				changed = append(changed, in)
			}
			// LXD's rule: boot.autostart=true always starts; unset restores
			// the last state; false never starts.
			auto, set := cfg["boot.autostart"]
			on, _ := parseBool(auto)
			if on || (!set && wasRunning) {
				prio, _ := strconv.Atoi(cfg["boot.autostart.priority"])
				toStart = append(toStart, candidate{Ref{in.rec.Project, in.rec.Name}, prio})
			}
		}
	}
	s.mu.Unlock()
	s.recoverDevices(ctx)
	s.recoverRoots(ctx)
	s.reconcileSnapshots(ctx)
	s.reconcileBackups(ctx)
	for _, in := range changed {
		_, status, _ := s.snapshot(in)
		err := s.updateRecord(ctx, in, func(r *store.Instance) {
			if isActive(status) {
				r.Config[keyLastPower] = powerRunning
			} else {
				r.Config[keyLastPower] = powerStopped
				clearExit(r)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	sort.SliceStable(toStart, func(i, j int) bool { return toStart[i].priority > toStart[j].priority })
	refs := make([]Ref, len(toStart))
	for i, c := range toStart {
		refs[i] = c.ref
	}
	return refs, nil
}

// Autostart starts the given instances in order, honouring
// boot.autostart.delay, in the background.
func (s *Service) Autostart(ctx context.Context, refs []Ref) {
	if len(refs) == 0 {
		return
	}
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		for _, r := range refs {
			if err := s.Start(s.inProject(ctx, r.Project), r.Name); err != nil {
				s.log.Error("autostart", "instance", r.Name, "project", r.Project, "err", err)
				continue
			}
			delay, _ := strconv.Atoi(s.expandedKey(ref{r.Project, r.Name}, "boot.autostart.delay"))
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(delay) * time.Second):
			}
		}
	}()
}

// StopAll stops every running instance, highest boot.stop.priority first,
// each with its boot.host_shutdown_timeout (default 30 s). Used by a daemon
// shutdown with --stop-instances. Each keeps volatile.last_state.power
// RUNNING, so the next daemon start starts it again, as LXD's shutdown does.
func (s *Service) StopAll(ctx context.Context) {
	type candidate struct {
		ref      ref
		priority int
		timeout  time.Duration
	}
	var list []candidate
	s.mu.RLock()
	for _, in := range s.byName {
		if !isActive(in.status) {
			continue
		}
		cfg := s.expandedLocked(in)
		prio, _ := strconv.Atoi(cfg["boot.stop.priority"])
		timeout := time.Duration(defaultStopGrace) * time.Second
		if v, err := strconv.Atoi(cfg["boot.host_shutdown_timeout"]); err == nil {
			timeout = time.Duration(v) * time.Second
		}
		list = append(list, candidate{in.ref(), prio, timeout})
	}
	s.mu.RUnlock()
	sort.SliceStable(list, func(i, j int) bool { return list[i].priority > list[j].priority })
	for _, c := range list {
		if err := s.stop(s.inProject(ctx, c.ref.project), c.ref.name, StopOptions{Timeout: c.timeout}, powerRunning); err != nil {
			s.log.Error("stop at shutdown", "instance", c.ref.name, "project", c.ref.project, "err", err)
		}
	}
}

// expandedLocked returns an instance's expanded config; caller holds s.mu.
func (s *Service) expandedLocked(in *inst) map[string]string {
	views, _ := s.profileViewsLocked(profileRefs(in.rec))
	return expandConfig(in.rec.Config, views)
}

package instance

import (
	"context"
	"fmt"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/store"
)

// StopOptions say how to stop.
type StopOptions struct {
	// Timeout is how long PID 1 gets to exit after the stop signal before
	// it is killed; negative means the default (30 s).
	Timeout time.Duration
	// Force kills at once.
	Force bool
	// Stateful saves the instance's whole state instead (a VM's standby);
	// the next start restores it.
	Stateful bool
	// Compression, with Stateful, compresses the saved state, in the
	// syntax of snapshots.compression ("none", "zstd:3", "lz4"); ""
	// takes the instance's snapshots.compression.
	Compression string
}

func (o StopOptions) grace() time.Duration {
	if o.Timeout < 0 {
		return defaultStopGrace * time.Second
	}
	return o.Timeout
}

// Stop stops a running or frozen instance; an ephemeral one is then deleted.
func (s *Service) Stop(ctx context.Context, name string, opts StopOptions) error {
	if err := s.allow(ctx, name, canUpdateState); err != nil {
		return err
	}
	return s.stop(ctx, name, opts, powerStopped)
}

// stop is Stop with the power state recovery restores: powerStopped for a
// user's stop, powerRunning for a stop at daemon shutdown, which (as LXD's
// shutdown does) leaves the instance to be started again with the daemon.
func (s *Service) stop(ctx context.Context, name string, opts StopOptions, intent string) error {
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	if err := s.stopLocked(ctx, in, opts, intent); err != nil {
		return err
	}
	if rec, _, _ := s.snapshot(in); rec.Ephemeral {
		return s.deleteLocked(ctx, in, false)
	}
	return nil
}

// stopLocked stops an instance whose op lock the caller holds. intent is
// the power state recovery is to restore should the daemon die from here
// on: powerStopped for a stop, powerRunning for the stop of a restart.
//
// The intent is in the database before the runtime acts: a daemon killed
// after the kill but before its bookkeeping must find, at recovery, an
// instance that was asked to stop, not one that "vanished while the daemon
// was down" and is started again. If the stop fails, the instance runs on
// and its power state is restored.
func (s *Service) stopLocked(ctx context.Context, in *inst, opts StopOptions, intent string) error {
	rec, status, _ := s.snapshot(in)
	if status == StatusStopped {
		return errdefs.Conflict("instance %q is already stopped", rec.Name)
	}
	if err := wantStatus(rec.Name, status, StatusRunning, StatusFrozen, StatusError); err != nil {
		return err
	}
	if rec.Config[keyLastPower] != intent {
		if err := s.setPower(ctx, in, intent); err != nil {
			return fmt.Errorf("stop %s: record the stop: %w", rec.Name, err)
		}
	}
	s.mu.Lock()
	in.status = StatusStopping
	pid := in.pid
	s.mu.Unlock()
	var err error
	if opts.Stateful {
		err = s.standby(ctx, rec, opts.Compression)
	} else {
		err = s.driverOf(rec).Stop(ctx, runtimeID(rec.ID), stopSignal(commandOf(rec)), opts.grace(), opts.Force)
	}
	s.mu.Lock()
	if err != nil {
		in.status = status
	} else {
		in.status, in.pid, in.stoppedPid = StatusStopped, 0, pid
	}
	s.mu.Unlock()
	if err != nil {
		if intent != powerRunning {
			if perr := s.setPower(context.WithoutCancel(ctx), in, powerRunning); perr != nil {
				s.log.Error("restore power state after a failed stop", "instance", rec.Name, "err", perr)
			}
		}
		return fmt.Errorf("stop %s: %w", rec.Name, err)
	}
	s.stopDevices(ctx, rec, opts.Stateful)
	// The workload's end, when the runtime knows it, comes with its exit
	// (HandleExit), after this. Stateful is LXD's "has saved state on
	// disk": the next start restores it.
	stopped := stamp(time.Now())
	if err := s.updateRecord(ctx, in, func(r *store.Instance) {
		clearExit(r)
		r.Config[keyLastStop] = stopped
		r.Stateful = opts.Stateful
	}); err != nil {
		s.log.Error("record stop", "instance", rec.Name, "err", err)
	}
	var meta map[string]any
	if opts.Stateful {
		meta = map[string]any{"stateful": true} // the daemon log's "standby"
	}
	s.cfg.Events.Lifecycle(ctx, "instance-stopped", instanceEntity(rec.Project, rec.Name), meta)
	s.log.Info("instance stopped", "instance", rec.Name, "force", opts.Force)
	return nil
}

// Restart stops and starts an instance as one operation.
func (s *Service) Restart(ctx context.Context, name string, opts StopOptions) error {
	if err := s.allow(ctx, name, canUpdateState); err != nil {
		return err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	if err := s.stopLocked(ctx, in, opts, powerRunning); err != nil {
		return err
	}
	if err := s.startLocked(ctx, in); err != nil {
		return err
	}
	s.cfg.Events.Lifecycle(ctx, "instance-restarted", instanceEntity(project.Name(ctx), name), nil)
	return nil
}

// Freeze pauses every process of a running instance (cgroup freezer).
func (s *Service) Freeze(ctx context.Context, name string) error {
	if err := s.allow(ctx, name, canUpdateState); err != nil {
		return err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	rec, status, _ := s.snapshot(in)
	switch status {
	case StatusRunning:
	case StatusFrozen:
		return errdefs.Conflict("instance %q is already frozen", name)
	default:
		return errdefs.Conflict("instance %q is not running", name)
	}
	if err := s.setStatus(in, StatusFreezing); err != nil {
		return err
	}
	if err := s.driverOf(rec).Freeze(ctx, runtimeID(rec.ID)); err != nil {
		s.forceStatus(in, status, in.pid)
		return fmt.Errorf("freeze %s: %w", name, err)
	}
	if err := s.setStatus(in, StatusFrozen); err != nil {
		return err
	}
	s.cfg.Events.Lifecycle(ctx, "instance-paused", instanceEntity(project.Name(ctx), name), nil)
	return nil
}

// Unfreeze resumes a frozen instance.
func (s *Service) Unfreeze(ctx context.Context, name string) error {
	if err := s.allow(ctx, name, canUpdateState); err != nil {
		return err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	rec, status, _ := s.snapshot(in)
	if status == StatusRunning {
		return errdefs.Conflict("instance %q is not frozen", name)
	}
	if err := wantStatus(name, status, StatusFrozen); err != nil {
		return err
	}
	if err := s.driverOf(rec).Unfreeze(ctx, runtimeID(rec.ID)); err != nil {
		return fmt.Errorf("unfreeze %s: %w", name, err)
	}
	if err := s.setStatus(in, StatusRunning); err != nil {
		return err
	}
	s.cfg.Events.Lifecycle(ctx, "instance-resumed", instanceEntity(project.Name(ctx), name), nil)
	return nil
}

// setPower records the power state recovery restores
// (volatile.last_state.power).
func (s *Service) setPower(ctx context.Context, in *inst, power string) error {
	return s.updateRecord(ctx, in, func(r *store.Instance) { r.Config[keyLastPower] = power })
}

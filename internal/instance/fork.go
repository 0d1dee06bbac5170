package instance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/store"
)

// A fork is a copy of a running instance that runs at once. A VM's fork
// resumes from a point-in-time save of the source's memory, taken in the
// same pause as the copy of its disk: it runs the processes the source
// had, with its own name, MAC addresses and uuid (the guest agent is told,
// and renews its addresses). The source pauses only for the save and the
// disk clone. A container's fork is a clone of its root taken while the
// source is frozen, started afresh: processes do not carry over.

// ForkResult says how a fork went.
type ForkResult struct {
	Name string
	// Processes: the fork runs the source's processes (a VM); false for
	// a container, whose fork boots afresh from a clone of its root.
	Processes bool
	// Pause is how long the source was paused for the fork.
	Pause time.Duration
}

// forkRun is a fork's state between its root and its start.
type forkRun struct {
	running bool   // the source ran: start the fork
	state   string // a VM source's saved state, for the fork's start
	result  ForkResult
}

func (c *Creation) forkRun() *forkRun {
	if c.copyOf == nil {
		return nil
	}
	return c.copyOf.fork
}

// Fork makes newName a fork of instance name. A stopped source gives a
// stopped copy.
func (s *Service) Fork(ctx context.Context, name, newName string) (ForkResult, error) {
	if err := s.allowCreate(ctx); err != nil {
		return ForkResult{}, err
	}
	if newName == "" {
		return ForkResult{}, errdefs.Invalid("fork: the new instance needs a name")
	}
	c, err := s.Create(ctx, CreateRequest{Name: newName, Source: Source{Type: SourceCopy, Instance: name, InstanceOnly: true}})
	if err != nil {
		return ForkResult{}, err
	}
	f := &forkRun{result: ForkResult{Name: c.Name()}}
	c.copyOf.fork = f
	if err := c.Run(ctx); err != nil {
		return ForkResult{}, fmt.Errorf("fork %s: %w", name, err)
	}
	s.cfg.Events.Lifecycle(ctx, "instance-forked", instanceEntity(project.Name(ctx), newName), map[string]any{"source": name, "processes": f.result.Processes})
	s.log.Info("instance forked", "instance", name, "fork", newName, "processes", f.result.Processes, "pause", f.result.Pause)
	return f.result, nil
}

// forkRoot makes a fork's root from its source (whose op lock the caller
// holds): a running VM is checkpointed while its disk is cloned, a running
// container frozen while its root is.
func (s *Service) forkRoot(ctx context.Context, rec, src store.Instance, status Status, f *forkRun, copyRoot func(context.Context) error) error {
	f.running = isActive(status)
	if !f.running {
		return copyRoot(ctx)
	}
	if status != StatusRunning {
		return errdefs.Conflict("fork: instance %q is %s: resume it first", src.Name, status)
	}
	start := time.Now()
	if Type(src.Type) != TypeVM {
		err := s.whileFrozen(ctx, src, copyRoot)
		f.result.Pause = time.Since(start)
		return err
	}
	cp, ok := s.driverOf(src).(checkpointer)
	if !ok {
		return errdefs.Invalid("fork: the %s driver cannot save a running VM", src.Type)
	}
	path := filepath.Join(s.cfg.StateDir, runtimeID(rec.ID), "fork.state")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	// A fork's state is read once, at once: not worth compressing.
	pause, err := cp.Checkpoint(ctx, runtimeID(src.ID), path, driver.Compression{}, copyRoot)
	if err != nil {
		return err
	}
	f.state, f.result.Pause, f.result.Processes = path, pause, true
	return nil
}

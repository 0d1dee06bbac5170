package driver

import (
	"context"
	"time"
)

// Checkpointer is a driver that saves a running instance's whole state
// (a VM's RAM and device state) to a file while it keeps running: the
// memory half of a stateful snapshot and of a live fork. A later Start
// with Spec.RestoreState set to that file brings an instance back from
// it, running the processes it had.
type Checkpointer interface {
	// Checkpoint saves the instance's state to statePath (written
	// beside it as statePath+".tmp", then renamed). It calls paused
	// while the instance is held paused at the moment the state was
	// taken, so that the caller can snapshot or clone the instance's
	// disks then: disks and memory agree. The instance then runs on
	// (an instance paused before stays paused). It returns how long the
	// instance was held paused. On failure the instance runs on as
	// before and no file is left. comp compresses the saved state.
	Checkpoint(ctx context.Context, id, statePath string, comp Compression, paused func(ctx context.Context) error) (pause time.Duration, err error)
}

package container

import (
	"context"
	"fmt"
	"os"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Delete removes everything the driver keeps for a stopped instance: runc
// state, cgroup, rootfs mount and Dir/<id> with its console log; the
// root's data is storage's. Deleting an unknown instance is not an error.
func (d *Driver) Delete(ctx context.Context, id string) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	in := d.lookup(id)
	if in == nil {
		// Left running by an earlier daemon without Recover? Then it is
		// watched from now on, and still running.
		var err error
		if in, err = d.adopt(id); err != nil {
			return fmt.Errorf("delete %s: %w", id, err)
		}
	}
	if in != nil {
		return fmt.Errorf("delete %s: %w", id, errdefs.Conflict("instance is running"))
	}
	if err := d.cleanupRun(ctx, id); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	dir := d.instanceDir(id)
	// RemoveAll would descend into a mount and delete what it shows.
	mps, err := mountPoints(dir)
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if len(mps) > 0 {
		return fmt.Errorf("delete %s: still mounted: %v", id, mps)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}

package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/snapshotpolicy"
	"github.com/hangar-dev/hangar/internal/storage"
)

// runSnapshotSchedules takes scheduled snapshots and deletes expired ones
// (instances' and custom volumes') and expired instance backups once a
// minute until ctx ends. What
// expired while the daemon was down goes at once.
func runSnapshotSchedules(ctx context.Context, svc *instance.Service, pools *storage.Manager, log *slog.Logger) {
	tick := func(tk snapshotpolicy.Tick) {
		svc.SnapshotTick(ctx, tk)
		if n, err := pools.PruneExpiredVolumeSnapshots(ctx, tk.Minute); err != nil {
			log.Error("delete expired volume snapshots", "err", err)
		} else if n > 0 {
			log.Info("expired volume snapshots deleted", "count", n)
		}
		if n, err := svc.PruneBackups(ctx, tk.Minute); err != nil {
			log.Error("delete expired backups", "err", err)
		} else if n > 0 {
			log.Info("expired backups deleted", "count", n)
		}
	}
	now := time.Now()
	tick(snapshotpolicy.Tick{Minute: now, Since: now})
	snapshotpolicy.Run(ctx, snapshotpolicy.SystemClock, log, tick)
}

package daemon

import (
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/hangar-dev/hangar/internal/image"
	"github.com/hangar-dev/hangar/internal/serverconfig"
)

// imageCacheSweepEvery is how often cached images are checked for expiry.
// Expiry is counted in days, so an hour is prompt enough and costs nothing.
const imageCacheSweepEvery = time.Hour

// maxExpiryDays keeps days in a time.Duration; beyond it is never anyway.
const maxExpiryDays = int64(math.MaxInt64 / (24 * time.Hour))

// sweepImageCache deletes cached images unused for
// images.remote_cache_expiry days, at start and then periodically, until
// ctx ends. Images an instance uses are kept (users names them).
func sweepImageCache(ctx context.Context, images *image.Service, conf *serverconfig.Service, users func(fp string) []string, log *slog.Logger) {
	t := time.NewTicker(imageCacheSweepEvery)
	defer t.Stop()
	for {
		days := min(conf.ImagesRemoteCacheExpiryDays(), maxExpiryDays)
		deleted, err := images.PruneCached(ctx, time.Duration(days)*24*time.Hour, users)
		if err != nil && ctx.Err() == nil {
			log.Error("image cache sweep", "error", err)
		}
		if len(deleted) > 0 {
			log.Info("image cache sweep", "deleted", len(deleted), "expiry_days", days)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

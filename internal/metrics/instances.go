package metrics

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/instance"
)

// Instances is what the collector needs of the core: which instances run,
// and each one's figures (driver.ErrNotRunning, wrapped or not, for one
// that stopped in between).
type Instances interface {
	Running(ctx context.Context) []instance.Running
	Metrics(ctx context.Context, r instance.Running) (driver.Metrics, error)
}

// maxReaders bounds the parallel reads: they are syscalls on two to four
// cores, and more goroutines would only queue.
const maxReaders = 4

// reading is one instance's figures, or why there are none.
type reading struct {
	in  instance.Running
	m   driver.Metrics
	err error
}

// readAll reads the figures of project's running instances (every
// project's for ""), in parallel, in Running's order.
func readAll(ctx context.Context, src Instances, projects []string) []reading {
	var out []reading
	for _, r := range src.Running(ctx) {
		if len(projects) == 0 || slices.Contains(projects, r.Project) {
			out = append(out, reading{in: r})
		}
	}
	read := func(i int) {
		out[i].m, out[i].err = src.Metrics(ctx, out[i].in)
	}
	workers := min(runtime.GOMAXPROCS(0), maxReaders, len(out))
	if workers <= 1 {
		for i := range out {
			read(i)
		}
		return out
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(out); i = int(next.Add(1)) - 1 {
				read(i)
			}
		})
	}
	wg.Wait()
	return out
}

// usable keeps the readings that have figures: an instance that stopped
// since it was listed has no series (as in LXD), one that failed to read
// is logged and left out.
func usable(rs []reading, log *slog.Logger) []reading {
	out := rs[:0]
	for _, r := range rs {
		switch {
		case errors.Is(r.err, driver.ErrNotRunning):
		case r.err != nil:
			log.Warn("read instance metrics", "instance", r.in.Name, "project", r.in.Project, "err", r.err)
		default:
			out = append(out, r)
		}
	}
	return out
}

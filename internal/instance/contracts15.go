package instance

import (
	"context"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// CONTRACTS OF ISSUE 15 (temporary file): the names every helper codes
// against. Each owner moves its piece into a file of its own with the
// real implementation and deletes it here; the file is gone when the
// issue is resolved.

// LogSource names one of an instance's logs.
type LogSource string

// Log sources.
const (
	LogApp    LogSource = "app"    // the guest console: the workload's output
	LogVMM    LogSource = "vmm"    // QEMU's own log
	LogHangar LogSource = "hangar" // one line per action the daemon took
)

var errPending = errdefs.NotImplemented("not built yet (issue 15 in progress)")

// StreamLog emits the last tail lines of an instance's log (tail < 0:
// all), then, with follow, new lines until ctx ends.
func (s *Service) StreamLog(ctx context.Context, name string, source LogSource, tail int, follow bool, emit func(lines [][]byte) error) error {
	return errPending
}

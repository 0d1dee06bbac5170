package instance

import (
	"context"
	"time"

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

var errPending = errdefs.NotImplemented("not built yet (issue 15 in progress)")

// StreamLog emits the last tail lines of an instance's log (tail < 0:
// all), then, with follow, new lines until ctx ends.
func (s *Service) StreamLog(ctx context.Context, name string, source LogSource, tail int, follow bool, emit func(lines [][]byte) error) error {
	return errPending
}

// UpdateCredentialValues replaces the real values of credentials whose
// source.env is a key of env.
func (s *Service) UpdateCredentialValues(ctx context.Context, name string, env map[string]string) error {
	return errPending
}

// SnapshotSchedule returns an instance's snapshot schedule.
func (s *Service) SnapshotSchedule(ctx context.Context, name string) (SnapshotSchedule, error) {
	return SnapshotSchedule{}, errPending
}

// SetSnapshotSchedule creates or replaces an instance's snapshot schedule.
func (s *Service) SetSnapshotSchedule(ctx context.Context, name string, sch SnapshotSchedule) (SnapshotSchedule, error) {
	return SnapshotSchedule{}, errPending
}

// DeleteSnapshotSchedule removes an instance's snapshot schedule.
func (s *Service) DeleteSnapshotSchedule(ctx context.Context, name string) error {
	return errPending
}

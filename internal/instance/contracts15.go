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

// VMStats is a running VM's resource use, read from its QEMU process and
// its TAP devices.
type VMStats struct {
	CPUSeconds                            float64
	MemoryRSS, MemoryVMS, AllocatedMemory int64
	VCPUs                                 int
	NetRx, NetTx                          int64
}

// PathInfo is what a guest path is.
type PathInfo struct {
	Exists, IsDir, IsFile, IsSymlink bool
	LinkTarget                       string
	Mode                             uint32
	Size                             int64
	// Err is why the path could not be read, when it exists.
	Err string
}

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

// ResolveID returns the name of the instance whose id is idOrName, else
// whose name it is, else whose id starts with it (when unique).
func (s *Service) ResolveID(ctx context.Context, idOrName string) (string, error) {
	return "", errPending
}

// VMStats reads a running VM's resource use.
func (s *Service) VMStats(ctx context.Context, name string) (VMStats, error) {
	return VMStats{}, errPending
}

// StatPath says what path is in a running instance.
func (s *Service) StatPath(ctx context.Context, name, path string, followLinks bool) (PathInfo, error) {
	return PathInfo{}, errPending
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

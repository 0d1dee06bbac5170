package instance

import (
	"context"

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

// LogSource names one of an instance's logs.
type LogSource string

// Log sources.
const (
	LogApp    LogSource = "app"    // the guest console: the workload's output
	LogVMM    LogSource = "vmm"    // QEMU's own log
	LogHangar LogSource = "hangar" // one line per action the daemon took
)

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

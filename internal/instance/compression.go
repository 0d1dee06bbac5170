package instance

import (
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/store"
)

// keySnapshotsCompression compresses a VM's saved state: its standby file
// and its stateful snapshots' state. Syntax: driver.ParseCompression
// (none, zstd, zstd:1-19, lz4, lz4:0-9); unset is none.
const keySnapshotsCompression = "snapshots.compression"

func validateCompression(v string) error {
	_, err := driver.ParseCompression(v)
	return err
}

// compressionOf is how rec's saved state is compressed: override when
// set (a per-call choice, same syntax), else its expanded
// snapshots.compression.
func (s *Service) compressionOf(rec store.Instance, override string) (driver.Compression, error) {
	if override != "" {
		return driver.ParseCompression(override)
	}
	cfg, _, err := s.expanded(rec)
	if err != nil {
		return driver.Compression{}, err
	}
	return driver.ParseCompression(cfg[keySnapshotsCompression])
}

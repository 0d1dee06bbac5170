package instance

import (
	"strings"
	"unicode/utf8"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// A snapshot's kind and metadata need no column of their own: the kind is
// whether it holds a saved state, and the metadata (and the mark of a
// scheduled snapshot) are volatile keys of the snapshot's copy of the
// instance config. Volatile keys are the daemon's: a restore keeps the
// instance's own and drops the snapshot's, so they never reach the
// instance, and no client can set them through a config PUT.

// Snapshot kinds (Snapshot.Kind).
const (
	SnapshotKindStandby = "Standby" // with saved RAM and device state
	SnapshotKindStopped = "Stopped" // disks only
)

const (
	prefixSnapshotMeta   = "volatile.snapshot.meta."
	keySnapshotScheduled = "volatile.snapshot.scheduled"
	// maxMetadataKey and maxMetadataValue bound one metadata entry, and
	// maxMetadata their number: they live in the config row.
	maxMetadataKey, maxMetadataValue, maxMetadata = 128, 4096, 64
)

func snapshotKind(stateful bool) string {
	if stateful {
		return SnapshotKindStandby
	}
	return SnapshotKindStopped
}

// snapshotMetadata reads a snapshot's metadata from its config; never
// nil.
func snapshotMetadata(cfg map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range cfg {
		if key, ok := strings.CutPrefix(k, prefixSnapshotMeta); ok {
			out[key] = v
		}
	}
	return out
}

// setSnapshotMetadata replaces the metadata in a snapshot's config (a
// copy of the instance's, which has none of its own).
func setSnapshotMetadata(cfg, meta map[string]string, scheduled bool) {
	for k := range cfg {
		if strings.HasPrefix(k, prefixSnapshotMeta) || k == keySnapshotScheduled {
			delete(cfg, k)
		}
	}
	for k, v := range meta {
		cfg[prefixSnapshotMeta+k] = v
	}
	if scheduled {
		cfg[keySnapshotScheduled] = "true"
	}
}

func isScheduledSnapshot(cfg map[string]string) bool { return cfg[keySnapshotScheduled] == "true" }

// validateMetadata checks user key-value tags (a snapshot's, a
// schedule's).
func validateMetadata(meta map[string]string) error {
	if len(meta) > maxMetadata {
		return errdefs.Invalid("metadata: %d entries, at most %d", len(meta), maxMetadata)
	}
	for k, v := range meta {
		switch {
		case k == "":
			return errdefs.Invalid("metadata: empty key")
		case len(k) > maxMetadataKey:
			return errdefs.Invalid("metadata: key %.40q... is longer than %d bytes", k, maxMetadataKey)
		case len(v) > maxMetadataValue:
			return errdefs.Invalid("metadata: the value of %q is longer than %d bytes", k, maxMetadataValue)
		case !utf8.ValidString(k) || !utf8.ValidString(v) || strings.ContainsRune(k+v, 0):
			return errdefs.Invalid("metadata: %q holds invalid UTF-8 or a NUL byte", k)
		}
	}
	return nil
}

package driver

import (
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Compression is how a saved VM state (a standby file, a stateful
// snapshot's state) is compressed. The zero value is none.
type Compression struct {
	// Algorithm is "" (none), CompressZstd or CompressLZ4.
	Algorithm string
	// Level is the algorithm's level: zstd 1-19, lz4 0-9.
	Level int
}

// Compression algorithms.
const (
	CompressNone = "none"
	CompressZstd = "zstd"
	CompressLZ4  = "lz4"
)

// Level bounds and defaults: zstd level 1 (its fastest) and lz4 level 0
// (its fast mode, not the high-compression one) keep a save near the
// speed of the disk, which is what standby is about.
const (
	ZstdMinLevel, ZstdMaxLevel, ZstdDefaultLevel = 1, 19, 1
	LZ4MinLevel, LZ4MaxLevel, LZ4DefaultLevel    = 0, 9, 0
)

// IsZero reports whether c compresses nothing.
func (c Compression) IsZero() bool { return c.Algorithm == "" || c.Algorithm == CompressNone }

// String is c in ParseCompression's syntax.
func (c Compression) String() string {
	if c.IsZero() {
		return CompressNone
	}
	return c.Algorithm + ":" + strconv.Itoa(c.Level)
}

// ParseCompression reads the snapshots.compression syntax: "" or "none",
// "zstd", "zstd:LEVEL" (1-19, default 1), "lz4", "lz4:LEVEL" (0-9,
// default 0). Case matters not.
func ParseCompression(s string) (Compression, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	alg, lvl, hasLevel := strings.Cut(v, ":")
	var c Compression
	var lo, hi int
	switch alg {
	case "", CompressNone:
		if hasLevel {
			return Compression{}, errdefs.Invalid("compression %q: none takes no level", s)
		}
		return Compression{}, nil
	case CompressZstd:
		c, lo, hi = Compression{Algorithm: CompressZstd, Level: ZstdDefaultLevel}, ZstdMinLevel, ZstdMaxLevel
	case CompressLZ4:
		c, lo, hi = Compression{Algorithm: CompressLZ4, Level: LZ4DefaultLevel}, LZ4MinLevel, LZ4MaxLevel
	default:
		return Compression{}, errdefs.Invalid("compression %q: want none, zstd, zstd:LEVEL (%d-%d), lz4 or lz4:LEVEL (%d-%d)",
			s, ZstdMinLevel, ZstdMaxLevel, LZ4MinLevel, LZ4MaxLevel)
	}
	if hasLevel {
		n, err := strconv.Atoi(lvl)
		if err != nil || n < lo || n > hi {
			return Compression{}, errdefs.Invalid("compression %q: %s level must be an integer from %d to %d", s, alg, lo, hi)
		}
		c.Level = n
	}
	return c, nil
}

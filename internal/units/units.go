// Package units reads and writes sizes the way LXD does ("512MiB", "10GB",
// a byte count), for every config key that takes one.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// byteUnits are LXD's size suffixes (shared/units): decimal and binary.
var byteUnits = map[string]int64{
	"": 1, "B": 1, " bytes": 1,
	"kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15, "EB": 1e18,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50, "EiB": 1 << 60,
}

// ParseByteSize reads a size as LXD writes it: a whole number of bytes,
// optionally followed by a unit ("512MiB", "10GB").
func ParseByteSize(v string) (int64, error) {
	i := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := v, ""
	if i >= 0 {
		num, unit = v[:i], v[i:]
	}
	mult, ok := byteUnits[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("%q is not a size like 10GiB, 500MB or a byte count", v)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", v)
	}
	return n * mult, nil
}

// FormatByteSize writes n in the largest binary unit that divides it
// ("2GiB", "1536MiB"), or as a byte count.
func FormatByteSize(n int64) string {
	for _, u := range []string{"EiB", "PiB", "TiB", "GiB", "MiB", "KiB"} {
		m := byteUnits[u]
		if n != 0 && n%m == 0 {
			return strconv.FormatInt(n/m, 10) + u
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

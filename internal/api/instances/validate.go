package instances

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	wire "github.com/hangar-dev/hangar/api/instances"
)

// Shapes of fields, checked at the edge so a bad one is a 400 naming
// it before the core is asked anything. The core checks again what it
// owns (config keys, devices, state).

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func checkName(field, v string) error {
	switch {
	case v == "":
		return fieldErr(field, "required")
	case len(v) > 63:
		return fieldErr(field, "%d characters: at most 63", len(v))
	case !nameRE.MatchString(v):
		return fieldErr(field, "%q: lowercase letters, digits and dashes only, not starting or ending with a dash", v)
	}
	return nil
}

// binary size units, as the seed's examples read ("1GB" is 1 GiB, "512MB",
// "2G"): hypeman parses sizes with 1024-based units whatever the suffix.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}

// parseSize reads "1GB", "512MB", "2G", "1024" (bytes) as bytes.
func parseSize(field, v string) (int64, error) {
	s := strings.TrimSpace(v)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	}
	mult, ok := sizeUnits[unit]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || num == "" {
		return 0, fieldErr(field, "%q is not a size like 1GB, 512MB or 2G", v)
	}
	n := f * float64(mult)
	if n < 1 || n > 1<<50 {
		return 0, fieldErr(field, "%q is out of range", v)
	}
	return int64(n), nil
}

// formatSize writes bytes in the largest unit that divides them, the
// seed's way ("1GB", "512MB").
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		m    int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if n != 0 && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// parseIORate reads a disk rate ("100MB/s") as bytes per second.
func parseIORate(field, v string) (int64, error) {
	s, ok := strings.CutSuffix(strings.TrimSpace(v), "/s")
	if !ok {
		return 0, fieldErr(field, "%q is not a rate like 100MB/s", v)
	}
	n, err := parseSize(field, s)
	if err != nil {
		return 0, fieldErr(field, "%q is not a rate like 100MB/s", v)
	}
	return n, nil
}

func formatIORate(n int64) string { return formatSize(n) + "/s" }

// bandwidth units: bits per second ("1Gbps") or bytes per second
// ("125MB/s"), decimal as network rates are.
var rateUnits = map[string]float64{
	"bps": 1, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9, "tbps": 1e12,
	"b/s": 8, "kb/s": 8e3, "mb/s": 8e6, "gb/s": 8e9, "tb/s": 8e12,
}

// parseBandwidth reads a network rate as bits per second.
func parseBandwidth(field, v string) (int64, error) {
	s := strings.TrimSpace(v)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fieldErr(field, "%q is not a rate like 1Gbps or 125MB/s", v)
	}
	mult, ok := rateUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	f, err := strconv.ParseFloat(s[:i], 64)
	if !ok || err != nil {
		return 0, fieldErr(field, "%q is not a rate like 1Gbps or 125MB/s", v)
	}
	n := f * mult
	if n < 8 || n > 1e13 {
		return 0, fieldErr(field, "%q is out of range", v)
	}
	return int64(n), nil
}

func formatBandwidth(bits int64) string {
	for _, u := range []struct {
		name string
		m    int64
	}{{"Tbps", 1e12}, {"Gbps", 1e9}, {"Mbps", 1e6}, {"Kbps", 1e3}} {
		if bits%u.m == 0 {
			return strconv.FormatInt(bits/u.m, 10) + u.name
		}
	}
	return strconv.FormatInt(bits, 10) + "bps"
}

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkEnv(field string, env map[string]string) error {
	for k, v := range env {
		if !envKeyRE.MatchString(k) {
			return fieldErr(field+"."+k, "not an environment variable name (letters, digits and _, not starting with a digit)")
		}
		if strings.ContainsRune(v, 0) {
			return fieldErr(field+"."+k, "the value holds a NUL byte")
		}
	}
	return nil
}

var tagKeyRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$`)

// checkTags: keys of 1-128 letters, digits and ._/- (starting and ending
// with a letter or digit), values up to 256 characters without NUL.
func checkTags(field string, tags map[string]string) error {
	for k, v := range tags {
		if !tagKeyRE.MatchString(k) {
			return fieldErr(field, "key %q: 1-128 letters, digits and ._/-, starting and ending with a letter or digit", k)
		}
		if len(v) > 256 || strings.ContainsRune(v, 0) {
			return fieldErr(field+"."+k, "at most 256 characters, no NUL")
		}
	}
	return nil
}

// parseDuration reads a Go duration that must be above min.
func parseDuration(field, v string, min time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fieldErr(field, "%q is not a Go duration like 30s or 5m", v)
	}
	if d < min || d <= 0 {
		return 0, fieldErr(field, "%s: at least %s", v, max(min, time.Nanosecond))
	}
	return d, nil
}

func checkPorts(field string, ports []int64) error {
	for i, p := range ports {
		if p < 1 || p > 65535 {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "%d is not a TCP port (1-65535)", p)
		}
	}
	return nil
}

func checkCIDRs(field string, cidrs []string) error {
	for i, c := range cidrs {
		if _, err := netip.ParsePrefix(c); err != nil {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "%q is not a CIDR like 10.0.0.0/8", c)
		}
	}
	return nil
}

// compressionValue turns a compression setting into the core's
// snapshots.compression value: none, zstd:LEVEL or lz4:LEVEL.
func compressionValue(field string, c *wire.SnapshotCompressionConfigParams) (string, error) {
	if c.Enabled == nil {
		return "", fieldErr(field+".enabled", "required")
	}
	if !*c.Enabled {
		if c.Algorithm != "" && c.Algorithm != wire.CompressionZstd && c.Algorithm != wire.CompressionLz4 {
			return "", fieldErr(field+".algorithm", "%q: want zstd or lz4", c.Algorithm)
		}
		return "none", nil
	}
	algo := c.Algorithm
	if algo == "" {
		algo = wire.CompressionZstd
	}
	var lo, hi, def int64
	switch algo {
	case wire.CompressionZstd:
		lo, hi, def = 1, 19, 1
	case wire.CompressionLz4:
		lo, hi, def = 0, 9, 0
	default:
		return "", fieldErr(field+".algorithm", "%q: want zstd or lz4", c.Algorithm)
	}
	level := def
	if c.Level != nil {
		level = *c.Level
	}
	if level < lo || level > hi {
		return "", fieldErr(field+".level", "%d: %s levels are %d-%d", level, algo, lo, hi)
	}
	return algo + ":" + strconv.FormatInt(level, 10), nil
}

// compressionOf renders a snapshots.compression value.
func compressionOf(v string) wire.SnapshotCompressionConfig {
	algo, lvl, hasLevel := strings.Cut(v, ":")
	switch algo {
	case wire.CompressionZstd, wire.CompressionLz4:
	default:
		return wire.SnapshotCompressionConfig{}
	}
	out := wire.SnapshotCompressionConfig{Enabled: true, Algorithm: algo}
	if algo == wire.CompressionZstd {
		out.Level = 1
	}
	if n, err := strconv.ParseInt(lvl, 10, 64); hasLevel && err == nil {
		out.Level = n
	}
	return out
}

// knownHypervisors are the seed's; only QEMU runs here.
var knownHypervisors = map[wire.Hypervisor]bool{
	wire.HypervisorCloudHypervisor: true, wire.HypervisorFirecracker: true, wire.HypervisorQEMU: true, wire.HypervisorVZ: true,
}

func checkHypervisor(field string, h wire.Hypervisor) error {
	switch {
	case h == "" || h == wire.HypervisorQEMU:
		return nil
	case knownHypervisors[h]:
		return fieldErr(field, "hypervisor %s is not available on this host (it has: qemu)", h)
	}
	return fieldErr(field, "%q: want one of cloud-hypervisor, firecracker, qemu, vz (this host has qemu)", h)
}

// checkArgv: an entrypoint or cmd is a list of arguments without NUL.
func checkArgv(field string, argv []string) error {
	for i, a := range argv {
		if strings.ContainsRune(a, 0) {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "holds a NUL byte")
		}
	}
	return nil
}

func checkGuestPath(field, p string) error {
	switch {
	case p == "":
		return fieldErr(field, "required")
	case !strings.HasPrefix(p, "/"):
		return fieldErr(field, "%q: an absolute path", p)
	case strings.ContainsRune(p, 0):
		return fieldErr(field, "holds a NUL byte")
	}
	return nil
}

func checkMountPath(field, p string) error {
	if err := checkGuestPath(field, p); err != nil {
		return err
	}
	if path.Clean(p) == "/" {
		return fieldErr(field, "%q: not the root", p)
	}
	return nil
}

// parseState reads a state of the seed's enum.
func parseState(field, v string) (wire.State, error) {
	for _, s := range wire.States {
		if string(s) == v {
			return s, nil
		}
	}
	return "", fieldErr(field, "%q: want one of Created, Initializing, Running, Paused, Shutdown, Stopped, Standby, Unknown", v)
}

// parseTargetState reads a fork's or restore's target state.
func parseTargetState(field string, v wire.State) (wire.State, error) {
	switch v {
	case "", wire.StateStopped, wire.StateStandby, wire.StateRunning:
		return v, nil
	}
	return "", fieldErr(field, "%q: want Stopped, Standby or Running", v)
}

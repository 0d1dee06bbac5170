package instance

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/autostandby"
	"github.com/hangar-dev/hangar/internal/egress"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/snapshotpolicy"
)

// Config keys hangard understands. Every key a client sends is checked
// against this table (or one of the prefixes below) with its value's type,
// so a typo is a 400 naming the key, never a silently ignored setting.
var configKeys = map[string]func(string) error{
	"limits.cpu":                 validateCPU,
	"limits.memory":              validateMemory,
	"limits.processes":           validateProcesses,
	"limits.disk.priority":       validateDiskPriority,
	"boot.autostart":             validateBool,
	"boot.autostart.delay":       validateNonNegativeInt,
	"boot.autostart.priority":    validateInt,
	"boot.stop.priority":         validateInt,
	"boot.host_shutdown_timeout": validateNonNegativeInt,
	"security.privileged":        validateBool,
	"security.protection.delete": validateBool,
	"security.secureboot":        validateBool,    // VMs only (vm.go)
	keyAgentSkip:                 validateBool,    // VMs only (vmfacts.go)
	keyMemoryHotplug:             validateHotplug, // VMs only (vmfacts.go)
	keySnapshotsSchedule:         validateSnapshotSchedule,
	keySnapshotsScheduleStopped:  validateBool,
	keySnapshotsPattern:          snapshotpolicy.ValidatePattern,
	keySnapshotsExpiry:           validateSnapshotExpiry,
	keySnapshotsScheduleMaxCount: validateNonNegativeInt,
	// Both types take it (a profile may serve both); only a VM has a
	// state to compress.
	keySnapshotsCompression: validateCompression,
	// OCI process overrides (oci.go); unset keys take the image's value.
	keyOCIEntrypoint: validateArgsJSON,
	keyOCICmd:        validateArgsJSON,
	keyOCICwd:        validateAbsPath,
	keyOCIUID:        validateUint32,
	keyOCIGID:        validateUint32,
	// Auto-standby policy (internal/autostandby runs it).
	autostandby.KeyEnabled:     autostandby.Validators[autostandby.KeyEnabled],
	autostandby.KeyIdleTimeout: autostandby.Validators[autostandby.KeyIdleTimeout],
	autostandby.KeyIgnorePorts: autostandby.Validators[autostandby.KeyIgnorePorts],
	autostandby.KeyIgnoreCIDRs: autostandby.Validators[autostandby.KeyIgnoreCIDRs],
	// Egress (credentials.go); credentials.* keys are checked below.
	keyEgressEnabled: validateBool,
	keyEgressMode:    validateEgressMode,
}

// Key prefixes and who may write them.
const (
	prefixEnvironment = "environment."
	prefixUser        = "user."
	prefixImage       = "image."    // set from the image at create, read-only after
	prefixVolatile    = "volatile." // daemon-internal state
)

// Volatile keys the daemon keeps in an instance's config.
const (
	keyBaseImage    = "volatile.base_image"
	keyLastPower    = "volatile.last_state.power"
	keyLastExitCode = "volatile.last_state.exit_code"
	keyIdmapBase    = "volatile.idmap.base"
	// keyCreating marks an instance whose create has more to do than a
	// fresh root can redo (a copy, an import): set on its record, to the
	// source type, until it is whole.
	keyCreating      = "volatile.creating"
	powerRunning     = "RUNNING"
	powerStopped     = "STOPPED"
	defaultStopGrace = 30
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validateUserConfig checks a config map as a client sent it. Read-only and
// internal keys are refused unless allowed holds them with the same value
// (a PUT echoes back what GET showed).
func validateUserConfig(cfg, allowed map[string]string) error {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same key first every time
	for _, k := range keys {
		v := cfg[k]
		if strings.HasPrefix(k, prefixImage) || strings.HasPrefix(k, prefixVolatile) {
			if old, ok := allowed[k]; ok && old == v {
				continue
			}
			return errdefs.Invalid("config key %q is read-only", k)
		}
		if err := validateKey(k, v); err != nil {
			return err
		}
	}
	return nil
}

// validateKey checks one user-settable key and its value against fixed
// bounds; checkExpanded (limits.go) checks the result against the host.
func validateKey(k, v string) error {
	// A NUL byte ends a C string: the kernel and runc refuse it in an
	// environment variable or argument, and nothing else needs one.
	if strings.IndexByte(k, 0) >= 0 {
		return errdefs.Invalid("config key %q holds a NUL byte", k)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return errdefs.Invalid("invalid value %q for config key %q: it holds a NUL byte", v, k)
	}
	switch {
	case strings.HasPrefix(k, prefixEnvironment):
		name := strings.TrimPrefix(k, prefixEnvironment)
		if !envName.MatchString(name) {
			return errdefs.Invalid("config key %q: %q is not a valid environment variable name", k, name)
		}
		if len(name)+1+len(v) >= maxArgStrLen {
			return errdefs.Invalid("config key %q: the variable is longer than the kernel's %d bytes", k, maxArgStrLen-1)
		}
		return nil
	case strings.HasPrefix(k, prefixCredentials):
		_, err := egress.ParseCredential(strings.TrimPrefix(k, prefixCredentials), v)
		return err
	case strings.HasPrefix(k, prefixUser):
		if len(k) == len(prefixUser) {
			return errdefs.Invalid("config key %q: empty user key", k)
		}
		return nil
	case strings.HasPrefix(k, prefixScheduleMeta):
		if len(k) == len(prefixScheduleMeta) {
			return errdefs.Invalid("config key %q: empty metadata key", k)
		}
		return nil
	}
	check, ok := configKeys[k]
	if !ok {
		return errdefs.Invalid("unknown config key %q", k)
	}
	if err := check(v); err != nil {
		return errdefs.Invalid("invalid value %q for config key %q: %v", v, k, err)
	}
	return nil
}

func validateBool(v string) error {
	_, err := parseBool(v)
	return err
}

// parseBool accepts LXD's spellings of a boolean.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean")
}

func validateInt(v string) error {
	_, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer")
	}
	return nil
}

func validateNonNegativeInt(v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("not a non-negative integer")
	}
	return nil
}

func validateProcesses(v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > pidMaxLimit {
		return fmt.Errorf("not a process count between 1 and %d (the kernel's limit)", pidMaxLimit)
	}
	return nil
}

// validateCPU accepts a CPU count ("2") or a cpuset ("0-1,3").
func validateCPU(v string) error {
	_, _, err := parseCPU(v)
	return err
}

// parseCPU returns either a count or a cpuset string (checked against
// the host's CPUs by checkHost).
func parseCPU(v string) (count int, set string, err error) {
	if n, err := strconv.Atoi(v); err == nil && !strings.HasPrefix(v, "+") {
		if n < 1 || n > maxCPUID+1 {
			return 0, "", fmt.Errorf("CPU count must be between 1 and %d", maxCPUID+1)
		}
		return n, "", nil
	}
	if _, err := parseCPUList(v); err != nil {
		return 0, "", err
	}
	return 0, v, nil
}

func validateMemory(v string) error {
	_, err := parseMemory(v, 1<<40)
	return err
}

var byteUnits = map[string]float64{
	"":   1,
	"B":  1,
	"kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15, "EB": 1e18,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50, "EiB": 1 << 60,
}

// parseMemory reads "512MiB", "1GB", a plain byte count, or a percentage of
// hostTotal ("50%"), and refuses less than runc needs to start anything.
func parseMemory(v string, hostTotal int64) (int64, error) {
	decimal := func(s string) (float64, bool) {
		// Digits and one dot only: ParseFloat would also take "NaN",
		// "Inf", exponents and hex.
		if s == "" || strings.TrimLeft(s, "0123456789.") != "" {
			return 0, false
		}
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	}
	var b float64
	if p, ok := strings.CutSuffix(v, "%"); ok {
		f, ok := decimal(p)
		if !ok || f <= 0 || f > 100 {
			return 0, fmt.Errorf("percentage must be in (0, 100]")
		}
		b = float64(hostTotal) * f / 100
	} else {
		i := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		num, unit := v, ""
		if i >= 0 {
			num, unit = v[:i], v[i:]
		}
		mult, ok := byteUnits[unit]
		f, isNum := decimal(num)
		if !ok || !isNum {
			return 0, fmt.Errorf("not a size like 512MiB, 1GB or a byte count")
		}
		b = f * mult
	}
	if b > math.MaxInt64/2 {
		return 0, fmt.Errorf("size too large")
	}
	// runc's init runs inside the limit before PID 1 does.
	if b < minContainerMemory {
		return 0, fmt.Errorf("at least %dMiB is needed", minContainerMemory>>20)
	}
	return int64(b), nil
}

// validateDiskPriority is LXD's limits.disk.priority: 0 to 10.
func validateDiskPriority(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 10 {
		return fmt.Errorf("%q is not a whole number from 0 to 10", v)
	}
	return nil
}

// validateDevices checks a devices map: through the device layer when
// there is one (nic, proxy), else only "none" (LXD's way to mask a
// profile's device) is accepted.
func (s *Service) validateDevices(ctx context.Context, devs map[string]map[string]string, vm bool) error {
	if s.cfg.Devices != nil {
		return s.cfg.Devices.Validate(ctx, devs, vm)
	}
	return validateDevicesAlone(devs)
}

// validateDevicesAlone checks devices with no device layer.
func validateDevicesAlone(devs map[string]map[string]string) error {
	names := make([]string, 0, len(devs))
	for n := range devs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d := devs[n]
		if n == "" || strings.ContainsAny(n, "/ ") {
			return errdefs.Invalid("invalid device name %q", n)
		}
		switch d["type"] {
		case "":
			return errdefs.Invalid("device %q: missing type", n)
		case "none":
			if len(d) > 1 {
				return errdefs.Invalid("device %q: type none takes no other keys", n)
			}
		case "disk":
			// The root disk is storage's (rootDiskOf); other disks need
			// the device layer.
			if d["path"] != "/" {
				return errdefs.Invalid("device %q: disk devices other than the root disk need the device layer", n)
			}
			for k := range d {
				if k != "type" && k != "path" && k != "pool" && k != "size" {
					return errdefs.Invalid("device %q: invalid key %q for the root disk", n, k)
				}
			}
		case "nic", "unix-char", "unix-block", "usb", "gpu", "infiniband", "proxy", "tpm", "pci", "unix-hotplug":
			return errdefs.Invalid("device %q: device type %q is not supported yet", n, d["type"])
		default:
			return errdefs.Invalid("device %q: unknown device type %q", n, d["type"])
		}
	}
	return nil
}

// expandConfig layers the profiles' config (in order) under the instance's own.
func expandConfig(local map[string]string, profiles []profileView) map[string]string {
	out := map[string]string{}
	for _, p := range profiles {
		for k, v := range p.Config {
			out[k] = v
		}
	}
	for k, v := range local {
		out[k] = v
	}
	return out
}

// expandDevices layers the profiles' devices under the instance's own.
func expandDevices(local map[string]map[string]string, profiles []profileView) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, p := range profiles {
		for k, v := range p.Devices {
			out[k] = v
		}
	}
	for k, v := range local {
		out[k] = v
	}
	return out
}

// profileView is the part of a profile that expansion reads.
type profileView struct {
	Name    string
	Config  map[string]string
	Devices map[string]map[string]string
}

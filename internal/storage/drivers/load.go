package drivers

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/units"
)

// built are the drivers this hangard has, by name.
var built = map[string]func(Pool) Driver{
	"dir":   newDir,
	"btrfs": newBtrfs,
}

// unbuilt are the drivers LXD has that this hangard has not: each says
// why, from what the running kernel has, for the error a user sees.
var unbuilt = map[string]func() string{
	"lvm": func() string {
		if hasDeviceMapper() {
			return `storage driver "lvm" is not built in this hangard`
		}
		return `storage driver "lvm" needs device-mapper, which this kernel does not have (no /dev/mapper/control, no device-mapper in /proc/misc)`
	},
	"zfs": func() string {
		if _, err := os.Stat("/sys/module/zfs"); err == nil {
			return `storage driver "zfs" is not built in this hangard`
		}
		return `storage driver "zfs" needs the zfs kernel module, which this kernel does not have (no /sys/module/zfs)`
	},
	"ceph":       func() string { return `storage driver "ceph" is not built in this hangard` },
	"cephfs":     func() string { return `storage driver "cephfs" is not built in this hangard` },
	"cephobject": func() string { return `storage driver "cephobject" is not built in this hangard` },
}

// hasDeviceMapper says whether the kernel has device-mapper, which LVM
// needs: its control node, or its entry among the misc devices when no
// device node was made.
func hasDeviceMapper() bool {
	if _, err := os.Stat("/dev/mapper/control"); err == nil {
		return true
	}
	b, err := os.ReadFile("/proc/misc")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == "device-mapper" {
			return true
		}
	}
	return false
}

// Names lists the drivers this hangard has, sorted.
func Names() []string {
	names := make([]string, 0, len(built))
	for n := range built {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// checkDriver returns the 400 for a driver name this hangard cannot load.
func checkDriver(name string) error {
	if _, ok := built[name]; ok {
		return nil
	}
	if why, ok := unbuilt[name]; ok {
		return errdefs.Invalid("%s", why())
	}
	other := make([]string, 0, len(unbuilt))
	for n := range unbuilt {
		other = append(other, n)
	}
	slices.Sort(other)
	return errdefs.Invalid("unknown storage driver %q (known: %s; not built here: %s)",
		name, strings.Join(Names(), ", "), strings.Join(other, ", "))
}

// Load returns the driver for one pool. It does not touch the disk: the
// manager calls Create for a new pool, Mount for a recorded one. Loading
// checks only the driver's name (ValidatePoolConfig checks a config), so a
// pool recorded by an older hangard loads even if a rule got stricter.
//
// A driver's pool-wide calls (Create, Mount, Unmount, Delete, Update)
// must not run concurrently with any other call on the same pool; volume
// calls for different volumes may.
func Load(driverName string, p Pool) (Driver, error) {
	if err := checkDriver(driverName); err != nil {
		return nil, err
	}
	if p.Log == nil {
		p.Log = slog.Default()
	}
	p.Log = p.Log.With("pool", p.Name, "driver", driverName)
	// The driver's own copy: Create and Update change it as the pool's
	// recorded config changes, never the caller's map.
	p.Config = copyConfig(p.Config)
	return built[driverName](p), nil
}

// A checker validates one config value; "" (unset) has been let through.
type checker func(v string) error

// poolKeys are each driver's pool config keys. user.* keys are free.
var poolKeys = map[string]map[string]checker{
	"dir": {
		"source": absPath,
	},
	"btrfs": {
		"source":              absPath,
		"size":                poolSize,
		"btrfs.mount_options": mountOptions,
	},
}

// volumeDefaultKeys are the volume keys a pool may set as defaults for
// its new volumes (volume.KEY), as LXD allows: VolumeDefaults reads them.
var volumeDefaultKeys = map[string]checker{
	"size":              size,
	"security.shifted":  boolean,
	"security.unmapped": boolean,
}

// ValidatePoolConfig checks a pool's config against its driver's table:
// every key known, every value well formed. It does not look at the disk
// (Create checks that a source exists and is free).
func ValidatePoolConfig(driverName string, config map[string]string) error {
	if err := checkDriver(driverName); err != nil {
		return err
	}
	keys := poolKeys[driverName]
	for _, k := range sortedKeys(config) {
		v := config[k]
		if strings.HasPrefix(k, "user.") {
			continue
		}
		check, ok := keys[k]
		if vk, isVol := strings.CutPrefix(k, "volume."); isVol {
			check, ok = volumeDefaultKeys[vk]
		}
		if !ok {
			return errdefs.Invalid("unknown config key %q for a %s pool", k, driverName)
		}
		if v == "" {
			continue
		}
		if err := check(v); err != nil {
			return errdefs.Invalid("%s: %v", k, err)
		}
	}
	if err := exclusiveShift(config["volume.security.shifted"], config["volume.security.unmapped"]); err != nil {
		return errdefs.Invalid("volume.%v", err)
	}
	return nil
}

// VolumeDefaults returns the config a new volume on a pool with this
// config starts from: the pool's volume.KEY entries as KEY.
// security.shifted and security.unmapped apply to custom filesystem
// volumes only, as in LXD.
func VolumeDefaults(poolConfig map[string]string, vol Volume) map[string]string {
	out := map[string]string{}
	for k, v := range poolConfig {
		vk, ok := strings.CutPrefix(k, "volume.")
		if !ok || v == "" {
			continue
		}
		if _, known := volumeDefaultKeys[vk]; !known {
			continue
		}
		if strings.HasPrefix(vk, "security.") && (vol.Type != TypeCustom || vol.Content != ContentFilesystem) {
			continue
		}
		out[vk] = v
	}
	return out
}

// ValidateVolumeConfig checks a volume's config: size (LXD's size units),
// and for custom filesystem volumes security.shifted and
// security.unmapped (booleans, not both true). user.* keys are free.
// Whether the pool can enforce a size is the driver's Info, not a rule of
// the config.
func ValidateVolumeConfig(driverName string, vol Volume, config map[string]string) error {
	if err := checkDriver(driverName); err != nil {
		return err
	}
	for _, k := range sortedKeys(config) {
		v := config[k]
		switch {
		case strings.HasPrefix(k, "user."):
			continue
		case k == "size":
			if v == "" {
				continue
			}
			n, err := units.ParseByteSize(v)
			if err != nil {
				return errdefs.Invalid("size: %v", err)
			}
			if n == 0 && vol.Content == ContentBlock {
				return errdefs.Invalid("size: a block volume needs a size above 0")
			}
		case k == "security.shifted" || k == "security.unmapped":
			if vol.Type != TypeCustom || vol.Content != ContentFilesystem {
				return errdefs.Invalid("%s applies to custom filesystem volumes only", k)
			}
			if v == "" {
				continue
			}
			if err := boolean(v); err != nil {
				return errdefs.Invalid("%s: %v", k, err)
			}
		default:
			return errdefs.Invalid("unknown config key %q for a %s volume", k, vol.Type)
		}
	}
	return exclusiveShift(config["security.shifted"], config["security.unmapped"])
}

func exclusiveShift(shifted, unmapped string) error {
	if isTrue(shifted) && isTrue(unmapped) {
		return errdefs.Invalid("security.shifted and security.unmapped are mutually exclusive")
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func absPath(v string) error {
	if !filepath.IsAbs(v) {
		return fmt.Errorf("%q is not an absolute path", v)
	}
	if filepath.Clean(v) != v {
		return fmt.Errorf("%q is not a clean path (try %q)", v, filepath.Clean(v))
	}
	return nil
}

func size(v string) error {
	_, err := units.ParseByteSize(v)
	return err
}

func poolSize(v string) error {
	n, err := units.ParseByteSize(v)
	if err != nil {
		return err
	}
	if n < minBtrfsSize {
		return fmt.Errorf("%s is below the %d MiB a btrfs filesystem needs", v, minBtrfsSize>>20)
	}
	return nil
}

func mountOptions(v string) error {
	for _, o := range strings.Split(v, ",") {
		if o == "" || strings.ContainsAny(o, " \t\n") {
			return fmt.Errorf("%q is not a comma-separated list of mount options", v)
		}
	}
	return nil
}

func boolean(v string) error {
	switch strings.ToLower(v) {
	case "true", "false", "1", "0", "yes", "no", "on", "off":
		return nil
	}
	return fmt.Errorf("%q is not a boolean (true or false)", v)
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

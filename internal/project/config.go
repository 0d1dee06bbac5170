package project

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/units"
)

// Features lists the feature keys with whether a new project has them
// when the request does not say (LXD's projectsPost defaults).
var Features = []struct {
	Key            string
	DefaultEnabled bool
}{
	{FeatureImages, true},
	{FeatureProfiles, true},
	{FeatureStorageVolumes, true},
	{FeatureNetworks, false},
}

// restrictionDefaults are the restricted.* keys hangard enforces, with the
// value each takes in a project with restricted=true that does not set it
// (LXD's defaults). Keys LXD has that hangard does not enforce
// (restricted.cluster.*, restricted.networks.*) are refused, not
// silently accepted.
var restrictionDefaults = map[string]string{
	"restricted.backups":                   "block",
	"restricted.snapshots":                 "block",
	"restricted.containers.nesting":        "block",
	"restricted.containers.interception":   "block",
	"restricted.containers.lowlevel":       "block",
	"restricted.containers.privilege":      "unprivileged",
	"restricted.virtual-machines.lowlevel": "block",
	"restricted.devices.unix-char":         "block",
	"restricted.devices.unix-block":        "block",
	"restricted.devices.unix-hotplug":      "block",
	"restricted.devices.infiniband":        "block",
	"restricted.devices.gpu":               "block",
	"restricted.devices.usb":               "block",
	"restricted.devices.pci":               "block",
	"restricted.devices.proxy":             "block",
	"restricted.devices.nic":               "managed",
	"restricted.devices.disk":              "managed",
	"restricted.devices.disk.paths":        "",
	"restricted.idmap.uid":                 "",
	"restricted.idmap.gid":                 "",
}

// configKeys validates each project key's value.
var configKeys = map[string]func(string) error{
	FeatureImages:             isBool,
	FeatureProfiles:           isBool,
	FeatureStorageVolumes:     isBool,
	FeatureNetworks:           isBool,
	"limits.instances":        isUint32,
	"limits.containers":       isUint32,
	"limits.virtual-machines": isUint32,
	"limits.processes":        isUint32,
	"limits.networks":         isUint32,
	"limits.cpu":              isUint32,
	"limits.memory":           isSizeOrPercent,
	"limits.disk":             isSize,
	"restricted":              isBool,

	"restricted.backups":                   oneOf("allow", "block"),
	"restricted.snapshots":                 oneOf("allow", "block"),
	"restricted.containers.nesting":        oneOf("allow", "block"),
	"restricted.containers.interception":   oneOf("allow", "block", "full"),
	"restricted.containers.lowlevel":       oneOf("allow", "block"),
	"restricted.containers.privilege":      oneOf("allow", "unprivileged", "isolated"),
	"restricted.virtual-machines.lowlevel": oneOf("allow", "block"),
	"restricted.devices.unix-char":         oneOf("allow", "block"),
	"restricted.devices.unix-block":        oneOf("allow", "block"),
	"restricted.devices.unix-hotplug":      oneOf("allow", "block"),
	"restricted.devices.infiniband":        oneOf("allow", "block"),
	"restricted.devices.gpu":               oneOf("allow", "block"),
	"restricted.devices.usb":               oneOf("allow", "block"),
	"restricted.devices.pci":               oneOf("allow", "block"),
	"restricted.devices.proxy":             oneOf("allow", "block"),
	"restricted.devices.nic":               oneOf("allow", "block", "managed"),
	"restricted.devices.disk":              oneOf("allow", "block", "managed"),
	"restricted.devices.disk.paths":        isAbsPathList,
	"restricted.idmap.uid":                 isIDRangeList,
	"restricted.idmap.gid":                 isIDRangeList,
}

// ValidateConfig checks every key of a project's config: unknown keys and
// bad values are ErrInvalidArgument naming the key. user.* keys are free.
func ValidateConfig(config map[string]string) error {
	keys := make([]string, 0, len(config))
	for k := range config {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first bad key in a stable order
	for _, k := range keys {
		if strings.HasPrefix(k, "user.") {
			continue
		}
		check, ok := configKeys[k]
		if !ok {
			return errdefs.Invalid("invalid project configuration key %q", k)
		}
		if config[k] == "" {
			continue // unset
		}
		if err := check(config[k]); err != nil {
			return errdefs.Invalid("invalid project configuration key %q value: %v", k, err)
		}
	}
	// A restricted project's profiles must be its own: the default
	// project's would carry settings its restrictions never checked.
	if isTrue(config["restricted"]) && !isTrue(config[FeatureProfiles]) {
		return errdefs.Invalid("projects without their own profiles cannot be restricted")
	}
	return nil
}

// ValidateName checks a project name as LXD does: it appears in URLs,
// query strings and file names.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errdefs.Invalid("no project name provided")
	case strings.Contains(name, "/"):
		return errdefs.Invalid("project names may not contain slashes")
	case strings.Contains(name, " "):
		return errdefs.Invalid("project names may not contain spaces")
	case strings.Contains(name, "_"):
		return errdefs.Invalid("project names may not contain underscores")
	case strings.ContainsAny(name, `'"`):
		return errdefs.Invalid("project names may not contain quotes")
	case name == "*":
		return errdefs.Invalid("reserved project name %q", name)
	case name == "." || name == "..":
		return errdefs.Invalid("invalid project name %q", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errdefs.Invalid("project names may not contain control characters")
	}
	return nil
}

// isTrue and isBool read booleans as LXD does.
func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

func isBool(v string) error {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on", "false", "0", "no", "off":
		return nil
	}
	return fmt.Errorf("%q is not a boolean", v)
}

func isUint32(v string) error {
	if _, err := strconv.ParseUint(v, 10, 32); err != nil {
		return fmt.Errorf("%q is not a whole number from 0 to %d", v, uint32(1<<32-1))
	}
	return nil
}

func isSize(v string) error {
	_, err := units.ParseByteSize(v)
	return err
}

func isSizeOrPercent(v string) error {
	if p, ok := strings.CutSuffix(v, "%"); ok {
		if n, err := strconv.ParseUint(p, 10, 8); err != nil || n > 100 {
			return fmt.Errorf("%q is not a percentage from 0%% to 100%%", v)
		}
		return nil
	}
	return isSize(v)
}

func oneOf(values ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(values, v) {
			return fmt.Errorf("%q is not one of %s", v, strings.Join(values, ", "))
		}
		return nil
	}
}

func isAbsPathList(v string) error {
	for _, p := range splitList(v) {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("%q is not an absolute path", p)
		}
	}
	return nil
}

func isIDRangeList(v string) error {
	_, err := parseIDRanges(v)
	return err
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// idRange is an inclusive range of host IDs.
type idRange struct{ lo, hi uint32 }

// parseIDRanges reads "1000,2000-2100" into ranges.
func parseIDRanges(v string) ([]idRange, error) {
	var out []idRange
	for _, s := range splitList(v) {
		r, err := parseIDRange(s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func parseIDRange(s string) (idRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 32)
	if err != nil {
		return idRange{}, fmt.Errorf("%q is not an ID or an ID range", s)
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 32); err != nil || b < a {
			return idRange{}, fmt.Errorf("%q is not an ID or an ID range", s)
		}
	}
	return idRange{uint32(a), uint32(b)}, nil
}

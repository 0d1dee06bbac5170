package project

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Instance types CheckRestrictions knows; "" is a profile, which may end
// up on either and so must pass both's rules (as LXD).
const (
	TypeContainer      = "container"
	TypeVirtualMachine = "virtual-machine"
	TypeProfile        = ""
)

// restriction returns the value of a restricted.* key in effect for p:
// "allow" when p is not restricted, else its own value or LXD's default.
func (p Project) restriction(key string) string {
	if !isTrue(p.Config["restricted"]) {
		return "allow"
	}
	if v, ok := p.Config[key]; ok && v != "" {
		return v
	}
	return restrictionDefaults[key]
}

// Restricted reports whether p has restricted=true.
func (p Project) Restricted() bool { return isTrue(p.Config["restricted"]) }

// containerLowLevel are the container keys restricted.containers.lowlevel
// guards (LXD's list; raw.idmap is checked against restricted.idmap.*).
var containerLowLevel = []string{
	"boot.host_shutdown_timeout",
	"linux.kernel_modules",
	"raw.apparmor",
	"raw.lxc",
	"raw.seccomp",
	"security.devlxd.images",
	"security.idmap.base",
	"security.idmap.size",
}

// vmLowLevel are the VM keys restricted.virtual-machines.lowlevel guards.
var vmLowLevel = []string{
	"boot.host_shutdown_timeout",
	"limits.memory.hugepages",
	"raw.qemu",
}

// interceptKeys are the syscall interceptions
// restricted.containers.interception=allow lets through; "full" lets
// every security.syscalls.intercept.* key through.
var interceptKeys = []string{
	"security.syscalls.intercept.bpf",
	"security.syscalls.intercept.bpf.devices",
	"security.syscalls.intercept.mknod",
	"security.syscalls.intercept.mount",
	"security.syscalls.intercept.mount.fuse",
	"security.syscalls.intercept.setxattr",
	"security.syscalls.intercept.sysinfo",
}

// CheckRestrictions checks an instance's (or, with instType "", a
// profile's) expanded config and devices against p's restricted.* keys.
// A project without restricted=true allows everything. A refusal is
// ErrForbidden naming the key, the object and the project. It reads
// nothing but its arguments, so the core calls it wherever it has them.
func CheckRestrictions(p Project, instType string, config map[string]string, devices map[string]map[string]string) error {
	if !p.Restricted() {
		return nil
	}
	what := instType
	if what == TypeProfile {
		what = "profile"
	}
	isCT := instType == TypeContainer || instType == TypeProfile
	isVM := instType == TypeVirtualMachine || instType == TypeProfile
	forbid := func(format string, a ...any) error {
		return errdefs.Forbidden("%s in project %q: %s", what, p.Name, fmt.Sprintf(format, a...))
	}

	keys := make([]string, 0, len(config))
	for k := range config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ctLow := p.restriction("restricted.containers.lowlevel") == "allow"
	vmLow := p.restriction("restricted.virtual-machines.lowlevel") == "allow"
	for _, k := range keys {
		v := config[k]
		switch {
		case k == "raw.idmap" && !((!isCT || ctLow) && (!isVM || vmLow)):
			if err := p.checkIDMap(v); err != nil {
				return forbid("%v", err)
			}
		case isCT && !ctLow && slices.Contains(containerLowLevel, k):
			return forbid("low-level config %q is forbidden (restricted.containers.lowlevel)", k)
		case isVM && !vmLow && slices.Contains(vmLowLevel, k):
			return forbid("low-level config %q is forbidden (restricted.virtual-machines.lowlevel)", k)
		}
		if !isCT {
			continue
		}
		switch {
		case k == "security.nesting" && isTrue(v) && p.restriction("restricted.containers.nesting") == "block":
			return forbid("container nesting is forbidden (restricted.containers.nesting)")
		case k == "security.privileged" && isTrue(v) && p.restriction("restricted.containers.privilege") != "allow":
			return forbid("privileged containers are forbidden (restricted.containers.privilege)")
		case strings.HasPrefix(k, "security.syscalls.intercept.") && isTrue(v):
			switch p.restriction("restricted.containers.interception") {
			case "block":
				return forbid("container syscall interception is forbidden (restricted.containers.interception)")
			case "allow":
				if !slices.Contains(interceptKeys, k) {
					return forbid("%q is forbidden (restricted.containers.interception)", k)
				}
			}
		}
	}
	if instType == TypeContainer && p.restriction("restricted.containers.privilege") == "isolated" && !isTrue(config["security.idmap.isolated"]) {
		return forbid("non-isolated containers are forbidden (restricted.containers.privilege=isolated needs security.idmap.isolated=true)")
	}

	names := make([]string, 0, len(devices))
	for n := range devices {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := p.checkDevice(devices[n]); err != nil {
			return forbid("device %q: %v", n, err)
		}
	}
	return nil
}

// checkDevice checks one device against restricted.devices.*.
func (p Project) checkDevice(d map[string]string) error {
	typ := d["type"]
	key := "restricted.devices." + typ
	switch typ {
	case "unix-char", "unix-block", "unix-hotplug", "infiniband", "gpu", "usb", "pci", "proxy":
		if p.restriction(key) != "allow" {
			return fmt.Errorf("%s devices are forbidden (%s)", typ, key)
		}
	case "nic":
		switch p.restriction(key) {
		case "block":
			return fmt.Errorf("network devices are forbidden (%s)", key)
		case "managed":
			if d["network"] == "" {
				return fmt.Errorf("only managed network devices (network=...) are allowed (%s)", key)
			}
		}
	case "disk":
		// The root disk is always allowed, as LXD.
		if d["path"] == "/" && d["pool"] != "" {
			return nil
		}
		switch p.restriction(key) {
		case "block":
			return fmt.Errorf("disk devices are forbidden (%s)", key)
		case "managed":
			if d["pool"] == "" {
				return fmt.Errorf("disks not backed by a storage pool are forbidden (%s)", key)
			}
		case "allow":
			if paths := splitList(p.restriction("restricted.devices.disk.paths")); d["pool"] == "" && len(paths) > 0 && !underAny(d["source"], paths) {
				return fmt.Errorf("disk source %q is outside restricted.devices.disk.paths", d["source"])
			}
		}
	}
	return nil
}

// underAny reports whether path is one of dirs or below one.
func underAny(path string, dirs []string) bool {
	path = filepath.Clean(path)
	for _, d := range dirs {
		d = filepath.Clean(d)
		if path == d || strings.HasPrefix(path, d+"/") || d == "/" {
			return true
		}
	}
	return false
}

// checkIDMap checks raw.idmap's host IDs against restricted.idmap.uid and
// restricted.idmap.gid: an entry is allowed when its host range lies
// inside an allowed range.
func (p Project) checkIDMap(raw string) error {
	uids, err := parseIDRanges(p.restriction("restricted.idmap.uid"))
	if err != nil {
		return fmt.Errorf("restricted.idmap.uid: %w", err)
	}
	gids, err := parseIDRanges(p.restriction("restricted.idmap.gid"))
	if err != nil {
		return fmt.Errorf("restricted.idmap.gid: %w", err)
	}
	for i, line := range strings.Split(raw, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return fmt.Errorf("raw.idmap line %d %q is not \"uid|gid|both HOST NS\"", i+1, line)
		}
		host, err := parseIDRange(f[1])
		if err != nil {
			return fmt.Errorf("raw.idmap line %d: %w", i+1, err)
		}
		var ok bool
		switch f[0] {
		case "uid":
			ok = covered(host, uids)
		case "gid":
			ok = covered(host, gids)
		case "both":
			ok = covered(host, uids) && covered(host, gids)
		default:
			return fmt.Errorf("raw.idmap line %d %q is not \"uid|gid|both HOST NS\"", i+1, line)
		}
		if !ok {
			return fmt.Errorf("raw.idmap entry %d maps host IDs %s outside restricted.idmap.uid/gid", i, f[1])
		}
	}
	return nil
}

func covered(r idRange, allowed []idRange) bool {
	return slices.ContainsFunc(allowed, func(a idRange) bool { return a.lo <= r.lo && r.hi <= a.hi })
}

// AllowSnapshot refuses a snapshot in a project with
// restricted.snapshots=block.
func AllowSnapshot(p Project) error {
	if p.restriction("restricted.snapshots") == "block" {
		return errdefs.Forbidden("project %q does not allow snapshots (restricted.snapshots)", p.Name)
	}
	return nil
}

// AllowBackup refuses a backup in a project with restricted.backups=block.
func AllowBackup(p Project) error {
	if p.restriction("restricted.backups") == "block" {
		return errdefs.Forbidden("project %q does not allow backups (restricted.backups)", p.Name)
	}
	return nil
}

package qemu

import (
	"os"
	"path/filepath"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

// A VM's extra mounts (Spec.Mounts: host directories and filesystem
// volumes) are 9p shares: virtiofsd is not packaged on this Debian, and
// QEMU serves 9p itself. Each is an fsdev (local backend,
// security_model=passthrough: the guest sees the host's owners and modes,
// which root QEMU can set; multidevs=remap: a source spanning several
// host filesystems cannot show the guest two files with one inode number)
// and a virtio-9p-pci device whose mount tag is the mount's name (at most
// 31 bytes, else "h" and a hash). readonly=on makes QEMU refuse every
// write; the agent mounts each share at its Destination at boot, read-only
// too, before the workload starts. A VM booted by firmware gets the
// devices; its own OS mounts them by tag.
//
// QEMU has no QMP command to add an fsdev to a running VM (7.2, and
// still), so shares change at the next start; and it refuses to save a VM
// whose 9p share is mounted (a migration blocker), so Standby refuses a VM
// with shares.

// tagLen is QEMU's limit on a 9p mount tag.
const tagLen = 31

// shareTag is a mount's 9p tag.
func shareTag(m driver.Mount) string {
	name := m.Name
	if name == "" {
		name = m.Destination
	}
	if len(name) <= tagLen && safeName(name) {
		return name
	}
	return "h" + hashOf([]byte(name)) // 25 bytes
}

// checkMounts says what is wrong with a VM's mounts: each a directory
// (9p shares directories), at an absolute destination other than the
// root, no two with one tag or destination.
func checkMounts(mounts []driver.Mount) error {
	tags, dests := map[string]string{}, map[string]bool{}
	for _, m := range mounts {
		what := m.Name
		if what == "" {
			what = m.Destination
		}
		if m.Type != "" && m.Type != "bind" {
			return errdefs.Invalid("mount %s: type %q: a VM shares host directories (bind)", what, m.Type)
		}
		if !filepath.IsAbs(m.Source) {
			return errdefs.Invalid("mount %s: source %q is not absolute", what, m.Source)
		}
		dest := filepath.Clean(m.Destination)
		if !filepath.IsAbs(m.Destination) || dest == "/" {
			return errdefs.Invalid("mount %s: path %q: want an absolute path other than /", what, m.Destination)
		}
		st, err := os.Stat(m.Source)
		if err != nil {
			if os.IsNotExist(err) {
				return errdefs.NotFound("mount %s: source %s does not exist", what, m.Source)
			}
			return errdefs.Invalid("mount %s: source %s: %v", what, m.Source, err)
		}
		if !st.IsDir() {
			return errdefs.Invalid("mount %s: source %s is not a directory: a VM shares directories (9p), not files", what, m.Source)
		}
		tag := shareTag(m)
		if other, ok := tags[tag]; ok {
			return errdefs.Invalid("mounts %s and %s have the same 9p tag %s: rename one", other, what, tag)
		}
		if dests[dest] {
			return errdefs.Invalid("mount %s: two mounts at %s", what, dest)
		}
		tags[tag], dests[dest] = what, true
	}
	return nil
}

// shareArgs is the command line of the 9p shares.
func shareArgs(mounts []driver.Mount) []string {
	var args []string
	for _, m := range mounts {
		tag := shareTag(m)
		fsdev := "local,id=fs-" + tag + ",path=" + optEscape(m.Source) + ",security_model=passthrough,multidevs=remap"
		if m.ReadOnly {
			fsdev += ",readonly=on"
		}
		args = append(args, "-fsdev", fsdev,
			"-device", "virtio-9p-pci,id=share-"+tag+",fsdev=fs-"+tag+",mount_tag="+tag)
	}
	return args
}

// agentMounts is what the agent mounts.
func agentMounts(mounts []driver.Mount) []vmagent.Mount {
	var out []vmagent.Mount
	for _, m := range mounts {
		out = append(out, vmagent.Mount{Tag: shareTag(m), Path: filepath.Clean(m.Destination), ReadOnly: m.ReadOnly})
	}
	return out
}

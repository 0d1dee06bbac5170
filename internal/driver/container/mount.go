package container

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// overlayPathOptions are the overlay options whose values are host paths.
// The driver passes options to the kernel as one comma-separated string
// (mount(2)) and lowerdir separates its layers with ':', so a path holding
// ',' or ':' (or '\', overlayfs' escape) would be read as something else:
// such paths are refused rather than escaped.
var overlayPathOptions = map[string]bool{"lowerdir": true, "upperdir": true, "workdir": true}

// rootMount returns the mount that makes spec's root and whether it is
// the driver's own legacy layer (legacy is true when the core filled the
// deprecated RootFS instead of Root).
//
// The legacy case goes once the core fills Root (issue 12): with no
// Root.Mounts the driver builds today's root itself, an overlay of RootFS
// under Dir/<id>/upper (work dir Dir/<id>/work), or upper alone
// bind-mounted when RootFS is empty, and makes upper and work as before.
func (d *Driver) rootMount(spec driver.Spec) (m driver.Mount, legacy bool, err error) {
	if len(spec.Root.Mounts) == 0 {
		dir := d.instanceDir(spec.ID)
		upper := filepath.Join(dir, "upper")
		//lint:ignore SA1019 the legacy root, until the core fills Root (issue 12)
		lower := spec.RootFS
		if lower == "" {
			return driver.Mount{Type: "bind", Source: upper}, true, nil
		}
		if strings.ContainsAny(lower, ",:\\") {
			return driver.Mount{}, true, errdefs.Invalid("root filesystem path %q contains one of , : \\", lower)
		}
		return driver.Mount{Type: "overlay", Source: "overlay", Options: []string{
			"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + filepath.Join(dir, "work"),
		}}, true, nil
	}
	if len(spec.Root.Mounts) > 1 {
		// Stacking more mounts over the root would need mounts inside
		// the detached tree OpenRoot hands out; no storage driver asks
		// for it.
		return driver.Mount{}, false, errdefs.Invalid("a root of %d mounts: only one is supported", len(spec.Root.Mounts))
	}
	m = spec.Root.Mounts[0]
	if err := checkRootMount(m); err != nil {
		return driver.Mount{}, false, err
	}
	return m, false, nil
}

// checkRootMount checks a root mount before anything is mounted.
func checkRootMount(m driver.Mount) error {
	if m.Destination != "" && m.Destination != "/" {
		return errdefs.Invalid("root mount at %q: a root mount has no destination", m.Destination)
	}
	switch m.Type {
	case "overlay":
		seen := map[string]bool{}
		for _, o := range m.Options {
			k, v, _ := strings.Cut(o, "=")
			if o == "" || strings.ContainsAny(o, ",\\") && !overlayPathOptions[k] {
				return errdefs.Invalid("overlay option %q", o)
			}
			if !overlayPathOptions[k] {
				continue
			}
			if seen[k] {
				return errdefs.Invalid("overlay option %s given twice", k)
			}
			seen[k] = true
			paths := []string{v}
			if k == "lowerdir" {
				paths = strings.Split(v, ":")
			}
			for _, p := range paths {
				if !filepath.IsAbs(p) || strings.ContainsAny(p, ",:\\") {
					return errdefs.Invalid("overlay %s %q: not an absolute path, or contains one of , : \\", k, p)
				}
			}
		}
		if !seen["lowerdir"] {
			return errdefs.Invalid("overlay root without lowerdir")
		}
		if seen["upperdir"] != seen["workdir"] {
			return errdefs.Invalid("overlay root needs both upperdir and workdir, or neither")
		}
	case "bind":
		if !filepath.IsAbs(m.Source) {
			return errdefs.Invalid("root bind source %q is not an absolute path", m.Source)
		}
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("root bind source: %w", err)
		}
		if !fi.IsDir() {
			return errdefs.Invalid("root bind source %s is not a directory", m.Source)
		}
	default:
		return errdefs.Invalid("root mount of type %q: only overlay and bind are supported", m.Type)
	}
	return nil
}

// mountRootfs mounts the container's root m (checked) at target.
func mountRootfs(m driver.Mount, target string) error {
	if m.Type == "bind" {
		if err := unix.Mount(m.Source, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount %s on %s: %w", m.Source, target, err)
		}
		return nil
	}
	opts := strings.Join(m.Options, ",")
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay on %s (%s): %w", target, opts, err)
	}
	return nil
}

// unmountAll unmounts everything stacked on target. Not mounted is fine.
func unmountAll(target string) error {
	for range 8 {
		err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		switch {
		case err == nil:
			continue // another mount may be stacked below
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil // not a mount point (any more)
		case errors.Is(err, unix.EBUSY):
			// Something (a process that escaped, another mount namespace)
			// still holds it: detach it so the path is free; the kernel
			// finishes when the last user goes.
			if err := unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
				return fmt.Errorf("unmount %s: %w", target, err)
			}
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted", target)
}

// mountPoints returns the mount points of the calling process's mount
// namespace whose path is prefix or under it.
func mountPoints(prefix string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ...
		fields := strings.SplitN(sc.Text(), " ", 6)
		if len(fields) < 6 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == prefix || strings.HasPrefix(mp, prefix+"/") {
			out = append(out, mp)
		}
	}
	return out, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for space...) of
// /proc/self/mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

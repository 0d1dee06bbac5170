package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
)

var _ driver.RootOpener = (*Driver)(nil)

// errNotMounted says a running container's root was gone when it was
// opened: the container stopped in between.
var errNotMounted = errors.New("rootfs is not mounted")

// rootAttrs are forced on every root handed out by OpenRoot: the daemon
// runs as host root, so a device node or setuid file the instance made
// must mean nothing through it.
const rootAttrs = unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID

// OpenRoot returns the container's root filesystem: while it runs, its
// root as its processes see it (openLiveRoot); else a detached mount of
// the root storage made (spec.Root: a fresh overlay, or a bind of a
// directory). Detached mounts live exactly as long as their file and are
// in no mount table, so a crashed daemon leaves no mount behind.
func (d *Driver) OpenRoot(ctx context.Context, spec driver.Spec) (*os.File, error) {
	id := spec.ID
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("open root of %s: %w", id, err)
	}
	m, legacy, err := d.rootMount(spec)
	if err != nil {
		return nil, fmt.Errorf("open root of %s: %w", id, err)
	}
	if in := d.lookup(id); in != nil {
		f, err := d.openLiveRoot(in)
		if !errors.Is(err, errNotMounted) {
			if err != nil {
				return nil, fmt.Errorf("open root of %s: %w", id, err)
			}
			return f, nil
		}
		// It exited since the lookup; its layer is free to mount.
	}
	if legacy {
		if err := prepareLayer(d.instanceDir(id), spec.IDMap); err != nil {
			return nil, fmt.Errorf("open root of %s: %w", id, err)
		}
	}
	f, err := mountDetachedRoot(m, d.rootfsDir(id))
	if err != nil {
		return nil, fmt.Errorf("open root of %s: %w", id, err)
	}
	return f, nil
}

// openLiveRoot opens a running container's root as its processes see it:
// /proc/PID1/root, with the mounts of its mount namespace (a tmpfs on
// /tmp, say) below it, which a clone of the rootfs mount alone would miss.
// fsroot crosses only into mounts of data filesystems (not /proc, /sys,
// devpts...) and opens only regular files, so what lies under it is never
// the host's and no device is opened.
func (d *Driver) openLiveRoot(in *instance) (*os.File, error) {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/root", in.pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, errNotMounted
	}
	// The pid named PID 1 when opened only if PID 1 is still alive now.
	if err := unix.PidfdSendSignal(int(in.pidfd.Fd()), 0, nil, 0); err != nil {
		unix.Close(fd)
		return nil, errNotMounted
	}
	return os.NewFile(uintptr(fd), "root"), nil
}

// mountDetachedRoot mounts a stopped container's root m (checked) for
// the caller alone: a detached mount, nodev and nosuid, named name.
func mountDetachedRoot(m driver.Mount, name string) (*os.File, error) {
	attrs := uint64(rootAttrs)
	if m.ReadOnly {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	if m.Type == "bind" {
		fd, err := unix.OpenTree(unix.AT_FDCWD, m.Source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("bind %s: %w", m.Source, err)
		}
		attr := unix.MountAttr{Attr_set: attrs}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("make root nodev,nosuid: %w", err)
		}
		return os.NewFile(uintptr(fd), m.Source), nil
	}
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open overlay filesystem context: %w", err)
	}
	defer unix.Close(fsfd)
	for _, o := range m.Options {
		if k, v, ok := strings.Cut(o, "="); ok {
			err = unix.FsconfigSetString(fsfd, k, v)
		} else {
			err = unix.FsconfigSetFlag(fsfd, o)
		}
		if err != nil {
			return nil, fmt.Errorf("overlay option %s: %w", o, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, fmt.Errorf("create overlay (%s): %w", strings.Join(m.Options, ","), err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, int(attrs))
	if err != nil {
		return nil, fmt.Errorf("mount overlay (%s): %w", strings.Join(m.Options, ","), err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// prepareLayer makes the instance dir, its legacy writable layer and
// overlay work dir when missing (an instance that never ran has none), for
// Start and OpenRoot alike. The root of the merged tree takes its owner
// from upper: it is made the container's root at every call, so that root
// owns "/" in a user namespace (whose map may have changed since).
func prepareLayer(dir string, m *driver.IDMap) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	upper := filepath.Join(dir, "upper")
	if err := os.Mkdir(upper, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	var rootID int
	if m != nil {
		rootID = int(m.HostID)
	}
	if err := os.Lchown(upper, rootID, rootID); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "work"), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

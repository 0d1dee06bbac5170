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
	"github.com/hangar-dev/hangar/internal/errdefs"
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
// root as its processes see it (openLiveRoot); else a detached mount of a
// fresh overlay of spec.RootFS and the writable layer (or the layer
// alone). Detached mounts live exactly as long as their file and are in no
// mount table, so a crashed daemon leaves no mount behind.
func (d *Driver) OpenRoot(ctx context.Context, spec driver.Spec) (*os.File, error) {
	id := spec.ID
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("open root of %s: %w", id, err)
	}
	if strings.ContainsAny(spec.RootFS, ",:\\") {
		return nil, fmt.Errorf("open root of %s: %w", id, errdefs.Invalid("root filesystem path %q contains one of , : \\", spec.RootFS))
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
	f, err := d.mountRoot(spec)
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

// mountRoot mounts a stopped container's root for the caller alone.
func (d *Driver) mountRoot(spec driver.Spec) (*os.File, error) {
	dir := d.instanceDir(spec.ID)
	upper := filepath.Join(dir, "upper")
	work := filepath.Join(dir, "work")
	if err := prepareLayer(dir, spec.IDMap); err != nil {
		return nil, err
	}
	if spec.RootFS == "" {
		fd, err := unix.OpenTree(unix.AT_FDCWD, upper, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("bind %s: %w", upper, err)
		}
		if err := setRootAttrs(fd); err != nil {
			unix.Close(fd)
			return nil, err
		}
		return os.NewFile(uintptr(fd), upper), nil
	}
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open overlay filesystem context: %w", err)
	}
	defer unix.Close(fsfd)
	for _, kv := range [][2]string{{"lowerdir", spec.RootFS}, {"upperdir", upper}, {"workdir", work}} {
		if err := unix.FsconfigSetString(fsfd, kv[0], kv[1]); err != nil {
			return nil, fmt.Errorf("overlay %s=%s: %w", kv[0], kv[1], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, fmt.Errorf("create overlay of %s: %w", spec.RootFS, err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, rootAttrs)
	if err != nil {
		return nil, fmt.Errorf("mount overlay of %s: %w", spec.RootFS, err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "rootfs")), nil
}

// prepareLayer makes the instance dir, its writable layer and overlay work
// dir when missing (an instance that never ran has none), as Start would.
func prepareLayer(dir string, m *driver.IDMap) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	upper := filepath.Join(dir, "upper")
	err := os.Mkdir(upper, 0o755)
	switch {
	case err == nil:
		// The merged root takes its owner from upper: the container's root.
		var rootID int
		if m != nil {
			rootID = int(m.HostID)
		}
		if err := os.Lchown(upper, rootID, rootID); err != nil {
			return err
		}
	case !errors.Is(err, os.ErrExist):
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "work"), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

func setRootAttrs(fd int) error {
	attr := unix.MountAttr{Attr_set: rootAttrs}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("make root nodev,nosuid: %w", err)
	}
	return nil
}

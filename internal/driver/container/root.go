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

// errNotMounted says a running container's rootfs mount was gone when it
// was cloned: the container stopped in between.
var errNotMounted = errors.New("rootfs is not mounted")

// rootAttrs are forced on every root handed out by OpenRoot: the daemon
// runs as host root, so a device node or setuid file the instance made
// must mean nothing through it.
const rootAttrs = unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID

// OpenRoot returns a detached mount of the container's root filesystem:
// a clone of the live rootfs mount while the container runs, else a fresh
// overlay of spec.RootFS and the writable layer (or the layer alone).
// Detached mounts live exactly as long as their file and are in no mount
// table, so a crashed daemon leaves no mount behind and a Stop that
// unmounts the live rootfs is not blocked by a file transfer.
func (d *Driver) OpenRoot(ctx context.Context, spec driver.Spec) (*os.File, error) {
	id := spec.ID
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("open root of %s: %w", id, err)
	}
	if strings.ContainsAny(spec.RootFS, ",:\\") {
		return nil, fmt.Errorf("open root of %s: %w", id, errdefs.Invalid("root filesystem path %q contains one of , : \\", spec.RootFS))
	}
	if d.lookup(id) != nil {
		f, err := d.cloneLiveRoot(spec)
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

// cloneLiveRoot clones the rootfs mount of a running container.
func (d *Driver) cloneLiveRoot(spec driver.Spec) (*os.File, error) {
	path := d.rootfsDir(spec.ID)
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if errors.Is(err, unix.ENOENT) {
		return nil, errNotMounted
	}
	if err != nil {
		return nil, fmt.Errorf("clone %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	// Once unmounted, path is a plain directory of the host filesystem
	// and the clone would be that: files written there would hide under
	// the next start's mount. Only the container's own root will do.
	ok, err := d.isInstanceRoot(fd, spec)
	if err == nil && !ok {
		err = errNotMounted
	}
	if err == nil {
		err = setRootAttrs(fd)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// isInstanceRoot says whether fd is the root of spec's overlay (or, with no
// image, the writable layer itself) rather than the empty mount point.
func (d *Driver) isInstanceRoot(fd int, spec driver.Spec) (bool, error) {
	if spec.RootFS != "" {
		var fs unix.Statfs_t
		if err := unix.Fstatfs(fd, &fs); err != nil {
			return false, fmt.Errorf("statfs rootfs: %w", err)
		}
		return fs.Type == unix.OVERLAYFS_SUPER_MAGIC, nil
	}
	var got, upper unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		return false, fmt.Errorf("stat rootfs: %w", err)
	}
	if err := unix.Stat(filepath.Join(d.instanceDir(spec.ID), "upper"), &upper); err != nil {
		return false, fmt.Errorf("stat upper: %w", err)
	}
	return got.Dev == upper.Dev && got.Ino == upper.Ino, nil
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

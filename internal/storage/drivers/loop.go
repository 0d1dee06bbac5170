package drivers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// attachLoop attaches file to a free loop device through the kernel
// (LOOP_CTL_GET_FREE, LOOP_CONFIGURE) with autoclear: the device detaches
// itself when its last user goes, so once the filesystem on it is
// mounted and the returned file closed, unmounting frees the device and
// a crash leaves no device behind. The caller mounts, then closes dev.
func attachLoop(file string) (dev *os.File, err error) {
	backing, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	// Another process may take the device GET_FREE handed out before we
	// configure it (EBUSY): ask again.
	for range 16 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("find a free loop device: %w", err)
		}
		name := fmt.Sprintf("/dev/loop%d", n)
		dev, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR | unix.LO_FLAGS_DIRECT_IO
		copy(cfg.Info.File_name[:], file)
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if errors.Is(err, unix.EINVAL) {
			// Direct I/O needs the backing filesystem's block size to
			// match: fall back to buffered I/O.
			cfg.Info.Flags &^= unix.LO_FLAGS_DIRECT_IO
			err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		}
		if errors.Is(err, unix.EBUSY) {
			dev.Close()
			continue
		}
		if err != nil {
			dev.Close()
			return nil, fmt.Errorf("attach %s to %s: %w", file, name, err)
		}
		return dev, nil
	}
	return nil, fmt.Errorf("attach %s: every free loop device was taken before it could be configured", file)
}

// loopFor returns, opened, a loop device already backed by file, or nil.
// A pool's filesystem can outlive its unmount: a mount namespace made
// while it was mounted (a container being set up, an unshare) holds a
// copy of the mount, and the autoclear loop device stays until that copy
// goes. Mounting the pool again must mount that same device, which gives
// the same live filesystem; a second loop device on the file would read
// the disk behind the live one's back and show (then write) stale data.
func loopFor(file string) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Stat(file, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: file, Err: err}
	}
	paths, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		name := filepath.Base(filepath.Dir(filepath.Dir(p)))
		dev, err := os.OpenFile("/dev/"+name, os.O_RDWR, 0)
		if err != nil {
			continue // detached meanwhile
		}
		info, err := unix.IoctlLoopGetStatus64(int(dev.Fd()))
		if err == nil && info.Inode == st.Ino && info.Device == st.Dev {
			return dev, nil
		}
		dev.Close()
	}
	return nil, nil
}

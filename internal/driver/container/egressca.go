package container

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/fsroot"
)

// maxCABundle bounds the bundle read from a root: a distribution's is
// about 200 KiB; a bigger file is not one.
const maxCABundle = 16 << 20

// trustEgressCA makes the container whose root is mounted at rootfs trust
// certPEM, the egress proxy's CA (driver.TrustCA): the certificate alone
// in driver.GuestCAFile and hangar's block in driver.GuestCABundle, made
// when absent (with their directories, owned by the container's root:
// host uid owner), each written only when it changes, so restarts leave
// it as it is. An empty certPEM undoes what an earlier start did, if it
// did anything.
//
// The root is the instance's, so every path is walked with fsroot: a
// symlink the image or an earlier run left (/etc/ssl -> /host/...) is
// resolved inside the root, never on the host.
func trustEgressCA(rootfs string, certPEM []byte, owner uint32) error {
	fd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open root: %w", err)
	}
	dir := os.NewFile(uintptr(fd), rootfs)
	defer dir.Close()
	r := fsroot.New(dir)

	if len(certPEM) == 0 {
		if _, _, err := r.Stat(driver.GuestCAFile, false); err != nil {
			// Never trusted here (or a path we never made): nothing to
			// undo, and no reason to fail the start of an instance
			// without egress.
			return nil
		}
		if err := r.Remove(driver.GuestCAFile); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	} else {
		for _, d := range []string{"/etc", "/etc/ssl", "/etc/ssl/certs"} {
			if _, err := r.Mkdir(d, owner, owner, 0o755); err != nil {
				return err
			}
		}
		old, err := readRootFile(r, driver.GuestCAFile)
		if err != nil {
			return err
		}
		if !bytes.Equal(old, certPEM) {
			if _, err := r.WriteFile(driver.GuestCAFile, bytes.NewReader(certPEM), fsroot.FileOptions{UID: owner, GID: owner, Mode: 0o644}); err != nil {
				return err
			}
		}
	}
	bundle, err := readRootFile(r, driver.GuestCABundle)
	if err != nil {
		return err
	}
	out, changed := driver.TrustCA(bundle, certPEM)
	if !changed {
		return nil
	}
	if len(out) == 0 {
		// Only our block was there: the bundle was ours (a busybox
		// image has none), and an empty one would stop a TLS library
		// from looking for another.
		return r.Remove(driver.GuestCABundle)
	}
	// WriteFile follows a symlink in last place (inside the root) and
	// keeps an existing file's owner and mode.
	_, err = r.WriteFile(driver.GuestCABundle, bytes.NewReader(out), fsroot.FileOptions{UID: owner, GID: owner, Mode: 0o644})
	return err
}

// readRootFile reads p in r, following symlinks inside the root; a
// missing file reads as empty.
func readRootFile(r *fsroot.Root, p string) ([]byte, error) {
	for range 8 {
		n, err := r.Get(p)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		switch n.Type {
		case fsroot.TypeSymlink:
			if path.IsAbs(n.Target) {
				p = n.Target
			} else {
				p = path.Join(path.Dir(p), n.Target)
			}
			continue
		case fsroot.TypeFile:
			defer n.File.Close()
			b, err := io.ReadAll(io.LimitReader(n.File, maxCABundle+1))
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", p, err)
			}
			if len(b) > maxCABundle {
				return nil, errdefs.Invalid("%s: larger than %d bytes", p, maxCABundle)
			}
			return b, nil
		default:
			return nil, errdefs.Invalid("%s: not a regular file", p)
		}
	}
	return nil, errdefs.Invalid("%s: too many levels of symbolic links", p)
}

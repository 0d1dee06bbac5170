package image

import (
	"archive/tar"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// OCI whiteouts (image-spec layer.md): an entry ".wh.<name>" removes <name>
// as lower layers left it; ".wh..wh..opq" in a directory hides everything
// lower layers put there. Other ".wh..wh." names are AUFS bookkeeping
// (hardlink stores) that images carry by accident and are skipped.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// whiteout handles a layer entry whose name is a whiteout, reporting
// whether it was one. parent is the entry's directory relative to the
// root ("" for the root), base its last component.
func (u *unpacker) whiteout(parent, base string, hdr *tar.Header) (bool, error) {
	if !strings.HasPrefix(base, whiteoutPrefix) {
		return false, nil
	}
	if base == whiteoutOpaque {
		return true, u.opaque(parent)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		u.log.Debug("skipping AUFS metadata entry", "name", hdr.Name)
		return true, nil
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "." || target == ".." {
		return true, errdefs.Invalid("entry %q: invalid whiteout", hdr.Name)
	}
	// A whiteout under a directory no lower layer made hides nothing; its
	// parent must not be created for it.
	pfd, err := u.existingDir(parent)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return true, nil
	}
	if err != nil {
		return true, u.fail("open directory of whiteout", hdr.Name, err)
	}
	if pfd != u.root && pfd != u.cacheFd {
		defer unix.Close(pfd)
	}
	if err := removeAllAt(pfd, target); err != nil {
		return true, u.fail("apply whiteout", hdr.Name, err)
	}
	return true, nil
}

// opaque empties the directory rel of what lower layers put there, keeping
// what this layer already created in it (the marker may follow them).
func (u *unpacker) opaque(rel string) error {
	fd, err := u.existingDir(rel)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return nil
	}
	if err != nil {
		return u.fail("open opaque directory", rel, err)
	}
	if fd != u.root && fd != u.cacheFd {
		defer unix.Close(fd)
	}
	return u.pruneLower(fd, rel)
}

// pruneLower removes the entries of the directory fd (at rel) that this
// layer did not create, descending into the ones it did.
func (u *unpacker) pruneLower(fd int, rel string) error {
	// Close-on-exec: a plain dup is not, and would reach every program
	// the daemon starts meanwhile (an exec into a container included).
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(dup), rel)
	defer d.Close()
	if _, err := d.Seek(0, io.SeekStart); err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return u.fail("read directory", rel, err)
	}
	for _, n := range names {
		p := n
		if rel != "" {
			p = rel + "/" + n
		}
		if !u.made[p] {
			if err := removeAllAt(fd, n); err != nil {
				return u.fail("apply opaque whiteout to", p, err)
			}
			continue
		}
		cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOTDIR || err == unix.ELOOP {
			continue
		}
		if err != nil {
			return u.fail("open", p, err)
		}
		err = u.pruneLower(cfd, p)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// existingDir opens the directory rel without creating it: the root, the
// cached parent, or a new fd the caller closes.
func (u *unpacker) existingDir(rel string) (int, error) {
	switch {
	case rel == "":
		return u.root, nil
	case u.cacheFd >= 0 && rel == u.cacheRel:
		return u.cacheFd, nil
	}
	return u.resolve(rel)
}

// markMade records that this layer created rel and, implicitly, its
// parents.
func (u *unpacker) markMade(rel string) {
	for rel != "" && !u.made[rel] {
		u.made[rel] = true
		rel, _ = splitPath(rel)
	}
}

package image

import (
	"archive/tar"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/fsroot"
	"github.com/hangar-dev/hangar/internal/sparsefile"
)

// unpackOptions tune one extraction.
type unpackOptions struct {
	// shift, when set, writes every uid and gid n of the archive as
	// shift.HostID+n; ids at or beyond shift.Size are refused. nil keeps the
	// archive's ids.
	shift *driver.IDMap
	// size caps what the image expands to (sizecap.go); nil is no cap.
	// One cap may span several unpacks: an OCI image's layers, a split
	// image's metadata and root filesystem.
	size *sizeCap
	// log receives what is skipped; nil discards.
	log *slog.Logger
	// entry, when set, sees every archive entry before it is extracted:
	// it may rename it (hdr.Name, hdr.Linkname: an LXD image keeps its
	// root filesystem under rootfs/) or consume it (skip, reading its
	// content from r if it wants it: metadata.yaml). An error stops the
	// extraction and is returned as it is.
	entry func(hdr *tar.Header, r io.Reader) (skip bool, err error)

	// layer applies the archive as an OCI layer over what root already
	// holds: whiteouts remove what lower layers made, and the root's owner
	// and mode are left alone unless the layer names "./" (layers.go).
	layer bool
	// blobs is the blob directory, for sources whose upload names other
	// blobs (an OCI manifest names its config and layers).
	blobs string
}

// unpacker extracts one tar stream into one directory tree.
//
// Containment: every entry path is cleaned lexically; a leading "/" is
// dropped (absolute paths are taken relative to the root) and a path that
// climbs out with ".." is refused. The entry's parent directory is opened
// with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) on the root, so
// symlinks already in the tree are followed as if the root were "/" and can
// never lead outside it (as containerd applies layers). The entry itself is
// then created relative to that directory fd with *at calls that never
// follow its last component: an existing entry of the same name is removed
// and replaced, never written through. Hardlink targets are resolved the
// same way.
type unpacker struct {
	ctx  context.Context
	opts unpackOptions
	log  *slog.Logger

	root             int    // the tree's root directory, O_RDONLY
	rootUID, rootGID uint32 // owner of the root and of directories the archive implies

	// dirTimes are applied last, once nothing is created inside any more.
	dirTimes map[string][2]unix.Timespec

	// A one-entry cache of the last parent directory: archives list the
	// entries of one directory together. Removing an entry never changes
	// what the cached path resolves to (the removed entry is inside it).
	cacheRel string
	cacheFd  int

	buf     []byte
	entries int

	// made holds the paths this layer created (layer mode), which an
	// opaque whiteout in the same layer must keep.
	made map[string]bool
}

// unpack extracts the tar stream r into root, an existing directory (empty
// for an image). It returns the number of entries extracted. Errors caused
// by the archive's content are of kind errdefs.ErrInvalidArgument; a
// cancelled ctx gives errdefs.ErrCancelled; anything else (disk full, I/O)
// is returned as is. On error the tree is left half-written: callers unpack
// into a temporary directory and remove it.
func unpack(ctx context.Context, r io.Reader, root string, opts unpackOptions) (n int, err error) {
	u := &unpacker{
		ctx:      ctx,
		opts:     opts,
		log:      opts.log,
		root:     -1,
		cacheFd:  -1,
		dirTimes: map[string][2]unix.Timespec{},
		buf:      make([]byte, 256<<10),
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if s := opts.shift; s != nil {
		if err := validIDMap(*s); err != nil {
			return 0, err
		}
		u.rootUID, u.rootGID = s.HostID, s.HostID
	}
	u.root, err = unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", root, err)
	}
	defer u.close()

	// The root looks like a root until the archive says otherwise ("./").
	// A layer over others keeps what the lower layers made of it.
	if !opts.layer {
		if err := unix.Fchown(u.root, int(u.rootUID), int(u.rootGID)); err != nil {
			return 0, fmt.Errorf("chown %s: %w", root, err)
		}
		if err := unix.Fchmod(u.root, 0o755); err != nil {
			return 0, fmt.Errorf("chmod %s: %w", root, err)
		}
	} else {
		u.made = map[string]bool{}
	}

	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return u.entries, cancelled(err)
		}
		hdr, err := tr.Next()
		if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
			err = nil // GODEBUG=tarinsecurepath=0: cleanPath below decides.
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return u.entries, u.readErr(err)
		}
		if opts.entry != nil {
			skip, err := opts.entry(hdr, tr)
			if err != nil {
				return u.entries, err
			}
			if skip {
				continue
			}
		}
		if err := u.extract(tr, hdr); err != nil {
			return u.entries, err
		}
	}
	if err := u.finishDirs(); err != nil {
		return u.entries, err
	}
	return u.entries, nil
}

func (u *unpacker) close() {
	u.dropCache()
	if u.root >= 0 {
		unix.Close(u.root)
		u.root = -1
	}
}

// validIDMap checks that a map is usable: non-empty and within uint32 ids
// (the id 4294967295 means "no change" to chown and cannot be mapped).
func validIDMap(m driver.IDMap) error {
	if m.Size == 0 {
		return errdefs.Invalid("id map of size 0")
	}
	if uint64(m.HostID)+uint64(m.Size) > math.MaxUint32 {
		return errdefs.Invalid("id map %d-%d exceeds the id range", m.HostID, uint64(m.HostID)+uint64(m.Size)-1)
	}
	return nil
}

// cleanPath turns an archive path into a path relative to the root, "" for
// the root itself. A leading "/" is dropped; ".." that climbs out is refused.
func cleanPath(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", errors.New("path contains a NUL byte")
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == "." {
		return "", nil
	}
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errors.New("path escapes the root")
	}
	return p, nil
}

// splitPath splits a cleaned relative path into its parent ("" for the
// root) and its last component.
func splitPath(rel string) (parent, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

// extract creates one entry.
func (u *unpacker) extract(tr *tar.Reader, hdr *tar.Header) error {
	name, err := cleanPath(hdr.Name)
	if err != nil {
		return errdefs.Invalid("entry %q: %v", hdr.Name, err)
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return nil // Metadata for other entries; archive/tar applies it.
	case tar.TypeReg, '\x00', tar.TypeGNUSparse, tar.TypeCont,
		tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		u.log.Debug("skipping archive entry of unknown type", "name", hdr.Name, "type", string(hdr.Typeflag))
		return nil
	}
	u.entries++

	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return errdefs.Invalid("entry %q would replace the root directory", hdr.Name)
		}
		return u.meta(node{pfd: u.root, base: ".", fd: u.root, name: "/"}, hdr)
	}

	parent, base := splitPath(name)
	if u.opts.layer {
		if done, err := u.whiteout(parent, base, hdr); done {
			return err
		}
		u.markMade(name)
	}
	pfd, err := u.parent(parent)
	if err != nil {
		return u.fail("create parent directory of", name, err)
	}
	n := node{pfd: pfd, base: base, fd: -1, name: name}

	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.dir(n, hdr)
	case tar.TypeSymlink:
		return u.symlink(n, hdr)
	case tar.TypeLink:
		return u.hardlink(n, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return u.special(n, hdr)
	default:
		return u.file(n, hdr, tr)
	}
}

// node is an entry being created: its parent directory and name, and for
// regular files and the root an open fd.
type node struct {
	pfd  int
	base string
	fd   int // -1 when none
	name string
}

func (u *unpacker) file(n node, hdr *tar.Header, r io.Reader) error {
	// Counted before anything is created: a bomb's first huge entry
	// fails at its header.
	if err := u.opts.size.addFile(hdr.Size); err != nil {
		return err
	}
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(n.pfd, n.base, flags, 0o600)
	if err == unix.EEXIST {
		if err := u.remove(n); err != nil {
			return err
		}
		fd, err = unix.Openat(n.pfd, n.base, flags, 0o600)
	}
	if err != nil {
		return u.fail("create", n.name, err)
	}
	f := os.NewFile(uintptr(fd), n.name)
	n.fd = fd
	if isSparse(hdr) {
		err = u.copySparse(fd, r, hdr.Size, n.name)
	} else {
		err = u.copy(f, r, n.name)
	}
	if err != nil {
		f.Close()
		return err
	}
	if err := u.meta(n, hdr); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return u.fail("write", n.name, err)
	}
	return nil
}

func (u *unpacker) copy(f *os.File, r io.Reader, name string) error {
	for {
		if err := u.ctx.Err(); err != nil {
			return cancelled(err)
		}
		nr, rerr := r.Read(u.buf)
		if nr > 0 {
			if _, err := f.Write(u.buf[:nr]); err != nil {
				return u.fail("write", name, err)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return u.readErr(rerr)
		}
	}
}

// isSparse tells whether the archive declares an entry sparse: GNU tar's
// old format ('S') or its PAX formats (GNU.sparse.* records).
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// copySparse writes a sparse entry of size bytes, leaving holes where it
// reads zero blocks: archive/tar hides the entry's map and reads its holes
// as zeros, so a hole is recognised by its content (as GNU tar finds holes
// when it archives). The file is new and empty, so a block not written
// reads as zeros; the length is set at the end, for a final hole.
func (u *unpacker) copySparse(fd int, r io.Reader, size int64, name string) error {
	var off int64
	fill := 0
	for {
		if err := u.ctx.Err(); err != nil {
			return cancelled(err)
		}
		nr, rerr := r.Read(u.buf[fill:])
		fill += nr
		// Full buffers only (but the last), so every write starts on a
		// block boundary of the file.
		if fill == len(u.buf) || (rerr != nil && fill > 0) {
			if err := sparsefile.WriteAt(fd, u.buf[:fill], off); err != nil {
				return u.fail("write", name, err)
			}
			off += int64(fill)
			fill = 0
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return u.readErr(rerr)
		}
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		return u.fail("write", name, err)
	}
	return nil
}

func (u *unpacker) dir(n node, hdr *tar.Header) error {
	err := unix.Mkdirat(n.pfd, n.base, 0o700)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err := unix.Fstatat(n.pfd, n.base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return u.fail("stat", n.name, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = nil // Keep it and its contents; take the new metadata.
		} else {
			if err := u.remove(n); err != nil {
				return err
			}
			err = unix.Mkdirat(n.pfd, n.base, 0o700)
		}
	}
	if err != nil {
		return u.fail("create directory", n.name, err)
	}
	return u.meta(n, hdr)
}

func (u *unpacker) symlink(n node, hdr *tar.Header) error {
	if hdr.Linkname == "" || strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return errdefs.Invalid("entry %q: invalid symlink target %q", n.name, hdr.Linkname)
	}
	err := unix.Symlinkat(hdr.Linkname, n.pfd, n.base)
	if err == unix.EEXIST {
		if err := u.remove(n); err != nil {
			return err
		}
		err = unix.Symlinkat(hdr.Linkname, n.pfd, n.base)
	}
	if err != nil {
		return u.fail("create symlink", n.name, err)
	}
	return u.meta(n, hdr)
}

// hardlink links the entry to an earlier one. A hardlink shares its
// target's inode, so it has no metadata of its own to apply.
func (u *unpacker) hardlink(n node, hdr *tar.Header) error {
	target, err := cleanPath(hdr.Linkname)
	if err != nil {
		return errdefs.Invalid("entry %q: hardlink target %q: %v", n.name, hdr.Linkname, err)
	}
	if target == "" {
		return errdefs.Invalid("entry %q: hardlink to the root directory", n.name)
	}
	if target == n.name {
		return nil // A link to itself: the entry is already there.
	}
	tparent, tbase := splitPath(target)
	tpfd := u.root
	switch {
	case tparent == "":
	case u.cacheFd >= 0 && tparent == u.cacheRel:
		tpfd = u.cacheFd
	default:
		fd, err := u.resolve(tparent)
		if err != nil {
			return u.fail(fmt.Sprintf("hardlink to %q from", hdr.Linkname), n.name, err)
		}
		defer unix.Close(fd)
		tpfd = fd
	}
	err = unix.Linkat(tpfd, tbase, n.pfd, n.base, 0)
	if err == unix.EEXIST {
		if err := u.remove(n); err != nil {
			return err
		}
		err = unix.Linkat(tpfd, tbase, n.pfd, n.base, 0)
	}
	if err != nil {
		return u.fail(fmt.Sprintf("hardlink to %q from", hdr.Linkname), n.name, err)
	}
	return nil
}

// special creates device nodes and fifos.
func (u *unpacker) special(n node, hdr *tar.Header) error {
	var mode uint32
	var dev int
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode = unix.S_IFCHR
	case tar.TypeBlock:
		mode = unix.S_IFBLK
	default:
		mode = unix.S_IFIFO
	}
	if mode != unix.S_IFIFO {
		// Linux device numbers: 12-bit major, 20-bit minor.
		if hdr.Devmajor < 0 || hdr.Devmajor >= 1<<12 || hdr.Devminor < 0 || hdr.Devminor >= 1<<20 {
			return errdefs.Invalid("entry %q: invalid device number %d:%d", n.name, hdr.Devmajor, hdr.Devminor)
		}
		dev = int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	}
	err := unix.Mknodat(n.pfd, n.base, mode|0o600, dev)
	if err == unix.EEXIST {
		if err := u.remove(n); err != nil {
			return err
		}
		err = unix.Mknodat(n.pfd, n.base, mode|0o600, dev)
	}
	if err != nil {
		return u.fail("create node", n.name, err)
	}
	return u.meta(n, hdr)
}

// meta applies ownership, mode, xattrs and times, in that order: chown
// clears setuid/setgid and file capabilities, so mode and xattrs follow it.
// Directory times are deferred until nothing more is created inside.
func (u *unpacker) meta(n node, hdr *tar.Header) error {
	uid, gid, err := u.ids(hdr)
	if err != nil {
		return errdefs.Invalid("entry %q: %v", n.name, err)
	}
	if n.fd >= 0 {
		err = unix.Fchown(n.fd, int(uid), int(gid))
	} else {
		err = unix.Fchownat(n.pfd, n.base, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return u.fail("chown", n.name, err)
	}

	if hdr.Typeflag != tar.TypeSymlink { // Linux has no symlink modes.
		mode := uint32(hdr.Mode) & 0o7777
		if n.fd >= 0 {
			err = unix.Fchmod(n.fd, mode)
		} else {
			// Follows a final symlink, but n.base is what we just made.
			err = unix.Fchmodat(n.pfd, n.base, mode, 0)
		}
		if err != nil {
			return u.fail("chmod", n.name, err)
		}
	}

	if err := u.xattrs(n, hdr); err != nil {
		return err
	}

	mtime := timespec(hdr.ModTime)
	atime := mtime
	if !hdr.AccessTime.IsZero() {
		atime = timespec(hdr.AccessTime)
	}
	ts := [2]unix.Timespec{atime, mtime}
	if hdr.Typeflag == tar.TypeDir {
		rel := n.name
		if n.fd == u.root {
			rel = ""
		}
		u.dirTimes[rel] = ts
		return nil
	}
	return u.setTimes(n.pfd, n.base, ts, n.name)
}

func (u *unpacker) setTimes(pfd int, base string, ts [2]unix.Timespec, name string) error {
	flags := unix.AT_SYMLINK_NOFOLLOW
	if base == "." {
		flags = 0
	}
	err := unix.UtimesNanoAt(pfd, base, ts[:], flags)
	if err == unix.EINVAL || err == unix.EOVERFLOW || err == unix.ERANGE {
		// A time the filesystem cannot hold is not worth failing an import.
		u.log.Debug("cannot set times", "name", name, "error", err)
		return nil
	}
	if err != nil {
		return u.fail("set times of", name, err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// ids returns the entry's owner as written on disk.
func (u *unpacker) ids(hdr *tar.Header) (uid, gid uint32, err error) {
	// math.MaxUint32 is (uid_t)-1, which chown reads as "leave unchanged".
	if hdr.Uid < 0 || hdr.Uid >= math.MaxUint32 || hdr.Gid < 0 || hdr.Gid >= math.MaxUint32 {
		return 0, 0, fmt.Errorf("invalid owner %d:%d", hdr.Uid, hdr.Gid)
	}
	uid, gid = uint32(hdr.Uid), uint32(hdr.Gid)
	if s := u.opts.shift; s != nil {
		if uid >= s.Size || gid >= s.Size {
			return 0, 0, fmt.Errorf("owner %d:%d is outside the id map (size %d)", uid, gid, s.Size)
		}
		uid, gid = uid+s.HostID, gid+s.HostID
	}
	return uid, gid, nil
}

// xattrs sets the entry's extended attributes from PAX SCHILY.xattr records.
func (u *unpacker) xattrs(n node, hdr *tar.Header) error {
	var names []string
	for k := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && name != "" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	for _, name := range names {
		value := []byte(hdr.PAXRecords["SCHILY.xattr."+name])
		if s := u.opts.shift; s != nil {
			var err error
			switch name {
			case "security.capability":
				value, err = shiftCapability(value, *s)
			case "system.posix_acl_access", "system.posix_acl_default":
				value, err = shiftACL(value, *s)
			}
			if err != nil {
				return errdefs.Invalid("entry %q: xattr %s: %v", n.name, name, err)
			}
		}
		var err error
		if n.fd >= 0 {
			err = unix.Fsetxattr(n.fd, name, value, 0)
		} else {
			// No fd for directories, symlinks and nodes (opening a fifo
			// blocks); /proc/self/fd/N names the parent, the last
			// component is not followed.
			err = unix.Lsetxattr("/proc/self/fd/"+strconv.Itoa(n.pfd)+"/"+n.base, name, value, 0)
		}
		switch {
		case err == nil:
		case name == "security.selinux":
			// Labels belong to the host's policy; relabelling is the
			// runtime's business.
			u.log.Debug("skipping security.selinux", "name", n.name, "error", err)
		case err == unix.ENOTSUP || err == unix.EOPNOTSUPP:
			u.log.Warn("filesystem does not support xattr; skipped", "name", n.name, "xattr", name)
		case err == unix.EPERM && strings.HasPrefix(name, "user.") && hdr.Typeflag != tar.TypeDir && n.fd < 0:
			// Linux allows user.* only on files and directories.
			u.log.Warn("xattr not allowed on this file type; skipped", "name", n.name, "xattr", name)
		default:
			return u.fail("set xattr "+name+" of", n.name, err)
		}
	}
	return nil
}

// File capability xattr layout (linux/capability.h): a le32 magic_etc, two
// {le32 permitted, le32 inheritable}, and since revision 3 a le32 root id:
// the capabilities apply in user namespaces whose root is that host uid.
const (
	capRevisionMask = 0xFF000000
	capRevision2    = 0x02000000
	capRevision3    = 0x03000000
	capFlagsEff     = 0x000001
	capSizeV2       = 4 + 2*8
	capSizeV3       = capSizeV2 + 4
)

// shiftCapability rewrites a security.capability value for a shifted tree:
// as revision 3 with the map's root as root id (plus the id it had),
// without which the kernel ignores the capabilities inside the namespace.
func shiftCapability(v []byte, m driver.IDMap) ([]byte, error) {
	if len(v) < 4 {
		return nil, errors.New("truncated value")
	}
	magic := binary.LittleEndian.Uint32(v)
	var root uint32
	switch magic & capRevisionMask {
	case capRevision2:
		if len(v) != capSizeV2 {
			return nil, fmt.Errorf("revision 2 value of %d bytes", len(v))
		}
	case capRevision3:
		if len(v) != capSizeV3 {
			return nil, fmt.Errorf("revision 3 value of %d bytes", len(v))
		}
		root = binary.LittleEndian.Uint32(v[capSizeV2:])
		if root >= m.Size {
			return nil, fmt.Errorf("root id %d is outside the id map", root)
		}
	default:
		return nil, fmt.Errorf("unknown revision %#x", magic&capRevisionMask)
	}
	out := make([]byte, capSizeV3)
	copy(out, v[:capSizeV2])
	binary.LittleEndian.PutUint32(out, capRevision3|magic&capFlagsEff)
	binary.LittleEndian.PutUint32(out[capSizeV2:], m.HostID+root)
	return out, nil
}

// POSIX ACL xattr layout (linux/posix_acl_xattr.h): a le32 version (2), then
// entries of {le16 tag, le16 perm, le32 id}; named user and group entries
// carry an id.
const (
	aclVersion = 2
	aclUser    = 0x02
	aclGroup   = 0x08
)

// shiftACL shifts the ids of named user and group entries.
func shiftACL(v []byte, m driver.IDMap) ([]byte, error) {
	if len(v) < 4 || (len(v)-4)%8 != 0 || binary.LittleEndian.Uint32(v) != aclVersion {
		return nil, errors.New("malformed ACL")
	}
	out := append([]byte(nil), v...)
	for off := 4; off < len(out); off += 8 {
		tag := binary.LittleEndian.Uint16(out[off:])
		if tag != aclUser && tag != aclGroup {
			continue
		}
		id := binary.LittleEndian.Uint32(out[off+4:])
		if id >= m.Size {
			return nil, fmt.Errorf("ACL id %d is outside the id map", id)
		}
		binary.LittleEndian.PutUint32(out[off+4:], m.HostID+id)
	}
	return out, nil
}

// parent returns an fd of the directory rel (relative to the root), creating
// missing directories. The fd belongs to the unpacker's cache.
func (u *unpacker) parent(rel string) (int, error) {
	if rel == "" {
		return u.root, nil
	}
	if u.cacheFd >= 0 && u.cacheRel == rel {
		return u.cacheFd, nil
	}
	fd, err := u.mkdirAll(rel)
	if err != nil {
		return -1, err
	}
	u.dropCache()
	u.cacheRel, u.cacheFd = rel, fd
	return fd, nil
}

func (u *unpacker) dropCache() {
	if u.cacheFd >= 0 {
		unix.Close(u.cacheFd)
	}
	u.cacheRel, u.cacheFd = "", -1
}

// resolve opens the existing directory rel inside the root: symlinks on the
// way are followed as if the root were "/", so they cannot lead out of it.
// The caller closes the fd.
func (u *unpacker) resolve(rel string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	return fsroot.Openat2(u.root, rel, &how)
}

// mkdirAll opens the directory rel, creating it and its missing parents
// (owned by the tree's root, mode 0755) as archives may omit them.
func (u *unpacker) mkdirAll(rel string) (int, error) {
	fd, err := u.resolve(rel)
	if err != unix.ENOENT {
		return fd, err
	}
	parent, base := splitPath(rel)
	pfd := u.root
	if parent != "" {
		if pfd, err = u.mkdirAll(parent); err != nil {
			return -1, err
		}
		defer unix.Close(pfd)
	}
	switch err := unix.Mkdirat(pfd, base, 0o755); err {
	case nil:
		if err := unix.Fchownat(pfd, base, int(u.rootUID), int(u.rootGID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return -1, err
		}
		if err := unix.Fchmodat(pfd, base, 0o755, 0); err != nil {
			return -1, err
		}
	case unix.EEXIST:
		// A dangling symlink: refused below, as O_NOFOLLOW fails on it.
	default:
		return -1, err
	}
	return unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// remove deletes whatever is at n, to replace it.
func (u *unpacker) remove(n node) error {
	if err := removeAllAt(n.pfd, n.base); err != nil {
		return u.fail("replace", n.name, err)
	}
	return nil
}

// removeAllAt removes name in dirfd and, for a directory, all it holds,
// never following symlinks.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	for range 8 {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		d := os.NewFile(uintptr(fd), name)
		for {
			names, rerr := d.Readdirnames(1024)
			for _, child := range names {
				if err := removeAllAt(fd, child); err != nil {
					d.Close()
					return err
				}
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				d.Close()
				return rerr
			}
		}
		d.Close()
		err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
		if err != unix.ENOTEMPTY {
			return err
		}
	}
	return unix.ENOTEMPTY
}

// finishDirs applies the deferred directory times.
func (u *unpacker) finishDirs() error {
	for rel, ts := range u.dirTimes {
		if rel == "" {
			if err := u.setTimes(u.root, ".", ts, "/"); err != nil {
				return err
			}
			continue
		}
		parent, base := splitPath(rel)
		pfd := u.root
		if parent != "" {
			fd, err := u.resolve(parent)
			if err != nil {
				continue // Replaced by a later entry.
			}
			pfd = fd
		}
		var st unix.Stat_t
		err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = u.setTimes(pfd, base, ts, rel)
		} else {
			err = nil
		}
		if pfd != u.root {
			unix.Close(pfd)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readErr classifies an error reading the archive: it is corrupt, unless the
// reading was cancelled.
func (u *unpacker) readErr(err error) error {
	if cerr := u.ctx.Err(); cerr != nil {
		return cancelled(cerr)
	}
	if tl := asTooLarge(err); tl != nil {
		return tl
	}
	return errdefs.Invalid("corrupt archive: %v", err)
}

// fail classifies an error of a filesystem call made for an entry. Errors
// of the environment (disk full, I/O, limits) are returned as they are; the
// others mean the archive asked for something impossible (a file where a
// directory is needed, a hardlink to nothing or to a directory, a name too
// long) and are invalid-argument errors.
func (u *unpacker) fail(op, name string, err error) error {
	if errors.Is(err, errdefs.ErrInvalidArgument) || errors.Is(err, errdefs.ErrCancelled) {
		return err
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.ENOSPC, unix.EDQUOT, unix.EIO, unix.ENOMEM, unix.EMFILE, unix.ENFILE, unix.EROFS, unix.ENOSYS:
			return fmt.Errorf("%s %q: %w", op, name, err)
		}
		return errdefs.Invalid("%s %q: %v", op, name, errno)
	}
	return fmt.Errorf("%s %q: %w", op, name, err)
}

func cancelled(err error) error {
	return fmt.Errorf("%w: %w", errdefs.ErrCancelled, err)
}

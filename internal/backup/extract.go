package backup

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/fsroot"
	"github.com/hangar-dev/hangar/internal/sparsefile"
)

// ExtractOptions say how an archive's owners become the target's. The
// maps apply to the volume's rootfs/ only: the files beside it
// (backup.yaml, metadata.yaml, templates/) belong to the host and are
// never shifted, in LXD's exports as on its disks.
type ExtractOptions struct {
	// ArchiveMap is the map the archive's ids are shifted by: an LXD
	// export of an unprivileged container holds its on-disk ids, and its
	// config's volatile.last_state.idmap says how (ParseLXDIDMap). nil:
	// the archive holds container ids (ours, or LXD's "[]").
	ArchiveMap IDMap
	// HostMap shifts container ids to the target's host ids (the
	// unprivileged container's map); nil keeps them (privileged, VMs).
	HostMap IDMap
}

// Extractor writes the entries of one volume part (the instance's or one
// snapshot's) under one directory, never outside it (doc.go). It is not
// safe for concurrent use; Close applies directory times and releases
// it. On error the directory is left half-written: callers extract into
// a new volume and remove it.
type Extractor struct {
	opts     ExtractOptions
	root     int
	rootUID  uint32 // owner of directories the archive implies in rootfs/ (the container's root)
	rootGID  uint32
	cacheRel string // the last parent directory, open as cacheFd
	cacheFd  int
	dirTimes map[string][2]unix.Timespec
	buf      []byte
}

// NewExtractor opens dir, an existing directory (the new volume's root).
func NewExtractor(dir string, opts ExtractOptions) (*Extractor, error) {
	x := &Extractor{opts: opts, root: -1, cacheFd: -1, dirTimes: map[string][2]unix.Timespec{}, buf: make([]byte, 1<<20)}
	// Directories the archive implies belong to the container's root.
	var ok1, ok2 bool
	x.rootUID, ok1 = opts.HostMap.toHost(0, true)
	x.rootGID, ok2 = opts.HostMap.toHost(0, false)
	if !ok1 || !ok2 {
		return nil, errdefs.Invalid("backup: the target id map does not map root")
	}
	var err error
	x.root, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("backup: open %s: %w", dir, err)
	}
	return x, nil
}

// inRootfs tells whether a path of the volume is in its root filesystem,
// whose ids are shifted.
func inRootfs(rel string) bool {
	return rel == "rootfs" || strings.HasPrefix(rel, "rootfs/")
}

// mapID maps an id of the archive to the target's host id; ids outside
// rootfs/ are kept.
func (x *Extractor) mapID(rel string, id uint32, uid bool) (uint32, error) {
	if !inRootfs(rel) {
		return id, nil
	}
	c := id
	if x.opts.ArchiveMap != nil {
		var ok bool
		if c, ok = x.opts.ArchiveMap.toInside(id, uid); !ok {
			return 0, fmt.Errorf("%s %d is outside the archive's id map", kind(uid), id)
		}
	}
	h, ok := x.opts.HostMap.toHost(c, uid)
	if !ok {
		return 0, fmt.Errorf("%s %d is outside the target's id map", kind(uid), c)
	}
	return h, nil
}

// Close applies the deferred directory times and releases the extractor.
func (x *Extractor) Close() error {
	if x.root < 0 {
		return nil
	}
	defer func() {
		x.dropCache()
		unix.Close(x.root)
		x.root = -1
	}()
	rels := make([]string, 0, len(x.dirTimes))
	for rel := range x.dirTimes {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		parent, base := splitPath(rel)
		pfd, err := x.resolve(parent)
		if err != nil {
			continue // Replaced by a later entry.
		}
		ts := x.dirTimes[rel]
		err = unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW)
		if pfd != x.root {
			unix.Close(pfd)
		}
		if err != nil && err != unix.EINVAL && err != unix.EOVERFLOW && err != unix.ERANGE {
			return fmt.Errorf("backup: set times of %s: %w", rel, err)
		}
	}
	return nil
}

// checkRel checks a path inside the volume: relative, every component a
// plain name.
func checkRel(p string) error {
	if strings.HasPrefix(p, "/") || strings.IndexByte(p, 0) >= 0 {
		return errdefs.Invalid("backup: %q: not a relative path", p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." {
			return errdefs.Invalid("backup: %q: not a clean path inside the volume", p)
		}
	}
	return nil
}

func splitPath(rel string) (parent, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

// Extract writes one entry of a volume part, its content read from r.
// The volume's own root directory (Part.Path "") is skipped: the
// volume's root belongs to storage, and LXD's import drops it too.
func (x *Extractor) Extract(e *Entry, r io.Reader) error {
	if x.root < 0 {
		return errors.New("backup: extractor closed")
	}
	if e.Part.Kind != PartVolume {
		return fmt.Errorf("backup: %s entry %q is not a volume file", e.Part.Kind, e.Header.Name)
	}
	rel, hdr := e.Part.Path, e.Header
	if rel == "" {
		return nil
	}
	if err := checkRel(rel); err != nil {
		return err
	}
	parent, base := splitPath(rel)
	pfd, err := x.parent(parent)
	if err != nil {
		return x.fail("open parent directory of", rel, err)
	}
	n := node{pfd: pfd, base: base, fd: -1, rel: rel}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(n, hdr)
	case tar.TypeSymlink:
		return x.symlink(n, hdr)
	case tar.TypeLink:
		return x.hardlink(n, e.Part.Link)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return x.special(n, hdr)
	}
	if !isRegular(hdr.Typeflag) {
		return errdefs.Invalid("backup: entry %q has unsupported type %q", hdr.Name, string(hdr.Typeflag))
	}
	return x.file(n, hdr, r)
}

// node is an entry being made: its parent directory and name.
type node struct {
	pfd  int
	base string
	fd   int // an open fd of the entry itself, -1 when none
	rel  string
}

// create runs mk (which makes n) and, when a non-directory is in the
// way, removes it and runs mk again. A directory in the way is refused:
// an archive does not replace a tree with a file.
func (x *Extractor) create(n node, mk func() error) error {
	err := mk()
	if err != unix.EEXIST {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(n.pfd, n.base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return errdefs.Invalid("backup: entry %q would replace a directory", n.rel)
	}
	if err := unix.Unlinkat(n.pfd, n.base, 0); err != nil {
		return err
	}
	return mk()
}

func (x *Extractor) file(n node, hdr *tar.Header, r io.Reader) error {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	err := x.create(n, func() error {
		fd, err := unix.Openat(n.pfd, n.base, flags, 0o600)
		n.fd = fd
		return err
	})
	if err != nil {
		return x.fail("create", n.rel, err)
	}
	f := os.NewFile(uintptr(n.fd), n.rel)
	defer f.Close()
	if _, err := copySparse(f, r, x.buf); err != nil {
		return x.fail("write", n.rel, err)
	}
	if err := x.meta(n, hdr); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return x.fail("write", n.rel, err)
	}
	return nil
}

func (x *Extractor) dir(n node, hdr *tar.Header) error {
	err := unix.Mkdirat(n.pfd, n.base, 0o700)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err := unix.Fstatat(n.pfd, n.base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return x.fail("stat", n.rel, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = nil // Keep it and what it holds; take the new metadata.
		} else {
			err = x.create(n, func() error { return unix.Mkdirat(n.pfd, n.base, 0o700) })
		}
	}
	if err != nil {
		return x.fail("create directory", n.rel, err)
	}
	fd, err := unix.Openat(n.pfd, n.base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return x.fail("open", n.rel, err)
	}
	defer unix.Close(fd)
	n.fd = fd
	return x.meta(n, hdr)
}

func (x *Extractor) symlink(n node, hdr *tar.Header) error {
	if hdr.Linkname == "" || strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return errdefs.Invalid("backup: entry %q: invalid symlink target %q", hdr.Name, hdr.Linkname)
	}
	if err := x.create(n, func() error { return unix.Symlinkat(hdr.Linkname, n.pfd, n.base) }); err != nil {
		return x.fail("create symlink", n.rel, err)
	}
	return x.meta(n, hdr)
}

// hardlink links the entry to an earlier one of the same volume; the
// target's parent is resolved as strictly as any parent, and linkat does
// not follow a final symlink.
func (x *Extractor) hardlink(n node, target string) error {
	if err := checkRel(target); err != nil {
		return err
	}
	if target == n.rel {
		return nil
	}
	tparent, tbase := splitPath(target)
	tpfd, err := x.resolve(tparent)
	if err != nil {
		return x.fail("resolve hard link target "+strconv.Quote(target)+" of", n.rel, err)
	}
	if tpfd != x.root {
		defer unix.Close(tpfd)
	}
	if err := x.create(n, func() error { return unix.Linkat(tpfd, tbase, n.pfd, n.base, 0) }); err != nil {
		return x.fail("hard link "+strconv.Quote(target)+" as", n.rel, err)
	}
	return nil
}

func (x *Extractor) special(n node, hdr *tar.Header) error {
	mode := uint32(unix.S_IFIFO)
	dev := 0
	if hdr.Typeflag != tar.TypeFifo {
		mode = unix.S_IFCHR
		if hdr.Typeflag == tar.TypeBlock {
			mode = unix.S_IFBLK
		}
		// Linux device numbers: 12-bit major, 20-bit minor.
		if hdr.Devmajor < 0 || hdr.Devmajor >= 1<<12 || hdr.Devminor < 0 || hdr.Devminor >= 1<<20 {
			return errdefs.Invalid("backup: entry %q: invalid device number %d:%d", hdr.Name, hdr.Devmajor, hdr.Devminor)
		}
		dev = int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	}
	if err := x.create(n, func() error { return unix.Mknodat(n.pfd, n.base, mode|0o600, dev) }); err != nil {
		return x.fail("create node", n.rel, err)
	}
	return x.meta(n, hdr)
}

// meta applies owner, mode, xattrs and times, in that order: chown clears
// setuid bits and file capabilities, so mode and xattrs follow it.
// Directory times wait for Close, once nothing more is made inside.
func (x *Extractor) meta(n node, hdr *tar.Header) error {
	if hdr.Uid < 0 || hdr.Uid >= math.MaxUint32 || hdr.Gid < 0 || hdr.Gid >= math.MaxUint32 {
		return errdefs.Invalid("backup: entry %q: invalid owner %d:%d", hdr.Name, hdr.Uid, hdr.Gid)
	}
	uid, err := x.mapID(n.rel, uint32(hdr.Uid), true)
	if err != nil {
		return errdefs.Invalid("backup: entry %q: %v", hdr.Name, err)
	}
	gid, err := x.mapID(n.rel, uint32(hdr.Gid), false)
	if err != nil {
		return errdefs.Invalid("backup: entry %q: %v", hdr.Name, err)
	}
	if n.fd >= 0 {
		err = unix.Fchown(n.fd, int(uid), int(gid))
	} else {
		err = unix.Fchownat(n.pfd, n.base, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return x.fail("chown", n.rel, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		mode := uint32(hdr.Mode) & 0o7777
		if n.fd >= 0 {
			err = unix.Fchmod(n.fd, mode)
		} else {
			err = unix.Fchmodat(n.pfd, n.base, mode, 0) // n.base is the node we just made, not a link
		}
		if err != nil {
			return x.fail("chmod", n.rel, err)
		}
	}
	if err := x.xattrs(n, hdr); err != nil {
		return err
	}
	mtime := unix.Timespec{Sec: hdr.ModTime.Unix(), Nsec: int64(hdr.ModTime.Nanosecond())}
	ts := [2]unix.Timespec{mtime, mtime}
	if hdr.Typeflag == tar.TypeDir {
		x.dirTimes[n.rel] = ts
		return nil
	}
	err = unix.UtimesNanoAt(n.pfd, n.base, ts[:], unix.AT_SYMLINK_NOFOLLOW)
	if err != nil && err != unix.EINVAL && err != unix.EOVERFLOW && err != unix.ERANGE {
		return x.fail("set times of", n.rel, err)
	}
	return nil
}

// xattrs sets the entry's PAX SCHILY.xattr records, with the ids in
// capabilities and ACLs mapped as the owners are.
func (x *Extractor) xattrs(n node, hdr *tar.Header) error {
	var names []string
	for k := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		value, err := mapXattr(name, []byte(hdr.PAXRecords["SCHILY.xattr."+name]), func(id uint32, uid bool) (uint32, error) {
			return x.mapID(n.rel, id, uid)
		})
		if err != nil {
			return errdefs.Invalid("backup: entry %q: xattr %s: %v", hdr.Name, name, err)
		}
		if n.fd >= 0 {
			err = unix.Fsetxattr(n.fd, name, value, 0)
		} else {
			// Symlinks and nodes have no fd here (opening a fifo blocks):
			// the parent's fd and the name, last component not followed.
			err = unix.Lsetxattr("/proc/self/fd/"+strconv.Itoa(n.pfd)+"/"+n.base, name, value, 0)
		}
		switch {
		case err == nil:
		case name == "security.selinux":
			// Labels belong to the host's policy.
		case err == unix.ENOTSUP || err == unix.EOPNOTSUPP:
			// The target filesystem cannot hold it; as tar, go on.
		case err == unix.EPERM && strings.HasPrefix(name, "user.") && n.fd < 0:
			// Linux allows user.* only on files and directories.
		default:
			return x.fail("set xattr "+name+" of", n.rel, err)
		}
	}
	return nil
}

// parent returns an fd of the directory rel, making missing directories
// (owned by the container's root, 0755). The fd belongs to the cache.
func (x *Extractor) parent(rel string) (int, error) {
	if rel == "" {
		return x.root, nil
	}
	if x.cacheFd >= 0 && x.cacheRel == rel {
		return x.cacheFd, nil
	}
	fd, err := x.mkdirAll(rel)
	if err != nil {
		return -1, err
	}
	x.dropCache()
	x.cacheRel, x.cacheFd = rel, fd
	return fd, nil
}

func (x *Extractor) dropCache() {
	if x.cacheFd >= 0 {
		unix.Close(x.cacheFd)
	}
	x.cacheRel, x.cacheFd = "", -1
}

// resolve opens the existing directory rel below the root, refusing any
// symlink on the way (even one the archive made: a well-formed archive
// never needs one) and any mount. The caller closes the fd unless it is
// the root's.
func (x *Extractor) resolve(rel string) (int, error) {
	if rel == "" {
		return x.root, nil
	}
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	return fsroot.Openat2(x.root, rel, &how)
}

// mkdirAll opens the directory rel, making it and its missing parents.
func (x *Extractor) mkdirAll(rel string) (int, error) {
	fd, err := x.resolve(rel)
	if err != unix.ENOENT {
		return fd, err
	}
	parent, base := splitPath(rel)
	pfd := x.root
	if parent != "" {
		if pfd, err = x.mkdirAll(parent); err != nil {
			return -1, err
		}
		defer unix.Close(pfd)
	}
	switch err := unix.Mkdirat(pfd, base, 0o755); err {
	case nil:
		uid, gid := uint32(0), uint32(0)
		if inRootfs(rel) {
			uid, gid = x.rootUID, x.rootGID
		}
		if err := unix.Fchownat(pfd, base, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return -1, err
		}
		if err := unix.Fchmodat(pfd, base, 0o755, 0); err != nil {
			return -1, err
		}
	case unix.EEXIST:
		// A symlink (dangling or not): refused below by O_NOFOLLOW.
	default:
		return -1, err
	}
	return unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// fail classifies an error of a filesystem call made for an entry. The
// environment's errors (disk full, I/O, limits) are returned as they are;
// the others mean the archive asked for something impossible or unsafe
// (a path through a symlink, a file where a directory must be, a hard
// link to nothing) and are invalid-argument errors.
func (x *Extractor) fail(op, rel string, err error) error {
	if errors.Is(err, errdefs.ErrInvalidArgument) {
		return err
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.ELOOP:
			return errdefs.Invalid("backup: %s %q: the path goes through a symlink", op, rel)
		case unix.EXDEV:
			return errdefs.Invalid("backup: %s %q: the path crosses a mount point", op, rel)
		case unix.ENOSPC, unix.EDQUOT:
			return errdefs.NoSpace("backup: %s %q: %v", op, rel, errno)
		case unix.EIO, unix.ENOMEM, unix.EMFILE, unix.ENFILE, unix.EROFS, unix.ENOSYS:
			return fmt.Errorf("backup: %s %q: %w", op, rel, err)
		}
		return errdefs.Invalid("backup: %s %q: %v", op, rel, errno)
	}
	return fmt.Errorf("backup: %s %q: %w", op, rel, err)
}

// CopyDisk writes a disk image read from r to f from offset 0 and returns
// its size. On a regular file (new and empty) blocks of zeros become
// holes and the length is set at the end, so a sparse disk stays sparse;
// on a block device every byte is written.
func CopyDisk(f *os.File, r io.Reader) (int64, error) {
	return copySparse(f, r, make([]byte, 1<<20))
}

// copySparse writes r to f from offset 0, skipping zero blocks when f is
// a regular file (then truncated to the length), and returns the length.
// Read errors are returned as they are; the caller classifies them.
func copySparse(f *os.File, r io.Reader, buf []byte) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return io.CopyBuffer(f, onlyReader{r}, buf)
	}
	var off int64
	fill := 0
	for {
		nr, rerr := r.Read(buf[fill:])
		fill += nr
		// Full buffers only, but the last: every write starts on a
		// block boundary.
		if fill == len(buf) || (rerr != nil && fill > 0) {
			if err := sparsefile.WriteAt(int(f.Fd()), buf[:fill], off); err != nil {
				return off, err
			}
			off += int64(fill)
			fill = 0
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return off, rerr
		}
	}
	if err := unix.Ftruncate(int(f.Fd()), off); err != nil {
		return off, err
	}
	return off, nil
}

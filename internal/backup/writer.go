package backup

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Archive names of the layout (doc.go).
const (
	IndexName           = "backup/index.yaml"
	OptimizedHeaderName = "backup/optimized_header.yaml"
	ConfigFile          = "backup.yaml" // in a volume's directory
)

// VolumeDir is the directory of the instance's volume: backup/container
// or backup/virtual-machine.
func VolumeDir(typ string) string {
	if typ == TypeVM {
		return "backup/virtual-machine"
	}
	return "backup/container"
}

// SnapshotDir is the directory of a snapshot's volume.
func SnapshotDir(typ, snap string) string {
	if typ == TypeVM {
		return "backup/virtual-machine-snapshots/" + snap
	}
	return "backup/snapshots/" + snap
}

// DiskName is a VM's disk image: backup/virtual-machine.img, or
// backup/virtual-machine-snapshots/SNAP.img for a snapshot's.
func DiskName(snap string) string {
	if snap == "" {
		return "backup/virtual-machine.img"
	}
	return "backup/virtual-machine-snapshots/" + snap + ".img"
}

// OptimizedName is the send stream of a volume (snap "" for the
// instance's) and one of its subvolumes ("/" or "" for the volume's root).
func OptimizedName(typ, snap, subvolume string) string {
	var base string
	switch {
	case snap == "" && typ == TypeVM:
		base = "backup/virtual-machine"
	case snap == "":
		base = "backup/container"
	default:
		base = SnapshotDir(typ, snap)
	}
	if sub := strings.Trim(subvolume, "/"); sub != "" {
		base += "_" + encodeSubvolume(sub)
	}
	return base + ".bin"
}

// encodeSubvolume and decodeSubvolume are LXD's PathNameEncode/Decode:
// "-" doubled, then "/" as "-".
func encodeSubvolume(p string) string {
	return strings.ReplaceAll(strings.ReplaceAll(p, "-", "--"), "/", "-")
}

func decodeSubvolume(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(s, "--", "\x00"), "-", "/"), "\x00", "-")
}

// Writer writes one backup tarball: WriteIndex first, then the volumes'
// parts, then Close. It is not safe for concurrent use; after an error
// every call returns that error.
type Writer struct {
	comp    io.WriteCloser
	tw      *tar.Writer
	indexed bool
	err     error
	buf     []byte
	now     time.Time
}

// NewWriter starts a backup tarball on w, compressed with compression
// (gzip, xz, zstd, lzma or none; "" is gzip, LXD's default).
func NewWriter(w io.Writer, compression string) (*Writer, error) {
	if compression == "" {
		compression = CompressionGzip
	}
	comp, err := newCompressor(w, compression)
	if err != nil {
		return nil, err
	}
	return &Writer{comp: comp, tw: tar.NewWriter(comp), buf: make([]byte, 1<<20), now: time.Now()}, nil
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

func (w *Writer) ready(name string) error {
	if w.err != nil {
		return w.err
	}
	if !w.indexed {
		return w.fail(errors.New("backup: the index must be written first"))
	}
	if err := checkName(name); err != nil {
		return w.fail(err)
	}
	return nil
}

// checkName checks an archive name the writer is asked to write.
func checkName(name string) error {
	if !strings.HasPrefix(name, "backup/") || path.Clean(name) != name || strings.Contains(name, "/../") ||
		strings.HasSuffix(name, "/..") || strings.IndexByte(name, 0) >= 0 {
		return errdefs.Invalid("backup: invalid archive name %q", name)
	}
	return nil
}

// WriteIndex writes backup/index.yaml, which must come first. It
// validates idx and fills Config.VolumeSnapshots (MarshalIndex).
func (w *Writer) WriteIndex(idx *Index) error {
	if w.err != nil {
		return w.err
	}
	if w.indexed {
		return w.fail(errors.New("backup: the index is already written"))
	}
	b, err := MarshalIndex(idx)
	if err != nil {
		return w.fail(err)
	}
	w.indexed = true
	return w.AddFile(IndexName, 0o644, b)
}

// AddFile writes a small root-owned file (backup.yaml, metadata.yaml).
func (w *Writer) AddFile(name string, mode os.FileMode, data []byte) error {
	if err := w.ready(name); err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(mode.Perm()), Size: int64(len(data)), ModTime: w.now}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return w.fail(fmt.Errorf("backup: write %s: %w", name, err))
	}
	if _, err := w.tw.Write(data); err != nil {
		return w.fail(fmt.Errorf("backup: write %s: %w", name, err))
	}
	return nil
}

// AddStream writes a root-owned file of mode 0600 from r: a disk image or
// a send stream. A tar header holds the size before the data, so size
// must be known: -1 takes it from r, which must then be an *os.File (a
// send stream is spooled to a file first, as LXD does). r must give
// exactly size bytes.
func (w *Writer) AddStream(name string, size int64, r io.Reader) error {
	if err := w.ready(name); err != nil {
		return err
	}
	if size < 0 {
		f, ok := r.(*os.File)
		if !ok {
			return w.fail(fmt.Errorf("backup: %s: the size of a stream that is not a file must be given", name))
		}
		st, err := f.Stat()
		if err != nil {
			return w.fail(fmt.Errorf("backup: %s: %w", name, err))
		}
		size = st.Size()
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: size, ModTime: w.now}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return w.fail(fmt.Errorf("backup: write %s: %w", name, err))
	}
	n, err := io.CopyBuffer(w.tw, io.LimitReader(onlyReader{r}, size), w.buf)
	if err != nil {
		return w.fail(fmt.Errorf("backup: write %s: %w", name, err))
	}
	if n != size {
		return w.fail(fmt.Errorf("backup: write %s: the stream ended after %d of %d bytes", name, n, size))
	}
	return nil
}

// archiveInRootfs tells whether an archive name is in a volume's rootfs/
// (backup/container/rootfs/..., backup/snapshots/NAME/rootfs/...).
func archiveInRootfs(name string) bool {
	rest, ok := strings.CutPrefix(name, "backup/container/")
	if !ok {
		s, ok := strings.CutPrefix(name, "backup/snapshots/")
		if !ok {
			return false
		}
		if _, rest, ok = strings.Cut(s, "/"); !ok {
			return false
		}
	}
	return inRootfs(rest)
}

// onlyReader hides io.WriterTo, so io.CopyBuffer uses our large buffer
// rather than *os.File's small generic copy.
type onlyReader struct{ io.Reader }

// TreeOptions tune AddTree.
type TreeOptions struct {
	// IDMap is the map the tree's owners are shifted by on the host (an
	// unprivileged container's tree); the archive holds the container's
	// ids. It applies to the entries in a volume's rootfs/ only (the
	// files beside it are the host's, as in LXD); an owner there outside
	// the map is an error. nil keeps the ids.
	IDMap IDMap
	// Exclude names paths relative to the tree ("root.img") left out:
	// a VM's disk file, added with AddStream instead.
	Exclude []string
}

// AddTree writes the directory dir as prefix (its root) and everything
// under it, in name order, without following symlinks: modes, owners
// (unshifted by opts.IDMap), times (to the second), extended attributes
// (PAX SCHILY.xattr; capability root ids and ACL ids unshifted too),
// symlinks, hard links (within this tree), device nodes and fifos.
// Sockets are skipped, as by tar. Sparse files are written whole; Extract
// makes their holes again.
func (w *Writer) AddTree(prefix, dir string, opts TreeOptions) error {
	if err := w.ready(prefix); err != nil {
		return err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return w.fail(fmt.Errorf("backup: open %s: %w", dir, err))
	}
	t := &treeWriter{w: w, opts: opts, links: map[[2]uint64]string{}, top: dir}
	err = t.dir(fd, prefix, "")
	unix.Close(fd)
	if err != nil {
		return w.fail(err)
	}
	return nil
}

type treeWriter struct {
	w     *Writer
	opts  TreeOptions
	links map[[2]uint64]string // dev, inode → the name first written
	shift bool                 // the entry being written is in a rootfs/: unmap its ids
	top   string
}

// unmap maps a host id of the tree into the container.
func (t *treeWriter) unmap(id uint32, uid bool) (uint32, error) {
	if !t.shift {
		return id, nil
	}
	c, ok := t.opts.IDMap.toInside(id, uid)
	if !ok {
		return 0, fmt.Errorf("host %s %d is outside the tree's id map", kind(uid), id)
	}
	return c, nil
}

// dir writes the directory open as fd, named name in the archive and rel
// in the tree, then its children.
func (t *treeWriter) dir(fd int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("backup: stat %s: %w", t.path(rel), err)
	}
	if err := t.header(name, rel, &st, "", func(buf []byte, attr string) (int, error) {
		if attr == "" {
			return unix.Flistxattr(fd, buf)
		}
		return unix.Fgetxattr(fd, attr, buf)
	}); err != nil {
		return err
	}
	names, err := readDirNames(fd)
	if err != nil {
		return fmt.Errorf("backup: read directory %s: %w", t.path(rel), err)
	}
	slices.Sort(names)
	for _, n := range names {
		crel := n
		if rel != "" {
			crel = rel + "/" + n
		}
		if slices.Contains(t.opts.Exclude, crel) {
			continue
		}
		if err := t.child(fd, n, name+"/"+n, crel); err != nil {
			return err
		}
	}
	return nil
}

// readDirNames lists the directory open as fd, through a duplicate that
// it closes (an *os.File on fd itself would close fd when collected).
func readDirNames(fd int) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	d := os.NewFile(uintptr(dup), "")
	defer d.Close()
	return d.Readdirnames(-1)
}

func (t *treeWriter) path(rel string) string {
	if rel == "" {
		return t.top
	}
	return t.top + "/" + rel
}

func (t *treeWriter) child(pfd int, base, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil // Removed while we walk: as LXD, skip it.
		}
		return fmt.Errorf("backup: stat %s: %w", t.path(rel), err)
	}
	// Attributes of files not opened are read through the parent's fd
	// and the name, never following the last component.
	pathAttr := func(buf []byte, attr string) (int, error) {
		p := "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
		if attr == "" {
			return unix.Llistxattr(p, buf)
		}
		return unix.Lgetxattr(p, attr, buf)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("backup: open %s: %w", t.path(rel), err)
		}
		defer unix.Close(fd)
		return t.dir(fd, name, rel)
	case unix.S_IFREG:
		return t.file(pfd, base, name, rel)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(pfd, base, buf)
		if err != nil {
			return fmt.Errorf("backup: read link %s: %w", t.path(rel), err)
		}
		return t.header(name, rel, &st, string(buf[:n]), nil) // No xattrs on links, as LXD.
	case unix.S_IFSOCK:
		return nil
	default: // devices, fifos
		return t.header(name, rel, &st, "", pathAttr)
	}
}

func (t *treeWriter) file(pfd int, base, name, rel string) error {
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return fmt.Errorf("backup: open %s: %w", t.path(rel), err)
	}
	f := os.NewFile(uintptr(fd), t.path(rel))
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("backup: stat %s: %w", t.path(rel), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("backup: %s changed type while read", t.path(rel))
	}
	if st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := t.links[key]; ok {
			return t.write(&tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: first})
		}
		t.links[key] = name
	}
	if err := t.header(name, rel, &st, "", func(buf []byte, attr string) (int, error) {
		if attr == "" {
			return unix.Flistxattr(fd, buf)
		}
		return unix.Fgetxattr(fd, attr, buf)
	}); err != nil {
		return err
	}
	n, err := io.CopyBuffer(t.w.tw, io.LimitReader(onlyReader{f}, st.Size), t.w.buf)
	if err != nil {
		return fmt.Errorf("backup: copy %s: %w", t.path(rel), err)
	}
	if n != st.Size {
		// A file that grew is cut at its size, as LXD does; one that
		// shrank cannot be completed honestly.
		return fmt.Errorf("backup: %s shrank while read (%d of %d bytes)", t.path(rel), n, st.Size)
	}
	return nil
}

func (t *treeWriter) write(hdr *tar.Header) error {
	if err := t.w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("backup: write %s: %w", hdr.Name, err)
	}
	return nil
}

// xattrReader lists (attr "") or reads one extended attribute into buf.
type xattrReader func(buf []byte, attr string) (int, error)

// header writes the header of an entry from its stat.
func (t *treeWriter) header(name, rel string, st *unix.Stat_t, link string, xr xattrReader) error {
	t.shift = t.opts.IDMap != nil && archiveInRootfs(name)
	uid, err := t.unmap(st.Uid, true)
	if err != nil {
		return errdefs.Invalid("backup: %s: %v", t.path(rel), err)
	}
	gid, err := t.unmap(st.Gid, false)
	if err != nil {
		return errdefs.Invalid("backup: %s: %v", t.path(rel), err)
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(uid),
		Gid:     int(gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = link
	case unix.S_IFCHR:
		hdr.Typeflag = tar.TypeChar
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		hdr.Devmajor = int64(unix.Major(st.Rdev))
		hdr.Devminor = int64(unix.Minor(st.Rdev))
	}
	if xr != nil {
		if hdr.PAXRecords, err = t.xattrs(xr); err != nil {
			return fmt.Errorf("backup: %s: %w", t.path(rel), err)
		}
	}
	return t.write(hdr)
}

// xattrs reads every extended attribute as PAX records, with the ids in
// capabilities and ACLs unshifted.
func (t *treeWriter) xattrs(xr xattrReader) (map[string]string, error) {
	names, err := readXattr(xr, "")
	if err != nil {
		if err == unix.ENOTSUP {
			return nil, nil
		}
		return nil, fmt.Errorf("list xattrs: %w", err)
	}
	var recs map[string]string
	for _, n := range strings.Split(string(names), "\x00") {
		if n == "" {
			continue
		}
		v, err := readXattr(xr, n)
		if err == unix.ENODATA {
			continue // Removed since listed.
		}
		if err != nil {
			return nil, fmt.Errorf("read xattr %s: %w", n, err)
		}
		if t.shift {
			if v, err = mapXattr(n, v, t.unmap); err != nil {
				return nil, fmt.Errorf("xattr %s: %w", n, err)
			}
		}
		if recs == nil {
			recs = map[string]string{}
		}
		recs["SCHILY.xattr."+n] = string(v)
	}
	return recs, nil
}

// readXattr reads a list or value whatever its size.
func readXattr(xr xattrReader, attr string) ([]byte, error) {
	size := 256
	for {
		buf := make([]byte, size)
		n, err := xr(buf, attr)
		if err == unix.ERANGE && size < 1<<20 {
			size *= 8
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// Close ends the archive (the tar trailer) and flushes the compressor; it
// leaves the underlying writer open.
func (w *Writer) Close() error {
	if w.err != nil {
		w.comp.Close()
		return w.err
	}
	if err := w.tw.Close(); err != nil {
		return w.fail(fmt.Errorf("backup: close tar: %w", err))
	}
	if err := w.comp.Close(); err != nil {
		return w.fail(fmt.Errorf("backup: close compressor: %w", err))
	}
	w.err = errors.New("backup: writer closed")
	return nil
}

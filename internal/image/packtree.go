package image

import (
	"archive/tar"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
)

// overflowID is the id a user namespace shows for a host id it does not
// map (the kernel's overflowuid/overflowgid): a file the namespace cannot
// name is written with it, as the instance saw it.
const overflowID = 65534

// treePacker writes a directory tree into a tar stream, under a prefix
// (an LXD image's rootfs/), the reverse of the unpacker: ownership is
// shifted back through an id map (host id HostID+n is written as n),
// file capabilities and POSIX ACLs with it, and hard links are written as
// links to the first name seen.
//
// The tree is walked by directory fds with *at calls that never follow a
// symlink, so a tree that holds symlinks to host paths (any container's
// does) is archived as it is and never read through them.
type treePacker struct {
	ctx    context.Context
	tw     *tar.Writer
	prefix string
	idmap  *driver.IDMap
	log    *slog.Logger

	links map[[2]uint64]string // (dev, ino) of files with several names → first name
	buf   []byte
	// done counts regular files' bytes written, for progress.
	done     int64
	progress func(done int64)
	// unmapped counts entries whose owner the map does not hold.
	unmapped int
}

// pack writes dir, which must be a directory, as prefix/ and all it holds.
func (p *treePacker) pack(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	d := os.NewFile(uintptr(fd), dir)
	defer d.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	if p.links == nil {
		p.links = map[[2]uint64]string{}
	}
	if p.buf == nil {
		p.buf = make([]byte, 1<<20)
	}
	hdr := p.header(p.prefix+"/", &st)
	hdr.Typeflag = tar.TypeDir
	if err := p.xattrs(hdr, fd, "", "/"); err != nil {
		return err
	}
	if err := p.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if err := p.dir(d, ""); err != nil {
		return err
	}
	if p.unmapped > 0 {
		p.log.Warn("files owned by ids outside the instance's id map were published as nobody", "count", p.unmapped)
	}
	return nil
}

// dir writes the entries of the open directory d, whose path in the tree
// is rel ("" for the root), sorted by name so that one tree always packs
// alike.
func (p *treePacker) dir(d *os.File, rel string) error {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory /%s: %w", rel, err)
	}
	sort.Strings(names)
	dfd := int(d.Fd())
	for _, name := range names {
		if err := p.ctx.Err(); err != nil {
			return cancelled(err)
		}
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		if err := p.entry(dfd, name, childRel); err != nil {
			return err
		}
	}
	return nil
}

func (p *treePacker) entry(dfd int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil // Removed since the directory was read.
		}
		return fmt.Errorf("stat /%s: %w", rel, err)
	}
	tarName := p.prefix + "/" + rel
	hdr := p.header(tarName, &st)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /%s: %w", rel, err)
		}
		d := os.NewFile(uintptr(fd), rel)
		defer d.Close()
		hdr.Name += "/"
		hdr.Typeflag = tar.TypeDir
		if err := p.xattrs(hdr, fd, "", rel); err != nil {
			return err
		}
		if err := p.tw.WriteHeader(hdr); err != nil {
			return err
		}
		return p.dir(d, rel)
	case unix.S_IFREG:
		return p.file(dfd, name, rel, hdr, &st)
	case unix.S_IFLNK:
		target, err := readlinkat(dfd, name)
		if err != nil {
			return fmt.Errorf("read symlink /%s: %w", rel, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		hdr.Mode = 0o777
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			hdr.Typeflag = tar.TypeChar
		case unix.S_IFBLK:
			hdr.Typeflag = tar.TypeBlock
		default:
			hdr.Typeflag = tar.TypeFifo
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	default:
		// A socket: tar has no type for it, and it means nothing without
		// the process that listens on it.
		p.log.Debug("not publishing a socket", "path", "/"+rel)
		return nil
	}
	if err := p.xattrs(hdr, -1, "/proc/self/fd/"+strconv.Itoa(dfd)+"/"+name, rel); err != nil {
		return err
	}
	return p.tw.WriteHeader(hdr)
}

// file writes a regular file, or a link to its first name when it has
// several.
func (p *treePacker) file(dfd int, name, rel string, hdr *tar.Header, st *unix.Stat_t) error {
	key := [2]uint64{st.Dev, st.Ino}
	if st.Nlink > 1 {
		if first, ok := p.links[key]; ok {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return p.tw.WriteHeader(hdr)
		}
		p.links[key] = hdr.Name
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open /%s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	if err := p.xattrs(hdr, fd, "", rel); err != nil {
		return err
	}
	if err := p.tw.WriteHeader(hdr); err != nil {
		return err
	}
	// Exactly the size in the header: a file that changed size since
	// (the view of a running instance is frozen, so it should not) would
	// otherwise corrupt the stream.
	n, err := io.CopyBuffer(p.tw, io.LimitReader(f, st.Size), p.buf)
	if err != nil {
		if cerr := p.ctx.Err(); cerr != nil {
			return cancelled(cerr)
		}
		return fmt.Errorf("read /%s: %w", rel, err)
	}
	if n != st.Size {
		return fmt.Errorf("read /%s: file shrank from %d to %d bytes while it was published", rel, st.Size, n)
	}
	p.done += n
	if p.progress != nil {
		p.progress(p.done)
	}
	return nil
}

// header fills what every entry has: name, mode, owner and time (to the
// second, as GNU tar writes it by default).
func (p *treePacker) header(name string, st *unix.Stat_t) *tar.Header {
	return &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(p.unshift(st.Uid)),
		Gid:     int(p.unshift(st.Gid)),
		ModTime: time.Unix(st.Mtim.Sec, 0),
	}
}

// unshift returns the id the instance sees for a host id.
func (p *treePacker) unshift(id uint32) uint32 {
	m := p.idmap
	if m == nil {
		return id
	}
	if id >= m.HostID && id-m.HostID < m.Size {
		return id - m.HostID
	}
	p.unmapped++
	return overflowID
}

// xattrs reads an entry's extended attributes into PAX records, through
// fd when it has one, else by path (a /proc/self/fd/N/name path whose
// last component is not followed).
func (p *treePacker) xattrs(hdr *tar.Header, fd int, path, rel string) error {
	names, err := listXattrs(fd, path)
	if err != nil {
		if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
			return nil
		}
		return fmt.Errorf("list xattrs of /%s: %w", rel, err)
	}
	for _, name := range names {
		value, err := getXattr(fd, path, name)
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return fmt.Errorf("read xattr %s of /%s: %w", name, rel, err)
		}
		if m := p.idmap; m != nil {
			switch name {
			case "security.capability":
				v, ok := unshiftCapability(value, *m)
				if !ok {
					p.log.Warn("not publishing a file capability whose root is outside the instance's id map", "path", "/"+rel)
					continue
				}
				value = v
			case "system.posix_acl_access", "system.posix_acl_default":
				v, err := p.unshiftACL(value)
				if err != nil {
					return fmt.Errorf("xattr %s of /%s: %w", name, rel, err)
				}
				value = v
			}
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+name] = string(value)
	}
	return nil
}

// unshiftCapability rewrites a security.capability value read from a
// shifted tree for the image: a revision 3 value whose root id is the
// map's root becomes revision 2 (what an image holds, and what the
// unpacker shifts again for the next instance); another root id inside
// the map keeps revision 3 with the id the instance sees. ok is false for
// a root id outside the map: those capabilities never applied inside the
// instance, and mean nothing to the image.
func unshiftCapability(v []byte, m driver.IDMap) (_ []byte, ok bool) {
	if len(v) < 4 || binary.LittleEndian.Uint32(v)&capRevisionMask != capRevision3 || len(v) != capSizeV3 {
		return v, true // Revision 2 (or unknown: left to the unpacker to judge).
	}
	root := binary.LittleEndian.Uint32(v[capSizeV2:])
	if root < m.HostID || root-m.HostID >= m.Size {
		return nil, false
	}
	root -= m.HostID
	if root == 0 {
		out := make([]byte, capSizeV2)
		copy(out, v[:capSizeV2])
		binary.LittleEndian.PutUint32(out, capRevision2|binary.LittleEndian.Uint32(v)&capFlagsEff)
		return out, true
	}
	out := append([]byte(nil), v...)
	binary.LittleEndian.PutUint32(out[capSizeV2:], root)
	return out, true
}

// unshiftACL writes named user and group entries with the ids the
// instance sees.
func (p *treePacker) unshiftACL(v []byte) ([]byte, error) {
	if len(v) < 4 || (len(v)-4)%8 != 0 || binary.LittleEndian.Uint32(v) != aclVersion {
		return nil, errors.New("malformed ACL")
	}
	out := append([]byte(nil), v...)
	for off := 4; off < len(out); off += 8 {
		tag := binary.LittleEndian.Uint16(out[off:])
		if tag != aclUser && tag != aclGroup {
			continue
		}
		binary.LittleEndian.PutUint32(out[off+4:], p.unshift(binary.LittleEndian.Uint32(out[off+4:])))
	}
	return out, nil
}

func listXattrs(fd int, path string) ([]string, error) {
	buf := make([]byte, 4096)
	for {
		var n int
		var err error
		if fd >= 0 {
			n, err = unix.Flistxattr(fd, buf)
		} else {
			n, err = unix.Llistxattr(path, buf)
		}
		if err == unix.ERANGE {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		sort.Strings(names)
		return names, nil
	}
}

func getXattr(fd int, path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		var n int
		var err error
		if fd >= 0 {
			n, err = unix.Fgetxattr(fd, name, buf)
		} else {
			n, err = unix.Lgetxattr(path, name, buf)
		}
		if err == unix.ERANGE {
			if len(buf) >= 1<<20 {
				return nil, err
			}
			buf = make([]byte, 4*len(buf))
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func readlinkat(dfd int, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(dfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

// treeSize estimates the bytes of a tree's regular files, for progress
// (as LXD does before it packs an instance). Errors are ignored: it is an
// estimate.
func treeSize(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

package fsroot

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Type is the kind of a file.
type Type int

// The kinds of file. Other covers devices, fifos and sockets, which the
// files API neither reads nor makes.
const (
	TypeFile Type = iota
	TypeDir
	TypeSymlink
	TypeOther
)

func (t Type) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "directory"
	case TypeSymlink:
		return "symlink"
	default:
		return "other"
	}
}

// Info describes a file; ids are host ids.
type Info struct {
	Type    Type
	UID     uint32
	GID     uint32
	Mode    uint32 // permission bits with setuid, setgid and sticky
	Size    int64
	ModTime time.Time
}

func infoOf(st *unix.Stat_t) Info {
	in := Info{
		UID:     st.Uid,
		GID:     st.Gid,
		Mode:    st.Mode & 0o7777,
		Size:    st.Size,
		ModTime: time.Unix(st.Mtim.Unix()),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		in.Type = TypeFile
	case unix.S_IFDIR:
		in.Type = TypeDir
	case unix.S_IFLNK:
		in.Type = TypeSymlink
	default:
		in.Type = TypeOther
	}
	return in
}

// Node is what Get found at a path.
type Node struct {
	Info
	// File is the open file, for TypeFile; the caller closes it.
	File *os.File
	// Entries are a directory's names, sorted, for TypeDir.
	Entries []string
	// Target is a symlink's target as stored, for TypeSymlink.
	Target string
}

// Get looks at p without following a symlink in last place (lstat): a
// file is opened for reading, a directory listed, a symlink read.
func (r *Root) Get(p string) (*Node, error) {
	p, err := Clean(p)
	if err != nil {
		return nil, err
	}
	n, err := r.resolve(p, false)
	if err != nil {
		return nil, err
	}
	defer n.close()
	var st unix.Stat_t
	if err := statAt(n, &st); err != nil {
		return nil, pathError(p, err)
	}
	out := &Node{Info: infoOf(&st)}
	switch out.Type {
	case TypeFile:
		f, err := openRegular(n, p, &st, unix.O_RDONLY)
		if err != nil {
			return nil, err
		}
		out.File = f
	case TypeDir:
		fd, err := openDir(n)
		if err != nil {
			return nil, pathError(p, err)
		}
		d := os.NewFile(uintptr(fd), p)
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return nil, pathError(p, err)
		}
		sort.Strings(names)
		out.Entries = names
	case TypeSymlink:
		buf := make([]byte, maxPath+1)
		k, err := unix.Readlinkat(n.dir, n.name, buf)
		if err != nil {
			return nil, pathError(p, err)
		}
		out.Target = string(buf[:min(k, maxPath)])
	default:
		return nil, errdefs.Invalid("%s: not a regular file, directory or symlink", p)
	}
	return out, nil
}

// FileOptions say how WriteFile treats p.
type FileOptions struct {
	// Append adds to the end of an existing file instead of replacing it.
	Append bool
	// UID, GID and Mode are given to a file WriteFile creates; an existing
	// file keeps its owner and mode, as with LXD.
	UID, GID uint32
	Mode     uint32
}

// WriteFile writes content to the file p, following a symlink in last
// place inside the root. It returns whether it created the file.
//
// Overwriting writes a temporary file beside p and renames it over p, so
// the file changes at once and a failure leaves the old one untouched.
// Appending needs an existing regular file.
func (r *Root) WriteFile(p string, content io.Reader, o FileOptions) (created bool, err error) {
	if p, err = Clean(p); err != nil {
		return false, err
	}
	n, err := r.resolve(p, true)
	if err != nil {
		return false, err
	}
	defer n.close()
	if n.name == "" {
		return false, pathError(p, unix.EISDIR)
	}
	var st unix.Stat_t
	err = statAt(n, &st)
	exists := err == nil
	switch {
	case err != nil && !errors.Is(err, unix.ENOENT):
		return false, pathError(p, err)
	case exists && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return false, pathError(p, unix.EISDIR)
	case exists && st.Mode&unix.S_IFMT != unix.S_IFREG:
		return false, errdefs.Invalid("%s: not a regular file", p)
	case o.Append && !exists:
		return false, errdefs.NotFound("%s: no such file to append to", p)
	}
	if o.Append {
		return false, appendTo(n, p, &st, content)
	}
	if exists {
		o.UID, o.GID, o.Mode = st.Uid, st.Gid, st.Mode&0o7777
	}
	if err := replace(n, p, content, o); err != nil {
		return false, err
	}
	return !exists, nil
}

func appendTo(n node, p string, st *unix.Stat_t, content io.Reader) error {
	f, err := openRegular(n, p, st, unix.O_WRONLY|unix.O_APPEND)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(f, content); err != nil {
		return writeError(p, err)
	}
	return f.Close()
}

// replace writes content to a new temporary file in n's directory and
// renames it to n's name.
func replace(n node, p string, content io.Reader, o FileOptions) (err error) {
	tmp, f, err := createTemp(n, o.UID, o.GID)
	if err != nil {
		return pathError(p, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			asDirOwner(n.dir, func() error { return unix.Unlinkat(n.dir, tmp, 0) })
		}
	}()
	if _, err := io.Copy(f, content); err != nil {
		return writeError(p, err)
	}
	if err := chownChmod(int(f.Fd()), o.UID, o.GID, o.Mode); err != nil {
		return pathError(p, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return writeError(p, err)
	}
	if err := asDirOwner(n.dir, func() error { return unix.Renameat(n.dir, tmp, n.dir, n.name) }); err != nil {
		return pathError(p, err)
	}
	return nil
}

// createTemp makes a new empty file beside n, mode 0600 until chmod; uid
// and gid are its owner-to-be (see asOwner).
func createTemp(n node, uid, gid uint32) (string, *os.File, error) {
	for range 16 {
		var b [8]byte
		rand.Read(b[:])
		name := ".hangar-" + hex.EncodeToString(b[:]) + ".tmp"
		var fd int
		err := asOwner(uid, gid, func() (err error) {
			fd, err = openBeneathMode(n.dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
			return err
		})
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		return name, os.NewFile(uintptr(fd), name), nil
	}
	return "", nil, unix.EEXIST
}

// Mkdir makes the directory p owned by uid:gid with mode. An existing
// directory, or a symlink to one, is left as it is: existed is then true.
func (r *Root) Mkdir(p string, uid, gid, mode uint32) (existed bool, err error) {
	if p, err = Clean(p); err != nil {
		return false, err
	}
	n, err := r.resolve(p, false)
	if err != nil {
		return false, err
	}
	defer n.close()
	var st unix.Stat_t
	err = statAt(n, &st)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return true, nil
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK:
		// As mkdir -p: fine if the link leads to a directory.
		if info, err := r.statFollow(p); err == nil && info.Type == TypeDir {
			return true, nil
		}
		return false, errdefs.Conflict("%s: exists and is not a directory", p)
	case err == nil:
		return false, errdefs.Conflict("%s: exists and is not a directory", p)
	case !errors.Is(err, unix.ENOENT):
		return false, pathError(p, err)
	}
	if err := asOwner(uid, gid, func() error { return unix.Mkdirat(n.dir, n.name, 0o700) }); err != nil {
		return false, pathError(p, err)
	}
	fd, err := openBeneath(n.dir, n.name, unix.O_RDONLY|unix.O_DIRECTORY)
	if err == nil {
		err = chownChmod(fd, uid, gid, mode)
		unix.Close(fd)
	}
	if err != nil {
		asDirOwner(n.dir, func() error { return unix.Unlinkat(n.dir, n.name, unix.AT_REMOVEDIR) })
		return false, pathError(p, err)
	}
	return false, nil
}

// statFollow stats p following every symlink, the last one included.
func (r *Root) statFollow(p string) (Info, error) {
	n, err := r.resolve(p, true)
	if err != nil {
		return Info{}, err
	}
	defer n.close()
	var st unix.Stat_t
	if err := statAt(n, &st); err != nil {
		return Info{}, pathError(p, err)
	}
	return infoOf(&st), nil
}

// Symlink makes p a symlink to target, owned by uid:gid. A symlink with
// that target already there is left as it is (existed is true); anything
// else at p is a conflict. The target is stored as given: it is resolved
// inside the root whenever it is followed.
func (r *Root) Symlink(target, p string, uid, gid uint32) (existed bool, err error) {
	if p, err = Clean(p); err != nil {
		return false, err
	}
	switch {
	case target == "":
		return false, errdefs.Invalid("%s: empty symlink target", p)
	case len(target) > maxPath:
		return false, errdefs.Invalid("%s: symlink target longer than %d bytes", p, maxPath)
	case strings.IndexByte(target, 0) >= 0:
		return false, errdefs.Invalid("%s: symlink target contains a NUL byte", p)
	}
	n, err := r.resolve(p, false)
	if err != nil {
		return false, err
	}
	defer n.close()
	if n.name == "" {
		return false, pathError(p, unix.EEXIST)
	}
	buf := make([]byte, maxPath+1)
	if k, err := unix.Readlinkat(n.dir, n.name, buf); err == nil && string(buf[:k]) == target {
		return true, nil
	}
	if err := asOwner(uid, gid, func() error { return unix.Symlinkat(target, n.dir, n.name) }); err != nil {
		return false, pathError(p, err)
	}
	if err := unix.Fchownat(n.dir, n.name, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		asDirOwner(n.dir, func() error { return unix.Unlinkat(n.dir, n.name, 0) })
		return false, pathError(p, err)
	}
	return false, nil
}

// Remove deletes the file, symlink (not what it points to) or empty
// directory p.
func (r *Root) Remove(p string) (err error) {
	if p, err = Clean(p); err != nil {
		return err
	}
	if p == "/" {
		return errdefs.Invalid("cannot delete the root directory")
	}
	n, err := r.resolve(p, false)
	if err != nil {
		return err
	}
	defer n.close()
	err = asDirOwner(n.dir, func() error { return unix.Unlinkat(n.dir, n.name, 0) })
	if errors.Is(err, unix.EISDIR) {
		err = asDirOwner(n.dir, func() error { return unix.Unlinkat(n.dir, n.name, unix.AT_REMOVEDIR) })
	}
	if errors.Is(err, unix.EEXIST) {
		err = unix.ENOTEMPTY // rmdir's other spelling of it
	}
	if err != nil {
		return pathError(p, err)
	}
	return nil
}

// statAt lstats n (the directory itself when n has no name).
func statAt(n node, st *unix.Stat_t) error {
	if n.name == "" {
		return unix.Fstat(n.dir, st)
	}
	return unix.Fstatat(n.dir, n.name, st, unix.AT_SYMLINK_NOFOLLOW)
}

// openDir opens the directory n for reading its entries.
func openDir(n node) (int, error) {
	name := n.name
	if name == "" {
		name = "."
	}
	return openBeneath(n.dir, name, unix.O_RDONLY|unix.O_DIRECTORY)
}

// asOwner runs create, which makes one file, directory or symlink. On a
// filesystem mounted inside an instance's user namespace (a tmpfs the
// instance mounted on /tmp), the kernel refuses to create anything as the
// daemon's uid 0, which that namespace does not map (EOVERFLOW): create is
// then run again with the thread's filesystem ids set to the new file's
// owner-to-be, an id the namespace maps. The ids are per-thread, so the
// goroutine holds its thread meanwhile and restores them before letting
// go; going back to fsuid 0 restores the capabilities the change dropped.
func asOwner(uid, gid uint32, create func() error) error {
	err := create()
	if err != unix.EOVERFLOW {
		return err
	}
	runtime.LockOSThread()
	oldGID, gerr := unix.SetfsgidRetGid(int(gid))
	oldUID, uerr := unix.SetfsuidRetUid(int(uid))
	if gerr == nil && uerr == nil {
		err = create()
	}
	_, uerr2 := unix.SetfsuidRetUid(oldUID)
	_, gerr2 := unix.SetfsgidRetGid(oldGID)
	if uerr2 == nil && gerr2 == nil {
		runtime.UnlockOSThread()
	}
	// Otherwise the thread stays locked: Go ends it with the goroutine
	// rather than reuse it with the wrong ids.
	return err
}

// asDirOwner is asOwner for changes to a directory's entries (rename,
// unlink): done as the directory's owner, who may make them even in a
// sticky directory.
func asDirOwner(dir int, change func() error) error {
	err := change()
	if err != unix.EOVERFLOW {
		return err
	}
	var st unix.Stat_t
	if serr := unix.Fstat(dir, &st); serr != nil {
		return err
	}
	return asOwner(st.Uid, st.Gid, change)
}

// openRegular opens n for reading or writing only if it is still the
// regular file st described. It is first opened O_PATH, which opens
// nothing (no device is ever opened, not even briefly, if a racing
// process swapped one in), checked, then reopened through its descriptor,
// which names that inode and no other.
func openRegular(n node, p string, st *unix.Stat_t, flags int) (*os.File, error) {
	pfd, err := openBeneath(n.dir, n.name, unix.O_PATH)
	if err != nil {
		return nil, pathError(p, err)
	}
	pf := os.NewFile(uintptr(pfd), p)
	defer pf.Close()
	if err := sameFile(pf, p, st); err != nil {
		return nil, err
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", pfd), flags|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, pathError(p, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// sameFile checks that f is still the regular file st described.
func sameFile(f *os.File, p string, st *unix.Stat_t) error {
	var now unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &now); err != nil {
		return pathError(p, err)
	}
	if now.Dev != st.Dev || now.Ino != st.Ino || now.Mode&unix.S_IFMT != unix.S_IFREG {
		return errdefs.Conflict("%s: changed while being opened", p)
	}
	return nil
}

// chownChmod gives fd its owner, then its mode: chown clears setuid and
// setgid bits, so the other order would lose them.
func chownChmod(fd int, uid, gid, mode uint32) error {
	if err := unix.Fchown(fd, int(uid), int(gid)); err != nil {
		return err
	}
	return unix.Fchmod(fd, mode&0o7777)
}

// writeError wraps a failure while copying content: the reader's (a client
// that went away) or the file's (a full disk).
func writeError(p string, err error) error {
	var errno unix.Errno
	var pe *os.PathError
	if errors.As(err, &pe) && errors.As(pe.Err, &errno) {
		return pathError(p, errno)
	}
	return fmt.Errorf("write %s: %w", p, err)
}

// Stat describes p, following a symlink in last place with follow (stat)
// or not (lstat), without opening it; a symlink's target as stored is
// returned too.
func (r *Root) Stat(p string, follow bool) (Info, string, error) {
	p, err := Clean(p)
	if err != nil {
		return Info{}, "", err
	}
	n, err := r.resolve(p, follow)
	if err != nil {
		return Info{}, "", err
	}
	defer n.close()
	var st unix.Stat_t
	if err := statAt(n, &st); err != nil {
		return Info{}, "", pathError(p, err)
	}
	info := infoOf(&st)
	if info.Type != TypeSymlink {
		return info, "", nil
	}
	buf := make([]byte, maxPath+1)
	k, err := unix.Readlinkat(n.dir, n.name, buf)
	if err != nil {
		return Info{}, "", pathError(p, err)
	}
	return info, string(buf[:min(k, maxPath)]), nil
}

package fsroot

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// ErrOutsideRoot is in the chain of every error for a path or symlink whose
// ".." climbs above the root. Such errors are also invalid-argument errors.
var ErrOutsideRoot = errors.New("path leaves the root filesystem")

// maxSymlinks is the kernel's bound on symlinks followed in one lookup.
const maxSymlinks = 40

// maxPath bounds request paths and symlink targets (PATH_MAX).
const maxPath = 4096

// Root is an open directory that paths are resolved inside. It does not own
// the directory: the caller closes it after the last call.
type Root struct {
	dir *os.File
	fd  int
}

// New returns a Root over an open directory (an O_PATH descriptor will do).
func New(dir *os.File) *Root {
	return &Root{dir: dir, fd: int(dir.Fd())}
}

// outsideError is ErrOutsideRoot for one path, of the invalid-argument kind.
type outsideError struct{ path, via string }

func (e *outsideError) Error() string {
	if e.via != "" {
		return fmt.Sprintf("%s: symlink target %q leaves the instance's root filesystem", e.path, e.via)
	}
	return fmt.Sprintf("%s: path leaves the instance's root filesystem", e.path)
}

func (e *outsideError) Is(target error) bool {
	return target == ErrOutsideRoot || target == errdefs.ErrInvalidArgument
}

// Clean checks a request path and cleans it lexically: it must be absolute,
// without NUL bytes, at most PATH_MAX long, and no ".." in it may climb
// above "/".
func Clean(p string) (string, error) {
	switch {
	case p == "":
		return "", errdefs.Invalid("empty path")
	case !strings.HasPrefix(p, "/"):
		return "", errdefs.Invalid("path %q is not absolute", p)
	case len(p) > maxPath:
		return "", errdefs.Invalid("path is longer than %d bytes", maxPath)
	case strings.IndexByte(p, 0) >= 0:
		return "", errdefs.Invalid("path %q contains a NUL byte", p)
	}
	depth := 0
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			if depth == 0 {
				return "", &outsideError{path: p}
			}
			depth--
		default:
			depth++
		}
	}
	return path.Clean(p), nil
}

// node is a resolved path: the directory that holds it, open, and its name
// there. An empty name means the directory itself (the root, or a link
// followed to a directory through "." or "..").
type node struct {
	dir     int
	name    string
	ownsDir bool
}

func (n *node) close() {
	if n.ownsDir {
		unix.Close(n.dir)
	}
}

// resolve walks p (already Cleaned) inside the root. Every component but
// the last must exist; the last need not. With follow, a symlink in last
// place is resolved too, so the node never names a symlink (unless a race
// put one there, which the *at calls on it then do not follow). The caller
// closes the node.
func (r *Root) resolve(p string, follow bool) (n node, err error) {
	stack := []int{r.fd}
	defer func() {
		// Keep only the node's directory open.
		for _, fd := range stack[1:] {
			if err != nil || fd != n.dir {
				unix.Close(fd)
			}
		}
	}()
	todo := components(p)
	links := 0
	var via string // the symlink target being walked, for errors
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		top := stack[len(stack)-1]
		switch c {
		case ".":
			continue
		case "..":
			if len(stack) == 1 {
				return node{}, &outsideError{path: p, via: via}
			}
			unix.Close(top)
			stack = stack[:len(stack)-1]
			continue
		}
		last := len(todo) == 0
		if last && !follow {
			return r.nodeAt(top, c), nil
		}
		fd, err := openBeneath(top, c, unix.O_PATH)
		if errors.Is(err, unix.ENOENT) && last {
			return r.nodeAt(top, c), nil
		}
		if err != nil {
			return node{}, pathError(p, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return node{}, pathError(p, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, err := readlinkFd(fd)
			unix.Close(fd)
			if err != nil {
				return node{}, pathError(p, err)
			}
			if links++; links > maxSymlinks {
				return node{}, pathError(p, unix.ELOOP)
			}
			if target == "" {
				return node{}, pathError(p, unix.ENOENT)
			}
			via = target
			if strings.HasPrefix(target, "/") {
				for _, fd := range stack[1:] {
					unix.Close(fd)
				}
				stack = stack[:1]
			}
			todo = append(components(target), todo...)
		case unix.S_IFDIR:
			if last {
				unix.Close(fd)
				return r.nodeAt(top, c), nil
			}
			stack = append(stack, fd)
		default:
			unix.Close(fd)
			if !last {
				return node{}, pathError(p, unix.ENOTDIR)
			}
			return r.nodeAt(top, c), nil
		}
	}
	// The path ended on a directory of the stack: the root, or a link to
	// a directory ending in "." or "..".
	return r.nodeAt(stack[len(stack)-1], ""), nil
}

func (r *Root) nodeAt(dir int, name string) node {
	return node{dir: dir, name: name, ownsDir: dir != r.fd}
}

// components splits a path or symlink target into its names; empty ones
// (repeated or trailing slashes) are dropped, "." and ".." kept.
func components(p string) []string {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, c := range parts {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// openBeneath opens one name in dir without following a symlink or
// crossing a mount. flags add to O_NOFOLLOW|O_CLOEXEC.
func openBeneath(dir int, name string, flags uint64) (int, error) {
	return openBeneathMode(dir, name, flags, 0)
}

func openBeneathMode(dir int, name string, flags uint64, mode uint64) (int, error) {
	how := unix.OpenHow{
		Flags:   flags | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Mode:    mode,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	fd, err := Openat2(dir, name, &how)
	if err != unix.EXDEV {
		return fd, err
	}
	// name is a mount point. An instance's root has mounts of its own (a
	// tmpfs on /tmp): those of data filesystems are part of what it
	// sees, and are entered; kernel interfaces (/proc, /sys, devpts...)
	// act on the host's kernel when the daemon writes them, and are not.
	how.Resolve &^= unix.RESOLVE_NO_XDEV
	if fd, err = Openat2(dir, name, &how); err != nil {
		return fd, err
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil || !dataFilesystems[int64(fs.Type)] {
		unix.Close(fd)
		return -1, unix.EXDEV
	}
	return fd, nil
}

// dataFilesystems are the filesystem types a walk may enter at a mount
// point: ones that only store files. FUSE is not among them: a process of
// the instance could serve it and hold the daemon up.
var dataFilesystems = map[int64]bool{
	unix.TMPFS_MAGIC:           true,
	unix.RAMFS_MAGIC:           true,
	unix.OVERLAYFS_SUPER_MAGIC: true,
	unix.EXT4_SUPER_MAGIC:      true, // ext2 and ext3 too
	unix.XFS_SUPER_MAGIC:       true,
	unix.BTRFS_SUPER_MAGIC:     true,
	unix.F2FS_SUPER_MAGIC:      true,
	0x2fc12fc1:                 true, // ZFS
}

// Openat2 is openat2(2) retried while the kernel asks for it: a lookup
// confined to a root (RESOLVE_IN_ROOT, RESOLVE_BENEATH) that races a
// rename or a mount anywhere on the host fails with EAGAIN, and a busy
// host (instances starting, namespaces mounted) makes that common.
func Openat2(dir int, name string, how *unix.OpenHow) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dir, name, how)
		// EAGAIN: a concurrent rename raced the lookup; the kernel asks
		// for a retry.
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 64 {
			continue
		}
		return fd, err
	}
}

// readlinkFd reads the target of the symlink fd was opened on (O_PATH).
func readlinkFd(fd int) (string, error) {
	buf := make([]byte, maxPath+1)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", err
	}
	if n > maxPath {
		return "", unix.ENAMETOOLONG
	}
	return string(buf[:n]), nil
}

// pathError turns an errno met on p into an error of the right kind that
// names p as the instance sees it (never a host path).
func pathError(p string, err error) error {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("%s: %w", p, err)
	}
	switch errno {
	case unix.ENOENT:
		return errdefs.NotFound("%s: no such file or directory", p)
	case unix.ENOTDIR:
		return errdefs.Invalid("%s: a component of the path is not a directory", p)
	case unix.ELOOP:
		return errdefs.Invalid("%s: too many levels of symbolic links", p)
	case unix.EXDEV:
		return errdefs.Invalid("%s: path crosses a mount point", p)
	case unix.ENAMETOOLONG:
		return errdefs.Invalid("%s: file name too long", p)
	case unix.EISDIR:
		return errdefs.Conflict("%s: is a directory", p)
	case unix.EEXIST:
		return errdefs.Conflict("%s: already exists", p)
	case unix.ENOTEMPTY:
		return errdefs.Conflict("%s: directory not empty", p)
	case unix.ENOSPC, unix.EDQUOT:
		return errdefs.Conflict("%s: no space left", p)
	case unix.EACCES, unix.EPERM:
		return errdefs.Invalid("%s: %v", p, errno)
	}
	return fmt.Errorf("%s: %w", p, errno)
}

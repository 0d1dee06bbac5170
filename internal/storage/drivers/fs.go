package drivers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	id           int
	major, minor uint32
	point        string
	fstype       string
	source       string
}

func mounts() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 2 {
			continue
		}
		var e mountEntry
		e.id, _ = strconv.Atoi(f[0])
		maj, min, _ := strings.Cut(f[2], ":")
		ma, _ := strconv.ParseUint(maj, 10, 32)
		mi, _ := strconv.ParseUint(min, 10, 32)
		e.major, e.minor = uint32(ma), uint32(mi)
		e.point = unescapeMountinfo(f[4])
		e.fstype, e.source = g[0], unescapeMountinfo(g[1])
		out = append(out, e)
	}
	return out, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountAt returns the topmost mount at path, if any.
func mountAt(path string) (mountEntry, bool, error) {
	ms, err := mounts()
	if err != nil {
		return mountEntry{}, false, err
	}
	var found mountEntry
	ok := false
	for _, m := range ms {
		if m.point == path {
			found, ok = m, true
		}
	}
	return found, ok, nil
}

// mountOf returns the mount path's file lives on, found by mount ID.
func mountOf(path string) (mountEntry, error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_MNT_ID, &stx); err != nil {
		return mountEntry{}, &os.PathError{Op: "statx", Path: path, Err: err}
	}
	ms, err := mounts()
	if err != nil {
		return mountEntry{}, err
	}
	for _, m := range ms {
		if uint64(m.id) == stx.Mnt_id {
			return m, nil
		}
	}
	return mountEntry{}, fmt.Errorf("mount of %s (id %d) not in /proc/self/mountinfo", path, stx.Mnt_id)
}

// unmount unmounts path; nothing mounted there is not an error, a busy
// mount is a 409.
func unmount(path string) error {
	err := unix.Unmount(path, unix.UMOUNT_NOFOLLOW)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EBUSY):
		return errdefs.Conflict("%s is busy (a process or mount still uses it)", path)
	}
	return &os.PathError{Op: "unmount", Path: path, Err: err}
}

// mountFlags are the mount options that are flags, not filesystem data.
var mountFlags = map[string]struct {
	set   bool
	flags uintptr
}{
	"ro": {true, unix.MS_RDONLY}, "rw": {false, unix.MS_RDONLY},
	"nosuid": {true, unix.MS_NOSUID}, "suid": {false, unix.MS_NOSUID},
	"nodev": {true, unix.MS_NODEV}, "dev": {false, unix.MS_NODEV},
	"noexec": {true, unix.MS_NOEXEC}, "exec": {false, unix.MS_NOEXEC},
	"sync": {true, unix.MS_SYNCHRONOUS}, "async": {false, unix.MS_SYNCHRONOUS},
	"dirsync": {true, unix.MS_DIRSYNC}, "lazytime": {true, unix.MS_LAZYTIME},
	"noatime": {true, unix.MS_NOATIME}, "atime": {false, unix.MS_NOATIME},
	"nodiratime": {true, unix.MS_NODIRATIME}, "diratime": {false, unix.MS_NODIRATIME},
	"relatime": {true, unix.MS_RELATIME}, "norelatime": {false, unix.MS_RELATIME},
	"strictatime": {true, unix.MS_STRICTATIME},
}

// splitMountOptions splits "noatime,compress=zstd" into mount flags and
// the filesystem's own options.
func splitMountOptions(opts string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range strings.Split(opts, ",") {
		if o == "" {
			continue
		}
		if f, ok := mountFlags[o]; ok {
			if f.set {
				flags |= f.flags
			} else {
				flags &^= f.flags
			}
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}

// statfsUsage is a filesystem's space as statfs gives it.
func statfsUsage(path string) (Usage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Usage{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return Usage{
		Used:  int64(st.Blocks-st.Bfree) * st.Bsize,
		Total: int64(st.Blocks) * st.Bsize,
	}, nil
}

// isEmptyDir says whether dir has no entries.
func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}

// removeTree removes path and everything under it, through file
// descriptors (a symlink swapped in by whoever wrote the volume's content
// is unlinked, never followed) and without crossing into another mount:
// a mount under a volume (a bind mount of a host directory, say) is a
// 409, never a wipe of what is mounted there. Mounts are told by mount
// ID, which a bind mount of the same filesystem changes too.
func removeTree(ctx context.Context, path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return os.Remove(path)
	}
	parent, err := unix.Open(filepath.Dir(path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
	}
	defer unix.Close(parent)
	mnt, err := mountID(parent, path)
	if err != nil {
		return err
	}
	return removeAt(ctx, parent, filepath.Base(path), path, mnt)
}

// mountID is the ID of the mount fd is on.
func mountID(fd int, path string) (uint64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, &os.PathError{Op: "statx", Path: path, Err: err}
	}
	return stx.Mnt_id, nil
}

func removeAt(ctx context.Context, parent int, name, path string, mnt uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	dir := os.NewFile(uintptr(fd), path)
	defer dir.Close()
	if id, err := mountID(fd, path); err != nil {
		return err
	} else if id != mnt {
		return errdefs.Conflict("%s is a mount point: not removed", path)
	}
	for {
		ents, err := dir.ReadDir(256)
		for _, e := range ents {
			child := filepath.Join(path, e.Name())
			if e.IsDir() {
				if err := removeAt(ctx, fd, e.Name(), child, mnt); err != nil {
					return err
				}
				continue
			}
			if err := unix.Unlinkat(fd, e.Name(), 0); err != nil && !errors.Is(err, unix.ENOENT) {
				return &os.PathError{Op: "unlink", Path: child, Err: err}
			}
		}
		if err != nil || len(ents) == 0 {
			break
		}
	}
	if err := unix.Unlinkat(parent, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "rmdir", Path: path, Err: err}
	}
	return nil
}

// walkUsage is what a directory tree takes on disk: the allocated blocks
// of every inode once (hard links counted once), not crossing into
// another mount, as du -sx (but counting nested btrfs subvolumes, which
// are on the same mount).
func walkUsage(ctx context.Context, root string) (int64, error) {
	var rootMnt uint64
	var total int64
	seen := map[[2]uint64]struct{}{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != root {
				return nil // removed while we walk
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			var stx unix.Statx_t
			if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil {
				return nil
			}
			if path == root {
				rootMnt = stx.Mnt_id
			} else if stx.Mnt_id != rootMnt {
				return filepath.SkipDir
			}
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Nlink > 1 && !d.IsDir() {
			key := [2]uint64{st.Dev, st.Ino}
			if _, dup := seen[key]; dup {
				return nil
			}
			seen[key] = struct{}{}
		}
		total += st.Blocks * 512
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return 0, errdefs.NotFound("%s not found", root)
	}
	return total, err
}

// deviceOf is the (major, minor) of the filesystem path lives on.
func deviceOf(path string) (uint32, uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return unix.Major(st.Dev), unix.Minor(st.Dev), nil
}

// Quota commands (linux/quota.h), which x/sys does not name.
const (
	qGetInfo         = 0x800005
	prjQuota         = 2
	fsIocFsGetXattr  = 0x801c581f
	qcmdGetInfoPrj   = qGetInfo<<8 | prjQuota
	ifDqinfoSize     = 24
	fsxattrSize      = 28
	btrfsSuperMagic  = unix.BTRFS_SUPER_MAGIC
	minBtrfsSize     = 128 << 20
	defaultLoopMin   = 5
	defaultLoopMax   = 30
	defaultLoopShare = 5 // 1/5 = 20% of the data dir's filesystem, as LXD
)

// projectQuotas says whether the filesystem under path can enforce a
// project quota: it supports project IDs (FS_IOC_FSGETXATTR) and project
// quota accounting is on (quotactl Q_GETINFO for PRJQUOTA). why is the
// sentence a user sees when it cannot.
func projectQuotas(path string) (ok bool, why string) {
	what := path
	if m, err := mountOf(path); err == nil {
		what = fmt.Sprintf("%s (%s on %s)", path, m.fstype, m.source)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Sprintf("the filesystem under %s cannot be probed for project quotas (%v), so a dir pool cannot limit a volume's size; use a btrfs pool", what, err)
	}
	defer unix.Close(fd)
	var xattr [fsxattrSize]byte
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), fsIocFsGetXattr, uintptr(unsafe.Pointer(&xattr[0]))); e != 0 {
		return false, fmt.Sprintf("the filesystem under %s has no project IDs, so a dir pool cannot limit a volume's size; use a btrfs pool", what)
	}
	var info [ifDqinfoSize]byte
	_, _, e := unix.Syscall6(unix.SYS_QUOTACTL_FD, uintptr(fd), qcmdGetInfoPrj, 0, uintptr(unsafe.Pointer(&info[0])), 0, 0)
	if e != 0 {
		return false, fmt.Sprintf("the filesystem under %s has no project quotas enabled, so a dir pool cannot limit a volume's size; use a btrfs pool", what)
	}
	return true, fmt.Sprintf("the filesystem under %s has project quotas, but this hangard does not set them on dir pools yet; use a btrfs pool", what)
}

// onBtrfs says whether path is on a btrfs filesystem.
func onBtrfs(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return st.Type == btrfsSuperMagic, nil
}

// bindMount bind-mounts src at dst.
func bindMount(src, dst string) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s at %s: %w", src, dst, err)
	}
	return nil
}

func pathExists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/osthread"
	"github.com/hangar-dev/hangar/internal/revert"
)

var _ driver.MountHotplugger = (*Driver)(nil)

// mountsFile records, in the instance dir, the extra mounts of the
// running container (its start's and hot-attached ones) with the id of
// the mount each made, so a detach after a daemon restart finds them, and
// unmounts only a mount the driver made.
const mountsFile = "mounts.json"

// extraMount is one of Spec.Mounts, checked: Destination is clean.
type extraMount struct {
	driver.Mount
	isDir bool
	// locked are the flags of the source's mount that a mount in a user
	// namespace cannot change (nosuid, nodev, noexec, the atime mode): a
	// read-only bind must keep them or runc's remount fails with EPERM.
	locked []string
}

// mountRecord is one extra mount of a running container.
type mountRecord struct {
	Destination string `json:"destination"`
	Name        string `json:"name,omitempty"`
	// MntID is the mount's unique id (statx STATX_MNT_ID_UNIQUE; the
	// reusable STATX_MNT_ID before Linux 6.8).
	MntID uint64 `json:"mnt_id"`
}

// cleanDestination checks an extra mount's destination: absolute, not the
// root, not in the kernel's interfaces (/proc, /sys), which runc refuses
// at start and the daemon itself reads.
func cleanDestination(dest string) (string, error) {
	if !path.IsAbs(dest) {
		return "", errdefs.Invalid("mount destination %q is not an absolute path", dest)
	}
	c := path.Clean(dest)
	if c == "/" {
		return "", errdefs.Invalid("mount destination %q is the container's root", dest)
	}
	for _, p := range []string{"/proc", "/sys"} {
		if c == p || strings.HasPrefix(c, p+"/") {
			return "", errdefs.Invalid("mount destination %q is under %s", dest, p)
		}
	}
	return c, nil
}

// checkMount checks an extra mount before anything is made.
func checkMount(m driver.Mount) (extraMount, error) {
	if m.Type != "" && m.Type != "bind" {
		return extraMount{}, errdefs.Invalid("mount at %s of type %q: only bind mounts are supported", m.Destination, m.Type)
	}
	dest, err := cleanDestination(m.Destination)
	if err != nil {
		return extraMount{}, err
	}
	m.Destination = dest
	if !filepath.IsAbs(m.Source) {
		return extraMount{}, errdefs.Invalid("mount source %q is not an absolute path", m.Source)
	}
	fi, err := os.Stat(m.Source)
	if errors.Is(err, os.ErrNotExist) {
		return extraMount{}, errdefs.Invalid("mount source %s does not exist", m.Source)
	}
	if err != nil {
		return extraMount{}, fmt.Errorf("mount source: %w", err)
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() {
		return extraMount{}, errdefs.Invalid("mount source %s is neither a directory nor a regular file", m.Source)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(m.Source, &fs); err != nil {
		return extraMount{}, fmt.Errorf("mount source %s: %w", m.Source, err)
	}
	e := extraMount{Mount: m, isDir: fi.IsDir()}
	for _, f := range []struct {
		bit  int64
		name string
	}{{unix.ST_NOSUID, "nosuid"}, {unix.ST_NODEV, "nodev"}, {unix.ST_NOEXEC, "noexec"}, {unix.ST_NOATIME, "noatime"}} {
		if fs.Flags&f.bit != 0 {
			e.locked = append(e.locked, f.name)
		}
	}
	if fs.Flags&(unix.ST_NOATIME|unix.ST_RELATIME) == 0 {
		// The atime mode is locked too; a remount defaults to relatime.
		e.locked = append(e.locked, "strictatime")
	}
	return e, nil
}

// checkMounts checks Spec.Mounts: each, and no destination twice.
func checkMounts(ms []driver.Mount) ([]extraMount, error) {
	out := make([]extraMount, 0, len(ms))
	seen := map[string]bool{}
	for _, m := range ms {
		e, err := checkMount(m)
		if err != nil {
			return nil, err
		}
		if seen[e.Destination] {
			return nil, errdefs.Invalid("two mounts at %s", e.Destination)
		}
		seen[e.Destination] = true
		out = append(out, e)
	}
	// Parents before children (/data before /data/logs), whatever the
	// order given: runc mounts in list order.
	slices.SortStableFunc(out, func(a, b extraMount) int {
		return strings.Count(a.Destination, "/") - strings.Count(b.Destination, "/")
	})
	return out, nil
}

// attachedAtStart says whether m is mounted by the driver between `runc
// create` and `runc start` instead of by runc: an id-shifted mount in a
// user namespace, which runc 1.1 cannot make (its spec has no idmapped
// mounts). In a privileged container ids are the host's: Shift changes
// nothing and runc binds it as any other.
func (m extraMount) attachedAtStart(userns bool) bool { return m.Shift && userns }

// specMounts are the extra mounts runc makes: read-write or read-only
// recursive binds, keeping the source's locked flags. Private, as LXD's
// disk devices and the driver's hot-attached mounts: what the container
// mounts under one never shows on the host, nor the host's in it.
func specMounts(ms []extraMount, userns bool) []specs.Mount {
	var out []specs.Mount
	for _, m := range ms {
		if m.attachedAtStart(userns) {
			continue
		}
		opts := []string{"rbind", "rprivate", "rw"}
		if m.ReadOnly {
			opts[2] = "ro"
		}
		opts = append(opts, m.locked...)
		out = append(out, specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts})
	}
	return out
}

// AttachMount mounts m into a running container's mount namespace at
// once (a disk device added while it runs).
//
// The mount is made on the host as a detached tree (open_tree of the
// source, OPEN_TREE_CLONE, recursive), made read-only and id-shifted
// there (mount_setattr), then moved into the container: a throwaway
// thread of the daemon joins PID 1's mount namespace (it must leave its
// fs context shared with the daemon's other threads first) and
// move_mounts the tree onto the destination. The destination is resolved
// and made, missing directories included, from PID 1's root with
// RESOLVE_IN_ROOT, so a symlink inside the container never leads out of
// it. The mount lives as long as the container's mount namespace; nothing
// is left on the host.
func (d *Driver) AttachMount(ctx context.Context, id string, m driver.Mount) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("attach mount to %s: %w", id, err)
	}
	e, err := checkMount(m)
	if err != nil {
		return fmt.Errorf("attach mount to %s: %w", id, err)
	}
	in := d.lookup(id)
	if in == nil {
		return fmt.Errorf("attach mount to %s: %w", id, driver.ErrNotRunning)
	}
	in.mountsMu.Lock()
	defer in.mountsMu.Unlock()
	if _, ok := in.mounts[e.Destination]; ok {
		return fmt.Errorf("attach mount to %s: %w", id, errdefs.Conflict("a mount is already attached at %s", e.Destination))
	}
	mid, err := attachMount(in, e)
	if err != nil {
		return fmt.Errorf("attach %s at %s to %s: %w", e.Source, e.Destination, id, err)
	}
	in.mounts[e.Destination] = mountRecord{Destination: e.Destination, Name: e.Name, MntID: mid}
	if err := d.saveMounts(in); err != nil {
		return fmt.Errorf("attach mount to %s: %w", id, err)
	}
	d.log.Info("mount attached", "id", id, "source", e.Source, "destination", e.Destination, "readonly", e.ReadOnly, "shift", e.Shift)
	return nil
}

// DetachMount unmounts the extra mount at destination from a running
// container (MNT_DETACH, from inside its mount namespace). Only a mount
// the driver made there is unmounted: one the container moved away or
// unmounted itself, or a destination never mounted, is nothing to do.
func (d *Driver) DetachMount(ctx context.Context, id, destination string) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("detach mount from %s: %w", id, err)
	}
	dest, err := cleanDestination(destination)
	if err != nil {
		return fmt.Errorf("detach mount from %s: %w", id, err)
	}
	in := d.lookup(id)
	if in == nil {
		return fmt.Errorf("detach mount from %s: %w", id, driver.ErrNotRunning)
	}
	in.mountsMu.Lock()
	defer in.mountsMu.Unlock()
	rec, ok := in.mounts[dest]
	if !ok {
		return nil
	}
	if err := detachMount(in, rec); err != nil {
		return fmt.Errorf("detach %s from %s: %w", dest, id, err)
	}
	delete(in.mounts, dest)
	if err := d.saveMounts(in); err != nil {
		return fmt.Errorf("detach mount from %s: %w", id, err)
	}
	d.log.Info("mount detached", "id", id, "destination", dest)
	return nil
}

// pidHandles are descriptors of a live PID 1's root, mount namespace and
// user namespace, all checked to name it (its pidfd says it still lived
// once they were open).
type pidHandles struct {
	root, mntns, userns int // userns is -1 when PID 1 shares the daemon's
	rootUID, rootGID    int // host ids of the container's root
}

func openPidHandles(in *instance) (h pidHandles, err error) {
	h = pidHandles{root: -1, mntns: -1, userns: -1}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	proc := fmt.Sprintf("/proc/%d/", in.pid)
	if h.root, err = unix.Open(proc+"root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return h, driver.ErrNotRunning
	}
	if h.mntns, err = unix.Open(proc+"ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		return h, driver.ErrNotRunning
	}
	own, err := ownNamespaces()
	if err != nil {
		return h, err
	}
	var st unix.Stat_t
	if err := unix.Stat(proc+"ns/user", &st); err != nil {
		return h, driver.ErrNotRunning
	}
	if st.Ino != own[0].Ino || st.Dev != own[0].Dev { // nsTypes[0] is user
		if h.userns, err = unix.Open(proc+"ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return h, driver.ErrNotRunning
		}
		uids, err := readIDMap(proc + "uid_map")
		if err != nil {
			return h, err
		}
		gids, err := readIDMap(proc + "gid_map")
		if err != nil {
			return h, err
		}
		h.rootUID = execTarget{userns: true, idMap: uids}.hostID(0)
		h.rootGID = execTarget{userns: true, idMap: gids}.hostID(0)
		if h.rootUID < 0 || h.rootGID < 0 {
			return h, errors.New("the container's root is not mapped to a host id")
		}
	}
	// The pid named PID 1 when opened only if PID 1 is still alive now.
	if err := unix.PidfdSendSignal(int(in.pidfd.Fd()), 0, nil, 0); err != nil {
		return h, driver.ErrNotRunning
	}
	return h, nil
}

func (h pidHandles) close() {
	for _, fd := range []int{h.root, h.mntns, h.userns} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// attachMount mounts e into in's mount namespace and returns the id of
// the mount made.
func attachMount(in *instance, e extraMount) (uint64, error) {
	h, err := openPidHandles(in)
	if err != nil {
		return 0, err
	}
	defer h.close()
	tree, err := unix.OpenTree(unix.AT_FDCWD, e.Source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if errors.Is(err, unix.ENOENT) {
		return 0, errdefs.Invalid("mount source %s does not exist", e.Source)
	}
	if err != nil {
		return 0, fmt.Errorf("clone %s: %w", e.Source, err)
	}
	defer unix.Close(tree)
	// Private: a clone of a shared host mount would be its peer, and a
	// mount the container makes under it would show on the host.
	attr := unix.MountAttr{Propagation: unix.MS_PRIVATE}
	if e.ReadOnly {
		attr.Attr_set = unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return 0, fmt.Errorf("set the attributes of the clone of %s: %w", e.Source, err)
	}
	if e.Shift && h.userns >= 0 {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(h.userns)}
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
			// EINVAL: the filesystem (or one mounted under the source)
			// has no idmapped mounts; EPERM: the source already is one.
			return 0, errdefs.Invalid("shift %s: the kernel refuses an idmapped mount of it (its filesystem must support idmapped mounts): %v", e.Source, err)
		}
	}
	r := revert.New()
	defer r.Fail()
	dest, created, err := openDestination(h.root, e.Destination, e.isDir, h.rootUID, h.rootGID)
	for _, c := range created {
		// Outermost first: undone last, once emptied.
		r.Add(func() { removeCreated(h.root, c) })
	}
	if err != nil {
		return 0, err
	}
	defer unix.Close(dest)
	if err := inMountNS(h.mntns, func() error {
		return unix.MoveMount(tree, "", dest, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	}); err != nil {
		return 0, fmt.Errorf("move the mount into the container: %w", err)
	}
	r.Success()
	mid, err := mountID(tree)
	if err != nil {
		return 0, err
	}
	return mid, nil
}

// detachMount unmounts rec from in's mount namespace if it is still what
// is mounted at its destination.
func detachMount(in *instance, rec mountRecord) error {
	h, err := openPidHandles(in)
	if err != nil {
		return err
	}
	defer h.close()
	fd, err := openInRoot(h.root, rec.Destination, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s in the container: %w", rec.Destination, err)
	}
	defer unix.Close(fd)
	mid, err := mountID(fd)
	if err != nil {
		return err
	}
	if mid != rec.MntID {
		return nil // unmounted or moved by the container itself
	}
	// umount2 takes a path: the host's /proc/self/fd/N names exactly the
	// mount fd is on, through the magic link. Opened before joining the
	// container's mount namespace, where /proc is the container's.
	proc, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(proc)
	return inMountNS(h.mntns, func() error {
		if err := unix.Fchdir(proc); err != nil {
			return err
		}
		if err := unix.Unmount(fmt.Sprintf("self/fd/%d", fd), unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount: %w", err)
		}
		return nil
	})
}

// inMountNS runs fn on a throwaway OS thread that joined the mount
// namespace mntns. A thread shares its fs context (root, cwd) with the
// daemon's other threads, which setns into a mount namespace refuses:
// it unshares it first. The thread ends with fn (package osthread).
func inMountNS(mntns int, fn func() error) error {
	var err error
	osthread.Throwaway(func() {
		if err = unix.Unshare(unix.CLONE_FS); err != nil {
			err = fmt.Errorf("unshare fs context: %w", err)
			return
		}
		if err = unix.Setns(mntns, unix.CLONE_NEWNS); err != nil {
			err = fmt.Errorf("join mount namespace: %w", err)
			return
		}
		err = fn()
	})
	return err
}

// createdEntry is a directory or file openDestination made: name in the
// directory at parent (a path inside the container).
type createdEntry struct {
	parent, name string
	dir          bool
}

func removeCreated(root int, c createdEntry) {
	pfd, err := openInRoot(root, c.parent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return
	}
	defer unix.Close(pfd)
	flags := 0
	if c.dir {
		flags = unix.AT_REMOVEDIR
	}
	_ = unix.Unlinkat(pfd, c.name, flags)
}

// openDestination opens dest (clean, absolute) inside the container whose
// root is root (O_PATH), following symlinks inside the root only. What is
// missing is made: directories (mode 0755) and, when !isDir, a last empty
// file (0644), owned by uid:gid (the container's root). created lists what
// was made, outermost first. The destination must be of the source's kind,
// not the container's root itself, and not in /proc or /sys.
func openDestination(root int, dest string, isDir bool, uid, gid int) (fd int, created []createdEntry, err error) {
	comps := strings.Split(strings.TrimPrefix(dest, "/"), "/")
	for i := 0; i < len(comps); i++ {
		prefix := "/" + strings.Join(comps[:i+1], "/")
		last := i == len(comps)-1
		fd, err := openInRoot(root, prefix, unix.O_PATH)
		if err == nil {
			if last {
				if err := checkDestination(root, fd, dest, isDir); err != nil {
					unix.Close(fd)
					return -1, created, err
				}
				return fd, created, nil
			}
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return -1, created, fmt.Errorf("open %s in the container: %w", prefix, err)
		}
		parent := "/" + strings.Join(comps[:i], "/")
		c := createdEntry{parent: parent, name: comps[i], dir: !last || isDir}
		if err := createIn(root, c, uid, gid); err != nil {
			if errors.Is(err, unix.EEXIST) {
				// Something is there that does not resolve: a symlink to
				// nothing (or one made meanwhile).
				return -1, created, errdefs.Invalid("mount destination %s: %s is a symbolic link to nothing", dest, prefix)
			}
			return -1, created, fmt.Errorf("create %s in the container: %w", prefix, err)
		}
		created = append(created, c)
		i-- // open what was made, through the same checks
		if len(created) > len(comps) {
			return -1, created, fmt.Errorf("create %s in the container: changed while made", prefix)
		}
	}
	return -1, created, errors.New("unreachable")
}

// createIn makes c in its parent, owned by uid:gid. The parent is resolved
// inside the root; the new name itself is never followed.
func createIn(root int, c createdEntry, uid, gid int) error {
	pfd, err := openInRoot(root, c.parent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if c.dir {
		err = unix.Mkdirat(pfd, c.name, 0o755)
	} else {
		var f int
		f, err = unix.Openat(pfd, c.name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(f)
		}
	}
	if err != nil {
		return err
	}
	fd, err := unix.Openat(pfd, c.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH)
}

// checkDestination checks the opened destination fd of dest.
func checkDestination(root, fd int, dest string, isDir bool) error {
	var st, rst unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if err := unix.Fstat(root, &rst); err != nil {
		return err
	}
	switch {
	case st.Dev == rst.Dev && st.Ino == rst.Ino:
		return errdefs.Invalid("mount destination %s is the container's root", dest)
	case isDir && st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return errdefs.Invalid("mount destination %s is not a directory, and the source is one", dest)
	case !isDir && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return errdefs.Invalid("mount destination %s is a directory, and the source a file", dest)
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return err
	}
	if fs.Type == unix.PROC_SUPER_MAGIC || fs.Type == unix.SYSFS_MAGIC {
		return errdefs.Invalid("mount destination %s is in the container's /proc or /sys", dest)
	}
	return nil
}

// mountID returns the unique id of the mount fd is on.
func mountID(fd int) (uint64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID_UNIQUE, &stx); err != nil {
		return 0, fmt.Errorf("statx: %w", err)
	}
	if stx.Mask&unix.STATX_MNT_ID_UNIQUE != 0 {
		return stx.Mnt_id, nil
	}
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, fmt.Errorf("statx: %w", err)
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 {
		return 0, errors.New("the kernel gives no mount id (statx STATX_MNT_ID, Linux 5.8)")
	}
	return stx.Mnt_id, nil
}

// recordStartMounts records the extra mounts runc made at the start of in:
// the mount at each destination, resolved as runc did, inside the root.
// What cannot be resolved is not recorded.
func recordStartMounts(in *instance, ms []extraMount) error {
	if len(ms) == 0 {
		return nil
	}
	h, err := openPidHandles(in)
	if err != nil {
		return err
	}
	defer h.close()
	rootID, err := mountID(h.root)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range ms {
		fd, err := openInRoot(h.root, m.Destination, unix.O_PATH)
		if err != nil {
			errs = append(errs, fmt.Errorf("open mount %s in the container: %w", m.Destination, err))
			continue
		}
		mid, err := mountID(fd)
		unix.Close(fd)
		switch {
		case err != nil:
			errs = append(errs, err)
		case mid == rootID:
			errs = append(errs, fmt.Errorf("nothing mounted at %s after runc's start", m.Destination))
		default:
			in.mounts[m.Destination] = mountRecord{Destination: m.Destination, Name: m.Name, MntID: mid}
		}
	}
	return errors.Join(errs...)
}

// saveMounts writes in's mount records to its instance dir.
func (d *Driver) saveMounts(in *instance) error {
	recs := make([]mountRecord, 0, len(in.mounts))
	for _, r := range in.mounts {
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b mountRecord) int { return strings.Compare(a.Destination, b.Destination) })
	b, err := json.Marshal(recs)
	if err != nil {
		return err
	}
	p := filepath.Join(d.instanceDir(in.id), mountsFile)
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("record mounts: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("record mounts: %w", err)
	}
	return nil
}

// loadMounts reads the mount records of a container the driver adopts. A
// missing or unreadable file is no records: detaches are then no-ops.
func (d *Driver) loadMounts(id string) map[string]mountRecord {
	out := map[string]mountRecord{}
	b, err := os.ReadFile(filepath.Join(d.instanceDir(id), mountsFile))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("read mount records", "id", id, "err", err)
		}
		return out
	}
	var recs []mountRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		d.log.Warn("parse mount records", "id", id, "err", err)
		return out
	}
	for _, r := range recs {
		out[r.Destination] = r
	}
	return out
}

package drivers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/revert"
	"github.com/hangar-dev/hangar/internal/units"
)

// btrfsDriver keeps volumes as btrfs subvolumes under the pool's
// directory, where a btrfs filesystem is mounted: a loop-backed file
// under the data dir (no source), a block device (source=/dev/...), or a
// directory on an existing btrfs (source=/path: a subvolume made there,
// bind-mounted at the pool's directory).
//
// A clone is a writable snapshot (instant), a volume's snapshot a
// read-only one; image volumes are read-only subvolumes; a filesystem volume's size is a qgroup limit on the
// referenced bytes of its subvolume (writes past it fail with EDQUOT). A
// block volume is a nodatacow file in a subvolume, so snapshotting it is
// as instant as a filesystem volume.
type btrfsDriver struct {
	p Pool
	l layout
}

func newBtrfs(p Pool) Driver { return &btrfsDriver{p: p, l: layout{root: p.Dir}} }

// The kinds of btrfs pool, by their source.
const (
	kindLoop   = "loop"
	kindDevice = "device"
	kindDir    = "dir"
)

// subvolMarker, in a directory source's root, says that hangard made
// that subvolume, so deleting the pool deletes it; a subvolume or
// directory the user gave is left.
const subvolMarker = ".hangar-made-subvolume"

// defaultMountOptions are LXD's for btrfs pools.
const defaultMountOptions = "user_subvol_rm_allowed"

// loopPath is where a pool without a source keeps its loop file, as LXD:
// DataDir/disks/NAME.img.
func (d *btrfsDriver) loopPath() string {
	return filepath.Join(dataDir(d.p), "disks", d.p.Name+".img")
}

func (d *btrfsDriver) source() string { return d.p.Config["source"] }

func (d *btrfsDriver) kind() string {
	src := d.source()
	if src == "" || src == d.loopPath() {
		return kindLoop
	}
	st, err := os.Stat(src)
	switch {
	case err != nil:
		return kindDir // a directory source not made yet
	case st.Mode().IsRegular():
		return kindLoop // a loop file the data dir's move renamed
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		return kindDevice
	}
	return kindDir
}

func (d *btrfsDriver) mountOptions() (uintptr, string) {
	opts := d.p.Config["btrfs.mount_options"]
	if opts == "" {
		opts = defaultMountOptions
	}
	return splitMountOptions(opts)
}

func (d *btrfsDriver) Info() Info {
	return Info{Name: "btrfs", Clones: true, Quotas: true, ReadOnlyVolumes: true, SendReceive: true}
}

func (d *btrfsDriver) Create(ctx context.Context) (map[string]string, error) {
	if _, err := os.Stat("/sys/fs/btrfs"); err != nil {
		return nil, errdefs.Invalid("this kernel has no btrfs (no /sys/fs/btrfs)")
	}
	r := revert.New()
	defer r.Fail()
	made, err := mkdirNew(d.p.Dir)
	if err != nil {
		return nil, err
	}
	if made {
		r.Add(func() { _ = os.Remove(d.p.Dir) })
	} else if err := checkPoolDir(d.p.Dir); err != nil {
		return nil, err
	}
	cfg := copyConfig(d.p.Config)
	kind := d.kind()
	switch kind {
	case kindLoop:
		err = d.createLoop(ctx, r, cfg)
	case kindDevice:
		err = d.createDevice(ctx, r, cfg)
	default:
		err = d.createDir(ctx, r, cfg)
	}
	if err != nil {
		return nil, err
	}
	if err := d.l.makeTypeDirs(); err != nil {
		return nil, noSpace(err)
	}
	r.Success()
	d.p.Log.Info("btrfs pool created", "kind", kind, "source", cfg["source"], "size", cfg["size"])
	return cfg, nil
}

// defaultLoopSize is LXD's: a fifth of the data dir's filesystem, in
// whole GiB, at least 5 and at most 30.
func (d *btrfsDriver) defaultLoopSize() (string, error) {
	var st unix.Statfs_t
	dir := existingAncestor(dataDir(d.p))
	if err := unix.Statfs(dir, &st); err != nil {
		return "", &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	gib := uint64(st.Bsize) * st.Blocks / (1 << 30) / defaultLoopShare
	gib = max(defaultLoopMin, min(defaultLoopMax, gib))
	return fmt.Sprintf("%dGiB", gib), nil
}

func (d *btrfsDriver) createLoop(ctx context.Context, r *revert.Reverter, cfg map[string]string) error {
	if src := cfg["source"]; src != "" && src != d.loopPath() {
		return errdefs.Invalid("source %s is a file: give a block device or a directory, or no source for a loop file hangard makes", src)
	}
	if cfg["size"] == "" {
		s, err := d.defaultLoopSize()
		if err != nil {
			return err
		}
		cfg["size"] = s
	}
	size, err := units.ParseByteSize(cfg["size"])
	if err != nil {
		return errdefs.Invalid("size: %v", err)
	}
	lp := d.loopPath()
	if err := os.MkdirAll(filepath.Dir(lp), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return errdefs.Invalid("loop file %s already exists (left by an earlier pool %s?)", lp, d.p.Name)
	}
	if err != nil {
		return err
	}
	r.Add(func() { _ = os.Remove(lp) })
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return noSpace(err)
	}
	if err := mkfsBtrfs(ctx, lp, d.p.Name); err != nil {
		return err
	}
	cfg["source"] = lp
	d.p.Config = cfg
	if err := d.Mount(ctx); err != nil {
		return err
	}
	r.Add(func() { _ = unmount(d.p.Dir) })
	return d.enableQuota()
}

func (d *btrfsDriver) createDevice(ctx context.Context, r *revert.Reverter, cfg map[string]string) error {
	src := d.source()
	delete(cfg, "size") // a device's size is its own, as LXD
	// An exclusive open fails on a device that is mounted or held (a
	// filesystem, a RAID or device-mapper member).
	fd, err := unix.Open(src, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EBUSY) {
		return errdefs.Invalid("source %s is in use (mounted or held by another user)", src)
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: src, Err: err}
	}
	unix.Close(fd)
	fsType, ptType, err := probeDevice(ctx, src)
	if err != nil {
		return err
	}
	switch {
	case ptType != "":
		return errdefs.Invalid("source %s has a %s partition table: give a partition or an empty device", src, ptType)
	case fsType != "" && fsType != "btrfs":
		return errdefs.Invalid("source %s holds a %s filesystem: hangard formats only an empty device, or reuses an empty btrfs", src, fsType)
	case fsType == "":
		if err := mkfsBtrfs(ctx, src, d.p.Name); err != nil {
			return err
		}
	}
	d.p.Config = cfg
	if err := d.Mount(ctx); err != nil {
		return err
	}
	r.Add(func() { _ = unmount(d.p.Dir) })
	if fsType == "btrfs" {
		// Reuse an existing btrfs only when it holds nothing (or only
		// the empty type directories a deleted pool left).
		ents, err := os.ReadDir(d.p.Dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			p := filepath.Join(d.p.Dir, e.Name())
			if empty, _ := isEmptyDir(p); !empty || !isTypeDir(e.Name()) {
				return errdefs.Invalid("source %s holds a btrfs filesystem that is not empty (%s)", src, e.Name())
			}
		}
	}
	return d.enableQuota()
}

func isTypeDir(name string) bool {
	for _, d := range typeDirs {
		if d == name {
			return true
		}
	}
	return false
}

func (d *btrfsDriver) createDir(ctx context.Context, r *revert.Reverter, cfg map[string]string) error {
	src := d.source()
	delete(cfg, "size") // the filesystem's size is not the pool's to choose
	if cfg["btrfs.mount_options"] != "" {
		return errdefs.Invalid("btrfs.mount_options needs a pool with a btrfs filesystem of its own (a loop file or a device), not a directory source")
	}
	if inside(src, dataDir(d.p)) && src != d.p.Dir {
		return errdefs.Invalid("source %s is inside hangard's data directory %s", src, dataDir(d.p))
	}
	st, err := os.Stat(src)
	switch {
	case err == nil:
		if !st.IsDir() {
			return errdefs.Invalid("source %s is neither a block device nor a directory", src)
		}
		if ok, err := onBtrfs(src); err != nil || !ok {
			return errors.Join(err, errdefs.Invalid("source %s is not on a btrfs filesystem", src))
		}
		if src != d.p.Dir {
			if err := checkEmptyDir(src); err != nil {
				return err
			}
		}
	case errors.Is(err, fs.ErrNotExist):
		parent := filepath.Dir(src)
		ok, perr := onBtrfs(parent)
		if errors.Is(perr, unix.ENOENT) {
			return errdefs.Invalid("source %s: %s does not exist", src, parent)
		}
		if perr != nil || !ok {
			return errors.Join(perr, errdefs.Invalid("source %s: %s is not on a btrfs filesystem", src, parent))
		}
		if err := btrfsSubvolCreate(src); err != nil {
			return noSpace(err)
		}
		r.Add(func() { _ = btrfsDeleteTree(src) })
		if err := os.WriteFile(filepath.Join(src, subvolMarker), nil, 0o600); err != nil {
			return noSpace(err)
		}
	default:
		return err
	}
	d.p.Config = cfg
	if err := d.Mount(ctx); err != nil {
		return err
	}
	r.Add(func() { _ = d.Unmount(context.Background()) })
	return nil
}

// enableQuota turns qgroups on (so SetQuota and VolumeUsage work). On a
// filesystem that already has them it does nothing.
func (d *btrfsDriver) enableQuota() error {
	fd, err := openDir(d.p.Dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return ensureQuota(fd)
}

func ensureQuota(fd int) error {
	uuid, _, err := btrfsFSInfo(fd)
	if err != nil {
		return err
	}
	if _, err := os.Stat("/sys/fs/btrfs/" + uuid + "/qgroups"); err == nil {
		return nil
	}
	return noSpace(btrfsQuotaEnable(fd))
}

// mkfsBtrfs formats path (a file or a device) with btrfs-progs.
func mkfsBtrfs(ctx context.Context, path, label string) error {
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		return fmt.Errorf("mkfs.btrfs (btrfs-progs) is not installed: %w", err)
	}
	out, err := exec.CommandContext(ctx, "mkfs.btrfs", "-q", "-L", label, path).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if strings.Contains(msg, "too small") {
			return errdefs.Invalid("%s is too small for btrfs: %s", path, msg)
		}
		return fmt.Errorf("mkfs.btrfs %s: %w: %s", path, err, msg)
	}
	return nil
}

// probeDevice reads what a device holds (blkid's low-level probe, which
// reads the device, not a cache): a filesystem type, a partition table
// type, or neither.
func probeDevice(ctx context.Context, dev string) (fsType, ptType string, err error) {
	out, err := exec.CommandContext(ctx, "blkid", "-p", "-o", "export", dev).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 {
		return "", "", nil // nothing found
	}
	if err != nil {
		return "", "", fmt.Errorf("blkid -p %s: %w", dev, err)
	}
	for _, line := range bytes.Split(out, []byte("\n")) {
		k, v, _ := strings.Cut(string(line), "=")
		switch k {
		case "TYPE":
			fsType = v
		case "PTTYPE":
			ptType = v
		}
	}
	return fsType, ptType, nil
}

func (d *btrfsDriver) Mount(ctx context.Context) error {
	kind := d.kind()
	if kind == kindDir && d.source() == d.p.Dir {
		return d.l.makeTypeDirs()
	}
	if _, ok, err := mountAt(d.p.Dir); err != nil || ok {
		return err
	}
	if err := os.MkdirAll(d.p.Dir, 0o711); err != nil {
		return err
	}
	flags, data := d.mountOptions()
	switch kind {
	case kindLoop:
		lp := d.source()
		if lp == "" {
			lp = d.loopPath()
		}
		dev, err := loopFor(lp)
		if err != nil {
			return fmt.Errorf("loop file of pool %s: %w", d.p.Name, err)
		}
		if dev != nil {
			d.p.Log.Info("pool's filesystem is still live on its loop device (another mount namespace holds it): mounting that device", "device", dev.Name())
		} else if dev, err = attachLoop(lp); err != nil {
			return fmt.Errorf("loop file of pool %s: %w", d.p.Name, err)
		}
		// Closed once mounted: the mount holds the device, and autoclear
		// frees it at unmount (or now, if the mount failed).
		defer dev.Close()
		if err := d.mount(dev.Name(), flags, data); err != nil {
			return fmt.Errorf("%w (loop file %s)", err, lp)
		}
	case kindDevice:
		if err := d.mount(d.source(), flags, data); err != nil {
			return err
		}
	default:
		if err := bindMount(d.source(), d.p.Dir); err != nil {
			return err
		}
	}
	return nil
}

// mount mounts the pool's btrfs; a mount the user's
// btrfs.mount_options make fail is a 400.
func (d *btrfsDriver) mount(dev string, flags uintptr, data string) error {
	err := unix.Mount(dev, d.p.Dir, "btrfs", flags, data)
	if err == nil {
		return nil
	}
	if opts := d.p.Config["btrfs.mount_options"]; opts != "" && errors.Is(err, unix.EINVAL) {
		return errdefs.Invalid("btrfs.mount_options %q: mount failed: %v", opts, err)
	}
	return fmt.Errorf("mount %s at %s: %w", dev, d.p.Dir, err)
}

func (d *btrfsDriver) Unmount(ctx context.Context) error {
	if d.kind() == kindDir && d.source() == d.p.Dir {
		return nil
	}
	return unmount(d.p.Dir)
}

// Delete removes what the pool made: a loop pool's filesystem and file;
// on a device, hangard's (empty) directories, leaving the device and its
// now empty btrfs, as LXD; on a directory source, the subvolume if
// hangard made it. Deleting a pool half made or already deleted is not
// an error, so the manager can finish a delete a crash cut short.
func (d *btrfsDriver) Delete(ctx context.Context) error {
	kind := d.kind()
	if kind == kindLoop {
		if ok, _ := pathExists(d.loopPath()); ok && d.source() != "" {
			// Mounted to see that it holds no volume: a loop pool's
			// delete would take them all.
			// A file that no longer mounts (a create killed before
			// mkfs) holds nothing to keep.
			if err := d.Mount(ctx); err != nil {
				d.p.Log.Warn("loop file does not mount; removing it", "file", d.loopPath(), "err", err)
			} else {
				if err := d.Sweep(ctx); err != nil {
					return err
				}
				if err := d.l.removeTypeDirs(); err != nil {
					return err
				}
			}
		}
		if err := unmount(d.p.Dir); err != nil {
			return err
		}
		// Only the file hangard made, at the place it makes them: a file
		// the user named (a refused create) is not ours to remove.
		if src := d.source(); src != "" && src != d.loopPath() {
			d.p.Log.Warn("loop file left: it is not where hangard makes them", "source", src)
		} else if err := os.Remove(d.loopPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return d.removePoolDir()
	}
	if _, err := os.Stat(d.p.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(d.source()); err == nil {
		if err := d.Mount(ctx); err != nil {
			return err
		}
		if err := d.Sweep(ctx); err != nil {
			return err
		}
		if err := d.l.removeTypeDirs(); err != nil {
			return err
		}
	}
	marker := filepath.Join(d.p.Dir, subvolMarker)
	_, merr := os.Stat(marker)
	ours := kind == kindDir && merr == nil
	if ours {
		if err := os.Remove(marker); err != nil {
			return err
		}
	}
	if err := d.Unmount(ctx); err != nil {
		return err
	}
	if ours {
		if err := btrfsDeleteTree(d.source()); err != nil {
			return err
		}
	}
	return d.removePoolDir()
}

func (d *btrfsDriver) removePoolDir() error {
	if err := os.Remove(d.p.Dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	d.p.Log.Info("btrfs pool deleted")
	return nil
}

// Update grows a loop pool (size) and remounts with new
// btrfs.mount_options; the source cannot change, and a pool cannot
// shrink.
func (d *btrfsDriver) Update(ctx context.Context, changed map[string]string) error {
	for _, k := range sortedKeys(changed) {
		v := changed[k]
		switch k {
		case "source":
			return errdefs.Invalid("source cannot be changed on an existing pool")
		case "size":
			if err := d.grow(v); err != nil {
				return err
			}
		case "btrfs.mount_options":
			if d.kind() == kindDir {
				return errdefs.Invalid("btrfs.mount_options needs a pool with a btrfs filesystem of its own (a loop file or a device), not a directory source")
			}
			old := d.p.Config[k]
			d.p.Config[k] = v
			flags, data := d.mountOptions()
			if err := unix.Mount("", d.p.Dir, "btrfs", flags|unix.MS_REMOUNT, data); err != nil {
				d.p.Config[k] = old
				return errdefs.Invalid("btrfs.mount_options %q: remount failed: %v", v, err)
			}
		}
	}
	return nil
}

// grow grows a loop pool's file, tells the loop device, and grows the
// filesystem into it.
func (d *btrfsDriver) grow(v string) error {
	if d.kind() != kindLoop {
		return errdefs.Invalid("size applies to a pool on a loop file only")
	}
	size, err := units.ParseByteSize(v)
	if err != nil || size < minBtrfsSize {
		return errdefs.Invalid("size %q is not a size of at least %d MiB", v, minBtrfsSize>>20)
	}
	st, err := os.Stat(d.source())
	if err != nil {
		return err
	}
	switch {
	case size < st.Size():
		return errdefs.Invalid("a pool cannot shrink (from %d to %d bytes)", st.Size(), size)
	case size == st.Size():
		return nil
	}
	if err := os.Truncate(d.source(), size); err != nil {
		return noSpace(err)
	}
	fd, err := openDir(d.p.Dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	devs, err := btrfsDevices(fd)
	if err != nil || len(devs) != 1 {
		return errors.Join(err, fmt.Errorf("pool %s: expected one loop device, found %v", d.p.Name, devs))
	}
	loop, err := os.OpenFile(devs[0], os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer loop.Close()
	if err := unix.IoctlSetInt(int(loop.Fd()), unix.LOOP_SET_CAPACITY, 0); err != nil {
		return fmt.Errorf("loop set capacity on %s: %w", devs[0], err)
	}
	if err := btrfsResizeMax(fd); err != nil {
		return err
	}
	d.p.Config["size"] = v
	return nil
}

func (d *btrfsDriver) Usage(ctx context.Context) (Usage, error) { return statfsUsage(d.p.Dir) }

// Device is the block device under the filesystem (a loop device, the
// source device): a btrfs file's st_dev is an anonymous per-subvolume
// number that no I/O limit can name.
func (d *btrfsDriver) Device() (uint32, uint32, error) {
	fd, err := openDir(d.p.Dir)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(fd)
	devs, err := btrfsDevices(fd)
	if err != nil {
		return 0, 0, err
	}
	if len(devs) == 0 {
		return 0, 0, fmt.Errorf("pool %s: btrfs reports no device", d.p.Name)
	}
	var st unix.Stat_t
	if err := unix.Stat(devs[0], &st); err != nil {
		return 0, 0, &os.PathError{Op: "stat", Path: devs[0], Err: err}
	}
	return unix.Major(st.Rdev), unix.Minor(st.Rdev), nil
}

func (d *btrfsDriver) Path(vol Volume) string { return d.l.path(vol) }

func (d *btrfsDriver) CreateVolume(ctx context.Context, vol Volume, size int64, readOnly bool, fill func(dir string) error) error {
	if err := checkVolume(vol); err != nil {
		return err
	}
	if err := checkCreate(vol, size, fill); err != nil {
		return err
	}
	if _, err := os.Lstat(d.l.path(vol)); err == nil {
		return errdefs.Conflict("volume %s/%s already exists", vol.Type, vol.Name)
	}
	r := revert.New()
	defer r.Fail()
	tmp := d.l.tmpPath(vol)
	if err := btrfsSubvolCreate(tmp); err != nil {
		return noSpace(err)
	}
	r.Add(func() { _ = btrfsDeleteTree(tmp) })
	switch {
	case vol.Content == ContentBlock:
		// On the directory too, so that a disk the fill writes anew
		// (qemu-img convert) inherits nodatacow.
		if err := setNoCOWPath(tmp); err != nil {
			return err
		}
		if err := makeBlockFile(tmp, size, setNoCOW); err != nil {
			return err
		}
	case vol.Content == ContentFilesystem && size > 0:
		if err := setLimit(tmp, size); err != nil {
			return err
		}
	}
	if err := fillVolume(fill, tmp); err != nil {
		return err
	}
	if err := checkFilled(tmp, vol, size); err != nil {
		return err
	}
	if readOnly {
		fd, err := openDir(tmp)
		if err != nil {
			return err
		}
		err = btrfsSetReadOnly(fd, true)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	if err := renameNoReplace(tmp, d.l.path(vol)); err != nil {
		return err
	}
	r.Success()
	return nil
}

// setLimit puts a qgroup limit on the subvolume at path, turning quotas
// on first if the filesystem has none (a directory source's).
func setLimit(path string, size int64) error {
	fd, err := openDir(path)
	if errors.Is(err, unix.ENOENT) {
		return errdefs.NotFound("volume %s not found", path)
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := ensureQuota(fd); err != nil {
		return err
	}
	return btrfsQgroupLimit(fd, size)
}

// CloneVolume is a writable snapshot of parent (instant, sharing every
// block), made under a .tmp- name and renamed into place.
func (d *btrfsDriver) CloneVolume(ctx context.Context, vol, parent Volume) error {
	if err := checkPair(vol, parent, false); err != nil {
		return err
	}
	return d.snapshotInto(vol, parent, false)
}

// SnapshotVolume is a read-only snapshot of vol: instant, and writes
// into it fail with EROFS.
func (d *btrfsDriver) SnapshotVolume(ctx context.Context, snap, vol Volume) error {
	if err := checkPair(snap, vol, true); err != nil {
		return err
	}
	return d.snapshotInto(snap, vol, true)
}

// snapshotInto makes vol a snapshot of from. A btrfs snapshot does not
// descend into subvolumes nested in from (a container that made its
// own): they are empty directories in vol, as in LXD's non-recursive
// snapshots.
func (d *btrfsDriver) snapshotInto(vol, from Volume, readOnly bool) error {
	if err := mustExist(d.l, from); err != nil {
		return err
	}
	if err := mustNotExist(d.l, vol); err != nil {
		return err
	}
	r := revert.New()
	defer r.Fail()
	tmp := d.l.tmpPath(vol)
	if err := btrfsSnapshot(d.l.path(from), tmp, readOnly); err != nil {
		return noSpace(err)
	}
	r.Add(func() { _ = btrfsDeleteTree(tmp) })
	if err := renameNoReplace(tmp, d.l.path(vol)); err != nil {
		return err
	}
	r.Success()
	return nil
}

// RestoreVolume makes a writable snapshot of snap under a .tmp- name and
// exchanges it with vol, then deletes vol's old subvolume (and the
// subvolumes nested in it). The new subvolume has a qgroup of its own,
// with the limit snap's has (vol's when snap was taken, as btrfs copies a
// qgroup's limit into a snapshot's), not vol's current one: the manager
// sets that again with SetQuota.
func (d *btrfsDriver) RestoreVolume(ctx context.Context, vol, snap Volume) error {
	if err := checkPair(vol, snap, true); err != nil {
		return err
	}
	if err := mustExist(d.l, vol); err != nil {
		return err
	}
	if err := mustExist(d.l, snap); err != nil {
		return err
	}
	tmp := d.l.tmpPath(vol)
	if err := btrfsSnapshot(d.l.path(snap), tmp, false); err != nil {
		return noSpace(err)
	}
	old, err := swapIn(d.l, tmp, vol)
	if err != nil {
		return errors.Join(err, btrfsDeleteTree(tmp))
	}
	if err := removeVolumeTree(ctx, old); err != nil {
		d.p.Log.Warn("restore: old subvolume not removed; Sweep will", "path", old, "err", err)
	}
	return nil
}

func (d *btrfsDriver) DeleteVolume(ctx context.Context, vol Volume) error {
	if err := checkVolume(vol); err != nil {
		return err
	}
	tmp, err := moveAside(d.l, vol)
	if err != nil || tmp == "" {
		return err
	}
	return removeVolumeTree(ctx, tmp)
}

// removeVolumeTree removes a subvolume (and those inside it) or, for
// what is not one, a plain tree.
func removeVolumeTree(ctx context.Context, path string) error {
	sub, err := isSubvolume(path)
	if err != nil {
		return err
	}
	if sub {
		return btrfsDeleteTree(path)
	}
	return removeTree(ctx, path)
}

func (d *btrfsDriver) RenameVolume(ctx context.Context, vol Volume, newName string) error {
	return renameVolume(d.l, vol, newName)
}

func (d *btrfsDriver) SetQuota(ctx context.Context, vol Volume, size int64) error {
	if err := checkVolume(vol); err != nil {
		return err
	}
	switch vol.Content {
	case ContentISO:
		return errISOSize
	case ContentBlock:
		return growBlockFile(d.l.path(vol), size)
	}
	return setLimit(d.l.path(vol), size)
}

// VolumeUsage reads a filesystem volume's qgroup (referenced bytes, and
// its limit as Total); without quotas on the filesystem (a directory
// source nobody set a size on) it walks the tree.
func (d *btrfsDriver) VolumeUsage(ctx context.Context, vol Volume) (Usage, error) {
	if err := checkVolume(vol); err != nil {
		return Usage{}, err
	}
	p := d.l.path(vol)
	if vol.Content == ContentBlock || vol.Content == ContentISO {
		return blockUsage(p)
	}
	fd, err := openDir(p)
	if errors.Is(err, unix.ENOENT) {
		return Usage{}, errdefs.NotFound("volume %s/%s not found", vol.Type, vol.Name)
	}
	if err != nil {
		return Usage{}, err
	}
	defer unix.Close(fd)
	u, ok, err := btrfsQgroup(fd)
	if err != nil || ok {
		return u, err
	}
	used, err := walkUsage(ctx, p)
	return Usage{Used: used}, err
}

func (d *btrfsDriver) Volumes(ctx context.Context) ([]Volume, error) { return d.l.volumes(ctx) }

func (d *btrfsDriver) Sweep(ctx context.Context) error {
	return d.l.sweep(ctx, removeVolumeTree, d.p.Log)
}

package drivers

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs ioctls (linux/btrfs.h), numbers checked against the header
// with a C program; x/sys does not carry them. Subvolumes, snapshots and
// qgroups through the kernel, without btrfs-progs.
const (
	btrfsIocResize         = 0x50009403
	btrfsIocSync           = 0x9408
	btrfsIocSubvolCreate   = 0x5000940e
	btrfsIocSnapDestroy    = 0x5000940f
	btrfsIocTreeSearch     = 0xd0009411
	btrfsIocInoLookup      = 0xd0009412
	btrfsIocSnapCreateV2   = 0x50009417
	btrfsIocSubvolGetflags = 0x80089419
	btrfsIocSubvolSetflags = 0x4008941a
	btrfsIocDevInfo        = 0xd000941e
	btrfsIocFsInfo         = 0x8400941f
	btrfsIocQuotaCtl       = 0xc0109428
	btrfsIocQgroupLimit    = 0x8030942b

	btrfsSubvolRdonly      = 1 << 1
	btrfsQuotaCtlEnable    = 1
	btrfsQgroupLimitMaxRfr = 1 << 0
	btrfsFirstFreeObjectID = 256 // a subvolume's root directory inode
	btrfsRootTreeObjectID  = 1
	btrfsRootRefKey        = 156

	fsNocowFl = 0x00800000 // FS_NOCOW_FL, chattr +C
)

// btrfsVolArgs is struct btrfs_ioctl_vol_args.
type btrfsVolArgs struct {
	fd   int64
	name [4088]byte
}

// btrfsVolArgsV2 is struct btrfs_ioctl_vol_args_v2.
type btrfsVolArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	unused  [4]uint64
	name    [4040]byte
}

// btrfsSearchArgs is struct btrfs_ioctl_search_args.
type btrfsSearchArgs struct {
	treeID, minObjectID, maxObjectID, minOffset, maxOffset, minTransid, maxTransid uint64
	minType, maxType, nrItems, unused                                              uint32
	unused1, unused2, unused3, unused4                                             uint64
	buf                                                                            [4096 - 104]byte
}

// btrfsInoLookupArgs is struct btrfs_ioctl_ino_lookup_args.
type btrfsInoLookupArgs struct {
	treeID, objectID uint64
	name             [4080]byte
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

// openDir opens a directory for ioctls.
func openDir(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

func setName(dst []byte, name string) error {
	if len(name) >= len(dst) || strings.ContainsRune(name, '/') {
		return fmt.Errorf("bad subvolume name %q", name)
	}
	copy(dst, name)
	return nil
}

// btrfsSubvolCreate makes a subvolume at path.
func btrfsSubvolCreate(path string) error {
	parent, err := openDir(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	var a btrfsVolArgs
	if err := setName(a.name[:], filepath.Base(path)); err != nil {
		return err
	}
	if err := ioctl(parent, btrfsIocSubvolCreate, unsafe.Pointer(&a)); err != nil {
		return &os.PathError{Op: "create subvolume", Path: path, Err: err}
	}
	return nil
}

// btrfsSnapshot makes dst a snapshot of the subvolume src.
func btrfsSnapshot(src, dst string, readOnly bool) error {
	sfd, err := openDir(src)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	parent, err := openDir(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	a := btrfsVolArgsV2{fd: int64(sfd)}
	if readOnly {
		a.flags = btrfsSubvolRdonly
	}
	if err := setName(a.name[:], filepath.Base(dst)); err != nil {
		return err
	}
	if err := ioctl(parent, btrfsIocSnapCreateV2, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("snapshot %s at %s: %w", src, dst, err)
	}
	return nil
}

// btrfsSubvolDestroy removes the subvolume at path, which must hold no
// other subvolume.
func btrfsSubvolDestroy(path string) error {
	parent, err := openDir(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	var a btrfsVolArgs
	if err := setName(a.name[:], filepath.Base(path)); err != nil {
		return err
	}
	if err := ioctl(parent, btrfsIocSnapDestroy, unsafe.Pointer(&a)); err != nil {
		return &os.PathError{Op: "delete subvolume", Path: path, Err: err}
	}
	return nil
}

// btrfsSubvolID is the ID of the subvolume fd is in.
func btrfsSubvolID(fd int) (uint64, error) {
	a := btrfsInoLookupArgs{objectID: btrfsFirstFreeObjectID}
	if err := ioctl(fd, btrfsIocInoLookup, unsafe.Pointer(&a)); err != nil {
		return 0, fmt.Errorf("look up subvolume id: %w", err)
	}
	return a.treeID, nil
}

func btrfsReadOnly(fd int) (bool, error) {
	var flags uint64
	if err := ioctl(fd, btrfsIocSubvolGetflags, unsafe.Pointer(&flags)); err != nil {
		return false, fmt.Errorf("get subvolume flags: %w", err)
	}
	return flags&btrfsSubvolRdonly != 0, nil
}

func btrfsSetReadOnly(fd int, ro bool) error {
	var flags uint64
	if err := ioctl(fd, btrfsIocSubvolGetflags, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("get subvolume flags: %w", err)
	}
	if ro {
		flags |= btrfsSubvolRdonly
	} else {
		flags &^= btrfsSubvolRdonly
	}
	if err := ioctl(fd, btrfsIocSubvolSetflags, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("set subvolume read-only=%t: %w", ro, err)
	}
	return nil
}

// isSubvolume says whether path is the root of a btrfs subvolume.
func isSubvolume(path string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return false, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	if st.Ino != btrfsFirstFreeObjectID || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false, nil
	}
	return onBtrfs(path)
}

// btrfsChildren lists the subvolumes directly inside the subvolume at
// path (fd open on it), as paths: the root tree's ROOT_REF items of its
// ID name each child and the directory it sits in.
func btrfsChildren(fd int, path string) ([]string, error) {
	id, err := btrfsSubvolID(fd)
	if err != nil {
		return nil, err
	}
	var out []string
	a := btrfsSearchArgs{
		treeID:      btrfsRootTreeObjectID,
		minObjectID: id, maxObjectID: id,
		minType: btrfsRootRefKey, maxType: btrfsRootRefKey,
		maxOffset: ^uint64(0), maxTransid: ^uint64(0),
	}
	for {
		a.nrItems = 4096
		if err := ioctl(fd, btrfsIocTreeSearch, unsafe.Pointer(&a)); err != nil {
			return nil, fmt.Errorf("search subvolumes under %s: %w", path, err)
		}
		if a.nrItems == 0 {
			return out, nil
		}
		off := 0
		var last uint64
		for i := uint32(0); i < a.nrItems; i++ {
			h := a.buf[off:]
			objectID := binary.LittleEndian.Uint64(h[8:])
			offset := binary.LittleEndian.Uint64(h[16:])
			typ := binary.LittleEndian.Uint32(h[24:])
			n := int(binary.LittleEndian.Uint32(h[28:]))
			item := h[32 : 32+n]
			off += 32 + n
			last = offset
			if objectID != id || typ != btrfsRootRefKey || n < 18 {
				continue
			}
			dirID := binary.LittleEndian.Uint64(item[0:])
			nameLen := int(binary.LittleEndian.Uint16(item[16:]))
			if 18+nameLen > n {
				continue
			}
			name := string(item[18 : 18+nameLen])
			dir, err := btrfsInoPath(fd, id, dirID)
			if err != nil {
				return nil, err
			}
			out = append(out, filepath.Join(path, dir, name))
		}
		if last == ^uint64(0) {
			return out, nil
		}
		a.minOffset = last + 1
	}
}

// btrfsInoPath is the path of directory inode dirID inside subvolume
// tree, relative to the subvolume's root.
func btrfsInoPath(fd int, tree, dirID uint64) (string, error) {
	if dirID == btrfsFirstFreeObjectID {
		return "", nil
	}
	a := btrfsInoLookupArgs{treeID: tree, objectID: dirID}
	if err := ioctl(fd, btrfsIocInoLookup, unsafe.Pointer(&a)); err != nil {
		return "", fmt.Errorf("look up inode %d of subvolume %d: %w", dirID, tree, err)
	}
	return cString(a.name[:]), nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// btrfsDeleteTree removes the subvolume at path and every subvolume
// inside it, innermost first, making read-only ones writable on the way
// (a subvolume inside a read-only one cannot be unlinked).
func btrfsDeleteTree(path string) error {
	fd, err := openDir(path)
	if err != nil {
		return err
	}
	children, err := func() ([]string, error) {
		defer unix.Close(fd)
		ro, err := btrfsReadOnly(fd)
		if err != nil {
			return nil, err
		}
		if ro {
			if err := btrfsSetReadOnly(fd, false); err != nil {
				return nil, err
			}
		}
		return btrfsChildren(fd, path)
	}()
	if err != nil {
		return err
	}
	for _, c := range children {
		if err := btrfsDeleteTree(c); err != nil {
			return err
		}
	}
	return btrfsSubvolDestroy(path)
}

// btrfsFSInfo is the filesystem's UUID (as sysfs names it) and its
// highest device ID.
func btrfsFSInfo(fd int) (uuid string, maxID uint64, err error) {
	var a [1024]byte
	if err := ioctl(fd, btrfsIocFsInfo, unsafe.Pointer(&a[0])); err != nil {
		return "", 0, fmt.Errorf("btrfs fs info: %w", err)
	}
	f := a[16:32]
	uuid = fmt.Sprintf("%x-%x-%x-%x-%x", f[0:4], f[4:6], f[6:8], f[8:10], f[10:16])
	return uuid, binary.LittleEndian.Uint64(a[0:]), nil
}

// btrfsDevices are the paths of the filesystem's devices.
func btrfsDevices(fd int) ([]string, error) {
	_, maxID, err := btrfsFSInfo(fd)
	if err != nil {
		return nil, err
	}
	var out []string
	for id := uint64(1); id <= maxID; id++ {
		var a [4096]byte
		binary.LittleEndian.PutUint64(a[0:], id)
		if err := ioctl(fd, btrfsIocDevInfo, unsafe.Pointer(&a[0])); err != nil {
			if errors.Is(err, unix.ENODEV) {
				continue // a removed device's ID
			}
			return nil, fmt.Errorf("btrfs device %d info: %w", id, err)
		}
		out = append(out, cString(a[3072:]))
	}
	return out, nil
}

func btrfsQuotaEnable(fd int) error {
	var a [2]uint64
	a[0] = btrfsQuotaCtlEnable
	if err := ioctl(fd, btrfsIocQuotaCtl, unsafe.Pointer(&a[0])); err != nil {
		return fmt.Errorf("enable btrfs quotas: %w", err)
	}
	return nil
}

// btrfsQgroupLimit limits the referenced bytes of the subvolume fd is in
// (its 0/ID qgroup); 0 removes the limit.
func btrfsQgroupLimit(fd int, size int64) error {
	// struct btrfs_ioctl_qgroup_limit_args: qgroupid (0: fd's subvolume),
	// then struct btrfs_qgroup_limit: flags, max_rfer, max_excl,
	// rsv_rfer, rsv_excl.
	a := [6]uint64{0, btrfsQgroupLimitMaxRfr, uint64(size), 0, 0, 0}
	if size == 0 {
		a[2] = ^uint64(0) // the kernel's "clear this limit"
	}
	if err := ioctl(fd, btrfsIocQgroupLimit, unsafe.Pointer(&a[0])); err != nil {
		return fmt.Errorf("set qgroup limit: %w", err)
	}
	return nil
}

// btrfsQgroup reads a subvolume's referenced bytes and limit from sysfs,
// after a commit (qgroups are counted at transaction commit). ok is
// false when quotas are off on the filesystem.
func btrfsQgroup(fd int) (u Usage, ok bool, err error) {
	uuid, _, err := btrfsFSInfo(fd)
	if err != nil {
		return Usage{}, false, err
	}
	id, err := btrfsSubvolID(fd)
	if err != nil {
		return Usage{}, false, err
	}
	dir := fmt.Sprintf("/sys/fs/btrfs/%s/qgroups", uuid)
	if _, err := os.Stat(dir); err != nil {
		return Usage{}, false, nil
	}
	if err := ioctl(fd, btrfsIocSync, nil); err != nil {
		return Usage{}, false, fmt.Errorf("btrfs sync: %w", err)
	}
	read := func(name string) (int64, error) {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("0_%d", id), name))
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if u.Used, err = read("referenced"); err != nil {
		return Usage{}, false, err
	}
	if u.Total, err = read("max_referenced"); err != nil {
		return Usage{}, false, err
	}
	return u, true, nil
}

// btrfsResizeMax grows the filesystem to fill its (single) device.
func btrfsResizeMax(fd int) error {
	var a btrfsVolArgs
	copy(a.name[:], "max")
	if err := ioctl(fd, btrfsIocResize, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("btrfs resize max: %w", err)
	}
	return nil
}

// setNoCOW turns copy-on-write off on an empty file (chattr +C), so a
// VM's disk image does not fragment on every write.
func setNoCOW(f *os.File) error {
	fd := int(f.Fd())
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return fmt.Errorf("get flags of %s: %w", f.Name(), err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|fsNocowFl)); err != nil {
		return fmt.Errorf("set nocow on %s: %w", f.Name(), err)
	}
	return nil
}

func setNoCOWPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return setNoCOW(f)
}

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

// The daemon gives every disk a serial (its key), so the agent finds the
// root and the extra disks by serial whatever the kernel named them (it
// names them in probe order, which depends on the buses and on the disks
// plugged). A guest without udev gets the /dev/disk/by-id links udev
// would make, so that a workload finds a disk by name either way:
//
//	virtio-blk   virtio-SERIAL               (/sys/block/vdX/serial)
//	virtio-scsi  scsi-0VENDOR_MODEL_SERIAL   (device/vpd_pg80: SCSI VPD page 0x80)
//	nvme         nvme-MODEL_SERIAL           (device/serial, device/model)
//
// with runs of blanks in vendor and model made one '_', as udev does.
//
// A root disk larger than the ext4 filesystem on it (storage grew it) is
// grown to the disk's size online, once mounted, by the kernel
// (EXT4_IOC_RESIZE_FS): no resize2fs in the initramfs.

// diskWait bounds the wait for a disk to appear: SCSI and NVMe probe
// asynchronously, and a plugged disk takes a PCIe hotplug first.
const diskWait = 30 * time.Second

const sysBlock = "/sys/class/block"

// diskInfo is one whole disk the guest has.
type diskInfo struct {
	name   string // vda, sdb, nvme0n1
	bus    string
	serial string
	link   string // its name in /dev/disk/by-id
}

// scanDisks lists the whole disks under sys (a /sys/class/block) that have
// a serial.
func scanDisks(sys string) []diskInfo {
	ents, err := os.ReadDir(sys)
	if err != nil {
		return nil
	}
	var out []diskInfo
	for _, e := range ents {
		name := e.Name()
		dir := filepath.Join(sys, name)
		if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
			continue
		}
		d := diskInfo{name: name}
		switch {
		case strings.HasPrefix(name, "vd"):
			d.bus, d.serial = "virtio-blk", readAttr(filepath.Join(dir, "serial"))
			d.link = "virtio-" + d.serial
		case strings.HasPrefix(name, "sd"):
			d.bus, d.serial = "virtio-scsi", vpdSerial(filepath.Join(dir, "device/vpd_pg80"))
			d.link = "scsi-0" + udevName(readAttr(filepath.Join(dir, "device/vendor"))) + "_" +
				udevName(readAttr(filepath.Join(dir, "device/model"))) + "_" + d.serial
		case strings.HasPrefix(name, "nvme"):
			d.bus, d.serial = "nvme", readAttr(filepath.Join(dir, "device/serial"))
			d.link = "nvme-" + udevName(readAttr(filepath.Join(dir, "device/model"))) + "_" + d.serial
		default:
			continue
		}
		if d.serial == "" || strings.ContainsAny(d.serial, "/\x00") {
			continue
		}
		out = append(out, d)
	}
	return out
}

func readAttr(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// vpdSerial is the unit serial number in a SCSI VPD page 0x80: a 4-byte
// header whose last byte is the length, then the serial.
func vpdSerial(p string) string {
	b, err := os.ReadFile(p)
	if err != nil || len(b) < 4 || len(b) < 4+int(b[3]) {
		return ""
	}
	return strings.TrimSpace(string(b[4 : 4+int(b[3])]))
}

// udevName is s with runs of blanks made one '_', trimmed, as udev names
// links.
func udevName(s string) string {
	return strings.Join(strings.Fields(s), "_")
}

// findDisk waits until a disk with d's serial exists (and, when d.Size >
// 0, is at least that large) and returns its device path.
func findDisk(d vmagent.Disk, deadline time.Time) (string, error) {
	for {
		for _, di := range scanDisks(sysBlock) {
			if di.serial != d.Serial || (d.Bus != "" && di.bus != d.Bus) {
				continue
			}
			dev := "/dev/" + di.name
			if d.Size <= 0 {
				return dev, nil
			}
			if size, err := deviceSize(dev); err == nil && size >= d.Size {
				return dev, nil
			}
		}
		if time.Now().After(deadline) {
			if d.Size > 0 {
				return "", fmt.Errorf("disk %s (%s) of %d bytes did not appear", d.Serial, d.Bus, d.Size)
			}
			return "", fmt.Errorf("disk %s (%s) did not appear", d.Serial, d.Bus)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// linkDisks makes /dev/disk/by-id links for every disk with a serial and
// removes those whose disk is gone.
func linkDisks() error {
	dir := "/dev/disk/by-id"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(p)
		}
	}
	for _, d := range scanDisks(sysBlock) {
		p := filepath.Join(dir, d.link)
		target := "../../" + d.name
		if cur, err := os.Readlink(p); err == nil {
			if cur == target {
				continue
			}
			_ = os.Remove(p)
		}
		if err := os.Symlink(target, p); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("link %s: %w", p, err)
		}
	}
	return nil
}

// waitDisks waits for the extra disks at boot and links them, so the
// workload finds them all.
func waitDisks(disks []vmagent.Disk) error {
	deadline := time.Now().Add(diskWait)
	for _, d := range disks {
		dev, err := findDisk(d, deadline)
		if err != nil {
			return err
		}
		if err := setReadOnly(d, dev); err != nil {
			return err
		}
	}
	return linkDisks()
}

// setReadOnly marks a read-only disk's block device so in the guest.
func setReadOnly(d vmagent.Disk, dev string) error {
	if !d.ReadOnly {
		return nil
	}
	f, err := os.Open(dev)
	if err != nil {
		return err
	}
	defer f.Close()
	one := int32(1)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKROSET, uintptr(unsafe.Pointer(&one))); e != 0 {
		return fmt.Errorf("make %s read-only: %w", dev, e)
	}
	return nil
}

// plugDisk answers MsgDisk: the disk plugged or grown is there, linked,
// and the root's filesystem fills its disk.
func (a *agent) plugDisk(d vmagent.Disk) error {
	if d.Serial == "" {
		return linkDisks()
	}
	dev, err := findDisk(d, time.Now().Add(diskWait))
	if err != nil {
		return err
	}
	if err := setReadOnly(d, dev); err != nil {
		return err
	}
	if err := linkDisks(); err != nil {
		return err
	}
	if r := a.cfg.Root; r != nil && r.Serial == d.Serial {
		if _, _, err := growExt4(dev, "/"); err != nil {
			return err
		}
	}
	return nil
}

// deviceSize is a block device's size in bytes (BLKGETSIZE64).
func deviceSize(dev string) (int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&n))); e != 0 {
		return 0, fmt.Errorf("size of %s: %w", dev, e)
	}
	return int64(n), nil
}

// ext4Super is what growing needs of an ext4 superblock.
type ext4Super struct {
	blockSize int64
	blocks    uint64
	is64bit   bool
}

// parseExt4Super reads the superblock (the 1024 bytes at offset 1024).
func parseExt4Super(sb []byte) (ext4Super, error) {
	if len(sb) < 1024 || binary.LittleEndian.Uint16(sb[0x38:]) != 0xef53 {
		return ext4Super{}, errors.New("not an ext2/3/4 filesystem")
	}
	s := ext4Super{
		blockSize: 1024 << binary.LittleEndian.Uint32(sb[0x18:]),
		blocks:    uint64(binary.LittleEndian.Uint32(sb[0x4:])),
		is64bit:   binary.LittleEndian.Uint32(sb[0x60:])&0x80 != 0,
	}
	if s.is64bit {
		s.blocks |= uint64(binary.LittleEndian.Uint32(sb[0x150:])) << 32
	}
	return s, nil
}

// ext4IocResizeFS is EXT4_IOC_RESIZE_FS: _IOW('f', 16, __u64).
const ext4IocResizeFS = 0x40086610

// growExt4 grows the ext4 filesystem of dev, mounted at mountpoint, to the
// device's size; it returns the block counts before and after (equal
// when there was nothing to grow).
func growExt4(dev, mountpoint string) (from, to uint64, err error) {
	size, err := deviceSize(dev)
	if err != nil {
		return 0, 0, err
	}
	f, err := os.Open(dev)
	if err != nil {
		return 0, 0, err
	}
	sb := make([]byte, 1024)
	_, err = f.ReadAt(sb, 1024)
	f.Close()
	if err != nil {
		return 0, 0, fmt.Errorf("superblock of %s: %w", dev, err)
	}
	s, err := parseExt4Super(sb)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", dev, err)
	}
	want := uint64(size / s.blockSize)
	if !s.is64bit && want > 1<<32-1 {
		want = 1<<32 - 1 // what a filesystem without 64bit block numbers addresses
	}
	if want <= s.blocks {
		return s.blocks, s.blocks, nil
	}
	mp, err := os.Open(mountpoint)
	if err != nil {
		return 0, 0, err
	}
	defer mp.Close()
	n := want
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, mp.Fd(), ext4IocResizeFS, uintptr(unsafe.Pointer(&n))); e != 0 {
		return s.blocks, s.blocks, fmt.Errorf("grow the root filesystem from %d to %d blocks: %w", s.blocks, want, e)
	}
	return s.blocks, want, nil
}

// mountShares mounts the 9p shares, each at its path (made if missing).
func mountShares(mounts []vmagent.Mount) error {
	for _, m := range mounts {
		if err := os.MkdirAll(m.Path, 0o755); err != nil {
			return fmt.Errorf("share %s: %w", m.Tag, err)
		}
		var flags uintptr
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		// msize: the largest message virtio's transport carries (the
		// kernel lowers a larger one); the default 8 KiB is slow.
		if err := unix.Mount(m.Tag, m.Path, "9p", flags, "trans=virtio,version=9p2000.L,msize=512000"); err != nil {
			return fmt.Errorf("mount share %s at %s: %w", m.Tag, m.Path, err)
		}
	}
	return nil
}

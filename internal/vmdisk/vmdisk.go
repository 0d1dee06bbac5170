// Package vmdisk makes and changes the disk image files virtual machines
// boot from and use, with the host's tools: mkfs.ext4 (e2fsprogs) builds an
// ext4 image of a directory tree from user space (no loop device, no mount),
// qemu-img makes qcow2 overlays, resizes, converts and describes images.
// Storage (package storage) calls it to make an instance's root disk on its
// pool. It is a leaf: it knows nothing of instances, pools or QEMU
// processes.
//
// Formats are always named, never probed, when an image's content may come
// from a guest: a raw disk whose first bytes a guest wrote as a qcow2 header
// naming a backing file would otherwise open that host file. Info probes
// only when asked with an empty format, for files hangar made itself.
//
// Every function that makes a file makes it under a temporary name beside
// dst and renames it into place, so a failure (or a crash) never leaves a
// partial image at dst; a leftover dst+".tmp" is removed by the next try.
package vmdisk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Label is the ext4 label BuildExt4 gives a root filesystem.
const Label = "hangar-root"

// Formats of the images this package makes and reads.
const (
	FormatRaw   = "raw"
	FormatQCOW2 = "qcow2"
)

const mib = 1 << 20

// Size is the ext4 image size BuildExt4 makes for a tree of used bytes
// (file contents rounded up to 4 KiB blocks) and inodes (entries): the
// tree, its metadata, and as much free space again, at least 1 GiB free,
// and at least minSize; rounded up to a MiB. A sparse file costs only what
// is written, so the free space is cheap.
func Size(used, inodes, minSize int64) int64 {
	meta := inodes*256 + 64<<20 // inode tables, journal, bitmaps
	free := max(used, 1<<30)
	size := max(used+meta+free, minSize)
	return (size + mib - 1) / mib * mib
}

// TreeUsage sums a tree's file sizes (rounded up to 4 KiB blocks, 4 KiB
// for anything else) and counts its entries, the root included.
func TreeUsage(root string) (used, inodes int64, err error) {
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		inodes++
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			used += (info.Size() + 4095) / 4096 * 4096
		} else {
			used += 4096
		}
		return nil
	})
	return used, inodes, err
}

// BuildExt4 makes dst an ext4 image (a sparse raw file, mode 0644, label
// Label) holding a copy of tree with its owners, modes and xattrs, sized by
// Size(…, minSize). mkfsPath is mkfs.ext4. The tree is read as it is: it is
// not id-shifted (a VM has no user namespace).
func BuildExt4(ctx context.Context, mkfsPath, tree, dst string, minSize int64) error {
	used, inodes, err := TreeUsage(tree)
	if err != nil {
		return fmt.Errorf("measure %s: %w", tree, err)
	}
	tmp := dst + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("ext4 image: %w", err)
	}
	size := Size(used, inodes, minSize)
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("ext4 image: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ext4 image: %w", err)
	}
	// Enough inodes for the tree and then some (a filesystem grown
	// later gets more with its new groups); lazy init keeps mkfs from
	// writing the tables the guest's kernel fills in later.
	if err := run(ctx, mkfsPath, "-q", "-F", "-t", "ext4",
		"-N", strconv.FormatInt(max(inodes*2, 65536), 10),
		"-E", "lazy_itable_init=1,lazy_journal_init=1",
		"-L", Label, "-d", tree, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("mkfs.ext4 -d %s: %w", tree, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ext4 image: %w", err)
	}
	return nil
}

// CreateOverlay makes dst a qcow2 image backed by base (of baseFormat,
// named in dst's header: base must stay where it is, unchanged). Its
// virtual size is size, or base's when size is 0; a size below base's is
// errdefs.ErrInvalidArgument (the guest would lose the end of its disk).
func CreateOverlay(ctx context.Context, qemuImg, base, baseFormat, dst string, size int64) error {
	if err := checkFormat(baseFormat); err != nil {
		return err
	}
	if size < 0 {
		return errdefs.Invalid("disk size %d is negative", size)
	}
	if size > 0 {
		have, _, err := Info(ctx, qemuImg, base, baseFormat)
		if err != nil {
			return err
		}
		if size < have {
			return errdefs.Invalid("disk size %s is below the %s its image needs", human(size), human(have))
		}
	}
	abs, err := filepath.Abs(base)
	if err != nil {
		return fmt.Errorf("overlay of %s: %w", base, err)
	}
	tmp := dst + ".tmp"
	_ = os.Remove(tmp)
	args := []string{"create", "-q", "-f", FormatQCOW2, "-b", abs, "-F", baseFormat, tmp}
	if size > 0 {
		args = append(args, strconv.FormatInt(size, 10))
	}
	if err := run(ctx, qemuImg, args...); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("overlay of %s: %w", base, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("overlay of %s: %w", base, err)
	}
	return nil
}

// Resize grows the qcow2 image at path to size bytes; the same size is
// nothing to do. A smaller size is errdefs.ErrInvalidArgument: shrinking
// a disk would cut the filesystem on it. The image is opened as qcow2,
// never probed: a raw disk grows by growing its file (truncate), and is
// no business of this function (its content is the guest's, and may
// pass for a qcow2 header). The image must not be open in a running QEMU
// (qemu-img refuses: QEMU holds its lock); grow a running VM's disk
// through the driver (driver.DiskResizer) instead.
func Resize(ctx context.Context, qemuImg, path string, size int64) error {
	have, _, err := Info(ctx, qemuImg, path, FormatQCOW2)
	if err != nil {
		return err
	}
	switch {
	case size < have:
		return errdefs.Invalid("disk size %s is below its current %s: disks only grow", human(size), human(have))
	case size == have:
		return nil
	}
	if err := run(ctx, qemuImg, "resize", "-q", "-f", FormatQCOW2, path, strconv.FormatInt(size, 10)); err != nil {
		return fmt.Errorf("resize %s: %w", path, err)
	}
	return nil
}

// Info returns the image's virtual size (what the guest sees) and format.
// format names it (qcow2 or raw); "" lets qemu-img probe, which is safe
// only for a file hangar made (see the package comment). It reads images a
// running QEMU has open too (qemu-img --force-share).
func Info(ctx context.Context, qemuImg, path, format string) (virtualSize int64, actualFormat string, err error) {
	args := []string{"info", "--output=json", "--force-share"}
	if format != "" {
		if err := checkFormat(format); err != nil {
			return 0, "", err
		}
		args = append(args, "-f", format)
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, "", errdefs.NotFound("disk image %s does not exist", path)
		}
		return 0, "", fmt.Errorf("disk image: %w", err)
	}
	out, err := output(ctx, qemuImg, append(args, path)...)
	if err != nil {
		return 0, "", fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	var info struct {
		VirtualSize int64  `json:"virtual-size"`
		Format      string `json:"format"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, "", fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	return info.VirtualSize, info.Format, nil
}

// Convert makes dst a sparse raw copy of src (of srcFormat): what the
// guest sees of src, its backing chain flattened. A raw file is what a
// pool keeps when it clones by reflink or snapshot rather than by overlay.
func Convert(ctx context.Context, qemuImg, src, srcFormat, dst string) error {
	return ConvertTo(ctx, qemuImg, src, srcFormat, dst, FormatRaw)
}

// ConvertTo makes dst a standalone copy of src in dstFormat (raw: sparse;
// qcow2: with no backing file), its backing chain flattened: a VM's disk
// copied to a pool that keeps another format.
func ConvertTo(ctx context.Context, qemuImg, src, srcFormat, dst, dstFormat string) error {
	if err := checkFormat(srcFormat); err != nil {
		return err
	}
	if err := checkFormat(dstFormat); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	_ = os.Remove(tmp)
	// -S 4k: runs of zeros become holes (the default, said for clarity).
	if err := run(ctx, qemuImg, "convert", "-q", "-f", srcFormat, "-O", dstFormat, "-S", "4k", src, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("convert %s: %w", src, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("convert %s: %w", src, err)
	}
	return nil
}

func checkFormat(f string) error {
	if f != FormatRaw && f != FormatQCOW2 {
		return errdefs.Invalid("disk image format %q: qcow2 or raw", f)
	}
	return nil
}

// run runs a tool; its error carries the tool's own message. A tool that
// ran out of space is errdefs.ErrNoSpace.
func run(ctx context.Context, name string, args ...string) error {
	_, err := output(ctx, name, args...)
	return err
}

func output(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		return out, nil
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = strings.TrimSpace(string(out))
	}
	if strings.Contains(msg, "No space left on device") {
		return nil, fmt.Errorf("%s: %w", msg, errdefs.ErrNoSpace)
	}
	if msg != "" {
		return nil, fmt.Errorf("%w: %s", err, msg)
	}
	return nil, err
}

// human writes a byte count the way sizes are given (MiB, GiB).
func human(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + " GiB"
	case n >= mib && n%mib == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

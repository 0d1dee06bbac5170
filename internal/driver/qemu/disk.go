package qemu

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// The root disk of a VM booted from an OCI image is two files:
//
//   - a base ext4 image of the image's unpacked root filesystem, built
//     once per image with `mkfs.ext4 -d` (which copies a directory tree
//     into a new filesystem from user space: no loop device, no mount) and
//     shared read-only by every VM of that image;
//   - a per-instance qcow2 overlay backed by it, which takes the VM's
//     writes and is the instance's data.
//
// The base is sized with room to grow (the guest sees the ext4's size as
// its disk); a sparse file costs only what is written.

// diskSize is the base ext4's size for a tree of used bytes and inodes:
// the tree, its metadata, and as much free space again (at least 1 GiB).
func diskSize(used, inodes int64) int64 {
	meta := inodes*256 + 64<<20 // inode tables, journal, bitmaps
	free := max(used, 1<<30)
	size := used + meta + free
	const mib = 1 << 20
	return (size + mib - 1) / mib * mib
}

// treeUsage sums a tree's file sizes and counts its entries.
func treeUsage(root string) (used, inodes int64, err error) {
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

// buildBaseDisk makes the ext4 image of root at dst (atomically: a partial
// image is never left at dst).
func buildBaseDisk(ctx context.Context, mkfs, root, dst string) error {
	used, inodes, err := treeUsage(root)
	if err != nil {
		return fmt.Errorf("measure %s: %w", root, err)
	}
	tmp := dst + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	size := diskSize(used, inodes)
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	f.Close()
	// Enough inodes for the tree and then some; lazy init keeps mkfs from
	// writing the tables the guest fills in later.
	cmd := exec.CommandContext(ctx, mkfs, "-q", "-F", "-t", "ext4",
		"-N", strconv.FormatInt(max(inodes*2, 65536), 10),
		"-E", "lazy_itable_init=1,lazy_journal_init=1",
		"-L", "hangar-root", "-d", root, tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("mkfs.ext4 -d %s: %v: %s", root, err, strings.TrimSpace(string(out)))
	}
	if err := os.Chmod(tmp, 0o444); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// createOverlay makes the instance's writable qcow2 layer over base.
func createOverlay(ctx context.Context, qemuImg, base, baseFormat, dst string) error {
	tmp := dst + ".tmp"
	_ = os.Remove(tmp)
	cmd := exec.CommandContext(ctx, qemuImg, "create", "-q", "-f", "qcow2",
		"-b", base, "-F", baseFormat, tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("qemu-img create: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

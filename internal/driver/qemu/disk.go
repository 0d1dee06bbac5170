//lint:file-ignore SA1019 this file is the deprecated root path, which goes with Spec.RootFS and Spec.Disk

package qemu

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/vmdisk"
)

// The deprecated root path: a spec without Root.Disk (Spec.RootFS, an
// image's tree, or Spec.Disk, a cloud image) gets a root disk the driver
// makes itself, once, in the instance's directory (root.qcow2): a qcow2
// overlay over a shared base, an ext4 image of the tree built with
// `mkfs.ext4 -d` (Dir/.cache/disk-<hash>.ext4) or the cloud image's file
// pinned by a hard link (Dir/.cache/image-<hash>.<fmt>, efi.go). Storage
// makes roots with the same package (vmdisk) on the instance's pool; this
// path and the .cache go once the service hands every VM its root disk
// (issue 12).

// legacyRoot makes the deprecated root overlay at overlay unless it is
// there already (it is the instance's data).
func (d *Driver) legacyRoot(ctx context.Context, spec driver.Spec, paths toolPaths, overlay string) error {
	if _, err := os.Stat(overlay); err == nil {
		return nil
	}
	qemuImg, err := tool(d.cfg.QEMUImg, "qemu-img")
	if err != nil {
		return err
	}
	if spec.Disk != nil {
		if spec.Disk.Format != "qcow2" && spec.Disk.Format != "raw" {
			return errdefs.Invalid("disk image format %q: qcow2 or raw", spec.Disk.Format)
		}
		base, err := d.pinDisk(spec.Disk.Path, spec.Disk.Format)
		if err != nil {
			return err
		}
		return vmdisk.CreateOverlay(ctx, qemuImg, base, spec.Disk.Format, overlay, 0)
	}
	mkfs, err := tool(d.cfg.Mkfs, "mkfs.ext4")
	if err != nil {
		return err
	}
	base, err := d.baseDisk(ctx, mkfs, spec.RootFS)
	if err != nil {
		return err
	}
	return vmdisk.CreateOverlay(ctx, qemuImg, base, "raw", overlay, 0)
}

// baseDisk returns the shared ext4 image of an image's root tree, building
// it on first use (mode 0444: QEMU only ever opens it as a backing file).
// The tree's path is content-addressed (the image fingerprint is in it),
// so it names the disk.
func (d *Driver) baseDisk(ctx context.Context, mkfs, root string) (string, error) {
	d.diskMu.Lock()
	defer d.diskMu.Unlock()
	dst := filepath.Join(d.cfg.Dir, ".cache", "disk-"+hashOf([]byte(root))+".ext4")
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	start := time.Now()
	build := dst + ".build"
	if err := vmdisk.BuildExt4(ctx, mkfs, root, build, 0); err != nil {
		return "", err
	}
	if err := os.Chmod(build, 0o444); err != nil {
		os.Remove(build)
		return "", err
	}
	if err := os.Rename(build, dst); err != nil {
		os.Remove(build)
		return "", err
	}
	d.log.Info("built base disk", "root", root, "disk", dst, "took", time.Since(start))
	return dst, nil
}

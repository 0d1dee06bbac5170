package driver

import "context"

// MountHotplugger is a driver that adds and removes extra mounts (disk
// devices) of a running instance: a container's mount namespace gets or
// loses a bind mount at once. Without it such changes apply at the next
// start.
type MountHotplugger interface {
	// AttachMount mounts m at m.Destination inside the running instance,
	// creating the destination directory (or an empty file, for a file
	// source) when missing; the destination is resolved inside the
	// instance's root, so a symlink there never leads out of it.
	AttachMount(ctx context.Context, id string, m Mount) error
	// DetachMount unmounts what AttachMount (or the start) mounted at
	// destination; nothing mounted there is not an error.
	DetachMount(ctx context.Context, id, destination string) error
}

// DiskHotplugger is a driver that plugs block devices into a running
// virtual machine (over QMP) and unplugs them. The guest sees a disk by
// its name (its serial) on the disk's bus: /dev/disk/by-id/virtio-NAME
// (a name longer than 20 bytes, or with characters other than letters,
// digits, '_', '-', '.', gets a hash instead). Without it, or when the VM
// has no free port left (errdefs.ErrNotImplemented), disks change at the
// next start.
type DiskHotplugger interface {
	AttachDisk(ctx context.Context, id string, d Disk) error
	DetachDisk(ctx context.Context, id, name string) error
}

// DiskResizer is a driver that grows a running virtual machine's disk to
// size bytes (QMP block_resize: QEMU grows the image file itself, so
// storage must not resize an image a running QEMU holds; qemu-img refuses,
// as QEMU holds its lock), so the guest sees the new size without a
// restart; for the root disk of a VM with hangar's agent, its ext4 grows
// too. A stopped VM's root disk is grown by storage, and its filesystem
// grows at the next boot.
type DiskResizer interface {
	ResizeDisk(ctx context.Context, id, name string, size int64) error
}

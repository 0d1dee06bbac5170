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
// virtual machine (over QMP) and unplugs them.
type DiskHotplugger interface {
	AttachDisk(ctx context.Context, id string, d Disk) error
	DetachDisk(ctx context.Context, id, name string) error
}

// DiskResizer is a driver that tells a running virtual machine its root
// disk grew (QMP block_resize), so the guest sees the new size without a
// restart.
type DiskResizer interface {
	ResizeDisk(ctx context.Context, id, name string, size int64) error
}

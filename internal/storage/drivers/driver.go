// Package drivers holds the storage pool drivers: dir and btrfs, behind
// one interface the storage manager drives (package storage). A driver
// knows one kind of backing store: how to make, mount and remove a pool,
// and how to make, clone, size, measure and remove the volumes on it. It
// knows nothing of instances, images or the database: the manager decides
// what a volume holds and records it.
//
// What a driver can do is said by its Info (flags), never found by type
// assertions: Clones (an instant writable copy of a volume, so an
// instance is a clone of its image's volume: btrfs snapshots, later LVM
// thin snapshots), Quotas (a filesystem volume's size enforced),
// SendReceive (a volume streamed in the backing store's own format), and
// so on. A driver without Clones gets instances layered over the image's
// volume by overlayfs (dir); it still copies volumes (CloneVolume,
// SnapshotVolume), only not instantly.
//
// Snapshots are volumes like any other, of their parent's type and
// content, named PARENT@TOKEN (the manager picks TOKEN): they are listed
// by Volumes, removed by DeleteVolume, measured by VolumeUsage. A
// snapshot is read-only where the driver can enforce it (btrfs), by
// convention elsewhere (dir).
//
// Every volume is a directory on the host (a plain directory, a btrfs
// subvolume; an LVM driver would mount its logical volume there). A block
// volume is the file BlockFile names inside it, and so is an ISO volume's
// image (ContentISO: made only with a fill, never resized).
//
// Drivers for LVM and ZFS are not built: this machine's kernel has no
// device-mapper and no ZFS. Load refuses them with a 400 naming the
// missing kernel feature, read from the running kernel.
//
// On disk (layout.go): ROOT/{images,containers,virtual-machines,custom}/
// NAME, block volumes NAME.block; a volume is made under a .tmp- name and
// renamed into place, and renamed aside before it is removed, so a killed
// call leaves only a .tmp- entry, which Volumes skips and Sweep removes.
// A restore builds the new content under a .tmp- name and swaps it with
// the volume in one rename (RENAME_EXCHANGE), so the volume always holds
// either its old or its new content.
// Nothing here crosses into a mount under a volume when removing it.
package drivers

import (
	"context"
	"io"
	"log/slog"
)

// VolumeType is what a volume is for, as LXD names it in its URLs.
type VolumeType string

// The volume types.
const (
	TypeImage     VolumeType = "image"
	TypeContainer VolumeType = "container"
	TypeVM        VolumeType = "virtual-machine"
	TypeCustom    VolumeType = "custom"
)

// ContentType is what a volume holds.
type ContentType string

// The content types.
const (
	ContentFilesystem ContentType = "filesystem"
	ContentBlock      ContentType = "block"
	// ContentISO is an ISO 9660 or UDF image: a block volume's file,
	// written once by its fill and read-only from then on (a read-only
	// subvolume on btrfs).
	ContentISO ContentType = "iso"
)

// Volume names a volume on a pool.
type Volume struct {
	Type VolumeType
	// Name is unique per type and content on a pool, and safe as a file
	// name: the manager names instance volumes by their runtime ID (stable
	// across renames) and image volumes by fingerprint and id map.
	Name    string
	Content ContentType
}

// Info says what a driver can do.
type Info struct {
	// Name is the driver's name ("dir", "btrfs").
	Name string
	// Clones: CloneVolume makes an instant writable copy of a volume
	// (sharing its blocks), so instances are clones of their image's
	// volume. Without it CloneVolume still works but copies every file.
	Clones bool
	// Quotas: SetQuota limits a filesystem volume's size. When false,
	// QuotaUnsupported says why (the backing filesystem has no project
	// quotas, say), for the error a user sees.
	Quotas           bool
	QuotaUnsupported string
	// ReadOnlyVolumes: CreateVolume's readOnly is enforced by the
	// filesystem (btrfs' read-only subvolumes), not only by convention.
	ReadOnlyVolumes bool
	// SendReceive: SendVolume and ReceiveVolume stream a volume in the
	// backing store's own format (btrfs send streams), for optimized
	// backups and copies across pools of the same driver. Without it
	// both are errdefs not-implemented errors.
	SendReceive bool
}

// Usage is space used and available, in bytes. Total is 0 when there is
// no limit (a dir volume without quota).
type Usage struct {
	Used  int64
	Total int64
}

// Pool is what a driver is given: the pool's name, its config (the keys
// of the driver's table, as the user gave them) and the directory the
// pool lives at (DataDir/storage-pools/NAME: the driver mounts there or
// keeps its volumes there).
type Pool struct {
	Name   string
	Config map[string]string
	Dir    string
	Log    *slog.Logger
}

// Driver is one storage pool of one kind. The manager calls its methods
// for one volume one at a time; calls for different volumes may run
// concurrently.
type Driver interface {
	Info() Info

	// Create makes the pool's backing store (a loop file and mkfs, a
	// subvolume of a btrfs source...) and returns the config to record:
	// the given keys with the defaults the driver chose filled in (a
	// loop file's source and size). A source in use or not empty is an
	// errdefs invalid error. On failure nothing is left behind.
	Create(ctx context.Context) (map[string]string, error)
	// Mount makes the pool usable after Create or at daemon start;
	// mounting a mounted pool is not an error.
	Mount(ctx context.Context) error
	// Unmount undoes Mount (daemon shutdown leaves pools mounted).
	Unmount(ctx context.Context) error
	// Delete removes the pool's backing store and everything the driver
	// made for it; the manager has checked it holds no volume.
	Delete(ctx context.Context) error
	// Update applies a change of config keys the driver allows to change
	// (a loop file's size grows it); others are refused.
	Update(ctx context.Context, changed map[string]string) error
	// Usage is the pool's space, read from the filesystem.
	Usage(ctx context.Context) (Usage, error)
	// Device is the host block device (major, minor) the pool's data
	// lives on, for I/O limits.
	Device() (major, minor uint32, err error)

	// CreateVolume makes an empty volume; fill, when not nil, writes its
	// content into the volume's directory before it is made read-only
	// (readOnly) and counted as made. A block volume gets its BlockFile of
	// size bytes. On any failure nothing is left.
	CreateVolume(ctx context.Context, vol Volume, size int64, readOnly bool, fill func(dir string) error) error
	// CloneVolume makes vol a writable copy of parent, which may be a
	// read-only snapshot; both have the same content type. With
	// Info.Clones it is instant (a btrfs writable snapshot); without, it
	// copies the parent's tree whole (content, ownership, modes, xattrs
	// with file capabilities and ACLs, holes of sparse files, hard links,
	// device nodes, symlinks), sharing blocks (reflinks) where the
	// filesystem can. A btrfs clone starts with its parent's qgroup limit
	// (btrfs copies it into a snapshot): the manager sets the one it
	// wants with SetQuota. On any failure nothing is left.
	CloneVolume(ctx context.Context, vol, parent Volume) error
	// SnapshotVolume makes snap a point-in-time copy of vol, of vol's
	// type and content type, named vol.Name+"@"+TOKEN by the manager;
	// read-only where Info.ReadOnlyVolumes (a read-only btrfs snapshot,
	// instant), a copy as CloneVolume makes it elsewhere, read-only by
	// convention. On any failure nothing is left.
	SnapshotVolume(ctx context.Context, snap, vol Volume) error
	// RestoreVolume gives vol snap's content: a writable copy of snap is
	// made under a .tmp- name and swapped with vol in one rename, and
	// vol's old content removed. A call killed at any point leaves vol
	// with its old or its new content and nothing Sweep does not remove.
	// vol must not be mounted or in use (a 409 when the rename sees a
	// mount). The restored volume is a new btrfs subvolume: vol's current
	// qgroup limit is not carried over (it has the limit vol had when snap
	// was taken, which btrfs copied into snap's qgroup): the manager calls
	// SetQuota again.
	RestoreVolume(ctx context.Context, vol, snap Volume) error
	// SendVolume writes vol, which must be read-only (a snapshot), to w
	// as a stream of the driver's format (Info.SendReceive); with parent
	// (an older read-only snapshot of the same volume) the stream holds
	// only the changes since parent. Without Info.SendReceive it is an
	// errdefs not-implemented error.
	SendVolume(ctx context.Context, vol Volume, parent *Volume, w io.Writer) error
	// ReceiveVolume makes vol from a stream SendVolume wrote, read-only
	// (readOnly: a received snapshot) or writable. An incremental stream
	// needs its parent on this pool as a volume an earlier ReceiveVolume
	// made read-only: btrfs finds a parent by the identity it was
	// received with, so the caller receives a volume's snapshots oldest
	// first, each read-only, whatever names it gives them. On any
	// failure (a truncated or corrupt stream is an errdefs invalid
	// error, a missing parent a not-found one) nothing is left.
	ReceiveVolume(ctx context.Context, vol Volume, r io.Reader, readOnly bool) error
	// DeleteVolume removes a volume; a missing one is not an error.
	DeleteVolume(ctx context.Context, vol Volume) error
	// RenameVolume gives a custom volume a new name.
	RenameVolume(ctx context.Context, vol Volume, newName string) error
	// Path is the volume's directory on the host.
	Path(vol Volume) string
	// SetQuota limits a filesystem volume to size bytes (0 removes the
	// limit) when Info.Quotas; a block volume's BlockFile grows to size
	// (shrinking is refused).
	SetQuota(ctx context.Context, vol Volume, size int64) error
	// VolumeUsage is the volume's space, read from the driver (qgroups,
	// the block file's allocated size, a walk of a dir volume).
	VolumeUsage(ctx context.Context, vol Volume) (Usage, error)
	// Volumes lists the volumes on the pool's disk, for the start-up
	// reconciliation with the manager's records. Half-made volumes (a
	// create or delete killed part way) are not listed: Sweep removes them.
	Volumes(ctx context.Context) ([]Volume, error)
	// Sweep removes what killed calls left on the pool: volumes a create,
	// clone, snapshot or receive had not finished, volumes a delete had
	// begun to remove, and a restore's copy or the content it replaced. The
	// manager calls it after Mount at start, before any volume call.
	Sweep(ctx context.Context) error
}

// BlockFile is the file of a block volume, inside its directory.
const BlockFile = "root.img"

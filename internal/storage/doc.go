// Package storage owns hangard's storage pools and volumes, and how an
// image becomes an instance's root: one layer under every instance type
// and every API dialect.
//
// What it owns
//   - Pool records and the rules for their config (one table of keys per
//     driver, unknown keys refused naming the key), kept in the store.
//     On first start the pool "default" (dir, under the data dir) is made.
//   - Volume records: an instance's root volume (container or
//     virtual-machine, named by the instance, kept on disk by its runtime
//     ID so a rename moves nothing), image volumes (an image's tree or
//     disk cached once per pool, and per id map for shifted trees) and
//     custom volumes (filesystem or block) users make and attach, and
//     ISO volumes (iso.go: content type iso, an ISO 9660 or UDF image
//     imported from a stream, checked before a byte is written, read-only,
//     attached to VMs only).
//   - Roots (roots.go): what the runtime mounts or boots. On a driver
//     with clones (btrfs) an instance's root is an instant writable clone
//     of its image's volume; on one without (dir) it is the image's tree
//     under an overlayfs upper layer, and a VM's disk a qcow2 overlay over
//     the image's disk. The runtime drivers get mounts or a disk path
//     (driver.Root) and never build roots.
//   - Snapshots (snapshots.go): a volume's point-in-time copy, of a root
//     or a custom volume, recorded as a volume with a parent ("PARENT/SNAP")
//     and made natively by the driver (a read-only btrfs snapshot; a copy,
//     reflinked where it can, on dir); restore swaps the content in one
//     atomic rename. Custom volume snapshots expire here; instance
//     snapshots are the core's (it keeps their records) and use the root
//     API (SnapshotRoot, RestoreRoot...).
//   - Copies and views (copy.go): a root copied within a pool by the
//     driver's clone, across pools by streaming its tree or converting its
//     disk; a root or snapshot lent read-only (ReadRoot) for publish and
//     backups, a dir root as a read-only overlay of its layers.
//   - Reconciliation at start: a volume on disk with no record (a create
//     killed half-way) is removed; a record whose volume is gone is
//     reported.
//
// What it does not own: the image catalogue and blobs (package image:
// the pools ask it to unpack a tree into a volume), the instances and
// profiles that use pools and volumes (the core answers Users), and the
// disks' attachment to a running instance (the runtime drivers).
//
// The drivers themselves (dir, btrfs) are package storage/drivers.
package storage

// Package backup writes and reads instance backup tarballs in LXD's
// layout: what `lxc export` downloads and `lxc import` uploads (POST
// /1.0/instances with an application/octet-stream body). It knows the
// tarball's layout, its index and config files, compression, id shifting
// of the files it carries and safe extraction; it knows nothing of
// instances, pools, the store or HTTP. The core and the storage layer call
// it: the core writes the index and config, storage adds each volume's
// tree, disk or send stream, and on import storage extracts each part into
// the volume it makes. It must not import internal/instance,
// internal/storage or any API dialect.
//
// # Layout (LXD 5.0, verified against lxd-5.0.2's source)
//
//	backup/index.yaml                     first entry; Index
//	backup/optimized_header.yaml          optimized btrfs only (subvolume list)
//	backup/snapshots/NAME/...             a container snapshot's volume files, oldest first
//	backup/container/...                  the container's volume: backup.yaml, metadata.yaml,
//	                                      templates/, rootfs/
//	backup/virtual-machine-snapshots/NAME/...   a VM snapshot's config volume files
//	backup/virtual-machine-snapshots/NAME.img   its disk, raw
//	backup/virtual-machine/...            the VM's config volume (backup.yaml, metadata.yaml...)
//	backup/virtual-machine.img            its disk, raw (mode 0600, root-owned)
//
// Optimized (btrfs send streams, `optimized_storage`), instead of the
// trees and disks above:
//
//	backup/snapshots/NAME.bin, backup/container.bin
//	backup/virtual-machine-snapshots/NAME.bin, backup/virtual-machine.bin
//	backup/container_ENC.bin ...          a nested subvolume, ENC its path with "-" doubled
//	                                      and "/" as "-" (LXD's PathNameEncode)
//
// LXD writes the index first, then snapshots oldest first, then the
// instance; a volume's own root directory is an entry (backup/container)
// whose metadata LXD's import drops (tar --strip-components), as Extract
// does. Entry names have no "./" prefix and no trailing slash. Disk
// images and send streams are regular files. LXD's import reads
// backup.yaml from the extracted volume (it must exist there, with
// container, pool and volume filled and a root disk device in devices or
// expanded_devices), and indexes config.volume_snapshots by the position
// of each snapshot in index.snapshots: WriteIndex fills that list so an
// LXD import never reads past its end.
//
// # Ids
//
// Only a container volume's rootfs/ is ever shifted; backup.yaml,
// metadata.yaml and templates/ beside it are the host's (root-owned) and
// kept as they are. LXD's backup writer does not unshift (its unshift
// applies to names starting "rootfs", which backup names never do): an
// LXD export holds rootfs ids as on disk, and the instance's
// volatile.last_state.idmap says how they are shifted ("[]": container
// ids). Ours holds container ids (AddTree unshifts rootfs/ by the tree's
// map) and MarkUnshifted sets volatile.last_state.idmap to "[]", so LXD
// shifts the tree to its own map at first start. On import Extract takes
// the archive's map (ParseLXDIDMap of the config's last_state idmap) and
// the target's, and maps every rootfs owner, the root id of file
// capabilities (v2 when it lands on 0, else v3) and named ACL entries
// through both.
//
// # Reading
//
// Open reads one stream front to back, never seeking, so an upload can be
// consumed as it arrives: the index must be the first entry (after an
// optional "backup/" directory) and is validated before any file is
// handed out. Each Entry names its Part: a file of the instance's volume
// or of a snapshot's, a disk image, an optimized send stream or header;
// anything else in the archive is refused. Next returns io.EOF only after
// the tar end-of-archive marker and the compressed stream's own end
// (gzip/xz/zstd checksums) were read and every part the index promises
// was seen: an archive cut anywhere is an error, never a short success.
// Errors caused by the archive's content are of kind
// errdefs.ErrInvalidArgument; callers extract into new volumes and remove
// them on any error.
//
// # Extracting
//
// Extractor writes a part's entries under one directory and never outside
// it: names are checked (no absolute paths, no "..", no empty or "."
// components), parent directories are opened with openat2
// (RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV), so a path through
// any symlink, even one the archive made, is refused rather than followed,
// and the entry itself is made with *at calls that never follow its last
// component. Hard links must point inside the same part. Zero blocks of
// regular files become holes, so a sparse file stays sparse. Data is
// written 64 KiB per write(2), not a whole 1 MiB buffer at once: the
// latter cost 2-3x the kernel time on ext4 (writeChunk).
//
// hangard's optimized backups (storage's backup_optimized.go) nest each
// container tree as the subvolume /rootfs of LXD's volume:
// NAME.bin holds backup.yaml and an empty rootfs/, NAME_rootfs.bin the
// tree; OptimizedHeader lists both.
package backup

// Package image is hangar's image catalogue: the uploaded or pulled image
// files, one unpacked root filesystem tree per image (ids as in the
// archive), and their records and aliases (through the DB interface,
// implemented by the store). Instances never run on these trees: storage
// pools (package storage) cache each image once per pool and id map by
// asking UnpackTree to write it, shifted, into a volume.
//
// # On-disk layout
//
// Under the directory given to New (e.g. DATA/images):
//
//	blobs/sha256/<fp>               the upload, byte for byte as received (a split
//	                                LXD image's metadata tarball); for an OCI
//	                                image its manifest, exactly as served
//	blobs/sha256/<fp>.rootfs        a split LXD image's root filesystem, as received
//	blobs/sha256/<digest>           an OCI image's config and layers (compressed,
//	                                as fetched), one file per digest however many
//	                                images share it
//	rootfs/<fp>/                    the unpacked root filesystem, ids as in the
//	                                archive: what RootFS returns (an OCI image's
//	                                /etc/passwd is read there)
//	rootfs/<fp>@<hostid>-<size>/    only in data dirs made before storage pools:
//	                                trees shifted for an id map, cached here then;
//	                                nothing makes or reads them now, Delete removes
//	                                them with their image
//	blobs/sha256/.tmp-*, rootfs/.tmp-*, rootfs/.trash-*
//	                                work in progress; removed by New
//
// blobs/ and rootfs/ are mode 0700: unshifted trees hold setuid-root
// binaries of whatever age the image has, and no host user may run them.
// Nothing outside the daemon reaches these directories.
//
// # Invariants
//
//   - The fingerprint of an image is the SHA-256 of the uploaded bytes exactly
//     as given (compressed or not), as LXD computes it; for a split image,
//     of the metadata tarball's bytes followed by the rootfs's.
//     An OCI image's fingerprint is its manifest's digest (hex): the
//     platform-specific manifest, never the index, so a multi-architecture
//     reference names a different image on each architecture, and pulling
//     by tag or by digest gives the same fingerprint.
//   - A blob file is always complete and verified: fetched to a .tmp- file
//     while hashed, checked against its digest and size, synced, renamed.
//     A layer present is never fetched again; pulls of one image share one
//     download (callGroup, keyed by manifest digest, and by blob digest).
//   - An OCI layer blob is removed when the last image naming it is
//     deleted, or when the pull that fetched it fails (unless another pull
//     in progress holds it): a failed or cancelled pull leaves nothing.
//   - Blobs and trees appear atomically: they are written under a .tmp- name
//     in the same directory, synced, then renamed into place. A path returned
//     by RootFS is never a half-unpacked tree. A tree that went missing is
//     unpacked again from the blob by RootFS, concurrent callers sharing one
//     rebuild (callGroup, keyed by fingerprint).
//   - A tree is never modified after creation, and nothing runs on it.
//   - UnpackTree writes into the caller's directory and nothing of the
//     store's: what it leaves there on failure is the caller's to remove.
//     It and RootFS's rebuild hold treeMu shared, Delete exclusively, so an
//     image's files never go from under an unpack.
//   - The database record is the truth: an image exists when its record does.
//     Import writes files before the record and Delete removes the record
//     before the files, so a crash leaves at worst unreferenced files, which
//     a later import of the same bytes replaces.
//   - On any Import failure nothing is left: no blob, tree or record.
//   - No unpack writes more than its size cap (sizecap.go): the server's
//     images.max_unpacked_size, else the smaller of 64 GiB and half the
//     free space of this filesystem at the start of the unpack. File
//     sizes count as declared, before a byte is written; decompressed and
//     uploaded bytes count as they stream; a squashfs is listed first.
//     Beyond the cap is "image expands beyond N" (invalid argument), and
//     the failure leaves nothing in the store, as any other. Sparse
//     entries are written with holes, counted by their apparent size.
//     Backups, when they come, must unpack through unpack with a cap from
//     newCap too.
//
// # Projects
//
// An image is stored once (one record, one blob, one tree, one cached
// copy per pool) and held by projects (the DB's image membership). A
// request sees the images and aliases of its scope project
// (project.From(ctx).Scope(features.images): its own project with
// features.images, else the default project): Get, List, Resolve, Export,
// Update, Delete and the alias methods answer not found for an image or
// alias only another project has. An import, pull or publish of bytes
// already stored for another project adds the scope project to the
// image's holders and keeps no second copy (holdLocked); one the project
// holds already is a conflict, as before. Delete lets go of the image in
// the scope project, with that project's aliases of it, and removes the
// image itself (record, files, pool copies) only when no project holds it
// any more. Aliases are per project (two projects may each have "a");
// public, auto_update, properties, expiry and the cached flag are the
// image's, seen alike from every project holding it. What the daemon does
// with an image already resolved in a project (RootFS, UnpackTree, Disk,
// RuntimeConfig, MarkUsed, blob collection, expiry) looks in every
// project.
//
// # Why shift at unpack time
//
// An unprivileged instance runs in a user namespace, so its files must be
// owned by the host ids its namespace maps to. hangar, like LXD, uses one
// default map for all unprivileged instances (base 1000000), so one shifted
// tree per (image, pool, map) serves all of them: a pool has UnpackTree
// write it from the blob once, on first use, with ownership shifted as it
// is written (no second pass over an unshifted copy, no idmapped mounts
// needed). File capabilities are rewritten with the map's root id and
// POSIX ACL entries are shifted too, so they keep working inside the
// namespace. An image with ids the map cannot hold is refused (invalid
// argument).
//
// # Formats
//
// Import takes, each compressed with gzip, xz, zstd or bzip2 or not at all
// (detected from magic bytes, never from names), and records which in
// Record.Format (source.go, source_lxd.go):
//
//   - a plain root filesystem tarball (as `podman import` takes): its root is
//     the instance's root ("rootfs-tarball");
//   - an LXD unified image: metadata.yaml at the top, the root filesystem
//     under rootfs/, templates/ kept but not applied ("lxd-unified"). It is
//     told apart from a plain tarball while it is unpacked: LXD writes
//     metadata.yaml first, so one pass does; if it comes later, the stored
//     upload is unpacked a second time with rootfs/ as the root;
//   - an LXD split image: a metadata tarball, then a root filesystem tarball
//     or squashfs image ("lxd-split"). squashfs is unpacked by unsquashfs
//     into a scratch tree which GNU tar streams through the same unpacker,
//     so it gets the same containment and ownership shift.
//
// A virtual-machine image is a bootable disk (disk.go): an upload whose
// first bytes are the qcow2 magic or a partition table (GPT header at 512,
// MBR signature at 510; archives and compressed streams are ruled out
// first) is checked with `qemu-img info` (the claimed format forced, a
// backing or external data file refused) and stored as its blob alone,
// with no tree ("disk-qcow2", "disk-raw"; Record.Type "virtual-machine").
// An LXD split image whose second file is such a disk (rootfs.img) is a
// virtual-machine image too ("lxd-split-qcow2", "lxd-split-raw"): the
// disk is kept as a split image's rootfs blob.
// Anything that claims to be a disk and is not is invalid-argument ("not
// a disk image") and leaves nothing. Disk gives the QEMU driver the blob.
//
// metadata.yaml gives the architecture (required, one LXD knows), the
// creation date (required), the expiry date and the properties (os,
// release, variant, serial, description...), under the client's.
//
// Export hands the stored files back as uploaded, so LXD and hangard agree
// on fingerprints both ways. PruneCached deletes cached images (copies of
// remote ones) unused for the server's images.remote_cache_expiry days,
// never one an instance uses.
//
// # Publish
//
// Publish (publish.go) makes an image of an instance's root, which the
// caller (the core's ReadRoot) holds still. A container's tree is packed
// (packtree.go: walked by directory fds, never through a symlink) as an
// LXD unified tarball, metadata.yaml first, an empty templates/, the tree
// under rootfs/ with its ownership shifted back through the instance's id
// map (ids the map does not hold become nobody, 65534, as the instance saw
// them; a capability whose root is the map's root becomes revision 2;
// ACL ids are shifted back too), compressed (compress.go) and streamed
// through a pipe straight into Import: one pass, and the image is like any
// upload (fingerprint = SHA-256 of the stored blob, validation, size cap,
// its tree unpacked at once). A virtual machine's disk is flattened with
// `qemu-img convert` into a standalone qcow2 and imported as a split
// image (metadata tarball + rootfs.img), the only virtual-machine layout
// Import takes. Aliases are checked before anything is read; one taken
// during the publish fails it whole and removes the image.
//
// OCI images (format "oci", source_oci.go) come from registries (Pull,
// registry.go, through go-containerregistry: references, auth from the
// daemon's ~/.docker/config.json or the request's credentials, plain HTTP
// only to loopback) or from uploads that unpack as an OCI image layout or
// a docker-archive (archive.go). Their layers are applied in order by the
// unpacker in layer mode (layers.go): ".wh.<name>" removes what lower
// layers made, ".wh..wh..opq" empties a directory of lower content. The
// image's config is a blob too; RuntimeConfig reads the run defaults
// (entrypoint, cmd, env, workdir, user resolved through the image's
// /etc/passwd and /etc/group, stop signal) for the instance service.
package image

// Package fsroot reads and changes files of an instance's root filesystem
// from the host, resolving every path as a process chrooted there would and
// never leaving it. The instance service uses it for the files API; it
// knows nothing of instances, id maps or HTTP, only of one open directory
// (the root) and paths inside it.
//
// # Why a walk of our own
//
// The root belongs to the instance: anything in it, every symlink included,
// may have been put there by a hostile container, and the daemon acts on it
// as host root. So no path is ever handed to the kernel whole. A path is
// walked one component at a time from the root's descriptor, each opened
// with openat2(O_PATH|O_NOFOLLOW, RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
// RESOLVE_NO_XDEV): a component is a single name in one directory, never a
// symlink the kernel follows. A mount is crossed only into a filesystem
// that just stores files (tmpfs, overlay, ext4, xfs, btrfs...: an
// instance's /tmp is often a tmpfs of its own), never into a kernel
// interface (/proc, /sys, devpts, cgroup) or FUSE. Files are opened O_PATH,
// checked to be regular, then reopened through that descriptor, so a
// device node is never opened, not even one swapped in by a race. Symlinks are read and
// their text resolved by the walk itself: an absolute target starts again
// from the root (as the instance sees it), a relative one from the link's
// directory. ".." pops the walk's own stack of open directories, so it can
// never reach above the root, not even through a directory renamed while we
// walk; a ".." at the root is refused (ErrOutsideRoot) rather than clamped as
// chroot would, so a link that points outside the image is an error the user
// sees, not a silent redirection. Magic links (/proc/self/root) are never
// followed: the walk reads their text like any symlink's, and the kernel
// refuses them anyway (RESOLVE_NO_MAGICLINKS).
//
// Request paths are cleaned lexically first, as LXD's file API does
// ("/a/link/.." is "/a"), after refusing any ".." that climbs above "/".
//
// # Semantics
//
// The final component is followed where a process writing a file would
// follow it (writing a file, making a directory that exists through a
// link) and not followed where LXD uses lstat (Get, Remove, Symlink).
// Every change is made with *at calls on the resolved parent's descriptor
// and one name: a new or overwritten file is written to a temporary name in
// the same directory and renamed over, so a reader never sees half a file
// and a failed write leaves the old content and no temporary behind.
//
// Ids are host ids: mapping the instance's ids is the caller's business.
package fsroot

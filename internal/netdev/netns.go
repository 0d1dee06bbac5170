package netdev

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/osthread"
)

// CreateNetNS makes a new network namespace, with its loopback up, and
// bind-mounts it on path (a file it creates) for runc to join. A path that
// already is a network namespace is kept as it is. Calls for one path must
// not run concurrently.
func CreateNetNS(path string) error {
	if err := validPath(path); err != nil {
		return err
	}
	if f, err := os.Open(path); err == nil {
		var st unix.Statfs_t
		err := unix.Fstatfs(int(f.Fd()), &st)
		if err == nil && st.Type == unix.NSFS_MAGIC {
			err = isNetNS(f) // nil when it is one already
			f.Close()
			return err
		}
		f.Close()
		// A file left by a create that did not get to mount: mount on it.
	}
	if err := sharedDir(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return fmt.Errorf("create network namespace file: %w", err)
	}
	f.Close()
	osthread.Throwaway(func() {
		if err = unix.Unshare(unix.CLONE_NEWNET); err != nil {
			err = fmt.Errorf("new network namespace: %w", err)
			return
		}
		if err = unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
			err = fmt.Errorf("bind network namespace on %s: %w", path, err)
			return
		}
		if err = loopbackUp(); err != nil {
			return
		}
		if err = announceSysctls(); err != nil {
			return
		}
		err = unprivilegedSysctls()
	})
	if err != nil {
		return errors.Join(err, DeleteNetNS(path))
	}
	return nil
}

// unprivilegedSysctls let an unprivileged container's root bind ports
// below 1024 and ping (ICMP datagram sockets): the namespace belongs to
// the host's user namespace, not the container's, so the container has no
// capabilities over it, while these two are what programs expect of root.
// Written from the thread inside: /proc/sys/net shows the opener's
// namespace.
func unprivilegedSysctls() error {
	for key, v := range map[string]string{
		"/proc/sys/net/ipv4/ip_unprivileged_port_start": "0",
		"/proc/sys/net/ipv4/ping_group_range":           "0 2147483647",
	} {
		if err := os.WriteFile(key, []byte(v), 0); err != nil {
			return fmt.Errorf("namespace sysctl: %w", err)
		}
	}
	return nil
}

// announceSysctls make every interface made later in the namespace
// announce itself when it comes up (a gratuitous ARP, an unsolicited
// neighbour advertisement): an instance given an address another had a
// moment ago is then reached at once by its neighbours.
func announceSysctls() error {
	for key, v := range map[string]string{
		"/proc/sys/net/ipv4/conf/default/arp_notify":   "1",
		"/proc/sys/net/ipv6/conf/default/ndisc_notify": "1",
	} {
		if err := os.WriteFile(key, []byte(v), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("namespace sysctl: %w", err)
		}
	}
	return nil
}

// loopbackUp sets the current thread's namespace's loopback up: a new
// namespace has it down, and programs expect 127.0.0.1 to work.
func loopbackUp() error {
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("set loopback up: %w", err)
	}
	return nil
}

// DeleteNetNS unmounts the namespace on path and removes the file; the
// namespace ends when nothing else holds it (its processes, open files),
// and the kernel then deletes its links, veth pairs included, in the
// background. A missing path is no error.
func DeleteNetNS(path string) error {
	if err := validPath(path); err != nil {
		return err
	}
	// Mounts can be stacked on the path (a create repeated before this
	// package checked); take them all off.
	for range 16 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not (or no longer) a mount point
		}
		if err != nil {
			return fmt.Errorf("unmount network namespace %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove network namespace file: %w", err)
	}
	return nil
}

// sharedMu keeps two first creates in one directory from both finding it
// no mount point and bind-mounting it on itself twice.
var sharedMu sync.Mutex

// sharedDir makes dir a mount point with shared propagation, as `ip netns`
// does for /run/netns: the namespace mounts in it then propagate to (and
// their unmounts through) mount namespaces made from this one, so none
// keeps a namespace alive after DeleteNetNS.
func sharedDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create network namespace directory: %w", err)
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point: make it one
		if err = unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on itself: %w", dir, err)
		}
		err = unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("make %s a shared mount: %w", dir, err)
	}
	return nil
}

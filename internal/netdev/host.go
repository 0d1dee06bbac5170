package netdev

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/osthread"
)

// Host is the devices of one network namespace: the daemon's own (Open)
// or another (OpenNetNS). It is safe for concurrent use; requests share
// one netlink socket and run one at a time on it.
type Host struct {
	ns *os.File        // the namespace, kept open: taps are made from a thread inside it
	nl *netlink.Handle // a NETLINK_ROUTE socket made inside ns
}

// Open returns the daemon's own network namespace. It is that of the
// process's main thread, which never leaves it (internal/osthread).
func Open() (*Host, error) {
	return openNS("/proc/self/ns/net")
}

// OpenNetNS returns the network namespace bind-mounted on path.
func OpenNetNS(path string) (*Host, error) {
	if err := validPath(path); err != nil {
		return nil, err
	}
	return openNS(path)
}

func openNS(path string) (*Host, error) {
	ns, err := openNetNS(path)
	if err != nil {
		return nil, err
	}
	nl, err := handleIn(ns)
	if err != nil {
		ns.Close()
		return nil, err
	}
	return &Host{ns: ns, nl: nl}, nil
}

// Close releases the namespace and the netlink socket.
func (h *Host) Close() error {
	h.nl.Close()
	return h.ns.Close()
}

// openNetNS opens path and checks that it is a network namespace.
func openNetNS(path string) (*os.File, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFound("network namespace %s not found", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open network namespace: %w", err)
	}
	if err := isNetNS(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// isNetNS tells whether f is a network namespace: a file of nsfs whose
// namespace type is CLONE_NEWNET.
func isNetNS(f *os.File) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("statfs %s: %w", f.Name(), err)
	}
	if st.Type != unix.NSFS_MAGIC {
		return errdefs.Invalid("%s is not a namespace", f.Name())
	}
	t, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("namespace type of %s: %w", f.Name(), err)
	}
	if t != unix.CLONE_NEWNET {
		return errdefs.Invalid("%s is not a network namespace", f.Name())
	}
	return nil
}

// InNetNS runs fn on a thread that entered the network namespace at path
// and is thrown away after (internal/osthread): sockets fn makes stay in
// that namespace, and no other goroutine ever runs there.
func InNetNS(path string, fn func() error) error {
	ns, err := openNetNS(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	return enterNS(ns, fn)
}

// enterNS is InNetNS on an open namespace.
func enterNS(ns *os.File, fn func() error) error {
	var err error
	osthread.Throwaway(func() {
		if err = unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			err = fmt.Errorf("enter network namespace %s: %w", ns.Name(), err)
			return
		}
		err = fn()
	})
	return err
}

// handleIn makes a netlink handle whose socket lives in ns.
func handleIn(ns *os.File) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := enterNS(ns, func() (err error) {
		if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			err = fmt.Errorf("netlink socket in %s: %w", ns.Name(), err)
		}
		return err
	})
	return h, err
}

// linkByName returns the link called name, nil if there is none.
func linkByName(nl *netlink.Handle, name string) (netlink.Link, error) {
	l, err := nl.LinkByName(name)
	if err != nil {
		if notFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("look up link %s: %w", name, err)
	}
	return l, nil
}

// notFound tells whether err says that a link is not there.
func notFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf) || errors.Is(err, unix.ENODEV)
}

// kind is the kernel's kind of a link ("veth", "bridge", "tuntap", ...),
// "" for a device without one (a physical NIC, loopback).
func kind(l netlink.Link) string {
	if t := l.Type(); t != "device" {
		return t
	}
	return ""
}

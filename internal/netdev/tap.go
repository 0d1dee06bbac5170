package netdev

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/osthread"
	"github.com/hangar-dev/hangar/internal/revert"
)

// CreateTap makes a persistent tap called name, owned by root, a port of
// bridge ("" for none), with the MTU (0 leaves the default), and up, for
// QEMU to open by name (-netdev tap,ifname=name). It is single-queue
// without a vnet header: QEMU sets the header when it attaches. An
// existing tap of that name is reused (a virtual machine still running
// after a daemon restart keeps it open) and brought to this state; a tap
// this call made is deleted if a later step fails.
func (h *Host) CreateTap(name, bridge string, mtu int) error {
	if err := validName("tap name", name); err != nil {
		return err
	}
	if err := validMTU("mtu", mtu); err != nil {
		return err
	}
	masterIndex := 0
	if bridge != "" {
		if err := validName("bridge", bridge); err != nil {
			return err
		}
		var err error
		if masterIndex, err = h.bridgeIndex(bridge); err != nil {
			return err
		}
	}
	r := revert.New()
	defer r.Fail()
	l, err := linkByName(h.nl, name)
	if err != nil {
		return err
	}
	if l == nil {
		if err := h.makeTap(name); err != nil {
			return err
		}
		r.Add(func() { _ = h.deleteLink(name) })
		if l, err = h.nl.LinkByName(name); err != nil {
			return fmt.Errorf("look up tap %s: %w", name, err)
		}
	} else if t, ok := l.(*netlink.Tuntap); !ok || t.Mode != netlink.TUNTAP_MODE_TAP {
		return errdefs.Conflict("tap %s: a link of that name exists and is a %s", name, kindName(kind(l)))
	}

	if mtu != 0 && l.Attrs().MTU != mtu {
		if err := h.nl.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("set MTU of tap %s: %w", name, err)
		}
	}
	if cur := l.Attrs().MasterIndex; cur != masterIndex {
		if masterIndex == 0 {
			err = h.nl.LinkSetNoMaster(l)
		} else {
			err = h.nl.LinkSetMasterByIndex(l, masterIndex)
		}
		if err != nil {
			return fmt.Errorf("attach tap %s to bridge %q: %w", name, bridge, err)
		}
	}
	if masterIndex != 0 {
		// Hairpin, as for veths (AddVeth).
		if err := h.nl.LinkSetHairpin(l, true); err != nil {
			return fmt.Errorf("hairpin on tap %s: %w", name, err)
		}
	}
	if err := h.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("set tap %s up: %w", name, err)
	}
	r.Success()
	return nil
}

// makeTap asks the tun driver for a persistent tap. The driver makes it
// in the namespace of the thread that opened /dev/net/tun, so that is a
// thread inside h's namespace, thrown away after.
func (h *Host) makeTap(name string) error {
	var err error
	osthread.Throwaway(func() {
		if err = unix.Setns(int(h.ns.Fd()), unix.CLONE_NEWNET); err != nil {
			err = fmt.Errorf("enter network namespace: %w", err)
			return
		}
		var fd int
		if fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
			err = fmt.Errorf("open /dev/net/tun: %w", err)
			return
		}
		defer unix.Close(fd)
		var ifr *unix.Ifreq
		if ifr, err = unix.NewIfreq(name); err != nil {
			err = fmt.Errorf("tap %s: %w", name, err)
			return
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			err = fmt.Errorf("create tap %s: %w", name, err)
			return
		}
		if err = unix.IoctlSetInt(fd, unix.TUNSETOWNER, 0); err != nil {
			err = fmt.Errorf("set owner of tap %s: %w", name, err)
			return
		}
		if err = unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
			err = fmt.Errorf("make tap %s persistent: %w", name, err)
		}
		// Without persistence the tap goes with this descriptor: nothing left.
	})
	return err
}

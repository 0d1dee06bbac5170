package netdev

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/revert"
)

// Bridge is the wanted state of a managed bridge.
type Bridge struct {
	Name string
	// MTU is the bridge's MTU; 0 leaves it as it is.
	MTU int
	// Hwaddr is the bridge's MAC address; "" leaves it as it is. Give one:
	// a bridge without a set address takes the lowest of its ports', so
	// its address changes as instances come and go, and their neighbour
	// caches point at a MAC that is no longer the gateway's.
	Hwaddr string
	// Addresses are exactly the bridge's addresses (the gateway's, with
	// the subnet's prefix length). Others are removed, except the kernel's
	// IPv6 link-local one. IPv6 ones skip duplicate address detection, so
	// they are usable at once.
	Addresses []netip.Prefix
}

// EnsureBridge makes the bridge b describes, or brings an existing one to
// it, and sets it up. A link of that name that is not a bridge is a
// conflict. A bridge this call created is deleted if a later step fails.
func (h *Host) EnsureBridge(b Bridge) error {
	if err := validName("bridge name", b.Name); err != nil {
		return err
	}
	if err := validMTU("bridge MTU", b.MTU); err != nil {
		return err
	}
	mac, err := parseMAC("bridge hwaddr", b.Hwaddr)
	if err != nil {
		return err
	}
	if err := validAddresses("bridge address", b.Addresses); err != nil {
		return err
	}

	r := revert.New()
	defer r.Fail()
	l, err := linkByName(h.nl, b.Name)
	if err != nil {
		return err
	}
	if l == nil {
		la := netlink.NewLinkAttrs()
		la.Name, la.MTU, la.HardwareAddr = b.Name, b.MTU, mac
		if err := h.nl.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
			return fmt.Errorf("create bridge %s: %w", b.Name, err)
		}
		r.Add(func() { _ = h.deleteLink(b.Name) })
		if l, err = h.nl.LinkByName(b.Name); err != nil {
			return fmt.Errorf("look up bridge %s: %w", b.Name, err)
		}
	} else if k := kind(l); k != "bridge" {
		return errdefs.Conflict("bridge %s: a link of that name exists and is a %s", b.Name, kindName(k))
	}

	if b.MTU != 0 && l.Attrs().MTU != b.MTU {
		if err := h.nl.LinkSetMTU(l, b.MTU); err != nil {
			return fmt.Errorf("set MTU of bridge %s: %w", b.Name, err)
		}
	}
	if mac != nil && !bytes.Equal(l.Attrs().HardwareAddr, mac) {
		if err := h.nl.LinkSetHardwareAddr(l, mac); err != nil {
			return fmt.Errorf("set hwaddr of bridge %s: %w", b.Name, err)
		}
	}
	if err := h.setAddresses(l, b.Addresses); err != nil {
		return fmt.Errorf("bridge %s: %w", b.Name, err)
	}
	if err := h.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("set bridge %s up: %w", b.Name, err)
	}
	r.Success()
	return nil
}

// setAddresses makes want exactly l's addresses, but for IPv6 link-local
// ones the kernel made (unless wanted, they are left).
func (h *Host) setAddresses(l netlink.Link, want []netip.Prefix) error {
	have, err := h.nl.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	wanted := make(map[netip.Prefix]bool, len(want))
	for _, p := range want {
		wanted[p] = true
	}
	for _, a := range have {
		p, ok := prefixOf(a)
		if !ok {
			continue
		}
		if wanted[p] {
			delete(wanted, p)
			continue
		}
		if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if err := h.nl.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove address %s: %w", p, err)
		}
	}
	for _, p := range want {
		if !wanted[p] {
			continue // already there
		}
		if err := h.nl.AddrAdd(l, addr(p)); err != nil {
			return fmt.Errorf("add address %s: %w", p, err)
		}
	}
	return nil
}

// addr is p as a netlink address; an IPv6 one skips duplicate address
// detection, which would keep it unusable ("tentative") for a second or
// more after the link is up, while every address given here is one the
// caller has allocated.
func addr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// kindName names a link kind for a message.
func kindName(k string) string {
	if k == "" {
		return "device"
	}
	return k
}

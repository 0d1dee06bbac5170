package netdev

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/revert"
)

// NIC is the instance side of a container's network interface.
type NIC struct {
	// NetNS is the path of the container's network namespace (CreateNetNS).
	NetNS string
	// Name is the interface's name inside ("eth0").
	Name string
	// Hwaddr is its MAC address; "" lets the kernel pick one.
	Hwaddr string
	// MTU is its MTU (and the host side's); 0 leaves the default.
	MTU int
	// Addresses are its static addresses with the subnet's prefix length.
	// IPv6 ones skip duplicate address detection: usable at once.
	Addresses []netip.Prefix
	// Gateway4 and Gateway6 are the next hops of the default routes; the
	// zero Addr means no default route of that family.
	Gateway4, Gateway6 netip.Addr
}

// Veth is a container NIC made of a veth pair: one end in the host's
// namespace (on a bridge, or alone for routed setups), the other inside.
type Veth struct {
	// HostName is the host end's name (LXD's volatile.<dev>.host_name).
	HostName string
	// Bridge is the bridge the host end is a port of; "" for none.
	Bridge string
	NIC
}

// validate checks n and returns its MAC address.
func (n NIC) validate() (net.HardwareAddr, error) {
	if err := validPath(n.NetNS); err != nil {
		return nil, err
	}
	if err := validName("name", n.Name); err != nil {
		return nil, err
	}
	mac, err := parseMAC("hwaddr", n.Hwaddr)
	if err != nil {
		return nil, err
	}
	if err := validMTU("mtu", n.MTU); err != nil {
		return nil, err
	}
	if err := validAddresses("address", n.Addresses); err != nil {
		return nil, err
	}
	if err := validGateway("IPv4 gateway", n.Gateway4, true); err != nil {
		return nil, err
	}
	if err := validGateway("IPv6 gateway", n.Gateway6, false); err != nil {
		return nil, err
	}
	return mac, nil
}

// AddVeth makes a veth pair whose host end, HostName, is up and a port of
// Bridge, and whose other end is made directly inside NetNS as Name with
// its MAC address and MTU; then gives it its addresses, sets it up and
// adds the default routes. A veth left of either name by an earlier run is
// replaced. If any step fails, the pair is deleted.
func (h *Host) AddVeth(v Veth) error {
	if err := validName("host_name", v.HostName); err != nil {
		return err
	}
	mac, err := v.validate()
	if err != nil {
		return err
	}
	masterIndex := 0
	if v.Bridge != "" {
		if err := validName("bridge", v.Bridge); err != nil {
			return err
		}
		if masterIndex, err = h.bridgeIndex(v.Bridge); err != nil {
			return err
		}
	}
	ns, err := openNetNS(v.NetNS)
	if err != nil {
		return err
	}
	defer ns.Close()
	in, err := handleIn(ns)
	if err != nil {
		return err
	}
	defer in.Close()

	newVeth := func() *netlink.Veth {
		la := netlink.NewLinkAttrs()
		la.Name, la.MTU, la.Flags = v.HostName, v.MTU, net.FlagUp
		return &netlink.Veth{LinkAttrs: la, PeerName: v.Name, PeerHardwareAddr: mac,
			PeerNamespace: netlink.NsFd(ns.Fd())}
	}
	err = h.nl.LinkAdd(newVeth())
	if errors.Is(err, unix.EEXIST) {
		// Left by an earlier run (a daemon killed before it cleaned up):
		// the names are this NIC's, so what holds them is replaced.
		if err := clearStale(h.nl, v.HostName, "veth"); err != nil {
			return err
		}
		if err := clearStale(in, v.Name, "veth", "macvlan"); err != nil {
			return err
		}
		err = h.nl.LinkAdd(newVeth())
	}
	if err != nil {
		return fmt.Errorf("create veth %s: %w", v.HostName, err)
	}
	r := revert.New()
	defer r.Fail()
	r.Add(func() { _ = h.deleteLink(v.HostName) })

	if masterIndex != 0 {
		host, err := h.nl.LinkByName(v.HostName)
		if err == nil {
			err = h.nl.LinkSetMasterByIndex(host, masterIndex)
		}
		if err == nil {
			// Hairpin: a frame may leave by the port it came in on, so
			// an instance reaches itself through a forward to its own
			// address (DNAT on the host sends it back), as in LXD.
			err = h.nl.LinkSetHairpin(host, true)
		}
		if err != nil {
			return fmt.Errorf("attach veth %s to bridge %s: %w", v.HostName, v.Bridge, err)
		}
	}
	if err := configure(in, v.NIC); err != nil {
		return err
	}
	r.Success()
	return nil
}

// AddMacvlan makes a macvlan (bridge mode) on the host NIC parent,
// directly inside n.NetNS as n.Name, then configures it as AddVeth does.
// Instances on one parent reach each other; the host does not reach them
// through parent (a property of macvlan). If any step fails, the macvlan
// is deleted.
func (h *Host) AddMacvlan(parent string, n NIC) error {
	if err := validName("parent", parent); err != nil {
		return err
	}
	mac, err := n.validate()
	if err != nil {
		return err
	}
	p, err := linkByName(h.nl, parent)
	if err != nil {
		return err
	}
	if p == nil {
		return errdefs.NotFound("parent %s not found", parent)
	}
	ns, err := openNetNS(n.NetNS)
	if err != nil {
		return err
	}
	defer ns.Close()
	in, err := handleIn(ns)
	if err != nil {
		return err
	}
	defer in.Close()

	newMacvlan := func() *netlink.Macvlan {
		la := netlink.NewLinkAttrs()
		la.Name, la.MTU, la.HardwareAddr = n.Name, n.MTU, mac
		la.ParentIndex, la.Namespace = p.Attrs().Index, netlink.NsFd(ns.Fd())
		return &netlink.Macvlan{LinkAttrs: la, Mode: netlink.MACVLAN_MODE_BRIDGE}
	}
	err = h.nl.LinkAdd(newMacvlan())
	if errors.Is(err, unix.EEXIST) {
		if err := clearStale(in, n.Name, "veth", "macvlan"); err != nil {
			return err
		}
		err = h.nl.LinkAdd(newMacvlan())
	}
	if err != nil {
		return fmt.Errorf("create macvlan %s on %s: %w", n.Name, parent, err)
	}
	r := revert.New()
	defer r.Fail()
	r.Add(func() { _ = deleteIn(in, n.Name) })
	if err := configure(in, n); err != nil {
		return err
	}
	r.Success()
	return nil
}

// configure gives the NIC just made in a namespace (reached through in)
// its addresses, sets it up, and adds its default routes: up before the
// routes, as a next hop is only reachable on a link that is up.
func configure(in *netlink.Handle, n NIC) error {
	l, err := in.LinkByName(n.Name)
	if err != nil {
		return fmt.Errorf("look up %s in %s: %w", n.Name, n.NetNS, err)
	}
	for _, p := range n.Addresses {
		if err := in.AddrAdd(l, addr(p)); err != nil {
			return fmt.Errorf("add address %s to %s: %w", p, n.Name, err)
		}
	}
	if err := in.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", n.Name, err)
	}
	for _, gw := range []netip.Addr{n.Gateway4, n.Gateway6} {
		if !gw.IsValid() {
			continue
		}
		rt := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()}
		if err := in.RouteReplace(rt); err != nil {
			return fmt.Errorf("default route of %s via %s: %w", n.Name, gw, err)
		}
	}
	return nil
}

// bridgeIndex returns the index of the bridge called name.
func (h *Host) bridgeIndex(name string) (int, error) {
	b, err := linkByName(h.nl, name)
	if err != nil {
		return 0, err
	}
	if b == nil {
		return 0, errdefs.NotFound("bridge %s not found", name)
	}
	if k := kind(b); k != "bridge" {
		return 0, errdefs.Invalid("bridge %s: a %s, not a bridge", name, kindName(k))
	}
	return b.Attrs().Index, nil
}

// clearStale deletes the link called name if it is of one of kinds, and
// refuses to touch one of another kind.
func clearStale(nl *netlink.Handle, name string, kinds ...string) error {
	l, err := linkByName(nl, name)
	if err != nil || l == nil {
		return err
	}
	if k := kind(l); !slices.Contains(kinds, k) {
		return errdefs.Conflict("interface %s exists and is a %s", name, kindName(k))
	}
	if err := nl.LinkDel(l); err != nil && !notFound(err) {
		return fmt.Errorf("delete stale %s: %w", name, err)
	}
	return nil
}

// DeleteLink deletes the link called name and the ifb that limits its
// traffic, if any. Deleting a veth's host end deletes the other end too.
// A missing link is no error. The kernel makes the call wait for an RCU
// grace period (about 20 ms here, BenchmarkAddVeth): a container's stop
// should rather DeleteNetNS, which takes its veths with the namespace in
// the background, and DeleteLimits; DeleteLink is for hot-unplug and taps.
func (h *Host) DeleteLink(name string) error {
	if err := validName("name", name); err != nil {
		return err
	}
	return errors.Join(h.deleteLink(name), h.deleteIfb(name))
}

func (h *Host) deleteLink(name string) error { return deleteIn(h.nl, name) }

// deleteIn deletes the link called name in nl's namespace, if there.
func deleteIn(nl *netlink.Handle, name string) error {
	l, err := linkByName(nl, name)
	if err != nil || l == nil {
		return err
	}
	if err := nl.LinkDel(l); err != nil && !notFound(err) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// DeleteLinkInNetNS deletes the link called name inside the namespace on
// path: a macvlan NIC, or either end of a veth. A missing namespace or
// link is no error.
func DeleteLinkInNetNS(path, name string) error {
	if err := validPath(path); err != nil {
		return err
	}
	if err := validName("name", name); err != nil {
		return err
	}
	ns, err := openNetNS(path)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer ns.Close()
	in, err := handleIn(ns)
	if err != nil {
		return err
	}
	defer in.Close()
	return deleteIn(in, name)
}

// SetNeighbors tells the host, on bridge, that addrs are at mac (as
// entries to be confirmed, NUD_STALE): an address freed by one instance
// and given to the next would otherwise be sent to the old MAC until the
// host's entry expired (seconds to a minute of silence for a new
// instance).
func (h *Host) SetNeighbors(bridge, mac string, addrs []netip.Prefix) error {
	return h.setNeighbors(bridge, mac, addrs, netlink.NUD_STALE)
}

// PinNeighbors tells the host, on bridge, that addrs are at mac for good
// (NUD_PERMANENT): for a VM in standby, whose address has no host behind
// it. An entry to be resolved would fail after ~3 s of unanswered ARP or
// ND, and a client's connect get "no route to host" before the VM is
// restored; a pinned one keeps the client's SYNs going out to the MAC
// until the VM is back and answers. SetNeighbors (the NIC's next start)
// replaces such an entry, UnpinNeighbors removes it.
func (h *Host) PinNeighbors(bridge, mac string, addrs []netip.Prefix) error {
	return h.setNeighbors(bridge, mac, addrs, netlink.NUD_PERMANENT)
}

func (h *Host) setNeighbors(bridge, mac string, addrs []netip.Prefix, state int) error {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return errdefs.Invalid("hwaddr %q: %v", mac, err)
	}
	idx, err := h.bridgeIndex(bridge)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		n := &netlink.Neigh{LinkIndex: idx, Family: family(a.Addr()), State: state, IP: a.Addr().AsSlice(), HardwareAddr: hw}
		if err := h.nl.NeighSet(n); err != nil {
			return fmt.Errorf("neighbour %s on %s: %w", a.Addr(), bridge, err)
		}
	}
	return nil
}

// UnpinNeighbors removes the permanent entries for addrs on bridge that
// still point at mac (one replaced since, by a NIC's start or another
// instance's, is left alone). A missing bridge or entry is no error.
func (h *Host) UnpinNeighbors(bridge, mac string, addrs []netip.Prefix) error {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return errdefs.Invalid("hwaddr %q: %v", mac, err)
	}
	idx, err := h.bridgeIndex(bridge)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	lists := map[int][]netlink.Neigh{}
	var errs []error
	for _, a := range addrs {
		fam := family(a.Addr())
		if _, ok := lists[fam]; !ok {
			l, err := h.nl.NeighList(idx, fam)
			if err != nil {
				return fmt.Errorf("neighbours on %s: %w", bridge, err)
			}
			lists[fam] = l
		}
		for _, n := range lists[fam] {
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok || ip.Unmap() != a.Addr().Unmap() || n.State&netlink.NUD_PERMANENT == 0 || !bytes.Equal(n.HardwareAddr, hw) {
				continue
			}
			if err := h.nl.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("neighbour %s on %s: %w", a.Addr(), bridge, err))
			}
		}
	}
	return errors.Join(errs...)
}

// family is a netlink address family of a.
func family(a netip.Addr) int {
	if a.Is4() || a.Is4In6() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

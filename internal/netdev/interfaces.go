package netdev

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
)

// Interface is one network interface as the kernel has it now.
type Interface struct {
	Name  string
	Index int
	// Type is what LXD calls an unmanaged network of it: "loopback",
	// "bridge", "vlan", "physical" (backed by a device: a NIC, a virtio
	// one), "bond", or "unknown" (veth, tap, macvlan, ifb, ...).
	Type string
	// Kind is the kernel's link kind ("veth", "bridge", "macvlan",
	// "tuntap", "ifb", ...), "" for a device without one (physical, lo).
	Kind   string
	Flags  net.Flags
	Up     bool // administratively up
	MTU    int
	Hwaddr string
	// Addresses in the kernel's order.
	Addresses []Address
	Counters  Counters
	// Master is the bridge (or bond) this interface is a port of.
	Master string
	// Parent is the lower device of a macvlan, macvtap or vlan, when it
	// is in the same namespace.
	Parent string
	// Members are the ports of a bridge or bond, by name.
	Members []string
}

// Address is one address of an interface.
type Address struct {
	// Prefix is the address with its prefix length.
	Prefix netip.Prefix
	// Scope is "global", "link", "local" (host: loopback's) or "site".
	Scope string
}

// Family is "inet" or "inet6", as LXD names them.
func (a Address) Family() string {
	if a.Prefix.Addr().Is4() {
		return "inet"
	}
	return "inet6"
}

// Counters are an interface's traffic since it was made.
type Counters struct {
	BytesReceived, BytesSent     uint64
	PacketsReceived, PacketsSent uint64
	ErrorsReceived, ErrorsSent   uint64
	DroppedReceived, DroppedSent uint64
}

// Interfaces lists the namespace's interfaces, by index: two dumps (links,
// addresses), whatever their number.
func (h *Host) Interfaces() ([]Interface, error) {
	return list(h.nl)
}

// InterfacesInNetNS lists the interfaces of the namespace on path, by
// name, through a netlink socket made inside it: no process is run.
func InterfacesInNetNS(path string) (map[string]Interface, error) {
	if err := validPath(path); err != nil {
		return nil, err
	}
	ns, err := openNetNS(path)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	in, err := handleIn(ns)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	ifs, err := list(in)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Interface, len(ifs))
	for _, i := range ifs {
		out[i.Name] = i
	}
	return out, nil
}

func list(nl *netlink.Handle) ([]Interface, error) {
	links, err := nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	addrs, err := nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	byIndex := make(map[int]string, len(links))
	for _, l := range links {
		byIndex[l.Attrs().Index] = l.Attrs().Name
	}
	out := make([]Interface, 0, len(links))
	at := make(map[int]int, len(links)) // index -> position in out
	for _, l := range links {
		a := l.Attrs()
		i := Interface{
			Name:      a.Name,
			Index:     a.Index,
			Type:      lxdType(a.Flags, kind(l), a.ParentDev),
			Kind:      kind(l),
			Flags:     a.Flags,
			Up:        a.Flags&net.FlagUp != 0,
			MTU:       a.MTU,
			Hwaddr:    a.HardwareAddr.String(),
			Addresses: []Address{},
			Master:    byIndex[a.MasterIndex],
		}
		switch i.Kind {
		case "macvlan", "macvtap", "vlan", "ipvlan":
			if a.NetNsID < 0 { // else the parent is in another namespace
				i.Parent = byIndex[a.ParentIndex]
			}
		}
		if s := a.Statistics; s != nil {
			i.Counters = Counters{
				BytesReceived: s.RxBytes, BytesSent: s.TxBytes,
				PacketsReceived: s.RxPackets, PacketsSent: s.TxPackets,
				ErrorsReceived: s.RxErrors, ErrorsSent: s.TxErrors,
				DroppedReceived: s.RxDropped, DroppedSent: s.TxDropped,
			}
		}
		at[a.Index] = len(out)
		out = append(out, i)
	}
	for _, l := range links {
		if m, ok := at[l.Attrs().MasterIndex]; ok && l.Attrs().MasterIndex != 0 {
			out[m].Members = append(out[m].Members, l.Attrs().Name)
		}
	}
	for _, ad := range addrs {
		p, ok := prefixOf(ad)
		n, found := at[ad.LinkIndex]
		if !ok || !found {
			continue
		}
		out[n].Addresses = append(out[n].Addresses, Address{Prefix: p, Scope: scope(ad.Scope)})
	}
	for n := range out {
		slices.Sort(out[n].Members)
	}
	return out, nil
}

// lxdType is LXD's type of an unmanaged network (lxd/networks.go, 5.0):
// loopback by flag, then bridge, vlan, a device behind it (sysfs's
// "device" link, which netlink gives as the parent device's name), bond,
// else unknown. Netlink rather than sysfs: /sys shows the namespace it was
// mounted in, not necessarily the daemon's.
func lxdType(flags net.Flags, kind, parentDev string) string {
	switch {
	case flags&net.FlagLoopback != 0:
		return "loopback"
	case kind == "bridge":
		return "bridge"
	case kind == "vlan":
		return "vlan"
	case parentDev != "":
		return "physical"
	case kind == "bond":
		return "bond"
	}
	return "unknown"
}

// scope names an address scope as LXD does.
func scope(s int) string {
	switch netlink.Scope(s) {
	case netlink.SCOPE_UNIVERSE:
		return "global"
	case netlink.SCOPE_LINK:
		return "link"
	case netlink.SCOPE_HOST:
		return "local"
	case netlink.SCOPE_SITE:
		return "site"
	}
	return fmt.Sprint(s)
}

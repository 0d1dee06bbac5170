package netdev

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// ipNet is p in the net package's form, the address kept (not masked).
func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}

// prefixOf is a netlink address as an address with its prefix length.
func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	return ipNetPrefix(a.IPNet)
}

// ipNetPrefix converts n, keeping its address (not masked); IPv4 comes
// back as IPv4, not IPv4-mapped IPv6.
func ipNetPrefix(n *net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false // a non-canonical mask
	}
	ip = ip.Unmap()
	if ip.Is4() && bits == 128 {
		ones -= 96
	}
	return netip.PrefixFrom(ip, ones), true
}

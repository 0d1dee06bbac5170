package netdev

import (
	cryptorand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// pickTries is how many random subnets PickSubnets tries per family
// before it gives up, as LXD's randomSubnetV4/V6 do.
const pickTries = 100

// PickSubnets chooses, at random, a private IPv4 /24 in 10.0.0.0/8 and an
// IPv6 ULA /64 (RFC 4193: fd, a 40-bit random global id, a 16-bit subnet)
// that overlap none of used, and returns the gateway's address in each
// (the first host: 10.x.y.1/24, fdxx:...::1/64), as LXD's first bridge
// gets. Routes of prefix length 0 (default routes) in used are ignored.
// LXD also pings the candidates; this does not: a probe off the machine
// is slow, and hangard's networks are for its instances.
func PickSubnets(used []netip.Prefix) (v4, v6 netip.Prefix, err error) {
	var taken []netip.Prefix
	for _, p := range used {
		if p.IsValid() && p.Bits() > 0 {
			taken = append(taken, p.Masked())
		}
	}
	free := func(c netip.Prefix) bool {
		for _, p := range taken {
			if p.Overlaps(c) {
				return false
			}
		}
		return true
	}
	v4, ok := pick(free, func() netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(rand.IntN(256)), byte(rand.IntN(256)), 1}), 24)
	})
	if !ok {
		return v4, v6, errdefs.Conflict("no unused IPv4 /24 found in 10.0.0.0/8 after %d tries: give the subnet", pickTries)
	}
	v6, ok = pick(free, func() netip.Prefix {
		var a [16]byte
		a[0] = 0xfd
		for i := 1; i < 8; i++ { // global id and subnet id
			a[i] = byte(rand.IntN(256))
		}
		a[15] = 1
		return netip.PrefixFrom(netip.AddrFrom16(a), 64)
	})
	if !ok {
		return v4, v6, errdefs.Conflict("no unused IPv6 /64 found in fd00::/8 after %d tries: give the subnet", pickTries)
	}
	return v4, v6, nil
}

func pick(free func(netip.Prefix) bool, random func() netip.Prefix) (netip.Prefix, bool) {
	for range pickTries {
		if c := random(); free(c) {
			return c, true
		}
	}
	return netip.Prefix{}, false
}

// UsedPrefixes lists what a new subnet must not overlap: the destinations
// of every route of every table (but default routes), and the subnet of
// every address, including those of links that are down and so have no
// route.
func (h *Host) UsedPrefixes() ([]netip.Prefix, error) {
	routes, err := h.nl.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	addrs, err := h.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil {
			continue // a default route
		}
		if p, ok := ipNetPrefix(r.Dst); ok && p.Bits() > 0 {
			out = append(out, p.Masked())
		}
	}
	for _, a := range addrs {
		if p, ok := prefixOf(a); ok {
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

// RandomMAC returns a random MAC address in 00:16:3e (Xensource's OUI,
// which LXD uses for its instances).
func RandomMAC() string {
	var b [3]byte
	_, _ = cryptorand.Read(b[:]) // never fails (crypto/rand)
	return fmt.Sprintf("00:16:3e:%02x:%02x:%02x", b[0], b[1], b[2])
}

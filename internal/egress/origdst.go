package egress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// OriginalDst is where a redirected connection was going before the
// firewall's redirect sent it to the proxy: conntrack's original tuple,
// read with getsockopt SO_ORIGINAL_DST (IP6T_SO_ORIGINAL_DST for IPv6,
// the same number). A connection that was not redirected answers with
// its own local address.
func OriginalDst(c *net.TCPConn) (netip.AddrPort, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	local, _ := c.LocalAddr().(*net.TCPAddr)
	v6 := local != nil && local.IP.To4() == nil
	var out netip.AddrPort
	var serr error
	err = raw.Control(func(fd uintptr) {
		if v6 {
			// struct sockaddr_in6 (28 bytes) fits IPv6MTUInfo (32).
			info, e := unix.GetsockoptIPv6MTUInfo(int(fd), unix.SOL_IPV6, unix.SO_ORIGINAL_DST)
			if e != nil {
				serr = e
				return
			}
			a := info.Addr
			// Port holds the network-order bytes as the kernel wrote them.
			var pb [2]byte
			binary.NativeEndian.PutUint16(pb[:], a.Port)
			port := binary.BigEndian.Uint16(pb[:])
			out = netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), port)
			return
		}
		// struct sockaddr_in (16 bytes) fits IPv6Mreq (20):
		// family(2) port(2, network order) addr(4) zero(8).
		m, e := unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
		if e != nil {
			serr = e
			return
		}
		b := m.Multiaddr[:]
		out = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:4]))
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("SO_ORIGINAL_DST: %w", err)
	}
	if !out.IsValid() || out.Port() == 0 {
		return netip.AddrPort{}, errors.New("SO_ORIGINAL_DST: no original destination")
	}
	return out, nil
}

package netdev

import (
	"net"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// maxNameLen is the kernel's limit on an interface name (IFNAMSIZ less
// the terminating NUL).
const maxNameLen = 15

// validName checks an interface name as the kernel's dev_valid_name does,
// so a bad one is refused before anything is made rather than half way.
func validName(field, name string) error {
	switch {
	case name == "":
		return errdefs.Invalid("%s: empty interface name", field)
	case len(name) > maxNameLen:
		return errdefs.Invalid("%s %q: longer than %d bytes", field, name, maxNameLen)
	case name == "." || name == "..":
		return errdefs.Invalid("%s %q: not an interface name", field, name)
	case strings.ContainsAny(name, "/: \t\n\v\f\r"):
		return errdefs.Invalid("%s %q: contains '/', ':' or white space", field, name)
	}
	return nil
}

// parseMAC parses an Ethernet unicast address; "" gives nil (the kernel
// picks one).
func parseMAC(field, s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, errdefs.Invalid("%s %q: not an Ethernet MAC address", field, s)
	}
	if mac[0]&1 != 0 {
		return nil, errdefs.Invalid("%s %q: a multicast address", field, s)
	}
	if string(mac) == "\x00\x00\x00\x00\x00\x00" {
		return nil, errdefs.Invalid("%s %q: the zero address", field, s)
	}
	return mac, nil
}

// validMTU accepts 0 (leave the default) or 68 (IPv4's minimum) to 65535.
func validMTU(field string, mtu int) error {
	if mtu != 0 && (mtu < 68 || mtu > 65535) {
		return errdefs.Invalid("%s %d: out of range 68-65535", field, mtu)
	}
	return nil
}

// validAddresses checks interface addresses: each a unicast address of
// its family with a prefix length, no zone, no IPv4-mapped IPv6, and none
// twice.
func validAddresses(field string, ps []netip.Prefix) error {
	seen := make(map[netip.Addr]bool, len(ps))
	for _, p := range ps {
		a := p.Addr()
		switch {
		case !p.IsValid():
			return errdefs.Invalid("%s: %q is not an address with a prefix length", field, p.String())
		case a.Zone() != "" || a.Is4In6():
			return errdefs.Invalid("%s %s: zoned or IPv4-mapped", field, p)
		case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
			return errdefs.Invalid("%s %s: not a unicast address", field, p)
		case seen[a]:
			return errdefs.Invalid("%s %s: given twice", field, p)
		}
		seen[a] = true
	}
	return nil
}

// validGateway checks a default route's next hop: invalid (none) or a
// unicast address of the family (is4).
func validGateway(field string, gw netip.Addr, is4 bool) error {
	if !gw.IsValid() {
		return nil
	}
	if gw.Is4() != is4 || gw.Is4In6() || gw.Zone() != "" || gw.IsUnspecified() || gw.IsMulticast() {
		fam := "IPv6"
		if is4 {
			fam = "IPv4"
		}
		return errdefs.Invalid("%s %s: not an %s unicast address", field, gw, fam)
	}
	return nil
}

// validPath checks a namespace path: absolute and clean, so that two
// spellings of one path do not make two namespaces.
func validPath(path string) error {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return errdefs.Invalid("network namespace path %q: not an absolute clean path", path)
	}
	return nil
}

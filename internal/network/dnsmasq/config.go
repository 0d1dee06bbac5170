package dnsmasq

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// DefaultDomain is the DNS domain of a network whose Config.Domain is empty
// (LXD's is "lxd").
const DefaultDomain = "hangar"

// DefaultUser is the user dnsmasq drops to after binding its sockets.
const DefaultUser = "nobody"

// leaseTime is the DHCP lease time, LXD's default ipv4.dhcp.expiry.
const leaseTime = "1h"

// Config is what one dnsmasq serves. It is fixed for a Server's life: a
// change of it is a Stop and a Start (as LXD restarts dnsmasq on any
// network change); only the hosts change while it runs (SetHosts).
type Config struct {
	// Bridge is the interface served. It must exist, be up and carry its
	// addresses before Start: dnsmasq binds to them (--bind-interfaces).
	Bridge string
	// Dir is this network's state directory: dnsmasq.conf, the hosts
	// files, the leases file, the pid file and dnsmasq's log live here.
	// Absolute; made if missing. The caller removes it with the network.
	Dir string

	// IPv4 is the bridge's address and prefix (10.12.3.1/24); zero: none.
	IPv4 netip.Prefix
	// DHCPv4 serves DHCPv4 on IPv4's subnet: the static reservations of
	// the hosts, and DHCPv4Ranges for everyone else.
	DHCPv4 bool
	// DHCPv4Ranges are the dynamic pools, inclusive; empty: the whole
	// subnet minus the network, broadcast and bridge addresses, as LXD.
	DHCPv4Ranges [][2]netip.Addr

	// IPv6 is the bridge's IPv6 address and prefix; zero: none.
	IPv6 netip.Prefix
	// DHCPv6 serves stateful DHCPv6 (addresses, not only options) on the
	// whole subnet minus the bridge address.
	DHCPv6 bool
	// RA sends router advertisements. Without DHCPv6 they are for SLAAC
	// with stateless DHCPv6 for DNS, and dnsmasq names the SLAAC addresses
	// of dual-stack hosts (ra-stateless, ra-names); IPv6 must be a /64.
	RA bool

	// DNS serves names (dns.mode != none); without it dnsmasq's DNS port
	// is closed and DHCP announces no DNS server.
	DNS bool
	// Domain is dns.domain; empty: DefaultDomain. A host NAME answers as
	// NAME and NAME.Domain, and Domain is answered from local data only.
	Domain string

	// MTU is announced by DHCPv4 (option 26) when not zero.
	MTU int

	// Binary is the dnsmasq to run: a path, or a name looked up in PATH
	// and then /usr/sbin and /sbin; empty: "dnsmasq".
	Binary string
	// User is who dnsmasq runs as once its sockets are bound; empty:
	// DefaultUser. Dir and every directory above it must be searchable by
	// it: dnsmasq rereads the hosts files as that user on SIGHUP.
	User string
	// NetNS is the network namespace to run dnsmasq in, as a path
	// (/proc/PID/ns/net, a bind mount, /proc/self/fd/N); empty: the
	// daemon's own. Every restart enters it again.
	NetNS string
}

// resolved is a validated Config with its defaults filled in and its
// names looked up.
type resolved struct {
	Config
	binary string // absolute path
	uid    int
	gid    int
	group  string
}

// validate checks c and fills in its defaults. Bad input is an
// errdefs.ErrInvalidArgument naming the field; a missing dnsmasq binary or
// user is reported as such.
func (c Config) validate() (*resolved, error) {
	if err := validIfName(c.Bridge); err != nil {
		return nil, err
	}
	if c.Dir == "" || !filepath.IsAbs(c.Dir) {
		return nil, errdefs.Invalid("dnsmasq dir %q: not an absolute path", c.Dir)
	}
	c.Dir = filepath.Clean(c.Dir)
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	c.Domain = strings.ToLower(strings.TrimSuffix(c.Domain, "."))
	if err := validDomain(c.Domain); err != nil {
		return nil, err
	}
	if c.IPv4.IsValid() {
		if err := validBridgePrefix("ipv4.address", c.IPv4, true); err != nil {
			return nil, err
		}
	}
	if c.IPv6.IsValid() {
		if err := validBridgePrefix("ipv6.address", c.IPv6, false); err != nil {
			return nil, err
		}
	}
	if c.DHCPv4 {
		if !c.IPv4.IsValid() {
			return nil, errdefs.Invalid("ipv4.dhcp: the network has no ipv4.address")
		}
		if c.IPv4.Bits() > 30 {
			return nil, errdefs.Invalid("ipv4.dhcp: subnet %s is too small for DHCP", c.IPv4.Masked())
		}
		if len(c.DHCPv4Ranges) == 0 {
			c.DHCPv4Ranges = defaultRanges(c.IPv4)
		}
		for _, r := range c.DHCPv4Ranges {
			if err := validRange(c.IPv4, r); err != nil {
				return nil, err
			}
		}
	} else if len(c.DHCPv4Ranges) > 0 {
		return nil, errdefs.Invalid("ipv4.dhcp.ranges: DHCPv4 is off")
	}
	if (c.DHCPv6 || c.RA) && !c.IPv6.IsValid() {
		return nil, errdefs.Invalid("ipv6.dhcp: the network has no ipv6.address")
	}
	if c.RA && !c.DHCPv6 && c.IPv6.Bits() != 64 {
		return nil, errdefs.Invalid("ipv6.address %s: router advertisements for SLAAC need a /64", c.IPv6)
	}
	if c.DHCPv6 && (c.IPv6.Bits() < 64 || c.IPv6.Bits() > 124) {
		return nil, errdefs.Invalid("ipv6.dhcp.stateful: prefix /%d not between /64 and /124", c.IPv6.Bits())
	}
	if c.MTU != 0 && (c.MTU < 68 || c.MTU > 65535) {
		return nil, errdefs.Invalid("bridge.mtu %d: not between 68 and 65535", c.MTU)
	}
	if c.User == "" {
		c.User = DefaultUser
	}
	if c.NetNS != "" && !filepath.IsAbs(c.NetNS) {
		return nil, errdefs.Invalid("dnsmasq netns %q: not an absolute path", c.NetNS)
	}

	r := &resolved{Config: c}
	var err error
	if r.binary, err = findBinary(c.Binary); err != nil {
		return nil, err
	}
	u, err := user.Lookup(c.User)
	if err != nil {
		return nil, fmt.Errorf("dnsmasq user: %w", err)
	}
	if r.uid, err = strconv.Atoi(u.Uid); err != nil {
		return nil, fmt.Errorf("dnsmasq user %s: uid %q: %w", c.User, u.Uid, err)
	}
	if r.gid, err = strconv.Atoi(u.Gid); err != nil {
		return nil, fmt.Errorf("dnsmasq user %s: gid %q: %w", c.User, u.Gid, err)
	}
	// dnsmasq's own default group is "dip": name the user's instead, so
	// the process holds no group it was not given.
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("dnsmasq user %s: group: %w", c.User, err)
	}
	r.group = g.Name
	return r, nil
}

// findBinary resolves name (default "dnsmasq") to an executable path.
// /usr/sbin and /sbin are tried after PATH: Debian installs dnsmasq there
// and a daemon started without them in PATH must still find it.
func findBinary(name string) (string, error) {
	if name == "" {
		name = "dnsmasq"
	}
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			return "", errdefs.Invalid("dnsmasq binary %q: not an absolute path", name)
		}
		return exec.LookPath(name)
	}
	p, err := exec.LookPath(name)
	if err == nil {
		return filepath.Abs(p)
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, err2 := exec.LookPath(filepath.Join(dir, name)); err2 == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("dnsmasq binary %q (Debian package dnsmasq-base): %w", name, err)
}

// validIfName checks a Linux interface name: 1 to 15 bytes, none of
// '/', ':', ',' (which would also break dnsmasq's option syntax) or space.
func validIfName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." ||
		strings.ContainsAny(name, "/:, \t\n\r\x00=#") {
		return errdefs.Invalid("bridge name %q: not a valid interface name", name)
	}
	return nil
}

// validDomain checks a DNS domain: dot-separated RFC 1123 labels.
func validDomain(d string) error {
	if len(d) > 253 {
		return errdefs.Invalid("dns.domain %q: longer than 253 characters", d)
	}
	for _, label := range strings.Split(d, ".") {
		if !validLabel(label) {
			return errdefs.Invalid("dns.domain %q: %q is not a valid DNS label", d, label)
		}
	}
	return nil
}

// validLabel tells whether s is an RFC 1123 host label: 1 to 63 letters,
// digits and hyphens, not starting or ending with a hyphen.
func validLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validBridgePrefix checks a bridge address: the right family, and a host
// address of its subnet (not the network address, nor IPv4's broadcast).
func validBridgePrefix(key string, p netip.Prefix, v4 bool) error {
	a := p.Addr()
	if a.Is4() != v4 || a.Is4In6() {
		return errdefs.Invalid("%s %s: wrong address family", key, p)
	}
	if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return errdefs.Invalid("%s %s: not a usable address", key, p)
	}
	if v4 && p.Bits() <= 30 && (a == p.Masked().Addr() || a == lastAddr(p)) {
		return errdefs.Invalid("%s %s: the network or broadcast address", key, p)
	}
	if !v4 && a == p.Masked().Addr() && p.Bits() < 127 {
		return errdefs.Invalid("%s %s: the subnet-router anycast address", key, p)
	}
	return nil
}

// validRange checks one DHCP pool: inside the subnet, start <= end.
func validRange(p netip.Prefix, r [2]netip.Addr) error {
	for _, a := range r {
		if !a.IsValid() || !p.Masked().Contains(a) {
			return errdefs.Invalid("ipv4.dhcp.ranges %s-%s: not inside %s", r[0], r[1], p.Masked())
		}
	}
	if r[1].Less(r[0]) {
		return errdefs.Invalid("ipv4.dhcp.ranges %s-%s: start after end", r[0], r[1])
	}
	return nil
}

// defaultRanges is the whole subnet of p minus its network address, its
// broadcast and p's own address (10.0.0.1/24 gives .2-.254, as LXD).
func defaultRanges(p netip.Prefix) [][2]netip.Addr {
	first, last := p.Masked().Addr().Next(), lastAddr(p).Prev()
	gw := p.Addr()
	var out [][2]netip.Addr
	if first.Less(gw) {
		out = append(out, [2]netip.Addr{first, gw.Prev()})
	}
	if gw.Less(last) {
		out = append(out, [2]netip.Addr{gw.Next(), last})
	}
	return out
}

// lastAddr is the highest address of p's subnet.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// The files of Dir.
const (
	fileConf   = "dnsmasq.conf"
	filePid    = "dnsmasq.pid"
	fileLeases = "dnsmasq.leases"
	fileLog    = "dnsmasq.log"
	fileDHCP   = "dhcp-hosts" // dhcp-hostsfile: MAC,IPv4,[IPv6],NAME
	fileHosts  = "hosts"      // addn-hosts: IP NAME NAME.DOMAIN
)

func (r *resolved) path(name string) string { return filepath.Join(r.Dir, name) }

// render is dnsmasq.conf. Every option is here and none on the command
// line but --keep-in-foreground and --conf-file, so the command line of a
// dnsmasq names the one config it serves (how a stale one is recognised)
// and /etc/dnsmasq.conf is never read.
func (r *resolved) render() string {
	var b strings.Builder
	o := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	o("# Written by hangard for bridge %s at every start of its dnsmasq; edits are lost.", r.Bridge)
	o("interface=%s", r.Bridge)
	o("except-interface=lo")
	o("bind-interfaces")
	// Nothing from the host: no upstream servers, no /etc/hosts.
	o("no-resolv")
	o("no-hosts")
	o("strict-order")
	o("pid-file=%s", r.path(filePid))
	o("log-facility=%s", r.path(fileLog))
	o("quiet-dhcp")
	o("quiet-dhcp6")
	o("quiet-ra")
	o("user=%s", r.User)
	o("group=%s", r.group)
	if r.DNS {
		o("domain=%s", r.Domain)
		o("local=/%s/", r.Domain)
		o("addn-hosts=%s", r.path(fileHosts))
		o("interface-name=_gateway.%s,%s", r.Domain, r.Bridge)
	} else {
		o("port=0")
	}
	if r.DHCPv4 || r.DHCPv6 || r.RA {
		o("dhcp-leasefile=%s", r.path(fileLeases))
		o("dhcp-hostsfile=%s", r.path(fileDHCP))
		o("dhcp-authoritative")
		o("dhcp-no-override")
		o("dhcp-rapid-commit")
		// No ping before offering an address: it delays every first lease
		// by seconds, and IPAM already keeps addresses apart.
		o("no-ping")
	}
	if r.DHCPv4 {
		for _, rg := range r.DHCPv4Ranges {
			o("dhcp-range=%s,%s,%s", rg[0], rg[1], leaseTime)
		}
		if r.MTU != 0 {
			o("dhcp-option-force=26,%d", r.MTU)
		}
	}
	if r.RA {
		o("enable-ra")
	}
	switch {
	case r.DHCPv6:
		for _, rg := range defaultRanges6(r.IPv6) {
			o("dhcp-range=%s,%s,%d,%s", rg[0], rg[1], r.IPv6.Bits(), leaseTime)
		}
	case r.RA:
		o("dhcp-range=::,constructor:%s,ra-stateless,ra-names", r.Bridge)
	}
	return b.String()
}

// defaultRanges6 is the IPv6 subnet of p minus its first address (the
// subnet-router anycast) and p's own address.
func defaultRanges6(p netip.Prefix) [][2]netip.Addr {
	first, last := p.Masked().Addr().Next(), lastAddr(p)
	gw := p.Addr()
	var out [][2]netip.Addr
	if first.Less(gw) {
		out = append(out, [2]netip.Addr{first, gw.Prev()})
	}
	if gw.Less(last) {
		out = append(out, [2]netip.Addr{gw.Next(), last})
	}
	return out
}

// checkReachable tells whether uid/gid can search every directory from /
// down to dir, which dnsmasq needs once it dropped to that user to reread
// the hosts files on SIGHUP. Without it, a reload would fail silently and
// names would stop changing.
func checkReachable(dir string, uid, gid int) error {
	if uid == 0 {
		return nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if !searchable(fi, uid, gid) {
			return fmt.Errorf("%s (mode %v) is not searchable by uid %d, which dnsmasq runs as", d, fi.Mode().Perm(), uid)
		}
		if d == "/" {
			return nil
		}
	}
}

// searchable tells whether uid/gid may search the directory fi.
func searchable(fi os.FileInfo, uid, gid int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	perm := fi.Mode().Perm()
	switch {
	case int(st.Uid) == uid:
		return perm&0o100 != 0
	case int(st.Gid) == gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

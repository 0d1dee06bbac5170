package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// MaxPorts bounds the ports one address may name. LXD sets no bound; one
// listener per port means "tcp:0.0.0.0:1-65535" would open 65535 sockets
// for a single device, which is a typo far more often than an intent.
const MaxPorts = 1024

// Address is a parsed proxy listen or connect value: "tcp:ADDR:PORTS" or
// "udp:ADDR:PORTS", as LXD writes them.
type Address struct {
	// Proto is "tcp" or "udp".
	Proto string
	// Addr is the IP address. The zero Addr is LXD's empty host
	// ("tcp::80"): every address of the host when listening, the
	// instance's 127.0.0.1 when connecting.
	Addr netip.Addr
	// Ports lists every port, ranges expanded, in the order written.
	Ports []uint16
}

// ParseAddress parses a proxy address. Ports are single ports and ranges
// separated by commas ("tcp:0.0.0.0:80,443,8000-8010"); an IPv6 address is
// bracketed ("tcp:[::1]:80"). Bad input is an errdefs.Invalid naming the
// value and the part that is wrong; a unix socket address is an
// errdefs.NotImplemented, since only tcp and udp are forwarded.
func ParseAddress(s string) (Address, error) {
	bad := func(format string, a ...any) error {
		return errdefs.Invalid("proxy address %q: %s", s, fmt.Sprintf(format, a...))
	}
	proto, rest, ok := strings.Cut(s, ":")
	switch {
	case s == "":
		return Address{}, errdefs.Invalid("proxy address is empty: want tcp:ADDR:PORT or udp:ADDR:PORT")
	case !ok:
		return Address{}, bad("no protocol: want tcp:ADDR:PORT or udp:ADDR:PORT")
	case proto == "unix":
		return Address{}, errdefs.NotImplemented("proxy address %q: unix sockets are not supported, only tcp and udp", s)
	case proto != "tcp" && proto != "udp":
		return Address{}, bad("unknown protocol %q: want tcp or udp", proto)
	}
	host, ports, err := net.SplitHostPort(rest)
	if err != nil {
		// SplitHostPort's own message repeats the value; say what is wanted.
		return Address{}, bad("want ADDR:PORT after the protocol, with an IPv6 address in brackets")
	}
	a := Address{Proto: proto}
	if host != "" {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return Address{}, bad("%q is not an IP address", host)
		}
		if ip.Zone() != "" {
			return Address{}, bad("IPv6 zones (%q) are not supported", host)
		}
		a.Addr = ip
	}
	if a.Ports, err = parsePorts(ports); err != nil {
		return Address{}, bad("%v", err)
	}
	return a, nil
}

// parsePorts expands "80,443,8000-8010". Its errors name the bad piece.
func parsePorts(s string) ([]uint16, error) {
	if s == "" {
		return nil, fmt.Errorf("no port")
	}
	var ports []uint16
	seen := map[uint16]bool{}
	for piece := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(piece, "-")
		first, err := parsePort(lo)
		if err != nil {
			return nil, err
		}
		last := first
		if isRange {
			if last, err = parsePort(hi); err != nil {
				return nil, err
			}
			if last < first {
				return nil, fmt.Errorf("port range %q ends before it starts", piece)
			}
		}
		if len(ports)+int(last-first)+1 > MaxPorts {
			return nil, fmt.Errorf("more than %d ports", MaxPorts)
		}
		for p := int(first); p <= int(last); p++ {
			if seen[uint16(p)] {
				return nil, fmt.Errorf("port %d is given twice", p)
			}
			seen[uint16(p)] = true
			ports = append(ports, uint16(p))
		}
	}
	return ports, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// ParsePair parses a proxy device's listen and connect values and checks
// that they fit together; errors name the key ("listen", "connect").
func ParsePair(listen, connect string) (Address, Address, error) {
	l, err := ParseAddress(listen)
	if err != nil {
		return Address{}, Address{}, fmt.Errorf("listen: %w", err)
	}
	c, err := ParseAddress(connect)
	if err != nil {
		return Address{}, Address{}, fmt.Errorf("connect: %w", err)
	}
	if err := ValidatePair(l, c); err != nil {
		return Address{}, Address{}, err
	}
	return l, c, nil
}

// ValidatePair checks that a listen and a connect address can be
// forwarded: the same protocol, and either one connect port (every listen
// port goes to it) or as many as listen ports (the i-th to the i-th).
// LXD refuses only more connect ports than listen ports; fewer but more
// than one leaves some listen ports with no counterpart, so it is refused
// here too.
func ValidatePair(listen, connect Address) error {
	for _, x := range []struct {
		key string
		a   Address
	}{{"listen", listen}, {"connect", connect}} {
		if x.a.Proto != "tcp" && x.a.Proto != "udp" {
			return errdefs.Invalid("%s: unknown protocol %q: want tcp or udp", x.key, x.a.Proto)
		}
		if len(x.a.Ports) == 0 {
			return errdefs.Invalid("%s: no port", x.key)
		}
	}
	if listen.Proto != connect.Proto {
		return errdefs.Invalid("listen is %s but connect is %s: both must use the same protocol", listen.Proto, connect.Proto)
	}
	if n := len(connect.Ports); n != 1 && n != len(listen.Ports) {
		return errdefs.Invalid("connect has %d ports but listen has %d: connect needs one port or as many as listen", n, len(listen.Ports))
	}
	return nil
}

// String writes a in the syntax ParseAddress reads, runs of consecutive
// ports as ranges.
func (a Address) String() string {
	var b strings.Builder
	b.WriteString(a.Proto)
	b.WriteByte(':')
	switch {
	case !a.Addr.IsValid():
	case a.Addr.Is6():
		b.WriteString("[" + a.Addr.String() + "]")
	default:
		b.WriteString(a.Addr.String())
	}
	b.WriteByte(':')
	for i := 0; i < len(a.Ports); {
		j := i
		for j+1 < len(a.Ports) && int(a.Ports[j+1]) == int(a.Ports[j])+1 {
			j++
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(a.Ports[i])))
		if j > i {
			b.WriteString("-" + strconv.Itoa(int(a.Ports[j])))
		}
		i = j + 1
	}
	return b.String()
}

// hostport is the i-th socket address of a, its address with its i-th
// port, as package net writes it.
func (a Address) hostport(i int) string {
	host := ""
	if a.Addr.IsValid() {
		host = a.Addr.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(int(a.Ports[i])))
}

// endpoint is hostport with the protocol in front, for messages.
func (a Address) endpoint(i int) string { return a.Proto + ":" + a.hostport(i) }

package dnsmasq

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Lease types, as LXD's /1.0/networks/NAME/leases names them.
const (
	LeaseStatic  = "static"  // the address is the host's reservation
	LeaseDynamic = "dynamic" // from a dynamic range (or SLAAC-named)
)

// Lease is one DHCP lease of the leases file.
type Lease struct {
	// Hostname is the lease's name: the reservation's, else what the
	// client sent; empty when neither.
	Hostname string
	// MAC is the client's hardware address. DHCPv6 leases carry none: it
	// is read from the client's DUID when that embeds an Ethernet address
	// (DUID-LLT, DUID-LL), else taken from the reservation of the address.
	MAC string
	// Address is the leased address.
	Address netip.Addr
	// Type is LeaseStatic when MAC and Address match a reservation of the
	// current hosts, else LeaseDynamic.
	Type string
	// Expires is when the lease ends; zero for an infinite lease.
	Expires time.Time
	// ClientID is the DHCPv4 client identifier or the DHCPv6 client DUID,
	// in dnsmasq's colon-separated hex; empty when the client sent none.
	ClientID string
	// IAID is the DHCPv6 identity association; 0 for DHCPv4.
	IAID uint32
}

// readLeases parses the leases file at path; a missing file (no client
// yet, or DHCP off) is no leases.
func readLeases(path string, hosts []Host) ([]Lease, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read leases: %w", err)
	}
	defer f.Close()
	leases, err := parseLeases(f)
	if err != nil {
		return nil, fmt.Errorf("read leases %s: %w", path, err)
	}
	classify(leases, hosts)
	return leases, nil
}

// parseLeases parses dnsmasq's leases file. IPv4 lines are
//
//	EXPIRES MAC ADDRESS HOSTNAME CLIENTID
//
// then, with DHCPv6, a line "duid SERVERDUID" and IPv6 lines
//
//	EXPIRES [T]IAID ADDRESS HOSTNAME CLIENTDUID
//
// where "*" stands for none, a MAC of another hardware type than
// Ethernet is prefixed with its type ("20-..."), and a T marks a
// temporary address. Lines of other kinds (agent-info, vendorclass, ...,
// which newer dnsmasq appends) are skipped. dnsmasq rewrites the file in
// place, so a reader may catch it part-written: a malformed line is an
// error, and the caller may read again.
func parseLeases(r io.Reader) ([]Lease, error) {
	var out []Lease
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		exp, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue // "duid ...", "agent-info ...": not a lease
		}
		if len(f) < 4 {
			return nil, fmt.Errorf("line %d: %d fields, want at least 4", n, len(f))
		}
		l := Lease{}
		if exp != 0 {
			l.Expires = time.Unix(int64(exp), 0)
		}
		if f[3] != "*" {
			l.Hostname = f[3]
		}
		if len(f) > 4 && f[4] != "*" {
			l.ClientID = f[4]
		}
		if l.Address, err = netip.ParseAddr(f[2]); err != nil {
			return nil, fmt.Errorf("line %d: address: %w", n, err)
		}
		if l.Address.Is4() {
			l.MAC = parseHW(f[1])
		} else {
			iaid, err := strconv.ParseUint(strings.TrimPrefix(f[1], "T"), 10, 32)
			if err != nil {
				return nil, fmt.Errorf("line %d: IAID %q: %w", n, f[1], err)
			}
			l.IAID = uint32(iaid)
			l.MAC = macFromDUID(l.ClientID)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// parseHW returns the Ethernet MAC of a leases-file hardware address, or
// the field as written for another hardware type.
func parseHW(s string) string {
	if hw, err := net.ParseMAC(s); err == nil && len(hw) == 6 {
		return hw.String()
	}
	return s
}

// macFromDUID extracts the Ethernet address of a DUID-LLT (type 1: type,
// hardware type, time, address) or DUID-LL (type 3: type, hardware type,
// address); "" for other DUIDs.
func macFromDUID(duid string) string {
	var b []byte
	for _, h := range strings.Split(duid, ":") {
		v, err := strconv.ParseUint(h, 16, 8)
		if err != nil {
			return ""
		}
		b = append(b, byte(v))
	}
	var hw []byte
	switch {
	case len(b) == 14 && b[0] == 0 && b[1] == 1 && b[2] == 0 && b[3] == 1:
		hw = b[8:]
	case len(b) == 10 && b[0] == 0 && b[1] == 3 && b[2] == 0 && b[3] == 1:
		hw = b[4:]
	default:
		return ""
	}
	return net.HardwareAddr(hw).String()
}

// classify sets each lease's Type (and fills in the MAC of a DHCPv6 lease
// that has none) from the reservations of hosts.
func classify(leases []Lease, hosts []Host) {
	byAddr := map[netip.Addr]Host{}
	for _, h := range hosts {
		for _, a := range []netip.Addr{h.IPv4, h.IPv6} {
			if a.IsValid() {
				byAddr[a] = h
			}
		}
	}
	for i := range leases {
		l := &leases[i]
		h, ok := byAddr[l.Address]
		if ok && l.MAC == "" {
			l.MAC = h.MAC
		}
		if ok && h.MAC != "" && h.MAC == l.MAC {
			l.Type = LeaseStatic
		} else {
			l.Type = LeaseDynamic
		}
	}
}

package dnsmasq

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Host is one instance NIC on the bridge: its name answers in DNS with its
// static addresses, and DHCP gives a client with its MAC those addresses
// (a static reservation) and that name.
type Host struct {
	// Name is the instance name: an RFC 1123 label.
	Name string
	// MAC is the NIC's Ethernet address; empty: DNS only, no reservation.
	MAC string
	// IPv4 and IPv6 are its static addresses, inside the bridge's
	// subnets; zero: none (DHCP then leases it a dynamic one, named Name).
	IPv4, IPv6 netip.Addr
}

// checkHosts validates hosts against the network and returns them with
// their MACs in canonical form. Bad names, MACs and addresses are
// ErrInvalidArgument; a MAC or address given twice is ErrConflict.
func (r *resolved) checkHosts(hosts []Host) ([]Host, error) {
	out := make([]Host, 0, len(hosts))
	macs := map[string]string{}
	addrs := map[netip.Addr]string{}
	for _, h := range hosts {
		if !validLabel(h.Name) {
			return nil, errdefs.Invalid("host name %q: not a valid DNS label", h.Name)
		}
		if h.MAC != "" {
			hw, err := net.ParseMAC(h.MAC)
			if err != nil || len(hw) != 6 {
				return nil, errdefs.Invalid("host %s: hwaddr %q: not an Ethernet address", h.Name, h.MAC)
			}
			if hw[0]&1 != 0 || [6]byte(hw) == [6]byte{} {
				return nil, errdefs.Invalid("host %s: hwaddr %q: multicast or zero", h.Name, h.MAC)
			}
			h.MAC = hw.String()
			if other, ok := macs[h.MAC]; ok {
				return nil, errdefs.Conflict("host %s: hwaddr %s already used by %s", h.Name, h.MAC, other)
			}
			macs[h.MAC] = h.Name
		}
		for _, a := range []struct {
			key    string
			addr   netip.Addr
			subnet netip.Prefix
			v4     bool
		}{{"ipv4.address", h.IPv4, r.IPv4, true}, {"ipv6.address", h.IPv6, r.IPv6, false}} {
			if !a.addr.IsValid() {
				continue
			}
			if a.addr.Is4() != a.v4 || a.addr.Is4In6() {
				return nil, errdefs.Invalid("host %s: %s %s: wrong address family", h.Name, a.key, a.addr)
			}
			if !a.subnet.IsValid() {
				return nil, errdefs.Invalid("host %s: %s %s: the network has no such subnet", h.Name, a.key, a.addr)
			}
			if !a.subnet.Masked().Contains(a.addr) {
				return nil, errdefs.Invalid("host %s: %s %s: outside the subnet %s", h.Name, a.key, a.addr, a.subnet.Masked())
			}
			if a.addr == a.subnet.Masked().Addr() || (a.v4 && a.addr == lastAddr(a.subnet)) {
				return nil, errdefs.Invalid("host %s: %s %s: the network or broadcast address", h.Name, a.key, a.addr)
			}
			if a.addr == a.subnet.Addr() {
				return nil, errdefs.Conflict("host %s: %s %s: the bridge's own address", h.Name, a.key, a.addr)
			}
			if other, ok := addrs[a.addr]; ok {
				return nil, errdefs.Conflict("host %s: %s %s already used by %s", h.Name, a.key, a.addr, other)
			}
			addrs[a.addr] = h.Name
		}
		out = append(out, h)
	}
	return out, nil
}

// renderDHCPHosts is the dhcp-hostsfile: one reservation per host with a
// MAC. dnsmasq gives that MAC the addresses listed and names its lease
// Name whatever hostname the client sends.
func renderDHCPHosts(hosts []Host) string {
	var b strings.Builder
	for _, h := range hosts {
		if h.MAC == "" {
			continue
		}
		b.WriteString(h.MAC)
		if h.IPv4.IsValid() {
			b.WriteString("," + h.IPv4.String())
		}
		if h.IPv6.IsValid() {
			b.WriteString(",[" + h.IPv6.String() + "]")
		}
		b.WriteString("," + h.Name + "\n")
	}
	return b.String()
}

// renderAddnHosts is the addn-hosts file: every static address of every
// host under NAME and NAME.DOMAIN, so a statically configured instance
// resolves even if it never asks DHCP.
func renderAddnHosts(hosts []Host, domain string) string {
	var b strings.Builder
	for _, h := range hosts {
		for _, a := range []netip.Addr{h.IPv4, h.IPv6} {
			if a.IsValid() {
				fmt.Fprintf(&b, "%s %s %s.%s\n", a, h.Name, h.Name, domain)
			}
		}
	}
	return b.String()
}

// writeHosts replaces both hosts files, each atomically (a reader sees
// the old file or the new one). They are not synced: Start rewrites them
// from the caller's records, so a crash loses nothing that matters.
func (r *resolved) writeHosts(hosts []Host) error {
	if err := writeAtomic(r.path(fileDHCP), renderDHCPHosts(hosts)); err != nil {
		return err
	}
	return writeAtomic(r.path(fileHosts), renderAddnHosts(hosts, r.Domain))
}

// writeAtomic writes data to a temporary file beside path, readable by
// dnsmasq's unprivileged user, and renames it over path.
func writeAtomic(path, data string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.WriteString(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

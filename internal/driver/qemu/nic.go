package qemu

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

// A VM's NIC is a virtio-net device whose backend is the tap the network
// layer made (driver.NIC.HostName: persistent, on the bridge, up). QEMU
// attaches to the tap by name (script=no: the tap is set up already), so
// it must run in the tap's network namespace, the daemon's. vhost-net is
// used when /dev/vhost-net exists: the kernel then moves the packets, not
// QEMU's main loop.
//
// QEMU ids derive from the guest name, so a NIC can be found again by
// name (DetachNIC, after a daemon restart too): netdev "net-NAME",
// device "nic-NAME".

// nicNetdevID and nicDeviceID are a NIC's QEMU ids.
func nicNetdevID(name string) string { return "net-" + name }
func nicDeviceID(name string) string { return "nic-" + name }

// validIfName reports whether s is a Linux interface name that is also
// safe in QEMU's comma-separated options and ids: at most 15 bytes of
// letters, digits, '_', '-' and '.', starting with a letter or digit.
func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case (r == '_' || r == '-' || r == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkNIC says what is wrong with one NIC, naming the field.
func checkNIC(n driver.NIC) error {
	if !validIfName(n.Name) {
		return errdefs.Invalid("nic name %q: want 1 to 15 letters, digits, '_', '-' or '.'", n.Name)
	}
	if n.Name == "lo" {
		return errdefs.Invalid("nic name %q: the guest's loopback has that name", n.Name)
	}
	if !validIfName(n.HostName) {
		return errdefs.Invalid("nic %s: host_name %q: want 1 to 15 letters, digits, '_', '-' or '.'", n.Name, n.HostName)
	}
	mac, err := net.ParseMAC(n.Hwaddr)
	if err != nil || len(mac) != 6 {
		return errdefs.Invalid("nic %s: hwaddr %q is not a MAC address (xx:xx:xx:xx:xx:xx)", n.Name, n.Hwaddr)
	}
	if mac[0]&1 != 0 {
		return errdefs.Invalid("nic %s: hwaddr %s is a multicast address", n.Name, n.Hwaddr)
	}
	if string(mac) == string(make([]byte, 6)) {
		return errdefs.Invalid("nic %s: hwaddr %s is all zeros", n.Name, n.Hwaddr)
	}
	// virtio-net's host_mtu range.
	if n.MTU != 0 && (n.MTU < 68 || n.MTU > 65535) {
		return errdefs.Invalid("nic %s: mtu %d: want 68 to 65535", n.Name, n.MTU)
	}
	seen := map[netip.Addr]bool{}
	for _, p := range n.Addresses {
		if !p.IsValid() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			return errdefs.Invalid("nic %s: address %q is not an IPv4 or IPv6 prefix", n.Name, p)
		}
		if a := p.Addr(); a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
			return errdefs.Invalid("nic %s: address %s cannot be an interface's address", n.Name, p)
		}
		if seen[p.Addr()] {
			return errdefs.Invalid("nic %s: address %s given twice", n.Name, p.Addr())
		}
		seen[p.Addr()] = true
	}
	if g := n.Gateway4; g.IsValid() && !g.Is4() {
		return errdefs.Invalid("nic %s: IPv4 gateway %s is not an IPv4 address", n.Name, g)
	}
	if g := n.Gateway6; g.IsValid() && (!g.Is6() || g.Is4In6()) {
		return errdefs.Invalid("nic %s: IPv6 gateway %s is not an IPv6 address", n.Name, g)
	}
	for _, ns := range n.Nameservers {
		if !ns.IsValid() || ns.IsUnspecified() {
			return errdefs.Invalid("nic %s: nameserver %q is not an address", n.Name, ns)
		}
	}
	if d := n.SearchDomain; d != "" && !validDomain(d) {
		return errdefs.Invalid("nic %s: search domain %q is not a domain name", n.Name, d)
	}
	return nil
}

// validDomain reports whether s is a DNS name: dot-separated labels of
// letters, digits and inner '-', at most 253 bytes.
func validDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// checkNICs checks every NIC and that no two share a name, tap or MAC.
func checkNICs(nics []driver.NIC) error {
	names, hosts, macs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, n := range nics {
		if err := checkNIC(n); err != nil {
			return err
		}
		mac, _ := net.ParseMAC(n.Hwaddr)
		switch {
		case names[n.Name]:
			return errdefs.Invalid("nic name %s given to two NICs", n.Name)
		case hosts[n.HostName]:
			return errdefs.Invalid("nic %s: host_name %s given to two NICs", n.Name, n.HostName)
		case macs[mac.String()]:
			return errdefs.Invalid("nic %s: hwaddr %s given to two NICs", n.Name, n.Hwaddr)
		}
		names[n.Name], hosts[n.HostName], macs[mac.String()] = true, true, true
	}
	return nil
}

// vhostNet reports whether QEMU can hand a tap's packets to the kernel's
// vhost-net (the module is loaded and its device exists).
func vhostNet() bool {
	_, err := os.Stat("/dev/vhost-net")
	return err == nil
}

// nicNetdev is the -netdev (and netdev_add) value of a NIC's backend.
func nicNetdev(n driver.NIC, vhost bool) string {
	s := "tap,id=" + nicNetdevID(n.Name) + ",ifname=" + n.HostName + ",script=no,downscript=no"
	if vhost {
		s += ",vhost=on"
	}
	return s
}

// nicDevice is the -device value of a NIC: driver is virtio-net-device
// (microvm's MMIO transport) or virtio-net-pci; extra are more
// properties (a PCI bus).
func nicDevice(driverName string, n driver.NIC, extra string) string {
	mac, _ := net.ParseMAC(n.Hwaddr)
	s := driverName + ",id=" + nicDeviceID(n.Name) + ",netdev=" + nicNetdevID(n.Name) + ",mac=" + mac.String()
	if n.MTU > 0 {
		// The guest driver takes this MTU as its default and maximum.
		s += ",host_mtu=" + strconv.Itoa(n.MTU)
	}
	return s + extra
}

// agentNICs is what the guest agent needs of the NICs.
func agentNICs(nics []driver.NIC) []vmagent.NIC {
	out := make([]vmagent.NIC, 0, len(nics))
	for _, n := range nics {
		out = append(out, agentNIC(n))
	}
	return out
}

func agentNIC(n driver.NIC) vmagent.NIC {
	mac, _ := net.ParseMAC(n.Hwaddr)
	return vmagent.NIC{
		Name: n.Name, Hwaddr: mac.String(), MTU: n.MTU, Addresses: n.Addresses,
		Gateway4: n.Gateway4, Gateway6: n.Gateway6,
		Nameservers: n.Nameservers, SearchDomain: n.SearchDomain,
	}
}

// errNICName wraps a NIC error with its name.
func errNIC(name string, err error) error {
	return fmt.Errorf("nic %s: %w", name, err)
}

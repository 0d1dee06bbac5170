package qemu

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/netdev"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

// A VM's NIC is a virtio-net-pci device whose backend is the tap the
// network layer made (driver.NIC.HostName: persistent, on the bridge,
// up). QEMU attaches to the tap by name (script=no: the tap is set up
// already), so it must run in the tap's network namespace, the daemon's.
// vhost-net is used under KVM when /dev/vhost-net opens (the kernel then
// moves the packets, not QEMU's main loop); under TCG it cannot work
// (no ioeventfd), and this host has none.
//
// Every NIC sits on a PCIe root port of its own, so that any NIC can be
// unplugged, and each VM boots with hotplugPorts empty ports for NICs
// plugged while it runs (AttachNIC). microvm has no hotplug on its MMIO
// transport, so it runs with pcie=on for its NICs alone (disk, serial
// port stay MMIO); its ACPI does not hand PCIe hotplug to the guest, so
// the kernel is told to take it (pcie_ports=native). Which NIC is on
// which port is kept in vm.json: a restored VM must have the same devices
// at the same places as the one saved.
//
// A macvlan NIC's host side is a macvtap instead (LXD's way): a
// macvlan on the host NIC with a character device that is the guest's
// port. QEMU cannot open it by name; the driver opens it (netdev's
// OpenMacvtap, which finds this namespace's device) and hands QEMU the
// descriptor: inherited at start (-netdev tap,fd=N: N is 4 and up, 3
// being the saved state's place), passed with getfd for a hotplug. QEMU
// holds it from then on, so a VM keeps its NIC over a daemon restart; the
// link's name derives from the device as a tap's does.
//
// QEMU ids derive from the guest name, so a NIC can be found again by
// name (DetachNIC, after a daemon restart too): netdev "net-NAME",
// device "nic-NAME", on port "nicportN".

// hotplugPorts is how many free root ports a VM boots with. An unplugged
// NIC's port is free again.
const hotplugPorts = 4

// nicNetdevID, nicDeviceID and nicPortID are the QEMU ids of a NIC's
// backend, its device and root port i.
func nicNetdevID(name string) string { return "net-" + name }
func nicDeviceID(name string) string { return "nic-" + name }
func nicPortID(i int) string         { return "nicport" + strconv.Itoa(i) }

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

// checkTap checks that a NIC's tap or macvtap exists in the daemon's
// network namespace, which QEMU shares (given a tap name that is not
// there, QEMU would make a tap of its own, on no bridge), and reports
// whether it is a macvtap.
func checkTap(n driver.NIC) (macvtap bool, err error) {
	l, err := netlink.LinkByName(n.HostName)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return false, errdefs.NotFound("nic %s: host_name %s: no such tap", n.Name, n.HostName)
		}
		return false, fmt.Errorf("nic %s: host_name %s: %w", n.Name, n.HostName, err)
	}
	if _, ok := l.(*netlink.Macvtap); ok {
		return true, nil
	}
	if t, ok := l.(*netlink.Tuntap); !ok || t.Mode != netlink.TUNTAP_MODE_TAP {
		return false, errdefs.Invalid("nic %s: host_name %s is a %s link, not a tap or macvtap", n.Name, n.HostName, l.Type())
	}
	return false, nil
}

// macvtapFDBase is the descriptor number QEMU gets the first macvtap at
// (launch: 3 is the saved state's, present or not).
const macvtapFDBase = 4

// openMacvtaps opens the character devices of the NICs whose host side
// is a macvtap (in nics' order) and returns them with, by NIC name, the
// descriptor number each gets in QEMU. The caller closes the files once
// QEMU has its copies.
func openMacvtaps(nics []driver.NIC, macvtap map[string]bool) ([]*os.File, map[string]int, error) {
	var files []*os.File
	fds := map[string]int{}
	for _, n := range nics {
		if !macvtap[n.Name] {
			continue
		}
		f, err := netdev.OpenMacvtap(n.HostName)
		if err != nil {
			closeAll(files)
			return nil, nil, fmt.Errorf("nic %s: %w", n.Name, err)
		}
		fds[n.Name] = macvtapFDBase + len(files)
		files = append(files, f)
	}
	return files, fds, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// vhostNet reports whether QEMU can hand a tap's packets to the kernel's
// vhost-net: under KVM (vhost needs its ioeventfds), when the device
// opens.
func vhostNet(kvm bool) bool {
	if !kvm {
		return false
	}
	f, err := os.OpenFile("/dev/vhost-net", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// nicLayout places NICs on root ports: slot i holds the name of the NIC
// on port i, "" for a free port. A restored VM keeps the layout it was
// saved with (saved) when it has the same NICs; otherwise the NICs come
// in order, then hotplugPorts free ports.
func nicLayout(nics []driver.NIC, saved []string) []string {
	if saved != nil {
		want := map[string]bool{}
		for _, n := range nics {
			want[n.Name] = true
		}
		have := 0
		for _, name := range saved {
			if name != "" {
				if !want[name] {
					have = -1
					break
				}
				have++
			}
		}
		if have == len(nics) {
			return saved
		}
	}
	slots := make([]string, 0, len(nics)+hotplugPorts)
	for _, n := range nics {
		slots = append(slots, n.Name)
	}
	for range hotplugPorts {
		slots = append(slots, "")
	}
	return slots
}

// nicArgs is the QEMU command line of the root ports and the NICs on
// them; fds are the descriptors of NICs on a macvtap.
func nicArgs(nics []driver.NIC, slots []string, vhost bool, fds map[string]int) []string {
	byName := map[string]driver.NIC{}
	for _, n := range nics {
		byName[n.Name] = n
	}
	var args []string
	for i, name := range slots {
		// Chassis numbers tell the ports apart; 0 is no chassis.
		args = append(args, "-device", "pcie-root-port,id="+nicPortID(i)+",bus=pcie.0,chassis="+strconv.Itoa(i+1))
		if n, ok := byName[name]; ok {
			args = append(args, "-netdev", nicNetdev(n, vhost, fds), "-device", nicDevice(n, ",bus="+nicPortID(i)))
		}
	}
	return args
}

// nicNetdev is the -netdev value of a NIC's backend: its tap by name,
// or the descriptor of its macvtap (fds).
func nicNetdev(n driver.NIC, vhost bool, fds map[string]int) string {
	s := "tap,id=" + nicNetdevID(n.Name) + ",ifname=" + n.HostName + ",script=no,downscript=no"
	if fd, ok := fds[n.Name]; ok {
		s = "tap,id=" + nicNetdevID(n.Name) + ",fd=" + strconv.Itoa(fd)
	}
	if vhost {
		s += ",vhost=on"
	}
	return s
}

// nicDevice is the -device value of a NIC; extra are more properties
// (its bus).
func nicDevice(n driver.NIC, extra string) string {
	mac, _ := net.ParseMAC(n.Hwaddr)
	s := "virtio-net-pci,id=" + nicDeviceID(n.Name) + ",netdev=" + nicNetdevID(n.Name) + ",mac=" + mac.String()
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

package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

// The daemon allocated every address (its IPAM keeps them unique), so the
// agent configures them itself, as it would be done for a container:
// an image with no DHCP client is reachable as soon as the workload
// starts. Interfaces are found by MAC, since the kernel's names follow
// probe order, not the daemon's.

// nicWait bounds how long the agent waits for a NIC's device to appear:
// at boot the virtio_net module has probed it already; a NIC plugged
// into a running VM takes a PCI hotplug first.
const nicWait = 20 * time.Second

// netConfig remembers the NICs configured so far, so that a NIC plugged
// later rewrites resolv.conf with every NIC's nameservers.
type netConfig struct {
	mu   sync.Mutex
	nics []vmagent.NIC
}

// setUp brings loopback up and configures nics, at boot once the root is
// mounted (resolv.conf is written in it).
func (c *netConfig) setUp(nics []vmagent.NIC) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if lo, err := netlink.LinkByName("lo"); err == nil {
		if err := netlink.LinkSetUp(lo); err != nil {
			return fmt.Errorf("loopback up: %w", err)
		}
	}
	if len(nics) == 0 {
		return nil
	}
	links, err := waitLinks(nics)
	if err != nil {
		return err
	}
	if err := renameLinks(nics, links); err != nil {
		return err
	}
	for i, n := range nics {
		if err := configureLink(links[i], n); err != nil {
			return err
		}
	}
	c.nics = append(c.nics[:0:0], nics...)
	writeResolvConf(c.nics)
	return nil
}

// add configures one NIC plugged into the running VM. A NIC of the same
// name configured before (unplugged since) is replaced.
func (c *netConfig) add(n vmagent.NIC) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	links, err := waitLinks([]vmagent.NIC{n})
	if err != nil {
		return err
	}
	if err := renameLinks([]vmagent.NIC{n}, links); err != nil {
		return err
	}
	if err := configureLink(links[0], n); err != nil {
		return err
	}
	kept := c.nics[:0]
	for _, o := range c.nics {
		if o.Name != n.Name {
			kept = append(kept, o)
		}
	}
	c.nics = append(kept, n)
	writeResolvConf(c.nics)
	return nil
}

// waitLinks returns the link of each NIC, by MAC, waiting for devices
// still being probed.
func waitLinks(nics []vmagent.NIC) ([]netlink.Link, error) {
	macs := make([]net.HardwareAddr, len(nics))
	for i, n := range nics {
		mac, err := net.ParseMAC(n.Hwaddr)
		if err != nil {
			return nil, fmt.Errorf("NIC %s: %w", n.Name, err)
		}
		macs[i] = mac
	}
	deadline := time.Now().Add(nicWait)
	for {
		all, err := netlink.LinkList()
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, fmt.Errorf("list links: %w", err)
		}
		// An interrupted dump (a link changed meanwhile: the one
		// awaited, maybe) is looked at all the same and tried again.
		found := make([]netlink.Link, len(nics))
		missing := ""
		for i, mac := range macs {
			for _, l := range all {
				// A VLAN or macvlan made on a NIC may share its MAC;
				// the NIC is the device itself.
				if l.Type() == "device" && sameMAC(l.Attrs().HardwareAddr, mac) {
					found[i] = l
					break
				}
			}
			if found[i] == nil && missing == "" {
				missing = nics[i].Name + " (" + nics[i].Hwaddr + ")"
			}
		}
		if missing == "" {
			return found, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("NIC %s: no network device with that MAC appeared in %v", missing, nicWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sameMAC(a, b net.HardwareAddr) bool {
	return len(a) == len(b) && strings.EqualFold(a.String(), b.String())
}

// renameLinks gives each link its NIC's name. Names may be swapped (the
// kernel called the second device eth0, and the first NIC is eth0), so
// links that must move first take a temporary name.
func renameLinks(nics []vmagent.NIC, links []netlink.Link) error {
	var moving []int
	for i, n := range nics {
		if links[i].Attrs().Name != n.Name {
			moving = append(moving, i)
		}
	}
	for k, i := range moving {
		// A link must be down to be renamed; a fresh device is.
		if links[i].Attrs().Flags&net.FlagUp != 0 {
			if err := netlink.LinkSetDown(links[i]); err != nil {
				return fmt.Errorf("NIC %s: set down to rename: %w", nics[i].Name, err)
			}
		}
		tmp := fmt.Sprintf("hgtmp%d", k)
		if err := netlink.LinkSetName(links[i], tmp); err != nil {
			return fmt.Errorf("NIC %s: rename %s: %w", nics[i].Name, links[i].Attrs().Name, err)
		}
		links[i].Attrs().Name = tmp
	}
	for _, i := range moving {
		if err := netlink.LinkSetName(links[i], nics[i].Name); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("NIC %s: another interface of the guest has that name", nics[i].Name)
			}
			return fmt.Errorf("NIC %s: rename: %w", nics[i].Name, err)
		}
		links[i].Attrs().Name = nics[i].Name
	}
	return nil
}

// configureLink sets the MTU, brings the link up and adds the addresses
// and default routes. What is there already is kept (a NIC configured
// twice is not an error).
func configureLink(l netlink.Link, n vmagent.NIC) error {
	if n.MTU > 0 && l.Attrs().MTU != n.MTU {
		if err := netlink.LinkSetMTU(l, n.MTU); err != nil {
			return fmt.Errorf("NIC %s: MTU %d: %w", n.Name, n.MTU, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("NIC %s: up: %w", n.Name, err)
	}
	for _, p := range n.Addresses {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			// The address is the daemon's to give and unique on the
			// network: skipping duplicate address detection makes it
			// usable at once rather than after a second or more.
			a.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("NIC %s: address %s: %w", n.Name, p, err)
		}
	}
	for _, gw := range []netip.Addr{n.Gateway4, n.Gateway6} {
		if !gw.IsValid() {
			continue
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()}
		if gw.Is4() {
			r.Dst = &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		} else {
			r.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("NIC %s: default route via %s: %w", n.Name, gw, err)
		}
	}
	return nil
}

// writeResolvConf writes /etc/resolv.conf from the NICs' nameservers and
// search domains. A symlink there belongs to the image's own resolver
// (systemd-resolved, resolvconf): it is left alone, as is a read-only
// root. Failures are logged, not fatal: the network works without names.
func writeResolvConf(nics []vmagent.NIC) {
	content := resolvConf(nics)
	if content == "" {
		return
	}
	if st, err := os.Lstat("/etc/resolv.conf"); err == nil && st.Mode()&os.ModeSymlink != 0 {
		logf("/etc/resolv.conf is a symlink: the image manages it, left alone")
		return
	}
	_ = os.MkdirAll("/etc", 0o755)
	if err := os.WriteFile("/etc/resolv.conf", []byte(content), 0o644); err != nil {
		logf("write /etc/resolv.conf: %v", err)
	}
}

// resolvConf is the resolv.conf of nics: every nameserver once, in NIC
// order (the resolver uses the first three), and the search domains.
func resolvConf(nics []vmagent.NIC) string {
	var b strings.Builder
	b.WriteString("# written by hangar-agent\n")
	seen := map[string]bool{}
	var search []string
	some := false
	for _, n := range nics {
		for _, ns := range n.Nameservers {
			if !seen[ns.String()] {
				seen[ns.String()] = true
				fmt.Fprintf(&b, "nameserver %s\n", ns)
				some = true
			}
		}
		if d := n.SearchDomain; d != "" && !seen["search "+d] {
			seen["search "+d] = true
			search = append(search, d)
		}
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
		some = true
	}
	if !some {
		return ""
	}
	return b.String()
}

// netState lists the guest's interfaces with their addresses and counters.
func netState() (vmagent.NetState, error) {
	var links []netlink.Link
	var addrs []netlink.Addr
	var err error
	// A dump that a change interrupted (a NIC being plugged) is taken
	// again; the last one is used as it is.
	for try := 0; try < 3; try++ {
		links, err = netlink.LinkList()
		if err == nil {
			addrs, err = netlink.AddrList(nil, netlink.FAMILY_ALL)
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return vmagent.NetState{}, fmt.Errorf("list interfaces: %w", err)
	}
	byLink := map[int][]vmagent.Address{}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		ones, _ := a.Mask.Size()
		out := vmagent.Address{Family: "inet6", Address: ip.String(), PrefixLen: ones, Scope: "global"}
		if ip.Is4() {
			out.Family = "inet"
		}
		switch {
		case ip.IsLoopback():
			out.Scope = "local"
		case ip.IsLinkLocalUnicast():
			out.Scope = "link"
		}
		byLink[a.LinkIndex] = append(byLink[a.LinkIndex], out)
	}
	st := vmagent.NetState{Interfaces: make([]vmagent.Interface, 0, len(links))}
	for _, l := range links {
		at := l.Attrs()
		ifc := vmagent.Interface{
			Name: at.Name, Hwaddr: at.HardwareAddr.String(), MTU: at.MTU,
			Up: at.Flags&net.FlagUp != 0, Type: "broadcast",
			Addresses: byLink[at.Index],
		}
		if ifc.Addresses == nil {
			ifc.Addresses = []vmagent.Address{}
		}
		switch {
		case at.Flags&net.FlagLoopback != 0:
			ifc.Type = "loopback"
		case at.Flags&net.FlagPointToPoint != 0:
			ifc.Type = "point-to-point"
		}
		if s := at.Statistics; s != nil {
			ifc.BytesReceived, ifc.BytesSent = int64(s.RxBytes), int64(s.TxBytes)
			ifc.PacketsReceived, ifc.PacketsSent = int64(s.RxPackets), int64(s.TxPackets)
			ifc.ErrorsReceived, ifc.ErrorsSent = int64(s.RxErrors), int64(s.TxErrors)
			ifc.DroppedReceived, ifc.DroppedSent = int64(s.RxDropped), int64(s.TxDropped)
		}
		st.Interfaces = append(st.Interfaces, ifc)
	}
	return st, nil
}

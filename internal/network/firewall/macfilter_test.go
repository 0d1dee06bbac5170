package firewall

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestMACFilterTraffic sends real frames through a MAC filter. Three
// namespaces of the test's own:
//
//	host (bridge br0 10.99.0.1/24, fd99::1/64: the Firewall; whoami on :81)
//	  | v1                      | v2
//	i1 (10.99.0.2, fd99::2)    i2 (10.99.0.3: whoami on :80)
//
// i1's port v1 is filtered to i1's MAC. i1 changes its MAC as an instance
// that owns its namespace can, and reaches neither its neighbour nor the
// host until it takes its own back; with the filter gone, or on another
// port, or naming the new MAC, the same MAC passes (so the drops are the
// filter's). Frames that keep i1's MAC in the Ethernet header but claim
// another in ARP or neighbour discovery never reach the host's neighbour
// table. As TestTraffic, with bridge-nf-call off and on: the bridge family
// sees bridged frames either way.
func TestMACFilterTraffic(t *testing.T) {
	variants := []string{"bridge-nf-call off"}
	if _, err := os.Stat("/proc/sys/net/bridge"); err == nil {
		variants = append(variants, "bridge-nf-call on")
	}
	for _, v := range variants {
		t.Run(v, func(t *testing.T) { testMACFilterTraffic(t, strings.HasSuffix(v, "on")) })
	}
}

func testMACFilterTraffic(t *testing.T, brNetfilter bool) {
	host, i1, i2 := newNetNS(t), newNetNS(t), newNetNS(t)
	if _, err := os.Stat("/proc/sys/net/bridge"); err == nil {
		inNS(t, host, func() {
			v := map[bool][]byte{false: []byte("0\n"), true: []byte("1\n")}[brNetfilter]
			for _, p := range []string{"/proc/sys/net/bridge/bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-ip6tables"} {
				if err := os.WriteFile(p, v, 0o644); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for _, ns := range []netns.NsHandle{host, i1, i2} {
		noDAD(t, ns)
	}
	hnl := nlHandle(t, host)
	// Without snooping the bridge hands every multicast frame (the
	// neighbour solicitations below) to the host.
	snoop := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}, MulticastSnooping: &snoop}
	if err := hnl.LinkAdd(br); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	addAddrs(t, hnl, "br0", "10.99.0.1/24", "fd99::1/64")
	macs := map[string]net.HardwareAddr{}
	for i, ns := range []netns.NsHandle{i1, i2} {
		port := fmt.Sprintf("v%d", i+1)
		veth(t, host, port, ns, "eth0")
		if err := hnl.LinkSetMaster(link(t, hnl, port), br); err != nil {
			t.Fatalf("%s into br0: %v", port, err)
		}
		nl := nlHandle(t, ns)
		addAddrs(t, nl, "eth0", fmt.Sprintf("10.99.0.%d/24", i+2), fmt.Sprintf("fd99::%d/64", i+2))
		macs[port] = link(t, nl, "eth0").Attrs().HardwareAddr
	}
	if err := hnl.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	whoamiTCP(t, i2, ":80")
	whoamiTCP(t, host, ":81")

	f := openFirewall(t, host)
	own, other := macs["v1"], mustMAC("00:16:3e:11:22:33")
	filtered := State{MACFilters: []MACFilter{{HostLink: "v1", MAC: own, Comment: "i1/eth0"}}}
	i1nl := nlHandle(t, i1)

	steps := []struct {
		name string
		st   State
		mac  net.HardwareAddr // i1's
		pass bool
	}{
		{"own mac, filtered", filtered, own, true},
		{"another mac, filtered", filtered, other, false},
		{"another mac, no filter", State{}, other, true},
		{"another mac, another port filtered", State{MACFilters: []MACFilter{{HostLink: "v2", MAC: macs["v2"]}}}, other, true},
		{"another mac, filtered to it", State{MACFilters: []MACFilter{{HostLink: "v1", MAC: other}}}, other, true},
		{"own mac, filtered to another", State{MACFilters: []MACFilter{{HostLink: "v1", MAC: other}}}, own, false},
		{"own mac again, filtered", filtered, own, true},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if err := f.Apply(s.st); err != nil {
				t.Fatal(err)
			}
			if err := i1nl.LinkSetHardwareAddr(link(t, i1nl, "eth0"), s.mac); err != nil {
				t.Fatalf("i1 mac %s: %v", s.mac, err)
			}
			for _, to := range []string{"10.99.0.3:80", "10.99.0.1:81"} {
				if s.pass {
					if got, err := ask(t, i1, "tcp", to); err != nil || got != "10.99.0.2" {
						t.Errorf("i1 to %s: %q, %v; want an answer", to, got, err)
					}
					continue
				}
				// Dropped frames never arrive: a connect that has
				// not been answered in a second never will be.
				if err := dial(t, i1, to, time.Second); err == nil {
					t.Errorf("i1 from %s reached %s through a filter for %s", s.mac, to, own)
				}
			}
		})
	}

	// ARP and neighbour discovery from i1's own MAC claiming another one.
	// A probe whose frames pass leaves the claimed MAC in the host's
	// neighbour table; a control sent after it, claiming i1's own, shows
	// that the host has processed what came before.
	probes := []struct {
		name    string
		st      State
		dropped bool
	}{
		{"filtered", filtered, true},
		{"not filtered", State{}, false},
	}
	for i, p := range probes {
		t.Run("arp and ndp, "+p.name, func(t *testing.T) {
			if err := f.Apply(p.st); err != nil {
				t.Fatal(err)
			}
			ip4 := func(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, 99, 0, byte(100 + 10*i + n)}) }
			ip6 := func(n int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("fd99::%d", 100+10*i+n)) }
			router := netip.MustParseAddr("fd99::1")
			// For the advertisement: an entry it can change.
			send(t, i1, neighborSolicit(own, ip6(3), router, own))
			waitNeigh(t, hnl, ip6(3), own)

			spoofs := []struct {
				what  string
				ip    netip.Addr
				frame []byte
			}{
				{"arp request", ip4(1), arpRequest(own, other, ip4(1), netip.MustParseAddr("10.99.0.1"))},
				{"neighbour solicitation", ip6(1), neighborSolicit(own, ip6(1), router, other)},
				{"neighbour advertisement", ip6(3), neighborAdvert(own, ip6(3), other)},
			}
			for _, s := range spoofs {
				send(t, i1, s.frame)
			}
			send(t, i1, arpRequest(own, own, ip4(2), netip.MustParseAddr("10.99.0.1")))
			send(t, i1, neighborSolicit(own, ip6(2), router, own))
			waitNeigh(t, hnl, ip4(2), own)
			waitNeigh(t, hnl, ip6(2), own)
			for _, s := range spoofs {
				if !p.dropped {
					waitNeigh(t, hnl, s.ip, other)
					continue
				}
				if got := neighMAC(t, hnl, s.ip); got.String() == other.String() {
					t.Errorf("%s claiming %s for %s reached the host through the filter", s.what, other, s.ip)
				}
			}
		})
	}
}

// dial connects from ns to a TCP address within timeout.
func dial(t *testing.T, ns netns.NsHandle, to string, timeout time.Duration) error {
	var err error
	inNS(t, ns, func() {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", to, timeout); err == nil {
			c.Close()
		}
	})
	return err
}

// send writes one whole Ethernet frame out of eth0 in ns.
func send(t *testing.T, ns netns.NsHandle, frame []byte) {
	t.Helper()
	var err error
	inNS(t, ns, func() {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName("eth0"); err != nil {
			return
		}
		var fd int
		// Protocol 0: a socket that sends and never receives.
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
			return
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(sa.Addr[:], frame[:6])
		err = unix.Sendto(fd, frame, 0, sa)
	})
	if err != nil {
		t.Fatalf("send a frame: %v", err)
	}
}

// neighMAC is the host's neighbour entry for ip on br0 (nil: none).
func neighMAC(t *testing.T, nl *netlink.Handle, ip netip.Addr) net.HardwareAddr {
	t.Helper()
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	ns, err := nl.NeighList(link(t, nl, "br0").Attrs().Index, fam)
	if err != nil {
		t.Fatalf("neighbours: %v", err)
	}
	for _, n := range ns {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip {
			return n.HardwareAddr
		}
	}
	return nil
}

// waitNeigh waits until the host has ip at mac.
func waitNeigh(t *testing.T, nl *netlink.Handle, ip netip.Addr, mac net.HardwareAddr) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := neighMAC(t, nl, ip)
		if got.String() == mac.String() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host has %s at %q; want %s", ip, got, mac)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// arpRequest is a broadcast "who has tpa, tell spa" from the Ethernet
// source src, with sha as the sender's hardware address.
func arpRequest(src, sha net.HardwareAddr, spa, tpa netip.Addr) []byte {
	b := ethernet(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src, unix.ETH_P_ARP)
	b = binary.BigEndian.AppendUint16(b, 1) // Ethernet
	b = binary.BigEndian.AppendUint16(b, unix.ETH_P_IP)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, 1) // request
	b = append(b, sha...)
	b = append(b, spa.AsSlice()...)
	b = append(b, make([]byte, 6)...)
	return append(b, tpa.AsSlice()...)
}

// neighborSolicit asks, from saddr and the Ethernet source src, for
// target's MAC, giving lladdr as its own (the source link-layer option).
func neighborSolicit(src net.HardwareAddr, saddr, target netip.Addr, lladdr net.HardwareAddr) []byte {
	t := target.As16()
	group := netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: t[13], 14: t[14], 15: t[15]})
	msg := []byte{135, 0, 0, 0, 0, 0, 0, 0}
	msg = append(msg, target.AsSlice()...)
	msg = append(append(msg, ndOptSourceLLAddr, 1), lladdr...)
	g := group.As16()
	dst := net.HardwareAddr{0x33, 0x33, g[12], g[13], g[14], g[15]}
	return ipv6ICMP(src, dst, saddr, group, msg)
}

// neighborAdvert announces, unsolicited and overriding, that target (also
// its source address) is at lladdr, to all nodes.
func neighborAdvert(src net.HardwareAddr, target netip.Addr, lladdr net.HardwareAddr) []byte {
	msg := []byte{136, 0, 0, 0, 0x20, 0, 0, 0} // O: override
	msg = append(msg, target.AsSlice()...)
	msg = append(append(msg, ndOptTargetLLAddr, 1), lladdr...)
	all := netip.MustParseAddr("ff02::1")
	return ipv6ICMP(src, net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, target, all, msg)
}

// ipv6ICMP frames an ICMPv6 message with hop limit 255, as neighbour
// discovery requires, and its checksum.
func ipv6ICMP(src, dst net.HardwareAddr, saddr, daddr netip.Addr, msg []byte) []byte {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(saddr.AsSlice())
	add(daddr.AsSlice())
	add(binary.BigEndian.AppendUint32(nil, uint32(len(msg))))
	add([]byte{0, 0, 0, unix.IPPROTO_ICMPV6})
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(msg[2:], ^uint16(sum))
	b := ethernet(dst, src, unix.ETH_P_IPV6)
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	b = append(b, unix.IPPROTO_ICMPV6, 255)
	b = append(b, saddr.AsSlice()...)
	b = append(b, daddr.AsSlice()...)
	return append(b, msg...)
}

func ethernet(dst, src net.HardwareAddr, typ uint16) []byte {
	b := append(append([]byte{}, dst...), src...)
	return binary.BigEndian.AppendUint16(b, typ)
}

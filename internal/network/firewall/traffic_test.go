package firewall

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestTraffic sends real packets through the rules. Five namespaces of the
// test's own stand for a host and its world:
//
//	net  (10.98.0.2, fd98::2: "the internet", a whoami server on :80)
//	  | veth
//	host (up0 10.98.0.1, fd98::1; bridge br0 10.99.0.1/24, fd99::1/64: the Firewall)
//	  | br0 ports
//	i1 (10.99.0.2, fd99::2: whoami on tcp :80 and udp :5353)   i2 (10.99.0.3, fd99::3)
//
// A whoami server answers with the address it sees the client at, which
// tells DNAT, masquerade and hairpin NAT apart. It runs with br_netfilter
// passing bridged frames to the inet hooks and without, as hosts differ
// (Docker turns it on): with it, a DNAT to an instance on the bridge the
// packet came from happens in the bridge and the frame is bridged, not
// routed.
func TestTraffic(t *testing.T) {
	variants := []string{"bridge-nf-call off"}
	if _, err := os.Stat("/proc/sys/net/bridge"); err == nil {
		variants = append(variants, "bridge-nf-call on")
	}
	for _, v := range variants {
		t.Run(v, func(t *testing.T) { testTraffic(t, strings.HasSuffix(v, "on")) })
	}
}

func testTraffic(t *testing.T, brNetfilter bool) {
	host, inet, i1, i2 := newNetNS(t), newNetNS(t), newNetNS(t), newNetNS(t)
	if _, err := os.Stat("/proc/sys/net/bridge"); err == nil {
		inNS(t, host, func() {
			v := []byte("0\n")
			if brNetfilter {
				v = []byte("1\n")
			}
			for _, p := range []string{"/proc/sys/net/bridge/bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-ip6tables"} {
				if err := os.WriteFile(p, v, 0o644); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for _, ns := range []netns.NsHandle{host, inet, i1, i2} {
		noDAD(t, ns)
	}
	hnl := nlHandle(t, host)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := hnl.LinkAdd(br); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	addAddrs(t, hnl, "br0", "10.99.0.1/24", "fd99::1/64")
	veth(t, host, "up0", inet, "net0")
	addAddrs(t, hnl, "up0", "10.98.0.1/24", "fd98::1/64")
	addAddrs(t, nlHandle(t, inet), "net0", "10.98.0.2/24", "fd98::2/64")
	for i, ns := range []netns.NsHandle{i1, i2} {
		port := fmt.Sprintf("v%d", i+1)
		veth(t, host, port, ns, "eth0")
		if err := hnl.LinkSetMaster(link(t, hnl, port), br); err != nil {
			t.Fatalf("%s into br0: %v", port, err)
		}
		// As the NIC layer must: with br_netfilter, an instance reaching
		// itself through a forward gets its packet bridged straight back
		// out of its own port, which a bridge only does in hairpin mode.
		if err := hnl.LinkSetHairpin(link(t, hnl, port), true); err != nil {
			t.Fatalf("%s hairpin: %v", port, err)
		}
		nl := nlHandle(t, ns)
		addAddrs(t, nl, "eth0", fmt.Sprintf("10.99.0.%d/24", i+2), fmt.Sprintf("fd99::%d/64", i+2))
		for _, gw := range []string{"10.99.0.1", "fd99::1"} {
			if err := nl.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw), LinkIndex: link(t, nl, "eth0").Attrs().Index}); err != nil {
				t.Fatalf("default route via %s: %v", gw, err)
			}
		}
	}
	if err := hnl.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}

	whoamiTCP(t, i1, ":80")
	whoamiUDP(t, i1, ":5353")
	whoamiTCP(t, inet, ":80")

	f := openFirewall(t, host)
	if err := f.EnableForwarding(true, true); err != nil {
		t.Fatal(err)
	}
	st := State{
		Networks: []Network{{Bridge: "br0", IPv4: netip.MustParsePrefix("10.99.0.1/24"), IPv6: netip.MustParsePrefix("fd99::1/64"), NAT4: true, NAT6: true}},
		Forwards: []Forward{
			{Proto: TCP, ListenPorts: Port(8080), Target: netip.MustParseAddr("10.99.0.2"), TargetPorts: Port(80)},
			{Proto: TCP, Listen: netip.IPv6Unspecified(), ListenPorts: PortRange(8080, 8081), Target: netip.MustParseAddr("fd99::2"), TargetPorts: Port(80)},
			{Proto: UDP, Listen: netip.MustParseAddr("10.98.0.1"), ListenPorts: PortRange(5300, 5301), Target: netip.MustParseAddr("10.99.0.2"), TargetPorts: PortRange(5353, 5354)},
		},
	}
	if err := f.Apply(st); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		from  netns.NsHandle
		proto string
		to    string
		seen  string // the client address the server saw
	}{
		{"outside to a forward", inet, "tcp", "10.98.0.1:8080", "10.98.0.2"},
		{"outside to a forward, ipv6", inet, "tcp", "[fd98::1]:8081", "fd98::2"},
		{"outside to a udp forward on one address", inet, "udp", "10.98.0.1:5300", "10.98.0.2"},
		{"the host to its uplink address", host, "tcp", "10.98.0.1:8080", "10.98.0.1"},
		{"the host to its bridge address", host, "tcp", "10.99.0.1:8080", "10.99.0.1"},
		{"the host, ipv6", host, "tcp", "[fd98::1]:8080", "fd98::1"},
		{"hairpin: a neighbour through the host's address", i2, "tcp", "10.98.0.1:8080", "10.99.0.1"},
		{"hairpin, ipv6", i2, "tcp", "[fd98::1]:8080", "fd99::1"},
		{"hairpin: the target itself", i1, "udp", "10.98.0.1:5300", "10.99.0.1"},
		{"outbound nat", i1, "tcp", "10.98.0.2:80", "10.98.0.1"},
		{"outbound nat, ipv6", i1, "tcp", "[fd98::2]:80", "fd98::1"},
		{"neighbours talk without nat", i2, "tcp", "10.99.0.2:80", "10.99.0.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ask(t, tt.from, tt.proto, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.seen {
				t.Errorf("the server saw %s, want %s", got, tt.seen)
			}
		})
	}

	// The second port of the udp range goes to the second target port,
	// where nothing listens: the target answers port unreachable.
	if _, err := ask(t, inet, "udp", "10.98.0.1:5301"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("udp 5301 -> 5354 (nothing there): %v, want connection refused", err)
	}

	// With the table gone, the host itself answers the port: nothing there.
	if err := f.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"10.98.0.1:8080", "[fd98::1]:8080"} {
		if _, err := ask(t, inet, "tcp", to); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s after Remove: %v, want connection refused", to, err)
		}
	}
}

// noDAD turns off duplicate address detection in ns, so IPv6 addresses
// are usable the moment they are added (there is nobody to clash with).
func noDAD(t *testing.T, ns netns.NsHandle) {
	inNS(t, ns, func() {
		for _, p := range []string{"/proc/sys/net/ipv6/conf/all/accept_dad", "/proc/sys/net/ipv6/conf/default/accept_dad"} {
			if err := os.WriteFile(p, []byte("0\n"), 0o644); err != nil {
				t.Error(err)
			}
		}
	})
}

func link(t *testing.T, nl *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := nl.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l
}

// veth makes a veth pair from name in a to peer in b, both up.
func veth(t *testing.T, a netns.NsHandle, name string, b netns.NsHandle, peer string) {
	t.Helper()
	anl, bnl := nlHandle(t, a), nlHandle(t, b)
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer, PeerNamespace: netlink.NsFd(int(b))}
	if err := anl.LinkAdd(v); err != nil {
		t.Fatalf("veth %s-%s: %v", name, peer, err)
	}
	if err := anl.LinkSetUp(link(t, anl, name)); err != nil {
		t.Fatal(err)
	}
	if err := bnl.LinkSetUp(link(t, bnl, peer)); err != nil {
		t.Fatal(err)
	}
}

func addAddrs(t *testing.T, nl *netlink.Handle, name string, cidrs ...string) {
	t.Helper()
	l := link(t, nl, name)
	for _, c := range cidrs {
		a, err := netlink.ParseAddr(c)
		if err != nil {
			t.Fatal(err)
		}
		a.Flags = unix.IFA_F_NODAD
		if err := nl.AddrAdd(l, a); err != nil {
			t.Fatalf("address %s on %s: %v", c, name, err)
		}
	}
	if err := nl.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
}

// whoamiTCP serves, in ns, one line per connection: the client's address.
func whoamiTCP(t *testing.T, ns netns.NsHandle, addr string) {
	var l net.Listener
	var err error
	inNS(t, ns, func() { l, err = net.Listen("tcp", addr) })
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ap := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			fmt.Fprintln(c, ap.Addr().Unmap())
			c.Close()
		}
	}()
}

// whoamiUDP answers each datagram, in ns, with the sender's address.
func whoamiUDP(t *testing.T, ns netns.NsHandle, addr string) {
	var c net.PacketConn
	var err error
	inNS(t, ns, func() { c, err = net.ListenPacket("udp", addr) })
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo([]byte(from.(*net.UDPAddr).AddrPort().Addr().Unmap().String()+"\n"), from)
		}
	}()
}

// ask connects from ns to a whoami server and returns its answer. The
// deadline is only a guard against a test that hangs: a lost packet is a
// failure either way, and TCP retransmits its SYN on its own meanwhile.
func ask(t *testing.T, ns netns.NsHandle, proto, to string) (string, error) {
	var c net.Conn
	var err error
	inNS(t, ns, func() { c, err = net.DialTimeout(proto, to, 10*time.Second) })
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if proto == "udp" {
		if _, err := c.Write([]byte("who\n")); err != nil {
			return "", err
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read from %s: %w", to, err)
	}
	return strings.TrimSpace(line), nil
}

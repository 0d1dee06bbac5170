package dnsmasq

import (
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"testing"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
)

// addClient plugs a veth into the bridge whose other end, with mac, is in
// a namespace of its own (a client machine), and returns that namespace.
func (n *testNS) addClient(t *testing.T, br *netlink.Bridge, name, mac string) *testNS {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	client := newNS(t)
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: name + "h", MasterIndex: br.Index},
		PeerName:         name,
		PeerHardwareAddr: hw,
	}
	if err := n.nl.LinkAdd(v); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	if err := n.nl.LinkSetUp(v); err != nil {
		t.Fatal(err)
	}
	peer, err := n.nl.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.nl.LinkSetNsFd(peer, int(client.h)); err != nil {
		t.Fatalf("move %s: %v", name, err)
	}
	if peer, err = client.nl.LinkByName(name); err != nil {
		t.Fatal(err)
	}
	if err := client.nl.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	return client
}

var leaseRE = regexp.MustCompile(`lease of (\S+) obtained`)

// udhcpc runs busybox's DHCP client once on iface in the namespace and
// returns the address it was leased. Its script is /bin/true: the test
// needs the lease, not a configured interface.
func (n *testNS) udhcpc(t *testing.T, iface string, extra ...string) netip.Addr {
	t.Helper()
	args := append([]string{"udhcpc", "-i", iface, "-f", "-q", "-n", "-t", "10", "-T", "1", "-s", "/bin/true"}, extra...)
	cmd := exec.Command("busybox", args...)
	var out []byte
	var err error
	n.in(t, func() { out, err = cmd.CombinedOutput() })
	if err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	m := leaseRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("udhcpc got no lease:\n%s", out)
	}
	return netip.MustParseAddr(string(m[1]))
}

func TestDHCP(t *testing.T) {
	needDnsmasq(t)
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("no busybox (Debian package busybox-static): its udhcpc is the DHCP client")
	}
	n := newNS(t)
	br := n.addBridge(t)
	cfg := testConfig(t, n)
	cfg.DHCPv4Ranges = [][2]netip.Addr{{netip.MustParseAddr("10.12.3.100"), netip.MustParseAddr("10.12.3.150")}}
	const mac1, mac2 = "00:16:3e:aa:00:01", "00:16:3e:aa:00:02"
	s := startServer(t, cfg, []Host{{Name: "c1", MAC: mac1, IPv4: netip.MustParseAddr("10.12.3.50")}})

	// The reservation: the same address hangard configured, whatever
	// hostname the client sends.
	c1 := n.addClient(t, br, "vc1", mac1)
	if got := c1.udhcpc(t, "vc1", "-x", "hostname:other"); got != netip.MustParseAddr("10.12.3.50") {
		t.Errorf("reserved client leased %s, want 10.12.3.50", got)
	}
	// Anyone else: an address of the range, named after its hostname.
	c2 := n.addClient(t, br, "vc2", mac2)
	dyn := c2.udhcpc(t, "vc2", "-x", "hostname:dyn1")
	if dyn.Less(cfg.DHCPv4Ranges[0][0]) || cfg.DHCPv4Ranges[0][1].Less(dyn) {
		t.Errorf("dynamic client leased %s, outside %v", dyn, cfg.DHCPv4Ranges[0])
	}
	n.answers(t, "dyn1.hangar", dns.TypeA, []netip.Addr{dyn})

	var leases []Lease
	waitFor(t, "both leases in the leases file", func() bool {
		var err error
		leases, err = s.Leases()
		return err == nil && len(leases) == 2
	})
	slices.SortFunc(leases, func(a, b Lease) int { return a.Address.Compare(b.Address) })
	want := []struct {
		name, mac, typ string
		addr           netip.Addr
	}{
		{"c1", mac1, LeaseStatic, netip.MustParseAddr("10.12.3.50")},
		{"dyn1", mac2, LeaseDynamic, dyn},
	}
	for i, w := range want {
		l := leases[i]
		if l.Hostname != w.name || l.MAC != w.mac || l.Type != w.typ || l.Address != w.addr || l.Expires.IsZero() {
			t.Errorf("lease %d = %+v, want %s %s %s %s with an expiry", i, l, w.name, w.mac, w.addr, w.typ)
		}
	}

	// A lease survives a restart of dnsmasq: the file is kept and read back.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, cfg, []Host{{Name: "c1", MAC: mac1, IPv4: netip.MustParseAddr("10.12.3.50")}})
	if leases, err := s.Leases(); err != nil || len(leases) != 2 {
		t.Errorf("leases after restart: %v, %v", leases, err)
	}
	n.answers(t, "dyn1", dns.TypeA, []netip.Addr{dyn})
}

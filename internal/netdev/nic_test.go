package netdev

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// TestVeth: two containers on a bridge get their NICs with the asked
// name, MAC, MTU, addresses and default routes, and reach each other and
// the host over TCP, on IPv4 and IPv6 (no wait for duplicate address
// detection).
func TestVeth(t *testing.T) {
	e := newEnv(t)
	e.bridge()
	c1, c2 := e.netns("c1"), e.netns("c2")
	for _, v := range []Veth{
		{HostName: "vethc1", Bridge: "hb0", NIC: NIC{NetNS: c1, Name: "eth0", Hwaddr: "00:16:3e:00:00:11", MTU: 1400,
			Addresses: []netip.Prefix{pfx("10.99.0.11/24"), pfx("fd99::11/64")},
			Gateway4:  ip("10.99.0.1"), Gateway6: ip("fd99::1")}},
		{HostName: "vethc2", Bridge: "hb0", NIC: NIC{NetNS: c2, Name: "eth0", Hwaddr: "00:16:3e:00:00:12",
			Addresses: []netip.Prefix{pfx("10.99.0.12/24"), pfx("fd99::12/64")},
			Gateway4:  ip("10.99.0.1"), Gateway6: ip("fd99::1")}},
	} {
		if err := e.host.AddVeth(v); err != nil {
			t.Fatalf("add %s: %v", v.HostName, err)
		}
	}

	ifs, err := InterfacesInNetNS(c1)
	if err != nil {
		t.Fatal(err)
	}
	eth0 := ifs["eth0"]
	if len(ifs) != 2 || !eth0.Up || eth0.Hwaddr != "00:16:3e:00:00:11" || eth0.MTU != 1400 || eth0.Kind != "veth" {
		t.Fatalf("c1 interfaces %+v", ifs)
	}
	for _, a := range []string{"10.99.0.11/24", "fd99::11/64"} {
		if !hasAddr(eth0, a) {
			t.Errorf("eth0 addresses %v, want %s", eth0.Addresses, a)
		}
	}
	routes := defaultRoutes(t, c1)
	if want := []string{"10.99.0.1", "fd99::1"}; !slices.Equal(routes, want) {
		t.Errorf("default routes via %v, want %v", routes, want)
	}

	host, err := e.host.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range host {
		switch i.Name {
		case "vethc1":
			if i.Master != "hb0" || !i.Up || i.MTU != 1400 {
				t.Errorf("host end %+v, want up, MTU 1400, on hb0", i)
			}
		case "hb0":
			if !slices.Equal(i.Members, []string{"vethc1", "vethc2"}) {
				t.Errorf("bridge members %v", i.Members)
			}
		}
	}

	for _, c := range []struct{ name, from, to, addr string }{
		{"c2 to c1, IPv4", c2, c1, "10.99.0.11:8080"},
		{"c2 to c1, IPv6", c2, c1, "[fd99::11]:8080"},
		{"host to c2, IPv4", e.path, c2, "10.99.0.12:8080"},
		{"c1 to host, IPv6", c1, e.path, "[fd99::1]:8080"},
	} {
		if err := connect(t, c.from, c.to, c.addr); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// defaultRoutes lists the next hops of the default routes in path.
func defaultRoutes(t *testing.T, path string) []string {
	t.Helper()
	h, err := OpenNetNS(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rs, err := h.nl.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			if r.Gw != nil {
				out = append(out, r.Gw.String())
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestAddVethReplacesStale: NICs left by an earlier run (the same call
// again, a daemon killed -9 in between) are replaced, never duplicated,
// and the new one works.
func TestAddVethReplacesStale(t *testing.T) {
	e := newEnv(t)
	e.bridge()
	c1 := e.netns("c1")
	v := Veth{HostName: "vethc1", Bridge: "hb0", NIC: NIC{NetNS: c1, Name: "eth0",
		Addresses: []netip.Prefix{pfx("10.99.0.11/24")}}}
	for range 3 {
		if err := e.host.AddVeth(v); err != nil {
			t.Fatal(err)
		}
	}
	// A stale host end whose other end went to another namespace: the
	// container's namespace was made again.
	c1b := e.netns("c1b")
	v.NetNS = c1b
	if err := e.host.AddVeth(v); err != nil {
		t.Fatal(err)
	}
	if got, want := e.links(), []string{"hb0", "lo", "vethc1"}; !slices.Equal(got, want) {
		t.Errorf("host links %v, want %v", got, want)
	}
	if got := linkNames(t, c1); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("the old namespace has %v, want lo alone", got)
	}
	if got := linkNames(t, c1b); !slices.Equal(got, []string{"eth0", "lo"}) {
		t.Errorf("the new namespace has %v", got)
	}
	if err := connect(t, e.path, c1b, "10.99.0.11:80"); err != nil {
		t.Error(err)
	}
}

// TestAddVethFails: a NIC that cannot be made whole leaves nothing, in the
// host or in the container; input errors and missing parts have their
// kinds.
func TestAddVethFails(t *testing.T) {
	e := newEnv(t)
	e.bridge()
	c1 := e.netns("c1")
	good := func(f func(*Veth)) Veth {
		v := Veth{HostName: "vethc1", Bridge: "hb0", NIC: NIC{NetNS: c1, Name: "eth0",
			Addresses: []netip.Prefix{pfx("10.99.0.11/24"), pfx("fd99::11/64")},
			Gateway4:  ip("10.99.0.1"), Gateway6: ip("fd99::1")}}
		f(&v)
		return v
	}
	tests := []struct {
		name string
		v    Veth
		kind error // nil: a kernel error, after the pair was made
	}{
		{"IPv4 gateway off every subnet", good(func(v *Veth) { v.Gateway4 = ip("192.168.7.1") }), nil},
		{"IPv6 gateway off every subnet", good(func(v *Veth) { v.Gateway6 = ip("fd77::1") }), nil},
		{"no such bridge", good(func(v *Veth) { v.Bridge = "nobr0" }), errdefs.ErrNotFound},
		{"no such namespace", good(func(v *Veth) { v.NetNS = e.dir + "/none" }), errdefs.ErrNotFound},
		{"not a namespace", good(func(v *Veth) { v.NetNS = e.dir }), errdefs.ErrInvalidArgument},
		{"host name too long", good(func(v *Veth) { v.HostName = "veth0123456789ab" }), errdefs.ErrInvalidArgument},
		{"name with a slash", good(func(v *Veth) { v.Name = "eth/0" }), errdefs.ErrInvalidArgument},
		{"bad MAC", good(func(v *Veth) { v.Hwaddr = "00:16:3e:zz:00:01" }), errdefs.ErrInvalidArgument},
		{"multicast MAC", good(func(v *Veth) { v.Hwaddr = "01:00:5e:00:00:01" }), errdefs.ErrInvalidArgument},
		{"zero prefix", good(func(v *Veth) { v.Addresses = []netip.Prefix{{}} }), errdefs.ErrInvalidArgument},
		{"address twice", good(func(v *Veth) { v.Addresses = append(v.Addresses, pfx("10.99.0.11/16")) }), errdefs.ErrInvalidArgument},
		{"IPv6 as IPv4 gateway", good(func(v *Veth) { v.Gateway4 = ip("fd99::1") }), errdefs.ErrInvalidArgument},
		{"MTU too small", good(func(v *Veth) { v.MTU = 60 }), errdefs.ErrInvalidArgument},
		{"relative namespace path", good(func(v *Veth) { v.NetNS = "c1" }), errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.host.AddVeth(tt.v)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %v, want kind %v", err, tt.kind)
			}
			if got, want := e.links(), []string{"hb0", "lo"}; !slices.Equal(got, want) {
				t.Errorf("host links %v, want %v", got, want)
			}
			if got := linkNames(t, c1); !slices.Equal(got, []string{"lo"}) {
				t.Errorf("container links %v, want lo alone", got)
			}
		})
	}
}

// TestAddVethConflict: a host name held by a link of another kind is
// refused and that link is left alone.
func TestAddVethConflict(t *testing.T) {
	e := newEnv(t)
	e.bridge()
	c1 := e.netns("c1")
	err := e.host.AddVeth(Veth{HostName: "hb0", NIC: NIC{NetNS: c1, Name: "eth0"}})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("veth over a bridge: %v, want a conflict", err)
	}
	ifs, err := e.host.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 2 || ifs[1].Name != "hb0" || ifs[1].Kind != "bridge" {
		t.Fatalf("host interfaces %+v", ifs)
	}
}

// TestMacvlan: two containers with macvlans on one parent reach each
// other; a stale one is replaced; a missing parent is not found and
// leaves nothing; DeleteLinkInNetNS removes one.
func TestMacvlan(t *testing.T) {
	e := newEnv(t)
	// The parent: this kernel has no dummy links, so one end of a veth
	// whose other end is up too (for a carrier).
	peer := e.netns("peer")
	if err := e.host.AddVeth(Veth{HostName: "uplink0", NIC: NIC{NetNS: peer, Name: "eth0"}}); err != nil {
		t.Fatal(err)
	}
	c1, c2 := e.netns("c1"), e.netns("c2")
	n1 := NIC{NetNS: c1, Name: "eth0", Hwaddr: "00:16:3e:00:00:21", Addresses: []netip.Prefix{pfx("192.168.50.21/24")}}
	n2 := NIC{NetNS: c2, Name: "eth0", Hwaddr: "00:16:3e:00:00:22", Addresses: []netip.Prefix{pfx("192.168.50.22/24")}}
	for _, n := range []NIC{n1, n1, n2} {
		if err := e.host.AddMacvlan("uplink0", n); err != nil {
			t.Fatalf("macvlan in %s: %v", n.NetNS, err)
		}
	}
	ifs, err := InterfacesInNetNS(c1)
	if err != nil {
		t.Fatal(err)
	}
	if eth0 := ifs["eth0"]; len(ifs) != 2 || eth0.Kind != "macvlan" || eth0.Type != "unknown" ||
		eth0.Hwaddr != n1.Hwaddr || !eth0.Up || !hasAddr(eth0, "192.168.50.21/24") {
		t.Fatalf("c1 interfaces %+v", ifs)
	}
	if err := connect(t, c2, c1, "192.168.50.21:80"); err != nil {
		t.Errorf("c2 to c1: %v", err)
	}

	c3 := e.netns("c3")
	err = e.host.AddMacvlan("nouplink", NIC{NetNS: c3, Name: "eth0"})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing parent: %v, want not found", err)
	}
	bad := NIC{NetNS: c3, Name: "eth0", Addresses: []netip.Prefix{pfx("192.168.50.23/24")}, Gateway4: ip("10.1.1.1")}
	if err := e.host.AddMacvlan("uplink0", bad); err == nil {
		t.Error("unreachable gateway: no error")
	}
	if got := linkNames(t, c3); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("after failures c3 has %v, want lo alone", got)
	}

	for range 2 {
		if err := DeleteLinkInNetNS(c1, "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	if got := linkNames(t, c1); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("after delete c1 has %v", got)
	}
	if err := DeleteLinkInNetNS(e.dir+"/gone", "eth0"); err != nil {
		t.Errorf("delete in a missing namespace: %v", err)
	}
}

// TestConcurrentVeths: NICs added from several goroutines at once through
// one Host all arrive whole (one netlink socket, shared).
func TestConcurrentVeths(t *testing.T) {
	e := newEnv(t)
	e.bridge()
	const n = 6
	paths := make([]string, n)
	for i := range n {
		paths[i] = e.netns(fmt.Sprintf("c%d", i))
	}
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- e.host.AddVeth(Veth{HostName: fmt.Sprintf("vethc%d", i), Bridge: "hb0", NIC: NIC{NetNS: paths[i],
				Name: "eth0", Addresses: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, 0, byte(10 + i)}), 24)}}})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := e.links(); len(got) != n+2 {
		t.Errorf("host links %v, want hb0, lo and %d veths", got, n)
	}
	for i, p := range paths {
		ifs, err := InterfacesInNetNS(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("10.99.0.%d/24", 10+i); !hasAddr(ifs["eth0"], want) || !ifs["eth0"].Up {
			t.Errorf("c%d eth0 %+v, want up with %s", i, ifs["eth0"], want)
		}
	}
}

// TestOpen: the daemon's own namespace opens and lists (read only: the
// machine's network is not changed).
func TestOpen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: enters a network namespace")
	}
	h, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ifs, err := h.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ifs, func(i Interface) bool { return i.Type == "loopback" }) {
		t.Errorf("no loopback in %+v", ifs)
	}
}

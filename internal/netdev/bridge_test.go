package netdev

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// TestEnsureBridge: a sequence of wanted states, each applied twice; after
// each the namespace has one bridge with exactly those addresses (and the
// kernel's link-local one), MTU and MAC, up.
func TestEnsureBridge(t *testing.T) {
	e := newEnv(t)
	steps := []struct {
		name  string
		b     Bridge
		mtu   int
		addrs []string
	}{
		{"create", Bridge{Name: "hb0", Hwaddr: "00:16:3e:aa:bb:01", MTU: 1400,
			Addresses: []netip.Prefix{pfx("10.10.0.1/24"), pfx("fd10::1/64")}}, 1400, []string{"10.10.0.1/24", "fd10::1/64"}},
		{"new addresses", Bridge{Name: "hb0", Hwaddr: "00:16:3e:aa:bb:02", MTU: 1500,
			Addresses: []netip.Prefix{pfx("10.20.0.1/16")}}, 1500, []string{"10.20.0.1/16"}},
		{"prefix length change", Bridge{Name: "hb0", Hwaddr: "00:16:3e:aa:bb:02",
			Addresses: []netip.Prefix{pfx("10.20.0.1/24"), pfx("fd20::1/64"), pfx("fd21::1/64")}}, 1500,
			[]string{"10.20.0.1/24", "fd20::1/64", "fd21::1/64"}},
		{"no addresses", Bridge{Name: "hb0"}, 1500, nil},
	}
	for _, s := range steps {
		for range 2 {
			if err := e.host.EnsureBridge(s.b); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		ifs, err := e.host.Interfaces()
		if err != nil {
			t.Fatal(err)
		}
		var got []Interface
		for _, i := range ifs {
			if i.Kind == "bridge" {
				got = append(got, i)
			}
		}
		if len(got) != 1 {
			t.Fatalf("%s: %d bridges, want 1", s.name, len(got))
		}
		br := got[0]
		if br.Name != "hb0" || br.Type != "bridge" || !br.Up || br.MTU != s.mtu {
			t.Errorf("%s: bridge %s type %s up %v mtu %d, want hb0 bridge true %d", s.name, br.Name, br.Type, br.Up, br.MTU, s.mtu)
		}
		if s.b.Hwaddr != "" && br.Hwaddr != s.b.Hwaddr {
			t.Errorf("%s: hwaddr %s, want %s", s.name, br.Hwaddr, s.b.Hwaddr)
		}
		var addrs []string
		for _, a := range br.Addresses {
			if !a.Prefix.Addr().IsLinkLocalUnicast() {
				addrs = append(addrs, a.Prefix.String())
			}
		}
		slices.Sort(addrs)
		if !slices.Equal(addrs, s.addrs) {
			t.Errorf("%s: addresses %v, want %v", s.name, addrs, s.addrs)
		}
	}
}

// TestEnsureBridgeConflict: a link of the name that is not a bridge is
// refused and left alone.
func TestEnsureBridgeConflict(t *testing.T) {
	e := newEnv(t)
	c := e.netns("c1")
	if err := e.host.AddVeth(Veth{HostName: "taken0", NIC: NIC{NetNS: c, Name: "eth0"}}); err != nil {
		t.Fatal(err)
	}
	err := e.host.EnsureBridge(Bridge{Name: "taken0"})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("bridge over a veth: %v, want a conflict", err)
	}
	if !slices.Contains(e.links(), "taken0") {
		t.Fatal("the veth is gone")
	}
}

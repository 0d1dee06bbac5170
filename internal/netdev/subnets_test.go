package netdev

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// TestPickSubnets: many draws, each a gateway address in a /24 of
// 10.0.0.0/8 and a /64 of fd00::/8 that overlaps none of used; a family
// with no room left is a conflict.
func TestPickSubnets(t *testing.T) {
	tests := []struct {
		name    string
		used    []string
		within4 string
		fail4   bool
		fail6   bool
	}{
		{"nothing used", nil, "10.0.0.0/8", false, false},
		{"default routes ignored", []string{"0.0.0.0/0", "::/0"}, "10.0.0.0/8", false, false},
		{"lower half used", []string{"10.0.0.0/9", "fd00::/9"}, "10.128.0.0/9", false, false},
		// 1 in 4 draws is free: 100 tries all miss with a chance of 3e-13.
		{"three quarters used", []string{"10.0.0.0/9", "10.128.0.0/10"}, "10.192.0.0/10", false, false},
		{"IPv4 full", []string{"10.0.0.0/8"}, "", true, false},
		{"IPv6 full", []string{"fd00::/8"}, "10.0.0.0/8", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var used []netip.Prefix
			for _, u := range tt.used {
				used = append(used, pfx(u))
			}
			for range 200 {
				v4, v6, err := PickSubnets(used)
				if tt.fail4 || tt.fail6 {
					if !errors.Is(err, errdefs.ErrConflict) {
						t.Fatalf("error %v, want a conflict", err)
					}
					if fam := map[bool]string{true: "IPv4", false: "IPv6"}[tt.fail4]; !strings.Contains(err.Error(), fam) {
						t.Fatalf("error %q does not name %s", err, fam)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if v4.Bits() != 24 || v4.Addr().As4()[3] != 1 || !pfx(tt.within4).Contains(v4.Addr()) {
					t.Fatalf("IPv4 %s: not x.y.z.1/24 within %s", v4, tt.within4)
				}
				if v6.Bits() != 64 || !pfx("fd00::/8").Contains(v6.Addr()) || v6.Addr().As16()[15] != 1 {
					t.Fatalf("IPv6 %s: not a ::1/64 in fd00::/8", v6)
				}
				for _, u := range used {
					if u.Bits() > 0 && (u.Overlaps(v4) || u.Overlaps(v6)) {
						t.Fatalf("%s or %s overlaps %s", v4, v6, u)
					}
				}
			}
		})
	}
}

// TestUsedPrefixes: the subnets of a bridge's addresses and of routes
// are used; default routes are not.
func TestUsedPrefixes(t *testing.T) {
	e := newEnv(t)
	e.bridge()
	c1 := e.netns("c1")
	if err := e.host.AddVeth(Veth{HostName: "vethc1", Bridge: "hb0", NIC: NIC{NetNS: c1, Name: "eth0",
		Addresses: []netip.Prefix{pfx("10.99.0.11/24")}, Gateway4: ip("10.99.0.1")}}); err != nil {
		t.Fatal(err)
	}
	hb0, err := e.host.nl.LinkByName("hb0")
	if err != nil {
		t.Fatal(err)
	}
	for _, gw := range []string{"10.99.0.254", "fd99::fe"} {
		if err := e.host.nl.RouteAdd(&netlink.Route{LinkIndex: hb0.Attrs().Index, Gw: ip(gw).AsSlice()}); err != nil {
			t.Fatalf("default route via %s: %v", gw, err)
		}
	}
	used, err := e.host.UsedPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"10.99.0.0/24", "fd99::/64", "127.0.0.0/8"} {
		if !slices.Contains(used, pfx(w)) {
			t.Errorf("used %v lacks %s", used, w)
		}
	}
	for _, u := range used {
		if u.Bits() == 0 {
			t.Errorf("used has %s", u)
		}
	}
}

// TestRandomNames: RandomMAC gives valid unicast addresses in 00:16:3e,
// randomDevName valid interface names.
func TestRandomNames(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		m := RandomMAC()
		if !strings.HasPrefix(m, "00:16:3e:") {
			t.Fatalf("%s not in 00:16:3e", m)
		}
		if _, err := parseMAC("mac", m); err != nil {
			t.Fatal(err)
		}
		seen[m] = true
	}
	if len(seen) < 90 {
		t.Errorf("%d distinct MACs in 100", len(seen))
	}
	for _, p := range []string{"veth", "tap", "averylongprefix"} {
		n := randomDevName(p)
		if err := validName("name", n); err != nil {
			t.Errorf("randomDevName(%q) = %q: %v", p, n, err)
		}
		if want := min(len(p), 7) + 8; len(n) != want {
			t.Errorf("randomDevName(%q) = %q, %d bytes, want %d", p, n, len(n), want)
		}
	}
}

package netdev

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// neighbours lists the host's entries on hb0 as "IP MAC STATE", sorted.
func (e *testEnv) neighbours() []string {
	e.t.Helper()
	br, err := e.host.nl.LinkByName("hb0")
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		ns, err := e.host.nl.NeighList(br.Attrs().Index, fam)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, n := range ns {
			if n.IP.IsLinkLocalUnicast() || n.IP.IsMulticast() {
				continue
			}
			st := map[int]string{netlink.NUD_PERMANENT: "permanent", netlink.NUD_STALE: "stale"}[n.State]
			if st == "" {
				st = fmt.Sprintf("state-%#x", n.State)
			}
			out = append(out, fmt.Sprintf("%s %s %s", n.IP, n.HardwareAddr, st))
		}
	}
	slices.Sort(out)
	return out
}

// TestPinNeighbors: a VM in standby has its addresses pinned at its MAC
// (permanent); its NIC's next start makes them entries to be confirmed
// again; unpinning removes only entries still pinned at that MAC.
func TestPinNeighbors(t *testing.T) {
	e := newEnv(t)
	e.bridge()
	const mac, other = "00:16:3e:00:00:21", "00:16:3e:00:00:22"
	addrs := []netip.Prefix{pfx("10.99.0.21/24"), pfx("fd99::21/64")}
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"pin", func() error { return e.host.PinNeighbors("hb0", mac, addrs) },
			[]string{"10.99.0.21 " + mac + " permanent", "fd99::21 " + mac + " permanent"}},
		{"pin again", func() error { return e.host.PinNeighbors("hb0", mac, addrs) },
			[]string{"10.99.0.21 " + mac + " permanent", "fd99::21 " + mac + " permanent"}},
		{"unpin at another MAC leaves them", func() error { return e.host.UnpinNeighbors("hb0", other, addrs) },
			[]string{"10.99.0.21 " + mac + " permanent", "fd99::21 " + mac + " permanent"}},
		{"unpin", func() error { return e.host.UnpinNeighbors("hb0", mac, addrs) }, nil},
		{"unpin what is gone", func() error { return e.host.UnpinNeighbors("hb0", mac, addrs) }, nil},
		{"pin, then the NIC's start replaces it", func() error {
			if err := e.host.PinNeighbors("hb0", mac, addrs[:1]); err != nil {
				return err
			}
			return e.host.SetNeighbors("hb0", mac, addrs[:1])
		}, []string{"10.99.0.21 " + mac + " stale"}},
		{"unpin leaves an entry no longer pinned", func() error { return e.host.UnpinNeighbors("hb0", mac, addrs) },
			[]string{"10.99.0.21 " + mac + " stale"}},
		{"unpin on a missing bridge", func() error { return e.host.UnpinNeighbors("nobr0", mac, addrs) },
			[]string{"10.99.0.21 " + mac + " stale"}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := e.neighbours(); !slices.Equal(got, s.want) {
			t.Fatalf("%s: neighbours %q, want %q", s.name, got, s.want)
		}
	}

	bad := []struct {
		name string
		err  error
		kind error
	}{
		{"pin a bad MAC", e.host.PinNeighbors("hb0", "zz", addrs), errdefs.ErrInvalidArgument},
		{"pin on a missing bridge", e.host.PinNeighbors("nobr0", mac, addrs), errdefs.ErrNotFound},
		{"unpin a bad MAC", e.host.UnpinNeighbors("hb0", "zz", addrs), errdefs.ErrInvalidArgument},
	}
	for _, b := range bad {
		if !errors.Is(b.err, b.kind) {
			t.Errorf("%s: %v, want %v", b.name, b.err, b.kind)
		}
	}
}

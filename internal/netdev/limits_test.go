package netdev

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// TestLimits: a sequence of limits on a container's host end, each set
// twice, read back; the tc objects are never duplicated; the ifb exists
// exactly while an egress limit does.
func TestLimits(t *testing.T) {
	e := newEnv(t)
	e.bridge()
	c1 := e.netns("c1")
	if err := e.host.AddVeth(Veth{HostName: "vethc1", Bridge: "hb0", NIC: NIC{NetNS: c1, Name: "eth0",
		Addresses: []netip.Prefix{pfx("10.99.0.11/24")}}}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name            string
		ingress, egress uint64
		read            [2]uint64 // what Limits reads back
	}{
		{"both", 8_000_000, 16_000_000, [2]uint64{8_000_000, 16_000_000}},
		{"changed", 100_000_000, 1_000_000_000, [2]uint64{100_000_000, 1_000_000_000}},
		{"ingress only", 2_000_000, 0, [2]uint64{2_000_000, 0}},
		{"egress only", 0, 4_000_000, [2]uint64{0, 4_000_000}},
		{"rounded up to bytes", 0, 4_000_001, [2]uint64{0, 4_000_008}},
		{"above 32 bits of bytes", 40_000_000_000, 0, [2]uint64{40_000_000_000, 0}},
		{"none", 0, 0, [2]uint64{0, 0}},
	}
	for _, s := range steps {
		for range 2 {
			if err := e.host.SetLimits("vethc1", s.ingress, s.egress); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		in, eg, err := e.host.Limits("vethc1")
		if err != nil {
			t.Fatal(err)
		}
		if [2]uint64{in, eg} != s.read {
			t.Errorf("%s: limits %d/%d, want %d/%d", s.name, in, eg, s.read[0], s.read[1])
		}
		l, err := e.host.nl.LinkByName("vethc1")
		if err != nil {
			t.Fatal(err)
		}
		qs, err := e.host.nl.QdiscList(l)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, q := range qs {
			kinds = append(kinds, q.Type())
		}
		slices.Sort(kinds)
		var want []string
		if s.ingress != 0 {
			want = append(want, "htb")
		}
		if s.egress != 0 {
			want = append(want, "ingress")
			fs, err := e.host.nl.FilterList(l, ingressQ)
			if err != nil || len(fs) != 1 {
				t.Errorf("%s: ingress filters %v (%v), want one", s.name, fs, err)
			}
		}
		kinds = slices.DeleteFunc(kinds, func(k string) bool { return k == "noqueue" })
		if !slices.Equal(kinds, want) {
			t.Errorf("%s: qdiscs %v, want %v", s.name, kinds, want)
		}
		hasIfb := slices.Contains(e.links(), ifbName("vethc1"))
		if hasIfb != (s.egress != 0) {
			t.Errorf("%s: ifb present %v with egress %d", s.name, hasIfb, s.egress)
		}
	}
}

// TestLimitsRedirect: with an egress limit, the container's outbound
// traffic goes through the ifb (its counters move), and deleting the NIC,
// or pruning after its namespace took it away, removes the ifb.
func TestLimitsRedirect(t *testing.T) {
	e := newEnv(t)
	e.bridge()
	c1 := e.netns("c1")
	if err := e.host.AddVeth(Veth{HostName: "vethc1", Bridge: "hb0", NIC: NIC{NetNS: c1, Name: "eth0",
		Addresses: []netip.Prefix{pfx("10.99.0.11/24")}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.host.SetLimits("vethc1", 0, 80_000_000); err != nil {
		t.Fatal(err)
	}
	before := ifbCounters(t, e)
	if err := connect(t, c1, e.path, "10.99.0.1:8080"); err != nil {
		t.Fatal(err)
	}
	if after := ifbCounters(t, e); after.PacketsSent <= before.PacketsSent {
		t.Errorf("ifb sent %d packets before the connection, %d after", before.PacketsSent, after.PacketsSent)
	}

	if err := e.host.DeleteLink("vethc1"); err != nil {
		t.Fatal(err)
	}
	if got, want := e.links(), []string{"hb0", "lo"}; !slices.Equal(got, want) {
		t.Errorf("after delete: links %v, want %v", got, want)
	}

	// The veth goes with its namespace, without DeleteLink: PruneLimits.
	if err := e.host.AddVeth(Veth{HostName: "vethc1", Bridge: "hb0", NIC: NIC{NetNS: c1, Name: "eth0"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.host.SetLimits("vethc1", 0, 80_000_000); err != nil {
		t.Fatal(err)
	}
	if err := DeleteLinkInNetNS(c1, "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := e.host.PruneLimits(); err != nil {
		t.Fatal(err)
	}
	if got, want := e.links(), []string{"hb0", "lo"}; !slices.Equal(got, want) {
		t.Errorf("after prune: links %v, want %v", got, want)
	}
}

func ifbCounters(t *testing.T, e *testEnv) Counters {
	t.Helper()
	ifs, err := e.host.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Name == ifbName("vethc1") {
			return i.Counters
		}
	}
	t.Fatal("no ifb")
	return Counters{}
}

// TestLimitsBadInput: a missing link, a bad name, and an ifb name held
// by something else.
func TestLimitsBadInput(t *testing.T) {
	e := newEnv(t)
	if err := e.host.SetLimits("nosuch0", 1000, 0); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing link: %v, want not found", err)
	}
	if _, _, err := e.host.Limits("nosuch0"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("limits of a missing link: %v, want not found", err)
	}
	if err := e.host.SetLimits("bad/name", 1000, 0); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad name: %v, want invalid", err)
	}
	// A tap (taps are limited like veths) whose ifb name is taken by a bridge.
	if err := e.host.CreateTap("tapvm1", "", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.host.EnsureBridge(Bridge{Name: ifbName("tapvm1")}); err != nil {
		t.Fatal(err)
	}
	if err := e.host.SetLimits("tapvm1", 0, 1000); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("ifb name taken: %v, want a conflict", err)
	}
	if err := e.host.SetLimits("tapvm1", 8000, 0); err != nil {
		t.Errorf("ingress limit on a tap: %v", err)
	}
	l, err := e.host.nl.LinkByName(ifbName("tapvm1"))
	if err != nil || l.Type() != "bridge" {
		t.Errorf("the bridge in the ifb's name: %v %v", l, err)
	}
}

// TestDeleteLimits: limits and ifb gone with the link there, the ifb gone
// with the link gone, nothing to do without limits.
func TestDeleteLimits(t *testing.T) {
	e := newEnv(t)
	e.bridge()
	c1 := e.netns("c1")
	v := Veth{HostName: "vethc1", Bridge: "hb0", NIC: NIC{NetNS: c1, Name: "eth0"}}
	if err := e.host.AddVeth(v); err != nil {
		t.Fatal(err)
	}
	if err := e.host.SetLimits("vethc1", 8000, 8000); err != nil {
		t.Fatal(err)
	}
	if err := e.host.DeleteLimits("vethc1"); err != nil {
		t.Fatal(err)
	}
	if in, eg, err := e.host.Limits("vethc1"); err != nil || in != 0 || eg != 0 {
		t.Errorf("limits %d/%d (%v) after DeleteLimits", in, eg, err)
	}
	if got, want := e.links(), []string{"hb0", "lo", "vethc1"}; !slices.Equal(got, want) {
		t.Errorf("links %v, want %v", got, want)
	}
	if err := e.host.SetLimits("vethc1", 0, 8000); err != nil {
		t.Fatal(err)
	}
	if err := DeleteLinkInNetNS(c1, "eth0"); err != nil { // the pair goes
		t.Fatal(err)
	}
	for range 2 {
		if err := e.host.DeleteLimits("vethc1"); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := e.links(), []string{"hb0", "lo"}; !slices.Equal(got, want) {
		t.Errorf("links %v, want %v", got, want)
	}
}

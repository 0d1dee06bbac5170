package firewall

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// TestValidateBad: every kind of bad input is refused with its error kind
// and a message naming the item and the field. Pure: no kernel.
func TestValidateBad(t *testing.T) {
	a4 := netip.MustParseAddr("10.0.0.2")
	a6 := netip.MustParseAddr("fd00::2")
	good := Forward{Proto: TCP, ListenPorts: Port(80), Target: a4, TargetPorts: Port(80)}
	with := func(change func(*Forward)) State {
		fw := good
		change(&fw)
		return State{Forwards: []Forward{fw}}
	}
	tests := []struct {
		name string
		st   State
		kind error
		msg  string // a part of the message
	}{
		{"bad proto", with(func(f *Forward) { f.Proto = "icmp" }), errdefs.ErrInvalidArgument, `protocol "icmp"`},
		{"empty proto", with(func(f *Forward) { f.Proto = "" }), errdefs.ErrInvalidArgument, "protocol"},
		{"upper-case proto", with(func(f *Forward) { f.Proto = "TCP" }), errdefs.ErrInvalidArgument, "protocol"},
		{"listen port 0", with(func(f *Forward) { f.ListenPorts = Port(0) }), errdefs.ErrInvalidArgument, "listen ports"},
		{"target port 0", with(func(f *Forward) { f.TargetPorts = Ports{} }), errdefs.ErrInvalidArgument, "target ports"},
		{"listen range backwards", with(func(f *Forward) { f.ListenPorts = PortRange(90, 80) }), errdefs.ErrInvalidArgument, "listen ports"},
		{"range from 0", with(func(f *Forward) { f.ListenPorts = PortRange(0, 10) }), errdefs.ErrInvalidArgument, "port 0"},
		{"range size mismatch", with(func(f *Forward) {
			f.ListenPorts, f.TargetPorts = PortRange(8000, 8009), PortRange(80, 84)
		}), errdefs.ErrInvalidArgument, "5 ports for 10 listen ports"},
		{"one listen port, a target range", with(func(f *Forward) { f.TargetPorts = PortRange(80, 81) }), errdefs.ErrInvalidArgument, "target ports"},
		{"no target", with(func(f *Forward) { f.Target = netip.Addr{} }), errdefs.ErrInvalidArgument, "target"},
		{"unspecified target", with(func(f *Forward) { f.Target = netip.IPv4Unspecified() }), errdefs.ErrInvalidArgument, "target 0.0.0.0"},
		{"loopback target", with(func(f *Forward) { f.Target = netip.MustParseAddr("127.0.0.1") }), errdefs.ErrInvalidArgument, "target 127.0.0.1"},
		{"multicast target", with(func(f *Forward) { f.Target = netip.MustParseAddr("ff02::1") }), errdefs.ErrInvalidArgument, "target ff02::1"},
		{"zoned target", with(func(f *Forward) { f.Target = netip.MustParseAddr("fe80::1%eth0") }), errdefs.ErrInvalidArgument, "zone"},
		{"family mismatch 4->6", with(func(f *Forward) { f.Listen, f.Target = netip.MustParseAddr("192.0.2.1"), a6 }), errdefs.ErrInvalidArgument, "address family"},
		{"family mismatch any6->4", with(func(f *Forward) { f.Listen = netip.IPv6Unspecified() }), errdefs.ErrInvalidArgument, "address family"},
		{"loopback listen", with(func(f *Forward) { f.Listen = netip.MustParseAddr("127.0.0.1") }), errdefs.ErrInvalidArgument, "listen 127.0.0.1"},
		{"long comment", with(func(f *Forward) { f.Comment = strings.Repeat("x", 129) }), errdefs.ErrInvalidArgument, "comment"},
		{"same port twice", State{Forwards: []Forward{good, good}}, errdefs.ErrConflict, "forward 1: tcp any address port 80 is already forwarded by forward 0"},
		{"overlapping ranges", State{Forwards: []Forward{
			{Proto: UDP, Listen: netip.MustParseAddr("192.0.2.1"), ListenPorts: PortRange(100, 200), Target: a4, TargetPorts: Port(1)},
			{Proto: UDP, Listen: netip.MustParseAddr("192.0.2.1"), ListenPorts: PortRange(200, 300), Target: a4, TargetPorts: Port(1), Comment: "c9"},
		}}, errdefs.ErrConflict, `forward 1 ("c9")`},
		{"any overlaps a given address", State{Forwards: []Forward{
			{Proto: TCP, Listen: netip.MustParseAddr("192.0.2.1"), ListenPorts: Port(80), Target: a4, TargetPorts: Port(1)},
			good,
		}}, errdefs.ErrConflict, "already forwarded"},
		{"no bridge name", State{Networks: []Network{{}}}, errdefs.ErrInvalidArgument, "bridge"},
		{"long bridge name", State{Networks: []Network{{Bridge: "a-very-long-bridge"}}}, errdefs.ErrInvalidArgument, "longer than 15"},
		{"bridge name with a slash", State{Networks: []Network{{Bridge: "br/0"}}}, errdefs.ErrInvalidArgument, "not a valid interface name"},
		{"bridge twice", State{Networks: []Network{{Bridge: "br0"}, {Bridge: "br0"}}}, errdefs.ErrInvalidArgument, "listed twice"},
		{"ipv6 prefix as ipv4", State{Networks: []Network{{Bridge: "br0", IPv4: netip.MustParsePrefix("fd00::1/64")}}}, errdefs.ErrInvalidArgument, "not an IPv4 prefix"},
		{"ipv4 prefix as ipv6", State{Networks: []Network{{Bridge: "br0", IPv6: netip.MustParsePrefix("10.0.0.1/24")}}}, errdefs.ErrInvalidArgument, "not an IPv6 prefix"},
		{"nat4 without ipv4", State{Networks: []Network{{Bridge: "br0", NAT4: true}}}, errdefs.ErrInvalidArgument, "nat4"},
		{"nat6 without ipv6", State{Networks: []Network{{Bridge: "br0", IPv4: netip.MustParsePrefix("10.0.0.1/24"), NAT6: true}}}, errdefs.ErrInvalidArgument, "nat6"},
		{"filter without a link", State{MACFilters: []MACFilter{{MAC: mfC1.MAC}}}, errdefs.ErrInvalidArgument, "mac filter 0"},
		{"filter on a bad link name", State{MACFilters: []MACFilter{{HostLink: "veth/0", MAC: mfC1.MAC}}}, errdefs.ErrInvalidArgument, "host link"},
		{"filter without a mac", State{MACFilters: []MACFilter{{HostLink: "hgr1"}}}, errdefs.ErrInvalidArgument, "not an Ethernet address"},
		{"filter with a long mac", State{MACFilters: []MACFilter{{HostLink: "hgr1", MAC: mustMAC("00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01")}}}, errdefs.ErrInvalidArgument, "not an Ethernet address"},
		{"filter with a multicast mac", State{MACFilters: []MACFilter{{HostLink: "hgr1", MAC: mustMAC("33:33:00:00:00:01")}}}, errdefs.ErrInvalidArgument, "multicast"},
		{"filter with the zero mac", State{MACFilters: []MACFilter{{HostLink: "hgr1", MAC: mustMAC("00:00:00:00:00:00")}}}, errdefs.ErrInvalidArgument, "zero address"},
		{"filter with a long comment", State{MACFilters: []MACFilter{{HostLink: "hgr1", MAC: mfC1.MAC, Comment: strings.Repeat("c", 129)}}}, errdefs.ErrInvalidArgument, "comment"},
		{"one link filtered twice", State{MACFilters: []MACFilter{
			{HostLink: "hgr1", MAC: mfC1.MAC, Comment: "nic/1/eth0"},
			{HostLink: "hgr1", MAC: mfVM.MAC},
		}}, errdefs.ErrConflict, `host link "hgr1" is already filtered by mac filter 0 ("nic/1/eth0")`},
		{"overlapping subnets", State{Networks: []Network{
			{Bridge: "br0", IPv4: netip.MustParsePrefix("10.0.0.1/16")},
			{Bridge: "br1", IPv4: netip.MustParsePrefix("10.0.3.1/24")},
		}}, errdefs.ErrConflict, "overlaps network 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.st.validate()
			if !errors.Is(err, tt.kind) {
				t.Fatalf("validate: %v, want a %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("validate: %q does not say %q", err, tt.msg)
			}
		})
	}
}

// TestValidateGood: good input passes, normalised.
func TestValidateGood(t *testing.T) {
	tests := []struct {
		name    string
		in, out State
	}{
		{"empty", State{}, State{Networks: []Network{}, Forwards: []Forward{}}},
		{
			"prefixes masked, ports filled in, 4-in-6 unmapped",
			State{
				Networks: []Network{{Bridge: "hangarbr0", IPv4: netip.MustParsePrefix("10.0.3.1/24"), IPv6: netip.MustParsePrefix("fd00:1::1/64"), NAT4: true}},
				Forwards: []Forward{{Proto: UDP, Listen: netip.MustParseAddr("::ffff:192.0.2.1"), ListenPorts: Port(53), Target: netip.MustParseAddr("::ffff:10.0.3.2"), TargetPorts: Port(5353)}},
			},
			State{
				Networks: []Network{{Bridge: "hangarbr0", IPv4: netip.MustParsePrefix("10.0.3.0/24"), IPv6: netip.MustParsePrefix("fd00:1::/64"), NAT4: true}},
				Forwards: []Forward{{Proto: UDP, Listen: netip.MustParseAddr("192.0.2.1"), ListenPorts: PortRange(53, 53), Target: netip.MustParseAddr("10.0.3.2"), TargetPorts: PortRange(5353, 5353)}},
			},
		},
		{
			// Two ports may carry one MAC: a VM and its clone are the
			// store's business (IPAM refuses it), not the firewall's.
			"mac filters",
			State{MACFilters: []MACFilter{mfC1, {HostLink: "tap0", MAC: mfC1.MAC}}},
			State{MACFilters: []MACFilter{mfC1, {HostLink: "tap0", MAC: mfC1.MAC}}},
		},
		{
			"same port on two addresses, two protocols, two families",
			State{Forwards: []Forward{
				{Proto: TCP, Listen: netip.MustParseAddr("192.0.2.1"), ListenPorts: Port(80), Target: netip.MustParseAddr("10.0.0.2"), TargetPorts: Port(80)},
				{Proto: TCP, Listen: netip.MustParseAddr("192.0.2.2"), ListenPorts: Port(80), Target: netip.MustParseAddr("10.0.0.3"), TargetPorts: Port(80)},
				{Proto: UDP, ListenPorts: Port(80), Target: netip.MustParseAddr("10.0.0.3"), TargetPorts: Port(80)},
				{Proto: TCP, Listen: netip.IPv6Unspecified(), ListenPorts: Port(80), Target: netip.MustParseAddr("fd00::3"), TargetPorts: Port(80)},
			}},
			State{Networks: []Network{}, Forwards: []Forward{
				{Proto: TCP, Listen: netip.MustParseAddr("192.0.2.1"), ListenPorts: PortRange(80, 80), Target: netip.MustParseAddr("10.0.0.2"), TargetPorts: PortRange(80, 80)},
				{Proto: TCP, Listen: netip.MustParseAddr("192.0.2.2"), ListenPorts: PortRange(80, 80), Target: netip.MustParseAddr("10.0.0.3"), TargetPorts: PortRange(80, 80)},
				{Proto: UDP, ListenPorts: PortRange(80, 80), Target: netip.MustParseAddr("10.0.0.3"), TargetPorts: PortRange(80, 80)},
				{Proto: TCP, Listen: netip.IPv6Unspecified(), ListenPorts: PortRange(80, 80), Target: netip.MustParseAddr("fd00::3"), TargetPorts: PortRange(80, 80)},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.validate()
			if err != nil {
				t.Fatalf("validate: %v", err)
			}
			if diff := cmp.Diff(tt.out, got, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestBuildMapPieces: a one-to-one range is cut into maps of at most
// maxMapPorts ports that together cover it exactly, each port to its own.
func TestBuildMapPieces(t *testing.T) {
	tests := []struct {
		listen, target Ports
		rules          int
	}{
		{PortRange(1000, 1000+maxMapPorts-1), PortRange(1, maxMapPorts), 1},
		{PortRange(1000, 1000+maxMapPorts), PortRange(1, maxMapPorts+1), 2},
		{PortRange(1, 65535), PortRange(1, 65535), 1}, // same ports: no map
		{PortRange(2, 65535), PortRange(1, 65534), 64},
	}
	for _, tt := range tests {
		st, err := State{Forwards: []Forward{{Proto: TCP, ListenPorts: tt.listen, Target: netip.MustParseAddr("10.0.0.2"), TargetPorts: tt.target}}}.validate()
		if err != nil {
			t.Fatal(err)
		}
		rules := dnatRules(st.Forwards[0])
		if len(rules) != tt.rules {
			t.Errorf("%s -> %s: %d rules, want %d", tt.listen, tt.target, len(rules), tt.rules)
		}
		seen := 0
		for _, r := range rules {
			if r.set == nil {
				continue
			}
			if len(r.set.elems) > maxMapPorts {
				t.Errorf("%s -> %s: a map of %d ports", tt.listen, tt.target, len(r.set.elems))
			}
			for _, e := range r.set.elems {
				from := int(e.Key[0])<<8 | int(e.Key[1])
				to := int(e.Val[0])<<8 | int(e.Val[1])
				if from != int(tt.listen.First)+seen || to != int(tt.target.First)+seen {
					t.Fatalf("%s -> %s: element %d is %d:%d", tt.listen, tt.target, seen, from, to)
				}
				seen++
			}
		}
		if tt.rules > 1 && seen != tt.listen.count() {
			t.Errorf("%s -> %s: the maps hold %d ports, want %d", tt.listen, tt.target, seen, tt.listen.count())
		}
	}
}

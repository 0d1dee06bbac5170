package firewall

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

var (
	br0 = Network{Bridge: "hangarbr0", IPv4: netip.MustParsePrefix("10.99.0.1/24"), IPv6: netip.MustParsePrefix("fd42:99::1/64"), NAT4: true, NAT6: true}
	br1 = Network{Bridge: "br1", IPv4: netip.MustParsePrefix("10.98.0.1/24")}

	fwdAny4   = Forward{Proto: TCP, ListenPorts: Port(8080), Target: netip.MustParseAddr("10.99.0.2"), TargetPorts: Port(80), Comment: "c1/proxy0"}
	fwdAddr6  = Forward{Proto: UDP, Listen: netip.MustParseAddr("fd00::5"), ListenPorts: Port(53), Target: netip.MustParseAddr("fd42:99::2"), TargetPorts: Port(5353)}
	fwdMapped = Forward{Proto: TCP, Listen: netip.MustParseAddr("192.0.2.1"), ListenPorts: PortRange(9000, 9002), Target: netip.MustParseAddr("10.99.0.3"), TargetPorts: PortRange(7000, 7002), Comment: "c2"}
	fwdSame   = Forward{Proto: UDP, Listen: netip.MustParseAddr("::"), ListenPorts: PortRange(60000, 60010), Target: netip.MustParseAddr("fd42:99::3"), TargetPorts: PortRange(60000, 60010)}
	fwdOnto1  = Forward{Proto: TCP, ListenPorts: PortRange(3000, 3005), Target: netip.MustParseAddr("10.98.0.9"), TargetPorts: Port(3000)}

	mfC1 = MACFilter{HostLink: "hgr0a1b2c3d", MAC: mustMAC("00:16:3e:aa:bb:cc"), Comment: "nic/1/eth0"}
	mfVM = MACFilter{HostLink: "tap-vm1", MAC: mustMAC("00:16:3e:00:00:01")}
)

func mustMAC(s string) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}

// TestApply: each State gives the table it should (rules per chain, and
// the rules as nft prints them), applying it again changes nothing,
// applying a smaller State removes the rest, Remove leaves no table, and
// the tables that are not ours are never touched.
func TestApply(t *testing.T) {
	tests := []struct {
		name   string
		st     State
		chains map[string]int
		lines  []string // as `nft list ruleset` prints them
	}{
		{
			name:   "one network with nat",
			st:     State{Networks: []Network{br0}},
			chains: map[string]int{"postrouting": 4, "input": 2, "forward": 2},
			lines: []string{
				"type nat hook postrouting priority srcnat; policy accept;",
				`ip saddr 10.99.0.0/24 ip daddr != 10.99.0.0/24 oifname != "hangarbr0" masquerade`,
				`ct status dnat oifname "hangarbr0" ip saddr 10.99.0.0/24 masquerade`,
				`ip6 saddr fd42:99::/64 ip6 daddr != fd42:99::/64 oifname != "hangarbr0" masquerade`,
				`ct status dnat oifname "hangarbr0" ip6 saddr fd42:99::/64 masquerade`,
				`iifname "hangarbr0" udp dport { 53, 67, 547 } accept`,
				`iifname "hangarbr0" tcp dport 53 accept`,
				`iifname "hangarbr0" accept`,
				`oifname "hangarbr0" accept`,
			},
		},
		{
			name:   "network without nat or ipv6",
			st:     State{Networks: []Network{br1}},
			chains: map[string]int{"postrouting": 1, "input": 2, "forward": 2},
			lines: []string{
				`ct status dnat oifname "br1" ip saddr 10.98.0.0/24 masquerade`,
				`iifname "br1" udp dport { 53, 67 } accept`,
			},
		},
		{
			name:   "forwards only",
			st:     State{Forwards: []Forward{fwdAny4, fwdAddr6, fwdMapped, fwdSame, fwdOnto1}},
			chains: map[string]int{"prerouting": 5, "output": 5},
			lines: []string{
				"type nat hook prerouting priority dstnat; policy accept;",
				"type nat hook output priority -100; policy accept;",
				`fib daddr type local ip daddr != 127.0.0.0/8 tcp dport 8080 dnat ip to 10.99.0.2:80 comment "c1/proxy0"`,
				"ip6 daddr fd00::5 udp dport 53 dnat ip6 to [fd42:99::2]:5353",
				`ip daddr 192.0.2.1 tcp dport 9000-9002 dnat ip to 10.99.0.3:tcp dport map { 9000 : 7000, 9001 : 7001, 9002 : 7002 } comment "c2"`,
				"fib daddr type local ip6 daddr != ::1 udp dport 60000-60010 dnat ip6 to fd42:99::3",
				"fib daddr type local ip daddr != 127.0.0.0/8 tcp dport 3000-3005 dnat ip to 10.98.0.9:3000",
			},
		},
		{
			// One verdict map sends each filtered port's frames to its
			// chain; five checks there.
			name:   "mac filters only",
			st:     State{MACFilters: []MACFilter{mfC1, mfVM}},
			chains: map[string]int{"bridge prerouting": 1, "bridge mac-hgr0a1b2c3d": 5, "bridge mac-tap-vm1": 5},
			lines: []string{
				"type filter hook prerouting priority filter; policy accept;",
				"iifname vmap @ports",
				`"hgr0a1b2c3d" : jump mac-hgr0a1b2c3d`,
				`"tap-vm1" : jump mac-tap-vm1`,
				`ether saddr != 00:16:3e:aa:bb:cc drop comment "nic/1/eth0"`,
				`arp saddr ether != 00:16:3e:aa:bb:cc drop comment "nic/1/eth0"`,
				`icmpv6 type nd-router-solicit @th,64,8 0x1 @th,80,48 != 0x163eaabbcc drop comment "nic/1/eth0"`,
				`icmpv6 type nd-neighbor-solicit @th,192,8 0x1 @th,208,48 != 0x163eaabbcc drop comment "nic/1/eth0"`,
				`icmpv6 type nd-neighbor-advert @th,192,8 0x2 @th,208,48 != 0x163eaabbcc drop comment "nic/1/eth0"`,
				"ether saddr != 00:16:3e:00:00:01 drop\n",
			},
		},
		{
			name: "everything",
			st:   State{Networks: []Network{br0, br1}, Forwards: []Forward{fwdAny4, fwdMapped}, MACFilters: []MACFilter{mfVM, mfC1}},
			chains: map[string]int{"prerouting": 2, "output": 2, "postrouting": 5, "input": 4, "forward": 4,
				"bridge prerouting": 1, "bridge mac-hgr0a1b2c3d": 5, "bridge mac-tap-vm1": 5},
		},
		{
			// 10000 ports: a batch past the kernel's default socket
			// buffer, in maps of 1024 ports: 10 rules per chain.
			name: "a long port range mapped one to one",
			st: State{Forwards: []Forward{{Proto: UDP, ListenPorts: PortRange(20000, 29999),
				Target: netip.MustParseAddr("10.99.0.4"), TargetPorts: PortRange(10000, 19999)}}},
			chains: map[string]int{"prerouting": 10, "output": 10},
			lines:  []string{"fib daddr type local ip daddr != 127.0.0.0/8 udp dport 29216-29999 dnat ip to 10.99.0.4:udp dport map { "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNetNS(t)
			addForeignTable(t, ns)
			foreign := listing(t, ns)
			f := openFirewall(t, ns)

			if err := f.Apply(tt.st); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if diff := cmp.Diff(tt.chains, chainRules(t, ns)); diff != "" {
				t.Errorf("rules per chain (-want +got):\n%s", diff)
			}
			first, firstText := listing(t, ns), ruleset(t, ns)
			for _, l := range tt.lines {
				if firstText != "" && !strings.Contains(firstText, l) {
					t.Errorf("ruleset has no %q:\n%s", l, firstText)
				}
			}
			for _, tb := range []struct {
				name string
				want bool
			}{
				{"table inet hangar", len(tt.st.Networks)+len(tt.st.Forwards) > 0},
				{"table bridge hangar", len(tt.st.MACFilters) > 0},
			} {
				if n := strings.Count(firstText, tb.name+" {"); firstText != "" && n != map[bool]int{true: 1}[tb.want] {
					t.Errorf("%d of %s, want %v:\n%s", n, tb.name, tb.want, firstText)
				}
			}

			// Again, as a daemon restarted after kill -9 does: the same.
			if err := f.Apply(tt.st); err != nil {
				t.Fatalf("second Apply: %v", err)
			}
			if diff := cmp.Diff(first, listing(t, ns)); diff != "" {
				t.Errorf("second Apply changed the ruleset (-first +second):\n%s", diff)
			}
			if text := ruleset(t, ns); text != firstText {
				t.Errorf("second Apply changed the ruleset:\n%s\nthen:\n%s", firstText, text)
			}

			// A new Firewall (the restarted daemon) applying the same.
			f2 := openFirewall(t, ns)
			if err := f2.Apply(tt.st); err != nil {
				t.Fatalf("Apply from a new Firewall: %v", err)
			}
			if diff := cmp.Diff(first, listing(t, ns)); diff != "" {
				t.Errorf("a new Firewall's Apply changed the ruleset (-first +second):\n%s", diff)
			}

			// Fewer items: the rest goes.
			smaller := State{}
			if len(tt.st.Networks) > 0 {
				smaller.Networks = tt.st.Networks[:1]
			}
			if len(tt.st.Forwards) > 1 {
				smaller.Forwards = tt.st.Forwards[1:2]
			}
			if len(tt.st.MACFilters) > 1 {
				smaller.MACFilters = tt.st.MACFilters[1:]
			}
			if err := f.Apply(smaller); err != nil {
				t.Fatalf("Apply smaller: %v", err)
			}
			f3 := openFirewall(t, ns)
			if err := f3.Apply(smaller); err != nil {
				t.Fatal(err)
			}
			want := listing(t, ns)
			if err := f.Remove(); err != nil {
				t.Fatal(err)
			}
			if err := f.Apply(smaller); err != nil { // on an empty namespace
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, listing(t, ns)); diff != "" {
				t.Errorf("shrinking to a State differs from applying it afresh (-fresh +shrunk):\n%s", diff)
			}

			// Remove, twice: no table, the others as they were.
			for range 2 {
				if err := f.Remove(); err != nil {
					t.Fatalf("Remove: %v", err)
				}
				if diff := cmp.Diff(foreign, listing(t, ns)); diff != "" {
					t.Errorf("after Remove (-before Apply +after):\n%s", diff)
				}
			}
			if err := f.Apply(tt.st); err != nil {
				t.Fatal(err)
			}
			if err := f.Apply(State{}); err != nil {
				t.Fatalf("Apply empty: %v", err)
			}
			if diff := cmp.Diff(foreign, listing(t, ns)); diff != "" {
				t.Errorf("after Apply(State{}) (-before Apply +after):\n%s", diff)
			}
		})
	}
}

// TestApplyBadInputChangesNothing: a State that does not validate returns
// its kind of error and leaves the table as the last good Apply made it.
func TestApplyBadInputChangesNothing(t *testing.T) {
	ns := newNetNS(t)
	f := openFirewall(t, ns)
	good := State{Networks: []Network{br0}, Forwards: []Forward{fwdAny4}, MACFilters: []MACFilter{mfC1}}
	if err := f.Apply(good); err != nil {
		t.Fatal(err)
	}
	before := listing(t, ns)
	tests := []struct {
		name string
		st   State
		kind error
	}{
		{"bad protocol", State{Forwards: []Forward{{Proto: "sctp", ListenPorts: Port(1), Target: fwdAny4.Target, TargetPorts: Port(1)}}}, errdefs.ErrInvalidArgument},
		{"good then bad", State{Networks: []Network{br0}, Forwards: []Forward{fwdAny4, {Proto: TCP, ListenPorts: Port(0), Target: fwdAny4.Target, TargetPorts: Port(1)}}}, errdefs.ErrInvalidArgument},
		{"port forwarded twice", State{Forwards: []Forward{fwdAny4, fwdAny4}}, errdefs.ErrConflict},
		{"link filtered twice", State{MACFilters: []MACFilter{mfC1, {HostLink: mfC1.HostLink, MAC: mfVM.MAC}}}, errdefs.ErrConflict},
		{"good filter, bad filter", State{MACFilters: []MACFilter{mfVM, {HostLink: "hgr1", MAC: mustMAC("01:00:5e:00:00:01")}}}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.Apply(tt.st)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("Apply: %v, want a %v", err, tt.kind)
			}
			if diff := cmp.Diff(before, listing(t, ns)); diff != "" {
				t.Errorf("a bad Apply changed the ruleset (-before +after):\n%s", diff)
			}
		})
	}
}

// TestApplyTables: each table exists exactly when the State has rules for
// it, whatever came before, and another program's tables stay.
func TestApplyTables(t *testing.T) {
	ns := newNetNS(t)
	addForeignTable(t, ns)
	f := openFirewall(t, ns)
	tables := func() (inet, bridge bool) {
		for _, l := range listing(t, ns) {
			inet = inet || l == fmt.Sprintf("table %d %s", nftables.TableFamilyINet, TableName)
			bridge = bridge || l == fmt.Sprintf("table %d %s", nftables.TableFamilyBridge, TableName)
		}
		return inet, bridge
	}
	foreign := []string{"table 10 hangar", "table 2 other", "table 7 other"}
	steps := []struct {
		name         string
		st           State
		inet, bridge bool
	}{
		{"filters", State{MACFilters: []MACFilter{mfC1}}, false, true},
		{"network", State{Networks: []Network{br1}}, true, false},
		{"both", State{Networks: []Network{br1}, MACFilters: []MACFilter{mfC1, mfVM}}, true, true},
		{"forward and filter", State{Forwards: []Forward{fwdAny4}, MACFilters: []MACFilter{mfVM}}, true, true},
		{"nothing", State{}, false, false},
		{"filters again", State{MACFilters: []MACFilter{mfVM}}, false, true},
	}
	for _, s := range steps {
		if err := f.Apply(s.st); err != nil {
			t.Fatalf("%s: Apply: %v", s.name, err)
		}
		if inet, bridge := tables(); inet != s.inet || bridge != s.bridge {
			t.Errorf("%s: inet table %v, bridge table %v; want %v, %v", s.name, inet, bridge, s.inet, s.bridge)
		}
		all := strings.Join(listing(t, ns), "\n")
		for _, tb := range foreign {
			if !strings.Contains(all, tb) {
				t.Errorf("%s: %s is gone:\n%s", s.name, tb, all)
			}
		}
	}
	if err := f.Remove(); err != nil {
		t.Fatal(err)
	}
	if inet, bridge := tables(); inet || bridge {
		t.Errorf("after Remove: inet table %v, bridge table %v", inet, bridge)
	}
}

func TestNewBadNetNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: nftables")
	}
	for _, path := range []string{"/nonexistent/ns/net", "/proc/self/ns/uts", "/etc/hostname"} {
		if f, err := New(InNetNS(path)); err == nil {
			f.Close()
			t.Errorf("New(InNetNS(%q)) succeeded", path)
		}
	}
}

func TestClosed(t *testing.T) {
	ns := newNetNS(t)
	f := openFirewall(t, ns)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(State{Networks: []Network{br1}}); err == nil {
		t.Error("Apply on a closed Firewall succeeded")
	}
	if err := f.EnableForwarding(true, true); err == nil {
		t.Error("EnableForwarding on a closed Firewall succeeded")
	}
}

// TestEnableForwarding: the sysctls turn on in the firewall's namespace
// only, as asked, and a second call is harmless.
func TestEnableForwarding(t *testing.T) {
	tests := []struct {
		name       string
		ipv4, ipv6 bool
		want       [2]string
	}{
		{"neither", false, false, [2]string{"0", "0"}},
		{"ipv4", true, false, [2]string{"1", "0"}},
		{"ipv6", false, true, [2]string{"0", "1"}},
		{"both", true, true, [2]string{"1", "1"}},
	}
	read := func(t *testing.T, path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	hostBefore := [2]string{read(t, forwardIPv4), read(t, forwardIPv6)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNetNS(t)
			// A new namespace copies ip_forward from the first one:
			// start from off.
			inNS(t, ns, func() {
				for _, p := range []string{forwardIPv4, forwardIPv6} {
					if err := os.WriteFile(p, []byte("0\n"), 0o644); err != nil {
						t.Error(err)
					}
				}
			})
			f := openFirewall(t, ns)
			for range 2 {
				if err := f.EnableForwarding(tt.ipv4, tt.ipv6); err != nil {
					t.Fatalf("EnableForwarding: %v", err)
				}
			}
			var got [2]string
			inNS(t, ns, func() { got = [2]string{read(t, forwardIPv4), read(t, forwardIPv6)} })
			if got != tt.want {
				t.Errorf("ip_forward, all.forwarding = %v, want %v", got, tt.want)
			}
		})
	}
	if hostAfter := [2]string{read(t, forwardIPv4), read(t, forwardIPv6)}; hostAfter != hostBefore {
		t.Errorf("the test's own namespace changed: %v -> %v", hostBefore, hostAfter)
	}
}

// BenchmarkApply100Forwards: the daemon's start (or any change) with one
// network and 100 forwards, a few of them ranges.
func BenchmarkApply100Forwards(b *testing.B) {
	ns := newNetNS(b)
	f := openFirewall(b, ns)
	st := State{Networks: []Network{br0}}
	for i := range 100 {
		fw := Forward{
			Proto: TCP, ListenPorts: Port(uint16(10000 + i*10)),
			Target: netip.AddrFrom4([4]byte{10, 99, 0, byte(2 + i)}), TargetPorts: Port(80),
			Comment: fmt.Sprintf("c%d/proxy0", i),
		}
		switch i % 4 {
		case 1:
			fw.Proto = UDP
		case 2:
			fw.Target = netip.MustParseAddr(fmt.Sprintf("fd42:99::%x", 2+i))
		case 3:
			fw.ListenPorts = PortRange(fw.ListenPorts.First, fw.ListenPorts.First+4)
			fw.TargetPorts = PortRange(8000, 8004)
		}
		st.Forwards = append(st.Forwards, fw)
	}
	for b.Loop() {
		if err := f.Apply(st); err != nil {
			b.Fatal(err)
		}
	}
	n := chainRules(b, ns)
	if !slices.Equal([]int{n["prerouting"], n["output"]}, []int{100, 100}) {
		b.Fatalf("rules per chain after the runs: %v", n)
	}
	rules := 0
	for _, c := range n {
		rules += c
	}
	b.ReportMetric(float64(rules), "rules")
}

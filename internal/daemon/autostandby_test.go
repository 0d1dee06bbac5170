package daemon

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/network"
)

func TestStandbyInstance(t *testing.T) {
	addrs := map[string][]netip.Addr{"eth0/00:16:3e:00:00:01": {netip.MustParseAddr("10.0.3.5"), netip.MustParseAddr("fd42::5")}}
	of := func(dev, hw string) []netip.Addr { return addrs[dev+"/"+strings.ToLower(hw)] }
	for _, tc := range []struct {
		name        string
		in          instance.Instance
		vm, running bool
		standby     bool
		nic, gpu    bool
		want        []netip.Addr
	}{
		{"vm with a nic", instance.Instance{Type: instance.TypeVM, Status: instance.StatusRunning,
			ExpandedConfig:  map[string]string{"volatile.eth0.hwaddr": "00:16:3E:00:00:01"},
			ExpandedDevices: instance.Devices{"eth0": {"type": "nic", "network": "hangarbr0"}, "root": {"type": "disk"}}},
			true, true, false, true, false, []netip.Addr{netip.MustParseAddr("10.0.3.5"), netip.MustParseAddr("fd42::5")}},
		{"in standby: stopped with a saved state", instance.Instance{Type: instance.TypeVM, Status: instance.StatusStopped, Stateful: true,
			ExpandedConfig:  map[string]string{"volatile.eth0.hwaddr": "00:16:3e:00:00:01"},
			ExpandedDevices: instance.Devices{"eth0": {"type": "nic", "network": "hangarbr0"}}},
			true, false, true, true, false, []netip.Addr{netip.MustParseAddr("10.0.3.5"), netip.MustParseAddr("fd42::5")}},
		{"no allocation yet", instance.Instance{Type: instance.TypeVM, Status: instance.StatusStopped,
			ExpandedConfig: map[string]string{}, ExpandedDevices: instance.Devices{"eth0": {"type": "nic"}}},
			true, false, false, true, false, nil},
		{"container without nic, with gpu", instance.Instance{Type: instance.TypeContainer, Status: instance.StatusFrozen,
			ExpandedConfig: map[string]string{}, ExpandedDevices: instance.Devices{"g": {"type": "gpu"}}},
			false, false, false, false, true, nil},
	} {
		got := standbyInstance(tc.in, of)
		if got.VM != tc.vm || got.Running != tc.running || got.Standby != tc.standby || got.HasNIC != tc.nic || got.HasGPU != tc.gpu || !slices.Equal(got.Addrs, tc.want) {
			t.Errorf("%s: %+v", tc.name, got)
		}
	}
}

func TestProxyNATRules(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("10.0.3.5"), netip.MustParseAddr("fd42::5")}
	for _, tc := range []struct {
		name   string
		dev    map[string]string
		target string // "" = no rule
	}{
		{"nat to the wildcard", map[string]string{"type": "proxy", "nat": "true", "listen": "tcp:0.0.0.0:8080", "connect": "tcp:0.0.0.0:80"}, "10.0.3.5"},
		{"nat to loopback, ipv6 listen", map[string]string{"type": "proxy", "nat": "true", "listen": "tcp:[::]:8080", "connect": "tcp:[::1]:80"}, "fd42::5"},
		{"nat to an explicit address", map[string]string{"type": "proxy", "nat": "true", "listen": "tcp:127.0.0.2:8080", "connect": "tcp:10.0.3.9:80"}, "10.0.3.9"},
		{"userspace proxy", map[string]string{"type": "proxy", "listen": "tcp:0.0.0.0:8080", "connect": "tcp:127.0.0.1:80"}, ""},
		{"bad listen", map[string]string{"type": "proxy", "nat": "true", "listen": "sctp:x", "connect": "tcp:127.0.0.1:80"}, ""},
		{"a nic", map[string]string{"type": "nic", "nat": "true"}, ""},
	} {
		rules := proxyNATRules(instance.Devices{"p": tc.dev}, addrs)
		switch {
		case tc.target == "" && len(rules) != 0:
			t.Errorf("%s: rules %+v, want none", tc.name, rules)
		case tc.target != "" && (len(rules) != 1 || rules[0].Target != netip.MustParseAddr(tc.target) || rules[0].ListenPorts[0] != 8080 || rules[0].TargetPorts[0] != 80):
			t.Errorf("%s: rules %+v, want one to %s", tc.name, rules, tc.target)
		}
	}
}

func TestSameRules(t *testing.T) {
	r := func(owner string, port uint16) network.ForwardRule {
		return network.ForwardRule{Owner: owner, Proto: "tcp", ListenPorts: []uint16{port}, Target: netip.MustParseAddr("10.0.3.5"), TargetPorts: []uint16{80}}
	}
	const o = "autostandby/default/vm1"
	for _, tc := range []struct {
		name        string
		kept, rules []network.ForwardRule
		want        bool
	}{
		{"same", []network.ForwardRule{r(o, 8080)}, []network.ForwardRule{r("", 8080)}, true},
		{"none kept", nil, []network.ForwardRule{r("", 8080)}, false},
		{"port changed", []network.ForwardRule{r(o, 8080)}, []network.ForwardRule{r("", 8081)}, false},
		{"kept by another owner", []network.ForwardRule{r("proxy/x", 8080)}, []network.ForwardRule{r("", 8080)}, false},
		{"one more", []network.ForwardRule{r(o, 8080)}, []network.ForwardRule{r("", 8080), r("", 8081)}, false},
	} {
		if got := sameRules(tc.kept, tc.rules, o); got != tc.want {
			t.Errorf("%s: sameRules = %v, want %v", tc.name, got, tc.want)
		}
	}
}

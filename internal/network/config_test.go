package network

import (
	"fmt"
	"strings"
	"testing"
)

// TestValidateConfigKeys: every key of both types with a good and a bad
// value; a bad one is a 400 naming the key.
func TestValidateConfigKeys(t *testing.T) {
	tests := []struct {
		typ, key  string
		good, bad []string
	}{
		{TypeBridge, "ipv4.address", []string{"", "auto", "none", "10.0.3.1/24", "10.0.0.1/8", "10.9.9.1/30"},
			[]string{"10.0.3.0/24", "10.0.3.255/24", "10.0.3.1", "fd00::1/64", "10.0.0.1/7", "10.0.0.1/31", "10.0.0.1/32", "bogus", "AUTO"}},
		{TypeBridge, "ipv6.address", []string{"", "auto", "none", "fd42::1/64", "fd42::1/48", "fd42::ffff:ffff:ffff:ffff/64"},
			[]string{"fd42::/64", "fd42::1/65", "fd42::1/128", "fd42::1/7", "10.0.3.1/24", "fd42::1"}},
		{TypeBridge, "ipv4.nat", []string{"", "true", "false", "1", "0", "yes", "no", "on", "off", "TRUE"}, []string{"maybe", "2"}},
		{TypeBridge, "ipv4.dhcp", []string{"true", "false"}, []string{"enabled"}},
		{TypeBridge, "ipv4.routing", []string{"true", "off"}, []string{"-"}},
		{TypeBridge, "ipv6.nat", []string{"true", "false"}, []string{"nat"}},
		{TypeBridge, "ipv6.dhcp", []string{"true", "false"}, []string{"x"}},
		{TypeBridge, "ipv6.dhcp.stateful", []string{"true", "false"}, []string{"stateful"}},
		{TypeBridge, "ipv6.routing", []string{"true", "false"}, []string{"y"}},
		{TypeBridge, "dns.domain", []string{"", "hangar", "lab.example.com", "a-b.c1"},
			[]string{"-lab", "lab-", "a..b", "under_score", "sp ace", "x.", strings.Repeat("a", 64)}},
		{TypeBridge, "dns.mode", []string{"", "managed", "dynamic", "none"}, []string{"Managed", "all"}},
		{TypeBridge, "bridge.mtu", []string{"", "1280", "1500", "9000", "16384"}, []string{"1279", "16385", "0", "-1", "1500b"}},
		{TypeBridge, "bridge.hwaddr", []string{"", "00:16:3e:00:00:01", "02:00:00:aa:bb:cc"},
			[]string{"01:00:5e:00:00:01", "00-16-3e-00-00-01", "00:16:3e:00:00", "00:16:3e:00:00:01:02:03", "zz:16:3e:00:00:01"}},
		{TypeBridge, "bridge.driver", []string{"", "native"}, []string{"openvswitch"}},
		{TypeBridge, "raw.dnsmasq", []string{""}, []string{"dhcp-script=/bin/sh", "conf-file=/etc/shadow", "log-queries"}},
		{TypeMacvlan, "mtu", []string{"1500"}, []string{"100", "jumbo"}},
	}
	for _, tt := range tests {
		base := map[string]string{}
		if tt.typ == TypeMacvlan {
			base["parent"] = "eth0"
		}
		for _, v := range tt.good {
			cfg := cloneMap(base)
			cfg[tt.key] = v
			if err := validateConfig(tt.typ, cfg); err != nil {
				t.Errorf("%s %s=%q: %v", tt.typ, tt.key, v, err)
			}
		}
		for _, v := range tt.bad {
			cfg := cloneMap(base)
			cfg[tt.key] = v
			err := validateConfig(tt.typ, cfg)
			if err == nil {
				t.Errorf("%s %s=%q: accepted", tt.typ, tt.key, v)
				continue
			}
			if p := errProblem(err, errInvalid, `"`+tt.key+`"`); p != "" {
				t.Errorf("%s %s=%q: %s", tt.typ, tt.key, v, p)
			}
		}
	}
}

// TestValidateConfigWhole: rules across keys, unknown keys and types.
func TestValidateConfigWhole(t *testing.T) {
	tests := []struct {
		name  string
		typ   string
		cfg   map[string]string
		kind  error
		words []string
	}{
		{"empty bridge", TypeBridge, nil, nil, nil},
		{"user keys pass", TypeBridge, map[string]string{"user.anything": "x y z"}, nil, nil},
		{"unknown bridge key", TypeBridge, map[string]string{"ipv4.adress": "auto"}, errInvalid, []string{`"ipv4.adress"`, "bridge"}},
		{"macvlan key on bridge", TypeBridge, map[string]string{"parent": "eth0"}, errInvalid, []string{`"parent"`}},
		{"bridge key on macvlan", TypeMacvlan, map[string]string{"parent": "eth0", "ipv4.address": "auto"}, errInvalid, []string{`"ipv4.address"`, "macvlan"}},
		{"first unknown key named (sorted)", TypeBridge, map[string]string{"zz": "1", "aa": "1"}, errInvalid, []string{`"aa"`}},
		{"macvlan needs parent", TypeMacvlan, map[string]string{"mtu": "1500"}, errInvalid, []string{`"parent"`}},
		{"macvlan bad parent", TypeMacvlan, map[string]string{"parent": "eth0:1"}, errInvalid, []string{`"parent"`}},
		{"macvlan long parent", TypeMacvlan, map[string]string{"parent": "a234567890123456"}, errInvalid, []string{`"parent"`}},
		{"macvlan ok", TypeMacvlan, map[string]string{"parent": "eth0", "user.x": "1"}, nil, nil},
		{"unsupported type", "vlan", nil, errInvalid, []string{`"vlan"`}},
		{"empty type", "", nil, errInvalid, nil},
		{"ranges inside", TypeBridge, map[string]string{"ipv4.address": "10.1.2.1/24", "ipv4.dhcp.ranges": "10.1.2.100-10.1.2.200, 10.1.2.2-10.1.2.9"}, nil, nil},
		{"range end outside", TypeBridge, map[string]string{"ipv4.address": "10.1.2.1/24", "ipv4.dhcp.ranges": "10.1.2.100-10.1.3.5"}, errInvalid, []string{`"ipv4.dhcp.ranges"`, "10.1.2.100-10.1.3.5", "outside", "10.1.2.0/24"}},
		{"second range outside", TypeBridge, map[string]string{"ipv4.address": "10.1.2.1/24", "ipv4.dhcp.ranges": "10.1.2.2-10.1.2.3,192.168.0.1-192.168.0.9"}, errInvalid, []string{"192.168.0.1"}},
		{"ranges without subnet", TypeBridge, map[string]string{"ipv4.address": "auto", "ipv4.dhcp.ranges": "10.1.2.2-10.1.2.3"}, errInvalid, []string{`"ipv4.dhcp.ranges"`}},
		{"range backwards", TypeBridge, map[string]string{"ipv4.address": "10.1.2.1/24", "ipv4.dhcp.ranges": "10.1.2.9-10.1.2.2"}, errInvalid, []string{`"ipv4.dhcp.ranges"`}},
		{"range not a range", TypeBridge, map[string]string{"ipv4.address": "10.1.2.1/24", "ipv4.dhcp.ranges": "10.1.2.9"}, errInvalid, []string{`"ipv4.dhcp.ranges"`}},
		{"range of IPv6", TypeBridge, map[string]string{"ipv4.address": "10.1.2.1/24", "ipv4.dhcp.ranges": "fd00::1-fd00::9"}, errInvalid, []string{`"ipv4.dhcp.ranges"`}},
		{"raw.dnsmasq says why", TypeBridge, map[string]string{"raw.dnsmasq": "dhcp-script=/x"}, errInvalid, []string{`"raw.dnsmasq"`, "cannot validate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, validateConfig(tt.typ, tt.cfg), tt.kind, tt.words...)
		})
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"hangarbr0", true},
		{"br-1", true},
		{"a", true},
		{"lab_net.2", true},
		{"123456789012345", true},
		{"1234567890123456", false}, // names the host interface: 15 at most
		{"", false},
		{"-br", false},
		{".br", false},
		{"_br", false},
		{"br 0", false},
		{"br/0", false},
		{"br:0", false},
		{"brü", false},
		{".", false},
		{"..", false},
		{"none", false},
		{"default", false},
	}
	for _, tt := range tests {
		err := validateName(tt.name)
		if tt.ok {
			if err != nil {
				t.Errorf("validateName(%q): %v", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("validateName(%q) accepted", tt.name)
			continue
		}
		words := []string{"empty"}
		if tt.name != "" {
			words = []string{fmt.Sprintf("%q", tt.name)}
		}
		if p := errProblem(err, errInvalid, words...); p != "" {
			t.Errorf("validateName(%q): %s", tt.name, p)
		}
	}
}

func TestLastAddr(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"10.0.3.1/24", "10.0.3.255"},
		{"10.0.3.77/24", "10.0.3.255"},
		{"10.9.9.1/30", "10.9.9.3"},
		{"10.0.0.1/8", "10.255.255.255"},
		{"192.168.1.130/25", "192.168.1.255"},
		{"192.168.1.10/25", "192.168.1.127"},
		{"10.1.2.3/32", "10.1.2.3"},
		{"fd42:1:2:3::1/64", "fd42:1:2:3:ffff:ffff:ffff:ffff"},
		{"fd42::1/48", "fd42:0:0:ffff:ffff:ffff:ffff:ffff"},
	}
	for _, tt := range tests {
		if got := lastAddr(pfx(tt.prefix)); got != addr(tt.want) {
			t.Errorf("lastAddr(%s) = %s, want %s", tt.prefix, got, tt.want)
		}
	}
}

// TestEUI64: the address a guest's SLAAC makes from its MAC (RFC 4291
// appendix A: the U/L bit flipped, ff:fe in the middle).
func TestEUI64(t *testing.T) {
	tests := []struct{ sub, mac, want string }{
		{"fd42:1:2:3::1/64", "00:16:3e:aa:bb:cc", "fd42:1:2:3:216:3eff:feaa:bbcc"},
		{"fd42:1:2:3::1/64", "02:00:00:00:00:01", "fd42:1:2:3:0:ff:fe00:1"},
		{"fd00::1/64", "52:54:00:12:34:56", "fd00::5054:ff:fe12:3456"},
	}
	for _, tt := range tests {
		if got := eui64(pfx(tt.sub), tt.mac); got != addr(tt.want) {
			t.Errorf("eui64(%s, %s) = %s, want %s", tt.sub, tt.mac, got, tt.want)
		}
	}
}

func TestIsTrue(t *testing.T) {
	for _, v := range []string{"true", "TRUE", "1", "yes", "on"} {
		if !isTrue(v, false) {
			t.Errorf("isTrue(%q) = false", v)
		}
	}
	for _, v := range []string{"false", "0", "no", "Off"} {
		if isTrue(v, true) {
			t.Errorf("isTrue(%q) = true", v)
		}
	}
	// Unset keys take their default.
	if !isTrue("", true) || isTrue("", false) {
		t.Error("unset key does not take its default")
	}
}

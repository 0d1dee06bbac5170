package netdev

import (
	"net"
	"net/netip"
	"testing"
)

// TestLXDType: LXD's order of checks, on what netlink gives.
func TestLXDType(t *testing.T) {
	tests := []struct {
		flags     net.Flags
		kind, dev string
		want      string
	}{
		{net.FlagLoopback | net.FlagUp, "", "", "loopback"},
		{net.FlagUp, "", "0000:00:03.0", "physical"},
		{net.FlagUp, "", "virtio0", "physical"},
		{0, "bridge", "", "bridge"},
		{0, "vlan", "", "vlan"},
		{0, "bond", "", "bond"},
		{0, "veth", "", "unknown"},
		{0, "tuntap", "", "unknown"},
		{0, "macvlan", "", "unknown"}, // LXD has no "macvlan" unmanaged type
		{0, "ifb", "", "unknown"},
		{0, "", "", "unknown"},
	}
	for _, tt := range tests {
		if got := lxdType(tt.flags, tt.kind, tt.dev); got != tt.want {
			t.Errorf("lxdType(%v, %q, %q) = %q, want %q", tt.flags, tt.kind, tt.dev, got, tt.want)
		}
	}
}

// TestInterfaces: every kind this kernel can make, as Interfaces reports
// it: type, kind, master, members, parent, scopes, counters.
func TestInterfaces(t *testing.T) {
	e := newEnv(t)
	e.bridge()
	c1 := e.netns("c1")
	if err := e.host.AddVeth(Veth{HostName: "vethc1", Bridge: "hb0", NIC: NIC{NetNS: c1, Name: "eth0",
		Addresses: []netip.Prefix{pfx("10.99.0.11/24")}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.host.CreateTap("tapvm1", "hb0", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.host.SetLimits("vethc1", 0, 8000); err != nil {
		t.Fatal(err)
	}
	if err := connect(t, e.path, c1, "10.99.0.11:80"); err != nil {
		t.Fatal(err)
	}
	ifs, err := e.host.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Interface{}
	for _, i := range ifs {
		got[i.Name] = i
	}
	want := map[string]struct{ typ, kind, master string }{
		"lo":              {"loopback", "", ""},
		"hb0":             {"bridge", "bridge", ""},
		"vethc1":          {"unknown", "veth", "hb0"},
		"tapvm1":          {"unknown", "tuntap", "hb0"},
		ifbName("vethc1"): {"unknown", "ifb", ""},
	}
	if len(got) != len(want) {
		t.Errorf("interfaces %v, want %v", got, want)
	}
	for name, w := range want {
		i, ok := got[name]
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		if i.Type != w.typ || i.Kind != w.kind || i.Master != w.master {
			t.Errorf("%s: type %q kind %q master %q, want %+v", name, i.Type, i.Kind, i.Master, w)
		}
	}
	if m := got["hb0"].Members; len(m) != 2 || m[0] != "tapvm1" || m[1] != "vethc1" {
		t.Errorf("hb0 members %v", m)
	}
	if c := got["hb0"].Counters; c.PacketsReceived == 0 || c.BytesSent == 0 {
		t.Errorf("hb0 counters %+v after a TCP connection through it", c)
	}
	scopes := map[string]string{}
	for _, n := range []string{"lo", "hb0"} {
		for _, a := range got[n].Addresses {
			scopes[a.Prefix.String()] = a.Family() + " " + a.Scope
		}
	}
	for a, w := range map[string]string{"127.0.0.1/8": "inet local", "::1/128": "inet6 local",
		"10.99.0.1/24": "inet global", "fd99::1/64": "inet6 global"} {
		if scopes[a] != w {
			t.Errorf("%s: %q, want %q", a, scopes[a], w)
		}
	}
	var linkLocal bool
	for _, a := range got["hb0"].Addresses {
		linkLocal = linkLocal || a.Scope == "link" && a.Prefix.Addr().IsLinkLocalUnicast()
	}
	if !linkLocal {
		t.Errorf("hb0 has no link-local address: %v", got["hb0"].Addresses)
	}
}

package e2e

import (
	"slices"
	"strings"
	"testing"
)

// TestNetworkLXCFlows drives networks with the real lxc: create, show,
// set, info, attach, detach, rename, delete; and a macvlan network whose
// parent is a veth end (this kernel has no dummy links).
func TestNetworkLXCFlows(t *testing.T) {
	d := startNetDaemon(t)
	d.importImages()

	d.mustLXC("network", "create", "lan1", "ipv4.address=10.77.0.1/24", "ipv6.address=none", "dns.domain=lan")
	if out := d.mustLXC("network", "list", "--format", "csv"); !strings.Contains(out, "lan1,bridge,YES,10.77.0.1/24") {
		t.Errorf("lxc network list:\n%s", out)
	}
	d.mustLXC("network", "set", "lan1", "ipv4.nat=true")
	if out := d.mustLXC("network", "get", "lan1", "ipv4.nat"); strings.TrimSpace(out) != "true" {
		t.Errorf("ipv4.nat = %q", out)
	}
	if out := d.mustLXC("network", "info", "lan1"); !strings.Contains(out, "10.77.0.1/24") || !strings.Contains(out, "State: up") {
		t.Errorf("lxc network info:\n%s", out)
	}
	d.must("launch", "busybox", "n1", "--no-profiles")
	d.mustLXC("network", "attach", "lan1", "n1", "eth1")
	if a := d.addressOf("n1", "eth1", "inet"); !strings.HasPrefix(a, "10.77.0.") {
		t.Errorf("n1 eth1 address %s is not on lan1", a)
	}
	// The name resolves in the network's own domain.
	if out, errOut, code := d.hangar("exec", "n1", "--", "nslookup", "n1.lan", "10.77.0.1"); code != 0 || !strings.Contains(out, "10.77.0.") {
		t.Errorf("nslookup n1.lan: %d %s %s", code, out, errOut)
	}
	d.mustLXCFail([]string{"network", "delete", "lan1"}, "in use", "n1")
	d.mustLXCFail([]string{"network", "rename", "lan1", "lan2"}, "in use")
	d.mustLXC("network", "detach", "lan1", "n1")
	if out := d.mustLXC("network", "list-leases", "lan1", "--format", "csv"); strings.Contains(out, "n1") {
		t.Errorf("detached NIC still leased:\n%s", out)
	}
	d.mustLXC("network", "rename", "lan1", "lan2")
	if !slices.Contains(d.links(), "lan2") || slices.Contains(d.links(), "lan1") {
		t.Errorf("links after rename: %v", d.links())
	}
	d.mustLXC("network", "delete", "lan2")
	if slices.Contains(d.links(), "lan2") {
		t.Errorf("lan2 left after delete: %v", d.links())
	}
	if rs := d.ruleset(); strings.Contains(rs, "lan") || strings.Contains(rs, "10.77.0.") {
		t.Errorf("lan2's rules left after delete:\n%s", rs)
	}
	if procs := processesNaming(d.dir); len(procs) != 1 {
		t.Errorf("processes after delete: %v (want hangarbr0's dnsmasq only)", procs)
	}

	// macvlan over a veth end made for the test.
	if out, err := d.inDaemonNetns("ip", "link", "add", "phys0", "type", "veth", "peer", "name", "phys0p"); err != nil {
		t.Fatalf("veth: %v %s", err, out)
	}
	if out, err := d.inDaemonNetns("ip", "link", "set", "phys0", "up"); err != nil {
		t.Fatalf("veth up: %v %s", err, out)
	}
	// lxc network list hides loopback and "unknown" (veth) interfaces;
	// the API has them.
	if out := d.mustLXC("network", "show", "phys0"); !strings.Contains(out, "managed: false") || !strings.Contains(out, "type: unknown") {
		t.Errorf("host NIC phys0:\n%s", out)
	}
	d.mustLXC("network", "create", "mv", "--type", "macvlan", "parent=phys0")
	d.mustLXC("config", "device", "add", "n1", "eth2", "nic", "network=mv", "ipv4.address=198.51.100.7")
	if a := d.addressOf("n1", "eth2", "inet"); a != "198.51.100.7" {
		t.Errorf("macvlan NIC address %q", a)
	}
	d.must("stop", "-f", "n1")
	d.must("delete", "n1")
	d.mustLXC("network", "delete", "mv")
}

// TestNetworkBadInput: each bad request is a clear 4xx naming what is
// wrong, and leaves the host as it was.
func TestNetworkBadInput(t *testing.T) {
	d := startNetDaemon(t)
	d.importImages()
	d.must("launch", "busybox", "b1")
	ip := d.addressOf("b1", "eth0", "inet")
	subnet := strings.Join(strings.Split(ip, ".")[:3], ".")
	links, rules := d.links(), d.ruleset()

	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"network", "create", "dup", "ipv4.address=" + subnet + ".1/24"}, []string{"overlaps"}},
		{[]string{"network", "create", "bad1", "ipv4.address=10.1.2.0/24"}, []string{"ipv4.address", "network address"}},
		{[]string{"network", "create", "bad2", "bogus.key=1"}, []string{"bogus.key"}},
		{[]string{"network", "create", "bad3", "raw.dnsmasq=dhcp-script=/bin/sh"}, []string{"raw.dnsmasq"}},
		{[]string{"network", "create", "bad4", "bridge.hwaddr=zz:zz"}, []string{"bridge.hwaddr"}},
		{[]string{"network", "create", "waytoolongname123"}, []string{"15 characters"}},
		{[]string{"network", "create", "mv", "--type", "macvlan", "parent=nosuchnic"}, []string{"nosuchnic"}},
		{[]string{"network", "create", "hangarbr0"}, []string{"already exists"}},
		{[]string{"network", "delete", "hangarbr0"}, []string{"in use", "b1"}},
		{[]string{"config", "device", "add", "b1", "e1", "nic", "network=hangarbr0", "ipv4.address=192.168.200.5"}, []string{"outside"}},
		{[]string{"config", "device", "add", "b1", "e1", "nic", "network=hangarbr0", "ipv4.address=" + ip}, []string{ip, "already used"}},
		{[]string{"config", "device", "add", "b1", "e1", "nic", "network=hangarbr0", "hwaddr=zz"}, []string{"hwaddr"}},
		{[]string{"config", "device", "add", "b1", "e1", "nic", "network=nosuchnet"}, []string{"nosuchnet"}},
		{[]string{"config", "device", "add", "b1", "e1", "nic", "nictype=macvlan", "parent=nosuchnic"}, []string{"nosuchnic"}},
		{[]string{"config", "device", "add", "b1", "p1", "proxy", "listen=tcp:0.0.0.0:0", "connect=tcp:127.0.0.1:80"}, []string{"port"}},
		{[]string{"config", "device", "add", "b1", "p1", "proxy", "listen=unix:/tmp/x", "connect=tcp:127.0.0.1:80"}, []string{"unix"}},
		{[]string{"config", "device", "add", "b1", "e1", "nic", "network=hangarbr0", "bogus=1"}, []string{"bogus"}},
	} {
		d.mustLXCFail(tc.args, tc.wants...)
	}
	if got := d.links(); !slices.Equal(got, links) {
		t.Errorf("links changed by refused requests:\nbefore %v\nafter  %v", links, got)
	}
	if got := d.ruleset(); got != rules {
		t.Errorf("ruleset changed by refused requests:\n%s", got)
	}
	if out := d.mustLXC("network", "list", "--format", "csv"); strings.Contains(out, "bad") || strings.Contains(out, "dup,") {
		t.Errorf("refused networks listed:\n%s", out)
	}
}

// TestNetworkDHCP: a container's own DHCP client gets the address hangard
// reserved for its MAC.
func TestNetworkDHCP(t *testing.T) {
	d := startNetDaemon(t)
	d.importImages()
	d.must("launch", "busybox", "dh")
	want := d.addressOf("dh", "eth0", "inet")
	out, errOut, code := d.hangar("exec", "dh", "--", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-s", "/bin/true")
	if code != 0 || !strings.Contains(out+errOut, want) {
		t.Errorf("udhcpc: exit %d, want lease of %s:\n%s%s", code, want, out, errOut)
	}
}

// TestNetworkCLI drives networks with hangar's own CLI.
func TestNetworkCLI(t *testing.T) {
	d := startNetDaemon(t)
	d.importImages()
	d.must("network", "create", "cli0", "ipv4.address=10.88.0.1/24", "ipv6.address=none")
	d.must("network", "set", "cli0", "dns.domain=clinet", "user.note=x")
	d.must("network", "unset", "cli0", "user.note")
	if out := d.must("network", "show", "cli0"); !strings.Contains(out, "dns.domain: clinet") || strings.Contains(out, "user.note") {
		t.Errorf("network show:\n%s", out)
	}
	if out := d.must("network", "info", "cli0"); !strings.Contains(out, "10.88.0.1") {
		t.Errorf("network info:\n%s", out)
	}
	d.must("launch", "busybox", "k1", "--no-profiles")
	d.must("network", "attach", "cli0", "k1", "eth0")
	if out := d.must("network", "list-leases", "cli0"); !strings.Contains(out, "k1") || !strings.Contains(out, "10.88.0.") {
		t.Errorf("list-leases:\n%s", out)
	}
	if out := d.must("list", "k1", "--format", "csv"); !strings.Contains(out, "10.88.0.") {
		t.Errorf("list:\n%s", out)
	}
	d.mustFail([]string{"network", "delete", "cli0"}, "in use", "k1")
	d.must("network", "detach", "cli0", "k1")
	d.must("network", "rename", "cli0", "cli1")
	if out := d.must("network", "list", "--format", "csv"); !strings.Contains(out, "cli1") || strings.Contains(out, "cli0") {
		t.Errorf("list after rename:\n%s", out)
	}
	d.must("network", "delete", "cli1")
	d.mustFail([]string{"network", "show", "cli1"}, "not found")
}

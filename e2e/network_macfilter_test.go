package e2e

import (
	"strings"
	"testing"
)

// TestNetworkMACFilter: security.mac_filtering on a running container's
// NIC, set and unset through lxc without a replug. With it on, the
// container reaches its neighbour from its own MAC and not once it takes
// another (an unprivileged container owns its namespace and may); a kill
// -9 of the daemon changes nothing; off, the other MAC passes again.
// Stopping the container leaves no filter. A macvlan NIC refuses the key.
func TestNetworkMACFilter(t *testing.T) {
	d := startNetDaemon(t)
	d.importImages()
	d.must("launch", "busybox", "c1")
	d.must("launch", "busybox", "c2")
	ip2 := d.addressOf("c2", "eth0", "inet")
	own := strings.TrimSpace(d.mustLXC("config", "get", "c1", "volatile.eth0.hwaddr"))
	const other = "00:16:3e:11:22:33"
	if own == "" || own == other {
		t.Fatalf("c1's volatile.eth0.hwaddr is %q", own)
	}
	in1 := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(d.must(append([]string{"exec", "c1", "--"}, args...)...))
	}
	// A ping unanswered in 2 s: frames from c1 are dropped, it would
	// never be answered.
	// c1 forgets its neighbours first: its ARP request then tells c2
	// its current MAC (c2 may still hold the one it had).
	reaches := func() bool {
		_, _, code := d.hangar("exec", "c1", "--", "sh", "-c", "ip neigh flush dev eth0; ping -c 1 -W 2 "+ip2)
		return code == 0
	}
	check := func(when string, mac string, want bool) {
		t.Helper()
		if got := in1("cat", "/sys/class/net/eth0/address"); got != mac {
			t.Fatalf("%s: c1's eth0 has %s, want %s", when, got, mac)
		}
		if !want {
			if reaches() {
				t.Errorf("%s: c1 (from %s) reaches c2", when, mac)
			}
			return
		}
		// Reaching may take a neighbour entry's refresh: a few tries.
		ok := false
		for try := 0; try < 5 && !ok; try++ {
			ok = reaches()
		}
		if !ok {
			t.Errorf("%s: c1 (from %s) does not reach c2", when, mac)
		}
	}
	ifindex := in1("cat", "/sys/class/net/eth0/ifindex")

	check("no filter", own, true)
	d.mustLXC("config", "device", "override", "c1", "eth0", "security.mac_filtering=true")
	rules := d.ruleset()
	if !strings.Contains(rules, "table bridge hangar") || !strings.Contains(rules, "ether saddr != "+own+" drop") {
		t.Errorf("no MAC filter for %s in the ruleset:\n%s", own, rules)
	}
	check("filtered", own, true)
	in1("ip", "link", "set", "eth0", "address", other)
	check("filtered, another MAC", other, false)

	// kill -9 and start again: the filter is still there, once.
	d.kill9()
	d.start()
	if got := d.ruleset(); got != rules {
		t.Errorf("ruleset changed across kill -9:\nbefore:\n%s\nafter:\n%s", rules, got)
	}
	check("filtered, another MAC, after kill -9", other, false)

	d.mustLXC("config", "device", "set", "c1", "eth0", "security.mac_filtering=false")
	if rs := d.ruleset(); strings.Contains(rs, "bridge hangar") {
		t.Errorf("filter left after security.mac_filtering=false:\n%s", rs)
	}
	check("filter off, another MAC", other, true)
	d.mustLXC("config", "device", "set", "c1", "eth0", "security.mac_filtering=true")
	check("filtered again, another MAC", other, false)
	in1("ip", "link", "set", "eth0", "address", own)
	check("filtered again, own MAC", own, true)
	if got := in1("cat", "/sys/class/net/eth0/ifindex"); got != ifindex {
		t.Errorf("c1's eth0 was replugged (ifindex %s, then %s): the key is live", ifindex, got)
	}

	d.must("stop", "-f", "c1")
	if rs := d.ruleset(); strings.Contains(rs, "bridge hangar") {
		t.Errorf("filter left after stop:\n%s", rs)
	}

	// A macvlan has no host-side port to filter on.
	d.mustLXCFail([]string{"config", "device", "add", "c2", "mv", "nic", "nictype=macvlan", "parent=uplink0", "security.mac_filtering=true"},
		"security.mac_filtering")
}

// TestNetworkMACFilterVM: the same for a VM, whose frames enter the
// bridge by its tap: filtered from the start (the profile's NIC with the
// key), it reaches the host from its own MAC, not from another; off, it
// does. One VM boot.
func TestNetworkMACFilterVM(t *testing.T) {
	requireVM(t)
	d := startNetDaemon(t)
	d.importImages()
	ref, _ := serveAppImage(t, d.netns, "test/vmmac:1", "#!/bin/sh\nexec sleep 2147483647\n")
	d.mustLXC("profile", "device", "set", "default", "eth0", "security.mac_filtering=true")
	d.must("launch", ref, "vm1", "--vm", "--insecure", "-c", "limits.memory=256MiB", "-c", "limits.cpu=1")
	d.addressOf("vm1", "eth0", "inet") // the agent has configured it
	own := strings.TrimSpace(d.must("config", "get", "vm1", "volatile.eth0.hwaddr"))
	tap := strings.TrimSpace(d.must("config", "get", "vm1", "volatile.eth0.host_name"))
	const other = "00:16:3e:11:22:44"
	br, _, err := d.client().GetNetwork(t.Context(), "hangarbr0")
	if err != nil {
		t.Fatal(err)
	}
	gw, _, _ := strings.Cut(br.Config["ipv4.address"], "/")
	if rs := d.ruleset(); !strings.Contains(rs, `"`+tap+`" : jump mac-`+tap) || !strings.Contains(rs, "ether saddr != "+own+" drop") {
		t.Errorf("no MAC filter for %s on %s:\n%s", own, tap, rs)
	}
	// The guest forgets its neighbours first, so that its ARP request
	// tells the host its current MAC; reaching may still take a refresh
	// of the host's entry: a few tries where it must reach.
	reaches := func() bool {
		_, _, code := d.hangar("exec", "vm1", "--", "busybox", "sh", "-c", "busybox ip neigh flush dev eth0; busybox ping -c 1 -W 2 "+gw)
		return code == 0
	}
	reachesSoon := func() bool {
		for try := 0; try < 5; try++ {
			if reaches() {
				return true
			}
		}
		return false
	}
	// virtio-net may refuse a new MAC while up: down, change, up (the
	// address and its subnet's route stay).
	setMAC := func(mac string) {
		t.Helper()
		d.must("exec", "vm1", "--", "sh", "-c", "busybox ip link set eth0 address "+mac+
			" || { busybox ip link set eth0 down && busybox ip link set eth0 address "+mac+" && busybox ip link set eth0 up; }")
	}
	if !reachesSoon() {
		t.Errorf("filtered, own MAC: vm1 does not reach %s", gw)
	}
	setMAC(other)
	if reaches() {
		t.Errorf("filtered, another MAC: vm1 reaches %s", gw)
	}
	d.mustLXC("profile", "device", "set", "default", "eth0", "security.mac_filtering=false")
	if !reachesSoon() {
		t.Errorf("filter off, another MAC: vm1 does not reach %s", gw)
	}
	d.must("delete", "-f", "vm1")
	if rs := d.ruleset(); strings.Contains(rs, "bridge hangar") {
		t.Errorf("filter left after delete:\n%s", rs)
	}
}

package device

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

const rid = "hangar-7"

func container() Instance {
	return Instance{ID: 7, RuntimeID: rid, Name: "c1", Config: map[string]string{}}
}

func vm() Instance {
	return Instance{ID: 8, RuntimeID: "hangar-8", Name: "v1", VM: true, Config: map[string]string{}}
}

func fmtNIC(n driver.NIC) string { return fmt.Sprintf("%+v", n) }

// TestStartContainer: a namespace, then one NIC per nic device in name
// order, each with its allocation; the volatile keys LXD records.
func TestStartContainer(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	in := container()
	in.Config["volatile.eth1.hwaddr"] = "00:16:3e:11:11:11" // kept from an earlier start
	devs := map[string]map[string]string{
		"eth1": nic("network", "br0"),
		"eth0": nic("network", "br0", "name", "eth0", "ipv4.address", "10.0.3.50", "mtu", "1400"),
		"mgmt": nic("nictype", "macvlan", "parent", "eth9", "name", "lan", "hwaddr", "00:16:3e:22:22:22"),
		"ext":  nic("nictype", "bridged", "parent", "hostbr", "host_name", "vethext"),
		"web":  proxyDev("listen", "tcp:0.0.0.0:8080", "connect", "tcp:127.0.0.1:80"),
		"root": {"type": "disk", "path": "/"},
	}
	run, err := e.m.Start(ctx, in, devs)
	wantErr(t, err, nil)
	ns := filepath.Join(e.dir, rid)
	if run.NetNS != ns || run.UserNS != "" {
		t.Fatalf("Run namespaces: %q, %q", run.NetNS, run.UserNS)
	}
	wantLines(t, "link operations", e.lk.takeOps(), []string{
		"netns+ " + rid, "nic+ veth eth0", "nic+ veth eth1", "nic+ veth ext", "nic+ macvlan lan",
	})

	// What the network manager was asked: static address, kept MAC.
	var reqs []string
	for _, r := range e.nets.requests {
		reqs = append(reqs, fmt.Sprintf("%d %s %s hw=%s v4=%s", r.InstanceID, r.Device, r.Network, r.Hwaddr, r.IPv4))
	}
	wantLines(t, "allocations", reqs, []string{
		"7 eth0 br0 hw= v4=10.0.3.50",
		"7 eth1 br0 hw=00:16:3e:11:11:11 v4=",
	})

	h0, h1, hm := HostLinkName(rid, "eth0"), HostLinkName(rid, "eth1"), HostLinkName(rid, "mgmt")
	gw4, gw6 := netip.MustParseAddr("10.0.3.1"), netip.MustParseAddr("fd42::3:1")
	want := []driver.NIC{
		{Name: "eth0", HostName: h0, Hwaddr: "00:16:3e:00:00:02", MTU: 1400,
			Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.3.50/24"), netip.MustParsePrefix("fd42::3:2/64")},
			Gateway4:  gw4, Gateway6: gw6, Nameservers: []netip.Addr{gw4}, SearchDomain: "hangar"},
		{Name: "eth1", HostName: h1, Hwaddr: "00:16:3e:11:11:11",
			Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.3.3/24"), netip.MustParsePrefix("fd42::3:3/64")},
			Gateway4:  gw4, Gateway6: gw6, Nameservers: []netip.Addr{gw4}, SearchDomain: "hangar"},
	}
	if len(run.NICs) != 4 {
		t.Fatalf("NICs: %+v", run.NICs)
	}
	for i, w := range want {
		if fmtNIC(run.NICs[i]) != fmtNIC(w) {
			t.Fatalf("NIC %d\n got %s\nwant %s", i, fmtNIC(run.NICs[i]), fmtNIC(w))
		}
	}
	// An unmanaged host bridge: a MAC, no addresses; its own host_name.
	ext := run.NICs[2]
	if ext.Name != "ext" || ext.HostName != "vethext" || ext.Hwaddr == "" || len(ext.Addresses) != 0 || ext.Gateway4.IsValid() {
		t.Fatalf("NIC on a host bridge: %s", fmtNIC(ext))
	}
	if l := e.lk.links["vethext"]; l.Bridge != "hostbr" || l.NetNS != ns || l.Name != "ext" {
		t.Fatalf("host bridge link: %+v", l)
	}
	// A macvlan on a host NIC, its MAC as given.
	if lan := run.NICs[3]; lan.Name != "lan" || lan.Hwaddr != "00:16:3e:22:22:22" || lan.HostName != hm {
		t.Fatalf("macvlan NIC: %s", fmtNIC(lan))
	}
	if l := e.lk.inNS[ns+"/lan"]; l.Kind != "macvlan" || l.Parent != "eth9" || l.Bridge != "" || l.Hwaddr != "00:16:3e:22:22:22" {
		t.Fatalf("macvlan link: %+v", l)
	}
	// The veth as netdev is asked for it.
	l := e.lk.links[h0]
	if l.Kind != "veth" || l.Bridge != "br0" || l.NetNS != ns || l.Name != "eth0" || l.Hwaddr != "00:16:3e:00:00:02" || l.MTU != 1400 ||
		!slices.Equal(l.Addresses, want[0].Addresses) || l.Gateway4 != gw4 || l.Gateway6 != gw6 {
		t.Fatalf("veth eth0: %+v", l)
	}

	wantVolatile := map[string]string{
		"volatile.eth0.hwaddr": "00:16:3e:00:00:02", "volatile.eth0.host_name": h0,
		"volatile.eth1.hwaddr": "00:16:3e:11:11:11", "volatile.eth1.host_name": h1,
		"volatile.ext.hwaddr": ext.Hwaddr, "volatile.ext.host_name": "vethext",
		"volatile.mgmt.hwaddr": "00:16:3e:22:22:22", "volatile.mgmt.host_name": hm,
	}
	if fmt.Sprint(run.Volatile) != fmt.Sprint(wantVolatile) {
		t.Fatalf("volatile\n got %v\nwant %v", run.Volatile, wantVolatile)
	}
}

// TestStartUserNamespace: an unprivileged container's network namespace
// is owned by a user namespace of its id map, and both are handed on.
func TestStartUserNamespace(t *testing.T) {
	e := newEnv(t)
	in := container()
	in.IDMap = &driver.IDMap{HostID: 1000000, Size: 65536}
	run, err := e.m.Start(context.Background(), in, map[string]map[string]string{"eth0": nic("network", "br0")})
	wantErr(t, err, nil)
	if run.NetNS != filepath.Join(e.dir, rid) || run.UserNS != filepath.Join(e.dir, rid+".user") {
		t.Fatalf("namespaces: %q, %q", run.NetNS, run.UserNS)
	}
	wantLines(t, "operations", e.lk.takeOps(), []string{"userns+ " + rid + " " + rid + ".user 1000000:65536", "nic+ veth eth0"})

	wantErr(t, e.m.Stop(context.Background(), in, map[string]map[string]string{"eth0": nic("network", "br0")}), nil)
	if left := e.lk.left(); left != "" {
		t.Fatalf("left after stop: %s", left)
	}
}

// TestStartFailureLeavesNothing: whatever step fails, what Start made
// before it is gone, and the instance is not recorded as running.
func TestStartFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	devs := map[string]map[string]string{
		"eth0": nic("network", "br0", "limits.max", "10Mbit"),
		"eth1": nic("network", "br1", "limits.ingress", "1Mbit"),
		"p":    proxyDev("listen", "tcp:0.0.0.0:80", "connect", "tcp:127.0.0.1:80", "nat", "true"),
	}
	tests := []struct {
		name  string
		vm    bool
		idmap bool
		devs  map[string]map[string]string
		fail  func(e *testEnv)
		words []string
	}{
		{"AddNIC of the second", false, false, devs, func(e *testEnv) { e.lk.failAddNIC["eth1"] = errors.New("EEXIST") }, []string{"eth1", "EEXIST"}},
		{"AddNIC with a user namespace", false, true, devs, func(e *testEnv) { e.lk.failAddNIC["eth1"] = errors.New("EEXIST") }, []string{"eth1"}},
		{"Allocate of the second", false, false, devs, func(e *testEnv) { e.nets.failAllocate["eth1"] = errors.New("no free IPv4") }, []string{"eth1", "no free IPv4"}},
		{"limits of the second", false, false, devs, func(e *testEnv) { e.lk.failSetLimits[HostLinkName(rid, "eth1")] = errors.New("no ifb") }, []string{"eth1", "limits", "no ifb"}},
		{"user namespace", false, true, devs, func(e *testEnv) { e.lk.failUserNS = errors.New("EPERM") }, []string{"EPERM"}},
		{"unknown network", false, false, map[string]map[string]string{"eth0": nic("network", "br0"), "eth1": nic("network", "gone")}, func(*testEnv) {}, []string{"eth1", "gone"}},
		{"network that takes no NIC", false, false, map[string]map[string]string{"eth0": nic("network", "br0"), "eth1": nic("network", "odd")}, func(*testEnv) {}, []string{"eth1", "ovn"}},
		{"VM tap of the second", true, false, devs, func(e *testEnv) { e.lk.failTap[HostLinkName("hangar-8", "eth1")] = errors.New("EBUSY") }, []string{"eth1", "EBUSY"}},
		{"VM macvtap of the second", true, false, map[string]map[string]string{"eth0": nic("network", "br0"), "eth1": nic("network", "mv")},
			func(e *testEnv) { e.lk.failTap[HostLinkName("hangar-8", "eth1")] = errors.New("no parent") }, []string{"eth1", "no parent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.fail(e)
			in := container()
			if tt.vm {
				in = vm()
			}
			if tt.idmap {
				in.IDMap = &driver.IDMap{HostID: 100000, Size: 65536}
			}
			_, err := e.m.Start(ctx, in, tt.devs)
			wantErr(t, err, errAny, tt.words...)
			if left := e.lk.left(); left != "" {
				t.Fatalf("left on the host: %s (operations %q)", left, e.lk.ops)
			}
			// Not running: its proxies are not started.
			wantErr(t, e.m.Started(ctx, in, tt.devs), nil)
			if len(e.nets.ruleCalls) != 0 || len(e.fw.started) != 0 {
				t.Fatalf("proxies of a failed start: %v %v", e.nets.ruleCalls, e.fw.started)
			}
		})
	}
}

// TestLimits: limits.ingress/egress shape the host side, limits.max both;
// a NIC without limits is not shaped, a macvlan (no host side) never.
func TestLimits(t *testing.T) {
	tests := []struct {
		name string
		dev  map[string]string
		want string // "" for no SetLimits
	}{
		{"both", nic("network", "br0", "limits.ingress", "10Mbit", "limits.egress", "1Mbit"), "10000000 1000000"},
		{"max", nic("network", "br0", "limits.max", "5Mbit"), "5000000 5000000"},
		{"max and ingress", nic("network", "br0", "limits.max", "5Mbit", "limits.ingress", "1Mbit"), "1000000 5000000"},
		{"egress only", nic("network", "br0", "limits.egress", "2MB"), "0 16000000"},
		{"none", nic("network", "br0"), ""},
		{"macvlan", nic("nictype", "macvlan", "parent", "eth9", "limits.max", "5Mbit"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.m.Start(context.Background(), container(), map[string]map[string]string{"eth0": tt.dev})
			wantErr(t, err, nil)
			var got string
			for _, op := range e.lk.takeOps() {
				var host string
				var in, eg uint64
				if n, _ := fmt.Sscanf(op, "limits+ %s %d %d", &host, &in, &eg); n == 3 {
					if host != HostLinkName(rid, "eth0") {
						t.Fatalf("limits on %s", host)
					}
					got = fmt.Sprintf("%d %d", in, eg)
				}
			}
			if got != tt.want {
				t.Fatalf("SetLimits %q, want %q", got, tt.want)
			}
		})
	}
}

// TestStartVM: a tap per bridged NIC on its bridge, a macvtap per
// macvlan NIC on its parent with the guest's MAC, no namespace; the
// driver gets the NICs with their addresses for the guest agent, a
// macvlan one with the link's MTU (the parent's unless the device says);
// a stop removes both kinds by name.
func TestStartVM(t *testing.T) {
	e := newEnv(t)
	in := vm()
	devs := map[string]map[string]string{
		"eth0": nic("network", "br0", "mtu", "1400"),
		"eth1": nic("network", "br1", "name", "ens5"),
		"mv0":  nic("nictype", "macvlan", "parent", "eth9", "hwaddr", "00:16:3e:33:33:33"),
		"mv1":  nic("nictype", "macvlan", "parent", "eth9", "hwaddr", "00:16:3e:44:44:44", "mtu", "1280", "ipv4.address", "192.0.2.5"),
	}
	run, err := e.m.Start(context.Background(), in, devs)
	wantErr(t, err, nil)
	h0, h1 := HostLinkName("hangar-8", "eth0"), HostLinkName("hangar-8", "eth1")
	m0, m1 := HostLinkName("hangar-8", "mv0"), HostLinkName("hangar-8", "mv1")
	wantLines(t, "operations", e.lk.takeOps(), []string{
		"tap+ " + h0 + " br0 1400", "tap+ " + h1 + " br1 0",
		"macvtap+ " + m0 + " eth9 00:16:3e:33:33:33 0", "macvtap+ " + m1 + " eth9 00:16:3e:44:44:44 1280",
	})
	if run.NetNS != "" || run.UserNS != "" || len(run.NICs) != 4 {
		t.Fatalf("VM run: %+v", run)
	}
	if n := run.NICs[1]; n.Name != "ens5" || n.HostName != h1 || n.Addresses[0] != netip.MustParsePrefix("10.0.4.3/24") {
		t.Fatalf("VM NIC: %s", fmtNIC(n))
	}
	if n := run.NICs[2]; n.Name != "mv0" || n.HostName != m0 || n.Hwaddr != "00:16:3e:33:33:33" || n.MTU != 1500 {
		t.Fatalf("VM macvlan NIC: %s", fmtNIC(n))
	}
	if n := run.NICs[3]; n.HostName != m1 || n.MTU != 1280 {
		t.Fatalf("VM macvlan NIC with an MTU: %s", fmtNIC(n))
	}
	wantErr(t, e.m.Stop(context.Background(), in, devs), nil)
	if left := e.lk.left(); left != "" {
		t.Fatalf("left after stop: %s", left)
	}
}

// TestStop: a container's namespace goes (its veths with it) and the
// shaping of NICs with limits; a VM's taps go. A daemon that lost its
// memory (killed -9) removes them by name all the same.
func TestStop(t *testing.T) {
	ctx := context.Background()
	cdevs := map[string]map[string]string{
		"eth0": nic("network", "br0", "limits.max", "10Mbit"),
		"eth1": nic("network", "br1"),
		"eth2": nic("network", "br1", "host_name", "myveth", "limits.egress", "1Mbit"),
	}
	vdevs := map[string]map[string]string{
		"eth0": nic("network", "br0", "limits.max", "10Mbit"),
		"eth1": nic("network", "br1", "host_name", "mytap"),
	}
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restarted=%v", restart), func(t *testing.T) {
			e := newEnv(t)
			c, v := container(), vm()
			c.IDMap = &driver.IDMap{HostID: 100000, Size: 65536}
			_, err := e.m.Start(ctx, c, cdevs)
			wantErr(t, err, nil)
			_, err = e.m.Start(ctx, v, vdevs)
			wantErr(t, err, nil)
			if restart {
				e = e.restart()
			}
			e.lk.takeOps()
			wantErr(t, e.m.Stop(ctx, c, cdevs), nil)
			ops := e.lk.takeOps()
			sort.Strings(ops)
			wantLines(t, "container stop", ops, []string{
				"limits- " + HostLinkName(rid, "eth0"), "limits- myveth",
				"netns- " + rid, "netns- " + rid + ".user",
			})
			wantErr(t, e.m.Stop(ctx, v, vdevs), nil)
			ops = e.lk.takeOps()
			sort.Strings(ops)
			wantLines(t, "VM stop", ops, []string{"link- " + HostLinkName("hangar-8", "eth0"), "link- mytap"})
			if left := e.lk.left(); left != "" {
				t.Fatalf("left after stop: %s", left)
			}
			// Stopping again finds nothing to do, and says nothing.
			wantErr(t, e.m.Stop(ctx, c, cdevs), nil)
		})
	}
}

// TestUpdate: only devices that changed are replugged; a VM's driver gets
// the NICs to plug and the interface names to unplug.
func TestUpdate(t *testing.T) {
	ctx := context.Background()
	t.Run("container", func(t *testing.T) {
		e := newEnv(t)
		in := container()
		old := map[string]map[string]string{
			"eth0": nic("network", "br0"),
			"eth1": nic("network", "br0"),
			"gone": nic("network", "br1", "name", "eth9"),
			"p1":   proxyDev("listen", "tcp:127.0.0.1:2222", "connect", "tcp:127.0.0.1:22"),
			"p2":   proxyDev("listen", "tcp:127.0.0.1:8080", "connect", "tcp:127.0.0.1:80"),
		}
		_, err := e.m.Start(ctx, in, old)
		wantErr(t, err, nil)
		wantErr(t, e.m.Started(ctx, in, old), nil)
		e.lk.takeOps()
		cur := map[string]map[string]string{
			"eth0": nic("network", "br0"),
			"eth1": nic("network", "br0", "mtu", "1400"),
			"eth2": nic("network", "br1"),
			"p2":   proxyDev("listen", "tcp:127.0.0.1:8080", "connect", "tcp:127.0.0.1:80"),
			"p3":   proxyDev("listen", "tcp:127.0.0.1:9090", "connect", "tcp:127.0.0.1:90"),
		}
		plug, unplug, err := e.m.Update(ctx, in, old, cur)
		wantErr(t, err, nil)
		if plug != nil || unplug != nil {
			t.Fatalf("container update returned plug %v unplug %v", plug, unplug)
		}
		ops := e.lk.takeOps()
		removed, added := ops[:2], ops[2:]
		sort.Strings(removed)
		wantRemoved := []string{"link- " + HostLinkName(rid, "eth1"), "link- " + HostLinkName(rid, "gone")}
		sort.Strings(wantRemoved)
		wantLines(t, "removed", removed, wantRemoved)
		wantLines(t, "added", added, []string{"nic+ veth eth1", "nic+ veth eth2"})
		if l := e.lk.links[HostLinkName(rid, "eth1")]; l.MTU != 1400 || l.NetNS != filepath.Join(e.dir, rid) {
			t.Fatalf("replugged eth1: %+v", l)
		}
		wantLines(t, "forwarders", e.fw.open(), []string{
			"tcp:127.0.0.1:8080 -> tcp:127.0.0.1:80 in " + rid,
			"tcp:127.0.0.1:9090 -> tcp:127.0.0.1:90 in " + rid,
		})

		// The new devices are stopped with the instance.
		wantErr(t, e.m.Stop(ctx, in, cur), nil)
		if left := e.lk.left(); left != "" || len(e.fw.open()) != 0 {
			t.Fatalf("left after stop: %s, forwarders %v", left, e.fw.open())
		}
	})

	t.Run("VM", func(t *testing.T) {
		e := newEnv(t)
		in := vm()
		old := map[string]map[string]string{
			"eth0": nic("network", "br0", "name", "eth0"),
			"net1": nic("network", "br0"),
			"net2": nic("network", "br1", "name", "ens9"),
		}
		_, err := e.m.Start(ctx, in, old)
		wantErr(t, err, nil)
		e.lk.takeOps()
		cur := map[string]map[string]string{
			"eth0": nic("network", "br0", "name", "eth0"),
			"net1": nic("network", "br0", "hwaddr", "00:16:3e:33:33:33"),
			"net3": nic("network", "br1"),
		}
		plug, unplug, err := e.m.Update(ctx, in, old, cur)
		wantErr(t, err, nil)
		sort.Strings(unplug)
		// A NIC without a name key is called as its device inside.
		wantLines(t, "unplug", unplug, []string{"ens9", "net1"})
		var names []string
		for _, n := range plug {
			names = append(names, n.Name+" "+n.HostName+" "+n.Hwaddr)
		}
		wantLines(t, "plug", names, []string{
			"net1 " + HostLinkName("hangar-8", "net1") + " 00:16:3e:33:33:33",
			"net3 " + HostLinkName("hangar-8", "net3") + " 00:16:3e:00:00:05",
		})
		ops := e.lk.takeOps()
		removed, added := ops[:2], ops[2:]
		sort.Strings(removed)
		wantRemoved := []string{"link- " + HostLinkName("hangar-8", "net1"), "link- " + HostLinkName("hangar-8", "net2")}
		sort.Strings(wantRemoved)
		wantLines(t, "removed", removed, wantRemoved)
		wantLines(t, "added", added, []string{"tap+ " + HostLinkName("hangar-8", "net1") + " br0 0", "tap+ " + HostLinkName("hangar-8", "net3") + " br1 0"})
	})

	t.Run("VM hotplug: detach before the tap goes, attach after it is made", func(t *testing.T) {
		e := newEnv(t)
		in := vm()
		hp := &fakeHotplug{lk: e.lk}
		in.Hotplug = hp
		old := map[string]map[string]string{"net1": nic("network", "br0")}
		_, err := e.m.Start(ctx, in, old)
		wantErr(t, err, nil)
		e.lk.takeOps()
		_, _, err = e.m.Update(ctx, in, old, map[string]map[string]string{"net2": nic("network", "br1")})
		wantErr(t, err, nil)
		wantLines(t, "ops", e.lk.takeOps(), []string{
			"detach net1",
			"link- " + HostLinkName("hangar-8", "net1"),
			"tap+ " + HostLinkName("hangar-8", "net2") + " br1 0",
			"attach net2",
		})
		// No free slot: the NIC comes at the next start, not an error.
		hp.attachErr = errdefs.NotImplemented("no free slot")
		_, _, err = e.m.Update(ctx, in, map[string]map[string]string{"net2": nic("network", "br1")},
			map[string]map[string]string{"net2": nic("network", "br1"), "net3": nic("network", "br0")})
		wantErr(t, err, nil)
	})

	t.Run("container macvlan unplugged inside its namespace", func(t *testing.T) {
		e := newEnv(t)
		in := container()
		old := map[string]map[string]string{"eth1": nic("nictype", "macvlan", "parent", "lo")}
		_, err := e.m.Start(ctx, in, old)
		wantErr(t, err, nil)
		e.lk.takeOps()
		_, _, err = e.m.Update(ctx, in, old, nil)
		wantErr(t, err, nil)
		ops := e.lk.takeOps()
		if len(ops) != 1 || !strings.HasPrefix(ops[0], "link- eth1 in ") {
			t.Fatalf("macvlan unplug ops %q", ops)
		}
	})

	t.Run("not running", func(t *testing.T) {
		e := newEnv(t)
		plug, unplug, err := e.m.Update(ctx, container(), nil, map[string]map[string]string{"eth0": nic("network", "br0")})
		if err != nil || plug != nil || unplug != nil || len(e.lk.takeOps()) != 0 {
			t.Fatalf("update of a stopped instance: %v %v %v", plug, unplug, err)
		}
	})

	t.Run("failure reported, others applied", func(t *testing.T) {
		e := newEnv(t)
		in := container()
		_, err := e.m.Start(ctx, in, nil)
		wantErr(t, err, nil)
		e.lk.failAddNIC["eth1"] = errors.New("EEXIST")
		_, _, err = e.m.Update(ctx, in, nil, map[string]map[string]string{"eth0": nic("network", "br0"), "eth1": nic("network", "br0")})
		wantErr(t, err, errAny, "eth1", "EEXIST")
		if _, ok := e.lk.links[HostLinkName(rid, "eth0")]; !ok {
			t.Fatal("eth0 not plugged beside the failing eth1")
		}
	})
}

// TestProxies: nat=true is a DNAT rule to the instance's own address when
// connect is a wildcard or loopback; otherwise a forwarder that connects
// from inside the instance's namespace. Both go at stop, and come back
// after a daemon restart (Reattach).
func TestProxies(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	in := container()
	devs := map[string]map[string]string{
		"eth0":  nic("network", "br0"),
		"web":   proxyDev("listen", "tcp:0.0.0.0:8080", "connect", "tcp:127.0.0.1:80", "nat", "true"),
		"any":   proxyDev("listen", "tcp:192.0.2.1:8443", "connect", "tcp:0.0.0.0:443", "nat", "true"),
		"v6":    proxyDev("listen", "tcp:[::]:9000", "connect", "tcp:[::1]:90", "nat", "true"),
		"fixed": proxyDev("listen", "udp:0.0.0.0:5353-5354", "connect", "udp:10.0.3.99:53", "nat", "yes"),
		"ssh":   proxyDev("listen", "tcp:127.0.0.1:2222", "connect", "tcp:127.0.0.1:22"),
	}
	_, err := e.m.Start(ctx, in, devs)
	wantErr(t, err, nil)
	if len(e.nets.ruleCalls) != 0 || len(e.fw.started) != 0 {
		t.Fatal("proxies started before the instance runs")
	}
	wantErr(t, e.m.Started(ctx, in, devs), nil)
	wantRules := []string{
		"proxy/" + rid + "/any tcp 192.0.2.1:[8443] -> 10.0.3.2:[443]",
		"proxy/" + rid + "/fixed udp 0.0.0.0:[5353 5354] -> 10.0.3.99:[53]",
		"proxy/" + rid + "/v6 tcp :::[9000] -> fd42::3:2:[90]",
		"proxy/" + rid + "/web tcp 0.0.0.0:[8080] -> 10.0.3.2:[80]",
	}
	wantLines(t, "NAT rules", e.nets.ruleLines(), wantRules)
	wantLines(t, "forwarders", e.fw.open(), []string{"tcp:127.0.0.1:2222 -> tcp:127.0.0.1:22 in " + rid})

	// A daemon restart: the instance kept running; its proxies come back
	// (forwarders are the daemon's own, gone with the old process).
	e.lk.takeOps()
	e2 := e.restart()
	for _, f := range e.fw.started {
		_ = f.Close()
	}
	wantErr(t, e2.m.Reattach(ctx, in, devs), nil)
	wantLines(t, "NAT rules after reattach", e2.nets.ruleLines(), wantRules)
	wantLines(t, "forwarders after reattach", e2.fw.open(), []string{"tcp:127.0.0.1:2222 -> tcp:127.0.0.1:22 in " + rid})
	if ops := e2.lk.takeOps(); len(ops) != 0 {
		t.Fatalf("reattach touched links: %q", ops)
	}

	wantErr(t, e2.m.Stop(ctx, in, devs), nil)
	if r := e2.nets.ruleLines(); len(r) != 0 {
		t.Fatalf("NAT rules after stop: %q", r)
	}
	if f := e2.fw.open(); len(f) != 0 {
		t.Fatalf("forwarders after stop: %q", f)
	}
	for _, f := range e2.fw.started {
		if f.closes() != 1 {
			t.Fatalf("forwarder %s closed %d times", f.listen, f.closes())
		}
	}
}

// TestProxyFailures: what cannot be forwarded is reported naming the
// device; the other proxies start.
func TestProxyFailures(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		in    Instance
		devs  map[string]map[string]string
		fail  func(e *testEnv)
		words []string
	}{
		{"nat without an address", container(), map[string]map[string]string{
			"eth0": nic("nictype", "bridged", "parent", "hostbr"),
			"p":    proxyDev("listen", "tcp:0.0.0.0:80", "connect", "tcp:127.0.0.1:80", "nat", "true"),
		}, nil, []string{"device p", "IPv4"}},
		{"nat IPv6 without an IPv6 address", container(), map[string]map[string]string{
			"eth0": nic("nictype", "macvlan", "parent", "eth9"),
			"p":    proxyDev("listen", "tcp:[::]:80", "connect", "tcp:[::1]:80", "nat", "true"),
		}, nil, []string{"device p", "IPv6"}},
		{"VM without nat", vm(), map[string]map[string]string{
			"eth0": nic("network", "br0"),
			"p":    proxyDev("listen", "tcp:0.0.0.0:80", "connect", "tcp:127.0.0.1:80"),
		}, nil, []string{"device p", "nat=true"}},
		{"firewall refuses", container(), map[string]map[string]string{
			"eth0": nic("network", "br0"),
			"p":    proxyDev("listen", "tcp:0.0.0.0:80", "connect", "tcp:127.0.0.1:80", "nat", "true"),
		}, func(e *testEnv) { e.nets.failProxy = errors.New("nft: EPERM") }, []string{"device p", "EPERM"}},
		{"forwarder cannot listen", container(), map[string]map[string]string{
			"eth0": nic("network", "br0"),
			"p":    proxyDev("listen", "tcp:0.0.0.0:80", "connect", "tcp:127.0.0.1:80"),
		}, func(e *testEnv) { e.fw.fail = errors.New("address already in use") }, []string{"device p", "address already in use"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.fail != nil {
				tt.fail(e)
			}
			tt.devs["ok"] = proxyDev("listen", "tcp:0.0.0.0:9999", "connect", "tcp:10.0.3.77:99", "nat", "true")
			_, err := e.m.Start(ctx, tt.in, tt.devs)
			wantErr(t, err, nil)
			wantErr(t, e.m.Started(ctx, tt.in, tt.devs), errAny, tt.words...)
			if e.nets.failProxy == nil && len(e.nets.ruleLines()) != 1 {
				t.Fatalf("the good proxy did not start: %q", e.nets.ruleLines())
			}
			wantErr(t, e.m.Stop(ctx, tt.in, tt.devs), nil)
			if r := e.nets.ruleLines(); len(r) != 0 {
				t.Fatalf("rules left: %q", r)
			}
		})
	}
}

// TestRenamedRemoved: the network manager hears of renames (DNS names)
// and of removed NICs (their addresses freed).
func TestRenamedRemoved(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	wantErr(t, e.m.Renamed(ctx), nil)
	wantErr(t, e.m.Removed(ctx, container(), []string{"eth0", "eth1"}), nil)
	if e.nets.renamed != 1 || !slices.Equal(e.nets.released, []string{"7/eth0", "7/eth1"}) {
		t.Fatalf("renamed %d, released %v", e.nets.renamed, e.nets.released)
	}
	// Without networks there is nothing to tell.
	m := New(Config{Dir: t.TempDir(), Links: newFakeLinks()})
	wantErr(t, m.Renamed(ctx), nil)
	wantErr(t, m.Removed(ctx, container(), []string{"eth0"}), nil)
}

// fakeHotplug is a VM driver's NIC hotplug, logging into the links' ops.
type fakeHotplug struct {
	lk        *fakeLinks
	attachErr error
}

func (h *fakeHotplug) AttachNIC(_ context.Context, nic driver.NIC) error {
	h.lk.mu.Lock()
	defer h.lk.mu.Unlock()
	h.lk.log("attach %s", nic.Name)
	return h.attachErr
}

func (h *fakeHotplug) DetachNIC(_ context.Context, name string) error {
	h.lk.mu.Lock()
	defer h.lk.mu.Unlock()
	h.lk.log("detach %s", name)
	return nil
}

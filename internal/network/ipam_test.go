package network

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
)

// TestPickAddress: a static address is checked and honoured, else the one
// held before is kept, else the lowest free one after the gateway.
func TestPickAddress(t *testing.T) {
	sub24 := pfx("10.5.0.1/24")
	sub30 := pfx("10.9.9.1/30")
	sub6 := pfx("fd42::1/64")
	taken := map[string]string{"10.5.0.2": "c1", "10.5.0.3": "c2", "fd42::5": "c3"}
	tests := []struct {
		name       string
		fam        int
		sub        netip.Prefix
		want, prev string
		taken      map[string]string
		got        string
		kind       error
		words      []string
	}{
		{"lowest free skips taken", 4, sub24, "", "", taken, "10.5.0.4", nil, nil},
		{"lowest free on empty", 4, sub24, "", "", nil, "10.5.0.2", nil, nil},
		{"gateway not first", 4, pfx("10.5.0.7/24"), "", "", nil, "10.5.0.1", nil, nil},
		{"previous kept", 4, sub24, "", "10.5.0.200", taken, "10.5.0.200", nil, nil},
		{"previous outside subnet dropped", 4, sub24, "", "10.6.0.9", taken, "10.5.0.4", nil, nil},
		{"static honoured", 4, sub24, "10.5.0.50", "10.5.0.200", taken, "10.5.0.50", nil, nil},
		{"static last host", 4, sub24, "10.5.0.254", "", nil, "10.5.0.254", nil, nil},
		{"static taken names holder", 4, sub24, "10.5.0.3", "", taken, "", errConflict, []string{"10.5.0.3", `"c2"`, `"eth0"`, "ipv4.address"}},
		{"static outside subnet", 4, sub24, "10.5.1.5", "", nil, "", errInvalid, []string{"10.5.1.5", "outside", "10.5.0.0/24", `"net1"`}},
		{"static gateway", 4, sub24, "10.5.0.1", "", nil, "", errInvalid, []string{"10.5.0.1", "gateway"}},
		{"static network address", 4, sub24, "10.5.0.0", "", nil, "", errInvalid, []string{"10.5.0.0", "network or broadcast"}},
		{"static broadcast", 4, sub24, "10.5.0.255", "", nil, "", errInvalid, []string{"10.5.0.255", "broadcast"}},
		{"static not an address", 4, sub24, "10.5.0", "", nil, "", errInvalid, []string{`"10.5.0"`, "IPv4"}},
		{"static of the other family", 4, sub24, "fd42::9", "", nil, "", errInvalid, []string{"IPv4"}},
		{"/30 has one address", 4, sub30, "", "", nil, "10.9.9.2", nil, nil},
		{"/30 exhausted", 4, sub30, "", "", map[string]string{"10.9.9.2": "c1"}, "", errConflict, []string{"no free IPv4", `"net1"`, "10.9.9.0/30"}},
		{"/30 broadcast refused", 4, sub30, "10.9.9.3", "", nil, "", errInvalid, []string{"broadcast"}},
		{"v6 static", 6, sub6, "fd42::99", "", taken, "fd42::99", nil, nil},
		{"v6 static taken", 6, sub6, "fd42::5", "", taken, "", errConflict, []string{`"c3"`, "ipv6.address"}},
		{"v6 static outside", 6, sub6, "fd43::5", "", nil, "", errInvalid, []string{"outside"}},
		{"v6 gateway", 6, sub6, "fd42::1", "", nil, "", errInvalid, []string{"gateway"}},
		{"v6 subnet-router anycast", 6, sub6, "fd42::", "", nil, "", errInvalid, []string{"network"}},
		{"v6 of the other family", 6, sub6, "10.5.0.9", "", nil, "", errInvalid, []string{"IPv6"}},
		{"v6 previous kept", 6, sub6, "", "fd42::77", nil, "fd42::77", nil, nil},
		// The caller derives a new IPv6 address from the MAC.
		{"v6 nothing asked", 6, sub6, "", "", nil, "invalid IP", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickAddress(tt.fam, tt.sub, tt.want, tt.prev, tt.taken, "eth0", "net1")
			wantErr(t, err, tt.kind, tt.words...)
			if tt.kind == nil && got.String() != tt.got {
				t.Fatalf("got %s, want %s", got, tt.got)
			}
		})
	}
}

// TestAllocate: what one NIC gets on a bridge, and what is refused.
func TestAllocate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "br1", map[string]string{"ipv4.address": "10.230.0.1/24", "ipv6.address": "fd90:1:2:3::1/64", "dns.domain": "lab"})
	e.create(t, "v4only", map[string]string{"ipv4.address": "10.231.0.1/24", "ipv6.address": "none", "dns.mode": "none", "bridge.mtu": "1400"})
	c1, c2 := e.instance(t, "c1"), e.instance(t, "c2")

	nc, err := e.m.Allocate(ctx, NICRequest{InstanceID: c1, Device: "eth0", Network: "br1", Hwaddr: "00:16:3e:aa:bb:cc"})
	wantErr(t, err, nil)
	want := NICConfig{Network: "br1", Type: TypeBridge, Bridge: "br1", Hwaddr: "00:16:3e:aa:bb:cc",
		Addresses:   []netip.Prefix{pfx("10.230.0.2/24"), pfx("fd90:1:2:3:216:3eff:feaa:bbcc/64")},
		Gateway4:    addr("10.230.0.1"),
		Gateway6:    addr("fd90:1:2:3::1"),
		Nameservers: []netip.Addr{addr("10.230.0.1")}, SearchDomain: "lab"}
	diffNIC(t, nc, want)

	// The same NIC again: the same MAC and addresses, with no MAC given.
	again, err := e.m.Allocate(ctx, NICRequest{InstanceID: c1, Device: "eth0", Network: "br1"})
	wantErr(t, err, nil)
	diffNIC(t, again, want)

	// dns.mode=none: no nameservers; the MTU comes from bridge.mtu.
	nc, err = e.m.Allocate(ctx, NICRequest{InstanceID: c1, Device: "eth1", Network: "v4only", IPv4: "10.231.0.77"})
	wantErr(t, err, nil)
	if len(nc.Nameservers) != 0 || nc.MTU != 1400 || !slices.Equal(nc.Addresses, []netip.Prefix{pfx("10.231.0.77/24")}) ||
		nc.Gateway6.IsValid() || nc.SearchDomain != DefaultDomain {
		t.Fatalf("v4only NIC: %+v", nc)
	}

	bad := []struct {
		name  string
		req   NICRequest
		kind  error
		words []string
	}{
		{"unknown network", NICRequest{InstanceID: c2, Device: "eth0", Network: "nope"}, errNotFound, []string{`"nope"`}},
		{"bad MAC", NICRequest{InstanceID: c2, Device: "eth0", Network: "br1", Hwaddr: "00:16:3e:aa:bb"}, errInvalid, []string{`"eth0"`, "hwaddr"}},
		{"multicast MAC", NICRequest{InstanceID: c2, Device: "eth0", Network: "br1", Hwaddr: "01:16:3e:aa:bb:cc"}, errInvalid, []string{"multicast"}},
		{"MAC taken", NICRequest{InstanceID: c2, Device: "eth0", Network: "br1", Hwaddr: "00:16:3e:aa:bb:cc"}, errConflict, []string{"00:16:3e:aa:bb:cc", `"c1"`, `"br1"`}},
		{"IPv4 taken", NICRequest{InstanceID: c2, Device: "eth0", Network: "br1", IPv4: "10.230.0.2"}, errConflict, []string{"10.230.0.2", `"c1"`}},
		{"IPv6 taken", NICRequest{InstanceID: c2, Device: "eth0", Network: "br1", IPv6: "fd90:1:2:3:216:3eff:feaa:bbcc"}, errConflict, []string{`"c1"`}},
		{"IPv4 outside", NICRequest{InstanceID: c2, Device: "eth0", Network: "br1", IPv4: "10.231.0.9"}, errInvalid, []string{"outside"}},
		{"IPv6 on a network without", NICRequest{InstanceID: c2, Device: "eth0", Network: "v4only", IPv6: "fd90:1:2:3::9"}, errInvalid, []string{"ipv6.address", "no IPv6 subnet"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.m.Allocate(ctx, tt.req)
			wantErr(t, err, tt.kind, tt.words...)
		})
	}
	// Nothing refused was kept.
	allocs, err := e.m.Allocations(ctx, "")
	wantErr(t, err, nil)
	if len(allocs) != 2 {
		t.Fatalf("allocations after refusals: %+v", allocs)
	}

	// A static address moves a NIC; its old address is free again.
	nc, err = e.m.Allocate(ctx, NICRequest{InstanceID: c1, Device: "eth0", Network: "br1", IPv4: "10.230.0.100"})
	wantErr(t, err, nil)
	if nc.Addresses[0] != pfx("10.230.0.100/24") || nc.Hwaddr != "00:16:3e:aa:bb:cc" {
		t.Fatalf("moved NIC: %+v", nc)
	}
	nc, err = e.m.Allocate(ctx, NICRequest{InstanceID: c2, Device: "eth0", Network: "br1"})
	wantErr(t, err, nil)
	if nc.Addresses[0] != pfx("10.230.0.2/24") {
		t.Fatalf("after the move, c2 got %s, want the freed 10.230.0.2", nc.Addresses[0])
	}

	// Release frees the address for the next NIC.
	wantErr(t, e.m.Release(ctx, c2, "eth0"), nil)
	wantErr(t, e.m.Release(ctx, c2, "eth0"), nil) // nothing held: no error
	c3 := e.instance(t, "c3")
	nc, err = e.m.Allocate(ctx, NICRequest{InstanceID: c3, Device: "net0", Network: "br1"})
	wantErr(t, err, nil)
	if nc.Addresses[0] != pfx("10.230.0.2/24") {
		t.Fatalf("after release, c3 got %s, want 10.230.0.2", nc.Addresses[0])
	}
}

func diffNIC(t *testing.T, got, want NICConfig) {
	t.Helper()
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("NIC config\n got %+v\nwant %+v", got, want)
	}
}

// TestAllocateExhaustion: a /30 has one address for instances.
func TestAllocateExhaustion(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "tiny", map[string]string{"ipv4.address": "10.232.0.1/30", "ipv6.address": "none"})
	c1, c2 := e.instance(t, "c1"), e.instance(t, "c2")
	nc, err := e.m.Allocate(ctx, NICRequest{InstanceID: c1, Device: "eth0", Network: "tiny"})
	wantErr(t, err, nil)
	if nc.Addresses[0] != pfx("10.232.0.2/30") {
		t.Fatalf("got %v", nc.Addresses)
	}
	_, err = e.m.Allocate(ctx, NICRequest{InstanceID: c2, Device: "eth0", Network: "tiny"})
	wantErr(t, err, errConflict, "no free IPv4", `"tiny"`)
	if a, _ := e.m.Allocations(ctx, "tiny"); len(a) != 1 {
		t.Fatalf("allocations: %+v", a)
	}
}

// TestAllocateConcurrent: many NICs at once never share a MAC or an
// address, and each is inside the subnets.
func TestAllocateConcurrent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "br1", map[string]string{"ipv4.address": "10.233.0.1/24", "ipv6.address": "fd91::1/64"})
	const n = 50
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = e.instance(t, fmt.Sprintf("c%d", i))
	}
	got := make([]NICConfig, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i], errs[i] = e.m.Allocate(ctx, NICRequest{InstanceID: ids[i], Device: "eth0", Network: "br1"})
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("c%d: %v", i, errs[i])
		}
		nc := got[i]
		if len(nc.Addresses) != 2 {
			t.Fatalf("c%d: addresses %v", i, nc.Addresses)
		}
		for _, v := range []string{nc.Hwaddr, nc.Addresses[0].Addr().String(), nc.Addresses[1].Addr().String()} {
			if j, dup := seen[v]; dup {
				t.Fatalf("c%d and c%d share %s", j, i, v)
			}
			seen[v] = i
		}
		a4 := nc.Addresses[0].Addr()
		if !pfx("10.233.0.0/24").Contains(a4) || a4 == addr("10.233.0.1") || a4 == addr("10.233.0.255") {
			t.Fatalf("c%d: IPv4 %s", i, a4)
		}
		if !pfx("fd91::/64").Contains(nc.Addresses[1].Addr()) {
			t.Fatalf("c%d: IPv6 %s", i, nc.Addresses[1])
		}
	}
	// The lowest addresses, none skipped: 10.233.0.2 to .51.
	allocs, err := e.m.Allocations(ctx, "br1")
	wantErr(t, err, nil)
	var v4 []string
	for _, a := range allocs {
		v4 = append(v4, a.IPv4)
	}
	for i := 2; i < 2+n; i++ {
		if !slices.Contains(v4, fmt.Sprintf("10.233.0.%d", i)) {
			t.Fatalf("10.233.0.%d not handed out; got %v", i, v4)
		}
	}
	// What the store keeps is what the NICs were told.
	for i, a := range allocs {
		var nc NICConfig
		for j := range ids {
			if ids[j] == a.InstanceID {
				nc = got[j]
			}
		}
		if a.Hwaddr != nc.Hwaddr || a.IPv4 != nc.Addresses[0].Addr().String() || a.IPv6 != nc.Addresses[1].Addr().String() {
			t.Fatalf("allocation %d %+v differs from the NIC's %+v", i, a, nc)
		}
	}
}

// TestAllocateMacvlan: a macvlan NIC gets its parent and its static
// addresses; hangard does no IPAM on a network it does not route.
func TestAllocateMacvlan(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	wantErr(t, e.m.Create(ctx, CreateRequest{Name: "mv", Type: TypeMacvlan, Config: map[string]string{"parent": "veth-up", "mtu": "1450"}}), nil)
	c1 := e.instance(t, "c1")
	nc, err := e.m.Allocate(ctx, NICRequest{InstanceID: c1, Device: "eth0", Network: "mv", IPv4: "192.0.2.10", IPv6: "2001:db8::10"})
	wantErr(t, err, nil)
	if nc.Type != TypeMacvlan || nc.Parent != "veth-up" || nc.Bridge != "" || nc.MTU != 1450 || nc.Hwaddr == "" ||
		!slices.Equal(nc.Addresses, []netip.Prefix{pfx("192.0.2.10/32"), pfx("2001:db8::10/128")}) {
		t.Fatalf("macvlan NIC: %+v", nc)
	}
	_, err = e.m.Allocate(ctx, NICRequest{InstanceID: c1, Device: "eth0", Network: "mv", IPv4: "192.0.2"})
	wantErr(t, err, errInvalid, `"192.0.2"`)
}

// TestDNSHosts: the bridge's DNS server serves every NIC by name, kept
// current through Allocate, Release and a rename.
func TestDNSHosts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "br1", map[string]string{"ipv4.address": "10.234.0.1/24", "ipv6.address": "none"})
	srv := e.dns.running("br1")
	if srv == nil {
		t.Fatal("no DNS server for br1")
	}
	c1, c2 := e.instance(t, "c1"), e.instance(t, "c2")
	for _, id := range []int64{c1, c2} {
		if _, err := e.m.Allocate(ctx, NICRequest{InstanceID: id, Device: "eth0", Network: "br1"}); err != nil {
			t.Fatal(err)
		}
	}
	allocs, _ := e.m.Allocations(ctx, "br1")
	mac := map[string]string{}
	for _, a := range allocs {
		mac[a.Instance] = a.Hwaddr
	}
	want := []DNSHost{{Name: "c1", MAC: mac["c1"], IPv4: addr("10.234.0.2")}, {Name: "c2", MAC: mac["c2"], IPv4: addr("10.234.0.3")}}
	if got := srv.lastHosts(); !slices.Equal(got, want) {
		t.Fatalf("hosts after allocate:\n got %+v\nwant %+v", got, want)
	}

	// Starting an instance again asks for what it holds: nothing changed,
	// so the server is not reloaded.
	calls := srv.setHostsCalls()
	if _, err := e.m.Allocate(ctx, NICRequest{InstanceID: c1, Device: "eth0", Network: "br1"}); err != nil {
		t.Fatal(err)
	}
	if srv.setHostsCalls() != calls {
		t.Fatalf("an unchanged allocation reloaded the DNS server (%d -> %d SetHosts)", calls, srv.setHostsCalls())
	}

	// A rename is served under the new name.
	in, err := e.st.GetInstance(ctx, "c2")
	wantErr(t, err, nil)
	in.Name = "web"
	wantErr(t, e.st.UpdateInstance(ctx, in), nil)
	wantErr(t, e.m.InstanceRenamed(ctx), nil)
	want = []DNSHost{{Name: "c1", MAC: mac["c1"], IPv4: addr("10.234.0.2")}, {Name: "web", MAC: mac["c2"], IPv4: addr("10.234.0.3")}}
	if got := srv.lastHosts(); !slices.Equal(got, want) {
		t.Fatalf("hosts after rename:\n got %+v\nwant %+v", got, want)
	}

	wantErr(t, e.m.Release(ctx, c1, "eth0"), nil)
	want = want[1:]
	if got := srv.lastHosts(); !slices.Equal(got, want) {
		t.Fatalf("hosts after release:\n got %+v\nwant %+v", got, want)
	}

	// A restarted server starts with every host.
	wantErr(t, e.m.Patch(ctx, "br1", Put{Config: map[string]string{"dns.domain": "lab"}}), nil)
	srv2 := e.dns.running("br1")
	if srv2 == srv || srv2 == nil {
		t.Fatal("a changed network did not restart its DNS server")
	}
	if got := srv2.lastHosts(); !slices.Equal(got, want) || srv2.cfg.Domain != "lab" {
		t.Fatalf("restarted server: hosts %+v domain %q", got, srv2.cfg.Domain)
	}
}

// TestLeases: every NIC's reserved addresses, then what the DHCP server
// gave to others, by address; a reserved MAC's lease is not listed twice.
func TestLeases(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "br1", map[string]string{"ipv4.address": "10.235.0.1/24", "ipv6.address": "fd92::1/64"})
	c1 := e.instance(t, "c1")
	nc, err := e.m.Allocate(ctx, NICRequest{InstanceID: c1, Device: "eth0", Network: "br1", Hwaddr: "00:16:3e:00:00:01", IPv4: "10.235.0.50"})
	wantErr(t, err, nil)
	srv := e.dns.running("br1")
	srv.mu.Lock()
	srv.leases = []DNSLease{
		{Hostname: "laptop", MAC: "52:54:00:00:00:09", Address: addr("10.235.0.20")},
		{Hostname: "c1", MAC: "00:16:3e:00:00:01", Address: addr("10.235.0.50")}, // c1's own, by DHCP
	}
	srv.mu.Unlock()
	got, err := e.m.Leases(ctx, "br1")
	wantErr(t, err, nil)
	want := []Lease{
		{Hostname: "laptop", Hwaddr: "52:54:00:00:00:09", Address: "10.235.0.20", Type: "dynamic"},
		{Hostname: "c1", Hwaddr: "00:16:3e:00:00:01", Address: "10.235.0.50", Type: "static"},
		{Hostname: "c1", Hwaddr: "00:16:3e:00:00:01", Address: nc.Addresses[1].Addr().String(), Type: "static"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("leases\n got %+v\nwant %+v", got, want)
	}

	_, err = e.m.Leases(ctx, "eth0")
	wantErr(t, err, errInvalid, `"eth0"`, "not managed")
	_, err = e.m.Leases(ctx, "nope")
	wantErr(t, err, errNotFound)
}

package network

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestStartDefault: the first start makes hangarbr0 with an auto subnet of
// each family clear of the host's routes, NAT on, DHCP and DNS running; a
// later start brings it up again but never makes a second one, nor one the
// user deleted.
func TestStartDefault(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	created, err := e.m.Start(ctx, true)
	wantErr(t, err, nil)
	if !created {
		t.Fatal("first start did not report the default network made")
	}
	rec := e.record(t, DefaultBridge)
	v4, err4 := netip.ParsePrefix(rec.Config["ipv4.address"])
	v6, err6 := netip.ParsePrefix(rec.Config["ipv6.address"])
	if err4 != nil || err6 != nil || rec.Type != TypeBridge {
		t.Fatalf("default network record: %+v", rec)
	}
	if !freeV4.Contains(v4.Addr()) || v4.Bits() != 24 || !freeV6.Contains(v6.Addr()) || v6.Bits() != 64 {
		t.Fatalf("auto subnets %s, %s overlap the host's routes (free: %s, %s)", v4, v6, freeV4, freeV6)
	}
	if rec.Config["ipv4.nat"] != "true" || rec.Config["ipv6.nat"] != "true" {
		t.Fatalf("auto subnets without NAT: %v", rec.Config)
	}
	b, ok := e.host.bridge(DefaultBridge)
	if !ok || !slices.Equal(b.Addrs, []netip.Prefix{v4, v6}) || b.Hwaddr != stableMAC(DefaultBridge) {
		t.Fatalf("bridge on the host: %+v (ok %v)", b, ok)
	}
	if !e.host.forwarding[4] || !e.host.forwarding[6] {
		t.Fatalf("forwarding: %v", e.host.forwarding)
	}
	srv := e.dns.running(DefaultBridge)
	if srv == nil || srv.cfg.IPv4 != v4 || srv.cfg.IPv6 != v6 || !srv.cfg.DHCPv4 || !srv.cfg.DHCPv6 || !srv.cfg.DNS ||
		srv.cfg.Domain != DefaultDomain || srv.cfg.Dir != filepath.Join(e.dir, DefaultBridge) {
		t.Fatalf("DNS server: %+v", srv)
	}
	wantBridges(t, e.fw.last(), []BridgeRules{{Bridge: DefaultBridge, IPv4: v4, IPv6: v6, NAT4: true, NAT6: true}})
	if n := e.host.ensureCount(DefaultBridge); n != 1 {
		t.Fatalf("first start made the bridge %d times", n)
	}

	// A daemon restart: the same network brought up again, not a new one.
	e2 := restart(t, e)
	created, err = e2.m.Start(ctx, true)
	wantErr(t, err, nil)
	if created {
		t.Fatal("second start made the default network again")
	}
	if got := e2.record(t, DefaultBridge); got.Config["ipv4.address"] != v4.String() {
		t.Fatalf("second start changed the subnet: %v", got.Config)
	}
	if n := e.host.ensureCount(DefaultBridge); n != 2 {
		t.Fatalf("bridge brought up %d times over two starts, want 2", n)
	}
	if e.dns.running(DefaultBridge) == nil {
		t.Fatal("no DNS server after a restart")
	}

	// Deleted by the user: it stays deleted.
	wantErr(t, e2.m.Delete(ctx, DefaultBridge), nil)
	e3 := restart(t, e2)
	created, err = e3.m.Start(ctx, true)
	wantErr(t, err, nil)
	if created {
		t.Fatal("a deleted default network came back")
	}
	if _, err := e3.st.GetNetwork(ctx, DefaultBridge); !errors.Is(err, errNotFound) {
		t.Fatalf("default network after delete and restart: %v", err)
	}
	if e.fw.removed == 0 || len(e.fw.last().Bridges) != 0 {
		t.Fatalf("firewall not removed with no network left: %+v", e.fw.last())
	}
}

// restart makes a second Manager on the same store and host, as a daemon
// restart does (the first one's DNS servers stop).
func restart(t *testing.T, e *testEnv) *testEnv {
	t.Helper()
	wantErr(t, e.m.Close(), nil)
	e2 := &testEnv{st: e.st, host: e.host, fw: e.fw, dns: e.dns, ev: e.ev, dir: e.dir, users: map[string][]string{}}
	e2.m = New(Config{Store: e.st, Dir: e.dir, Host: e.host, Firewall: e.fw, StartDNS: e.dns.start, Events: e.ev, Log: quietLog})
	t.Cleanup(func() { _ = e2.m.Close() })
	return e2
}

// TestStartWithoutDefault: createDefault false makes nothing.
func TestStartWithoutDefault(t *testing.T) {
	e := newEnv(t)
	created, err := e.m.Start(context.Background(), false)
	wantErr(t, err, nil)
	if created || e.host.ensureCount(DefaultBridge) != 0 {
		t.Fatal("default network made without createDefault")
	}
	if e.fw.removed != 1 {
		t.Fatalf("no network: the firewall table should be removed, got %d removals", e.fw.removed)
	}
}

// TestStartErrored: a network whose host side cannot be made is reported
// and shows Errored; the others come up.
func TestStartErrored(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "good", map[string]string{"ipv4.address": "10.240.0.1/24", "ipv6.address": "none"})
	e.create(t, "bad", map[string]string{"ipv4.address": "10.241.0.1/24", "ipv6.address": "none"})
	e2 := restart(t, e)
	e.dns.mu.Lock()
	e.dns.failStart["bad"] = errors.New("dnsmasq: address in use")
	e.dns.mu.Unlock()
	_, err := e2.m.Start(ctx, false)
	if err == nil || !strings.Contains(err.Error(), "address in use") {
		t.Fatalf("Start: %v, want the failure reported", err)
	}
	got := map[string]string{}
	nets, err := e2.m.List(ctx)
	wantErr(t, err, nil)
	for _, n := range nets {
		got[n.Name] = n.Status
	}
	if got["good"] != "Created" || got["bad"] != "Errored" {
		t.Fatalf("statuses: %v", got)
	}
	// The firewall still holds both bridges' rules.
	if len(e.fw.last().Bridges) != 2 {
		t.Fatalf("firewall bridges: %+v", e.fw.last().Bridges)
	}
}

// TestCreate: what a new network may be; a refused one leaves nothing.
func TestCreate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "br1", map[string]string{"ipv4.address": "10.242.0.1/24", "ipv6.address": "fd94::1/64"})
	tests := []struct {
		name  string
		req   CreateRequest
		kind  error
		words []string
	}{
		{"bad name", CreateRequest{Name: "br 2"}, errInvalid, []string{`"br 2"`}},
		{"reserved name", CreateRequest{Name: "none"}, errInvalid, []string{"reserved"}},
		{"unknown type", CreateRequest{Name: "br2", Type: "ovn"}, errInvalid, []string{`"ovn"`}},
		{"unknown key", CreateRequest{Name: "br2", Config: map[string]string{"ipv4.firewall": "true"}}, errInvalid, []string{`"ipv4.firewall"`}},
		{"raw.dnsmasq", CreateRequest{Name: "br2", Config: map[string]string{"raw.dnsmasq": "dhcp-script=/bin/sh"}}, errInvalid, []string{`"raw.dnsmasq"`}},
		{"exists", CreateRequest{Name: "br1"}, errConflict, []string{`"br1"`, "exists"}},
		{"host interface name", CreateRequest{Name: "eth0"}, errConflict, []string{`"eth0"`, "host"}},
		{"overlaps a host route", CreateRequest{Name: "br2", Config: map[string]string{"ipv4.address": "192.168.1.1/24"}}, errConflict, []string{`"ipv4.address"`, "192.168.1.0/24"}},
		{"overlaps a host route (wider)", CreateRequest{Name: "br2", Config: map[string]string{"ipv4.address": "172.20.0.1/24"}}, errConflict, []string{"172.16.0.0/12"}},
		{"overlaps another network", CreateRequest{Name: "br2", Config: map[string]string{"ipv4.address": "10.242.0.129/25"}}, errConflict, []string{"10.242.0.0/24"}},
		{"overlaps another network v6", CreateRequest{Name: "br2", Config: map[string]string{"ipv4.address": "none", "ipv6.address": "fd94:0:0:1::1/48"}}, errConflict, []string{`"ipv6.address"`, "fd94::/64"}},
		{"macvlan without parent", CreateRequest{Name: "mv", Type: TypeMacvlan}, errInvalid, []string{`"parent"`}},
		{"macvlan missing parent", CreateRequest{Name: "mv", Type: TypeMacvlan, Config: map[string]string{"parent": "eth9"}}, errNotFound, []string{`"parent"`, `"eth9"`}},
	}
	before := len(e.host.deleted)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, e.m.Create(ctx, tt.req), tt.kind, tt.words...)
		})
	}
	nets, err := e.st.ListNetworks(ctx)
	wantErr(t, err, nil)
	if len(nets) != 1 || len(e.host.bridges) != 1 || len(e.host.deleted) != before {
		t.Fatalf("refusals left something: records %+v, bridges %v", nets, e.host.bridges)
	}

	// An explicit subnet keeps NAT off unless asked (LXD's default: NAT
	// only for auto subnets), and none means none.
	e.create(t, "br3", map[string]string{"ipv4.address": "10.243.0.1/24", "ipv6.address": "none"})
	rec := e.record(t, "br3")
	if _, ok := rec.Config["ipv4.nat"]; ok || rec.Config["ipv6.address"] != "none" {
		t.Fatalf("explicit subnet config: %v", rec.Config)
	}
	if b, _ := e.host.bridge("br3"); !slices.Equal(b.Addrs, []netip.Prefix{pfx("10.243.0.1/24")}) {
		t.Fatalf("br3 addresses: %v", b.Addrs)
	}
	// Caller's map is not kept (the manager fills in auto values).
	cfg := map[string]string{}
	wantErr(t, e.m.Create(ctx, CreateRequest{Name: "br4", Config: cfg}), nil)
	if len(cfg) != 0 {
		t.Fatalf("Create wrote into the caller's config: %v", cfg)
	}
	// A macvlan on a host NIC: a record, nothing on the host.
	wantErr(t, e.m.Create(ctx, CreateRequest{Name: "mv", Type: TypeMacvlan, Config: map[string]string{"parent": "veth-up"}}), nil)
	if _, ok := e.host.bridge("mv"); ok || e.dns.running("mv") != nil {
		t.Fatal("a macvlan network made a bridge or a DNS server")
	}
	if got := e.ev.all(); !slices.Contains(got, "network-created network br3") || !slices.Contains(got, "network-created network mv") {
		t.Fatalf("events: %v", got)
	}
}

// TestCreateFailureLeavesNothing: a host side that cannot be made takes
// the record and what was made with it.
func TestCreateFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		fail func(e *testEnv)
	}{
		{"bridge", func(e *testEnv) { e.host.failEnsure["br1"] = errors.New("EPERM") }},
		{"dnsmasq", func(e *testEnv) { e.dns.failStart["br1"] = errors.New("dnsmasq exited") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.fail(e)
			err := e.m.Create(ctx, CreateRequest{Name: "br1", Config: map[string]string{"ipv4.address": "10.244.0.1/24"}})
			if err == nil || !strings.Contains(err.Error(), "br1") {
				t.Fatalf("Create: %v", err)
			}
			if _, err := e.st.GetNetwork(ctx, "br1"); !errors.Is(err, errNotFound) {
				t.Fatalf("record left: %v", err)
			}
			if _, ok := e.host.bridge("br1"); ok || e.dns.running("br1") != nil {
				t.Fatal("bridge or DNS server left")
			}
			if !slices.Contains(e.host.deleted, "br1") {
				t.Fatal("the half-made bridge was not deleted")
			}
			// The name is free for a second try.
			e.create(t, "br1", map[string]string{"ipv4.address": "10.244.0.1/24"})
		})
	}
}

// TestListGetState: managed networks and the host's interfaces, but not
// the host ends of instance NICs.
func TestListGetState(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "br1", map[string]string{"ipv4.address": "10.245.0.1/24", "ipv6.address": "none"})
	e.setUsers("br1", "instances/c1", "profiles/default")
	nets, err := e.m.List(ctx)
	wantErr(t, err, nil)
	var names []string
	for _, n := range nets {
		names = append(names, n.Name)
	}
	if !slices.Equal(names, []string{"br1", "eth0", "lo", "veth-up"}) {
		t.Fatalf("List names: %v", names)
	}
	br := nets[0]
	if !br.Managed || br.Type != TypeBridge || br.Status != "Created" || !slices.Equal(br.UsedBy, []string{"instances/c1", "profiles/default"}) {
		t.Fatalf("br1: %+v", br)
	}
	if lo := nets[2]; lo.Managed || lo.Type != "loopback" || lo.UsedBy == nil || lo.Config == nil {
		t.Fatalf("lo: %+v", lo)
	}

	n, err := e.m.Get(ctx, "eth0")
	wantErr(t, err, nil)
	if n.Managed || n.Type != "physical" {
		t.Fatalf("Get eth0: %+v", n)
	}
	_, err = e.m.Get(ctx, HostLinkPrefix+"0badf00d")
	wantErr(t, err, errNotFound)
	_, err = e.m.Get(ctx, "nope")
	wantErr(t, err, errNotFound, `"nope"`)

	typ, err := e.m.NetworkType(ctx, "br1")
	if err != nil || typ != TypeBridge {
		t.Fatalf("NetworkType: %q, %v", typ, err)
	}
	_, err = e.m.NetworkType(ctx, "eth0")
	wantErr(t, err, errNotFound)

	st, err := e.m.State(ctx, "br1")
	wantErr(t, err, nil)
	if st.Name != "br1" || st.Type != "bridge" || len(st.Addresses) != 1 || st.Addresses[0].Address != "10.245.0.1" {
		t.Fatalf("State br1: %+v", st)
	}
	_, err = e.m.State(ctx, "nope")
	wantErr(t, err, errNotFound)
}

// TestUpdatePatch: PUT replaces, PATCH merges; bad input changes nothing.
func TestUpdatePatch(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "br1", map[string]string{"ipv4.address": "10.246.0.1/24", "ipv6.address": "none", "ipv4.nat": "true"})
	e.create(t, "br2", map[string]string{"ipv4.address": "10.247.0.1/24", "ipv6.address": "none"})

	// A change of another key leaves the subnet, though the host now has
	// the bridge's own routes in it.
	wantErr(t, e.m.Patch(ctx, "br1", Put{Description: "lab", Config: map[string]string{"ipv4.nat": "false", "bridge.mtu": "1400"}}), nil)
	rec := e.record(t, "br1")
	if rec.Description != "lab" || rec.Config["ipv4.nat"] != "false" || rec.Config["bridge.mtu"] != "1400" || rec.Config["ipv4.address"] != "10.246.0.1/24" {
		t.Fatalf("after patch: %+v", rec)
	}
	if b, _ := e.host.bridge("br1"); b.MTU != 1400 {
		t.Fatalf("bridge MTU %d", b.MTU)
	}
	wantBridges(t, e.fw.last(), []BridgeRules{
		{Bridge: "br1", IPv4: pfx("10.246.0.1/24")},
		{Bridge: "br2", IPv4: pfx("10.247.0.1/24")},
	})
	// PATCH: an empty value removes the key, an empty description keeps it.
	wantErr(t, e.m.Patch(ctx, "br1", Put{Config: map[string]string{"bridge.mtu": ""}}), nil)
	if rec := e.record(t, "br1"); rec.Description != "lab" || rec.Config["bridge.mtu"] != "" {
		t.Fatalf("after patch unset: %+v", rec)
	}
	// PUT replaces config and description.
	wantErr(t, e.m.Update(ctx, "br1", Put{Config: map[string]string{"ipv4.address": "10.246.0.1/24", "ipv6.address": "none", "dns.domain": "lab"}}), nil)
	if rec := e.record(t, "br1"); rec.Description != "" || rec.Config["ipv4.nat"] != "" || rec.Config["dns.domain"] != "lab" {
		t.Fatalf("after put: %+v", rec)
	}

	good := e.record(t, "br1")
	tests := []struct {
		name  string
		net   string
		put   Put
		patch bool
		kind  error
		words []string
	}{
		{"unknown key", "br1", Put{Config: map[string]string{"ipv4.address": "10.246.0.1/24", "bogus": "1"}}, false, errInvalid, []string{`"bogus"`}},
		{"bad value", "br1", Put{Config: map[string]string{"bridge.mtu": "9"}}, true, errInvalid, []string{`"bridge.mtu"`}},
		{"raw.dnsmasq", "br1", Put{Config: map[string]string{"raw.dnsmasq": "x"}}, true, errInvalid, []string{`"raw.dnsmasq"`}},
		{"overlap another network", "br1", Put{Config: map[string]string{"ipv4.address": "10.247.0.1/16"}}, true, errConflict, []string{"10.247.0.0/24"}},
		{"overlap the host", "br1", Put{Config: map[string]string{"ipv4.address": "192.168.1.2/24"}}, true, errConflict, []string{"192.168.1.0/24"}},
		{"host interface", "eth0", Put{Config: map[string]string{"ipv4.nat": "true"}}, true, errInvalid, []string{`"eth0"`, "not managed"}},
		{"host interface put", "eth0", Put{}, false, errInvalid, []string{"not managed"}},
		{"missing", "nope", Put{}, true, errNotFound, []string{`"nope"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.patch {
				err = e.m.Patch(ctx, tt.net, tt.put)
			} else {
				err = e.m.Update(ctx, tt.net, tt.put)
			}
			wantErr(t, err, tt.kind, tt.words...)
		})
	}
	if rec := e.record(t, "br1"); !mapsEqual(rec.Config, good.Config) {
		t.Fatalf("refused updates changed the record: %v, was %v", rec.Config, good.Config)
	}

	// A host side that cannot be made: the record and host go back.
	e.host.mu.Lock()
	e.host.failEnsure["br1"] = errors.New("EBUSY")
	e.host.mu.Unlock()
	err := e.m.Patch(ctx, "br1", Put{Config: map[string]string{"bridge.mtu": "9000"}})
	if err == nil || !strings.Contains(err.Error(), "EBUSY") {
		t.Fatalf("failing update: %v", err)
	}
	if rec := e.record(t, "br1"); !mapsEqual(rec.Config, good.Config) {
		t.Fatalf("failed update kept: %v", rec.Config)
	}
	if b, ok := e.host.bridge("br1"); !ok || b.MTU != 0 || e.dns.running("br1") == nil {
		t.Fatalf("failed update did not restore the host side: %+v", b)
	}
	if got := e.ev.all(); !slices.Contains(got, "network-updated network br1") {
		t.Fatalf("events: %v", got)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestUpdateSubnetHeld: the subnet of a family cannot change while NICs
// hold addresses in it (they would be outside it); the other family can.
func TestUpdateSubnetHeld(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "br1", map[string]string{"ipv4.address": "10.248.0.1/24", "ipv6.address": "none"})
	c1 := e.instance(t, "c1")
	if _, err := e.m.Allocate(ctx, NICRequest{InstanceID: c1, Device: "eth0", Network: "br1"}); err != nil {
		t.Fatal(err)
	}
	err := e.m.Patch(ctx, "br1", Put{Config: map[string]string{"ipv4.address": "10.249.0.1/24"}})
	wantErr(t, err, errConflict, `"ipv4.address"`, `"c1"`)
	err = e.m.Patch(ctx, "br1", Put{Config: map[string]string{"ipv4.address": "none"}})
	wantErr(t, err, errConflict, `"c1"`)
	if rec := e.record(t, "br1"); rec.Config["ipv4.address"] != "10.248.0.1/24" {
		t.Fatalf("subnet changed: %v", rec.Config)
	}
	// IPv6 is held by nobody: it may be turned on.
	wantErr(t, e.m.Patch(ctx, "br1", Put{Config: map[string]string{"ipv6.address": "fd95::1/64"}}), nil)
	// Released, the IPv4 subnet may change.
	wantErr(t, e.m.Release(ctx, c1, "eth0"), nil)
	wantErr(t, e.m.Patch(ctx, "br1", Put{Config: map[string]string{"ipv4.address": "10.249.0.1/24"}}), nil)
	if b, _ := e.host.bridge("br1"); !slices.Equal(b.Addrs, []netip.Prefix{pfx("10.249.0.1/24"), pfx("fd95::1/64")}) {
		t.Fatalf("bridge addresses: %v", b.Addrs)
	}
}

// TestUpdateMacvlanParent: a macvlan's parent changes only when nothing
// uses the network, and only to a host interface that exists.
func TestUpdateMacvlanParent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	wantErr(t, e.m.Create(ctx, CreateRequest{Name: "mv", Type: TypeMacvlan, Config: map[string]string{"parent": "eth0"}}), nil)
	e.setUsers("mv", "instances/c1")
	wantErr(t, e.m.Patch(ctx, "mv", Put{Config: map[string]string{"parent": "veth-up"}}), errConflict, `"parent"`, "instances/c1")
	// Other keys may change while in use.
	wantErr(t, e.m.Patch(ctx, "mv", Put{Config: map[string]string{"mtu": "1400"}}), nil)
	e.setUsers("mv")
	wantErr(t, e.m.Patch(ctx, "mv", Put{Config: map[string]string{"parent": "eth9"}}), errNotFound, `"parent"`, `"eth9"`)
	if rec := e.record(t, "mv"); rec.Config["parent"] != "eth0" {
		t.Fatalf("parent changed to a missing interface: %v", rec.Config)
	}
	wantErr(t, e.m.Patch(ctx, "mv", Put{Config: map[string]string{"parent": "veth-up"}}), nil)
	wantErr(t, e.m.Update(ctx, "mv", Put{Config: map[string]string{}}), errInvalid, `"parent"`)
}

// TestRename: a network nothing uses takes its new name on the host too.
func TestRename(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "br1", map[string]string{"ipv4.address": "10.250.0.1/24", "ipv6.address": "none"})
	e.create(t, "br2", map[string]string{"ipv4.address": "10.251.0.1/24", "ipv6.address": "none"})
	wantErr(t, e.m.PutForward(ctx, Forward{Network: "br1", ListenAddress: "192.0.2.1", Config: map[string]string{"target_address": "10.250.0.9"}}, false), nil)

	e.setUsers("br1", "profiles/default")
	wantErr(t, e.m.Rename(ctx, "br1", "lab"), errConflict, `"br1"`, "profiles/default")
	e.setUsers("br1")
	c1 := e.instance(t, "c1")
	if _, err := e.m.Allocate(ctx, NICRequest{InstanceID: c1, Device: "eth0", Network: "br1"}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.m.Rename(ctx, "br1", "lab"), errConflict, "c1")
	wantErr(t, e.m.Release(ctx, c1, "eth0"), nil)

	wantErr(t, e.m.Rename(ctx, "br1", "bad name"), errInvalid, `"bad name"`)
	wantErr(t, e.m.Rename(ctx, "br1", "eth0"), errConflict, `"eth0"`)
	wantErr(t, e.m.Rename(ctx, "br1", "br2"), errConflict, `"br2"`)
	wantErr(t, e.m.Rename(ctx, "nope", "x"), errNotFound)
	wantErr(t, e.m.Rename(ctx, "eth0", "x"), errInvalid, "not managed")
	// The refusals left br1 as it was, up.
	if _, ok := e.host.bridge("br1"); !ok || e.dns.running("br1") == nil {
		t.Fatal("a refused rename took br1 down")
	}

	wantErr(t, e.m.Rename(ctx, "br1", "lab"), nil)
	if _, ok := e.host.bridge("br1"); ok || e.dns.running("br1") != nil {
		t.Fatal("the old bridge or its DNS server is left")
	}
	if _, ok := e.host.bridge("lab"); !ok || e.dns.running("lab") == nil {
		t.Fatal("no bridge or DNS server under the new name")
	}
	if _, err := os.Stat(filepath.Join(e.dir, "lab")); err != nil {
		t.Fatalf("state directory not renamed: %v", err)
	}
	wantBridges(t, e.fw.last(), []BridgeRules{{Bridge: "br2", IPv4: pfx("10.251.0.1/24")}, {Bridge: "lab", IPv4: pfx("10.250.0.1/24")}})
	wantForwards(t, e.fw.last(), []string{
		"forward/lab/192.0.2.1 tcp 192.0.2.1:[] -> 10.250.0.9:[]",
		"forward/lab/192.0.2.1 udp 192.0.2.1:[] -> 10.250.0.9:[]",
	})
	if got := e.ev.all(); !slices.Contains(got, "network-renamed network lab") {
		t.Fatalf("events: %v", got)
	}
}

// TestDelete: a network in use is a 409 naming its users; deleting the
// last one leaves nothing of it: bridge, DNS server, state, rules.
func TestDelete(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "br1", map[string]string{"ipv4.address": "10.252.0.1/24", "ipv6.address": "none", "ipv4.nat": "true"})
	wantErr(t, e.m.SetProxyRules(ctx, "proxy/c9/web", []ForwardRule{{Proto: "tcp", ListenPorts: []uint16{80}, Target: addr("10.252.0.9")}}), nil)

	e.setUsers("br1", "instances/c1", "profiles/default")
	wantErr(t, e.m.Delete(ctx, "br1"), errConflict, `"br1"`, "instances/c1", "profiles/default")
	e.setUsers("br1")
	c1 := e.instance(t, "c1")
	if _, err := e.m.Allocate(ctx, NICRequest{InstanceID: c1, Device: "eth0", Network: "br1"}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.m.Delete(ctx, "br1"), errConflict, "c1")
	wantErr(t, e.m.Release(ctx, c1, "eth0"), nil)
	wantErr(t, e.m.Delete(ctx, "eth0"), errInvalid, "not managed")
	wantErr(t, e.m.Delete(ctx, "nope"), errNotFound)
	if _, ok := e.host.bridge("br1"); !ok {
		t.Fatal("a refused delete took the bridge")
	}

	srv := e.dns.running("br1")
	wantErr(t, e.m.Delete(ctx, "br1"), nil)
	if _, ok := e.host.bridge("br1"); ok || !srv.stopped {
		t.Fatal("bridge or DNS server left")
	}
	if _, err := os.Stat(filepath.Join(e.dir, "br1")); !os.IsNotExist(err) {
		t.Fatalf("state directory left: %v", err)
	}
	// The proxy rule stays (its instance still runs); the bridge's go.
	st := e.fw.last()
	if len(st.Bridges) != 0 || len(st.Forwards) != 1 {
		t.Fatalf("firewall after delete: %+v", st)
	}
	removed := e.fw.removed
	wantErr(t, e.m.SetProxyRules(ctx, "proxy/c9/web", nil), nil)
	if e.fw.removed != removed+1 {
		t.Fatal("nothing left, but the firewall table was not removed")
	}
	if got := e.ev.all(); !slices.Contains(got, "network-deleted network br1") {
		t.Fatalf("events: %v", got)
	}
}

// TestFirewallState: the firewall gets every bridge with its NAT flags,
// every forward, then the proxies' rules by owner; macvlans have none.
func TestFirewallState(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "a", map[string]string{"ipv4.address": "10.253.0.1/24", "ipv6.address": "fd96::1/64", "ipv4.nat": "true", "ipv6.nat": "false"})
	e.create(t, "b", map[string]string{"ipv4.address": "none", "ipv6.address": "fd97::1/64", "ipv6.nat": "yes"})
	wantErr(t, e.m.Create(ctx, CreateRequest{Name: "mv", Type: TypeMacvlan, Config: map[string]string{"parent": "eth0"}}), nil)
	wantErr(t, e.m.PutForward(ctx, Forward{Network: "a", ListenAddress: "192.0.2.1",
		Ports: []ForwardPort{{Protocol: "tcp", ListenPort: "80", TargetAddress: "10.253.0.5"}}}, false), nil)

	// The device layer's rules, in the order of their owners.
	rules := []ForwardRule{{Proto: "tcp", Listen: addr("0.0.0.0"), ListenPorts: []uint16{8080}, Target: addr("10.253.0.7"), TargetPorts: []uint16{80}}}
	wantErr(t, e.m.SetProxyRules(ctx, "proxy/c2/web", rules), nil)
	wantErr(t, e.m.SetProxyRules(ctx, "proxy/c1/dns", []ForwardRule{{Proto: "udp", ListenPorts: []uint16{53}, Target: addr("10.253.0.6"), TargetPorts: []uint16{53}}}), nil)

	st := e.fw.last()
	wantBridges(t, st, []BridgeRules{
		{Bridge: "a", IPv4: pfx("10.253.0.1/24"), IPv6: pfx("fd96::1/64"), NAT4: true},
		{Bridge: "b", IPv6: pfx("fd97::1/64"), NAT6: true},
	})
	wantForwards(t, st, []string{
		"forward/a/192.0.2.1 tcp 192.0.2.1:[80] -> 10.253.0.5:[80]",
		"proxy/c1/dns udp *:[53] -> 10.253.0.6:[53]",
		"proxy/c2/web tcp 0.0.0.0:[8080] -> 10.253.0.7:[80]",
	})

	// Who holds a listen port, for a clear 409 before a rule is made.
	for _, tt := range []struct {
		owner, proto string
		listen       netip.Addr
		port         uint16
		holder       string
	}{
		{"proxy/c3/x", "tcp", netip.Addr{}, 8080, "proxy/c2/web"},
		{"proxy/c3/x", "tcp", addr("127.0.0.1"), 8080, "proxy/c2/web"}, // the wildcard takes every address
		{"proxy/c3/x", "udp", addr("192.0.2.8"), 53, "proxy/c1/dns"},
		{"proxy/c3/x", "udp", netip.Addr{}, 8080, ""},   // other protocol
		{"proxy/c3/x", "tcp", netip.Addr{}, 8081, ""},   // other port
		{"proxy/c2/web", "tcp", netip.Addr{}, 8080, ""}, // its own rule
	} {
		holder, inUse := e.m.ProxyListenInUse(ctx, tt.owner, tt.proto, tt.listen, tt.port)
		if holder != tt.holder || inUse != (tt.holder != "") {
			t.Errorf("ProxyListenInUse(%s %s %v:%d) = %q, %v; want %q", tt.owner, tt.proto, tt.listen, tt.port, holder, inUse, tt.holder)
		}
	}

	// A firewall that refuses: the rules are not recorded as made, and
	// the next rebuild does not carry them.
	e.fw.setFail(errors.New("netlink: EPERM"))
	err := e.m.SetProxyRules(ctx, "proxy/c4/ssh", []ForwardRule{{Proto: "tcp", ListenPorts: []uint16{22}, Target: addr("10.253.0.8")}})
	if err == nil || !strings.Contains(err.Error(), "EPERM") {
		t.Fatalf("SetProxyRules with a failing firewall: %v", err)
	}
	err = e.m.SetProxyRules(ctx, "proxy/c2/web", nil)
	if err == nil {
		t.Fatal("removing rules with a failing firewall reported success")
	}
	e.fw.setFail(nil)
	wantErr(t, e.m.SetProxyRules(ctx, "proxy/c1/dns", nil), nil)
	wantForwards(t, e.fw.last(), []string{
		"forward/a/192.0.2.1 tcp 192.0.2.1:[80] -> 10.253.0.5:[80]",
		"proxy/c2/web tcp 0.0.0.0:[8080] -> 10.253.0.7:[80]",
	})
	// Removing rules nobody has is a no-op, not a rebuild.
	n := len(e.fw.applied)
	wantErr(t, e.m.SetProxyRules(ctx, "proxy/none/x", nil), nil)
	if len(e.fw.applied) != n {
		t.Fatal("removing absent rules rebuilt the firewall")
	}
}

// TestUsedPrefixes: a network's own subnet, and the host routes inside it,
// are not in its way; every other network's subnet and host route is.
func TestUsedPrefixes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "br1", map[string]string{"ipv4.address": "10.254.0.1/24", "ipv6.address": "fd98::1/64"})
	e.create(t, "br2", map[string]string{"ipv4.address": "10.254.1.1/24", "ipv6.address": "none"})
	self, _, err := e.m.usedPrefixes(ctx, "br1")
	wantErr(t, err, nil)
	other, _, err := e.m.usedPrefixes(ctx, "br3")
	wantErr(t, err, nil)
	for _, p := range []netip.Prefix{pfx("10.254.0.0/24"), pfx("fd98::/64"), pfx("10.254.0.1/32")} {
		for _, u := range self {
			if u.Overlaps(p) {
				t.Errorf("br1's own %s is in its way (%s): %v", p, u, self)
			}
		}
		// The bridge's own address counts as its network's subnet.
		if !slices.ContainsFunc(other, func(u netip.Prefix) bool { return u.Contains(p.Addr()) }) {
			t.Errorf("br1's %s is not in a new network's way: %v", p, other)
		}
	}
	for _, p := range []netip.Prefix{pfx("10.254.1.0/24"), pfx("192.168.1.0/24"), pfx("172.16.0.0/12")} {
		if !slices.Contains(self, p) {
			t.Errorf("%s is not in br1's way: %v", p, self)
		}
	}
	for _, p := range []netip.Prefix{pfx("127.0.0.0/8"), pfx("fe80::/64")} {
		if slices.Contains(other, p) {
			t.Errorf("loopback/link-local %s counted as used", p)
		}
	}
}

func wantBridges(t *testing.T, st FirewallState, want []BridgeRules) {
	t.Helper()
	if !slices.Equal(st.Bridges, want) {
		t.Fatalf("firewall bridges\n got %+v\nwant %+v", st.Bridges, want)
	}
}

package device

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/network"
)

// events is what the fakes saw, in order: "filter OWNER LINK MAC",
// "unfilter OWNER", "veth LINK", "tap LINK", "delete LINK".
type events struct{ log []string }

func (e *events) add(format string, args ...any) { e.log = append(e.log, fmt.Sprintf(format, args...)) }

// filterNetworks is the network manager for the device layer's unit tests:
// every network is a bridge of that name, except "lo" (a host interface),
// "mv" (a macvlan) and
// "gone" (whose allocation fails); MACs are the requested ones or mac1.
type filterNetworks struct {
	ev      *events
	filters map[string]network.MACFilter
}

const mac1 = "00:16:3e:00:00:01"

func (f *filterNetworks) NetworkType(_ context.Context, name string) (string, error) {
	if name == "lo" { // a host interface
		return "", errdefs.NotFound("network %q not found", name)
	}
	if name == "mv" {
		return network.TypeMacvlan, nil
	}
	return network.TypeBridge, nil
}

func (f *filterNetworks) Allocate(_ context.Context, req network.NICRequest) (network.NICConfig, error) {
	if req.Network == "gone" {
		return network.NICConfig{}, errdefs.NotFound("network %q not found", req.Network)
	}
	return network.NICConfig{Network: req.Network, Type: network.TypeBridge, Bridge: req.Network, Hwaddr: or(req.Hwaddr, mac1)}, nil
}

func (f *filterNetworks) Release(context.Context, int64, string) error { return nil }
func (f *filterNetworks) SetProxyRules(context.Context, string, []network.ForwardRule) error {
	return nil
}
func (f *filterNetworks) InstanceRenamed(context.Context) error { return nil }
func (f *filterNetworks) SetEgress(context.Context, string, *network.EgressRule) error {
	return nil
}

func (f *filterNetworks) SetMACFilter(_ context.Context, owner string, mf *network.MACFilter) error {
	if mf == nil {
		if _, ok := f.filters[owner]; ok {
			f.ev.add("unfilter %s", owner)
			delete(f.filters, owner)
		}
		return nil
	}
	f.ev.add("filter %s %s %s", owner, mf.HostLink, mf.MAC)
	f.filters[owner] = network.MACFilter{Owner: owner, HostLink: mf.HostLink, MAC: mf.MAC}
	return nil
}

// filterLinks makes no link; failLink names one whose creation fails.
type filterLinks struct {
	ev       *events
	failLink string
}

func (l *filterLinks) CreateNetNS(string) error                           { return nil }
func (l *filterLinks) CreateUserNetNS(string, string, driver.IDMap) error { return nil }
func (l *filterLinks) DeleteNetNS(string) error                           { return nil }
func (l *filterLinks) SetLimits(string, uint64, uint64) error             { return nil }
func (l *filterLinks) DeleteLimits(string) error                          { return nil }

func (l *filterLinks) AddNIC(k Link) error {
	if k.HostName == l.failLink {
		return errors.New("no veth today")
	}
	l.ev.add("veth %s", k.HostName)
	return nil
}

func (l *filterLinks) CreateTap(name, _ string, _ int) error {
	if name == l.failLink {
		return errors.New("no tap today")
	}
	l.ev.add("tap %s", name)
	return nil
}

func (l *filterLinks) CreateMacvtap(name, _, _ string, mtu int) (int, error) {
	if name == l.failLink {
		return 0, errors.New("no macvtap today")
	}
	l.ev.add("macvtap %s", name)
	return mtu, nil
}

func (l *filterLinks) SetNeighbors(string, string, []netip.Prefix) error   { return nil }
func (l *filterLinks) PinNeighbors(string, string, []netip.Prefix) error   { return nil }
func (l *filterLinks) UnpinNeighbors(string, string, []netip.Prefix) error { return nil }

func (l *filterLinks) DeleteLinkInNetNS(_, name string) error {
	l.ev.add("delete %s", name)
	return nil
}

func (l *filterLinks) DeleteLink(name string) error {
	l.ev.add("delete %s", name)
	return nil
}

func newFakeManager(t *testing.T) (*Manager, *events, *filterNetworks, *filterLinks) {
	t.Helper()
	dir := t.TempDir()
	// A file in Dir: Stop then never tries to unmount it.
	if err := os.WriteFile(filepath.Join(dir, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	nets := &filterNetworks{ev: ev, filters: map[string]network.MACFilter{}}
	links := &filterLinks{ev: ev}
	return New(Config{Dir: dir, Networks: nets, Links: links}), ev, nets, links
}

func nicDev(extra ...string) map[string]string {
	d := map[string]string{"type": "nic", "network": "br0", "name": "eth0"}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		d[k] = v
	}
	return d
}

// TestMACFilterLifecycle: a NIC with security.mac_filtering has its filter
// from before its link exists until after it is gone, through start,
// stop, hotplug, unplug, replug, a change of the key alone (no replug) and
// a daemon restart; a NIC without it never has one.
func TestMACFilterLifecycle(t *testing.T) {
	ctx := context.Background()
	ct := Instance{ID: 1, RuntimeID: "h1", Name: "c1", Config: map[string]string{}}
	vm := Instance{ID: 2, RuntimeID: "h2", Name: "v1", VM: true, Config: map[string]string{}}
	link1, link2 := HostLinkName("h1", "eth0"), HostLinkName("h2", "eth0")
	on, off := nicDev("security.mac_filtering=true"), nicDev()
	type step func(m *Manager) error
	start := func(in Instance, d map[string]string) step {
		return func(m *Manager) error {
			_, err := m.Start(ctx, in, map[string]map[string]string{"eth0": d})
			return err
		}
	}
	update := func(in Instance, old, cur map[string]string) step {
		return func(m *Manager) error {
			devs := func(d map[string]string) map[string]map[string]string {
				if d == nil {
					return map[string]map[string]string{}
				}
				return map[string]map[string]string{"eth0": d}
			}
			_, _, err := m.Update(ctx, in, devs(old), devs(cur))
			return err
		}
	}
	stop := func(in Instance, d map[string]string) step {
		return func(m *Manager) error { return m.Stop(ctx, in, map[string]map[string]string{"eth0": d}) }
	}
	tests := []struct {
		name    string
		steps   []step
		events  []string
		filters int // left at the end
	}{
		{
			name:    "container: set before the veth, cleared at stop",
			steps:   []step{start(ct, on), stop(ct, on)},
			events:  []string{"filter nic/h1/eth0 " + link1 + " " + mac1, "veth " + link1, "unfilter nic/h1/eth0"},
			filters: 0,
		},
		{
			name:   "vm: set before the tap, cleared after it",
			steps:  []step{start(vm, on), stop(vm, on)},
			events: []string{"filter nic/h2/eth0 " + link2 + " " + mac1, "tap " + link2, "delete " + link2, "unfilter nic/h2/eth0"},
		},
		{
			name:   "the recorded MAC is the filtered one",
			steps:  []step{start(ct, nicDev("security.mac_filtering=yes", "hwaddr=00:16:3e:aa:bb:cc"))},
			events: []string{"filter nic/h1/eth0 " + link1 + " 00:16:3e:aa:bb:cc", "veth " + link1},
			// Left running.
			filters: 1,
		},
		{
			name:   "without the key: no filter",
			steps:  []step{start(ct, off), stop(ct, off), start(ct, nicDev("security.mac_filtering=false")), stop(vm, off)},
			events: []string{"veth " + link1, "veth " + link1, "delete " + link2},
		},
		{
			name:    "turned on and off on a running instance: no replug",
			steps:   []step{start(ct, off), update(ct, off, on), update(ct, on, off), update(ct, off, on)},
			events:  []string{"veth " + link1, "filter nic/h1/eth0 " + link1 + " " + mac1, "unfilter nic/h1/eth0", "filter nic/h1/eth0 " + link1 + " " + mac1},
			filters: 1,
		},
		{
			name:   "vm, turned on live: no replug",
			steps:  []step{start(vm, off), update(vm, off, on)},
			events: []string{"tap " + link2, "filter nic/h2/eth0 " + link2 + " " + mac1},
			// Left running.
			filters: 1,
		},
		{
			name:  "replugged with another MAC: cleared after the old link, set before the new",
			steps: []step{start(ct, on), update(ct, on, nicDev("security.mac_filtering=true", "hwaddr=00:16:3e:aa:bb:cc"))},
			events: []string{
				"filter nic/h1/eth0 " + link1 + " " + mac1, "veth " + link1,
				"delete " + link1, "unfilter nic/h1/eth0",
				"filter nic/h1/eth0 " + link1 + " 00:16:3e:aa:bb:cc", "veth " + link1,
			},
			filters: 1,
		},
		{
			name:    "hotplugged and unplugged",
			steps:   []step{update(ct, nil, nil), start(ct, off), update(ct, off, nil), update(ct, nil, on), update(ct, on, nil)},
			events:  []string{"veth " + link1, "delete " + link1, "filter nic/h1/eth0 " + link1 + " " + mac1, "veth " + link1, "delete " + link1, "unfilter nic/h1/eth0"},
			filters: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ev, nets, _ := newFakeManager(t)
			for i, s := range tt.steps {
				if err := s(m); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			if diff := cmp.Diff(tt.events, ev.log); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if len(nets.filters) != tt.filters {
				t.Errorf("%d filters left, want %d: %v", len(nets.filters), tt.filters, nets.filters)
			}
		})
	}
}

// TestMACFilterFailedStart: a NIC whose link cannot be made leaves no
// filter, nor do the NICs started before it.
func TestMACFilterFailedStart(t *testing.T) {
	for _, vm := range []bool{false, true} {
		t.Run(fmt.Sprintf("vm=%v", vm), func(t *testing.T) {
			m, _, nets, links := newFakeManager(t)
			in := Instance{ID: 1, RuntimeID: "h1", VM: vm, Config: map[string]string{}}
			links.failLink = HostLinkName("h1", "eth1")
			devs := map[string]map[string]string{
				"eth0": nicDev("security.mac_filtering=true"),
				"eth1": nicDev("security.mac_filtering=true", "name=eth1", "hwaddr=00:16:3e:00:00:02"),
			}
			if _, err := m.Start(context.Background(), in, devs); err == nil {
				t.Fatal("Start succeeded with a link that cannot be made")
			}
			if len(nets.filters) != 0 {
				t.Errorf("filters left: %v", nets.filters)
			}
		})
	}
}

// TestMACFilterReattach: after a daemon restart the running instance's
// filtered NICs report their filters again, on the MAC the instance
// recorded, even when the network can no longer give the NIC its config.
func TestMACFilterReattach(t *testing.T) {
	tests := []struct {
		name string
		devs map[string]map[string]string
		want []string // filters by owner, sorted: "OWNER LINK MAC"
	}{
		{"filtered", map[string]map[string]string{"eth0": nicDev("security.mac_filtering=true")},
			[]string{"nic/h1/eth0 " + HostLinkName("h1", "eth0") + " 00:16:3e:aa:bb:cc"}},
		{"not filtered", map[string]map[string]string{"eth0": nicDev()}, nil},
		{"network gone", map[string]map[string]string{"eth0": nicDev("security.mac_filtering=on", "network=gone", "host_name=veth-c1")},
			[]string{"nic/h1/eth0 veth-c1 00:16:3e:aa:bb:cc"}},
		{"two NICs, one filtered", map[string]map[string]string{
			"eth0": nicDev(),
			"eth1": nicDev("security.mac_filtering=1", "name=eth1", "hwaddr=00:16:3e:00:00:09"),
		}, []string{"nic/h1/eth1 " + HostLinkName("h1", "eth1") + " 00:16:3e:00:00:09"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, nets, _ := newFakeManager(t)
			in := Instance{ID: 1, RuntimeID: "h1", Config: map[string]string{"volatile.eth0.hwaddr": "00:16:3e:aa:bb:cc"}}
			if err := m.Reattach(context.Background(), in, tt.devs); err != nil {
				t.Fatalf("Reattach: %v", err)
			}
			var got []string
			for _, f := range nets.filters {
				got = append(got, f.Owner+" "+f.HostLink+" "+f.MAC)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("filters (-want +got):\n%s", diff)
			}
			// Stopped later: nothing left.
			if err := m.Stop(context.Background(), in, tt.devs); err != nil {
				t.Fatal(err)
			}
			if len(nets.filters) != 0 {
				t.Errorf("filters left after Stop: %v", nets.filters)
			}
		})
	}
}

// TestValidateMACFilter: the key is a boolean, and a macvlan NIC (by
// nictype or by network) cannot have it on.
func TestValidateMACFilter(t *testing.T) {
	m, _, _, _ := newFakeManager(t)
	tests := []struct {
		name string
		dev  map[string]string
		msg  string // "" valid
	}{
		{"bridged, on", nicDev("security.mac_filtering=true"), ""},
		{"bridged, off", nicDev("security.mac_filtering=false"), ""},
		{"not a boolean", nicDev("security.mac_filtering=maybe"), `security.mac_filtering: "maybe" is not a boolean`},
		{"macvlan nictype", map[string]string{"type": "nic", "nictype": "macvlan", "parent": "lo", "security.mac_filtering": "true"}, "needs a bridged NIC"},
		{"macvlan nictype, off", map[string]string{"type": "nic", "nictype": "macvlan", "parent": "lo", "security.mac_filtering": "false"}, ""},
		{"macvlan network", nicDev("network=mv", "security.mac_filtering=on"), "needs a bridged NIC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := m.Validate(context.Background(), map[string]map[string]string{"eth0": tt.dev}, false)
			switch {
			case tt.msg == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.msg != "" && (!errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(fmt.Sprint(err), tt.msg)):
				t.Errorf("Validate: %v; want an invalid argument saying %q", err, tt.msg)
			}
		})
	}
}

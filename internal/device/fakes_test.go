package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/network"
	"github.com/hangar-dev/hangar/internal/storage"
)

// The fakes stand in for the network manager, netdev and the userspace
// proxy: what is tested is the device layer's own logic (which NICs, in
// what order, with what, and that it undoes what it made). The real parts
// are tested in their packages and end to end.

// fakeNetworks is the network manager: a few networks, allocations that
// stay put per instance device, and the proxies' NAT rules.
type fakeNetworks struct {
	mu        sync.Mutex
	types     map[string]string // network -> type
	allocs    map[string]network.NICConfig
	requests  []network.NICRequest
	released  []string // "ID/device"
	rules     map[string][]network.ForwardRule
	ruleCalls []string                      // owner and rule count, in order
	egress    map[string]network.EgressRule // by owner
	renamed   int
	// failAllocate fails Allocate for a device name.
	failAllocate map[string]error
	// failProxy fails SetProxyRules that add rules.
	failProxy error
	filters   map[string]network.MACFilter
}

func newFakeNetworks() *fakeNetworks {
	return &fakeNetworks{
		types:        map[string]string{"br0": network.TypeBridge, "br1": network.TypeBridge, "mv": network.TypeMacvlan, "odd": "ovn"},
		allocs:       map[string]network.NICConfig{},
		rules:        map[string][]network.ForwardRule{},
		failAllocate: map[string]error{},
	}
}

// SetMACFilter records the NICs' MAC filters by owner.
func (n *fakeNetworks) SetMACFilter(_ context.Context, owner string, mf *network.MACFilter) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if mf == nil {
		delete(n.filters, owner)
		return nil
	}
	if n.filters == nil {
		n.filters = map[string]network.MACFilter{}
	}
	n.filters[owner] = *mf
	return nil
}

// SetEgress records the NICs' egress rules by owner.
func (n *fakeNetworks) SetEgress(_ context.Context, owner string, r *network.EgressRule) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.egress == nil {
		n.egress = map[string]network.EgressRule{}
	}
	if r == nil {
		delete(n.egress, owner)
		return nil
	}
	n.egress[owner] = *r
	return nil
}

func (n *fakeNetworks) NetworkType(_ context.Context, name string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.types[name]
	if !ok {
		return "", errdefs.NotFound("network %q not found", name)
	}
	return t, nil
}

// Allocate hands out 10.0.3.N and fd42::N on br0 (10.0.4.N on br1), N
// counting allocations, and keeps what a device held.
func (n *fakeNetworks) Allocate(_ context.Context, req network.NICRequest) (network.NICConfig, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.requests = append(n.requests, req)
	if err := n.failAllocate[req.Device]; err != nil {
		return network.NICConfig{}, err
	}
	key := fmt.Sprintf("%d/%s", req.InstanceID, req.Device)
	if nc, ok := n.allocs[key]; ok && nc.Network == req.Network {
		// Kept, but a MAC or static address asked for now wins.
		if req.Hwaddr != "" {
			nc.Hwaddr = req.Hwaddr
		}
		if req.IPv4 != "" && len(nc.Addresses) > 0 {
			nc.Addresses = slices.Clone(nc.Addresses)
			nc.Addresses[0] = netip.PrefixFrom(netip.MustParseAddr(req.IPv4), 24)
		}
		n.allocs[key] = nc
		return nc, nil
	}
	i := len(n.allocs) + 2
	hw := req.Hwaddr
	if hw == "" {
		hw = fmt.Sprintf("00:16:3e:00:00:%02x", i)
	}
	var nc network.NICConfig
	switch n.types[req.Network] {
	case network.TypeMacvlan:
		nc = network.NICConfig{Network: req.Network, Type: network.TypeMacvlan, Parent: "eth9", Hwaddr: hw, MTU: 1450}
	default:
		third := map[string]int{"br0": 3, "br1": 4}[req.Network]
		nc = network.NICConfig{Network: req.Network, Type: network.TypeBridge, Bridge: req.Network, Hwaddr: hw,
			Addresses: []netip.Prefix{
				netip.MustParsePrefix(fmt.Sprintf("10.0.%d.%d/24", third, i)),
				netip.MustParsePrefix(fmt.Sprintf("fd42::%d:%x/64", third, i)),
			},
			Gateway4:     netip.MustParseAddr(fmt.Sprintf("10.0.%d.1", third)),
			Gateway6:     netip.MustParseAddr(fmt.Sprintf("fd42::%d:1", third)),
			Nameservers:  []netip.Addr{netip.MustParseAddr(fmt.Sprintf("10.0.%d.1", third))},
			SearchDomain: "hangar"}
		if req.IPv4 != "" {
			nc.Addresses[0] = netip.PrefixFrom(netip.MustParseAddr(req.IPv4), 24)
		}
	}
	n.allocs[key] = nc
	return nc, nil
}

func (n *fakeNetworks) Release(_ context.Context, id int64, dev string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.released = append(n.released, fmt.Sprintf("%d/%s", id, dev))
	delete(n.allocs, fmt.Sprintf("%d/%s", id, dev))
	return nil
}

func (n *fakeNetworks) SetProxyRules(_ context.Context, owner string, rules []network.ForwardRule) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ruleCalls = append(n.ruleCalls, fmt.Sprintf("%s %d", owner, len(rules)))
	if len(rules) == 0 {
		delete(n.rules, owner)
		return nil
	}
	if n.failProxy != nil {
		return n.failProxy
	}
	// The firewall refuses a listen port another owner holds.
	for o, held := range n.rules {
		for _, h := range held {
			for _, r := range rules {
				if o != owner && overlaps(h, r) {
					return errdefs.Conflict("%s %v:%v is already forwarded by %s", r.Proto, r.Listen, r.ListenPorts, o)
				}
			}
		}
	}
	n.rules[owner] = slices.Clone(rules)
	return nil
}

// overlaps tells whether two rules would take the same packet.
func overlaps(a, b network.ForwardRule) bool {
	if a.Proto != b.Proto {
		return false
	}
	if a.Listen.IsValid() && b.Listen.IsValid() && !a.Listen.IsUnspecified() && !b.Listen.IsUnspecified() && a.Listen != b.Listen {
		return false
	}
	for _, p := range a.ListenPorts {
		if slices.Contains(b.ListenPorts, p) {
			return true
		}
	}
	return false
}

func (n *fakeNetworks) InstanceRenamed(context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.renamed++
	return nil
}

// ruleLines are the NAT rules held now, one line each, by owner.
func (n *fakeNetworks) ruleLines() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for o, rs := range n.rules {
		for _, r := range rs {
			out = append(out, fmt.Sprintf("%s %s %v:%v -> %v:%v", o, r.Proto, r.Listen, r.ListenPorts, r.Target, r.TargetPorts))
		}
	}
	sort.Strings(out)
	return out
}

// fakeLinks is the host's links and namespaces as netdev makes them. A
// namespace takes the links inside it when it goes, as the kernel does
// (a veth's host end with its peer), so "nothing left" is what a real
// host would show.
type fakeLinks struct {
	mu     sync.Mutex
	ops    []string
	netns  map[string]bool
	links  map[string]Link // by host name; taps too (Kind "tap")
	inNS   map[string]Link // macvlans, by "NETNS/NAME"
	shaped map[string][2]uint64
	idmaps map[string]driver.IDMap
	// neigh are the host's neighbour entries: "BRIDGE IP" -> "MAC STATE".
	neigh map[string]string
	// Failures to inject.
	failAddNIC    map[string]error // by interface name inside
	failTap       map[string]error // by tap name
	failSetLimits map[string]error // by host name
	failUserNS    error
}

func newFakeLinks() *fakeLinks {
	return &fakeLinks{netns: map[string]bool{}, links: map[string]Link{}, inNS: map[string]Link{},
		shaped: map[string][2]uint64{}, idmaps: map[string]driver.IDMap{}, neigh: map[string]string{},
		failAddNIC: map[string]error{}, failTap: map[string]error{}, failSetLimits: map[string]error{}}
}

func (l *fakeLinks) log(format string, a ...any) { l.ops = append(l.ops, fmt.Sprintf(format, a...)) }

func (l *fakeLinks) CreateNetNS(path string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log("netns+ %s", filepath.Base(path))
	l.netns[path] = true
	return nil
}

func (l *fakeLinks) CreateUserNetNS(netns, userns string, m driver.IDMap) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failUserNS != nil {
		return l.failUserNS
	}
	l.log("userns+ %s %s %d:%d", filepath.Base(netns), filepath.Base(userns), m.HostID, m.Size)
	l.netns[netns], l.netns[userns] = true, true
	l.idmaps[netns] = m
	return nil
}

func (l *fakeLinks) DeleteNetNS(path string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.netns[path] {
		return nil // absent: not an error, and nothing to log
	}
	l.log("netns- %s", filepath.Base(path))
	delete(l.netns, path)
	for name, k := range l.links {
		if k.NetNS == path {
			delete(l.links, name)
			delete(l.shaped, name)
		}
	}
	for key, k := range l.inNS {
		if k.NetNS == path {
			delete(l.inNS, key)
		}
	}
	return nil
}

func (l *fakeLinks) AddNIC(k Link) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failAddNIC[k.Name]; err != nil {
		return err
	}
	if !l.netns[k.NetNS] {
		return fmt.Errorf("namespace %s does not exist", k.NetNS)
	}
	l.log("nic+ %s %s", k.Kind, k.Name)
	if k.Kind == "macvlan" {
		l.inNS[k.NetNS+"/"+k.Name] = k
	} else {
		l.links[k.HostName] = k
	}
	return nil
}

func (l *fakeLinks) CreateTap(name, bridge string, mtu int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failTap[name]; err != nil {
		return err
	}
	l.log("tap+ %s %s %d", name, bridge, mtu)
	l.links[name] = Link{Kind: "tap", HostName: name, Bridge: bridge, MTU: mtu}
	return nil
}

func (l *fakeLinks) CreateMacvtap(name, parent, hwaddr string, mtu int) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failTap[name]; err != nil {
		return 0, err
	}
	l.log("macvtap+ %s %s %s %d", name, parent, hwaddr, mtu)
	if mtu == 0 {
		mtu = 1500 // the parent's
	}
	l.links[name] = Link{Kind: "macvtap", HostName: name, Parent: parent, Hwaddr: hwaddr, MTU: mtu}
	return mtu, nil
}

func (l *fakeLinks) DeleteLink(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log("link- %s", name)
	delete(l.links, name)
	delete(l.shaped, name)
	return nil
}

func (l *fakeLinks) DeleteLinkInNetNS(netns, name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log("link- %s in %s", name, netns)
	return nil
}

func (l *fakeLinks) SetNeighbors(bridge, mac string, addrs []netip.Prefix) error {
	return l.setNeigh(bridge, mac, addrs, "stale")
}

func (l *fakeLinks) PinNeighbors(bridge, mac string, addrs []netip.Prefix) error {
	return l.setNeigh(bridge, mac, addrs, "permanent")
}

func (l *fakeLinks) setNeigh(bridge, mac string, addrs []netip.Prefix, state string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range addrs {
		l.neigh[bridge+" "+a.Addr().String()] = mac + " " + state
	}
	return nil
}

// UnpinNeighbors removes the entries still pinned at mac, as netdev does.
func (l *fakeLinks) UnpinNeighbors(bridge, mac string, addrs []netip.Prefix) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range addrs {
		if k := bridge + " " + a.Addr().String(); l.neigh[k] == mac+" permanent" {
			delete(l.neigh, k)
		}
	}
	return nil
}

// neighbours are the host's neighbour entries, "BRIDGE IP MAC STATE",
// sorted.
func (l *fakeLinks) neighbours() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for k, v := range l.neigh {
		out = append(out, k+" "+v)
	}
	sort.Strings(out)
	return out
}

func (l *fakeLinks) SetLimits(host string, ingress, egress uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failSetLimits[host]; err != nil {
		return err
	}
	if _, ok := l.links[host]; !ok {
		return fmt.Errorf("limits on missing link %s", host)
	}
	l.log("limits+ %s %d %d", host, ingress, egress)
	l.shaped[host] = [2]uint64{ingress, egress}
	return nil
}

func (l *fakeLinks) DeleteLimits(host string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log("limits- %s", host)
	delete(l.shaped, host)
	return nil
}

// left describes whatever is still on the host; "" if nothing.
func (l *fakeLinks) left() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for p := range l.netns {
		out = append(out, "netns "+filepath.Base(p))
	}
	for n := range l.links {
		out = append(out, "link "+n)
	}
	for n := range l.inNS {
		out = append(out, "macvlan "+n)
	}
	for n := range l.shaped {
		out = append(out, "limits "+n)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// takeOps returns the operations logged since the last call.
func (l *fakeLinks) takeOps() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ops := l.ops
	l.ops = nil
	return ops
}

// fakeForwarder is one userspace proxy.
type fakeForwarder struct {
	listen, connect, netns string
	mu                     sync.Mutex
	closed                 int
}

func (f *fakeForwarder) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

func (f *fakeForwarder) closes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// fakeForwarders starts fakeForwarders and keeps them all.
type fakeForwarders struct {
	mu      sync.Mutex
	started []*fakeForwarder
	fail    error
}

func (s *fakeForwarders) start(_ context.Context, listen, connect, netns string) (Forwarder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	f := &fakeForwarder{listen: listen, connect: connect, netns: netns}
	s.started = append(s.started, f)
	return f, nil
}

// open lists the forwarders not closed, as "LISTEN -> CONNECT in NETNS".
func (s *fakeForwarders) open() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, f := range s.started {
		if f.closes() == 0 {
			out = append(out, fmt.Sprintf("%s -> %s in %s", f.listen, f.connect, filepath.Base(f.netns)))
		}
	}
	sort.Strings(out)
	return out
}

type testEnv struct {
	m    *Manager
	nets *fakeNetworks
	lk   *fakeLinks
	fw   *fakeForwarders
	vols *fakeVolumes
	dir  string
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "netns")
	if err := os.MkdirAll(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	// The real namespaces are bind mounts on files in dir, and the
	// manager unmounts dir when none is left; the fakes make no files, so
	// one stays here to keep that unmount (root's business) out of these
	// tests.
	if err := os.WriteFile(filepath.Join(dir, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e := &testEnv{nets: newFakeNetworks(), lk: newFakeLinks(), fw: &fakeForwarders{}, dir: dir}
	e.vols = &fakeVolumes{pools: map[string]bool{"default": true}, vols: map[string]storage.Attachment{
		"default/fs":  {Path: filepath.Join(t.TempDir(), "fs")},
		"default/blk": {Path: filepath.Join(t.TempDir(), "blk", "root.img"), Block: true},
		"default/iso": {Path: filepath.Join(t.TempDir(), "iso@iso", "root.img"), ISO: true},
	}}
	e.m = New(Config{Dir: dir, Networks: e.nets, Links: e.lk, Forwarders: e.fw.start, Volumes: e.vols, Log: slog.New(slog.DiscardHandler)})
	return e
}

// fakeVolumes are the pools and custom volumes of disk devices.
type fakeVolumes struct {
	pools map[string]bool
	vols  map[string]storage.Attachment // by "POOL/NAME"
}

func (f *fakeVolumes) PoolExists(ctx context.Context, pool string) error {
	if !f.pools[pool] {
		return errdefs.NotFound("storage pool %q not found", pool)
	}
	return nil
}

func (f *fakeVolumes) Attach(ctx context.Context, pool, name string) (storage.Attachment, error) {
	if err := f.PoolExists(ctx, pool); err != nil {
		return storage.Attachment{}, err
	}
	a, ok := f.vols[pool+"/"+name]
	if !ok {
		return storage.Attachment{}, errdefs.NotFound("storage volume custom/%s not found on pool %q", name, pool)
	}
	return a, nil
}

func (f *fakeVolumes) PoolDevice(pool string) (uint32, uint32, error) { return 7, 3, nil }

// restart is a new Manager on the same host, as after a daemon restart.
func (e *testEnv) restart() *testEnv {
	e2 := *e
	e2.m = New(Config{Dir: e.dir, Networks: e.nets, Links: e.lk, Forwarders: e.fw.start, Volumes: e.vols, Log: slog.New(slog.DiscardHandler)})
	return &e2
}

func wantErr(t *testing.T, err, kind error, words ...string) {
	t.Helper()
	if p := errProblem(err, kind, words...); p != "" {
		t.Fatal(p)
	}
}

// errProblem says what is wrong with err; kind nil wants no error, and
// errAny any error.
func errProblem(err, kind error, words ...string) string {
	switch {
	case kind == nil && err != nil:
		return fmt.Sprintf("unexpected error: %v", err)
	case kind == nil:
		return ""
	case err == nil:
		return fmt.Sprintf("no error, want %v", kind)
	case kind != errAny && !errors.Is(err, kind):
		return fmt.Sprintf("error %v, want kind %q", err, kind)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			return fmt.Sprintf("error %q does not name %q", err, w)
		}
	}
	return ""
}

var (
	errInvalid  = errdefs.ErrInvalidArgument
	errNotFound = errdefs.ErrNotFound
	errAny      = errors.New("any error")
)

func nic(kv ...string) map[string]string {
	d := map[string]string{"type": "nic"}
	for i := 0; i+1 < len(kv); i += 2 {
		d[kv[i]] = kv[i+1]
	}
	return d
}

func proxyDev(kv ...string) map[string]string {
	d := map[string]string{"type": "proxy"}
	for i := 0; i+1 < len(kv); i += 2 {
		d[kv[i]] = kv[i+1]
	}
	return d
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s\n got %q\nwant %q", what, got, want)
	}
}

package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/store"
)

// The fakes below stand in for the host (netdev), nftables (firewall) and
// dnsmasq: the manager's own logic and the real store are what is tested;
// the real parts have their own tests in their packages and the e2e suite.

// fakeBridge is what EnsureBridge was last asked for one bridge.
type fakeBridge struct {
	MTU    int
	Hwaddr string
	Addrs  []netip.Prefix
}

// fakeHost is the host's links: some fixed interfaces and routes, and the
// bridges the manager made, which it reports back as a real host would
// (an interface, and the routes of its addresses).
type fakeHost struct {
	mu         sync.Mutex
	fixed      []Interface
	used       []netip.Prefix
	bridges    map[string]fakeBridge
	ensured    map[string]int // EnsureBridge calls by name
	deleted    []string
	forwarding map[int]bool
	// failEnsure, when set, is returned by the next EnsureBridge of that
	// name (once).
	failEnsure map[string]error
}

func newFakeHost() *fakeHost {
	return &fakeHost{
		fixed: []Interface{
			{Name: "lo", Type: "loopback", Up: true, MTU: 65536},
			{Name: "eth0", Type: "physical", Up: true, MTU: 1500, Hwaddr: "52:54:00:12:34:56"},
			{Name: "veth-up", Type: "unknown", Up: true, MTU: 1500},
			// The host end of an instance NIC: never listed as a network.
			{Name: HostLinkPrefix + "0badf00d", Type: "unknown", Up: true, MTU: 1500},
		},
		// The host's LAN, a VPN route, and half of 10/8 and fd00::/8, so
		// an auto subnet must be chosen around them.
		used: []netip.Prefix{
			netip.MustParsePrefix("192.168.1.0/24"),
			netip.MustParsePrefix("192.168.1.5/32"),
			netip.MustParsePrefix("172.16.0.0/12"),
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("10.0.0.0/9"),
			netip.MustParsePrefix("10.128.0.0/10"),
			netip.MustParsePrefix("10.192.0.0/11"),
			netip.MustParsePrefix("fd00::/9"),
			netip.MustParsePrefix("fe80::/64"),
		},
		bridges:    map[string]fakeBridge{},
		ensured:    map[string]int{},
		forwarding: map[int]bool{},
		failEnsure: map[string]error{},
	}
}

// freeV4 is the part of 10/8 the fake host leaves free (1 in 8 draws).
var freeV4 = netip.MustParsePrefix("10.224.0.0/11")

// freeV6 is the part of fd00::/8 the fake host leaves free.
var freeV6 = netip.MustParsePrefix("fd80::/9")

func (h *fakeHost) EnsureBridge(name string, mtu int, hwaddr string, addrs []netip.Prefix) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ensured[name]++
	if err := h.failEnsure[name]; err != nil {
		delete(h.failEnsure, name)
		return err
	}
	h.bridges[name] = fakeBridge{MTU: mtu, Hwaddr: hwaddr, Addrs: slices.Clone(addrs)}
	return nil
}

func (h *fakeHost) DeleteLink(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deleted = append(h.deleted, name)
	delete(h.bridges, name)
	return nil
}

func (h *fakeHost) Interfaces() ([]Interface, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.fixed)
	for name, b := range h.bridges {
		i := Interface{Name: name, Type: "bridge", Up: true, MTU: b.MTU, Hwaddr: b.Hwaddr}
		for _, a := range b.Addrs {
			fam := "inet"
			if a.Addr().Is6() {
				fam = "inet6"
			}
			i.Addresses = append(i.Addresses, Address{Family: fam, Address: a.Addr().String(), Scope: "global"})
		}
		out = append(out, i)
	}
	return out, nil
}

func (h *fakeHost) UsedPrefixes() ([]netip.Prefix, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.used)
	for _, b := range h.bridges {
		for _, a := range b.Addrs {
			// What the kernel shows for a bridge address: the subnet's
			// route and the local /32 (/128).
			out = append(out, a.Masked(), netip.PrefixFrom(a.Addr(), a.Addr().BitLen()))
		}
	}
	return out, nil
}

func (h *fakeHost) EnableForwarding(family int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.forwarding[family] = true
	return nil
}

func (h *fakeHost) bridge(name string) (fakeBridge, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.bridges[name]
	return b, ok
}

func (h *fakeHost) ensureCount(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ensured[name]
}

// fakeFirewall keeps the last state applied and counts removals.
type fakeFirewall struct {
	mu      sync.Mutex
	applied []FirewallState
	removed int
	// failApply, when set, fails every Apply.
	failApply error
}

func (f *fakeFirewall) Apply(st FirewallState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failApply != nil {
		return f.failApply
	}
	f.applied = append(f.applied, st)
	return nil
}

func (f *fakeFirewall) Remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed++
	f.applied = append(f.applied, FirewallState{})
	return nil
}

// last is the state the firewall holds now: what was applied last, or
// nothing after a Remove.
func (f *fakeFirewall) last() FirewallState {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.applied) == 0 {
		return FirewallState{}
	}
	return f.applied[len(f.applied)-1]
}

func (f *fakeFirewall) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failApply = err
}

// fakeDNSServer is one bridge's DNS server: the hosts it was given, in
// order, and leases to report.
type fakeDNSServer struct {
	mu      sync.Mutex
	cfg     DNSConfig
	hosts   [][]DNSHost
	leases  []DNSLease
	stopped bool
}

func (s *fakeDNSServer) SetHosts(h []DNSHost) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("set hosts of a stopped server")
	}
	s.hosts = append(s.hosts, slices.Clone(h))
	return nil
}

func (s *fakeDNSServer) Leases() ([]DNSLease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.leases), nil
}

func (s *fakeDNSServer) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	return nil
}

// lastHosts are the hosts the server serves now, sorted by name.
func (s *fakeDNSServer) lastHosts() []DNSHost {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := slices.Clone(s.hosts[len(s.hosts)-1])
	sort.Slice(h, func(i, j int) bool { return h[i].Name < h[j].Name })
	return h
}

func (s *fakeDNSServer) setHostsCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hosts)
}

// fakeDNS starts fakeDNSServers and keeps every one it started.
type fakeDNS struct {
	mu      sync.Mutex
	started []*fakeDNSServer
	// failStart, when set, fails the next start for that bridge (once).
	failStart map[string]error
}

func (d *fakeDNS) start(_ context.Context, cfg DNSConfig, hosts []DNSHost) (DNSServer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.failStart[cfg.Bridge]; err != nil {
		delete(d.failStart, cfg.Bridge)
		return nil, err
	}
	if fi, err := os.Stat(cfg.Dir); err != nil || !fi.IsDir() {
		return nil, errors.New("state directory " + cfg.Dir + " missing")
	}
	s := &fakeDNSServer{cfg: cfg, hosts: [][]DNSHost{slices.Clone(hosts)}}
	d.started = append(d.started, s)
	return s, nil
}

// running is the bridge's server that is not stopped; nil if none.
func (d *fakeDNS) running(bridge string) *fakeDNSServer {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out *fakeDNSServer
	for _, s := range d.started {
		s.mu.Lock()
		if s.cfg.Bridge == bridge && !s.stopped {
			out = s
		}
		s.mu.Unlock()
	}
	return out
}

// fakeEvents records lifecycle actions as "ACTION KIND NAME".
type fakeEvents struct {
	mu   sync.Mutex
	seen []string
}

func (e *fakeEvents) Lifecycle(_ context.Context, action string, en event.Entity, _ map[string]any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, action+" "+en.Kind+" "+en.Name)
}

func (e *fakeEvents) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.seen)
}

// testEnv is a Manager on a real store with fakes for the host.
type testEnv struct {
	m     *Manager
	st    *store.Store
	host  *fakeHost
	fw    *fakeFirewall
	dns   *fakeDNS
	ev    *fakeEvents
	dir   string
	db    string // the store's file
	mu    sync.Mutex
	users map[string][]string // by network, what Users returns
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "hangar.db")
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	e := &testEnv{st: st, host: newFakeHost(), fw: &fakeFirewall{},
		dns: &fakeDNS{failStart: map[string]error{}}, ev: &fakeEvents{},
		dir: filepath.Join(t.TempDir(), "networks"), db: dbPath, users: map[string][]string{}}
	e.m = New(Config{
		Store: st, Dir: e.dir, Host: e.host, Firewall: e.fw, StartDNS: e.dns.start,
		Users: func(_ context.Context, network string) ([]string, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			return slices.Clone(e.users[network]), nil
		},
		Events: e.ev,
		Log:    quietLog,
	})
	t.Cleanup(func() {
		if err := e.m.Close(); err != nil {
			t.Errorf("close manager: %v", err)
		}
	})
	return e
}

func (e *testEnv) setUsers(network string, users ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.users[network] = users
}

// instance makes an instance record (allocations refer to one) and
// returns its ID.
func (e *testEnv) instance(t *testing.T, name string) int64 {
	t.Helper()
	in := store.Instance{Name: name, Type: "container"}
	if err := e.st.CreateInstance(context.Background(), &in); err != nil {
		t.Fatalf("create instance %s: %v", name, err)
	}
	return in.ID
}

// create makes a bridge with cfg, failing the test on error.
func (e *testEnv) create(t *testing.T, name string, cfg map[string]string) {
	t.Helper()
	if err := e.m.Create(context.Background(), CreateRequest{Name: name, Type: TypeBridge, Config: cfg}); err != nil {
		t.Fatalf("create network %s: %v", name, err)
	}
}

func (e *testEnv) record(t *testing.T, name string) store.Network {
	t.Helper()
	r, err := e.st.GetNetwork(context.Background(), name)
	if err != nil {
		t.Fatalf("get network %s: %v", name, err)
	}
	return r
}

// wantErr checks err's kind (nil: no error) and that its message holds
// every one of words.
func wantErr(t *testing.T, err, kind error, words ...string) {
	t.Helper()
	if p := errProblem(err, kind, words...); p != "" {
		t.Fatal(p)
	}
}

// errProblem says what is wrong with err, "" if nothing.
func errProblem(err, kind error, words ...string) string {
	if kind == nil {
		if err != nil {
			return fmt.Sprintf("unexpected error: %v", err)
		}
		return ""
	}
	if !errors.Is(err, kind) {
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
	errConflict = errdefs.ErrConflict
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// quietLog drops the manager's logs: tests check what it does, and the
// logs of expected failures would bury a real one's output.
var quietLog = slog.New(slog.DiscardHandler)

// cloneMap avoids aliasing a table's config with what the manager keeps.
func cloneMap(m map[string]string) map[string]string { return maps.Clone(m) }

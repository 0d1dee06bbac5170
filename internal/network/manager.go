package network

import (
	"context"
	"errors"
	"fmt"
	"github.com/hangar-dev/hangar/internal/auth"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/netdev"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/store"
)

// DefaultBridge is the managed bridge made on first start.
const DefaultBridge = "hangarbr0"

// DefaultDomain is the DNS domain of a bridge without dns.domain.
const DefaultDomain = "hangar"

// Config wires a Manager.
type Config struct {
	Store    *store.Store
	Dir      string // per-network state (dnsmasq files), one sub-directory each
	Host     HostNet
	Firewall Firewall
	StartDNS DNSStarter
	// Users names who refers to a network in their devices, as
	// "instances/NAME" and "profiles/NAME"; the core provides it.
	// Those the caller may not see are left out: the manager asks as the
	// daemon (auth.AsDaemon) when it needs them all.
	Users func(ctx context.Context, network string) ([]string, error)
	// Authorizer checks every call an edge makes (authz.go); nil allows
	// all, for this package's tests.
	Authorizer Authorizer
	// Events hears of changes (LXD's lifecycle actions, e.g.
	// "network-created"); nil: none.
	Events Emitter
	Log    *slog.Logger
	// HoldFirewall leaves the kernel's tables as they are (those the last
	// daemon left, with its proxies' DNAT and its NICs' MAC filters)
	// from New until Recovered, while the devices of the instances that
	// kept running report their rules again: one Apply then makes the
	// whole state, so a daemon restart never opens a window in which a
	// running instance is unfiltered or a forward is missing.
	HoldFirewall bool
}

// Emitter publishes lifecycle events.
type Emitter interface {
	Lifecycle(ctx context.Context, action string, e event.Entity, meta map[string]any)
}

func (m *Manager) emit(ctx context.Context, action, kind, name string, meta map[string]any) {
	if m.cfg.Events != nil {
		m.cfg.Events.Lifecycle(ctx, action, event.Entity{Kind: kind, Name: name}, meta)
	}
}

// Manager owns the networks. Its methods are safe for concurrent use;
// changes are serialized by one lock (they are rare and each rebuilds the
// firewall), reads of records go to the store.
type Manager struct {
	cfg Config

	mu      sync.Mutex
	dns     map[string]DNSServer // by network name, running servers
	proxies map[string][]ForwardRule
	filters map[string]MACFilter  // by owner
	egress  map[string]EgressRule // by owner (egress.go)
	held    bool                  // Config.HoldFirewall until Recovered
}

// New makes a Manager; Start brings the host in line with the records.
func New(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Users == nil {
		cfg.Users = func(context.Context, string) ([]string, error) { return nil, nil }
	}
	return &Manager{cfg: cfg, dns: map[string]DNSServer{}, proxies: map[string][]ForwardRule{},
		filters: map[string]MACFilter{}, held: cfg.HoldFirewall}
}

// Recovered ends Config.HoldFirewall: the firewall becomes the whole state
// the records and the devices now give, in one Apply.
func (m *Manager) Recovered(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held = false
	return m.applyFirewallLocked(ctx)
}

// Network is a network as every edge sees it: a managed one with its
// record, or a host interface (Managed false).
type Network struct {
	Name        string
	Description string
	Type        string
	Managed     bool
	Config      map[string]string
	// Status is "Created" for a managed network whose host side is up,
	// "Errored" when it could not be made, "" for host interfaces.
	Status string
	UsedBy []string
}

// Put is the writable part of a network.
type Put struct {
	Description string
	Config      map[string]string
}

// CreateRequest is a new managed network.
type CreateRequest struct {
	Name        string
	Description string
	Type        string
	Config      map[string]string
}

// Start makes the host match the records: every managed bridge exists with
// its addresses and its DNS server, and the firewall table holds exactly
// their rules. With createDefault and no network record ever made, the
// default bridge is created first; it reports whether it did, so the caller
// can give the default profile its NIC.
func (m *Manager) Start(ctx context.Context, createDefault bool) (created bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if createDefault {
		n, err := m.cfg.Store.Counter(ctx, counterDefaultMade)
		if err != nil {
			return false, err
		}
		if n == 0 {
			if _, err := m.cfg.Store.GetNetwork(ctx, DefaultBridge); errors.Is(err, errdefs.ErrNotFound) {
				req := CreateRequest{Name: DefaultBridge, Type: TypeBridge, Config: map[string]string{}}
				if err := m.createLocked(ctx, req); err != nil {
					return false, fmt.Errorf("create default network: %w", err)
				}
				created = true
			}
			if err := m.cfg.Store.SetCounter(ctx, counterDefaultMade, 1); err != nil {
				return created, err
			}
		}
	}
	nets, err := m.cfg.Store.ListNetworks(ctx)
	if err != nil {
		return created, err
	}
	var errs []error
	for _, n := range nets {
		if created && n.Name == DefaultBridge {
			continue // up already
		}
		if err := m.upLocked(ctx, n); err != nil {
			m.cfg.Log.Error("bring network up", "network", n.Name, "err", err)
			errs = append(errs, err)
		}
	}
	if err := m.applyFirewallLocked(ctx); err != nil {
		errs = append(errs, err)
	}
	return created, errors.Join(errs...)
}

// counterDefaultMade records that the default bridge was made once, so a
// user who deletes it does not see it come back.
const counterDefaultMade = "network.default_made"

// Close stops the DNS servers. Bridges and firewall rules stay: running
// instances keep their network while the daemon is away.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for name, d := range m.dns {
		if err := d.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop dns of %s: %w", name, err))
		}
		delete(m.dns, name)
	}
	return errors.Join(errs...)
}

// List returns the scope project's managed networks and, in the default
// project, the host's other interfaces (another project's bridges are not
// among them).
func (m *Manager) List(ctx context.Context) ([]Network, error) {
	recs, err := m.cfg.Store.ListNetworks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Network, 0, len(recs))
	seen := map[string]bool{}
	p := scope(ctx)
	for _, r := range recs {
		seen[r.Name] = true
		if r.Project != p {
			continue
		}
		n, err := m.view(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if p != project.Default {
		return m.viewable(ctx, out), nil
	}
	ifaces, err := m.cfg.Host.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list host interfaces: %w", err)
	}
	for _, i := range ifaces {
		if seen[i.Name] || m.isInstanceLink(i.Name) {
			continue
		}
		out = append(out, hostView(i))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return m.viewable(ctx, out), nil
}

// isInstanceLink tells the host ends of instance NICs, which LXD does not
// list as networks either.
func (m *Manager) isInstanceLink(name string) bool {
	return strings.HasPrefix(name, HostLinkPrefix)
}

// HostLinkPrefix starts the host-side names of instance NICs hangard makes.
const HostLinkPrefix = "hgr"

func hostView(i Interface) Network {
	return Network{Name: i.Name, Type: i.Type, Config: map[string]string{}, UsedBy: []string{}}
}

// Get returns one network of the scope project, managed or not (host
// interfaces are the default project's).
func (m *Manager) Get(ctx context.Context, name string) (Network, error) {
	if err := m.allow(ctx, name, auth.CanView); err != nil {
		return Network{}, err
	}
	r, err := m.cfg.Store.GetNetwork(ctx, name)
	switch {
	case err == nil && r.Project == scope(ctx):
		return m.view(ctx, r)
	case err == nil: // Another project's bridge, a host interface too.
		return Network{}, errdefs.NotFound("network %q not found", name)
	case !errors.Is(err, errdefs.ErrNotFound):
		return Network{}, err
	case scope(ctx) != project.Default:
		return Network{}, errdefs.NotFound("network %q not found", name)
	}
	ifaces, ierr := m.cfg.Host.Interfaces()
	if ierr != nil {
		return Network{}, fmt.Errorf("list host interfaces: %w", ierr)
	}
	for _, i := range ifaces {
		if i.Name == name && !m.isInstanceLink(name) {
			return hostView(i), nil
		}
	}
	return Network{}, errdefs.NotFound("network %q not found", name)
}

func (m *Manager) view(ctx context.Context, r store.Network) (Network, error) {
	users, err := m.cfg.Users(ctx, r.Name)
	if err != nil {
		return Network{}, err
	}
	if users == nil {
		users = []string{}
	}
	status := "Created"
	m.mu.Lock()
	if _, ok := m.dns[r.Name]; !ok && r.Type == TypeBridge && dnsWanted(r.Config) {
		status = "Errored"
	}
	m.mu.Unlock()
	return Network{Name: r.Name, Description: r.Description, Type: r.Type, Managed: true,
		Config: r.Config, Status: status, UsedBy: users}, nil
}

// NetworkType returns the type of a managed network of the scope project.
func (m *Manager) NetworkType(ctx context.Context, name string) (string, error) {
	r, err := m.network(ctx, name)
	if err != nil {
		return "", err
	}
	return r.Type, nil
}

// Create makes a managed network.
func (m *Manager) Create(ctx context.Context, req CreateRequest) error {
	if err := m.allowCreate(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.createLocked(ctx, req); err != nil {
		return err
	}
	if err := m.applyFirewallLocked(ctx); err != nil {
		return err
	}
	m.emitIn(ctx, scope(ctx), "network-created", event.EntityNetwork, req.Name, nil)
	return nil
}

func (m *Manager) createLocked(ctx context.Context, req CreateRequest) error {
	if err := validateName(req.Name); err != nil {
		return err
	}
	if req.Type == "" {
		req.Type = TypeBridge
	}
	cfg := maps.Clone(req.Config)
	if cfg == nil {
		cfg = map[string]string{}
	}
	if err := validateConfig(req.Type, cfg); err != nil {
		return err
	}
	// Names are host-wide (a bridge is a host interface), whatever the
	// project.
	if r, err := m.cfg.Store.GetNetwork(ctx, req.Name); err == nil {
		if r.Project != scope(ctx) {
			return errdefs.Conflict("network %q already exists in another project", req.Name)
		}
		return errdefs.Conflict("network %q already exists", req.Name)
	}
	ifaces, err := m.cfg.Host.Interfaces()
	if err != nil {
		return fmt.Errorf("list host interfaces: %w", err)
	}
	for _, i := range ifaces {
		if i.Name == req.Name {
			return errdefs.Conflict("network %q: the host already has an interface of that name", req.Name)
		}
	}
	switch req.Type {
	case TypeBridge:
		if err := m.resolveAddresses(ctx, req.Name, cfg, true); err != nil {
			return err
		}
	case TypeMacvlan:
		if !hasInterface(ifaces, cfg["parent"]) {
			return errdefs.NotFound("network config %q: host interface %q not found", "parent", cfg["parent"])
		}
	}
	rec := store.Network{Project: scope(ctx), Name: req.Name, Type: req.Type, Description: req.Description, Config: cfg}
	if err := m.cfg.Store.CreateNetwork(ctx, &rec); err != nil {
		return err
	}
	if err := m.upLocked(ctx, rec); err != nil {
		// Nothing half-made: the host side goes, then the record.
		m.downLocked(rec)
		if derr := m.cfg.Store.DeleteNetwork(context.WithoutCancel(ctx), rec.Name); derr != nil {
			err = errors.Join(err, derr)
		}
		return fmt.Errorf("create network %s: %w", req.Name, err)
	}
	m.cfg.Log.Info("network created", "network", req.Name, "type", req.Type,
		"ipv4", cfg["ipv4.address"], "ipv6", cfg["ipv6.address"])
	return nil
}

func hasInterface(ifaces []Interface, name string) bool {
	for _, i := range ifaces {
		if i.Name == name {
			return true
		}
	}
	return false
}

// resolveAddresses turns auto into real subnets and fills LXD's defaults
// (NAT on for an auto subnet), and refuses a subnet that overlaps another
// network's or a host route.
func (m *Manager) resolveAddresses(ctx context.Context, self string, cfg map[string]string, creating bool) error {
	used, owners, err := m.usedPrefixes(ctx, self)
	if err != nil {
		return err
	}
	for _, fam := range []int{4, 6} {
		key := fmt.Sprintf("ipv%d.address", fam)
		natKey := fmt.Sprintf("ipv%d.nat", fam)
		v := cfg[key]
		if v == "" && !creating {
			// LXD fills in auto at create only: a key removed later
			// means no address of that family.
			continue
		}
		if v == "" || v == "auto" {
			v4, v6, err := netdev.PickSubnets(used)
			if err != nil {
				return fmt.Errorf("network config %q: %w", key, err)
			}
			p := v4
			if fam == 6 {
				p = v6
			}
			cfg[key] = p.String()
			if _, ok := cfg[natKey]; !ok {
				cfg[natKey] = "true"
			}
			used, owners = append(used, p.Masked()), append(owners, "")
			continue
		}
		if v == "none" {
			continue
		}
		p, _ := netip.ParsePrefix(v)
		for i, u := range used {
			if !u.Overlaps(p.Masked()) {
				continue
			}
			if owners[i] != "" {
				return errdefs.Conflict("network config %q: subnet %s overlaps network %q's %s", key, p.Masked(), owners[i], u)
			}
			return errdefs.Conflict("network config %q: subnet %s overlaps %s in use on the host", key, p.Masked(), u)
		}
	}
	return nil
}

// usedPrefixes are the other managed networks' subnets (owners names
// each one's network) and the host's routes and addresses (owner "").
func (m *Manager) usedPrefixes(ctx context.Context, self string) (out []netip.Prefix, owners []string, err error) {
	used, err := m.cfg.Host.UsedPrefixes()
	if err != nil {
		return nil, nil, fmt.Errorf("read host routes: %w", err)
	}
	var own []netip.Prefix
	nets, err := m.cfg.Store.ListNetworks(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range nets {
		for _, k := range []string{"ipv4.address", "ipv6.address"} {
			if p, ok := subnetOf(n.Config[k]); ok {
				if n.Name == self {
					own = append(own, p.Masked())
					continue
				}
				out, owners = append(out, p.Masked()), append(owners, n.Name)
			}
		}
	}
next:
	for _, p := range used {
		if p.Addr().IsLoopback() || p.Addr().IsLinkLocalUnicast() || p.Bits() == 0 {
			continue
		}
		// The network's own bridge holds an address in, and routes, its
		// own subnet.
		for _, o := range own {
			if o.Contains(p.Addr()) {
				continue next
			}
		}
		// A managed network's own routes are named by the network.
		for _, o := range out {
			if o.Contains(p.Addr()) {
				continue next
			}
		}
		out, owners = append(out, p.Masked()), append(owners, "")
	}
	return out, owners, nil
}

// Update replaces a managed network's description and config (PUT).
func (m *Manager) Update(ctx context.Context, name string, put Put) error {
	if err := m.allow(ctx, name, auth.CanEdit); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.network(ctx, name)
	if err != nil {
		return m.notManaged(ctx, name, err)
	}
	return m.updateLocked(ctx, rec, put)
}

// Patch merges keys into a managed network's config; an empty value
// removes a key, as LXD's PATCH does.
func (m *Manager) Patch(ctx context.Context, name string, put Put) error {
	if err := m.allow(ctx, name, auth.CanEdit); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.network(ctx, name)
	if err != nil {
		return m.notManaged(ctx, name, err)
	}
	cfg := maps.Clone(rec.Config)
	for k, v := range put.Config {
		if v == "" {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	desc := rec.Description
	if put.Description != "" {
		desc = put.Description
	}
	return m.updateLocked(ctx, rec, Put{Description: desc, Config: cfg})
}

// notManaged says a host interface cannot be changed (in the default
// project, which has the host's interfaces; another project's bridge is
// just not found).
func (m *Manager) notManaged(ctx context.Context, name string, err error) error {
	if !errors.Is(err, errdefs.ErrNotFound) || scope(ctx) != project.Default {
		return err
	}
	if _, serr := m.cfg.Store.GetNetwork(ctx, name); serr == nil {
		return err
	}
	ifaces, ierr := m.cfg.Host.Interfaces()
	if ierr == nil && hasInterface(ifaces, name) {
		return errdefs.Invalid("network %q is not managed by hangard", name)
	}
	return err
}

func (m *Manager) updateLocked(ctx context.Context, rec store.Network, put Put) error {
	cfg := maps.Clone(put.Config)
	if cfg == nil {
		cfg = map[string]string{}
	}
	if err := validateConfig(rec.Type, cfg); err != nil {
		return err
	}
	if rec.Type == TypeBridge {
		if err := m.resolveAddresses(ctx, rec.Name, cfg, false); err != nil {
			return err
		}
		// Addresses held by NICs must stay inside the subnets.
		allocs, err := m.cfg.Store.ListAllocations(ctx, rec.Name)
		if err != nil {
			return err
		}
		for _, fam := range []int{4, 6} {
			key := fmt.Sprintf("ipv%d.address", fam)
			if cfg[key] == rec.Config[key] {
				continue
			}
			for _, a := range allocs {
				if a.IPv4 != "" && fam == 4 || a.IPv6 != "" && fam == 6 {
					return errdefs.Conflict("network config %q: instance %q holds an address on the current subnet; remove its NIC first", key, a.Instance)
				}
			}
		}
	} else if rec.Config["parent"] != cfg["parent"] {
		if users, shown, err := m.users(ctx, rec.Name); err != nil {
			return err
		} else if len(users) > 0 {
			return errdefs.Conflict("network config %q: network %q is in use by %s", "parent", rec.Name, inUse(users, shown))
		}
		// As at create: a macvlan on a missing parent would only fail
		// later, at an instance's start.
		ifaces, err := m.cfg.Host.Interfaces()
		if err != nil {
			return fmt.Errorf("list host interfaces: %w", err)
		}
		if !hasInterface(ifaces, cfg["parent"]) {
			return errdefs.NotFound("network config %q: host interface %q not found", "parent", cfg["parent"])
		}
	}
	old := rec
	rec.Config, rec.Description = cfg, put.Description
	if err := m.cfg.Store.UpdateNetwork(ctx, rec); err != nil {
		return err
	}
	if err := m.upLocked(ctx, rec); err != nil {
		// Back to what worked.
		if rerr := m.cfg.Store.UpdateNetwork(context.WithoutCancel(ctx), old); rerr != nil {
			err = errors.Join(err, rerr)
		}
		if uerr := m.upLocked(context.WithoutCancel(ctx), old); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return fmt.Errorf("update network %s: %w", rec.Name, err)
	}
	if err := m.applyFirewallLocked(ctx); err != nil {
		return err
	}
	m.emitIn(ctx, rec.Project, "network-updated", event.EntityNetwork, rec.Name, nil)
	return nil
}

// Rename renames a managed network that nothing uses.
func (m *Manager) Rename(ctx context.Context, name, newName string) error {
	if err := m.allow(ctx, name, auth.CanEdit); err != nil {
		return err
	}
	if err := validateName(newName); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.network(ctx, name)
	if err != nil {
		return m.notManaged(ctx, name, err)
	}
	if err := m.refuseInUse(ctx, rec.Name, "renamed"); err != nil {
		return err
	}
	ifaces, err := m.cfg.Host.Interfaces()
	if err != nil {
		return err
	}
	if hasInterface(ifaces, newName) {
		return errdefs.Conflict("network %q: the host already has an interface of that name", newName)
	}
	m.downLocked(rec)
	old := rec
	rec.Name = newName
	if err := m.cfg.Store.UpdateNetwork(ctx, rec); err != nil {
		if uerr := m.upLocked(context.WithoutCancel(ctx), old); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return err
	}
	_ = os.Rename(filepath.Join(m.cfg.Dir, name), filepath.Join(m.cfg.Dir, newName))
	if err := m.upLocked(ctx, rec); err != nil {
		return fmt.Errorf("rename network %s: %w", name, err)
	}
	if err := m.applyFirewallLocked(ctx); err != nil {
		return err
	}
	m.emitIn(ctx, rec.Project, "network-renamed", event.EntityNetwork, newName, map[string]any{"old_name": name})
	return nil
}

func (m *Manager) refuseInUse(ctx context.Context, name, what string) error {
	users, shown, err := m.users(ctx, name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return errdefs.Conflict("network %q is in use by %s and cannot be %s", name, inUse(users, shown), what)
	}
	allocs, err := m.cfg.Store.ListAllocations(ctx, name)
	if err != nil {
		return err
	}
	if len(allocs) > 0 {
		return errdefs.Conflict("network %q is in use by instance %s and cannot be %s", name, allocs[0].Instance, what)
	}
	return nil
}

// Delete removes a managed network nothing uses, and everything of it on
// the host.
func (m *Manager) Delete(ctx context.Context, name string) error {
	if err := m.allow(ctx, name, auth.CanDelete); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.network(ctx, name)
	if err != nil {
		return m.notManaged(ctx, name, err)
	}
	if err := m.refuseInUse(ctx, name, "deleted"); err != nil {
		return err
	}
	if err := m.cfg.Store.DeleteNetwork(ctx, name); err != nil {
		return err
	}
	errs := []error{m.downLocked(rec), m.applyFirewallLocked(ctx)}
	if err := os.RemoveAll(filepath.Join(m.cfg.Dir, name)); err != nil {
		errs = append(errs, err)
	}
	m.cfg.Log.Info("network deleted", "network", name)
	m.emitIn(ctx, rec.Project, "network-deleted", event.EntityNetwork, name, nil)
	return errors.Join(errs...)
}

// upLocked makes the host side of a managed network.
func (m *Manager) upLocked(ctx context.Context, rec store.Network) error {
	if rec.Type != TypeBridge {
		return nil
	}
	var addrs []netip.Prefix
	for _, k := range []string{"ipv4.address", "ipv6.address"} {
		if p, ok := subnetOf(rec.Config[k]); ok {
			addrs = append(addrs, p)
		}
	}
	mtu, _ := strconv.Atoi(rec.Config["bridge.mtu"])
	hw := rec.Config["bridge.hwaddr"]
	if hw == "" {
		// Fixed, or the bridge takes its lowest port's MAC and the
		// instances' neighbour caches go stale as ports come and go.
		hw = stableMAC(rec.Name)
	}
	if err := m.cfg.Host.EnsureBridge(rec.Name, mtu, hw, addrs); err != nil {
		return fmt.Errorf("bridge %s: %w", rec.Name, err)
	}
	for _, fam := range []int{4, 6} {
		// A bridge routes its instances to the host's other links whether
		// it NATs or not (ipvN.routing defaults to true, as in LXD).
		_, ok := subnetOf(rec.Config[fmt.Sprintf("ipv%d.address", fam)])
		if ok && isTrue(rec.Config[fmt.Sprintf("ipv%d.routing", fam)], true) {
			if err := m.cfg.Host.EnableForwarding(fam); err != nil {
				return fmt.Errorf("enable IPv%d forwarding: %w", fam, err)
			}
		}
	}
	if old, ok := m.dns[rec.Name]; ok {
		if err := old.Stop(); err != nil {
			m.cfg.Log.Warn("stop dns", "network", rec.Name, "err", err)
		}
		delete(m.dns, rec.Name)
	}
	if !dnsWanted(rec.Config) {
		return nil
	}
	hosts, err := m.dnsHosts(ctx, rec.Name)
	if err != nil {
		return err
	}
	dir := filepath.Join(m.cfg.Dir, rec.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d, err := m.cfg.StartDNS(ctx, dnsConfig(rec, dir), hosts)
	if err != nil {
		return fmt.Errorf("dnsmasq for %s: %w", rec.Name, err)
	}
	m.dns[rec.Name] = d
	return nil
}

// dnsWanted: a bridge with DHCP or DNS on runs a server.
func dnsWanted(cfg map[string]string) bool {
	_, v4 := subnetOf(cfg["ipv4.address"])
	_, v6 := subnetOf(cfg["ipv6.address"])
	return (v4 || v6) && (cfg["dns.mode"] != "none" || isTrue(cfg["ipv4.dhcp"], true) || isTrue(cfg["ipv6.dhcp"], true))
}

func dnsConfig(rec store.Network, dir string) DNSConfig {
	c := DNSConfig{Bridge: rec.Name, Dir: dir, Domain: domainOf(rec.Config), DNS: rec.Config["dns.mode"] != "none"}
	if p, ok := subnetOf(rec.Config["ipv4.address"]); ok {
		c.IPv4 = p
		c.DHCPv4 = isTrue(rec.Config["ipv4.dhcp"], true)
		c.DHCPv4Ranges = parseRanges(rec.Config["ipv4.dhcp.ranges"])
	}
	if p, ok := subnetOf(rec.Config["ipv6.address"]); ok {
		c.IPv6 = p
		c.DHCPv6 = isTrue(rec.Config["ipv6.dhcp"], true)
	}
	c.MTU, _ = strconv.Atoi(rec.Config["bridge.mtu"])
	return c
}

func domainOf(cfg map[string]string) string {
	if d := cfg["dns.domain"]; d != "" {
		return d
	}
	return DefaultDomain
}

// downLocked removes a network's host side: DNS server and bridge.
func (m *Manager) downLocked(rec store.Network) error {
	var errs []error
	if d, ok := m.dns[rec.Name]; ok {
		errs = append(errs, d.Stop())
		delete(m.dns, rec.Name)
	}
	if rec.Type == TypeBridge {
		errs = append(errs, m.cfg.Host.DeleteLink(rec.Name))
	}
	return errors.Join(errs...)
}

// dnsHosts are the host entries of every NIC on a network.
func (m *Manager) dnsHosts(ctx context.Context, network string) ([]DNSHost, error) {
	allocs, err := m.cfg.Store.ListAllocations(ctx, network)
	if err != nil {
		return nil, err
	}
	hosts := make([]DNSHost, 0, len(allocs))
	for _, a := range allocs {
		h := DNSHost{Name: a.Instance, MAC: a.Hwaddr}
		h.IPv4, _ = netip.ParseAddr(a.IPv4)
		h.IPv6, _ = netip.ParseAddr(a.IPv6)
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// refreshDNSLocked gives a network's DNS server its current hosts.
func (m *Manager) refreshDNSLocked(ctx context.Context, network string) error {
	d, ok := m.dns[network]
	if !ok {
		return nil
	}
	hosts, err := m.dnsHosts(ctx, network)
	if err != nil {
		return err
	}
	return d.SetHosts(hosts)
}

// InstanceRenamed updates the names the DNS servers give an instance's
// addresses.
func (m *Manager) InstanceRenamed(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for name := range m.dns {
		errs = append(errs, m.refreshDNSLocked(ctx, name))
	}
	return errors.Join(errs...)
}

// applyFirewallLocked rebuilds the firewall from the records, the proxies'
// rules and the NICs' filters (nothing while the firewall is held).
func (m *Manager) applyFirewallLocked(ctx context.Context) error {
	if m.held {
		return nil
	}
	nets, err := m.cfg.Store.ListNetworks(ctx)
	if err != nil {
		return err
	}
	var st FirewallState
	for _, n := range nets {
		if n.Type != TypeBridge {
			continue
		}
		b := BridgeRules{Bridge: n.Name}
		if p, ok := subnetOf(n.Config["ipv4.address"]); ok {
			b.IPv4, b.NAT4 = p, isTrue(n.Config["ipv4.nat"], false)
		}
		if p, ok := subnetOf(n.Config["ipv6.address"]); ok {
			b.IPv6, b.NAT6 = p, isTrue(n.Config["ipv6.nat"], false)
		}
		st.Bridges = append(st.Bridges, b)
	}
	fwds, err := m.cfg.Store.ListForwards(ctx, "")
	if err != nil {
		return err
	}
	for _, f := range fwds {
		rules, err := forwardRules(f)
		if err != nil {
			m.cfg.Log.Error("network forward skipped", "network", f.Network, "listen", f.ListenAddress, "err", err)
			continue
		}
		st.Forwards = append(st.Forwards, rules...)
	}
	owners := make([]string, 0, len(m.proxies))
	for o := range m.proxies {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	for _, o := range owners {
		st.Forwards = append(st.Forwards, m.proxies[o]...)
	}
	for _, o := range slices.Sorted(maps.Keys(m.filters)) {
		st.MACFilters = append(st.MACFilters, m.filters[o])
	}
	st.Egress = m.egressRulesLocked()
	if len(st.Bridges) == 0 && len(st.Forwards) == 0 && len(st.MACFilters) == 0 && len(st.Egress) == 0 {
		return m.cfg.Firewall.Remove()
	}
	if err := m.cfg.Firewall.Apply(st); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	return nil
}

// SetProxyRules replaces the DNAT rules of one owner (a proxy device with
// nat=true: "INSTANCE-ID/DEVICE"); no rules removes them.
func (m *Manager) SetProxyRules(ctx context.Context, owner string, rules []ForwardRule) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, had := m.proxies[owner]
	if len(rules) == 0 {
		if !had {
			return nil
		}
		delete(m.proxies, owner)
	} else {
		for i := range rules {
			rules[i].Owner = owner
		}
		m.proxies[owner] = rules
	}
	if err := m.applyFirewallLocked(ctx); err != nil {
		if had {
			m.proxies[owner] = old
		} else {
			delete(m.proxies, owner)
		}
		return err
	}
	return nil
}

// SetMACFilter sets the MAC filter of one owner (a NIC with
// security.mac_filtering: "nic/INSTANCE-ID/DEVICE"), or removes it (nil).
// The filter names its host link, so it can be set before the link exists
// and no frame of the link ever passes unfiltered.
func (m *Manager) SetMACFilter(ctx context.Context, owner string, f *MACFilter) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, had := m.filters[owner]
	if f == nil {
		if !had {
			return nil
		}
		delete(m.filters, owner)
	} else {
		nf := MACFilter{Owner: owner, HostLink: f.HostLink, MAC: strings.ToLower(f.MAC)}
		if err := checkInterfaceName(nf.HostLink); err != nil {
			return errdefs.Invalid("mac filter of %s: host link: %v", owner, err)
		}
		if err := validMAC(nf.MAC); err != nil {
			return errdefs.Invalid("mac filter of %s: %v", owner, err)
		}
		if had && old == nf {
			return nil
		}
		m.filters[owner] = nf
	}
	if err := m.applyFirewallLocked(ctx); err != nil {
		if had {
			m.filters[owner] = old
		} else {
			delete(m.filters, owner)
		}
		return err
	}
	return nil
}

// ProxyListenInUse tells whether a listen address and port is already taken
// by a proxy rule or a network forward, for a clear 409 before any rule is
// made.
func (m *Manager) ProxyListenInUse(ctx context.Context, owner, proto string, listen netip.Addr, port uint16) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for o, rules := range m.proxies {
		if o == owner {
			continue
		}
		for _, r := range rules {
			if r.Proto == proto && (r.Listen == listen || !r.Listen.IsValid() || !listen.IsValid() || r.Listen.IsUnspecified() || listen.IsUnspecified()) {
				for _, p := range r.ListenPorts {
					if p == port {
						return o, true
					}
				}
			}
		}
	}
	return "", false
}

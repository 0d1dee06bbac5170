package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/autostandby"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/network"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/proxy"
)

// standbyCore is the instance service and the network manager as the
// auto-standby controller sees them.
type standbyCore struct {
	svc      *instance.Service
	networks *network.Manager
	projects *project.Service
	emit     *lifecycle
	log      *slog.Logger

	// wakeRules are the proxy DNAT rules kept for instances in standby
	// with an enabled policy, by owner (see Standby and Instances);
	// touched says when (in gen's count) an owner's rules were last set
	// or dropped by Standby or Start, so that a list read before that is
	// not used to undo it.
	mu        sync.Mutex
	wakeRules map[string][]network.ForwardRule
	touched   map[string]uint64
	gen       uint64
}

var _ autostandby.Core = (*standbyCore)(nil)

func newStandbyCore(svc *instance.Service, networks *network.Manager, projects *project.Service, emit *lifecycle, log *slog.Logger) *standbyCore {
	return &standbyCore{svc: svc, networks: networks, projects: projects, emit: emit, log: log,
		wakeRules: map[string][]network.ForwardRule{}, touched: map[string]uint64{}}
}

// Instances lists every instance as the daemon, with the addresses its
// NICs hold on managed networks. An allocation is matched by device name
// and MAC (volatile.DEV.hwaddr): allocations name the instance by its
// database id, which the core keeps to itself. It also brings the kept
// proxy rules in line with the list: an instance in standby with an
// enabled policy and proxies with nat=true gets them (a user's standby, or
// one left by the previous daemon, whose firewall was rebuilt with the
// running instances' proxies only); any other loses them.
func (a *standbyCore) Instances(ctx context.Context) ([]autostandby.Instance, error) {
	dctx := project.WithAll(auth.AsDaemon(ctx))
	a.mu.Lock()
	listedAt := a.gen
	a.mu.Unlock()
	list := a.svc.List(dctx)
	allocs, err := a.networks.Allocations(dctx, "")
	if err != nil {
		return nil, err
	}
	type nicKey struct{ device, hwaddr string }
	addrs := make(map[nicKey][]netip.Addr, len(allocs))
	for _, al := range allocs {
		k := nicKey{al.Device, strings.ToLower(al.Hwaddr)}
		for _, s := range []string{al.IPv4, al.IPv6} {
			if ip, err := netip.ParseAddr(s); err == nil {
				addrs[k] = append(addrs[k], ip)
			}
		}
	}
	out := make([]autostandby.Instance, 0, len(list))
	want := map[string][]network.ForwardRule{}
	for _, in := range list {
		si := standbyInstance(in, func(dev, hw string) []netip.Addr {
			return addrs[nicKey{dev, strings.ToLower(hw)}]
		})
		out = append(out, si)
		if pol, err := autostandby.ParsePolicy(si.Config); err == nil && pol.Enabled && si.VM && si.Standby {
			if rules := proxyNATRules(in.ExpandedDevices, si.Addrs); len(rules) > 0 {
				want[wakeOwner(in.Project, in.Name)] = rules
			}
		}
	}
	a.syncWakeRules(ctx, want, listedAt)
	return out, nil
}

// syncWakeRules makes the kept rules those of want, except for owners
// that Standby or Start touched after the list (read at gen listedAt)
// was: the list is older than their state.
func (a *standbyCore) syncWakeRules(ctx context.Context, want map[string][]network.ForwardRule, listedAt uint64) {
	a.mu.Lock()
	var set, drop []string
	for owner, rules := range want {
		if a.touched[owner] <= listedAt && !sameRules(a.wakeRules[owner], rules, owner) {
			set = append(set, owner)
		}
	}
	for owner := range a.wakeRules {
		if _, ok := want[owner]; !ok && a.touched[owner] <= listedAt {
			drop = append(drop, owner)
		}
	}
	a.mu.Unlock()
	dctx := auth.AsDaemon(ctx)
	for _, owner := range set {
		rules := want[owner]
		if err := a.networks.SetProxyRules(dctx, owner, rules); err != nil {
			a.log.Error("keep proxy rules for wake-up", "owner", owner, "err", err)
			continue
		}
		a.mu.Lock()
		a.wakeRules[owner] = rules
		a.mu.Unlock()
		a.log.Info("auto-standby: proxy rules kept for wake-up", "owner", owner, "rules", len(rules))
	}
	// An instance started or deleted by someone else, or whose policy
	// was disabled: its own proxies are back, it is gone, or it is not
	// to be woken.
	for _, owner := range drop {
		a.dropWakeRules(ctx, owner, listedAt)
	}
}

// sameRules reports whether kept (as SetProxyRules stored them, owned by
// owner) are rules.
func sameRules(kept, rules []network.ForwardRule, owner string) bool {
	return slices.EqualFunc(kept, rules, func(k, r network.ForwardRule) bool {
		return k.Owner == owner && k.Proto == r.Proto && k.Listen == r.Listen && k.Target == r.Target &&
			slices.Equal(k.ListenPorts, r.ListenPorts) && slices.Equal(k.TargetPorts, r.TargetPorts)
	})
}

// standbyInstance renders one instance; addrsOf gives a NIC's addresses.
// A stopped instance whose record is Stateful has a saved state waiting:
// it is in standby, whoever stopped it.
func standbyInstance(in instance.Instance, addrsOf func(dev, hw string) []netip.Addr) autostandby.Instance {
	out := autostandby.Instance{Project: in.Project, Name: in.Name, VM: in.Type == instance.TypeVM,
		Running: in.Status == instance.StatusRunning, Standby: in.Status == instance.StatusStopped && in.Stateful,
		Config: in.ExpandedConfig}
	for dev, d := range in.ExpandedDevices {
		switch d["type"] {
		case "nic":
			out.HasNIC = true
			out.Addrs = append(out.Addrs, addrsOf(dev, in.ExpandedConfig["volatile."+dev+".hwaddr"])...)
		case "gpu":
			out.HasGPU = true
		}
	}
	return out
}

// Instance reads one instance as ctx's caller (the core's Get checks
// that it may see it).
func (a *standbyCore) Instance(ctx context.Context, proj, name string) (autostandby.Instance, error) {
	ctx = a.inProject(ctx, proj)
	in, err := a.svc.Get(ctx, name)
	if err != nil {
		return autostandby.Instance{}, err
	}
	// The addresses as the daemon: allocations are not the caller's to
	// list, only this instance's are used.
	allocs, err := a.networks.Allocations(auth.AsDaemon(ctx), "")
	if err != nil {
		return autostandby.Instance{}, err
	}
	return standbyInstance(in, func(dev, hw string) []netip.Addr {
		var out []netip.Addr
		for _, al := range allocs {
			if al.Device == dev && strings.EqualFold(al.Hwaddr, hw) {
				for _, s := range []string{al.IPv4, al.IPv6} {
					if ip, err := netip.ParseAddr(s); err == nil {
						out = append(out, ip)
					}
				}
			}
		}
		return out
	}), nil
}

// Standby is a stateful stop as the daemon. A stop removes the DNAT
// rules of the instance's proxy devices with nat=true; they are put back
// under an owner of the controller's, so that a client of such a proxy
// reaches the standby instance's address (nobody there: its SYN goes
// unanswered and wakes the instance) instead of a closed host port (a
// reset: nothing to wake on).
func (a *standbyCore) Standby(ctx context.Context, proj, name string) error {
	pctx := a.inProject(auth.AsDaemon(ctx), proj)
	in, err := a.Instance(pctx, proj, name)
	if err != nil {
		return err
	}
	full, err := a.svc.Get(pctx, name)
	if err != nil {
		return err
	}
	if err := a.svc.Stop(pctx, name, instance.StopOptions{Timeout: -1, Stateful: true}); err != nil {
		return err
	}
	rules := proxyNATRules(full.ExpandedDevices, in.Addrs)
	if len(rules) == 0 {
		return nil
	}
	owner := wakeOwner(proj, name)
	if err := a.networks.SetProxyRules(pctx, owner, rules); err != nil {
		// The instance is in standby all the same; only a proxy's client
		// cannot wake it (the next list tries again).
		a.log.Error("keep proxy rules for wake-up", "project", proj, "instance", name, "err", err)
		return nil
	}
	a.mu.Lock()
	a.gen++
	a.wakeRules[owner], a.touched[owner] = rules, a.gen
	a.mu.Unlock()
	return nil
}

// Start starts (restores) an instance as the daemon; once it runs, its
// proxy devices' own rules replace the ones Standby kept.
func (a *standbyCore) Start(ctx context.Context, proj, name string) error {
	if err := a.svc.Start(a.inProject(auth.AsDaemon(ctx), proj), name); err != nil {
		return err
	}
	owner := wakeOwner(proj, name)
	a.mu.Lock()
	a.gen++
	now := a.gen
	a.touched[owner] = now
	a.mu.Unlock()
	a.dropWakeRules(ctx, owner, now)
	return nil
}

func wakeOwner(proj, name string) string { return "autostandby/" + proj + "/" + name }

// dropWakeRules removes an owner's kept rules unless Standby set them
// after gen seen (a list read before that says nothing of them).
func (a *standbyCore) dropWakeRules(ctx context.Context, owner string, seen uint64) {
	a.mu.Lock()
	_, had := a.wakeRules[owner]
	had = had && a.touched[owner] <= seen
	if had {
		delete(a.wakeRules, owner)
	}
	a.mu.Unlock()
	if !had {
		return
	}
	if err := a.networks.SetProxyRules(auth.AsDaemon(ctx), owner, nil); err != nil {
		a.log.Error("remove the proxy rules kept for wake-up", "owner", owner, "err", err)
	}
}

// proxyNATRules are the DNAT rules of the proxy devices with nat=true
// (as the device layer makes them: a wildcard or loopback connect
// address is the instance's address of the listen family).
func proxyNATRules(devs instance.Devices, addrs []netip.Addr) []network.ForwardRule {
	var out []network.ForwardRule
	for _, d := range devs {
		if d["type"] != "proxy" || !isTrue(d["nat"]) {
			continue
		}
		listen, connect, err := proxy.ParsePair(d["listen"], d["connect"])
		if err != nil {
			continue
		}
		v4 := !listen.Addr.IsValid() || listen.Addr.Is4()
		target := connect.Addr
		if !target.IsValid() || target.IsUnspecified() || target.IsLoopback() {
			target = netip.Addr{}
			for _, a := range addrs {
				if a.Is4() == v4 {
					target = a
					break
				}
			}
		}
		if !target.IsValid() {
			continue
		}
		out = append(out, network.ForwardRule{Proto: listen.Proto, Listen: listen.Addr, ListenPorts: listen.Ports, Target: target, TargetPorts: connect.Ports})
	}
	return out
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// Emit publishes a lifecycle event of the instance on the event hub
// (the LXD event stream and every other edge's).
func (a *standbyCore) Emit(ctx context.Context, proj, name, action string, meta map[string]any) {
	a.emit.Lifecycle(auth.AsDaemon(ctx), action, event.Entity{Kind: event.EntityInstance, Name: name, Project: proj}, meta)
}

// inProject returns ctx acting in project proj, loaded with its
// features (the core scopes profiles and limits by them).
func (a *standbyCore) inProject(ctx context.Context, proj string) context.Context {
	if project.Name(ctx) == proj && !project.All(ctx) {
		return ctx
	}
	p := project.Project{Name: proj}
	if got, err := a.projects.Get(ctx, proj); err == nil {
		p = got
	}
	return project.WithProject(ctx, p)
}

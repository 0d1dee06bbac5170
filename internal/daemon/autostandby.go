package daemon

import (
	"context"
	"log/slog"
	"net/netip"
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

	// wakeRules are the proxy DNAT rules kept for instances in an
	// auto-standby, by owner (see Standby).
	mu        sync.Mutex
	wakeRules map[string]bool
}

var _ autostandby.Core = (*standbyCore)(nil)

// Instances lists every instance as the daemon, with the addresses its
// NICs hold on managed networks. An allocation is matched by device name
// and MAC (volatile.DEV.hwaddr): allocations name the instance by its
// database id, which the core keeps to itself.
func (a *standbyCore) Instances(ctx context.Context) ([]autostandby.Instance, error) {
	dctx := project.WithAll(auth.AsDaemon(ctx))
	// The owners before the list: one added after it (a standby that
	// just ended) is not judged by a list older than it.
	a.mu.Lock()
	kept := make([]string, 0, len(a.wakeRules))
	for owner := range a.wakeRules {
		kept = append(kept, owner)
	}
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
	stopped := map[string]bool{}
	for _, in := range list {
		out = append(out, standbyInstance(in, func(dev, hw string) []netip.Addr {
			return addrs[nicKey{dev, strings.ToLower(hw)}]
		}))
		if in.Status == instance.StatusStopped {
			stopped[wakeOwner(in.Project, in.Name)] = true
		}
	}
	// Kept proxy rules of an instance started or deleted by someone else
	// go: its own proxies are back, or it is gone.
	for _, owner := range kept {
		if !stopped[owner] {
			a.dropWakeRules(ctx, owner)
		}
	}
	return out, nil
}

// standbyInstance renders one instance; addrsOf gives a NIC's addresses.
func standbyInstance(in instance.Instance, addrsOf func(dev, hw string) []netip.Addr) autostandby.Instance {
	out := autostandby.Instance{Project: in.Project, Name: in.Name, VM: in.Type == instance.TypeVM,
		Running: in.Status == instance.StatusRunning, Config: in.ExpandedConfig}
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
		// cannot wake it.
		a.log.Error("keep proxy rules for wake-up", "project", proj, "instance", name, "err", err)
		return nil
	}
	a.mu.Lock()
	a.wakeRules[owner] = true
	a.mu.Unlock()
	return nil
}

// Start starts (restores) an instance as the daemon; once it runs, its
// proxy devices' own rules replace the ones Standby kept.
func (a *standbyCore) Start(ctx context.Context, proj, name string) error {
	if err := a.svc.Start(a.inProject(auth.AsDaemon(ctx), proj), name); err != nil {
		return err
	}
	a.dropWakeRules(ctx, wakeOwner(proj, name))
	return nil
}

func wakeOwner(proj, name string) string { return "autostandby/" + proj + "/" + name }

func (a *standbyCore) dropWakeRules(ctx context.Context, owner string) {
	a.mu.Lock()
	had := a.wakeRules[owner]
	delete(a.wakeRules, owner)
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

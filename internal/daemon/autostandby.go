package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/autostandby"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/network"
	"github.com/hangar-dev/hangar/internal/project"
)

// standbyCore is the instance service and the network manager as the
// auto-standby controller sees them.
type standbyCore struct {
	svc      *instance.Service
	networks *network.Manager
	projects *project.Service
	emit     *lifecycle
	log      *slog.Logger
}

var _ autostandby.Core = (*standbyCore)(nil)

func newStandbyCore(svc *instance.Service, networks *network.Manager, projects *project.Service, emit *lifecycle, log *slog.Logger) *standbyCore {
	return &standbyCore{svc: svc, networks: networks, projects: projects, emit: emit, log: log}
}

// Instances lists every instance as the daemon, with the addresses its
// NICs hold on managed networks. An allocation is matched by device name
// and MAC (volatile.DEV.hwaddr): allocations name the instance by its
// database id, which the core keeps to itself.
func (a *standbyCore) Instances(ctx context.Context) ([]autostandby.Instance, error) {
	dctx := project.WithAll(auth.AsDaemon(ctx))
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
	for _, in := range list {
		out = append(out, standbyInstance(in, func(dev, hw string) []netip.Addr {
			return addrs[nicKey{dev, strings.ToLower(hw)}]
		}))
	}
	return out, nil
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

// Standby is a stateful stop as the daemon. The device layer keeps what
// a client needs to reach the standby instance's address (its proxies'
// DNAT rules, a pinned neighbour entry), so that the client's SYN goes
// unanswered and wakes it rather than meeting a closed port.
func (a *standbyCore) Standby(ctx context.Context, proj, name string) error {
	return a.svc.Stop(a.inProject(auth.AsDaemon(ctx), proj), name, instance.StopOptions{Timeout: -1, Stateful: true})
}

// Start starts (restores) an instance as the daemon.
func (a *standbyCore) Start(ctx context.Context, proj, name string) error {
	return a.svc.Start(a.inProject(auth.AsDaemon(ctx), proj), name)
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

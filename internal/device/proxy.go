package device

import (
	"sort"

	"context"
	"errors"
	"fmt"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"

	"github.com/hangar-dev/hangar/internal/network"
	"github.com/hangar-dev/hangar/internal/proxy"
)

// parseProxy reads and pairs a proxy device's listen and connect.
func parseProxy(d map[string]string) (listen, connect proxy.Address, err error) {
	return proxy.ParsePair(d["listen"], d["connect"])
}

// proxyOwner names a proxy device's firewall rules.
func proxyOwner(in Instance, dev string) string { return "proxy/" + in.RuntimeID + "/" + dev }

func (m *Manager) startProxy(ctx context.Context, in Instance, name string, d map[string]string, r *running) error {
	listen, connect, err := parseProxy(d)
	if err != nil {
		return err
	}
	if isTrue(d["nat"]) {
		if m.cfg.Networks == nil {
			return errors.New("nat needs networks")
		}
		rule, err := natRule(listen, connect, r)
		if err != nil {
			return err
		}
		// The same owner as a rule kept in standby: replaced in place.
		if err := m.cfg.Networks.SetProxyRules(ctx, proxyOwner(in, name), []network.ForwardRule{rule}); err != nil {
			return err
		}
		m.mu.Lock()
		r.proxyNAT[name] = true
		m.mu.Unlock()
		return nil
	}
	if in.VM {
		return errors.New("proxy devices of virtual machines need nat=true")
	}
	if m.cfg.Forwarders == nil {
		return errors.New("no userspace proxy available")
	}
	f, err := m.cfg.Forwarders(ctx, d["listen"], d["connect"], m.netnsPath(in))
	if err != nil {
		return err
	}
	m.mu.Lock()
	r.forwarders[name] = append(r.forwarders[name], f)
	m.mu.Unlock()
	return nil
}

// natRule is the DNAT rule of a proxy with nat=true. DNAT cannot reach an
// instance's loopback: a wildcard or loopback connect address means the
// instance's address on its network.
func natRule(listen, connect proxy.Address, r *running) (network.ForwardRule, error) {
	v4 := !listen.Addr.IsValid() || listen.Addr.Is4()
	target := connect.Addr
	if !target.IsValid() || target.IsUnspecified() || target.IsLoopback() {
		a, ok := r.address(v4)
		if !ok {
			return network.ForwardRule{}, fmt.Errorf("nat=true needs the instance to have an IPv%d address on a managed network", map[bool]int{true: 4, false: 6}[v4])
		}
		target = a
	}
	return network.ForwardRule{Proto: listen.Proto, Listen: listen.Addr, ListenPorts: listen.Ports, Target: target, TargetPorts: connect.Ports}, nil
}

func (m *Manager) stopProxy(ctx context.Context, in Instance, name string, r *running) error {
	m.mu.Lock()
	fs := r.forwarders[name]
	delete(r.forwarders, name)
	nat := r.proxyNAT[name]
	delete(r.proxyNAT, name)
	m.mu.Unlock()
	var errs []error
	for _, f := range fs {
		errs = append(errs, f.Close())
	}
	if nat {
		errs = append(errs, m.cfg.Networks.SetProxyRules(ctx, proxyOwner(in, name), nil))
	}
	return errors.Join(errs...)
}

// Update applies changed devices to a running instance: NICs and proxies
// that went or changed are removed, new or changed ones made (containers:
// hotplug into the namespace). For a virtual machine it returns the NICs
// to plug and the device names to unplug, for the runtime.
func (m *Manager) Update(ctx context.Context, in Instance, old, cur map[string]map[string]string) (plug []driver.NIC, unplug []string, err error) {
	m.mu.Lock()
	r := m.runs[in.RuntimeID]
	m.mu.Unlock()
	if r == nil {
		return nil, nil, nil
	}
	// A VM's display and tpm devices are its machine's hardware: a change
	// applies at its next start (LXD's TPM does not hotplug either).
	for _, name := range changedDevices(old, cur, "display", "tpm") {
		m.cfg.Log.Info("display and tpm changes apply at the next start", "instance", in.Name, "device", name)
	}
	// NICs that changed in live keys only keep their link and take the
	// change in place: a MAC filter comes or goes without a replug.
	live := map[string]bool{}
	m.mu.Lock()
	for name, od := range old {
		if nd, still := cur[name]; still && !sameDevice(od, nd) && liveChange(od, nd) &&
			r.hostLinks[name] != "" && r.nics[name].Hwaddr != "" && r.nics[name].Type != network.TypeMacvlan {
			live[name] = true
		}
	}
	m.mu.Unlock()
	var errs []error
	for name, od := range old {
		nd, still := cur[name]
		if still && sameDevice(od, nd) || live[name] {
			continue
		}
		switch od["type"] {
		case "proxy":
			errs = append(errs, m.stopProxy(ctx, in, name, r))
		case "nic":
			host := r.hostLinks[name]
			if host == "" {
				host = HostLinkName(in.RuntimeID, name)
			}
			// The name it was plugged under: a NIC without a name key is
			// called as its device (startNIC).
			ifname := or(od["name"], name)
			m.mu.Lock()
			macvlan := r.nics[name].Type == network.TypeMacvlan
			m.mu.Unlock()
			switch {
			case in.VM:
				unplug = append(unplug, ifname)
				if in.Hotplug != nil {
					// Before the tap goes: QEMU lets go of it first.
					errs = append(errs, in.Hotplug.DetachNIC(ctx, ifname))
				}
				errs = append(errs, m.cfg.Links.DeleteLink(host))
			case macvlan:
				errs = append(errs, m.cfg.Links.DeleteLinkInNetNS(m.netnsPath(in), ifname))
			default:
				errs = append(errs, m.cfg.Links.DeleteLink(host))
			}
			// After the link: it never sends unfiltered.
			errs = append(errs, m.clearMACFilter(ctx, in, name))
			m.mu.Lock()
			delete(r.nics, name)
			delete(r.hostLinks, name)
			m.mu.Unlock()
		}
	}
	for _, name := range sortedNames(live) {
		m.mu.Lock()
		host, mac := r.hostLinks[name], r.nics[name].Hwaddr
		m.mu.Unlock()
		if err := m.setMACFilter(ctx, in, name, cur[name], host, mac); err != nil {
			errs = append(errs, fmt.Errorf("device %s: mac filter: %w", name, err))
		}
	}
	netns := ""
	if !in.VM {
		netns = m.netnsPath(in)
	}
	for _, name := range sortedNames(cur) {
		nd := cur[name]
		if od, had := old[name]; had && sameDevice(od, nd) || live[name] {
			continue
		}
		switch nd["type"] {
		case "nic":
			nic, err := m.startNIC(ctx, in, name, nd, netns, r)
			if err != nil {
				errs = append(errs, fmt.Errorf("device %s: %w", name, err))
				continue
			}
			if in.VM {
				plug = append(plug, nic)
				if in.Hotplug != nil {
					err := in.Hotplug.AttachNIC(ctx, nic)
					if errors.Is(err, errdefs.ErrNotImplemented) {
						// No free slot: the NIC comes at the next start.
						m.cfg.Log.Warn("NIC not hotplugged", "instance", in.Name, "device", name, "err", err)
						err = nil
					}
					if err != nil {
						errs = append(errs, fmt.Errorf("device %s: %w", name, err))
					}
				}
			}
		case "proxy":
			if err := m.startProxy(ctx, in, name, nd, r); err != nil {
				errs = append(errs, fmt.Errorf("device %s: %w", name, err))
			}
		}
	}
	errs = append(errs, m.updateDisks(ctx, in, old, cur))
	return plug, unplug, errors.Join(errs...)
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func sameDevice(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

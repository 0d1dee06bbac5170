package device

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"sort"

	"github.com/hangar-dev/hangar/internal/network"
)

// kept is what an instance in standby keeps on the host, so that a client
// reaches its address while nothing runs there: its SYN goes unanswered
// (and wakes the instance, package autostandby) until the restored VM
// answers a retransmit.
type kept struct {
	// nat are the proxy devices with nat=true whose DNAT rules stay,
	// under their own owner (proxyOwner): the next start's startProxy
	// replaces them in place, with no moment without the rule and no
	// conflict with a rule of another owner on the same listen port.
	nat map[string]bool
	// pins are the permanent neighbour entries of the instance's
	// addresses (Links.PinNeighbors): an entry to resolve would fail
	// after ~3 s of unanswered ARP or ND, and a client's connect get "no
	// route to host" if the restore takes longer.
	pins []pin
}

// pin is one NIC's pinned neighbour entries.
type pin struct {
	bridge, mac string
	addrs       []netip.Prefix
}

// Standby removes the host side of an instance stopped with its state
// saved (a VM's standby) as Stop does, except that the DNAT rules of its
// proxies with nat=true stay and its managed-network addresses are pinned
// on their bridges to its NICs' MACs. The next Start takes them over;
// Stop removes them. Called for an instance already stopped (a daemon's
// recovery of one left in standby), it makes them from the devices and
// the NICs' allocations. A failure to keep something is returned after
// the rest is done: the instance is in standby all the same.
func (m *Manager) Standby(ctx context.Context, in Instance, devs map[string]map[string]string) error {
	m.mu.Lock()
	r := m.runs[in.RuntimeID]
	delete(m.runs, in.RuntimeID)
	var nat map[string]bool
	var nics map[string]network.NICConfig
	if r != nil {
		nat, nics = maps.Clone(r.proxyNAT), maps.Clone(r.nics)
	}
	m.mu.Unlock()
	errs := m.release(ctx, in, devs, r, true)
	k := &kept{nat: map[string]bool{}}
	if old := m.takeStandby(in); old != nil {
		// Standby of an instance already in standby: what is held stays
		// held (and known, for Stop to remove).
		maps.Copy(k.nat, old.nat)
		k.pins = old.pins
	}
	if r == nil {
		// Nothing in memory: a restarted daemon, whose firewall holds
		// only the running instances' proxies.
		nics = map[string]network.NICConfig{}
		for _, name := range sortedNICs(devs) {
			nc, err := m.nicConfig(ctx, in, name, devs[name])
			if err != nil {
				errs = append(errs, fmt.Errorf("device %s: %w", name, err))
				continue
			}
			nics[name] = nc
		}
		var err error
		nat, err = m.setNATRules(ctx, in, devs, &running{nics: nics})
		errs = append(errs, err)
	}
	maps.Copy(k.nat, nat)
	for _, name := range sortedNames(nics) {
		nc := nics[name]
		if nc.Type != network.TypeBridge || nc.Bridge == "" || nc.Hwaddr == "" || len(nc.Addresses) == 0 {
			continue
		}
		if err := m.cfg.Links.PinNeighbors(nc.Bridge, nc.Hwaddr, nc.Addresses); err != nil {
			errs = append(errs, fmt.Errorf("device %s: pin neighbours: %w", name, err))
			continue
		}
		k.pins = append(k.pins, pin{bridge: nc.Bridge, mac: nc.Hwaddr, addrs: nc.Addresses})
	}
	if len(k.nat) > 0 || len(k.pins) > 0 {
		m.mu.Lock()
		m.standby[in.RuntimeID] = k
		m.mu.Unlock()
	}
	return errors.Join(errs...)
}

// setNATRules sets the DNAT rules of devs' proxies with nat=true, to r's
// addresses, and returns the devices whose rules it set.
func (m *Manager) setNATRules(ctx context.Context, in Instance, devs map[string]map[string]string, r *running) (map[string]bool, error) {
	set := map[string]bool{}
	if m.cfg.Networks == nil {
		return set, nil
	}
	var names []string
	for n, d := range devs {
		if d["type"] == "proxy" && isTrue(d["nat"]) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		listen, connect, err := parseProxy(devs[n])
		if err == nil {
			var rule network.ForwardRule
			if rule, err = natRule(listen, connect, r); err == nil {
				err = m.cfg.Networks.SetProxyRules(ctx, proxyOwner(in, n), []network.ForwardRule{rule})
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", n, err))
			continue
		}
		set[n] = true
	}
	return set, errors.Join(errs...)
}

// takeStandby removes and returns what an instance kept in standby (nil:
// nothing).
func (m *Manager) takeStandby(in Instance) *kept {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.standby[in.RuntimeID]
	delete(m.standby, in.RuntimeID)
	return k
}

// dropKept removes what an instance kept in standby from the host.
func (m *Manager) dropKept(ctx context.Context, in Instance, k *kept) error {
	var errs []error
	for _, dev := range sortedNames(k.nat) {
		errs = append(errs, m.cfg.Networks.SetProxyRules(ctx, proxyOwner(in, dev), nil))
	}
	for _, p := range k.pins {
		errs = append(errs, m.cfg.Links.UnpinNeighbors(p.bridge, p.mac, p.addrs))
	}
	return errors.Join(errs...)
}

// adoptKept hands the rules an instance kept in standby to its new run
// (r): Started replaces those of proxies still with nat=true in place, a
// later Stop removes them; the rule of a proxy no longer there (or no
// longer with nat=true) goes now. Its NICs' start re-pointed the pinned
// neighbours (SetNeighbors); those of an address it no longer has (its
// devices changed in standby, by a profile) are unpinned.
func (m *Manager) adoptKept(ctx context.Context, in Instance, devs map[string]map[string]string, k *kept, r *running) {
	held := map[string]bool{}
	for _, nc := range r.nics {
		for _, a := range nc.Addresses {
			held[nc.Bridge+" "+a.Addr().String()] = true
		}
	}
	for _, p := range k.pins {
		var gone []netip.Prefix
		for _, a := range p.addrs {
			if !held[p.bridge+" "+a.Addr().String()] {
				gone = append(gone, a)
			}
		}
		if len(gone) == 0 {
			continue
		}
		if err := m.cfg.Links.UnpinNeighbors(p.bridge, p.mac, gone); err != nil {
			m.cfg.Log.Warn("unpin neighbours kept in standby", "instance", in.Name, "bridge", p.bridge, "err", err)
		}
	}
	for _, dev := range sortedNames(k.nat) {
		if d, ok := devs[dev]; ok && d["type"] == "proxy" && isTrue(d["nat"]) {
			m.mu.Lock()
			r.proxyNAT[dev] = true
			m.mu.Unlock()
			continue
		}
		if err := m.cfg.Networks.SetProxyRules(ctx, proxyOwner(in, dev), nil); err != nil {
			m.cfg.Log.Warn("remove a proxy rule kept in standby", "instance", in.Name, "device", dev, "err", err)
		}
	}
}

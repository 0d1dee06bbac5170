package device

import (
	"sort"

	"context"
	"errors"
	"fmt"
	"github.com/hangar-dev/hangar/internal/driver"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/network"
)

// proxyAddr is one side of a proxy device: "tcp:ADDR:PORT[-PORT]".
type proxyAddr struct {
	proto string
	addr  netip.Addr
	ports []uint16
}

// parseProxyAddr reads LXD's proxy address syntax (tcp and udp; unix
// sockets are not supported).
func parseProxyAddr(s string) (proxyAddr, error) {
	proto, rest, ok := strings.Cut(s, ":")
	if !ok {
		return proxyAddr{}, fmt.Errorf("%q is not PROTO:ADDRESS:PORT", s)
	}
	if proto != "tcp" && proto != "udp" {
		return proxyAddr{}, fmt.Errorf("%q: protocol %q is not tcp or udp", s, proto)
	}
	i := strings.LastIndex(rest, ":")
	if i < 0 {
		return proxyAddr{}, fmt.Errorf("%q has no port", s)
	}
	host, portSpec := strings.Trim(rest[:i], "[]"), rest[i+1:]
	a, err := netip.ParseAddr(host)
	if err != nil {
		return proxyAddr{}, fmt.Errorf("%q: %q is not an IP address", s, host)
	}
	var ports []uint16
	for _, part := range strings.Split(portSpec, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		l, err := strconv.ParseUint(lo, 10, 16)
		if err != nil || l == 0 {
			return proxyAddr{}, fmt.Errorf("%q: %q is not a port", s, part)
		}
		h := l
		if isRange {
			if h, err = strconv.ParseUint(hi, 10, 16); err != nil || h < l {
				return proxyAddr{}, fmt.Errorf("%q: %q is not a port range", s, part)
			}
		}
		for p := l; p <= h; p++ {
			ports = append(ports, uint16(p))
		}
	}
	return proxyAddr{proto: proto, addr: a, ports: ports}, nil
}

// parseProxy reads and pairs a proxy device's listen and connect.
func parseProxy(d map[string]string) (listen, connect proxyAddr, err error) {
	if listen, err = parseProxyAddr(d["listen"]); err != nil {
		return listen, connect, fmt.Errorf("listen: %w", err)
	}
	if connect, err = parseProxyAddr(d["connect"]); err != nil {
		return listen, connect, fmt.Errorf("connect: %w", err)
	}
	if listen.proto != connect.proto {
		return listen, connect, fmt.Errorf("listen is %s but connect is %s", listen.proto, connect.proto)
	}
	if len(connect.ports) != 1 && len(connect.ports) != len(listen.ports) {
		return listen, connect, fmt.Errorf("connect has %d ports for %d listen ports (give one, or as many)", len(connect.ports), len(listen.ports))
	}
	return listen, connect, nil
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
		// DNAT cannot reach an instance's loopback: a wildcard or loopback
		// connect address means the instance's address on its network.
		target := connect.addr
		if target.IsUnspecified() || target.IsLoopback() {
			a, ok := r.address(listen.addr.Is4())
			if !ok {
				return fmt.Errorf("nat=true needs the instance to have an IPv%d address on a managed network", map[bool]int{true: 4, false: 6}[listen.addr.Is4()])
			}
			target = a
		}
		rule := network.ForwardRule{Proto: listen.proto, Listen: listen.addr, ListenPorts: listen.ports, Target: target, TargetPorts: connect.ports}
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
	var errs []error
	for name, od := range old {
		nd, still := cur[name]
		if still && sameDevice(od, nd) {
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
			if in.VM {
				unplug = append(unplug, od["name"])
			}
			errs = append(errs, m.cfg.Links.DeleteLink(host))
			m.mu.Lock()
			delete(r.nics, name)
			delete(r.hostLinks, name)
			m.mu.Unlock()
		}
	}
	netns := ""
	if !in.VM {
		netns = m.netnsPath(in)
	}
	for _, name := range sortedNames(cur) {
		nd := cur[name]
		if od, had := old[name]; had && sameDevice(od, nd) {
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
			}
		case "proxy":
			if err := m.startProxy(ctx, in, name, nd, r); err != nil {
				errs = append(errs, fmt.Errorf("device %s: %w", name, err))
			}
		}
	}
	return plug, unplug, errors.Join(errs...)
}

func sortedNames(devs map[string]map[string]string) []string {
	out := make([]string, 0, len(devs))
	for n := range devs {
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

package network

import (
	"context"
	"fmt"
	"github.com/hangar-dev/hangar/internal/auth"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/store"
)

// Forward is a network forward (LXD's): traffic to a listen address of the
// host goes to instance addresses on the network, by port or whole.
type Forward = store.Forward

// ForwardPort is one port rule of a forward.
type ForwardPort = store.ForwardPort

// Forwards lists a network's forwards.
func (m *Manager) Forwards(ctx context.Context, network string) ([]Forward, error) {
	if err := m.allow(ctx, network, auth.CanView); err != nil {
		return nil, err
	}
	if _, err := m.network(ctx, network); err != nil {
		return nil, m.notManaged(ctx, network, err)
	}
	return m.cfg.Store.ListForwards(ctx, network)
}

// GetForward returns one forward.
func (m *Manager) GetForward(ctx context.Context, network, listen string) (Forward, error) {
	fs, err := m.Forwards(ctx, network)
	if err != nil {
		return Forward{}, err
	}
	for _, f := range fs {
		if f.ListenAddress == listen {
			return f, nil
		}
	}
	return Forward{}, errdefs.NotFound("network forward %q not found", listen)
}

// PutForward creates a forward (replace false) or replaces one.
func (m *Manager) PutForward(ctx context.Context, f Forward, replace bool) error {
	if err := m.allow(ctx, f.Network, auth.CanEdit); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.network(ctx, f.Network)
	if err != nil {
		return m.notManaged(ctx, f.Network, err)
	}
	if rec.Type != TypeBridge {
		return errdefs.Invalid("network %q: forwards need a bridge network", f.Network)
	}
	if err := m.checkForward(ctx, rec, f); err != nil {
		return err
	}
	if err := m.cfg.Store.PutForward(ctx, f, replace); err != nil {
		return err
	}
	if err := m.applyFirewallLocked(ctx); err != nil {
		return err
	}
	action := "network-forward-created"
	if replace {
		action = "network-forward-updated"
	}
	m.emit(ctx, action, event.EntityNetworkForward, f.Network+"/"+f.ListenAddress, nil)
	return nil
}

// DeleteForward removes a forward and its rules.
func (m *Manager) DeleteForward(ctx context.Context, network, listen string) error {
	if err := m.allow(ctx, network, auth.CanEdit); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.network(ctx, network); err != nil {
		return m.notManaged(ctx, network, err)
	}
	if err := m.cfg.Store.DeleteForward(ctx, network, listen); err != nil {
		return err
	}
	if err := m.applyFirewallLocked(ctx); err != nil {
		return err
	}
	m.emit(ctx, "network-forward-deleted", event.EntityNetworkForward, network+"/"+listen, nil)
	return nil
}

func (m *Manager) checkForward(ctx context.Context, rec store.Network, f Forward) error {
	listen, err := netip.ParseAddr(f.ListenAddress)
	if err != nil || listen.Zone() != "" {
		return errdefs.Invalid("listen_address %q is not an IP address", f.ListenAddress)
	}
	for k := range f.Config {
		if k != "target_address" && !strings.HasPrefix(k, "user.") {
			return errdefs.Invalid("invalid network forward config key %q", k)
		}
	}
	for _, key := range []string{"ipv4.address", "ipv6.address"} {
		if p, ok := subnetOf(rec.Config[key]); ok && p.Masked().Contains(listen) {
			return errdefs.Invalid("listen_address %s is inside network %q's own subnet", listen, rec.Name)
		}
	}
	if t := f.Config["target_address"]; t != "" {
		if err := checkTarget(rec, listen, t, "config target_address"); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for i, p := range f.Ports {
		field := fmt.Sprintf("ports[%d]", i)
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return errdefs.Invalid("%s.protocol %q is not tcp or udp", field, p.Protocol)
		}
		lp, err := parsePorts(p.ListenPort)
		if err != nil {
			return errdefs.Invalid("%s.listen_port: %v", field, err)
		}
		tp := lp
		if p.TargetPort != "" {
			if tp, err = parsePorts(p.TargetPort); err != nil {
				return errdefs.Invalid("%s.target_port: %v", field, err)
			}
			if len(tp) != 1 && len(tp) != len(lp) {
				return errdefs.Invalid("%s.target_port: %d ports for %d listen ports (give one, or as many)", field, len(tp), len(lp))
			}
		}
		if err := checkTarget(rec, listen, p.TargetAddress, field+".target_address"); err != nil {
			return err
		}
		for _, port := range lp {
			k := p.Protocol + "/" + strconv.Itoa(int(port))
			if seen[k] {
				return errdefs.Conflict("%s.listen_port: %s port %d is forwarded twice", field, p.Protocol, port)
			}
			seen[k] = true
		}
	}
	// The listen address may belong to one forward only, across networks.
	all, err := m.cfg.Store.ListForwards(ctx, "")
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.ListenAddress == f.ListenAddress && o.Network != f.Network {
			return errdefs.Conflict("listen_address %s is already forwarded by network %q", f.ListenAddress, o.Network)
		}
	}
	return nil
}

func checkTarget(rec store.Network, listen netip.Addr, t, field string) error {
	a, err := netip.ParseAddr(t)
	if err != nil {
		return errdefs.Invalid("%s %q is not an IP address", field, t)
	}
	if a.Is4() != listen.Is4() {
		return errdefs.Invalid("%s %s and listen_address %s are not the same IP family", field, a, listen)
	}
	for _, key := range []string{"ipv4.address", "ipv6.address"} {
		if p, ok := subnetOf(rec.Config[key]); ok && p.Masked().Contains(a) {
			return nil
		}
	}
	return errdefs.Invalid("%s %s is not inside network %q's subnets", field, a, rec.Name)
}

// parsePorts reads "80", "80-90" or "80,443,8000-8010".
func parsePorts(s string) ([]uint16, error) {
	if s == "" {
		return nil, fmt.Errorf("no port")
	}
	var out []uint16
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(strings.TrimSpace(part), "-")
		lo, err := strconv.ParseUint(a, 10, 16)
		if err != nil || lo == 0 {
			return nil, fmt.Errorf("%q is not a port (1-65535)", part)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseUint(b, 10, 16); err != nil || hi < lo {
				return nil, fmt.Errorf("%q is not a port range LOW-HIGH", part)
			}
		}
		if len(out)+int(hi-lo) >= 65536 {
			return nil, fmt.Errorf("too many ports")
		}
		for p := lo; p <= hi; p++ {
			out = append(out, uint16(p))
		}
	}
	return out, nil
}

// forwardRules turns a stored forward into DNAT rules: each port rule,
// then the default target for everything else (tcp and udp).
func forwardRules(f Forward) ([]ForwardRule, error) {
	listen, err := netip.ParseAddr(f.ListenAddress)
	if err != nil {
		return nil, err
	}
	owner := "forward/" + f.Network + "/" + f.ListenAddress
	var out []ForwardRule
	for _, p := range f.Ports {
		lp, err := parsePorts(p.ListenPort)
		if err != nil {
			return nil, err
		}
		tp := lp
		if p.TargetPort != "" {
			if tp, err = parsePorts(p.TargetPort); err != nil {
				return nil, err
			}
		}
		t, err := netip.ParseAddr(p.TargetAddress)
		if err != nil {
			return nil, err
		}
		out = append(out, ForwardRule{Owner: owner, Proto: p.Protocol, Listen: listen, ListenPorts: lp, Target: t, TargetPorts: tp})
	}
	if ta := f.Config["target_address"]; ta != "" {
		t, err := netip.ParseAddr(ta)
		if err != nil {
			return nil, err
		}
		for _, proto := range []string{"tcp", "udp"} {
			// No ports: the whole address (the firewall forwards every port).
			out = append(out, ForwardRule{Owner: owner, Proto: proto, Listen: listen, Target: t})
		}
	}
	return out, nil
}

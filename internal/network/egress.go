package network

import (
	"context"
	"maps"
	"net/netip"
	"slices"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// EgressRule sends one instance NIC's outbound web traffic through the
// daemon's egress proxy (credentials of seed 002): the firewall redirects
// TCP 80 and 443 from Sources on Bridge to the proxy and, by Mode,
// refuses the NIC's other direct TCP. The proxy asks EgressInstance
// which instance a source address is.
type EgressRule struct {
	Owner      string // "egress/RUNTIME-ID/DEVICE"
	InstanceID int64
	Bridge     string
	Sources    []netip.Addr
	Mode       string // all | http_https_only
}

// SetEgress sets (nil: removes) the egress rule of one owner, like
// SetMACFilter: before the NIC's link exists, so its first connection is
// already mediated.
func (m *Manager) SetEgress(ctx context.Context, owner string, r *EgressRule) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.egress == nil {
		m.egress = map[string]EgressRule{}
	}
	old, had := m.egress[owner]
	if r == nil {
		if !had {
			return nil
		}
		delete(m.egress, owner)
	} else {
		nr := *r
		nr.Owner = owner
		if err := checkInterfaceName(nr.Bridge); err != nil {
			return errdefs.Invalid("egress of %s: bridge: %v", owner, err)
		}
		if len(nr.Sources) == 0 {
			return errdefs.Invalid("egress of %s: the NIC has no address", owner)
		}
		if nr.Mode != "all" && nr.Mode != "http_https_only" {
			return errdefs.Invalid("egress of %s: mode %q", owner, nr.Mode)
		}
		m.egress[owner] = nr
	}
	if err := m.applyFirewallLocked(ctx); err != nil {
		if had {
			m.egress[owner] = old
		} else {
			delete(m.egress, owner)
		}
		return err
	}
	return nil
}

// EgressInstance returns the store id of the instance whose egress rule
// holds addr.
func (m *Manager) EgressInstance(addr netip.Addr) (int64, bool) {
	addr = addr.Unmap()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.egress {
		if slices.Contains(r.Sources, addr) {
			return r.InstanceID, true
		}
	}
	return 0, false
}

// egressRulesLocked lists the rules by owner.
func (m *Manager) egressRulesLocked() []EgressRule {
	out := make([]EgressRule, 0, len(m.egress))
	for _, o := range slices.Sorted(maps.Keys(m.egress)) {
		out = append(out, m.egress[o])
	}
	return out
}

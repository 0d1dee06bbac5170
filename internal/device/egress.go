package device

import (
	"context"

	"github.com/hangar-dev/hangar/internal/network"
)

// Egress (seed 002's credentials): a bridged NIC of an instance with
// egress on gets an egress rule in the network manager, set before its
// link exists and cleared when the instance stops, like a MAC filter;
// Reattach sets it again after a daemon restart, and the firewall is
// rebuilt whole from these rules. A macvlan NIC has no bridge on the host
// to redirect from: it gets none.

func egressOwner(in Instance, dev string) string { return "egress/" + in.RuntimeID + "/" + dev }

// setEgress gives a NIC its egress rule, or clears it.
func (m *Manager) setEgress(ctx context.Context, in Instance, dev string, nc network.NICConfig) error {
	if in.Egress == "" || nc.Type != network.TypeBridge || len(nc.Addresses) == 0 || m.cfg.Networks == nil {
		return m.clearEgress(ctx, in, dev)
	}
	r := &network.EgressRule{InstanceID: in.ID, Bridge: nc.Bridge, Mode: in.Egress}
	for _, p := range nc.Addresses {
		r.Sources = append(r.Sources, p.Addr())
	}
	return m.cfg.Networks.SetEgress(ctx, egressOwner(in, dev), r)
}

// clearEgress removes a NIC's egress rule; none is no error.
func (m *Manager) clearEgress(ctx context.Context, in Instance, dev string) error {
	if m.cfg.Networks == nil {
		return nil
	}
	return m.cfg.Networks.SetEgress(ctx, egressOwner(in, dev), nil)
}

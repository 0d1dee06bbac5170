package device

import (
	"context"
	"errors"

	"github.com/hangar-dev/hangar/internal/network"
)

// security.mac_filtering: a NIC whose instance may only send from its own
// MAC (volatile.DEV.hwaddr). The network manager holds one filter per NIC
// and folds it into the firewall, keyed by the NIC's host-side link: a
// container's veth end or a VM's tap, the bridge port its frames enter by.
// A filter is set before its link is made and removed after the link is
// gone, so no frame of a filtered NIC ever passes unfiltered; hotplug,
// unplug and a change of the key alone on a running instance (no replug)
// do the same, and Reattach sets it again after a daemon restart.

// nicOwner names a NIC's MAC filter in the network manager.
func nicOwner(in Instance, dev string) string { return "nic/" + in.RuntimeID + "/" + dev }

// macFiltered tells whether a nic device asks for security.mac_filtering.
func macFiltered(d map[string]string) bool { return isTrue(d["security.mac_filtering"]) }

// setMACFilter gives a NIC the filter its device asks for: its MAC on its
// host link, or none.
func (m *Manager) setMACFilter(ctx context.Context, in Instance, dev string, d map[string]string, host, mac string) error {
	if !macFiltered(d) {
		return m.clearMACFilter(ctx, in, dev)
	}
	if m.cfg.Networks == nil {
		return errors.New("security.mac_filtering needs the network manager")
	}
	if mac == "" {
		return errors.New("security.mac_filtering needs the NIC's MAC")
	}
	return m.cfg.Networks.SetMACFilter(ctx, nicOwner(in, dev), &network.MACFilter{HostLink: host, MAC: mac})
}

// clearMACFilter removes a NIC's filter; a NIC without one is no error.
func (m *Manager) clearMACFilter(ctx context.Context, in Instance, dev string) error {
	if m.cfg.Networks == nil {
		return nil
	}
	return m.cfg.Networks.SetMACFilter(ctx, nicOwner(in, dev), nil)
}

// liveNICKeys are the nic keys a running instance takes as they change,
// without a replug of its NIC (LXD's nic_bridged updates them in place).
var liveNICKeys = map[string]bool{"security.mac_filtering": true}

// liveChange tells whether two versions of a nic device differ in live
// keys only.
func liveChange(a, b map[string]string) bool {
	if a["type"] != "nic" || b["type"] != "nic" {
		return false
	}
	for k, v := range a {
		if b[k] != v && !liveNICKeys[k] {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v && !liveNICKeys[k] {
			return false
		}
	}
	return true
}

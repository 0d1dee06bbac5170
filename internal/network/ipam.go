package network

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/netdev"
	"github.com/hangar-dev/hangar/internal/store"
)

// NICRequest asks for what one instance NIC needs on a network.
type NICRequest struct {
	InstanceID int64
	Device     string
	Network    string
	// Hwaddr is the NIC's MAC (volatile.NAME.hwaddr); empty picks one.
	Hwaddr string
	// IPv4 and IPv6 are static addresses the device asks for; empty picks a
	// free one (or keeps the one it held).
	IPv4, IPv6 string
}

// NICConfig is what a NIC gets: where to plug it and how to configure it.
type NICConfig struct {
	Network string
	Type    string // bridge or macvlan
	// Bridge is the link to attach the host side to (bridge networks);
	// Parent the host NIC a macvlan sits on.
	Bridge, Parent string
	Hwaddr         string
	MTU            int
	Addresses      []netip.Prefix
	Gateway4       netip.Addr
	Gateway6       netip.Addr
	Nameservers    []netip.Addr
	SearchDomain   string
}

// Allocate gives an instance NIC its MAC and addresses on a network,
// keeping what it held before (leases survive restarts and stops).
func (m *Manager) Allocate(ctx context.Context, req NICRequest) (NICConfig, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// In the instance's scope: the core calls with its project.
	rec, err := m.network(ctx, req.Network)
	if err != nil {
		return NICConfig{}, err
	}
	hw := req.Hwaddr
	if hw == "" {
		hw = netdev.RandomMAC()
	} else if err := validMAC(hw); err != nil {
		return NICConfig{}, errdefs.Invalid("device %q hwaddr: %v", req.Device, err)
	}
	if rec.Type == TypeMacvlan {
		nc := NICConfig{Network: rec.Name, Type: TypeMacvlan, Parent: rec.Config["parent"], Hwaddr: hw}
		nc.MTU, _ = strconv.Atoi(rec.Config["mtu"])
		for _, s := range []string{req.IPv4, req.IPv6} {
			if s == "" {
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return NICConfig{}, errdefs.Invalid("device %q: %q is not an IP address", req.Device, s)
			}
			nc.Addresses = append(nc.Addresses, netip.PrefixFrom(a, a.BitLen()))
		}
		return nc, nil
	}

	allocs, err := m.cfg.Store.ListAllocations(ctx, rec.Name)
	if err != nil {
		return NICConfig{}, err
	}
	var held *store.Allocation
	taken := map[string]string{} // address or MAC -> instance holding it
	for i, a := range allocs {
		if a.InstanceID == req.InstanceID && a.Device == req.Device {
			held = &allocs[i]
			continue
		}
		for _, v := range []string{a.IPv4, a.IPv6, a.Hwaddr} {
			if v != "" {
				taken[v] = a.Instance
			}
		}
	}
	if req.Hwaddr == "" && held != nil {
		hw = held.Hwaddr
	}
	for try := 0; req.Hwaddr == "" && held == nil && try < 8; try++ {
		// A random MAC another NIC drew already (one in 2^24): draw again.
		if _, ok := taken[hw]; !ok {
			break
		}
		hw = netdev.RandomMAC()
	}
	if who, ok := taken[hw]; ok {
		return NICConfig{}, errdefs.Conflict("device %q hwaddr %s is already used by instance %q on network %q", req.Device, hw, who, rec.Name)
	}
	alloc := store.Allocation{Network: rec.Name, InstanceID: req.InstanceID, Device: req.Device, Hwaddr: hw}
	nc := NICConfig{Network: rec.Name, Type: TypeBridge, Bridge: rec.Name, Hwaddr: hw, SearchDomain: domainOf(rec.Config)}
	nc.MTU, _ = strconv.Atoi(rec.Config["bridge.mtu"])

	if sub, ok := subnetOf(rec.Config["ipv4.address"]); ok {
		prev := ""
		if held != nil {
			prev = held.IPv4
		}
		a, err := pickAddress(4, sub, req.IPv4, prev, taken, req.Device, rec.Name)
		if err != nil {
			return NICConfig{}, err
		}
		alloc.IPv4 = a.String()
		nc.Addresses = append(nc.Addresses, netip.PrefixFrom(a, sub.Bits()))
		nc.Gateway4 = sub.Addr()
		nc.Nameservers = append(nc.Nameservers, sub.Addr())
	} else if req.IPv4 != "" {
		return NICConfig{}, errdefs.Invalid("device %q ipv4.address: network %q has no IPv4 subnet", req.Device, rec.Name)
	}
	if sub, ok := subnetOf(rec.Config["ipv6.address"]); ok {
		prev := ""
		if held != nil {
			prev = held.IPv6
		}
		a, err := pickAddress(6, sub, req.IPv6, prev, taken, req.Device, rec.Name)
		if err != nil {
			return NICConfig{}, err
		}
		if req.IPv6 == "" && prev == "" {
			// SLAAC's address for this MAC: what the guest would pick
			// itself, and unique as the MAC is.
			a = eui64(sub, hw)
			if who, ok := taken[a.String()]; ok {
				return NICConfig{}, errdefs.Conflict("device %q: address %s is already used by instance %q", req.Device, a, who)
			}
		}
		alloc.IPv6 = a.String()
		nc.Addresses = append(nc.Addresses, netip.PrefixFrom(a, sub.Bits()))
		nc.Gateway6 = sub.Addr()
		if len(nc.Nameservers) == 0 {
			nc.Nameservers = append(nc.Nameservers, sub.Addr())
		}
	} else if req.IPv6 != "" {
		return NICConfig{}, errdefs.Invalid("device %q ipv6.address: network %q has no IPv6 subnet", req.Device, rec.Name)
	}
	if rec.Config["dns.mode"] == "none" {
		nc.Nameservers = nil
	}
	// held carries the instance's name, joined in by the store, which
	// alloc has not: compared with it, every start of an instance would
	// rewrite its allocation and reload the DNS server for nothing.
	if held != nil {
		alloc.Instance = held.Instance
	}
	if held == nil || *held != alloc {
		alloc.Instance = ""
		if err := m.cfg.Store.PutAllocation(ctx, alloc); err != nil {
			if errors.Is(err, errdefs.ErrConflict) {
				return NICConfig{}, errdefs.Conflict("device %q: its address or MAC was just taken on network %q; try again", req.Device, rec.Name)
			}
			return NICConfig{}, err
		}
		if err := m.refreshDNSLocked(ctx, rec.Name); err != nil {
			m.cfg.Log.Warn("update dns hosts", "network", rec.Name, "err", err)
		}
	}
	return nc, nil
}

// pickAddress returns the static address asked for (checked), else the one
// held before, else the lowest free one after the gateway.
func pickAddress(fam int, sub netip.Prefix, want, prev string, taken map[string]string, dev, network string) (netip.Addr, error) {
	key := fmt.Sprintf("ipv%d.address", fam)
	if want != "" {
		a, err := netip.ParseAddr(want)
		if err != nil || (fam == 4) != a.Is4() {
			return netip.Addr{}, errdefs.Invalid("device %q %s: %q is not an IPv%d address", dev, key, want, fam)
		}
		switch {
		case !sub.Contains(a):
			return netip.Addr{}, errdefs.Invalid("device %q %s: %s is outside network %q's subnet %s", dev, key, a, network, sub.Masked())
		case a == sub.Addr():
			return netip.Addr{}, errdefs.Invalid("device %q %s: %s is the network's gateway", dev, key, a)
		case a == sub.Masked().Addr() || fam == 4 && a == lastAddr(sub):
			return netip.Addr{}, errdefs.Invalid("device %q %s: %s is the subnet's network or broadcast address", dev, key, a)
		}
		if who, ok := taken[a.String()]; ok {
			return netip.Addr{}, errdefs.Conflict("device %q %s: %s is already used by instance %q", dev, key, a, who)
		}
		return a, nil
	}
	if p, err := netip.ParseAddr(prev); err == nil && sub.Contains(p) {
		return p, nil
	}
	if fam == 6 {
		return netip.Addr{}, nil // the caller derives it from the MAC
	}
	last := lastAddr(sub)
	for a := sub.Masked().Addr().Next(); a.Less(last); a = a.Next() {
		if a == sub.Addr() {
			continue
		}
		if _, ok := taken[a.String()]; !ok {
			return a, nil
		}
	}
	return netip.Addr{}, errdefs.Conflict("device %q: network %q has no free IPv4 address left in %s", dev, network, sub.Masked())
}

// eui64 is the SLAAC address of a MAC in a /64.
func eui64(sub netip.Prefix, mac string) netip.Addr {
	hw, _ := net.ParseMAC(mac)
	b := sub.Masked().Addr().As16()
	if len(hw) == 6 {
		b[8], b[9], b[10] = hw[0]^2, hw[1], hw[2]
		b[11], b[12] = 0xff, 0xfe
		b[13], b[14], b[15] = hw[3], hw[4], hw[5]
	}
	return netip.AddrFrom16(b)
}

// Release frees what an instance's NIC held.
func (m *Manager) Release(ctx context.Context, instanceID int64, device string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	allocs, err := m.cfg.Store.ListAllocations(ctx, "")
	if err != nil {
		return err
	}
	for _, a := range allocs {
		if a.InstanceID != instanceID || a.Device != device {
			continue
		}
		if err := m.cfg.Store.DeleteAllocation(ctx, instanceID, device); err != nil {
			return err
		}
		return m.refreshDNSLocked(ctx, a.Network)
	}
	return nil
}

// Allocations lists what instance NICs hold (on one network, or all).
func (m *Manager) Allocations(ctx context.Context, network string) ([]store.Allocation, error) {
	return m.cfg.Store.ListAllocations(ctx, network)
}

// stableMAC is a MAC in LXD's prefix derived from a name.
func stableMAC(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	s := h.Sum32()
	return fmt.Sprintf("00:16:3e:%02x:%02x:%02x", byte(s>>16), byte(s>>8), byte(s))
}

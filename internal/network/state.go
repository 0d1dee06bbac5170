package network

import (
	"context"
	"github.com/hangar-dev/hangar/internal/auth"
	"net/netip"
	"sort"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// State is a network's live interface state.
func (m *Manager) State(ctx context.Context, name string) (Interface, error) {
	if _, err := m.Get(ctx, name); err != nil {
		return Interface{}, err
	}
	ifaces, err := m.cfg.Host.Interfaces()
	if err != nil {
		return Interface{}, err
	}
	for _, i := range ifaces {
		if i.Name == name {
			return i, nil
		}
	}
	return Interface{}, errdefs.NotFound("network %q has no interface on the host", name)
}

// Lease is one address handed out on a network.
type Lease struct {
	Hostname string
	Hwaddr   string
	Address  string
	Type     string // static (reserved by hangard) or dynamic (given by DHCP)
	Expires  time.Time
}

// Leases lists a managed bridge's leases: every NIC's reserved addresses,
// then what the DHCP server gave to others.
func (m *Manager) Leases(ctx context.Context, name string) ([]Lease, error) {
	if err := m.allow(ctx, name, auth.CanView); err != nil {
		return nil, err
	}
	rec, err := m.network(ctx, name)
	if err != nil {
		return nil, m.notManaged(ctx, name, err)
	}
	allocs, err := m.cfg.Store.ListAllocations(ctx, rec.Name)
	if err != nil {
		return nil, err
	}
	out := []Lease{}
	macs := map[string]bool{}
	for _, a := range allocs {
		macs[a.Hwaddr] = true
		for _, ip := range []string{a.IPv4, a.IPv6} {
			if ip != "" {
				out = append(out, Lease{Hostname: a.Instance, Hwaddr: a.Hwaddr, Address: ip, Type: "static"})
			}
		}
	}
	m.mu.Lock()
	d := m.dns[rec.Name]
	m.mu.Unlock()
	if d != nil {
		dyn, err := d.Leases()
		if err != nil {
			return nil, err
		}
		for _, l := range dyn {
			if macs[l.MAC] {
				continue
			}
			out = append(out, Lease{Hostname: l.Hostname, Hwaddr: l.MAC, Address: l.Address.String(), Type: "dynamic", Expires: l.Expires})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, _ := netip.ParseAddr(out[i].Address)
		b, _ := netip.ParseAddr(out[j].Address)
		return a.Less(b)
	})
	return out, nil
}

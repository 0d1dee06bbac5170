package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/hangar-dev/hangar/internal/device"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/egress"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/netdev"
	"github.com/hangar-dev/hangar/internal/network"
	"github.com/hangar-dev/hangar/internal/network/dnsmasq"
	"github.com/hangar-dev/hangar/internal/network/firewall"
	"github.com/hangar-dev/hangar/internal/proxy"
	"github.com/hangar-dev/hangar/internal/store"
)

// networking is the daemon's network stack: managed networks and the
// devices that plug instances into them.
type networking struct {
	host     *netdev.Host
	fw       *firewall.Firewall
	networks *network.Manager
	devices  *device.Manager
	egress   *egressProxy
}

// newNetworking opens the host's links and firewall and builds the
// managers; users names who uses a network (the instance service, set
// once it exists).
func newNetworking(dataDir string, st *store.Store, users func(ctx context.Context, name string) ([]string, error), authz network.Authorizer, volumes device.Volumes, events network.Emitter, egressPolicy func(ctx context.Context, id int64) (egress.Policy, bool, error), log *slog.Logger) (*networking, error) {
	host, err := netdev.Open()
	if err != nil {
		return nil, fmt.Errorf("network links: %w", err)
	}
	fw, err := firewall.New()
	if err != nil {
		host.Close()
		return nil, fmt.Errorf("firewall: %w", err)
	}
	n := &networking{host: host, fw: fw}
	fwState := &firewallState{fw: fw}
	dnsLog := log.With("component", "dnsmasq")
	n.networks = network.New(network.Config{
		Store:    st,
		Dir:      filepath.Join(dataDir, "networks"),
		Host:     hostNet{host, fw},
		Firewall: fwState,
		StartDNS: func(ctx context.Context, c network.DNSConfig, hosts []network.DNSHost) (network.DNSServer, error) {
			return startDNS(ctx, c, hosts, dnsLog)
		},
		Users:      users,
		Authorizer: authz,
		Events:     events,
		Log:        log.With("component", "network"),
		// The instances' devices report their proxies and MAC filters
		// during recovery; the daemon calls Recovered after it.
		HoldFirewall: true,
	})
	fwdLog := log.With("component", "proxy")
	n.devices = device.New(device.Config{
		Dir:      filepath.Join(dataDir, "netns"),
		Networks: n.networks,
		Links:    links{host},
		Forwarders: func(ctx context.Context, listen, connect, netns string) (device.Forwarder, error) {
			l, c, err := proxy.ParsePair(listen, connect)
			if err != nil {
				return nil, err
			}
			return proxy.Start(ctx, l, c, netns, fwdLog)
		},
		Volumes: volumes,
		Log:     log.With("component", "device"),
	})
	// The proxy's port goes into the egress rules; none are applied
	// before Recovered, by which time it is set.
	if n.egress, err = startEgress(dataDir, egressResolver{networks: n.networks, policy: egressPolicy},
		log.With("component", "egress")); err != nil {
		n.Close()
		return nil, err
	}
	fwState.proxyPort = n.egress.port
	return n, nil
}

// Close stops the DNS servers; links and rules stay for the instances
// that keep running.
func (n *networking) Close() error {
	err := errors.Join(n.egress.Close(), n.networks.Close(), n.devices.Close())
	n.fw.Close()
	n.host.Close()
	return err
}

// ensureDefaultNIC gives the default profile LXD's eth0 on the default
// bridge, unless it has a device of that name.
func ensureDefaultNIC(ctx context.Context, svc *instance.Service) error {
	return addDefaultDevice(ctx, svc, "eth0", map[string]string{"type": "nic", "network": network.DefaultBridge, "name": "eth0"},
		func(map[string]string) bool { return false })
}

// hostNet is netdev (and the firewall's sysctls) as the network manager
// sees the host.
type hostNet struct {
	h  *netdev.Host
	fw *firewall.Firewall
}

func (n hostNet) EnsureBridge(name string, mtu int, hwaddr string, addrs []netip.Prefix) error {
	return n.h.EnsureBridge(netdev.Bridge{Name: name, MTU: mtu, Hwaddr: hwaddr, Addresses: addrs})
}

func (n hostNet) DeleteLink(name string) error { return n.h.DeleteLink(name) }

func (n hostNet) UsedPrefixes() ([]netip.Prefix, error) { return n.h.UsedPrefixes() }

func (n hostNet) EnableForwarding(family int) error {
	return n.fw.EnableForwarding(family == 4, family == 6)
}

func (n hostNet) Interfaces() ([]network.Interface, error) {
	ifaces, err := n.h.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]network.Interface, 0, len(ifaces))
	for _, i := range ifaces {
		ni := network.Interface{Name: i.Name, Type: i.Type, Up: i.Up, MTU: i.MTU, Hwaddr: i.Hwaddr, Members: i.Members,
			Counters: network.Counters{
				BytesReceived: int64(i.Counters.BytesReceived), BytesSent: int64(i.Counters.BytesSent),
				PacketsReceived: int64(i.Counters.PacketsReceived), PacketsSent: int64(i.Counters.PacketsSent),
			}}
		for _, a := range i.Addresses {
			ni.Addresses = append(ni.Addresses, network.Address{Family: a.Family(), Address: a.Prefix.Addr().String(),
				Netmask: fmt.Sprint(a.Prefix.Bits()), Scope: a.Scope})
		}
		out = append(out, ni)
	}
	return out, nil
}

// firewallState translates the manager's rules for package firewall.
type firewallState struct {
	fw        *firewall.Firewall
	proxyPort uint16 // the egress proxy's; 0 before it listens
}

func (f *firewallState) Remove() error { return f.fw.Remove() }

func (f *firewallState) Apply(st network.FirewallState) error {
	var out firewall.State
	for _, b := range st.Bridges {
		out.Networks = append(out.Networks, firewall.Network{Bridge: b.Bridge, IPv4: b.IPv4, IPv6: b.IPv6, NAT4: b.NAT4, NAT6: b.NAT6})
	}
	for _, r := range st.Forwards {
		out.Forwards = append(out.Forwards, forwardRules(r)...)
	}
	for _, m := range st.MACFilters {
		hw, err := net.ParseMAC(m.MAC)
		if err != nil {
			return fmt.Errorf("mac filter of %s: %w", m.Owner, err)
		}
		// The comment only names the owner: a long device name is cut
		// rather than failing the whole table.
		comment := m.Owner[:min(len(m.Owner), 128)]
		out.MACFilters = append(out.MACFilters, firewall.MACFilter{HostLink: m.HostLink, MAC: hw, Comment: comment})
	}
	for _, e := range st.Egress {
		if f.proxyPort == 0 {
			return fmt.Errorf("egress of %s: the egress proxy is not listening", e.Owner)
		}
		out.Egress = append(out.Egress, firewall.Egress{Bridge: e.Bridge, Sources: e.Sources, ProxyPort: f.proxyPort,
			Mode: firewall.EgressMode(e.Mode), Comment: e.Owner[:min(len(e.Owner), 128)]})
	}
	return f.fw.Apply(out)
}

// forwardRules splits a rule's port lists into runs of consecutive ports
// (firewall ranges); no ports forwards every port.
func forwardRules(r network.ForwardRule) []firewall.Forward {
	base := firewall.Forward{Proto: firewall.Proto(r.Proto), Listen: r.Listen, Target: r.Target, Comment: r.Owner}
	if len(r.ListenPorts) == 0 {
		base.ListenPorts, base.TargetPorts = firewall.PortRange(1, 65535), firewall.PortRange(1, 65535)
		return []firewall.Forward{base}
	}
	var out []firewall.Forward
	for i := 0; i < len(r.ListenPorts); {
		j := i + 1
		for j < len(r.ListenPorts) && r.ListenPorts[j] == r.ListenPorts[j-1]+1 &&
			(len(r.TargetPorts) == 1 || r.TargetPorts[j] == r.TargetPorts[j-1]+1) {
			j++
		}
		f := base
		f.ListenPorts = firewall.PortRange(r.ListenPorts[i], r.ListenPorts[j-1])
		if len(r.TargetPorts) == 1 {
			f.TargetPorts = firewall.Port(r.TargetPorts[0])
		} else {
			f.TargetPorts = firewall.PortRange(r.TargetPorts[i], r.TargetPorts[j-1])
		}
		out = append(out, f)
		i = j
	}
	return out
}

// startDNS runs one bridge's dnsmasq.
func startDNS(ctx context.Context, c network.DNSConfig, hosts []network.DNSHost, log *slog.Logger) (network.DNSServer, error) {
	cfg := dnsmasq.Config{Bridge: c.Bridge, Dir: c.Dir, IPv4: c.IPv4, DHCPv4: c.DHCPv4, DHCPv4Ranges: c.DHCPv4Ranges,
		IPv6: c.IPv6, DHCPv6: c.DHCPv6, RA: c.IPv6.IsValid(), DNS: c.DNS, Domain: c.Domain, MTU: c.MTU}
	s, err := dnsmasq.Start(ctx, cfg, dnsHosts(hosts), log)
	if err != nil {
		return nil, err
	}
	return dnsServer{s}, nil
}

func dnsHosts(hosts []network.DNSHost) []dnsmasq.Host {
	out := make([]dnsmasq.Host, len(hosts))
	for i, h := range hosts {
		out[i] = dnsmasq.Host{Name: h.Name, MAC: h.MAC, IPv4: h.IPv4, IPv6: h.IPv6}
	}
	return out
}

type dnsServer struct{ s *dnsmasq.Server }

func (d dnsServer) SetHosts(hosts []network.DNSHost) error { return d.s.SetHosts(dnsHosts(hosts)) }
func (d dnsServer) Stop() error                            { return d.s.Stop() }
func (d dnsServer) Leases() ([]network.DNSLease, error) {
	ls, err := d.s.Leases()
	if err != nil {
		return nil, err
	}
	out := make([]network.DNSLease, len(ls))
	for i, l := range ls {
		out[i] = network.DNSLease{Hostname: l.Hostname, MAC: l.MAC, Address: l.Address, Expires: l.Expires}
	}
	return out, nil
}

// links is netdev as the device layer makes instance NICs.
type links struct{ h *netdev.Host }

func (l links) CreateNetNS(path string) error { return netdev.CreateNetNS(path) }
func (l links) DeleteNetNS(path string) error { return netdev.DeleteNetNS(path) }
func (l links) CreateUserNetNS(netns, userns string, m driver.IDMap) error {
	return netdev.CreateUserNetNS(netns, userns, netdev.IDMap{HostID: m.HostID, Size: m.Size})
}
func (l links) DeleteLink(name string) error { return l.h.DeleteLink(name) }
func (l links) DeleteLinkInNetNS(netns, name string) error {
	return netdev.DeleteLinkInNetNS(netns, name)
}
func (l links) CreateTap(name, bridge string, mtu int) error {
	return l.h.CreateTap(name, bridge, mtu)
}
func (l links) CreateMacvtap(name, parent, hwaddr string, mtu int) (int, error) {
	return l.h.CreateMacvtap(name, parent, hwaddr, mtu)
}
func (l links) DeleteLimits(host string) error { return l.h.DeleteLimits(host) }
func (l links) SetNeighbors(bridge, mac string, addrs []netip.Prefix) error {
	return l.h.SetNeighbors(bridge, mac, addrs)
}
func (l links) PinNeighbors(bridge, mac string, addrs []netip.Prefix) error {
	return l.h.PinNeighbors(bridge, mac, addrs)
}
func (l links) UnpinNeighbors(bridge, mac string, addrs []netip.Prefix) error {
	return l.h.UnpinNeighbors(bridge, mac, addrs)
}
func (l links) SetLimits(host string, ingress, egress uint64) error {
	return l.h.SetLimits(host, ingress, egress)
}

func (l links) AddNIC(k device.Link) error {
	nic := netdev.NIC{NetNS: k.NetNS, Name: k.Name, Hwaddr: k.Hwaddr, MTU: k.MTU, Addresses: k.Addresses, Gateway4: k.Gateway4, Gateway6: k.Gateway6}
	if k.Kind == "macvlan" {
		return l.h.AddMacvlan(k.Parent, nic)
	}
	return l.h.AddVeth(netdev.Veth{HostName: k.HostName, Bridge: k.Bridge, NIC: nic})
}

package network

import (
	"context"
	"net/netip"
	"time"
)

// HostNet is what the manager asks of the host's links (package netdev).
type HostNet interface {
	// EnsureBridge makes the bridge exist, up, with exactly addrs.
	EnsureBridge(name string, mtu int, hwaddr string, addrs []netip.Prefix) error
	// DeleteLink removes a link; an absent one is not an error.
	DeleteLink(name string) error
	// Interfaces lists the host's interfaces.
	Interfaces() ([]Interface, error)
	// UsedPrefixes are the host's routes and addresses, to pick subnets
	// that collide with nothing.
	UsedPrefixes() ([]netip.Prefix, error)
	// EnableForwarding turns on IP forwarding for a family (4 or 6).
	EnableForwarding(family int) error
}

// Firewall is the one nftables table of hangard's (package firewall).
type Firewall interface {
	Apply(FirewallState) error
	Remove() error
}

// FirewallState is the whole of the firewall: rebuilt from records.
type FirewallState struct {
	Bridges    []BridgeRules
	Forwards   []ForwardRule
	MACFilters []MACFilter
	Egress     []EgressRule
}

// MACFilter is security.mac_filtering on one NIC: what enters its bridge
// from HostLink (a container's veth end, a VM's tap) must come from MAC,
// in its Ethernet header and in its ARP and neighbour discovery.
type MACFilter struct {
	Owner    string // "nic/RUNTIME-ID/DEVICE"
	HostLink string
	MAC      string // xx:xx:xx:xx:xx:xx
}

// BridgeRules are a managed bridge's rules: NAT for its subnets, DHCP and
// DNS accepted from it, forwarding to and from it.
type BridgeRules struct {
	Bridge string
	// IPv4 and IPv6 are the bridge's addresses with their subnet's prefix.
	IPv4, IPv6 netip.Prefix
	NAT4, NAT6 bool
}

// ForwardRule is one DNAT: traffic to Listen on ListenPorts goes to
// Target on TargetPorts (one port, or as many as ListenPorts).
type ForwardRule struct {
	Owner       string
	Proto       string
	Listen      netip.Addr // unspecified: any local address
	ListenPorts []uint16
	Target      netip.Addr
	TargetPorts []uint16
}

// DNSServer is the DHCP and DNS server of one bridge (package dnsmasq).
type DNSServer interface {
	SetHosts([]DNSHost) error
	Leases() ([]DNSLease, error)
	Stop() error
}

// DNSConfig is what a bridge's DNS server serves.
type DNSConfig struct {
	Bridge       string
	Dir          string
	IPv4, IPv6   netip.Prefix
	DHCPv4       bool
	DHCPv4Ranges [][2]netip.Addr
	DHCPv6       bool
	DNS          bool
	Domain       string
	MTU          int
}

// DNSHost is one NIC's entry: its name resolves and its MAC gets its
// addresses by DHCP.
type DNSHost struct {
	Name       string
	MAC        string
	IPv4, IPv6 netip.Addr
}

// DNSLease is one lease the DHCP server handed out.
type DNSLease struct {
	Hostname string
	MAC      string
	Address  netip.Addr
	Expires  time.Time
}

// DNSStarter starts (or restarts) the DNS server of one bridge.
type DNSStarter func(ctx context.Context, cfg DNSConfig, hosts []DNSHost) (DNSServer, error)

// Interface is one network interface of the host (or of an instance).
type Interface struct {
	Name      string
	Type      string // LXD's names: loopback, bridge, physical, macvlan, vlan, bond, unknown
	Up        bool
	MTU       int
	Hwaddr    string
	Addresses []Address
	Counters  Counters
	// Members are a bridge's ports.
	Members []string
}

// Address is one address of an interface.
type Address struct {
	Family  string // inet, inet6
	Address string
	Netmask string // the prefix length
	Scope   string // global, link, local
}

// Counters are an interface's traffic counters.
type Counters struct {
	BytesReceived, BytesSent, PacketsReceived, PacketsSent int64
}

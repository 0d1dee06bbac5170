package firewall

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// State is everything hangard wants of the host's firewall. Apply makes the
// `inet hangar` and `bridge hangar` tables exactly this; the zero State
// means no table at all.
type State struct {
	Networks   []Network
	Forwards   []Forward
	MACFilters []MACFilter
	Egress     []Egress
}

// MACFilter is security.mac_filtering on one instance NIC: what enters a
// bridge from HostLink (a container's veth host end, a VM's tap) must come
// from MAC, in its Ethernet header, in the sender field of its ARP, and in
// the link-layer address option of its IPv6 neighbour discovery; anything
// else is dropped before the bridge learns or forwards it.
type MACFilter struct {
	HostLink string           // the bridge port the instance's frames enter by
	MAC      net.HardwareAddr // the instance's own MAC (volatile.DEV.hwaddr)
	Comment  string           // who asked for it: the rules' nft comment, up to 128 bytes
}

// Network is a managed bridge: its instances' traffic is accepted in and
// out of it, DHCP and DNS to the host are accepted from it, and with NAT4
// or NAT6 what leaves the host from its subnet through any other interface
// is masqueraded.
type Network struct {
	Bridge string       // the bridge's interface name
	IPv4   netip.Prefix // the bridge's address and subnet (10.0.3.1/24); zero = no IPv4
	IPv6   netip.Prefix // the same for IPv6; zero = no IPv6
	NAT4   bool         // masquerade the IPv4 subnet's outbound traffic
	NAT6   bool         // masquerade the IPv6 subnet's outbound traffic
}

// Proto is a forward's transport protocol.
type Proto string

// The protocols a forward can carry.
const (
	TCP Proto = "tcp"
	UDP Proto = "udp"
)

// Ports is one port (Last 0 or equal to First) or the range First-Last.
type Ports struct {
	First, Last uint16
}

// Port returns the single port p.
func Port(p uint16) Ports { return Ports{First: p} }

// PortRange returns the ports first to last, both included.
func PortRange(first, last uint16) Ports { return Ports{First: first, Last: last} }

func (p Ports) last() uint16 {
	if p.Last == 0 {
		return p.First
	}
	return p.Last
}

// count is how many ports p holds (an int: 1-65535 needs 17 bits).
func (p Ports) count() int { return int(p.last()) - int(p.First) + 1 }

func (p Ports) String() string {
	if p.count() == 1 {
		return fmt.Sprint(p.First)
	}
	return fmt.Sprintf("%d-%d", p.First, p.last())
}

// Forward sends what reaches Listen on ListenPorts to Target on
// TargetPorts (DNAT), from outside the host and from the host itself.
// TargetPorts holds as many ports as ListenPorts (the n-th maps to the
// n-th) or one port (all of ListenPorts go to it).
type Forward struct {
	Proto       Proto
	Listen      netip.Addr // zero or unspecified (0.0.0.0, ::): every local address of the host except loopback
	ListenPorts Ports
	Target      netip.Addr // same family as Listen
	TargetPorts Ports
	Comment     string // who asked for it ("c1/proxy0"): the rule's nft comment, up to 128 bytes
}

// maxComment is what `nft` itself allows in a rule comment.
const maxComment = 128

// family is 4 or 6.
func (fw Forward) family() int {
	if fw.Target.Is4() {
		return 4
	}
	return 6
}

// anyListen tells whether fw listens on every local address.
func (fw Forward) anyListen() bool { return !fw.Listen.IsValid() || fw.Listen.IsUnspecified() }

// validate checks st and returns it normalised: 4-in-6 addresses unmapped,
// prefixes masked to their subnet. It never touches the kernel, so a bad
// State changes nothing.
func (st State) validate() (State, error) {
	out := State{
		Networks:   make([]Network, len(st.Networks)),
		Forwards:   make([]Forward, len(st.Forwards)),
		MACFilters: make([]MACFilter, len(st.MACFilters)),
		Egress:     make([]Egress, len(st.Egress)),
	}
	bridges := make(map[string]bool, len(st.Networks))
	for i, n := range st.Networks {
		what := fmt.Sprintf("network %d (%q)", i, n.Bridge)
		if err := validIfname(n.Bridge); err != nil {
			return State{}, errdefs.Invalid("%s: bridge: %v", what, err)
		}
		if bridges[n.Bridge] {
			return State{}, errdefs.Invalid("%s: bridge %q is listed twice", what, n.Bridge)
		}
		bridges[n.Bridge] = true
		if n.IPv4.IsValid() {
			if !n.IPv4.Addr().Is4() {
				return State{}, errdefs.Invalid("%s: ipv4 %s is not an IPv4 prefix", what, n.IPv4)
			}
			n.IPv4 = n.IPv4.Masked()
		}
		if n.IPv6.IsValid() {
			if !n.IPv6.Addr().Is6() || n.IPv6.Addr().Is4In6() {
				return State{}, errdefs.Invalid("%s: ipv6 %s is not an IPv6 prefix", what, n.IPv6)
			}
			n.IPv6 = n.IPv6.Masked()
		}
		if n.NAT4 && !n.IPv4.IsValid() {
			return State{}, errdefs.Invalid("%s: nat4 needs an ipv4 prefix", what)
		}
		if n.NAT6 && !n.IPv6.IsValid() {
			return State{}, errdefs.Invalid("%s: nat6 needs an ipv6 prefix", what)
		}
		for j, o := range out.Networks[:i] {
			if n.IPv4.IsValid() && o.IPv4.IsValid() && n.IPv4.Overlaps(o.IPv4) {
				return State{}, errdefs.Conflict("%s: ipv4 %s overlaps network %d (%q) %s", what, n.IPv4, j, o.Bridge, o.IPv4)
			}
			if n.IPv6.IsValid() && o.IPv6.IsValid() && n.IPv6.Overlaps(o.IPv6) {
				return State{}, errdefs.Conflict("%s: ipv6 %s overlaps network %d (%q) %s", what, n.IPv6, j, o.Bridge, o.IPv6)
			}
		}
		out.Networks[i] = n
	}
	for i, fw := range st.Forwards {
		what := fmt.Sprintf("forward %d", i)
		if fw.Comment != "" {
			what = fmt.Sprintf("forward %d (%q)", i, fw.Comment)
		}
		fw, err := fw.normalise()
		if err != nil {
			return State{}, fmt.Errorf("%s: %w", what, err)
		}
		for j, o := range out.Forwards[:i] {
			if fw.overlaps(o) {
				return State{}, errdefs.Conflict("%s: %s %s port %s is already forwarded by forward %d (%q)",
					what, fw.Proto, listenString(fw), fw.ListenPorts, j, o.Comment)
			}
		}
		out.Forwards[i] = fw
	}
	links := make(map[string]int, len(st.MACFilters))
	for i, mf := range st.MACFilters {
		what := fmt.Sprintf("mac filter %d (%q)", i, mf.HostLink)
		if err := validIfname(mf.HostLink); err != nil {
			return State{}, errdefs.Invalid("%s: host link: %v", what, err)
		}
		if j, dup := links[mf.HostLink]; dup {
			// Two owners claiming one port: which MAC it may send
			// from would depend on the order.
			return State{}, errdefs.Conflict("%s: host link %q is already filtered by mac filter %d (%q)",
				what, mf.HostLink, j, st.MACFilters[j].Comment)
		}
		links[mf.HostLink] = i
		switch {
		case len(mf.MAC) != 6:
			return State{}, errdefs.Invalid("%s: mac %q is not an Ethernet address", what, mf.MAC.String())
		case mf.MAC[0]&1 != 0:
			return State{}, errdefs.Invalid("%s: mac %s is a multicast address", what, mf.MAC)
		case bytes.Equal(mf.MAC, make(net.HardwareAddr, 6)):
			return State{}, errdefs.Invalid("%s: mac %s is the zero address", what, mf.MAC)
		}
		if len(mf.Comment) > maxComment || strings.ContainsRune(mf.Comment, 0) {
			return State{}, errdefs.Invalid("%s: comment: at most %d bytes and no NUL", what, maxComment)
		}
		mf.MAC = bytes.Clone(mf.MAC)
		out.MACFilters[i] = mf
	}
	sources := map[netip.Addr]int{}
	for i, e := range st.Egress {
		what := fmt.Sprintf("egress %d (%q)", i, e.Comment)
		e, err := e.normalise()
		if err != nil {
			return State{}, fmt.Errorf("%s: %w", what, err)
		}
		for _, a := range e.Sources {
			if j, dup := sources[a]; dup && j != i {
				// The proxy tells instances apart by source address.
				return State{}, errdefs.Conflict("%s: source %s is already egress %d's (%q)", what, a, j, st.Egress[j].Comment)
			}
			sources[a] = i
		}
		out.Egress[i] = e
	}
	return out, nil
}

func (fw Forward) normalise() (Forward, error) {
	if fw.Proto != TCP && fw.Proto != UDP {
		return fw, errdefs.Invalid("protocol %q: want tcp or udp", fw.Proto)
	}
	if len(fw.Comment) > maxComment || strings.ContainsRune(fw.Comment, 0) {
		return fw, errdefs.Invalid("comment: at most %d bytes and no NUL", maxComment)
	}
	fw.Target = fw.Target.Unmap()
	switch t := fw.Target; {
	case !t.IsValid():
		return fw, errdefs.Invalid("target: an address is needed")
	case t.Zone() != "":
		return fw, errdefs.Invalid("target %s: no zone allowed", t)
	case t.IsUnspecified(), t.IsLoopback(), t.IsMulticast():
		// The kernel routes no DNAT to loopback (route_localnet aside):
		// the daemon's own forwarder serves that case.
		return fw, errdefs.Invalid("target %s: want a unicast, non-loopback address", t)
	}
	if fw.Listen.IsValid() {
		fw.Listen = fw.Listen.Unmap()
		switch l := fw.Listen; {
		case l.Is4() != fw.Target.Is4():
			return fw, errdefs.Invalid("listen %s and target %s: not the same address family", l, fw.Target)
		case l.Zone() != "":
			return fw, errdefs.Invalid("listen %s: no zone allowed", l)
		case l.IsLoopback(), l.IsMulticast():
			return fw, errdefs.Invalid("listen %s: want a unicast, non-loopback address", l)
		}
	}
	if err := fw.ListenPorts.valid(); err != nil {
		return fw, errdefs.Invalid("listen ports %s: %v", fw.ListenPorts, err)
	}
	if err := fw.TargetPorts.valid(); err != nil {
		return fw, errdefs.Invalid("target ports %s: %v", fw.TargetPorts, err)
	}
	if n := fw.TargetPorts.count(); n != 1 && n != fw.ListenPorts.count() {
		return fw, errdefs.Invalid("target ports %s: %d ports for %d listen ports (want as many, or one)",
			fw.TargetPorts, n, fw.ListenPorts.count())
	}
	fw.ListenPorts.Last = fw.ListenPorts.last()
	fw.TargetPorts.Last = fw.TargetPorts.last()
	return fw, nil
}

func (p Ports) valid() error {
	if p.First == 0 {
		return fmt.Errorf("port 0 is not allowed")
	}
	if p.Last != 0 && p.Last < p.First {
		return fmt.Errorf("range ends before it starts")
	}
	return nil
}

// overlaps tells whether fw and o would both match some packet. An any
// address overlaps every address of its family: which of two rules wins
// must never depend on their order.
func (fw Forward) overlaps(o Forward) bool {
	if fw.Proto != o.Proto || fw.family() != o.family() {
		return false
	}
	if !fw.anyListen() && !o.anyListen() && fw.Listen != o.Listen {
		return false
	}
	return fw.ListenPorts.First <= o.ListenPorts.last() && o.ListenPorts.First <= fw.ListenPorts.last()
}

func listenString(fw Forward) string {
	if fw.anyListen() {
		return "any address"
	}
	return fw.Listen.String()
}

// validIfname mirrors the kernel's dev_valid_name.
func validIfname(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("a name is needed")
	case len(name) > 15:
		return fmt.Errorf("%q is longer than 15 bytes", name)
	case name == "." || name == "..", strings.ContainsAny(name, "/: \t\n\r\v\f\x00"):
		return fmt.Errorf("%q is not a valid interface name", name)
	}
	return nil
}

package autostandby

import (
	"context"
	"net/netip"
)

// TCP states of a conntrack entry (the kernel's enum tcp_conntrack).
const (
	TCPNone        uint8 = 0
	TCPSynSent     uint8 = 1
	TCPSynRecv     uint8 = 2
	TCPEstablished uint8 = 3
	TCPFinWait     uint8 = 4
	TCPCloseWait   uint8 = 5
	TCPLastAck     uint8 = 6
	TCPTimeWait    uint8 = 7
	TCPClose       uint8 = 8
	TCPSynSent2    uint8 = 9
)

// Tuple is one direction of a connection.
type Tuple struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}

// Flow is one TCP conntrack entry. Orig is the direction the first
// packet went (the client's view: to a forward's listen address before
// DNAT); Reply is the answer's, so Reply.Src is the real destination
// after DNAT and Reply.SrcPort its port.
type Flow struct {
	Orig, Reply Tuple
	State       uint8
}

// Conntrack reads the host's TCP connection tracking table: one dump of
// every entry, IPv4 and IPv6. NetlinkConntrack is the real one.
type Conntrack interface {
	TCPFlows(ctx context.Context) ([]Flow, error)
}

// live tells whether the state counts as activity: a connection being
// set up or open. One closing (FIN_WAIT and after) keeps nothing awake.
func live(state uint8) bool {
	switch state {
	case TCPSynSent, TCPSynRecv, TCPEstablished, TCPSynSent2:
		return true
	}
	return false
}

// inboundTo tells whether f is a connection into an instance with
// addresses addrs: after DNAT its destination (the reply's source) is
// one of them, and its client (the original source) is not the instance
// itself (a connection the instance makes to itself through a forward's
// hairpin is not a visitor).
func inboundTo(f Flow, addrs []netip.Addr) bool {
	dst, src := f.Reply.Src.Unmap(), f.Orig.Src.Unmap()
	hit := false
	for _, a := range addrs {
		if a == src {
			return false
		}
		if a == dst {
			hit = true
		}
	}
	return hit
}

// qualifies tells whether f keeps the instance awake under p: inbound,
// live, and neither to an ignored port nor from an ignored network. The
// port is the instance's (after DNAT: the reply's source port), the
// client the original source.
func (p Policy) qualifies(f Flow, addrs []netip.Addr) bool {
	return live(f.State) && inboundTo(f, addrs) && !p.ignored(f.Orig.Src, f.Reply.SrcPort)
}

// wakes tells whether f is a client knocking at a standby instance: a
// SYN that got no answer (the instance's address has nobody behind it)
// and would qualify. A stale established entry of a connection from
// before the standby does not wake it.
func (p Policy) wakes(f Flow, addrs []netip.Addr) bool {
	return (f.State == TCPSynSent || f.State == TCPSynSent2) && inboundTo(f, addrs) && !p.ignored(f.Orig.Src, f.Reply.SrcPort)
}

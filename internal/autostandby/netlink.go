package autostandby

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetlinkConntrack dumps the conntrack table of the network namespace of
// its handle over netlink (NETLINK_NETFILTER): no conntrack binary, no
// /proc parsing.
type NetlinkConntrack struct {
	// Handle is in the namespace to read; nil reads the daemon's own.
	Handle *netlink.Handle
}

// TCPFlows dumps the table once per family and keeps the TCP entries. An
// interrupted dump (the table changed under it) is retried once, then
// used as it is: a missing entry costs at most one tick.
func (n NetlinkConntrack) TCPFlows(ctx context.Context) ([]Flow, error) {
	h := n.Handle
	if h == nil {
		h = &netlink.Handle{}
	}
	var out []Flow
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		flows, err := h.ConntrackTableList(netlink.ConntrackTable, fam)
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			flows, err = h.ConntrackTableList(netlink.ConntrackTable, fam)
		}
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, fmt.Errorf("conntrack dump (family %d): %w", fam, err)
		}
		for _, f := range flows {
			if f.Forward.Protocol != unix.IPPROTO_TCP {
				continue
			}
			fl := Flow{Orig: tuple(f.Forward), Reply: tuple(f.Reverse)}
			if tcp, ok := f.ProtoInfo.(*netlink.ProtoInfoTCP); ok {
				fl.State = tcp.State
			}
			out = append(out, fl)
		}
	}
	return out, nil
}

func tuple(t netlink.IPTuple) Tuple {
	return Tuple{Src: addr(t.SrcIP), Dst: addr(t.DstIP), SrcPort: t.SrcPort, DstPort: t.DstPort}
}

func addr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

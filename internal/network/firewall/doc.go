// Package firewall is hangard's packet filter: nftables over netlink
// (github.com/google/nftables), never the nft or iptables commands.
//
// # What it owns
//
// One table, `inet hangar`, in one network namespace (the daemon's, or
// one a test made). It owns that table entirely and nothing else: it never
// lists, changes or flushes another table, chain or rule, and never the
// whole ruleset. The caller hands Apply the complete State it wants
// (managed networks and port forwards); Apply rebuilds the table from it.
// There is no incremental add or delete, so there is nothing to leak or
// duplicate: after a `kill -9` the daemon applies its recorded State again
// at start and the table is exactly that.
//
// # The table
//
// Base chains, each made only when it has a rule, all with policy accept:
//
//	prerouting   nat    dstnat (-100)  forwards: DNAT of traffic from outside
//	output       nat    dstnat (-100)  forwards: DNAT of the host's own connections
//	postrouting  nat    srcnat (100)   masquerade a NAT subnet leaving by another
//	                                   interface to another address; hairpin
//	                                   (DNATed traffic going back out its own
//	                                   bridge, source in its subnet)
//	input        filter filter (0)     accept DNS (udp/tcp 53), DHCPv4 (udp 67),
//	                                   DHCPv6 (udp 547) from each bridge
//	forward      filter filter (0)     accept traffic in from and out to each bridge
//
// A forward on the unspecified address matches `fib daddr type local`
// (every address of the host) minus loopback: a DNAT of 127.0.0.1 to an
// instance leaves with a loopback source, which the kernel drops, so
// loopback listeners are the daemon's own forwarder's job. Port ranges
// mapped one to one use anonymous maps (`dnat ip to 10.0.0.2 : tcp dport
// map { 8080 : 80, ... }`), one per 1024 ports. A rule's comment is the
// Forward's Comment, so `nft list table inet hangar` says who owns it.
//
// The accepts cannot override another table: in nftables a packet dropped
// by any base chain is dropped, so on a host whose own firewall drops
// forwarded traffic (a forward chain with policy drop elsewhere) the
// administrator has to let the bridges through there. Hangar does not
// touch other tables to do it for them.
//
// # Invariants
//
//   - Every change is one netlink batch: [add table, delete table, add
//     table, chains, sets, rules], committed by the kernel whole or not at
//     all. A packet sees the old table or the new one.
//   - A State is validated before anything is sent; bad input returns an
//     errdefs error (ErrInvalidArgument; ErrConflict for a port forwarded
//     twice or overlapping subnets) and leaves the kernel as it was.
//   - Apply(State{}) and Remove both leave no `inet hangar` table.
//
// IP forwarding (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding) is
// the kernel's switch, not a rule: EnableForwarding turns it on in the
// firewall's namespace when the caller says a network needs it, and
// nothing here turns it off.
//
// Hairpin to the very instance that connects (c1 reaching its own forward
// through the host's address) also needs hairpin mode on its bridge port
// when br_netfilter is on: the DNAT then happens in the bridge and the
// frame goes back out the port it came in. That is the NIC layer's to set.
// Conntrack entries of a removed forward keep translating their flow
// until they expire; Apply does not flush conntrack.
//
// No on-disk state: the kernel holds the table, the caller holds the State.
package firewall

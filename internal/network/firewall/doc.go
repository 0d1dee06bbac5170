// Package firewall is hangard's packet filter: nftables over netlink
// (github.com/google/nftables), never the nft or iptables commands.
//
// # What it owns
//
// Two tables, `inet hangar` and `bridge hangar`, in one network namespace
// (the daemon's, or one a test made). It owns those tables entirely and
// nothing else: it never lists, changes or flushes another table, chain or
// rule, and never the whole ruleset. The caller hands Apply the complete
// State it wants (managed networks, port forwards, MAC filters); Apply
// rebuilds both tables from it. There is no incremental add or delete, so
// there is nothing to leak or duplicate: after a `kill -9` the daemon
// applies its recorded State again at start and the tables are exactly
// that.
//
// # The inet table
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
// # The bridge table: MAC filters
//
// A NIC with security.mac_filtering may only send from its own MAC. Its
// host-side link (a container's veth end, a VM's tap) is a port of a
// bridge, and what enters a bridge from a port passes the bridge family's
// hooks; no br_netfilter is needed. One base chain and a chain per port:
//
//	prerouting   filter hook prerouting, priority filter (-200):
//	             iifname vmap @ports (map ports: "hgr…" : jump mac-hgr…)
//	mac-LINK     ether saddr != MAC drop
//	             arp saddr ether != MAC drop
//	             ICMPv6 router and neighbour solicitations whose source
//	             link-layer option, and neighbour advertisements whose
//	             target link-layer option, is not MAC: drop
//
// The same checks as LXD's (lxd/firewall/drivers/drivers_nftables_
// templates.go), in prerouting rather than its input and forward: a forged
// frame is dropped before the bridge learns its source address, so it can
// not steal another instance's traffic through the forwarding database
// either. The map makes it one hash lookup per frame however many ports
// are filtered; frames from other ports match nothing and go on. Each
// rule's comment is the filter's Comment (its owner).
//
// # Egress: the egress proxy's redirects
//
// An Egress entry (an instance NIC with egress on: seed 002's credentials)
// adds, in the inet table and ahead of every other rule of its chain:
//
//	prerouting  iifname BRIDGE ip[6] saddr SRC tcp dport 80|443
//	            redirect to :PROXYPORT   (the bridge's own address)
//	forward     mode all: iifname BRIDGE saddr SRC tcp ct state new
//	            reject with tcp reset (every routed TCP connection)
//	            mode http_https_only: the same for dport 80 and 443 only
//	input       mode all: the same to the host itself, except DNS (53) and
//	            what the redirect made (ct status dnat)
//	input       once per proxy port: tcp dport PROXYPORT without ct status
//	            dnat: drop (the proxy listens on every address; only a
//	            redirect may reach it)
//
// Our reading of the seed's modes: "all" rejects direct, non-mediated
// TCP egress, so everything but the mediated 80/443 (and DNS to the
// host) is refused; "http_https_only" rejects direct egress only on 80
// and 443, which the redirect already sends to the proxy, so its refusal
// only catches connections that predate the redirect. UDP is not
// touched in either mode. Traffic between instances on the same bridge
// is bridged, not routed, and is not filtered here. Two entries may not
// share a source address (ErrConflict): the proxy tells instances apart
// by it.
//
// # Invariants
//
//   - Every change is one netlink batch: [add and delete each table, add
//     the tables with rules, their chains, sets, rules], committed by the
//     kernel whole or not at all. A packet sees the old tables or the new.
//   - A State is validated before anything is sent; bad input returns an
//     errdefs error (ErrInvalidArgument; ErrConflict for a port forwarded
//     twice, overlapping subnets or a link filtered twice) and leaves the
//     kernel as it was.
//   - A table exists only while the State has rules for it;
//     Apply(State{}) and Remove both leave neither table.
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
// No on-disk state: the kernel holds the tables, the caller the State.
package firewall

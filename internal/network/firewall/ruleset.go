package firewall

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The base chains of the inet table, in the order they are created. A
// chain is made only when some rule goes into it, so a State with forwards
// alone hooks nothing into the filter path.
const (
	chainPrerouting  = "prerouting"  // DNAT of forwards, traffic from outside
	chainOutput      = "output"      // DNAT of forwards, traffic from the host itself
	chainPostrouting = "postrouting" // masquerade: outbound NAT and hairpin
	chainInput       = "input"       // DHCP and DNS from the bridges to the host
	chainForward     = "forward"     // traffic through the bridges
)

// chainSpec is a chain to make; a nil hook makes a regular chain, reached
// only by a jump.
type chainSpec struct {
	name     string
	typ      nftables.ChainType
	hook     *nftables.ChainHook
	priority *nftables.ChainPriority
}

var chainSpecs = []chainSpec{
	{chainPrerouting, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest},
	{chainOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest},
	{chainPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource},
	{chainInput, nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter},
	{chainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter},
}

// rule is one rule of a table before it is sent. set, when not nil, is
// the set or map it reads; lookup is the expression that reads it, given
// the set's name and batch id when the batch is made.
type rule struct {
	chain   string
	exprs   []expr.Any
	comment string
	set     *ruleSet
	lookup  *expr.Lookup
}

// ruleSet is a set or map made with its rule: anonymous (bound to the
// rule, gone with it) unless it has a name.
type ruleSet struct {
	name      string // "": anonymous
	isMap     bool
	key, data nftables.SetDatatype
	elems     []nftables.SetElement
}

// maxMapPorts bounds the elements of one port map: a netlink attribute
// holds at most 64 KiB, so a long range is cut into several rules.
const maxMapPorts = 1024

// tablePlan is one table as it is sent: the chains it may hold, in the
// order they are made (a chain without rules is not made), and its rules.
type tablePlan struct {
	table  *nftables.Table
	chains []chainSpec
	rules  []rule
}

// build turns a validated State into both tables' plans. It is pure: the
// same State gives the same rules. Both tables are always listed, so that
// one with no rules is deleted.
func build(st State) []tablePlan {
	return []tablePlan{
		{table: inetTable, chains: chainSpecs, rules: buildInet(st)},
		{table: bridgeTable, chains: bridgeChains(st.MACFilters), rules: macFilterRules(st.MACFilters)},
	}
}

// buildInet turns a validated State into the inet table's rules, in chain
// order.
func buildInet(st State) []rule {
	// Egress first: an instance's web traffic goes to the proxy whatever
	// forward would match, and its refusals come before the accepts.
	pre, fwd, in := egressRules(st.Egress)
	var post []rule
	for _, n := range st.Networks {
		post = append(post, masqueradeRules(n)...)
		in = append(in, serviceRules(n)...)
		fwd = append(fwd,
			rule{chain: chainForward, exprs: join(ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, n.Bridge), accept())},
			rule{chain: chainForward, exprs: join(ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, n.Bridge), accept())},
		)
	}
	for _, fw := range st.Forwards {
		pre = append(pre, dnatRules(fw)...)
	}
	// The same DNAT rules serve the host's own connections in output.
	// Each gets its own copy: an anonymous map binds to one rule.
	out := make([]rule, 0, len(pre))
	for _, fw := range st.Forwards {
		for _, r := range dnatRules(fw) {
			r.chain = chainOutput
			out = append(out, r)
		}
	}
	return join(pre, out, post, in, fwd)
}

// masqueradeRules: outbound NAT for the subnet leaving through any other
// interface to any other address, and hairpin NAT. A forward whose client
// sits on the same bridge as its target (an instance reaching another, or
// itself, through the host's listen address) would get its reply straight
// over the bridge from the target's own address and drop it; masquerading
// DNATed traffic that goes back out the bridge it belongs to makes the
// reply come back through the host, where conntrack undoes both
// translations. (With br_netfilter the DNAT happens in the bridge and the
// frame is bridged, but the hook still sees the bridge as the output.)
func masqueradeRules(n Network) []rule {
	var rs []rule
	for _, p := range []struct {
		prefix netip.Prefix
		nat    bool
	}{{n.IPv4, n.NAT4}, {n.IPv6, n.NAT6}} {
		if !p.prefix.IsValid() {
			continue
		}
		if p.nat {
			// Traffic to the subnet itself is never masqueraded,
			// whatever interface it leaves by.
			rs = append(rs, rule{chain: chainPostrouting, exprs: join(
				saddrIn(p.prefix),
				addrIn(p.prefix, false, expr.CmpOpNeq),
				ifname(unix.NFT_META_OIFNAME, expr.CmpOpNeq, n.Bridge),
				[]expr.Any{&expr.Masq{}},
			)})
		}
		rs = append(rs, rule{chain: chainPostrouting, exprs: join(
			ctStatus(ipsDstNAT),
			ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, n.Bridge),
			saddrIn(p.prefix),
			[]expr.Any{&expr.Masq{}},
		)})
	}
	return rs
}

// serviceRules accept what dnsmasq serves on the bridge: DNS on udp and
// tcp 53, DHCPv4 on udp 67 and DHCPv6 on udp 547.
func serviceRules(n Network) []rule {
	udp := []uint16{53}
	if n.IPv4.IsValid() {
		udp = append(udp, 67)
	}
	if n.IPv6.IsValid() {
		udp = append(udp, 547)
	}
	set := &ruleSet{key: nftables.TypeInetService}
	for _, p := range udp {
		set.elems = append(set.elems, nftables.SetElement{Key: binaryutil.BigEndian.PutUint16(p)})
	}
	lookup := &expr.Lookup{SourceRegister: 1}
	return []rule{
		{chain: chainInput, set: set, lookup: lookup, exprs: join(
			ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, n.Bridge),
			l4proto(unix.IPPROTO_UDP),
			dport(), []expr.Any{lookup},
			accept(),
		)},
		{chain: chainInput, exprs: join(
			ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, n.Bridge),
			l4proto(unix.IPPROTO_TCP),
			dport(), cmpReg(expr.CmpOpEq, port(53)),
			accept(),
		)},
	}
}

// dnatRules match fw's listen side and DNAT to its target. Port ranges
// mapped one to one (8080-8089 -> 80-89) go through an anonymous map,
// cut in pieces of maxMapPorts; a range onto one port, a single port and
// a range onto the same range need no map.
func dnatRules(fw Forward) []rule {
	var match []expr.Any
	fam := byte(unix.NFPROTO_IPV4)
	loopback := []byte{127} // the first byte: 127.0.0.0/8
	daddrOff, addrLen := uint32(16), uint32(4)
	if fw.family() == 6 {
		fam = unix.NFPROTO_IPV6
		loopback = netip.IPv6Loopback().AsSlice()
		daddrOff, addrLen = 24, 16
	}
	match = append(match, nfproto(fam)...)
	if fw.anyListen() {
		// Every local address but loopback: a DNAT from 127.0.0.1 to an
		// instance would leave with a loopback source and be dropped.
		match = append(match,
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: daddrOff, Len: uint32(len(loopback))},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: loopback},
		)
	} else {
		match = append(match,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: daddrOff, Len: addrLen},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: fw.Listen.AsSlice()},
		)
	}
	proto := byte(unix.IPPROTO_TCP)
	if fw.Proto == UDP {
		proto = unix.IPPROTO_UDP
	}
	match = append(match, l4proto(proto)...)

	target := &expr.Immediate{Register: 1, Data: fw.Target.AsSlice()}
	nat := func(withPort bool) *expr.NAT {
		n := &expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(fam), RegAddrMin: 1}
		if withPort {
			n.RegProtoMin = 2
		}
		return n
	}
	lp, tp := fw.ListenPorts, fw.TargetPorts
	switch {
	case tp.count() == 1 || lp == tp:
		// One target port, or the same ports: no map. Same ranges keep
		// each packet's port, so the port is left alone.
		rs := rule{chain: chainPrerouting, comment: fw.Comment, exprs: join(match, dport(), portMatch(lp), []expr.Any{target})}
		if lp.count() > 1 && lp == tp {
			rs.exprs = append(rs.exprs, nat(false))
		} else {
			rs.exprs = append(rs.exprs, &expr.Immediate{Register: 2, Data: port(tp.First)}, nat(true))
		}
		return []rule{rs}
	default:
		var rs []rule
		for first := int(lp.First); first <= int(lp.Last); first += maxMapPorts {
			last := min(first+maxMapPorts-1, int(lp.Last))
			piece := Ports{First: uint16(first), Last: uint16(last)}
			set := &ruleSet{isMap: true, key: nftables.TypeInetService, data: nftables.TypeInetService}
			for p := first; p <= last; p++ {
				to := int(tp.First) + p - int(lp.First)
				set.elems = append(set.elems, nftables.SetElement{Key: port(uint16(p)), Val: port(uint16(to))})
			}
			lookup := &expr.Lookup{SourceRegister: 2, DestRegister: 2, IsDestRegSet: true}
			rs = append(rs, rule{chain: chainPrerouting, comment: fw.Comment, set: set, lookup: lookup, exprs: join(
				match, dport(), portMatch(piece),
				[]expr.Any{
					target,
					&expr.Payload{DestRegister: 2, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
					lookup,
					nat(true),
				},
			)})
		}
		return rs
	}
}

func join[T any](parts ...[]T) []T {
	var n int
	for _, p := range parts {
		n += len(p)
	}
	out := make([]T, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func cmpReg(op expr.CmpOp, data []byte) []expr.Any {
	return []expr.Any{&expr.Cmp{Op: op, Register: 1, Data: data}}
}

func port(p uint16) []byte { return binaryutil.BigEndian.PutUint16(p) }

func accept() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}} }

func nfproto(fam byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam}},
	}
}

func l4proto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// dport loads the transport header's destination port (tcp and udp alike)
// into register 1.
func dport() []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}}
}

// portMatch compares register 1 with p: equal, or within the range
// (big-endian bytes compare in numeric order).
func portMatch(p Ports) []expr.Any {
	if p.count() == 1 {
		return cmpReg(expr.CmpOpEq, port(p.First))
	}
	return []expr.Any{
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: port(p.First)},
		&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: port(p.Last)},
	}
}

// ifname compares the input or output interface's name: the kernel
// compares IFNAMSIZ bytes, NUL padded.
func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifnameBytes(name)},
	}
}

// saddrIn matches the source address against prefix (family check
// included, as an inet table sees both).
func saddrIn(p netip.Prefix) []expr.Any {
	fam := byte(unix.NFPROTO_IPV4)
	if p.Addr().Is6() {
		fam = unix.NFPROTO_IPV6
	}
	return join(nfproto(fam), addrIn(p, true, expr.CmpOpEq))
}

// addrIn compares the source (or destination) address, masked to the
// prefix's length, with the prefix: op Eq is "in", Neq "not in". The
// caller has checked the family.
func addrIn(p netip.Prefix, source bool, op expr.CmpOp) []expr.Any {
	addr := p.Addr().AsSlice()
	off := uint32(12) // IPv4 saddr; daddr follows it
	if p.Addr().Is6() {
		off = 8
	}
	if !source {
		off += uint32(len(addr))
	}
	m := make([]byte, len(addr))
	for i := range p.Bits() {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(len(addr))},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(addr)), Mask: m, Xor: make([]byte, len(addr))},
		&expr.Cmp{Op: op, Register: 1, Data: addr},
	}
}

// ipsDstNAT is IPS_DST_NAT of linux/netfilter/nf_conntrack_common.h: the
// connection was DNATed.
const ipsDstNAT = 1 << 5

// ctStatus matches connections whose conntrack status has bit set.
func ctStatus(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bit), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

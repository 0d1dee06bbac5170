package firewall

import (
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The bridge table's chains. Frames a bridge receives from its ports pass
// the bridge family's hooks whether or not br_netfilter is loaded; its
// prerouting hook comes before the bridge learns the source address or
// picks a port, so a dropped frame neither reaches anyone (host or
// neighbour) nor teaches the bridge a forged MAC.
const (
	chainBridgePrerouting = "prerouting"
	macChainPrefix        = "mac-" // + the host link: one chain per filtered port
	// portsMap is the verdict map from filtered port to its chain, named
	// so that `nft list map bridge hangar ports` shows who is filtered.
	portsMap = "ports"
)

// bridgePriorityFilter is the bridge family's filter priority
// (NF_BR_PRI_FILTER_BRIDGED), what `nft` calls "filter" there.
var bridgePriorityFilter = nftables.ChainPriorityRef(-200)

// macChain names the chain of one filtered port.
func macChain(hostLink string) string { return macChainPrefix + hostLink }

// bridgeChains are the bridge table's chains for filters: the base chain
// first, then a regular chain per port.
func bridgeChains(filters []MACFilter) []chainSpec {
	specs := []chainSpec{{chainBridgePrerouting, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, bridgePriorityFilter}}
	for _, f := range filters {
		specs = append(specs, chainSpec{name: macChain(f.HostLink)})
	}
	return specs
}

// ICMPv6 neighbour discovery messages that carry a link-layer address,
// and where their first option starts in the ICMPv6 message.
const (
	icmpv6RouterSolicit   = 133
	icmpv6NeighborSolicit = 135
	icmpv6NeighborAdvert  = 136

	ndOptSourceLLAddr = 1
	ndOptTargetLLAddr = 2
)

// macFilterRules turn the filters into the bridge table's rules: one
// lookup in prerouting sends a frame from a filtered port to that port's
// chain (a verdict map on the input interface: one hash lookup per frame
// however many ports are filtered), which drops it when it claims another
// MAC than the port's instance has:
//
//	ether saddr != MAC drop
//	ether type arp, ARP sender hardware address != MAC: drop
//	ether type ip6, ICMPv6 router or neighbour solicitation whose first
//	  option is a source link-layer address != MAC: drop
//	ether type ip6, ICMPv6 neighbour advertisement whose first option is
//	  a target link-layer address != MAC: drop
//
// The ARP and NDP checks stop an instance that sends from its own MAC
// from teaching its neighbours' caches another one. Like LXD, they read
// the first NDP option only, where Linux and other stacks put it.
func macFilterRules(filters []MACFilter) []rule {
	if len(filters) == 0 {
		return nil
	}
	vmap := &ruleSet{name: portsMap, isMap: true, key: nftables.TypeIFName, data: nftables.TypeVerdict}
	var ports []rule
	for _, f := range filters {
		chain := macChain(f.HostLink)
		vmap.elems = append(vmap.elems, nftables.SetElement{
			Key:         ifnameBytes(f.HostLink),
			VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: chain},
		})
		mac := []byte(f.MAC)
		drop := []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
		ports = append(ports,
			rule{chain: chain, comment: f.Comment, exprs: join(
				linkPayload(6, 6), cmpReg(expr.CmpOpNeq, mac), drop)},
			rule{chain: chain, comment: f.Comment, exprs: join(
				etherType(unix.ETH_P_ARP),
				[]expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 6}},
				cmpReg(expr.CmpOpNeq, mac), drop)},
			ndRule(chain, f.Comment, icmpv6RouterSolicit, 8, ndOptSourceLLAddr, mac),
			ndRule(chain, f.Comment, icmpv6NeighborSolicit, 24, ndOptSourceLLAddr, mac),
			ndRule(chain, f.Comment, icmpv6NeighborAdvert, 24, ndOptTargetLLAddr, mac),
		)
	}
	lookup := &expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true}
	dispatch := rule{chain: chainBridgePrerouting, set: vmap, lookup: lookup, exprs: join(
		[]expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}},
		[]expr.Any{lookup},
	)}
	return append([]rule{dispatch}, ports...)
}

// ndRule drops an ICMPv6 message of type typ whose first option (at
// optOff in the message) is of kind opt and holds another address than
// mac. A message too short to hold it does not match: the load fails.
func ndRule(chain, comment string, typ byte, optOff uint32, opt byte, mac []byte) rule {
	return rule{chain: chain, comment: comment, exprs: join(
		etherType(unix.ETH_P_IPV6),
		l4proto(unix.IPPROTO_ICMPV6),
		thPayload(0, 1), cmpReg(expr.CmpOpEq, []byte{typ}),
		thPayload(optOff, 1), cmpReg(expr.CmpOpEq, []byte{opt}),
		thPayload(optOff+2, 6), cmpReg(expr.CmpOpNeq, mac),
		[]expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}},
	)}
}

// etherType matches the Ethernet header's type field.
func etherType(typ uint16) []expr.Any {
	return join(linkPayload(12, 2), cmpReg(expr.CmpOpEq, binaryutil.BigEndian.PutUint16(typ)))
}

// linkPayload loads len bytes at off in the Ethernet header into register 1.
func linkPayload(off, n uint32) []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: off, Len: n}}
}

// thPayload loads n bytes at off in the transport header into register 1.
func thPayload(off, n uint32) []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: n}}
}

// ifnameBytes is an interface name as the kernel compares it: IFNAMSIZ
// bytes, NUL padded.
func ifnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

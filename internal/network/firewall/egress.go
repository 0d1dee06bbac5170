package firewall

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// EgressMode is how much of an instance's direct TCP egress is refused
// once its web traffic goes through the egress proxy.
type EgressMode string

// The egress modes.
const (
	// EgressAll refuses every new TCP connection the instance opens to
	// anything but the proxy (and DNS on the host): through the host to
	// any other interface or bridge, and to the host itself.
	EgressAll EgressMode = "all"
	// EgressHTTPOnly refuses direct TCP 80 and 443 only; those are
	// redirected to the proxy anyway, the refusal covers connections
	// that existed before the redirect.
	EgressHTTPOnly EgressMode = "http_https_only"
)

// Egress sends one instance's outbound TCP 80 and 443 to the egress
// proxy: a redirect (DNAT to the bridge's own address) to ProxyPort,
// matched on the bridge the instance's NIC is on and its addresses there.
type Egress struct {
	Bridge    string
	Sources   []netip.Addr // the instance's addresses on Bridge
	ProxyPort uint16       // where the proxy listens on the host (every address)
	Mode      EgressMode
	Comment   string // the owner: the rules' nft comment, up to 128 bytes
}

// egressPorts are the ports redirected to the proxy.
var egressPorts = []uint16{80, 443}

func (e Egress) normalise() (Egress, error) {
	if err := validIfname(e.Bridge); err != nil {
		return e, errdefs.Invalid("bridge: %v", err)
	}
	if len(e.Sources) == 0 {
		return e, errdefs.Invalid("no source address")
	}
	srcs := make([]netip.Addr, len(e.Sources))
	for i, a := range e.Sources {
		a = a.Unmap()
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" {
			return e, errdefs.Invalid("source %v: want a unicast address", e.Sources[i])
		}
		srcs[i] = a
	}
	e.Sources = srcs
	if e.ProxyPort == 0 {
		return e, errdefs.Invalid("proxy port 0")
	}
	switch e.Mode {
	case "":
		e.Mode = EgressAll
	case EgressAll, EgressHTTPOnly:
	default:
		return e, errdefs.Invalid("mode %q: want %s or %s", e.Mode, EgressAll, EgressHTTPOnly)
	}
	if len(e.Comment) > maxComment || strings.ContainsRune(e.Comment, 0) {
		return e, errdefs.Invalid("comment: at most %d bytes and no NUL", maxComment)
	}
	return e, nil
}

// egressRules are the redirects (prerouting), the refusals (forward and
// input, ahead of the bridges' accepts) and, once per proxy port, a drop
// of connections to the proxy that no redirect made: the proxy listens on
// every address, so it must only be reachable through the redirect.
func egressRules(es []Egress) (pre, fwd, in []rule) {
	ports := map[uint16]bool{}
	for _, e := range es {
		for _, src := range e.Sources {
			match := join(
				ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, e.Bridge),
				saddrIn(netip.PrefixFrom(src, src.BitLen())),
				l4proto(unix.IPPROTO_TCP),
			)
			for _, p := range egressPorts {
				pre = append(pre, rule{chain: chainPrerouting, comment: e.Comment, exprs: join(match,
					dport(), cmpReg(expr.CmpOpEq, port(p)),
					[]expr.Any{
						&expr.Immediate{Register: 1, Data: port(e.ProxyPort)},
						&expr.Redir{RegisterProtoMin: 1},
					})})
			}
			reject := []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}
			switch e.Mode {
			case EgressAll:
				fwd = append(fwd, rule{chain: chainForward, comment: e.Comment, exprs: join(match, ctNew(), reject)})
				// To the host: what the redirect made and DNS stay open.
				in = append(in, rule{chain: chainInput, comment: e.Comment, exprs: join(match, ctNew(),
					ctStatusClear(ipsDstNAT), dport(), cmpReg(expr.CmpOpNeq, port(53)), reject)})
			case EgressHTTPOnly:
				for _, p := range egressPorts {
					fwd = append(fwd, rule{chain: chainForward, comment: e.Comment, exprs: join(match, ctNew(),
						dport(), cmpReg(expr.CmpOpEq, port(p)), reject)})
				}
			}
		}
		if !ports[e.ProxyPort] {
			ports[e.ProxyPort] = true
			in = append(in, rule{chain: chainInput, comment: fmt.Sprintf("egress proxy %d", e.ProxyPort), exprs: join(
				l4proto(unix.IPPROTO_TCP), dport(), cmpReg(expr.CmpOpEq, port(e.ProxyPort)),
				ctStatusClear(ipsDstNAT),
				[]expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}},
			)})
		}
	}
	return pre, fwd, in
}

// ctNew matches the first packet of a connection.
func ctNew() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(expr.CtStateBitNEW), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// ctStatusClear matches connections whose conntrack status lacks bit.
func ctStatusClear(bit uint32) []expr.Any {
	m := ctStatus(bit)
	m[len(m)-1] = &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)}
	return m
}

func nativeU32(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }

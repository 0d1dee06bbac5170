package autostandby

import (
	"net/netip"
	"testing"
)

// flow builds a TCP entry: client -> listen (the original direction)
// answered by server -> client (after DNAT the server is not listen).
func flow(client string, cport uint16, listen string, lport uint16, server string, sport uint16, state uint8) Flow {
	c, l, s := netip.MustParseAddr(client), netip.MustParseAddr(listen), netip.MustParseAddr(server)
	return Flow{Orig: Tuple{Src: c, Dst: l, SrcPort: cport, DstPort: lport},
		Reply: Tuple{Src: s, Dst: c, SrcPort: sport, DstPort: cport}, State: state}
}

func TestClassify(t *testing.T) {
	vm := []netip.Addr{netip.MustParseAddr("10.99.0.5"), netip.MustParseAddr("fd42::5")}
	none := Policy{}
	ignore := Policy{IgnorePorts: []uint16{22}, IgnoreCIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	for _, tc := range []struct {
		name            string
		pol             Policy
		f               Flow
		qualifies, wake bool
	}{
		{"direct established", none, flow("10.99.0.1", 40000, "10.99.0.5", 80, "10.99.0.5", 80, TCPEstablished), true, false},
		{"DNAT forward established", none, flow("203.0.113.9", 40000, "198.51.100.1", 8080, "10.99.0.5", 80, TCPEstablished), true, false},
		{"DNAT forward SYN unanswered", none, flow("203.0.113.9", 40000, "198.51.100.1", 8080, "10.99.0.5", 80, TCPSynSent), true, true},
		{"SYN_SENT2", none, flow("203.0.113.9", 40000, "10.99.0.5", 80, "10.99.0.5", 80, TCPSynSent2), true, true},
		{"SYN_RECV", none, flow("203.0.113.9", 40000, "10.99.0.5", 80, "10.99.0.5", 80, TCPSynRecv), true, false},
		{"IPv6", none, flow("fd42::1", 40000, "fd42::5", 443, "fd42::5", 443, TCPEstablished), true, false},
		{"IPv4-mapped client", none, flow("::ffff:203.0.113.9", 1, "::ffff:10.99.0.5", 80, "::ffff:10.99.0.5", 80, TCPEstablished), true, false},
		{"outbound from the VM", none, flow("10.99.0.5", 40000, "93.184.216.34", 443, "93.184.216.34", 443, TCPEstablished), false, false},
		{"VM to itself through a forward (hairpin)", none, flow("10.99.0.5", 40000, "198.51.100.1", 8080, "10.99.0.5", 80, TCPEstablished), false, false},
		{"another instance", none, flow("10.99.0.1", 40000, "10.99.0.6", 80, "10.99.0.6", 80, TCPEstablished), false, false},
		{"to the listen address but not DNAT'd to the VM", none, flow("203.0.113.9", 40000, "10.99.0.5", 80, "127.0.0.1", 80, TCPEstablished), false, false},
		{"closing", none, flow("10.99.0.1", 40000, "10.99.0.5", 80, "10.99.0.5", 80, TCPFinWait), false, false},
		{"time wait", none, flow("10.99.0.1", 40000, "10.99.0.5", 80, "10.99.0.5", 80, TCPTimeWait), false, false},
		{"close", none, flow("10.99.0.1", 40000, "10.99.0.5", 80, "10.99.0.5", 80, TCPClose), false, false},
		{"ignored port (the VM's, after DNAT)", ignore, flow("203.0.113.9", 40000, "198.51.100.1", 2222, "10.99.0.5", 22, TCPEstablished), false, false},
		{"listen port equal to an ignored one does not count", ignore, flow("203.0.113.9", 40000, "198.51.100.1", 22, "10.99.0.5", 80, TCPEstablished), true, false},
		{"ignored source", ignore, flow("192.0.2.7", 40000, "10.99.0.5", 80, "10.99.0.5", 80, TCPEstablished), false, false},
		{"ignored source knocks", ignore, flow("192.0.2.7", 40000, "10.99.0.5", 80, "10.99.0.5", 80, TCPSynSent), false, false},
		{"other source", ignore, flow("192.0.3.7", 40000, "10.99.0.5", 80, "10.99.0.5", 80, TCPEstablished), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.pol.qualifies(tc.f, vm); got != tc.qualifies {
				t.Errorf("qualifies = %v, want %v", got, tc.qualifies)
			}
			if got := tc.pol.wakes(tc.f, vm); got != tc.wake {
				t.Errorf("wakes = %v, want %v", got, tc.wake)
			}
		})
	}
	if (Policy{}).qualifies(flow("10.99.0.1", 1, "10.99.0.5", 80, "10.99.0.5", 80, TCPEstablished), nil) {
		t.Error("an instance without addresses has inbound connections")
	}
}

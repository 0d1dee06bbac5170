package main

import (
	"net/netip"
	"testing"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

func TestResolvConf(t *testing.T) {
	ns := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		nics []vmagent.NIC
		want string
	}{
		{"no NICs", nil, ""},
		{"nothing to say", []vmagent.NIC{{Name: "eth0"}}, ""},
		{"one", []vmagent.NIC{{Name: "eth0", Nameservers: ns("10.0.0.1", "fd00::1"), SearchDomain: "hangar"}},
			"# written by hangar-agent\nnameserver 10.0.0.1\nnameserver fd00::1\nsearch hangar\n"},
		{"two, shared server and domain once", []vmagent.NIC{
			{Name: "eth0", Nameservers: ns("10.0.0.1"), SearchDomain: "hangar"},
			{Name: "eth1", Nameservers: ns("10.0.0.1", "10.1.0.1"), SearchDomain: "lab"},
			{Name: "eth2", SearchDomain: "hangar"},
		}, "# written by hangar-agent\nnameserver 10.0.0.1\nnameserver 10.1.0.1\nsearch hangar lab\n"},
		{"search domain alone", []vmagent.NIC{{Name: "eth0", SearchDomain: "hangar"}},
			"# written by hangar-agent\nsearch hangar\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolvConf(tc.nics); got != tc.want {
				t.Fatalf("resolvConf = %q, want %q", got, tc.want)
			}
		})
	}
}

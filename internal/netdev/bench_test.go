package netdev

import (
	cryptorand "crypto/rand"
	"encoding/hex"
	"net/netip"
	"path/filepath"
	"testing"
)

// launchNIC is the NIC of a container launch: on the bridge, both
// families, both default routes.
func launchNIC(ns string) Veth {
	return Veth{HostName: "vethbench", Bridge: "hb0", NIC: NIC{NetNS: ns, Name: "eth0", Hwaddr: "00:16:3e:00:00:99",
		Addresses: []netip.Prefix{pfx("10.99.0.99/24"), pfx("fd99::99/64")},
		Gateway4:  ip("10.99.0.1"), Gateway6: ip("fd99::1")}}
}

// BenchmarkAddVeth is the NIC's share of a container launch (made,
// addressed, routed) and of its stop (deleted).
func BenchmarkAddVeth(b *testing.B) {
	e := newEnv(b)
	e.bridge()
	v := launchNIC(e.netns("c1"))
	for b.Loop() {
		if err := e.host.AddVeth(v); err != nil {
			b.Fatal(err)
		}
		if err := e.host.DeleteLink(v.HostName); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddVethOnly is BenchmarkAddVeth without the delete, which is
// most of it: the kernel waits out an RCU grace period to unregister a
// device.
func BenchmarkAddVethOnly(b *testing.B) {
	e := newEnv(b)
	e.bridge()
	v := launchNIC(e.netns("c1"))
	for b.Loop() {
		if err := e.host.AddVeth(v); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := e.host.DeleteLink(v.HostName); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkLaunchNetwork is all a container's network costs the daemon,
// the way a launch and a stop should do it: namespace made, NIC in it,
// namespace deleted, which takes the veth pair with it in the kernel's
// background (no DeleteLink, no grace period waited for). Each launch has
// a host name of its own, as LXD's random ones are: reusing one could
// find the previous pair still being torn down.
func BenchmarkLaunchNetwork(b *testing.B) {
	e := newEnv(b)
	e.bridge()
	p := filepath.Join(e.dir, "c1")
	v := launchNIC(p)
	for b.Loop() {
		v.HostName = randomDevName("veth")
		if err := CreateNetNS(p); err != nil {
			b.Fatal(err)
		}
		if err := e.host.AddVeth(v); err != nil {
			b.Fatal(err)
		}
		if err := DeleteNetNS(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInterfacesInNetNS is a container's interface list read from
// the host (a state read without a cache).
func BenchmarkInterfacesInNetNS(b *testing.B) {
	e := newEnv(b)
	e.bridge()
	v := launchNIC(e.netns("c1"))
	if err := e.host.AddVeth(v); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := InterfacesInNetNS(v.NetNS); err != nil {
			b.Fatal(err)
		}
	}
}

// randomDevName returns prefix (cut to 7 bytes) and 8 random hex digits,
// as LXD names host sides ("veth" gives "veth3fa1c2d9"): a fresh name of
// at most 15 bytes.
func randomDevName(prefix string) string {
	if len(prefix) > maxNameLen-8 {
		prefix = prefix[:maxNameLen-8]
	}
	var b [4]byte
	_, _ = cryptorand.Read(b[:]) // never fails (crypto/rand)
	return prefix + hex.EncodeToString(b[:])
}

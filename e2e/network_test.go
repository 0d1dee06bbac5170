package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The "internet" of the network tests: a namespace of the test's own,
// joined to the daemon's by a veth; hangard's only uplink.
const (
	uplinkHost     = "192.0.2.1"   // the daemon's end (TEST-NET-1)
	internetServer = "192.0.2.254" // the other end, serving HTTP on :80
)

// internet gives the daemon's namespace an uplink to a second namespace
// that plays the internet, with an HTTP server there that answers with the
// address it saw the request come from. Everything goes with the test.
func internet(t *testing.T, daemonNetns string) string {
	t.Helper()
	far := newNetns(t)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	in := func(ns string, args ...string) { run(append([]string{"nsenter", "--net=" + ns}, args...)...) }
	in(daemonNetns, "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "wan0")
	in(daemonNetns, "ip", "link", "set", "wan0", "netns", far)
	in(daemonNetns, "ip", "addr", "add", uplinkHost+"/24", "dev", "uplink0")
	in(daemonNetns, "ip", "link", "set", "uplink0", "up")
	in(daemonNetns, "ip", "route", "add", "default", "via", internetServer)
	in(far, "ip", "addr", "add", internetServer+"/24", "dev", "wan0")
	in(far, "ip", "link", "set", "wan0", "up")
	l, err := listenIn(far, internetServer+":80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "seen-from=%s\n", host)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return far
}

// startNetDaemon starts hangard in a namespace that has an uplink to the
// test's internet before the daemon first starts (so its default bridge
// picks a subnet around the uplink's).
func startNetDaemon(t *testing.T) *daemon {
	d, _ := startNetDaemonFar(t)
	return d
}

// startNetDaemonFar is startNetDaemon that also returns the internet's
// namespace.
func startNetDaemonFar(t *testing.T) (*daemon, string) {
	t.Helper()
	requireE2E(t)
	ns := newNetns(t)
	far := internet(t, ns)
	return startDaemonIn(t, ns), far
}

// addressOf is an instance's first global address of a family on iface.
func (d *daemon) addressOf(name, iface, family string) string {
	d.t.Helper()
	st, err := d.client().GetInstanceState(context.Background(), name)
	if err != nil {
		d.t.Fatal(err)
	}
	for _, a := range st.Network[iface].Addresses {
		if a.Family == family && a.Scope == "global" {
			return a.Address
		}
	}
	d.t.Fatalf("%s has no global %s address on %s: %+v", name, family, iface, st.Network)
	return ""
}

// inDaemonNetns runs a command in the daemon's network namespace (where
// "the host" of the instances is).
func (d *daemon) inDaemonNetns(args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=" + d.netns}, args...)...).CombinedOutput()
	return string(out), err
}

// httpFrom fetches a URL from inside the daemon's network namespace.
func (d *daemon) httpFrom(url string) (string, error) { return httpIn(d.netns, url) }

// httpIn fetches a URL from inside a network namespace.
func httpIn(netns, url string) (string, error) {
	c := &http.Client{Transport: transportIn(netns), Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestNetworkDefaultBridge: the first start makes hangarbr0 with NAT, DHCP
// and DNS, the default profile's eth0 uses it, and containers reach each
// other by address and name, the internet through NAT, and the host.
func TestNetworkDefaultBridge(t *testing.T) {
	d := startNetDaemon(t)
	d.importImages()

	brp, _, err := d.client().GetNetwork(context.Background(), "hangarbr0")
	if err != nil {
		t.Fatal(err)
	}
	br := *brp
	if !br.Managed || br.Type != "bridge" || br.Config["ipv4.nat"] != "true" || !strings.Contains(br.Config["ipv4.address"], "/24") {
		t.Fatalf("hangarbr0 = %+v", br)
	}
	if !strings.HasPrefix(br.Config["ipv6.address"], "fd") {
		t.Errorf("ipv6.address %q is not a ULA", br.Config["ipv6.address"])
	}
	prof := d.must("profile", "show", "default")
	if !strings.Contains(prof, "network: hangarbr0") || !strings.Contains(prof, "type: nic") {
		t.Errorf("default profile has no eth0 on hangarbr0:\n%s", prof)
	}

	d.must("launch", "busybox", "c1")
	d.must("launch", "busybox", "c2")
	ip1, ip2 := d.addressOf("c1", "eth0", "inet"), d.addressOf("c2", "eth0", "inet")
	if ip1 == ip2 {
		t.Fatalf("c1 and c2 share %s", ip1)
	}
	list := d.must("list", "--format", "csv")
	if !strings.Contains(list, ip1) || !strings.Contains(list, ip2) {
		t.Errorf("list does not show the addresses %s %s:\n%s", ip1, ip2, list)
	}

	// Each other, by address and by name (the network's DNS).
	for _, target := range []string{ip2, "c2", "c2.hangar"} {
		if out, errOut, code := d.hangar("exec", "c1", "--", "ping", "-c", "1", "-W", "5", target); code != 0 {
			t.Errorf("c1 ping %s: exit %d: %s%s", target, code, out, errOut)
		}
	}
	// The internet through NAT: the server sees the uplink's address.
	out, errOut, code := d.hangar("exec", "c2", "--", "sh", "-c", httpGet(internetServer, 80))
	if code != 0 || !strings.Contains(out, "seen-from="+uplinkHost) {
		t.Errorf("c2 fetch from the internet: exit %d: %q %s", code, out, errOut)
	}
	// Names resolve from the host too, through the bridge's dnsmasq.
	gw := strings.Split(br.Config["ipv4.address"], "/")[0]
	if out, err := d.inDaemonNetns("busybox", "nslookup", "c1.hangar", gw); err != nil || !strings.Contains(out, ip1) {
		t.Errorf("host nslookup c1.hangar @%s: %v\n%s", gw, err, out)
	}

	// lxc sees the same.
	lout := d.mustLXC("list", "--format", "csv", "--columns", "n4")
	if !strings.Contains(lout, ip1) {
		t.Errorf("lxc list does not show %s:\n%s", ip1, lout)
	}
	leases := d.mustLXC("network", "list-leases", "hangarbr0", "--format", "csv")
	if !strings.Contains(leases, ip1) || !strings.Contains(leases, "c1") {
		t.Errorf("lxc network list-leases:\n%s", leases)
	}
}

// httpGet is a shell command that GETs / from addr:port with busybox nc
// (busybox's static wget crashes here).
func httpGet(addr string, port int) string {
	return fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 %s %d`, addr, port)
}

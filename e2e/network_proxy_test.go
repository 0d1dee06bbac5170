package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// webServer starts busybox httpd on port 80 inside a container, serving
// body at /.
func (d *daemon) webServer(name, body string) {
	d.t.Helper()
	d.must("exec", name, "--", "sh", "-c", "mkdir -p /www && echo "+body+" > /www/index.html && httpd -p 80 -h /www")
}

// ruleset is the daemon namespace's nftables ruleset.
func (d *daemon) ruleset() string {
	d.t.Helper()
	out, err := exec.Command("nsenter", "--net="+d.netns, "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		d.t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	return string(out)
}

// links lists the daemon namespace's links by name.
func (d *daemon) links() []string {
	d.t.Helper()
	out, err := d.inDaemonNetns("ip", "-o", "link", "show")
	if err != nil {
		d.t.Fatalf("ip link: %v: %s", err, out)
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			n, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			names = append(names, n)
		}
	}
	return names
}

func mustGet(t *testing.T, what, netns, url, want string) {
	t.Helper()
	body, err := httpIn(netns, url)
	if err != nil || !strings.Contains(body, want) {
		t.Errorf("%s: GET %s = %q, %v; want %q", what, url, body, err, want)
	}
}

func mustNotGet(t *testing.T, what, netns, url string) {
	t.Helper()
	if body, err := httpIn(netns, url); err == nil {
		t.Errorf("%s: GET %s answered %q; want no answer", what, url, body)
	}
}

// TestNetworkProxyForward exposes a container's web server through a
// userspace proxy device, a NAT proxy device and a network forward; moves
// it to a static address; survives a kill -9 of the daemon with nothing
// duplicated; and leaves no rule or link once the instance is gone.
func TestNetworkProxyForward(t *testing.T) {
	d, far := startNetDaemonFar(t)
	d.importImages()
	d.must("launch", "busybox", "web")
	d.webServer("web", "hello-web")
	ip := d.addressOf("web", "eth0", "inet")
	before := d.links()

	// nat=false: a forwarder in the daemon, reaching the container's own
	// loopback; nat=true: DNAT to the container's address.
	d.mustLXC("config", "device", "add", "web", "http", "proxy", "listen=tcp:0.0.0.0:8080", "connect=tcp:127.0.0.1:80")
	d.mustLXC("config", "device", "add", "web", "nathttp", "proxy", "listen=tcp:"+uplinkHost+":8081", "connect=tcp:0.0.0.0:80", "nat=true")
	d.mustLXC("network", "forward", "create", "hangarbr0", uplinkHost)
	d.mustLXC("network", "forward", "port", "add", "hangarbr0", uplinkHost, "tcp", "8082", ip, "80")

	check := func(when string) {
		t.Helper()
		mustGet(t, when+": proxy from the host", d.netns, "http://127.0.0.1:8080/", "hello-web")
		mustGet(t, when+": proxy from the internet", far, "http://"+uplinkHost+":8080/", "hello-web")
		mustGet(t, when+": nat proxy from the internet", far, "http://"+uplinkHost+":8081/", "hello-web")
		mustGet(t, when+": nat proxy from the host", d.netns, "http://"+uplinkHost+":8081/", "hello-web")
		mustGet(t, when+": forward from the internet", far, "http://"+uplinkHost+":8082/", "hello-web")
		// The instance reaches itself through its NAT proxy (hairpin).
		if out, errOut, code := d.hangar("exec", "web", "--", "sh", "-c", httpGet(uplinkHost, 8081)); code != 0 || !strings.Contains(out, "hello-web") {
			t.Errorf("%s: web through its own nat proxy: exit %d %q %s", when, code, out, errOut)
		}
	}
	check("running")

	// A port already forwarded is refused, and nothing changes.
	d.mustLXCFail([]string{"config", "device", "add", "web", "dup", "proxy", "listen=tcp:0.0.0.0:8080", "connect=tcp:127.0.0.1:80"}, "8080")
	d.mustLXCFail([]string{"config", "device", "add", "web", "dupnat", "proxy", "listen=tcp:" + uplinkHost + ":8081", "connect=tcp:0.0.0.0:80", "nat=true"}, "8081")

	// kill -9 and start again: everything works, nothing is doubled.
	rules := d.ruleset()
	d.kill9()
	d.start()
	check("after kill -9")
	if got := d.ruleset(); got != rules {
		t.Errorf("ruleset changed across kill -9:\nbefore:\n%s\nafter:\n%s", rules, got)
	}
	if procs := processesNaming(d.dir); len(procs) != 1 || !strings.Contains(procs[0], "dnsmasq") {
		t.Errorf("processes after restart: %v (want one dnsmasq)", procs)
	}

	// A static address, set live: the NIC is replugged with it.
	static := strings.Join(strings.Split(ip, ".")[:3], ".") + ".200"
	d.mustLXC("config", "device", "override", "web", "eth0", "ipv4.address="+static)
	if got := d.addressOf("web", "eth0", "inet"); got != static {
		t.Errorf("after override, address %s; want %s", got, static)
	}
	d.mustLXCFail([]string{"launch", "busybox", "other", "-d", "eth0,ipv4.address=" + static}, static)

	// Stop: the proxies go; delete: the forward keeps only its own rule.
	d.must("stop", "-f", "web")
	mustNotGet(t, "stopped: proxy", d.netns, "http://127.0.0.1:8080/")
	if rs := d.ruleset(); strings.Contains(rs, "8081") {
		t.Errorf("nat proxy rule left after stop:\n%s", rs)
	}
	d.must("delete", "web")
	d.mustLXC("network", "forward", "delete", "hangarbr0", uplinkHost)
	if rs := d.ruleset(); strings.Contains(rs, "dnat to") || strings.Contains(rs, "dnat ip") {
		t.Errorf("DNAT rules left:\n%s", rs)
	}
	// The veth goes with the container's namespace, torn down by the
	// kernel in the background.
	waitFor(t, "the instance's links to go (links before: "+strings.Join(before, " ")+")", 10*time.Second, func() bool {
		for _, l := range d.links() {
			if strings.HasPrefix(l, "hgr") || strings.HasPrefix(l, "ifb") {
				return false
			}
		}
		return true
	})
}

// TestNetworkProfileLive: device changes made through profiles reach
// running instances at once, as in LXD.
func TestNetworkProfileLive(t *testing.T) {
	d := startNetDaemon(t)
	d.importImages()
	d.must("launch", "busybox", "p1")
	d.webServer("p1", "hello-profile")

	// A profile with a proxy, added to the running instance.
	d.mustLXC("profile", "create", "webp")
	d.mustLXC("profile", "device", "add", "webp", "http", "proxy", "listen=tcp:0.0.0.0:8090", "connect=tcp:127.0.0.1:80")
	d.mustLXC("profile", "add", "p1", "webp")
	mustGet(t, "proxy from a profile added live", d.netns, "http://"+uplinkHost+":8090/", "hello-profile")
	// The profile's device changed: the new port serves, the old not.
	d.mustLXC("profile", "device", "set", "webp", "http", "listen=tcp:0.0.0.0:8091")
	mustGet(t, "proxy moved by a profile change", d.netns, "http://"+uplinkHost+":8091/", "hello-profile")
	mustNotGet(t, "old port after the profile change", d.netns, "http://"+uplinkHost+":8090/")
	// The default profile's NIC gets a new MTU: replugged live.
	d.mustLXC("profile", "device", "set", "default", "eth0", "mtu=1400")
	if out := d.must("exec", "p1", "--", "cat", "/sys/class/net/eth0/mtu"); strings.TrimSpace(out) != "1400" {
		t.Errorf("eth0 mtu after the profile change: %q", out)
	}
	// A change the instance cannot take is refused whole: a port in use.
	d.mustLXCFail([]string{"profile", "device", "add", "webp", "dup", "proxy", "listen=tcp:0.0.0.0:8091", "connect=tcp:127.0.0.1:80"}, "8091")
	if out := d.mustLXC("profile", "show", "webp"); strings.Contains(out, "dup") {
		t.Errorf("refused device kept in the profile:\n%s", out)
	}
	mustGet(t, "proxy after a refused change", d.netns, "http://"+uplinkHost+":8091/", "hello-profile")
}

// TestNetworkLimits: limits.ingress and limits.egress shape the NIC's host
// side (htb, and an ifb for what the instance sends), live, and go when
// unset.
func TestNetworkLimits(t *testing.T) {
	d := startNetDaemon(t)
	d.importImages()
	d.must("launch", "busybox", "l1")
	d.mustLXC("config", "device", "override", "l1", "eth0", "limits.ingress=2Mbit", "limits.egress=1Mbit")
	host := d.instance("l1").Config["volatile.eth0.host_name"]
	if host == "" {
		t.Fatal("no volatile.eth0.host_name")
	}
	qd, err := d.inDaemonNetns("tc", "qdisc", "show", "dev", host)
	if err != nil || !strings.Contains(qd, "htb") {
		t.Errorf("qdiscs of %s: %v\n%s", host, err, qd)
	}
	if cl, _ := d.inDaemonNetns("tc", "class", "show", "dev", host); !strings.Contains(cl, "rate 2Mbit") {
		t.Errorf("classes of %s (want rate 2Mbit):\n%s", host, cl)
	}
	hasIfb := func() bool {
		for _, l := range d.links() {
			if strings.HasPrefix(l, "ifb") {
				return true
			}
		}
		return false
	}
	if !hasIfb() {
		t.Errorf("no ifb for the egress limit: %v", d.links())
	}
	d.mustLXC("config", "device", "unset", "l1", "eth0", "limits.ingress")
	d.mustLXC("config", "device", "unset", "l1", "eth0", "limits.egress")
	host = d.instance("l1").Config["volatile.eth0.host_name"]
	if qd, _ := d.inDaemonNetns("tc", "qdisc", "show", "dev", host); strings.Contains(qd, "htb") {
		t.Errorf("htb left after the limits were unset:\n%s", qd)
	}
	if hasIfb() {
		t.Errorf("ifb left after the limits were unset: %v", d.links())
	}
}

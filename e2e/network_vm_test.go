package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// TestNetworkVM: a VM launched with the default profile gets a tap on
// hangarbr0 and a virtio NIC with the recorded MAC; the guest agent
// configures the address hangard allocated, so the host reaches the
// guest's server at once, the guest reaches the internet through NAT, a
// container reaches it by name, and state shows the guest's interfaces.
// One VM boot (TCG is slow).
func TestNetworkVM(t *testing.T) {
	requireVM(t)
	d := startNetDaemon(t)
	d.importImages()
	// The entrypoint serves its own directory (as uid 1000: a port
	// above 1024).
	ref, _ := serveAppImage(t, d.netns, "test/vmnet:1",
		"#!/bin/sh\n# vm-serves-this-file\nexec busybox httpd -f -p 8080 -h /app\n")

	start := time.Now()
	d.must("launch", ref, "vm1", "--vm", "--insecure", "-c", "limits.memory=256MiB", "-c", "limits.cpu=1")
	launched := time.Since(start)
	ip := d.addressOf("vm1", "eth0", "inet")
	var body string
	waitFor(t, "the guest's HTTP server at "+ip, 60*time.Second, func() bool {
		body, _ = d.httpFrom("http://" + ip + ":8080/run.sh")
		return strings.Contains(body, "vm-serves-this-file")
	})
	t.Logf("launch %v; launch to first HTTP answer from the host: %v", launched, time.Since(start))

	hwaddr := d.must("config", "get", "vm1", "volatile.eth0.hwaddr")
	tap := strings.TrimSpace(d.must("config", "get", "vm1", "volatile.eth0.host_name"))
	// The guest's interfaces are read through its agent and kept for a
	// second: the counters show the HTTP traffic within that.
	var st *api.InstanceState
	waitFor(t, "vm1's eth0 counters to show traffic", 10*time.Second, func() bool {
		st = d.instance("vm1").State
		return st != nil && st.Network["eth0"].Counters.BytesReceived > 0
	})
	eth0, lo := st.Network["eth0"], st.Network["lo"]
	if eth0.Hwaddr != strings.TrimSpace(hwaddr) || eth0.State != "up" || eth0.Counters.BytesReceived == 0 {
		t.Errorf("vm1 eth0 = %+v, want hwaddr %s, up, with traffic", eth0, hwaddr)
	}
	if lo.State != "up" || len(lo.Addresses) == 0 {
		t.Errorf("vm1 lo = %+v", lo)
	}
	if list := d.must("list", "--format", "csv"); !strings.Contains(list, ip) {
		t.Errorf("list does not show %s:\n%s", ip, list)
	}
	if out, err := d.inDaemonNetns("ip", "-o", "link", "show", tap); err != nil || !strings.Contains(out, "master hangarbr0") {
		t.Errorf("tap %s: %v %s", tap, err, out)
	}

	// The guest's default route and resolver are the bridge's.
	out, errOut, code := d.hangar("exec", "vm1", "--", "sh", "-c", httpGet(internetServer, 80))
	if code != 0 || !strings.Contains(out, "seen-from="+uplinkHost) {
		t.Errorf("vm1 fetch from the internet: exit %d: %q %s", code, out, errOut)
	}
	if out := d.must("exec", "vm1", "--", "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver ") {
		t.Errorf("vm1 resolv.conf:\n%s", out)
	}
	d.must("launch", "busybox", "c1")
	for _, target := range []string{ip, "vm1"} {
		if out, errOut, code := d.hangar("exec", "c1", "--", "ping", "-c", "1", "-W", "5", target); code != 0 {
			t.Errorf("c1 ping %s: exit %d: %s%s", target, code, out, errOut)
		}
	}

	d.must("delete", "-f", "vm1")
	if out, err := d.inDaemonNetns("ip", "-o", "link", "show", tap); err == nil {
		t.Errorf("tap %s left after delete: %s", tap, out)
	}
}

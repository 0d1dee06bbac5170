package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMacvlanVM: a VM's macvlan NIC is a macvtap on the parent (a veth
// end in the daemon's namespace whose peer sits in a second namespace
// with an address; no DHCP there, so the guest's address is set by
// hand). Traffic flows both ways at boot (QEMU inherits the macvtap's
// descriptor), after a daemon restart (QEMU holds it), after an unplug
// and a hotplug (getfd); the link goes with the unplug and the stop. One
// VM boot.
func TestMacvlanVM(t *testing.T) {
	requireVM(t)
	ns, far := newNetns(t), newNetns(t)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	in := func(ns string, args ...string) { run(append([]string{"nsenter", "--net=" + ns}, args...)...) }
	// The veth goes with the namespaces.
	in(ns, "ip", "link", "add", "mvpar0", "type", "veth", "peer", "name", "mvfar0")
	in(ns, "ip", "link", "set", "mvfar0", "netns", far)
	in(ns, "ip", "link", "set", "mvpar0", "up")
	in(far, "ip", "addr", "add", "192.0.2.1/24", "dev", "mvfar0")
	in(far, "ip", "link", "set", "mvfar0", "up")

	d := startDaemonIn(t, ns)
	d.importImages()
	const mac = "00:16:3e:5a:5a:01"
	d.must("init", "busybox", "vm1", "--vm", "-c", "limits.memory=256MiB", "-c", "limits.cpu=1")
	d.must("config", "device", "add", "vm1", "lan", "nic", "nictype=macvlan", "parent=mvpar0", "name=lan0", "hwaddr="+mac)
	d.must("start", "vm1")
	host := strings.TrimSpace(d.must("config", "get", "vm1", "volatile.lan.host_name"))

	link := func() string {
		out, _ := d.inDaemonNetns("ip", "-d", "-o", "link", "show", host)
		return out
	}
	if l := link(); !strings.Contains(l, "macvtap mode bridge") || !strings.Contains(l, host+"@mvpar0") || !strings.Contains(l, mac) {
		t.Fatalf("link %s: %q, want a bridge-mode macvtap on mvpar0 with %s", host, l, mac)
	}
	// The guest is reached from the far side, and reaches it.
	reach := func(what string) {
		t.Helper()
		waitFor(t, "vm1 to configure lan0 ("+what+")", 2*time.Minute, func() bool {
			_, _, code := d.hangar("exec", "vm1", "--", "sh", "-c",
				"ip addr replace 192.0.2.2/24 dev lan0 && ip link set lan0 up")
			return code == 0
		})
		waitFor(t, "vm1 to ping the far side ("+what+")", 30*time.Second, func() bool {
			_, _, code := d.hangar("exec", "vm1", "--", "ping", "-c", "1", "-W", "2", "192.0.2.1")
			return code == 0
		})
		if out, err := exec.Command("nsenter", "--net="+far, "ping", "-c", "1", "-W", "5", "192.0.2.2").CombinedOutput(); err != nil {
			t.Fatalf("far side ping vm1 (%s): %v: %s", what, err, out)
		}
	}
	reach("at boot")

	t.Run("daemon restart keeps the NIC", func(t *testing.T) {
		d.kill9()
		d.start()
		if out, err := exec.Command("nsenter", "--net="+far, "ping", "-c", "1", "-W", "5", "192.0.2.2").CombinedOutput(); err != nil {
			t.Fatalf("far side ping vm1 after the restart: %v: %s", err, out)
		}
	})

	t.Run("unplug and hotplug", func(t *testing.T) {
		d.must("config", "device", "remove", "vm1", "lan")
		if l := link(); l != "" {
			t.Fatalf("macvtap left after the unplug: %s", l)
		}
		d.must("config", "device", "add", "vm1", "lan", "nic", "nictype=macvlan", "parent=mvpar0", "name=lan0", "hwaddr="+mac)
		if l := link(); !strings.Contains(l, "macvtap mode bridge") {
			t.Fatalf("link after the hotplug: %q", l)
		}
		reach("after a hotplug")
	})

	d.must("stop", "vm1", "--force")
	if l := link(); l != "" {
		t.Errorf("macvtap left after the stop: %s", l)
	}
	// A parent that is not there: the start fails and leaves no link.
	d.must("config", "device", "set", "vm1", "lan", "parent=nope0")
	if _, errOut, code := d.hangar("start", "vm1"); code == 0 || !strings.Contains(errOut, "nope0") {
		t.Errorf("start on a missing parent: exit %d: %s", code, errOut)
	}
	if left := d.instanceLinks(); len(left) > 0 {
		t.Errorf("links left by a failed start: %v", left)
	}
}

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
// and a hotplug (getfd), after a standby and restore (the link made again
// with the same MAC); the link goes with the unplug, the standby and the
// stop, and a failed start leaves none. One VM boot.
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

	// The link's details, "" when there is none.
	link := func() string {
		out, err := d.inDaemonNetns("ip", "-d", "-o", "link", "show", host)
		if err != nil && strings.Contains(out, "does not exist") {
			return ""
		}
		return out
	}
	if l := link(); !strings.Contains(l, "macvtap mode bridge") || !strings.Contains(l, host+"@mvpar0") || !strings.Contains(l, mac) {
		t.Fatalf("link %s: %q, want a bridge-mode macvtap on mvpar0 with %s", host, l, mac)
	}
	// The guest pings the far side: the echo and its reply cross the
	// macvtap both ways.
	ping := func(what string) {
		t.Helper()
		waitFor(t, "vm1 to ping the far side ("+what+")", 30*time.Second, func() bool {
			_, _, code := d.hangar("exec", "vm1", "--", "ping", "-c", "1", "-W", "2", "192.0.2.1")
			return code == 0
		})
	}
	reach := func(what string) {
		t.Helper()
		waitFor(t, "vm1 to configure lan0 ("+what+")", 2*time.Minute, func() bool {
			_, _, code := d.hangar("exec", "vm1", "--", "sh", "-c",
				"ip addr replace 192.0.2.2/24 dev lan0 && ip link set lan0 up")
			return code == 0
		})
		ping(what)
	}
	reach("at boot")

	t.Run("daemon restart keeps the NIC", func(t *testing.T) {
		d.kill9()
		d.start()
		ping("after a daemon restart")
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

	t.Run("standby and restore", func(t *testing.T) {
		// The link goes with the standby and comes back with the same
		// MAC for the restored QEMU, whose saved NIC has it.
		d.must("stop", "--stateful", "vm1")
		if l := link(); l != "" {
			t.Fatalf("macvtap left in standby: %s", l)
		}
		d.must("start", "vm1")
		if l := link(); !strings.Contains(l, mac) {
			t.Fatalf("link after the restore: %q, want %s", l, mac)
		}
		ping("after a restore")
	})

	d.must("stop", "vm1", "--force")
	if l := link(); l != "" {
		t.Errorf("macvtap left after the stop: %s", l)
	}
	// A parent gone since the device was set: the start fails and
	// leaves no link (the bridged eth0's tap included).
	in(ns, "ip", "link", "add", "gone0", "type", "veth", "peer", "name", "gone0p")
	d.must("config", "device", "set", "vm1", "lan", "parent=gone0")
	in(ns, "ip", "link", "del", "gone0")
	if _, errOut, code := d.hangar("start", "vm1"); code == 0 || !strings.Contains(errOut, "gone0") {
		t.Errorf("start on a missing parent: exit %d: %s", code, errOut)
	}
	if left := d.instanceLinks(); len(left) > 0 {
		t.Errorf("links left by a failed start: %v", left)
	}
}

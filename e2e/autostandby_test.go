package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/client"
)

// TestAutoStandbyVM: one OCI VM serving HTTP with an auto-standby policy
// (idle_timeout 3s). A TCP connection held open keeps it awake; with its
// port ignored the same connection does not, and the VM goes to standby
// (stopped, stateful). A client's connection to its address wakes it (a
// restore: a process started before is alive) and is answered; so does
// one to a VM a user put in standby, and one after a daemon restart while
// the VM was in standby. A proxy device with nat=true (a DNAT rule from
// the bridge's address) keeps its rule while the VM is in standby, and
// the host keeps a permanent neighbour entry for the VM's address, so a
// client of the proxy wakes it (memory intact), also after the daemon's
// restart; a delete in standby leaves neither. One VM boot (TCG is slow).
// The time from the client's connect to the answer is logged (not
// asserted).
func TestAutoStandbyVM(t *testing.T) {
	requireVM(t)
	d := startDaemon(t, "")
	ref, _ := serveAppImage(t, d.netns, "test/vmstandby:1",
		"#!/bin/sh\n# vm-standby-serves-this\nexec busybox httpd -f -p 8080 -h /app\n")

	start := time.Now()
	d.must("launch", ref, "v1", "--vm", "--insecure", "-c", "limits.memory=256MiB", "-c", "limits.cpu=1",
		"-c", "autostandby.enabled=true", "-c", "autostandby.idle_timeout=3s")
	t.Logf("launch to agent ready: %v", time.Since(start))
	ip := d.addressOf("v1", "eth0", "inet")
	addr := net.JoinHostPort(ip, "8080")
	// A proxy from the bridge's own address: its DNAT rule is the
	// device layer's, kept across a standby (a restore that found the
	// listen port taken would fail and lose the VM's memory).
	br, _, err := d.client().GetNetwork(t.Context(), "hangarbr0")
	if err != nil {
		t.Fatal(err)
	}
	gw, _, _ := strings.Cut(br.Config["ipv4.address"], "/")
	proxyAddr := net.JoinHostPort(gw, "9090")
	d.must("config", "device", "add", "v1", "web", "proxy", "listen=tcp:"+proxyAddr, "connect=tcp:0.0.0.0:8080", "nat=true")
	mac := strings.TrimSpace(d.must("config", "get", "v1", "volatile.eth0.hwaddr"))

	// A connection held open from the start. Should the VM go idle
	// before the server is up, this connection's SYN wakes it.
	var held net.Conn
	waitFor(t, "a connection to the guest's server at "+addr, 90*time.Second, func() bool {
		c, err := dialFrom(d.netns, addr, 30*time.Second)
		if err == nil {
			held = c
		}
		return err == nil
	})
	defer func() { held.Close() }()
	if st, stateful := d.powerState("v1"); st != "Running" || stateful {
		t.Fatalf("v1 is %s (stateful %v), want Running", st, stateful)
	}
	bg := strings.TrimSpace(d.must("exec", "v1", "--", "sh", "-c", "sleep 100000 </dev/null >/dev/null 2>&1 & echo $!"))
	memoryIntact := func(t *testing.T, when string) {
		t.Helper()
		if _, errOut, code := d.on(t).hangar("exec", "v1", "--", "kill", "-0", bg); code != 0 {
			t.Fatalf("%s: the process started before the standby (pid %s) is gone: %s", when, bg, errOut)
		}
	}

	t.Run("an open connection keeps it awake", func(t *testing.T) {
		d := d.on(t)
		// Absence of a standby over twice the idle timeout (a condition
		// over time, with margin: the controller polls every second).
		for end := time.Now().Add(8 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
			if st, _ := d.powerState("v1"); st != "Running" {
				t.Fatalf("v1 went %s with a connection open", st)
			}
		}
	})

	var wakes []time.Duration
	t.Run("an ignored port does not count", func(t *testing.T) {
		d := d.on(t)
		d.must("config", "set", "v1", "autostandby.ignore_destination_ports=8080")
		d.waitStandby("v1")
		// A SYN to an ignored port wakes nothing (the unit tests check
		// it): the knock must count.
		d.must("config", "unset", "v1", "autostandby.ignore_destination_ports")
		wakes = append(wakes, d.knock(addr))
		memoryIntact(t, "after the first wake")
	})
	held.Close()

	t.Run("idle again: standby, woken", func(t *testing.T) {
		d := d.on(t)
		d.waitStandby("v1")
		// The next standby is the user's: no auto-standby meanwhile.
		d.must("config", "set", "v1", "autostandby.idle_timeout=1h")
		wakes = append(wakes, d.knock(addr))
		memoryIntact(t, "after the second wake")
	})

	t.Run("a user's standby is woken too", func(t *testing.T) {
		d := d.on(t)
		d.must("stop", "--stateful", "v1")
		d.waitStandby("v1")
		wakes = append(wakes, d.knock(addr))
		memoryIntact(t, "after a user's standby")
		d.must("config", "set", "v1", "autostandby.idle_timeout=3s")
	})

	t.Run("a proxy's client wakes it", func(t *testing.T) {
		d := d.on(t)
		d.waitStandby("v1")
		d.standbyHeld(ip, mac, proxyAddr)
		wakes = append(wakes, d.knock(proxyAddr))
		memoryIntact(t, "after a wake through the proxy")
	})

	// Not a subtest: the restarted daemon belongs to the whole test.
	d.waitStandby("v1")
	d.kill9()
	d.start()
	t.Run("woken after a daemon restart", func(t *testing.T) {
		d := d.on(t)
		if st, stateful := d.powerState("v1"); st != "Stopped" || !stateful {
			t.Fatalf("after the restart v1 is %s (stateful %v), want in standby", st, stateful)
		}
		// The restarted daemon put the proxy's rule and the neighbour
		// entry back.
		d.standbyHeld(ip, mac, proxyAddr)
		took := d.knock(proxyAddr)
		t.Logf("connect to answer after a daemon restart: %v", took)
		memoryIntact(t, "after the restart's wake")
	})

	if len(wakes) == 4 {
		sorted := slices.Clone(wakes)
		slices.Sort(sorted)
		t.Logf("connect to answer for a standby VM (256MiB, TCG): %v, median %v", wakes, sorted[len(sorted)/2])
	}
	t.Run("a delete in standby leaves nothing", func(t *testing.T) {
		d := d.on(t)
		d.must("stop", "--stateful", "v1")
		d.waitStandby("v1")
		d.standbyHeld(ip, mac, proxyAddr)
		d.must("delete", "-f", "v1")
		if rs := d.ruleset(); strings.Contains(rs, "9090") {
			t.Errorf("the proxy's rule is left after the delete:\n%s", rs)
		}
		if n := d.neighbour(ip); strings.Contains(n, "PERMANENT") {
			t.Errorf("the neighbour entry is left after the delete: %s", n)
		}
	})
}

// neighbour is the daemon namespace's neighbour entry for ip on
// hangarbr0 ("" for none).
func (d *daemon) neighbour(ip string) string {
	d.t.Helper()
	out, err := d.inDaemonNetns("ip", "neigh", "show", ip, "dev", "hangarbr0")
	if err != nil {
		d.t.Fatalf("ip neigh: %v: %s", err, out)
	}
	return strings.TrimSpace(out)
}

// standbyHeld checks what a VM in standby keeps on the host: its proxy's
// DNAT rule (listen proxyAddr) and a permanent neighbour entry for its
// address ip at its MAC.
func (d *daemon) standbyHeld(ip, mac, proxyAddr string) {
	d.t.Helper()
	_, port, _ := net.SplitHostPort(proxyAddr)
	if rs := d.ruleset(); !strings.Contains(rs, port) || !strings.Contains(rs, ip) {
		d.t.Errorf("no DNAT rule for the proxy %s to %s in standby:\n%s", proxyAddr, ip, rs)
	}
	if n := d.neighbour(ip); !strings.Contains(n, strings.ToLower(mac)) || !strings.Contains(n, "PERMANENT") {
		d.t.Errorf("neighbour entry of %s in standby: %q, want PERMANENT at %s", ip, n, mac)
	}
}

// powerState is an instance's status and stateful flag through the LXD
// API.
func (d *daemon) powerState(name string) (string, bool) {
	d.t.Helper()
	c, err := client.Connect(d.socket)
	if err != nil {
		d.t.Fatal(err)
	}
	defer c.Close()
	in, _, err := c.GetInstance(context.Background(), name)
	if err != nil {
		d.t.Fatalf("get %s: %v", name, err)
	}
	return in.Status, in.Stateful
}

// waitStandby waits until name is stopped with a saved state.
func (d *daemon) waitStandby(name string) {
	d.t.Helper()
	start := time.Now()
	waitFor(d.t, name+" in standby (Stopped, stateful)", 2*time.Minute, func() bool {
		st, stateful := d.powerState(name)
		return st == "Stopped" && stateful
	})
	d.t.Logf("%s in standby after %v", name, time.Since(start))
}

// knock fetches the guest's file from a standby VM at addr and returns
// the time from the client's connect to the answer. The connect's SYN
// goes unanswered until the daemon restored the VM; the kernel's
// retransmit reaches it.
func (d *daemon) knock(addr string) time.Duration {
	d.t.Helper()
	c := &http.Client{Transport: transportIn(d.netns), Timeout: 2 * time.Minute}
	defer c.CloseIdleConnections()
	start := time.Now()
	resp, err := c.Get("http://" + addr + "/run.sh")
	if err != nil {
		d.t.Fatalf("GET from a standby VM: %v\n%s", err, tailLog(d.logText(), 30))
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil || !strings.Contains(string(body), "vm-standby-serves-this") {
		d.t.Fatalf("GET from a woken VM: %q, %v", body, err)
	}
	// The guest answers once QEMU resumes, a little before the daemon
	// records the start.
	waitFor(d.t, "v1 Running, its saved state consumed", 30*time.Second, func() bool {
		st, stateful := d.powerState("v1")
		return st == "Running" && !stateful
	})
	d.t.Logf("connect to answer: %v", took)
	return took
}

// dialFrom connects to addr from inside a network namespace.
func dialFrom(netns, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNetns(netns, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, timeout)
		return err
	})
	return c, err
}

// tailLog is the last n lines of a log.
func tailLog(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

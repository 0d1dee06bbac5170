package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestCheckNICs(t *testing.T) {
	good := driver.NIC{
		Name: "eth0", HostName: "tap-h1-0", Hwaddr: "00:16:3e:aa:bb:cc", MTU: 1500,
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")},
		Gateway4:  netip.MustParseAddr("10.0.0.1"), Gateway6: netip.MustParseAddr("fd00::1"),
		Nameservers: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, SearchDomain: "hangar",
	}
	with := func(f func(*driver.NIC)) []driver.NIC {
		n := good
		f(&n)
		return []driver.NIC{n}
	}
	for _, tc := range []struct {
		name string
		nics []driver.NIC
		want string // in the error; "" is valid
	}{
		{"none", nil, ""},
		{"good", []driver.NIC{good}, ""},
		{"minimal", with(func(n *driver.NIC) { *n = driver.NIC{Name: "eth0", HostName: "t0", Hwaddr: "02:00:00:00:00:01"} }), ""},
		{"upper-case MAC", with(func(n *driver.NIC) { n.Hwaddr = "00:16:3E:AA:BB:CC" }), ""},
		{"empty name", with(func(n *driver.NIC) { n.Name = "" }), "nic name"},
		{"long name", with(func(n *driver.NIC) { n.Name = "abcdefghijklmnop" }), "nic name"},
		{"comma in name", with(func(n *driver.NIC) { n.Name = "eth0,x" }), "nic name"},
		{"slash in name", with(func(n *driver.NIC) { n.Name = "a/b" }), "nic name"},
		{"name starts with dash", with(func(n *driver.NIC) { n.Name = "-eth" }), "nic name"},
		{"loopback name", with(func(n *driver.NIC) { n.Name = "lo" }), "loopback"},
		{"no tap", with(func(n *driver.NIC) { n.HostName = "" }), "host_name"},
		{"option in tap", with(func(n *driver.NIC) { n.HostName = "t0,script=/x" }), "host_name"},
		{"bad MAC", with(func(n *driver.NIC) { n.Hwaddr = "00:16:3e:zz:bb:cc" }), "hwaddr"},
		{"empty MAC", with(func(n *driver.NIC) { n.Hwaddr = "" }), "hwaddr"},
		{"long MAC", with(func(n *driver.NIC) { n.Hwaddr = "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01" }), "hwaddr"},
		{"multicast MAC", with(func(n *driver.NIC) { n.Hwaddr = "01:00:5e:00:00:01" }), "multicast"},
		{"zero MAC", with(func(n *driver.NIC) { n.Hwaddr = "00:00:00:00:00:00" }), "zeros"},
		{"small MTU", with(func(n *driver.NIC) { n.MTU = 67 }), "mtu"},
		{"big MTU", with(func(n *driver.NIC) { n.MTU = 65536 }), "mtu"},
		{"invalid address", with(func(n *driver.NIC) { n.Addresses = []netip.Prefix{{}} }), "address"},
		{"unspecified address", with(func(n *driver.NIC) { n.Addresses = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} }), "address"},
		{"multicast address", with(func(n *driver.NIC) { n.Addresses = []netip.Prefix{netip.MustParsePrefix("224.0.0.1/24")} }), "address"},
		{"address twice", with(func(n *driver.NIC) {
			n.Addresses = []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("10.0.0.2/16")}
		}), "twice"},
		{"IPv6 gateway4", with(func(n *driver.NIC) { n.Gateway4 = netip.MustParseAddr("fd00::1") }), "IPv4 gateway"},
		{"IPv4 gateway6", with(func(n *driver.NIC) { n.Gateway6 = netip.MustParseAddr("10.0.0.1") }), "IPv6 gateway"},
		{"bad nameserver", with(func(n *driver.NIC) { n.Nameservers = []netip.Addr{{}} }), "nameserver"},
		{"bad search domain", with(func(n *driver.NIC) { n.SearchDomain = "a b" }), "search domain"},
		{"search domain label", with(func(n *driver.NIC) { n.SearchDomain = "-a.example" }), "search domain"},
		{"two NICs", []driver.NIC{good, {Name: "eth1", HostName: "t1", Hwaddr: "00:16:3e:00:00:02"}}, ""},
		{"name twice", []driver.NIC{good, {Name: "eth0", HostName: "t1", Hwaddr: "00:16:3e:00:00:02"}}, "two NICs"},
		{"tap twice", []driver.NIC{good, {Name: "eth1", HostName: good.HostName, Hwaddr: "00:16:3e:00:00:02"}}, "two NICs"},
		{"MAC twice", []driver.NIC{good, {Name: "eth1", HostName: "t1", Hwaddr: "00:16:3E:AA:BB:CC"}}, "two NICs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkNICs(tc.nics)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error %v is not invalid-argument", err)
			}
		})
	}
}

// TestStartRefusesBadNIC: a bad NIC fails the start before anything is
// made on the host.
func TestStartRefusesBadNIC(t *testing.T) {
	dir := t.TempDir()
	d, err := New(Config{Dir: dir, Agent: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Start(context.Background(), driver.Spec{
		ID: "h1", Root: driver.Root{Disk: &driver.Disk{Path: "/nonexistent", Format: "raw"}},
		NICs: []driver.NIC{{Name: "eth0", HostName: "t0", Hwaddr: "nope"}},
	})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "hwaddr") {
		t.Fatalf("start: %v, want an invalid hwaddr", err)
	}
	// Only looked up, in the host's namespace: a name no host has.
	_, err = d.Start(context.Background(), driver.Spec{
		ID: "h1", Root: driver.Root{Disk: &driver.Disk{Path: "/nonexistent", Format: "raw"}},
		NICs: []driver.NIC{{Name: "eth0", HostName: "hgtest-notap", Hwaddr: "00:16:3e:00:00:01"}},
	})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "host_name") {
		t.Fatalf("start: %v, want a missing tap", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "h1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("instance dir left behind: %v", err)
	}
}

func TestNICArgs(t *testing.T) {
	n := driver.NIC{Name: "eth0", HostName: "tap5", Hwaddr: "00:16:3E:AA:BB:CC", MTU: 1400}
	if got, want := nicNetdev(n, false, nil), "tap,id=net-eth0,ifname=tap5,script=no,downscript=no"; got != want {
		t.Errorf("netdev %q, want %q", got, want)
	}
	if got := nicNetdev(n, true, nil); !strings.HasSuffix(got, ",vhost=on") {
		t.Errorf("netdev with vhost %q", got)
	}
	// A macvtap: the descriptor QEMU inherits, not the name.
	if got, want := nicNetdev(n, false, map[string]int{"eth0": 4}), "tap,id=net-eth0,fd=4"; got != want {
		t.Errorf("macvtap netdev %q, want %q", got, want)
	}
	if got, want := nicNetdev(n, true, map[string]int{"eth0": 5}), "tap,id=net-eth0,fd=5,vhost=on"; got != want {
		t.Errorf("macvtap netdev with vhost %q, want %q", got, want)
	}
	if got, want := nicDevice(n, ",bus=p1"), "virtio-net-pci,id=nic-eth0,netdev=net-eth0,mac=00:16:3e:aa:bb:cc,host_mtu=1400,bus=p1"; got != want {
		t.Errorf("device %q, want %q", got, want)
	}
	n.MTU = 0
	if got := nicDevice(n, ""); strings.Contains(got, "host_mtu") {
		t.Errorf("device without MTU %q", got)
	}
	m := driver.NIC{Name: "eth1", HostName: "tap6", Hwaddr: "00:16:3e:00:00:01"}
	got := strings.Join(nicArgs([]driver.NIC{n, m}, []string{"", "eth1", "eth0"}, false, map[string]int{"eth0": 4}), " ")
	want := "-device pcie-root-port,id=nicport0,bus=pcie.0,chassis=1 " +
		"-device pcie-root-port,id=nicport1,bus=pcie.0,chassis=2 " +
		"-netdev tap,id=net-eth1,ifname=tap6,script=no,downscript=no -device virtio-net-pci,id=nic-eth1,netdev=net-eth1,mac=00:16:3e:00:00:01,bus=nicport1 " +
		"-device pcie-root-port,id=nicport2,bus=pcie.0,chassis=3 " +
		"-netdev tap,id=net-eth0,fd=4 -device virtio-net-pci,id=nic-eth0,netdev=net-eth0,mac=00:16:3e:aa:bb:cc,bus=nicport2"
	if got != want {
		t.Errorf("args\n%s\nwant\n%s", got, want)
	}
}

func TestNICLayout(t *testing.T) {
	nics := func(names ...string) []driver.NIC {
		var out []driver.NIC
		for _, n := range names {
			out = append(out, driver.NIC{Name: n})
		}
		return out
	}
	free := func(names ...string) []string {
		for range hotplugPorts {
			names = append(names, "")
		}
		return names
	}
	for _, tc := range []struct {
		name  string
		nics  []driver.NIC
		saved []string
		want  []string
	}{
		{"boot without NICs", nil, nil, free()},
		{"boot", nics("eth0", "eth1"), nil, free("eth0", "eth1")},
		// A NIC plugged into the saved VM's third port stays there.
		{"restore", nics("eth0", "eth2"), []string{"eth0", "", "eth2", ""}, []string{"eth0", "", "eth2", ""}},
		{"restore without NICs", nil, []string{"", ""}, []string{"", ""}},
		{"restore with a NIC more", nics("eth0", "eth1"), []string{"eth0", ""}, free("eth0", "eth1")},
		{"restore with a NIC less", nics("eth0"), []string{"eth0", "eth1"}, free("eth0")},
		{"restore with another NIC", nics("eth0", "eth9"), []string{"eth0", "eth1"}, free("eth0", "eth9")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nicLayout(tc.nics, tc.saved); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("layout %q, want %q", got, tc.want)
			}
		})
	}
}

// netnsThread runs functions on one OS thread that lives in a network
// namespace of its own, so that the test's bridges, taps and QEMU never
// touch the host's network. QEMU, started from that thread, inherits
// the namespace (the tap it opens by name must be in its namespace).
type netnsThread struct {
	calls chan func()
	done  chan struct{}
}

func newNetnsThread(t *testing.T) *netnsThread {
	t.Helper()
	n := &netnsThread{calls: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(n.done)
		// Never unlocked: the thread ends with this goroutine, so no
		// other goroutine ever runs in the test's namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for f := range n.calls {
			f()
		}
	}()
	if err := <-errc; err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	return n
}

// do runs f in the namespace and waits for it.
func (n *netnsThread) do(f func()) {
	ran := make(chan struct{})
	n.calls <- func() { defer close(ran); f() }
	<-ran
}

func (n *netnsThread) close() {
	close(n.calls)
	<-n.done
}

// bridgeWithTap makes a bridge with addr and a persistent tap on it, as
// the network layer does for a VM's NIC.
func bridgeWithTap(bridge, tap string, addr netip.Prefix) error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridge}}
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("bridge %s: %w", bridge, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}}
	if err := netlink.AddrAdd(br, a); err != nil {
		return fmt.Errorf("address %s: %w", addr, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return err
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(tap)
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("tap %s: %w", tap, err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
		return fmt.Errorf("tap %s persistent: %w", tap, err)
	}
	l, err := netlink.LinkByName(tap)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetMaster(l, br); err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

// httpGet fetches / from addr:80 over a socket of the calling thread's
// namespace. The VM is reachable once Start returns, but its workload
// may not listen yet: a refused connection is tried again.
func httpGet(addr string) (string, error) {
	var c net.Conn
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err = net.DialTimeout("tcp", net.JoinHostPort(addr, "80"), 20*time.Second)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// TestVMNetwork boots one VM with two NICs on two bridges in a network
// namespace of the test's, serving HTTP on port 80, and checks it is
// reachable on both, with the names, MTU, routes and resolv.conf asked
// for, and that Network reads the guest's interfaces back.
func TestVMNetwork(t *testing.T) {
	needQEMU(t)
	tmp := t.TempDir()
	agent := buildAgent(t, tmp)
	root := busyboxTree(t, tmp)
	for _, l := range []string{"httpd", "ip", "head"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "www/index.html"), []byte("hello from the vm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Dir: filepath.Join(tmp, "vms"), Agent: agent, CgroupParent: "/hangar-vm-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ns := newNetnsThread(t)
	t.Cleanup(ns.close)

	ns.do(func() {
		err = bridgeWithTap("br1", "tap1", netip.MustParsePrefix("10.99.0.1/24"))
		if err == nil {
			err = bridgeWithTap("br2", "tap2", netip.MustParsePrefix("10.98.0.1/24"))
		}
	})
	if err != nil {
		t.Fatalf("set up the test's network: %v", err)
	}
	// eth1 comes first, so the kernel probably names it eth0: the agent
	// must tell them apart by MAC and swap the names.
	nics := []driver.NIC{
		{Name: "eth1", HostName: "tap2", Hwaddr: "00:16:3e:00:00:02",
			Addresses: []netip.Prefix{netip.MustParsePrefix("10.98.0.2/24")}},
		{Name: "eth0", HostName: "tap1", Hwaddr: "00:16:3e:00:00:01", MTU: 1400,
			Addresses:   []netip.Prefix{netip.MustParsePrefix("10.99.0.2/24"), netip.MustParsePrefix("fd42::2/64")},
			Gateway4:    netip.MustParseAddr("10.99.0.1"),
			Nameservers: []netip.Addr{netip.MustParseAddr("10.99.0.1")}, SearchDomain: "hangar.test"},
	}
	// The root as storage hands it over, on the default bus (microvm's
	// MMIO virtio-blk).
	spec := driver.Spec{
		ID: "h1", Hostname: "vm1", Root: driver.Root{Disk: storageRoot(t, tmp, root, 0)},
		Args: []string{"/bin/httpd", "-f", "-p", "80", "-h", "/www"}, Env: []string{"PATH=/bin"},
		StopSignal: syscall.SIGTERM, Limits: driver.Limits{CPUCount: 1},
		NICs: nics,
	}
	ctx := context.Background()
	var pid int
	start := time.Now()
	ns.do(func() { pid, err = d.Start(ctx, spec) })
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	booted := time.Since(start)
	defer d.Stop(ctx, "h1", syscall.SIGTERM, 0, true)

	var body string
	ns.do(func() { body, err = httpGet("10.99.0.2") })
	if err != nil || !strings.Contains(body, "hello from the vm") {
		t.Fatalf("GET from eth0 (10.99.0.2): %q, %v", body, err)
	}
	t.Logf("start to first HTTP answer: %v (agent ready after %v; QEMU pid %d)", time.Since(start), booted, pid)
	ns.do(func() { body, err = httpGet("10.98.0.2") })
	if err != nil || !strings.Contains(body, "hello from the vm") {
		t.Fatalf("GET from eth1 (10.98.0.2): %q, %v", body, err)
	}

	run := func(args ...string) string {
		t.Helper()
		r, w, _ := os.Pipe()
		p, err := d.Exec(ctx, "h1", driver.ExecSpec{Args: args, Env: []string{"PATH=/bin"}, Stdout: w, Stderr: w})
		w.Close()
		if err != nil {
			t.Fatalf("exec %v: %v", args, err)
		}
		out, _ := io.ReadAll(r)
		if code, err := p.Wait(); err != nil || code != 0 {
			t.Fatalf("%v: code %d, %v: %s", args, code, err, out)
		}
		return string(out)
	}
	if out := run("ip", "route"); !strings.Contains(out, "default via 10.99.0.1 dev eth0") {
		t.Errorf("routes lack the default one via eth0:\n%s", out)
	}
	if out := run("cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 10.99.0.1\n") || !strings.Contains(out, "search hangar.test\n") {
		t.Errorf("resolv.conf:\n%s", out)
	}

	ifs, err := d.Network(ctx, "h1")
	if err != nil {
		t.Fatalf("network: %v", err)
	}
	checkIface(t, ifs, "lo", driver.NetInterface{Type: "loopback", MTU: 65536, Up: true}, "127.0.0.1/8")
	checkIface(t, ifs, "eth0", driver.NetInterface{Type: "broadcast", Hwaddr: "00:16:3e:00:00:01", MTU: 1400, Up: true}, "10.99.0.2/24", "fd42::2/64")
	checkIface(t, ifs, "eth1", driver.NetInterface{Type: "broadcast", Hwaddr: "00:16:3e:00:00:02", MTU: 1500, Up: true}, "10.98.0.2/24")
	if e := ifs["eth0"]; e.BytesReceived == 0 || e.PacketsSent == 0 {
		t.Errorf("eth0 counters say no traffic: %+v", e)
	}
	if len(ifs) != 3 {
		t.Errorf("interfaces %v, want lo, eth0 and eth1", ifs)
	}

	var plugged driver.NIC
	if !t.Run("hotplug", func(t *testing.T) { plugged = testNICHotplug(t, d, ns) }) {
		return
	}
	// A SCSI disk plugged into a VM without a SCSI controller brings
	// one, on a disk port: the restore below must have both in place.
	vol := driver.Disk{Name: "vol", Path: filepath.Join(tmp, "vol.raw"), Format: "raw", Bus: "virtio-scsi"}
	if err := os.WriteFile(vol.Path, []byte("volume"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(vol.Path, 4<<20); err != nil {
		t.Fatal(err)
	}
	if err := d.AttachDisk(ctx, "h1", vol); err != nil {
		t.Fatalf("attach a SCSI disk: %v", err)
	}
	readVol := func() string {
		r, w, _ := os.Pipe()
		p, err := d.Exec(ctx, "h1", driver.ExecSpec{Args: []string{"head", "-c", "6", "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_vol"}, Env: []string{"PATH=/bin"}, Stdout: w, Stderr: w})
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(r)
		p.Wait()
		return string(out)
	}
	if got := readVol(); got != "volume" {
		t.Fatalf("plugged SCSI disk reads %q", got)
	}
	t.Run("standby and restore keep the NICs and disks", func(t *testing.T) {
		// The restored QEMU must have the devices of the saved one at
		// the same places: eth0 on the second port, eth2 on the third,
		// the SCSI controller on the first disk port.
		if err := d.Standby(ctx, "h1", driver.Compression{}); err != nil {
			t.Fatalf("standby: %v", err)
		}
		spec.Disks = []driver.Disk{vol}
		spec.NICs = []driver.NIC{nics[1], plugged}
		ns.do(func() { _, err = d.Start(ctx, spec) })
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		for _, addr := range []string{"10.99.0.2", "10.97.0.2"} {
			var body string
			ns.do(func() { body, err = httpGet(addr) })
			if err != nil || !strings.Contains(body, "hello from the vm") {
				t.Fatalf("GET %s after restore: %q, %v", addr, body, err)
			}
		}
		start := time.Now()
		if err := d.DetachNIC(ctx, "h1", "eth2"); err != nil {
			t.Fatalf("detach eth2 after restore: %v", err)
		}
		t.Logf("detach eth2: %v", time.Since(start))
		checkTapReleased(t, ns, "tap3")
		if got := readVol(); got != "volume" {
			t.Fatalf("SCSI disk after restore reads %q", got)
		}
		if err := d.DetachDisk(ctx, "h1", "vol"); err != nil {
			t.Fatalf("detach the SCSI disk after restore: %v", err)
		}
	})

	if err := d.Stop(ctx, "h1", syscall.SIGTERM, 10*time.Second, false); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := d.Network(ctx, "h1"); !errors.Is(err, driver.ErrNotRunning) {
		t.Fatalf("network of a stopped VM: %v, want ErrNotRunning", err)
	}
}

// testNICHotplug plugs a third NIC into the running VM and reaches the
// guest through it, and unplugs a NIC the VM booted with. It returns the
// plugged NIC.
func testNICHotplug(t *testing.T, d *Driver, ns *netnsThread) driver.NIC {
	ctx := context.Background()
	var err error
	ns.do(func() { err = bridgeWithTap("br3", "tap3", netip.MustParsePrefix("10.97.0.1/24")) })
	if err != nil {
		t.Fatal(err)
	}
	nic := driver.NIC{Name: "eth2", HostName: "tap3", Hwaddr: "00:16:3e:00:00:03",
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.97.0.2/24")}}
	// AttachNIC looks the tap up in its thread's namespace, QEMU's.
	attach := func(nic driver.NIC) (err error) {
		ns.do(func() { err = d.AttachNIC(ctx, "h1", nic) })
		return err
	}
	start := time.Now()
	if err := attach(nic); err != nil {
		t.Fatalf("attach: %v", err)
	}
	var body string
	ns.do(func() { body, err = httpGet("10.97.0.2") })
	if err != nil || !strings.Contains(body, "hello from the vm") {
		t.Fatalf("GET from the plugged eth2 (10.97.0.2): %q, %v", body, err)
	}
	t.Logf("attach to first HTTP answer: %v", time.Since(start))
	ifs, err := d.Network(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	checkIface(t, ifs, "eth2", driver.NetInterface{Type: "broadcast", Hwaddr: nic.Hwaddr, MTU: 1500, Up: true}, "10.97.0.2/24")

	for _, tc := range []struct {
		name string
		err  error
		nic  driver.NIC
	}{
		{"name taken", errdefs.ErrConflict, driver.NIC{Name: "eth2", HostName: "tap9", Hwaddr: "00:16:3e:00:00:09"}},
		{"bad MAC", errdefs.ErrInvalidArgument, driver.NIC{Name: "eth9", HostName: "tap9", Hwaddr: "x"}},
		// QEMU would make a tap of that name itself, on no bridge.
		{"missing tap", errdefs.ErrNotFound, driver.NIC{Name: "eth9", HostName: "nosuchtap", Hwaddr: "00:16:3e:00:00:09"}},
		{"not a tap", errdefs.ErrInvalidArgument, driver.NIC{Name: "eth9", HostName: "br3", Hwaddr: "00:16:3e:00:00:09"}},
	} {
		if err := attach(tc.nic); !errors.Is(err, tc.err) {
			t.Errorf("attach with %s: %v, want %v", tc.name, err, tc.err)
		}
	}
	if err := d.DetachNIC(ctx, "h1", "eth9"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("detach after failed attaches: %v, want not found", err)
	}
	if err := d.DetachNIC(ctx, "h1", "eth7"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("detach unknown NIC: %v, want not found", err)
	}

	// A NIC the VM booted with unplugs; QEMU lets go of its tap.
	start = time.Now()
	if err := d.DetachNIC(ctx, "h1", "eth1"); err != nil {
		t.Fatalf("detach eth1: %v", err)
	}
	t.Logf("detach eth1: %v", time.Since(start))
	checkTapReleased(t, ns, "tap2")
	ifs, err = d.Network(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ifs["eth1"]; ok {
		t.Errorf("eth1 still in the guest after detach: %v", ifs)
	}
	if _, ok := ifs["eth2"]; !ok {
		t.Errorf("eth2 gone with eth1: %v", ifs)
	}
	return nic
}

// checkTapReleased checks that no one has tap open any more (no carrier).
func checkTapReleased(t *testing.T, ns *netnsThread, tap string) {
	t.Helper()
	var attached bool
	var err error
	ns.do(func() {
		var l netlink.Link
		if l, err = netlink.LinkByName(tap); err == nil {
			attached = l.Attrs().RawFlags&unix.IFF_LOWER_UP != 0
		}
	})
	if err != nil || attached {
		t.Errorf("%s: carrier %v, %v: QEMU still has it open", tap, attached, err)
	}
}

// checkIface compares an interface's identity and addresses.
func checkIface(t *testing.T, ifs map[string]driver.NetInterface, name string, want driver.NetInterface, addrs ...string) {
	t.Helper()
	got, ok := ifs[name]
	if !ok {
		t.Errorf("no interface %s in %v", name, ifs)
		return
	}
	if got.Type != want.Type || got.MTU != want.MTU || got.Up != want.Up || (want.Hwaddr != "" && got.Hwaddr != want.Hwaddr) {
		t.Errorf("%s: %+v, want type %s mtu %d up %v hwaddr %q", name, got, want.Type, want.MTU, want.Up, want.Hwaddr)
	}
	have := map[string]bool{}
	for _, a := range got.Addresses {
		have[fmt.Sprintf("%s/%d", a.Address, a.PrefixLen)] = true
	}
	for _, a := range addrs {
		if !have[a] {
			t.Errorf("%s lacks address %s: %+v", name, a, got.Addresses)
		}
	}
}

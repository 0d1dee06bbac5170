package autostandby

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hangar-dev/hangar/internal/network/firewall"
	"github.com/hangar-dev/hangar/internal/osthread"
)

// Two network namespaces of the test's own stand for the host and an
// instance:
//
//	host (v1 10.77.0.1/24; the real firewall with network forwards
//	      10.77.0.1:8080 -> 10.77.0.2:80 and :8081 -> 10.77.0.3:80)
//	  | veth
//	inst (eth0 10.77.0.2/24; 10.77.0.3 added when "restored")
//
// Nothing reaches the machine's own network; the namespaces go with the
// test.

func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, nftables and conntrack")
	}
	var h netns.NsHandle
	var err error
	osthread.Throwaway(func() { h, err = netns.New() })
	if err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	nl := nsHandle(t, h)
	lo, err := nl.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return h
}

func nsHandle(t *testing.T, h netns.NsHandle) *netlink.Handle {
	t.Helper()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatalf("netlink in namespace: %v", err)
	}
	t.Cleanup(nl.Close)
	return nl
}

// inNS runs fn on a throwaway thread inside h.
func inNS(t *testing.T, h netns.NsHandle, fn func()) {
	t.Helper()
	var err error
	osthread.Throwaway(func() {
		if err = netns.Set(h); err == nil {
			fn()
		}
	})
	if err != nil {
		t.Fatalf("enter network namespace: %v", err)
	}
}

func addAddr(t *testing.T, nl *netlink.Handle, name, cidr string) {
	t.Helper()
	l, err := nl.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.AddrAdd(l, a); err != nil {
		t.Fatalf("address %s on %s: %v", cidr, name, err)
	}
}

// serve accepts on addr in ns and keeps every connection open until the
// test ends.
func serve(t *testing.T, ns netns.NsHandle, addr string) {
	t.Helper()
	var l net.Listener
	var err error
	inNS(t, ns, func() { l, err = net.Listen("tcp", addr) })
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			_, _ = c.Write([]byte("hello\n"))
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
}

func dialIn(t *testing.T, ns netns.NsHandle, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	var err error
	inNS(t, ns, func() { c, err = net.DialTimeout("tcp", addr, timeout) })
	return c, err
}

func twoNamespaces(t *testing.T) (host, inst netns.NsHandle, hnl, inl *netlink.Handle) {
	host, inst = newNS(t), newNS(t)
	hnl, inl = nsHandle(t, host), nsHandle(t, inst)
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "v1"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(inst))}
	if err := hnl.LinkAdd(v); err != nil {
		t.Fatalf("veth: %v", err)
	}
	for _, x := range []struct {
		nl   *netlink.Handle
		name string
	}{{hnl, "v1"}, {inl, "eth0"}} {
		l, err := x.nl.LinkByName(x.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.nl.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	addAddr(t, hnl, "v1", "10.77.0.1/24")
	addAddr(t, inl, "eth0", "10.77.0.2/24")
	fw, err := firewall.New(firewall.InNetNS("/proc/self/fd/" + strconv.Itoa(int(host))))
	if err != nil {
		t.Fatalf("firewall: %v", err)
	}
	t.Cleanup(func() { fw.Close() })
	err = fw.Apply(firewall.State{Forwards: []firewall.Forward{
		{Proto: firewall.TCP, Listen: netip.MustParseAddr("10.77.0.1"), ListenPorts: firewall.Port(8080), Target: netip.MustParseAddr("10.77.0.2"), TargetPorts: firewall.Port(80)},
		{Proto: firewall.TCP, Listen: netip.MustParseAddr("10.77.0.1"), ListenPorts: firewall.Port(8081), Target: netip.MustParseAddr("10.77.0.3"), TargetPorts: firewall.Port(80)},
	}})
	if err != nil {
		t.Fatalf("forwards: %v", err)
	}
	return host, inst, hnl, inl
}

// TestNetlinkConntrack: the reader sees a real connection through a
// network forward with its tuples after DNAT, and it qualifies as inbound
// for the instance's address.
func TestNetlinkConntrack(t *testing.T) {
	host, inst, hnl, _ := twoNamespaces(t)
	serve(t, inst, "10.77.0.2:80")
	c, err := dialIn(t, host, "10.77.0.1:8080", 10*time.Second)
	if err != nil {
		t.Fatalf("connect through the forward: %v", err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 6)); err != nil {
		t.Fatalf("read: %v", err)
	}
	local := netip.MustParseAddrPort(c.LocalAddr().String())

	flows, err := NetlinkConntrack{Handle: hnl}.TCPFlows(context.Background())
	if err != nil {
		t.Fatalf("TCPFlows: %v", err)
	}
	inst2 := []netip.Addr{netip.MustParseAddr("10.77.0.2")}
	var found *Flow
	for i, f := range flows {
		if f.Orig.SrcPort == local.Port() && f.Orig.Src == local.Addr() {
			found = &flows[i]
		}
	}
	if found == nil {
		t.Fatalf("no entry for %s in %+v", local, flows)
	}
	want := Flow{Orig: Tuple{Src: local.Addr(), Dst: netip.MustParseAddr("10.77.0.1"), SrcPort: local.Port(), DstPort: 8080},
		Reply: Tuple{Src: netip.MustParseAddr("10.77.0.2"), Dst: local.Addr(), SrcPort: 80, DstPort: local.Port()}, State: TCPEstablished}
	if *found != want {
		t.Fatalf("entry %+v, want %+v", *found, want)
	}
	if !(Policy{}).qualifies(*found, inst2) {
		t.Fatal("the forwarded connection does not qualify as inbound")
	}
	if (Policy{IgnorePorts: []uint16{80}}).qualifies(*found, inst2) {
		t.Fatal("a connection to an ignored port qualifies")
	}
	// The reader in the daemon's own namespace does not see the test's.
	own, err := NetlinkConntrack{}.TCPFlows(context.Background())
	if err != nil {
		t.Fatalf("TCPFlows in the test's namespace: %v", err)
	}
	for _, f := range own {
		if f.Reply.Src == netip.MustParseAddr("10.77.0.2") && f.Orig.SrcPort == local.Port() {
			t.Fatalf("the namespace's entry %+v is in the host's table", f)
		}
	}
}

// netnsCore is an instance at 10.77.0.3 in the inst namespace: standby
// takes its address away, start gives it back and serves on it.
type netnsCore struct {
	t    *testing.T
	inst netns.NsHandle
	inl  *netlink.Handle

	mu      sync.Mutex
	running bool
	starts  int
}

func (c *netnsCore) instance() Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Instance{Project: "default", Name: "vm1", VM: true, Running: c.running, Standby: !c.running, HasNIC: true,
		Addrs:  []netip.Addr{netip.MustParseAddr("10.77.0.3")},
		Config: map[string]string{KeyEnabled: "true", KeyIdleTimeout: "1s"}}
}

func (c *netnsCore) Instances(context.Context) ([]Instance, error) {
	return []Instance{c.instance()}, nil
}
func (c *netnsCore) Instance(context.Context, string, string) (Instance, error) {
	return c.instance(), nil
}

func (c *netnsCore) Standby(context.Context, string, string) error {
	l, err := c.inl.LinkByName("eth0")
	if err == nil {
		a, _ := netlink.ParseAddr("10.77.0.3/24")
		err = c.inl.AddrDel(l, a)
	}
	c.mu.Lock()
	c.running = false
	c.mu.Unlock()
	return err
}

func (c *netnsCore) Start(context.Context, string, string) error {
	addAddr(c.t, c.inl, "eth0", "10.77.0.3/24")
	serve(c.t, c.inst, "10.77.0.3:80")
	c.mu.Lock()
	c.running, c.starts = true, c.starts+1
	c.mu.Unlock()
	return nil
}

func (c *netnsCore) Emit(context.Context, string, string, string, map[string]any) {}

// TestWakeThroughForward runs the controller on the real conntrack table
// of a namespace: an idle instance goes to standby (its address leaves),
// a client connects to the network forward, the controller sees the
// unanswered SYN and starts the instance, and the client's retransmitted
// SYN reaches it: the connection succeeds.
func TestWakeThroughForward(t *testing.T) {
	host, inst, hnl, inl := twoNamespaces(t)
	core := &netnsCore{t: t, inst: inst, inl: inl, running: true}
	addAddr(t, inl, "eth0", "10.77.0.3/24")
	c := New(Config{Core: core, Conntrack: NetlinkConntrack{Handle: hnl}, Interval: 100 * time.Millisecond,
		WakeInterval: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Idle for 1s: standby.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c.mu.Lock()
		t0 := c.tracks[ref{"default", "vm1"}]
		in := t0 != nil && t0.phase == phaseStandby
		c.mu.Unlock()
		if in {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the idle instance did not go to standby")
		}
	}
	conn, err := dialIn(t, host, "10.77.0.1:8081", 20*time.Second)
	if err != nil {
		t.Fatalf("connect to the standby instance's forward: %v", err)
	}
	defer conn.Close()
	buf := make([]byte, 6)
	if _, err := conn.Read(buf); err != nil || string(buf) != "hello\n" {
		t.Fatalf("read %q: %v", buf, err)
	}
	core.mu.Lock()
	starts := core.starts
	core.mu.Unlock()
	if starts != 1 {
		t.Fatalf("%d starts, want 1", starts)
	}
}

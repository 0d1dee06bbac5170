package dnsmasq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/osthread"
)

// The test network: a bridge in a namespace of the test's own.
const (
	testBridge = "hbr0"
	testGW4    = "10.12.3.1/24"
	testGW6    = "fd42:12:3::1/64"
)

// needDnsmasq skips a test that runs the real dnsmasq where it cannot.
func needDnsmasq(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, bridges and dnsmasq's privileged ports")
	}
	if _, err := findBinary(""); err != nil {
		t.Skipf("no dnsmasq (Debian package dnsmasq-base): %v", err)
	}
}

// testNS is a network namespace made for one test.
type testNS struct {
	h    netns.NsHandle
	nl   *netlink.Handle
	path string // for Config.NetNS
}

// newNS makes a network namespace with loopback up. netns.New moves its
// calling thread into it, so it runs on a throwaway thread.
func newNS(t *testing.T) *testNS {
	t.Helper()
	var h netns.NsHandle
	var err error
	osthread.Throwaway(func() { h, err = netns.New() })
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatalf("netlink in netns: %v", err)
	}
	t.Cleanup(nl.Close)
	lo, err := nl.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return &testNS{h: h, nl: nl, path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(h))}
}

// addBridge makes an up bridge with the test addresses (IPv6 without
// duplicate address detection, so dnsmasq need not wait for it).
func (n *testNS) addBridge(t *testing.T) *netlink.Bridge {
	t.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: testBridge}}
	if err := n.nl.LinkAdd(br); err != nil {
		t.Fatalf("add bridge: %v", err)
	}
	if err := n.nl.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{testGW4, testGW6} {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			t.Fatal(err)
		}
		addr.Flags = unix.IFA_F_NODAD
		if err := n.nl.AddrAdd(br, addr); err != nil {
			t.Fatalf("add %s: %v", a, err)
		}
	}
	return br
}

// in runs fn on a throwaway thread inside the namespace: sockets made
// there stay in it whatever thread uses them later.
func (n *testNS) in(t *testing.T, fn func()) {
	t.Helper()
	var err error
	osthread.Throwaway(func() {
		if err = netns.Set(n.h); err == nil {
			fn()
		}
	})
	if err != nil {
		t.Fatalf("enter netns: %v", err)
	}
}

// lookup asks server for name's records of type qtype from inside the
// namespace and returns the addresses answered and the response code.
func (n *testNS) lookup(t *testing.T, server, name string, qtype uint16) ([]netip.Addr, int, error) {
	t.Helper()
	var conn net.Conn
	var err error
	n.in(t, func() { conn, err = net.Dial("udp", net.JoinHostPort(server, "53")) })
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Timeout: 2 * time.Second}
	resp, _, err := c.ExchangeWithConn(m, &dns.Conn{Conn: conn})
	if err != nil {
		return nil, 0, err
	}
	var out []netip.Addr
	for _, rr := range resp.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			a, _ := netip.AddrFromSlice(rr.A.To4())
			out = append(out, a)
		case *dns.AAAA:
			a, _ := netip.AddrFromSlice(rr.AAAA)
			out = append(out, a)
		}
	}
	return out, resp.Rcode, nil
}

// waitFor polls cond until it holds or a deadline passes: for effects
// that come asynchronously (a reload, a restart), never as a delay.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testDir is a state dir whose parents dnsmasq's unprivileged user can
// search, as the daemon's data dir (0711) is.
func testDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for p := d; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(d, "net")
}

func testConfig(t *testing.T, n *testNS) Config {
	return Config{
		Bridge: testBridge,
		Dir:    testDir(t),
		IPv4:   netip.MustParsePrefix(testGW4),
		DHCPv4: true,
		IPv6:   netip.MustParsePrefix(testGW6),
		RA:     true,
		DNS:    true,
		MTU:    1400,
		NetNS:  n.path,
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// startServer starts a Server and stops it at the end of the test.
func startServer(t *testing.T, cfg Config, hosts []Host) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, cfg, hosts, testLogger(t))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// ours lists the processes serving cfg's Dir.
func ours(cfg Config) []int {
	dir := filepath.Clean(cfg.Dir)
	return findStale(filepath.Join(dir, filePid), filepath.Join(dir, fileConf))
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// answers polls until name's A or AAAA records are want (NXDOMAIN when
// want is empty).
func (n *testNS) answers(t *testing.T, name string, qtype uint16, want []netip.Addr) {
	t.Helper()
	var got []netip.Addr
	var rcode int
	var err error
	waitFor(t, fmt.Sprintf("%s %s = %v", name, dns.TypeToString[qtype], want), func() bool {
		got, rcode, err = n.lookup(t, "10.12.3.1", name, qtype)
		if err != nil {
			return false
		}
		slices.SortFunc(got, func(a, b netip.Addr) int { return a.Compare(b) })
		if len(want) == 0 {
			return rcode == dns.RcodeNameError
		}
		return rcode == dns.RcodeSuccess && slices.Equal(got, want)
	})
}

func TestServeNames(t *testing.T) {
	needDnsmasq(t)
	n := newNS(t)
	n.addBridge(t)
	cfg := testConfig(t, n)
	hosts := []Host{
		{Name: "c1", MAC: "00:16:3e:00:00:01", IPv4: netip.MustParseAddr("10.12.3.10"), IPv6: netip.MustParseAddr("fd42:12:3::10")},
		{Name: "c2", MAC: "00:16:3e:00:00:02", IPv4: netip.MustParseAddr("10.12.3.11")},
	}
	s := startServer(t, cfg, hosts)
	if s.Pid() == 0 {
		t.Fatal("no pid after Start")
	}

	// Up means answering: no wait needed for the first queries.
	for _, tt := range []struct {
		name  string
		qtype uint16
		want  []netip.Addr
		rcode int
	}{
		{"c1.hangar", dns.TypeA, addrs("10.12.3.10"), dns.RcodeSuccess},
		{"c1", dns.TypeA, addrs("10.12.3.10"), dns.RcodeSuccess},
		{"c1.hangar", dns.TypeAAAA, addrs("fd42:12:3::10"), dns.RcodeSuccess},
		{"c2.hangar", dns.TypeA, addrs("10.12.3.11"), dns.RcodeSuccess},
		{"_gateway.hangar", dns.TypeA, addrs("10.12.3.1"), dns.RcodeSuccess},
		{"nobody.hangar", dns.TypeA, nil, dns.RcodeNameError},
	} {
		got, rcode, err := n.lookup(t, "10.12.3.1", tt.name, tt.qtype)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if rcode != tt.rcode || !slices.Equal(got, tt.want) {
			t.Errorf("%s %s = %v rcode %s, want %v rcode %s", tt.name, dns.TypeToString[tt.qtype],
				got, dns.RcodeToString[rcode], tt.want, dns.RcodeToString[tt.rcode])
		}
	}
	// Nothing upstream: a name outside the domain gets no address.
	if got, _, err := n.lookup(t, "10.12.3.1", "example.com", dns.TypeA); err != nil || len(got) != 0 {
		t.Errorf("example.com = %v, %v; want no answer (no upstream)", got, err)
	}

	// A change is served after the reload: c1 moves, c2 goes, c3 comes.
	pid := s.Pid()
	if err := s.SetHosts([]Host{
		{Name: "c1", MAC: "00:16:3e:00:00:01", IPv4: netip.MustParseAddr("10.12.3.20")},
		{Name: "c3", IPv4: netip.MustParseAddr("10.12.3.30")},
	}); err != nil {
		t.Fatal(err)
	}
	n.answers(t, "c1.hangar", dns.TypeA, addrs("10.12.3.20"))
	n.answers(t, "c3", dns.TypeA, addrs("10.12.3.30"))
	n.answers(t, "c2.hangar", dns.TypeA, nil)
	if s.Pid() != pid {
		t.Errorf("SetHosts restarted dnsmasq (pid %d -> %d); it should reload it", pid, s.Pid())
	}
	b, err := os.ReadFile(filepath.Join(cfg.Dir, fileDHCP))
	if err != nil || string(b) != "00:16:3e:00:00:01,10.12.3.20,c1\n" {
		t.Errorf("dhcp-hosts = %q, %v", b, err)
	}

	// Bad hosts change nothing.
	err = s.SetHosts([]Host{{Name: "c1", IPv4: netip.MustParseAddr("10.99.0.1")}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("SetHosts(outside subnet) = %v, want invalid argument", err)
	}
	n.answers(t, "c1.hangar", dns.TypeA, addrs("10.12.3.20"))
}

func TestRestartAfterDeath(t *testing.T) {
	needDnsmasq(t)
	n := newNS(t)
	n.addBridge(t)
	cfg := testConfig(t, n)
	s := startServer(t, cfg, []Host{{Name: "c1", IPv4: netip.MustParseAddr("10.12.3.10")}})
	for round := 0; round < 2; round++ {
		old := s.Pid()
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a new dnsmasq", func() bool { p := s.Pid(); return p != 0 && p != old })
		n.answers(t, "c1.hangar", dns.TypeA, addrs("10.12.3.10"))
		if got := ours(cfg); !slices.Equal(got, []int{s.Pid()}) {
			t.Errorf("round %d: dnsmasq processes for the dir %v, want only %d", round, got, s.Pid())
		}
	}
	// Hosts set while it is down reach the next run.
	old := s.Pid()
	syscall.Kill(old, syscall.SIGKILL)
	if err := s.SetHosts([]Host{{Name: "c1", IPv4: netip.MustParseAddr("10.12.3.40")}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new dnsmasq", func() bool { p := s.Pid(); return p != 0 && p != old })
	n.answers(t, "c1.hangar", dns.TypeA, addrs("10.12.3.40"))
}

func TestStop(t *testing.T) {
	needDnsmasq(t)
	n := newNS(t)
	n.addBridge(t)
	cfg := testConfig(t, n)
	ctx := context.Background()
	s, err := Start(ctx, cfg, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// One Server per Dir in a process.
	if _, err := Start(ctx, cfg, nil, testLogger(t)); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second Start on the same dir = %v, want conflict", err)
	}
	pid := s.Pid()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if s.Pid() != 0 {
		t.Errorf("Pid after Stop = %d", s.Pid())
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dnsmasq %d still exists after Stop (%v)", pid, err)
	}
	if got := ours(cfg); len(got) != 0 {
		t.Errorf("dnsmasq processes after Stop: %v", got)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, filePid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, fileConf)); err != nil {
		t.Errorf("Stop removed more than the process: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := s.SetHosts(nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("SetHosts after Stop = %v, want conflict", err)
	}
	// The dir is free again.
	s2 := startServer(t, cfg, nil)
	if s2.Pid() == 0 || s2.Pid() == pid {
		t.Errorf("restart after Stop: pid %d", s2.Pid())
	}
}

// orphan starts a dnsmasq for cfg as a killed daemon would have left it:
// not supervised, serving cfg's Dir, its pid in the pid file.
func orphan(t *testing.T, n *testNS, cfg Config) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	s := startServer(t, cfg, nil)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	bin, _ := findBinary("")
	cmd := exec.Command(bin, "--keep-in-foreground", "--conf-file="+filepath.Join(cfg.Dir, fileConf))
	var err error
	n.in(t, func() { err = cmd.Start() })
	if err != nil {
		t.Fatalf("orphan: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	waitFor(t, "the orphan's pid file", func() bool {
		return pidFileNames(filepath.Join(cfg.Dir, filePid), cmd.Process.Pid)
	})
	return cmd, done
}

func TestStaleReplaced(t *testing.T) {
	needDnsmasq(t)
	for _, tt := range []struct {
		name       string
		keepPid    bool // the pid file still names the orphan
		decoyInPid bool // the pid file names an unrelated live process
	}{
		{"by pid file", true, false},
		{"without pid file", false, false},
		{"pid file reused by another process", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newNS(t)
			n.addBridge(t)
			cfg := testConfig(t, n)
			stale, reaped := orphan(t, n, cfg)
			pidFile := filepath.Join(cfg.Dir, filePid)
			var decoy *exec.Cmd
			switch {
			case tt.decoyInPid:
				decoy = exec.Command("sleep", "300")
				if err := decoy.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { decoy.Process.Kill(); decoy.Wait() })
				os.WriteFile(pidFile, []byte(strconv.Itoa(decoy.Process.Pid)+"\n"), 0o644)
			case !tt.keepPid:
				os.Remove(pidFile)
			}

			s := startServer(t, cfg, []Host{{Name: "c1", IPv4: netip.MustParseAddr("10.12.3.10")}})
			// Start waited for it to exit; the test, its parent, reaps it.
			waitFor(t, "the stale dnsmasq reaped", func() bool {
				select {
				case <-reaped:
					return true
				default:
					return false
				}
			})
			if s.Pid() == stale.Process.Pid {
				t.Fatal("the stale dnsmasq was kept")
			}
			if got := ours(cfg); !slices.Equal(got, []int{s.Pid()}) {
				t.Errorf("dnsmasq processes for the dir %v, want only %d", got, s.Pid())
			}
			n.answers(t, "c1.hangar", dns.TypeA, addrs("10.12.3.10"))
			if decoy != nil {
				if err := decoy.Process.Signal(syscall.Signal(0)); err != nil {
					t.Errorf("the unrelated process in the pid file was signalled: %v", err)
				}
			}
		})
	}
}

func TestStartFails(t *testing.T) {
	needDnsmasq(t)
	n := newNS(t)
	n.addBridge(t)
	cfg := testConfig(t, n)
	cfg.Bridge = "nosuchbr"
	_, err := Start(context.Background(), cfg, nil, testLogger(t))
	if err == nil {
		t.Fatal("Start on a missing bridge succeeded")
	}
	t.Logf("error: %v", err)
	if got := ours(cfg); len(got) != 0 {
		t.Errorf("dnsmasq left after a failed Start: %v", got)
	}
	// The failure freed the dir for the next try.
	cfg.Bridge = testBridge
	startServer(t, cfg, nil)
}

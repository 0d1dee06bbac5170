package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func mustParse(t testing.TB, listen, connect string) (Address, Address) {
	t.Helper()
	l, c, err := ParsePair(listen, connect)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

func start(t testing.TB, in *instance, listen, connect string) *Forwarder {
	t.Helper()
	l, c := mustParse(t, listen, connect)
	f, err := Start(context.Background(), l, c, in.path, nil)
	if err != nil {
		t.Fatalf("Start(%s, %s): %v", listen, connect, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// deadline keeps a broken forwarder from hanging a test: it fails it.
func deadline(c net.Conn) { c.SetDeadline(time.Now().Add(10 * time.Second)) }

// roundTrip sends data through a TCP connection to an echo server,
// half-closes, and checks that exactly data comes back before the end.
func roundTrip(t testing.TB, addr string, data []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	deadline(c)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read back through %s: %v", addr, err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write through %s: %v", addr, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("through %s: sent %d bytes, got %d back, not the same", addr, len(data), len(got))
	}
}

// readAll reads what a greeting server at addr says.
func readAll(t testing.TB, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	deadline(c)
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return string(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestTCP: bytes and half-closes go through, to the instance's own
// loopback, for many clients at once, over IPv4 and IPv6.
func TestTCP(t *testing.T) {
	tests := []struct {
		name, listen, connect, serverAddr, hostAddr string
	}{
		{"ipv4", "tcp:127.0.0.1:8080", "tcp:127.0.0.1:80", "127.0.0.1:80", "127.0.0.1:8080"},
		{"ipv6", "tcp:[::1]:8080", "tcp:[::1]:80", "[::1]:80", "[::1]:8080"},
		{"ipv4 to ipv6", "tcp:127.0.0.1:8081", "tcp:[::1]:81", "[::1]:81", "127.0.0.1:8081"},
		{"empty hosts", "tcp::8082", "tcp::82", "127.0.0.1:82", "127.0.0.1:8082"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newInstance(t)
			in.listenTCP(t, tt.serverAddr, echo)
			check := leakCheck(t)
			f := start(t, in, tt.listen, tt.connect)

			// Nothing answers on the server's port in the host's namespace:
			// what comes back came from the instance.
			if c, err := net.Dial("tcp", tt.serverAddr); err == nil {
				c.Close()
				t.Fatalf("%s answers in the host's namespace too: the test proves nothing", tt.serverAddr)
			}
			roundTrip(t, tt.hostAddr, []byte("hello"))
			roundTrip(t, tt.hostAddr, nil)
			roundTrip(t, tt.hostAddr, randomBytes(4<<20))

			var wg sync.WaitGroup
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					roundTrip(t, tt.hostAddr, randomBytes(64<<10))
				}()
			}
			wg.Wait()
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			check()
		})
	}
}

// TestTCPServerSpeaksFirst: the instance's server writes and closes
// without reading; the client gets it all and the end.
func TestTCPServerSpeaksFirst(t *testing.T) {
	in := newInstance(t)
	in.listenTCP(t, "127.0.0.1:80", greet("220 ready\n"))
	start(t, in, "tcp:127.0.0.1:8080", "tcp:127.0.0.1:80")
	if got := readAll(t, "127.0.0.1:8080"); got != "220 ready\n" {
		t.Fatalf("got %q", got)
	}
}

// TestTCPConnectRefused: with no server in the instance a client's
// connection is closed, and the forwarder serves the next one once the
// server is there.
func TestTCPConnectRefused(t *testing.T) {
	in := newInstance(t)
	start(t, in, "tcp:127.0.0.1:8080", "tcp:127.0.0.1:80")
	c, err := net.Dial("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	deadline(c)
	n, err := c.Read(make([]byte, 1))
	c.Close()
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes, %v: want the connection closed", n, err)
	}
	in.listenTCP(t, "127.0.0.1:80", echo)
	roundTrip(t, "127.0.0.1:8080", []byte("now"))
}

// TestPortRange: the i-th listen port goes to the i-th connect port, or
// all to one.
func TestPortRange(t *testing.T) {
	in := newInstance(t)
	for i := range 3 {
		in.listenTCP(t, fmt.Sprintf("127.0.0.1:%d", 9000+i), greet(fmt.Sprint("server ", i)))
	}
	f := start(t, in, "tcp:127.0.0.1:8080-8082", "tcp:127.0.0.1:9000-9002")
	if len(f.Addrs()) != 3 {
		t.Fatalf("Addrs: %v", f.Addrs())
	}
	for i := range 3 {
		if got, want := readAll(t, fmt.Sprintf("127.0.0.1:%d", 8080+i)), fmt.Sprint("server ", i); got != want {
			t.Errorf("port %d: %q, want %q", 8080+i, got, want)
		}
	}
	start(t, in, "tcp:127.0.0.1:7000,7005,7010", "tcp:127.0.0.1:9001")
	for _, p := range []int{7000, 7005, 7010} {
		if got := readAll(t, fmt.Sprint("127.0.0.1:", p)); got != "server 1" {
			t.Errorf("port %d: %q, want %q", p, got, "server 1")
		}
	}
}

// udpExchange sends msg from c and returns the answer.
func udpExchange(t testing.TB, c net.Conn, msg string) string {
	t.Helper()
	deadline(c)
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("send: %v", err)
	}
	buf := make([]byte, maxDatagram)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return string(buf[:n])
}

func (f *Forwarder) liveCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.live)
}

// TestUDP: each client address has a session of its own and gets its own
// answers; an idle session ends, and the client's next datagram opens a
// new one.
func TestUDP(t *testing.T) {
	in := newInstance(t)
	in.listenUDP(t, "127.0.0.1:53", "instance:")
	in.listenUDP(t, "[::1]:53", "instance6:")
	defer func(d time.Duration) { udpIdle = d }(udpIdle)
	udpIdle = 200 * time.Millisecond
	check := leakCheck(t)
	f := start(t, in, "udp:127.0.0.1:5353", "udp:127.0.0.1:53")
	f6 := start(t, in, "udp:[::1]:5353", "udp:[::1]:53")

	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("udp", "127.0.0.1:5353")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	for round := range 3 {
		for i, c := range clients {
			msg := fmt.Sprintf("client %d round %d", i, round)
			if got := udpExchange(t, c, msg); got != "instance:"+msg {
				t.Fatalf("got %q, want %q", got, "instance:"+msg)
			}
		}
	}
	big := string(randomBytes(60000))
	if got := udpExchange(t, clients[0], big); got != "instance:"+big {
		t.Fatalf("a 60000-byte datagram came back as %d bytes", len(got))
	}
	if n := f.liveCount(); n != 3 {
		t.Fatalf("%d sessions for 3 clients", n)
	}
	waitFor(t, "idle sessions end", func() bool { return f.liveCount() == 0 },
		func() string { return fmt.Sprint(f.liveCount(), " sessions") })
	if got := udpExchange(t, clients[1], "again"); got != "instance:again" {
		t.Fatalf("after the idle end: %q", got)
	}

	c6, err := net.Dial("udp", "[::1]:5353")
	if err != nil {
		t.Fatal(err)
	}
	defer c6.Close()
	if got := udpExchange(t, c6, "six"); got != "instance6:six" {
		t.Fatalf("IPv6: %q", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f6.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range append(clients, c6) {
		c.Close()
	}
	check()
}

// TestListenConflict: a port that is taken is a conflict naming it, and a
// failed Start leaves none of the ports it had opened.
func TestListenConflict(t *testing.T) {
	in := newInstance(t)
	tcp, err := net.Listen("tcp", "127.0.0.1:8082")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:8082")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	check := leakCheck(t)
	for _, proto := range []string{"tcp", "udp"} {
		l, c := mustParse(t, proto+":127.0.0.1:8080-8082", proto+":127.0.0.1:80")
		f, err := Start(context.Background(), l, c, in.path, nil)
		if err == nil {
			f.Close()
			t.Fatalf("%s: Start on a port in use succeeded", proto)
		}
		want := proto + ":127.0.0.1:8082"
		if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want a conflict naming %s", proto, err, want)
		}
	}
	// The ports before the taken one are free again.
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:8081"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("after a failed Start: %v", err)
		}
		l.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("after a failed Start: %v", err)
		}
		pc.Close()
	}
	check()
}

// TestStartBad: what Start refuses, by kind, leaving nothing behind.
func TestStartBad(t *testing.T) {
	in := newInstance(t)
	regular := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, listen, connect, netns string
		kind                         error
		msg                          string
	}{
		{"no such netns", "tcp:127.0.0.1:8080", "tcp:127.0.0.1:80", "/proc/self/fd/999999", errdefs.ErrNotFound, "does not exist"},
		{"regular file", "tcp:127.0.0.1:8080", "tcp:127.0.0.1:80", regular, errdefs.ErrInvalidArgument, "not a namespace file"},
		{"mount namespace", "tcp:127.0.0.1:8080", "tcp:127.0.0.1:80", "/proc/self/ns/mnt", errdefs.ErrInvalidArgument, "not a network namespace"},
		{"address not on the host", "tcp:10.99.0.1:8080", "tcp:127.0.0.1:80", in.path, errdefs.ErrInvalidArgument, "tcp:10.99.0.1:8080"},
	}
	check := leakCheck(t)
	for _, tt := range tests {
		l, c := mustParse(t, tt.listen, tt.connect)
		f, err := Start(context.Background(), l, c, tt.netns, nil)
		if err == nil {
			f.Close()
			t.Errorf("%s: Start succeeded", tt.name)
			continue
		}
		if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want %v saying %q", tt.name, err, tt.kind, tt.msg)
		}
	}
	bad := Address{Proto: "tcp", Ports: []uint16{8080}}
	if _, err := Start(context.Background(), bad, Address{Proto: "udp", Ports: []uint16{80}}, in.path, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("mixed protocols: %v", err)
	}
	check()
}

// TestClose ends live connections and sessions, frees the ports, and
// leaves no goroutine, descriptor or thread in the instance's namespace.
func TestClose(t *testing.T) {
	in := newInstance(t)
	in.listenTCP(t, "127.0.0.1:80", echo)
	in.listenUDP(t, "127.0.0.1:53", "")
	check := leakCheck(t)
	f := start(t, in, "tcp:127.0.0.1:8080", "tcp:127.0.0.1:80")
	fu := start(t, in, "udp:127.0.0.1:8080", "udp:127.0.0.1:53")

	live, err := net.Dial("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	deadline(live)
	buf := make([]byte, 5)
	if _, err := live.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(live, buf); err != nil {
		t.Fatalf("before Close: %v", err)
	}
	uc, err := net.Dial("udp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	udpExchange(t, uc, "hi")
	if f.liveCount() != 2 || fu.liveCount() != 1 {
		t.Fatalf("live: tcp %d, udp %d; want 2 and 1", f.liveCount(), fu.liveCount())
	}

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fu.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n, err := live.Read(buf); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a live connection still reads after Close: %d bytes, %v", n, err)
	}
	if _, err := net.Dial("tcp", "127.0.0.1:8080"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after Close: %v, want refused", err)
	}
	// The ports are free for someone else.
	pc, err := net.ListenPacket("udp", "127.0.0.1:8080")
	if err != nil {
		t.Fatalf("UDP port after Close: %v", err)
	}
	pc.Close()
	live.Close()
	uc.Close()
	check()
}

// TestCloseDuringConnect: Close ends a connect that the instance never
// answers, and does not wait for its timeout.
func TestCloseDuringConnect(t *testing.T) {
	in := newInstance(t)
	defer func(d time.Duration) { dialTimeout = d }(dialTimeout)
	dialTimeout = time.Hour // Close must not wait for it: the test would hang

	in.unanswered(t, 80)

	check := leakCheck(t)
	f := start(t, in, "tcp:127.0.0.1:8080", "tcp:127.0.0.1:80")
	client, err := net.Dial("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	waitFor(t, "the forwarder's connect waits in the instance", func() bool { return in.countTCP(t, synSent) == 1 },
		func() string { return fmt.Sprint(in.tcpTable(t)) })

	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	var closeErr error
	waitFor(t, "Close returns", func() bool {
		select {
		case closeErr = <-closed:
			return true
		default:
			return false
		}
	}, func() string { return "Close waits for the connect" })
	if closeErr != nil {
		t.Fatal(closeErr)
	}
	if in.countTCP(t, synSent) != 0 {
		t.Fatal("the connect is still waiting after Close")
	}
	client.Close()
	check()
}

// TestConnectTimeout: a connect the instance never answers ends after
// dialTimeout, and so does the client's connection.
func TestConnectTimeout(t *testing.T) {
	in := newInstance(t)
	defer func(d time.Duration) { dialTimeout = d }(dialTimeout)
	dialTimeout = 100 * time.Millisecond
	in.unanswered(t, 80)
	check := leakCheck(t)
	f := start(t, in, "tcp:127.0.0.1:8080", "tcp:127.0.0.1:80")
	client, err := net.Dial("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	deadline(client)
	n, err := client.Read(make([]byte, 1))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes, %v: want the connection closed", n, err)
	}
	if in.countTCP(t, synSent) != 0 {
		t.Fatal("the connect still waits")
	}
	client.Close()
	f.Close()
	check()
}

// synSent matches a socket connecting to 127.0.0.1:80.
func synSent(e tcpEntry) bool { return e.remote == "0100007F:0050" && e.state == tcpSynSent }

// unanswered makes a listener on 127.0.0.1:port in the instance whose
// SYNs go unanswered: a backlog of 0 with its one queued connection never
// accepted, so the kernel drops further SYNs and a connect waits.
func (in *instance) unanswered(t testing.TB, port int) {
	t.Helper()
	var lfd int
	var filler net.Conn
	var err error
	in.do(t, func() {
		if lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return
		}
		if err = unix.Bind(lfd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return
		}
		if err = unix.Listen(lfd, 0); err != nil {
			return
		}
		filler, err = net.Dial("tcp", fmt.Sprint("127.0.0.1:", port))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		filler.Close()
		unix.Close(lfd)
	})
	local := fmt.Sprintf("0100007F:%04X", port)
	waitFor(t, "the listener's queue is full", func() bool {
		return in.countTCP(t, func(e tcpEntry) bool { return e.local == local && e.state == tcpListen && e.rxQueue == 1 }) == 1
	}, func() string { return fmt.Sprint(in.tcpTable(t)) })
}

// tcpEntry is a line of /proc/net/tcp: addresses as the kernel writes
// them (hex, host byte order), the state, and the receive queue (for a
// listener, its accept queue).
type tcpEntry struct {
	local, remote, state string
	rxQueue              int
}

const (
	tcpSynSent = "02"
	tcpListen  = "0A"
)

// tcpTable reads the IPv4 TCP sockets of the instance's namespace.
func (in *instance) tcpTable(t testing.TB) []tcpEntry {
	t.Helper()
	var b []byte
	var err error
	in.do(t, func() { b, err = os.ReadFile("/proc/thread-self/net/tcp") })
	if err != nil {
		t.Fatal(err)
	}
	var entries []tcpEntry
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		var tx, rx int
		fmt.Sscanf(f[4], "%x:%x", &tx, &rx)
		entries = append(entries, tcpEntry{local: f[1], remote: f[2], state: f[3], rxQueue: rx})
	}
	return entries
}

func (in *instance) countTCP(t testing.TB, match func(tcpEntry) bool) int {
	n := 0
	for _, e := range in.tcpTable(t) {
		if match(e) {
			n++
		}
	}
	return n
}

package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/osthread"
)

// The tests never touch the machine's network: as root, the test binary
// runs itself again in a network namespace of its own, which plays the
// host (the daemon's namespace, where forwarders listen), and each test
// makes further namespaces that play instances. Both go away with the
// process.
const childEnv = "HANGAR_PROXY_TEST_NETNS"

// privateNetns is true in the re-run binary, whose tests may listen.
var privateNetns bool

// The test binary's main goroutine keeps the main thread (locked in
// init) and runs what onMain hands it, so that a test can act from the
// main thread.
func init() { runtime.LockOSThread() }

var mainFuncs = make(chan func())

func onMain(f func()) {
	done := make(chan struct{})
	mainFuncs <- func() { f(); close(done) }
	<-done
}

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(childEnv) != "":
		if err := loopbackUp(); err != nil {
			fmt.Fprintln(os.Stderr, "bring up lo in the test's namespace:", err)
			os.Exit(2)
		}
		privateNetns = true
	case os.Geteuid() == 0:
		cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), childEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		if err == nil {
			os.Exit(0)
		}
		// Tests that need a namespace skip and say so.
		fmt.Fprintln(os.Stderr, "cannot run the tests in a network namespace of their own:", err)
	}
	code := make(chan int)
	go func() { code <- m.Run() }()
	for {
		select {
		case f := <-mainFuncs:
			f()
		case c := <-code:
			os.Exit(c)
		}
	}
}

func needNetns(t testing.TB) {
	t.Helper()
	if !privateNetns {
		t.Skip("needs root, to run in a network namespace of its own")
	}
}

// loopbackUp brings up lo in the calling thread's network namespace.
func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}

// instance is a network namespace with lo up, standing for an instance's.
type instance struct {
	h    netns.NsHandle
	path string // an nsfs file naming it, as the device layer passes
}

func newInstance(t testing.TB) *instance {
	t.Helper()
	needNetns(t)
	var h netns.NsHandle
	var err error
	osthread.Throwaway(func() {
		if h, err = netns.New(); err == nil {
			err = loopbackUp()
		}
	})
	if err != nil {
		t.Fatalf("make an instance namespace: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return &instance{h: h, path: fmt.Sprintf("/proc/self/fd/%d", int(h))}
}

// host stands for the host side: the test's own namespace, where the
// forwarders listen. Benchmarks run their "direct" servers there.
func host(t testing.TB) *instance {
	t.Helper()
	needNetns(t)
	return &instance{h: netns.None()}
}

// do runs fn on a thread in the instance's namespace; sockets fn makes
// stay there.
func (in *instance) do(t testing.TB, fn func()) {
	t.Helper()
	var err error
	osthread.Throwaway(func() {
		if !in.h.IsOpen() {
			fn()
			return
		}
		if err = netns.Set(in.h); err == nil {
			fn()
		}
	})
	if err != nil {
		t.Fatalf("enter the instance namespace: %v", err)
	}
}

// listenTCP listens on addr inside the instance and serves each
// connection with serve until the test ends.
func (in *instance) listenTCP(t testing.TB, addr string, serve func(*net.TCPConn)) {
	t.Helper()
	var l net.Listener
	var err error
	in.do(t, func() { l, err = net.Listen("tcp", addr) })
	if err != nil {
		t.Fatalf("listen in the instance: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
}

// echo sends back what it reads, then half-closes: a client sees the end
// only if its own half-close went through.
func echo(c *net.TCPConn) {
	if _, err := io.Copy(c, c); err == nil {
		c.CloseWrite()
	}
}

// greet writes msg and ends, to tell servers apart.
func greet(msg string) func(*net.TCPConn) {
	return func(c *net.TCPConn) { io.WriteString(c, msg) }
}

// listenUDP serves datagrams inside the instance: each is answered with
// prefix followed by the datagram.
func (in *instance) listenUDP(t testing.TB, addr, prefix string) {
	t.Helper()
	var pc net.PacketConn
	var err error
	in.do(t, func() { pc, err = net.ListenPacket("udp", addr) })
	if err != nil {
		t.Fatalf("listen in the instance: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte(prefix), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
}

// waitFor polls cond until it holds; a condition that never does fails
// the test after a generous time, with what describe says.
func waitFor(t testing.TB, what string, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after 10s: %s", what, describe())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// leakCheck records the goroutines, descriptors and threads' namespaces
// now, and returns a check that what the test started is all gone.
func leakCheck(t testing.TB) func() {
	t.Helper()
	goroutines := runtime.NumGoroutine()
	fds := countFDs(t)
	hostNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		waitFor(t, "goroutines back to the start's count", func() bool { return runtime.NumGoroutine() <= goroutines },
			func() string {
				buf := make([]byte, 1<<20)
				return fmt.Sprintf("%d, was %d\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
			})
		waitFor(t, "descriptors back to the start's count", func() bool { return countFDs(t) <= fds },
			func() string { return fmt.Sprintf("%d, was %d", countFDs(t), fds) })
		// No thread of the process is left in an instance's namespace.
		waitFor(t, "every thread in the host namespace", func() bool { return len(strayThreads(t, hostNS)) == 0 },
			func() string { return strings.Join(strayThreads(t, hostNS), ", ") })
	}
}

// countFDs counts the open descriptors but pipes: io.Copy's splice
// keeps pipes in a pool of the runtime's, released only by the garbage
// collector. What a forwarder opens is sockets and a namespace file.
func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if link, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && !strings.HasPrefix(link, "pipe:") {
			n++
		}
	}
	return n
}

// strayThreads lists the threads whose network namespace is not hostNS.
func strayThreads(t testing.TB, hostNS string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var stray []string
	for _, e := range ents {
		ns, err := os.Readlink("/proc/self/task/" + e.Name() + "/ns/net")
		if err != nil {
			continue // the thread ended meanwhile
		}
		if ns != hostNS {
			stray = append(stray, e.Name()+" in "+ns)
		}
	}
	return stray
}

// nsInode is the inode of the network namespace a namespace file, or
// (with SIOCGSKNS) a socket, belongs to.
func nsInode(t testing.TB, fd int, socket bool) uint64 {
	t.Helper()
	if socket {
		nsfd, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
		if err != nil {
			t.Fatalf("SIOCGSKNS: %v", err)
		}
		defer unix.Close(nsfd)
		fd = nsfd
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestSocketFromHere: the socket is in the instance's namespace and the
// calling thread is back in its own; from the main thread too, which
// never enters the instance's.
func TestSocketFromHere(t *testing.T) {
	in := newInstance(t)
	want := nsInode(t, int(in.h), false)
	check := leakCheck(t)
	for _, name := range []string{"a thread", "the main thread"} {
		var fd, tid int
		var err error
		var back bool
		var before, after string
		run := func() {
			before, _ = os.Readlink("/proc/thread-self/ns/net")
			fd, back, err = socketFromHere(int(in.h), unix.AF_INET, unix.SOCK_STREAM)
			after, _ = os.Readlink("/proc/thread-self/ns/net")
			tid = unix.Gettid()
		}
		if name == "the main thread" {
			onMain(run)
			if tid != os.Getpid() {
				t.Fatalf("onMain ran on thread %d, not the main thread", tid)
			}
		} else {
			osthread.Throwaway(run)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := nsInode(t, fd, true); got != want {
			t.Errorf("%s: the socket is in namespace %d, not the instance's %d", name, got, want)
		}
		unix.Close(fd)
		if !back || before == "" || after != before {
			t.Errorf("%s: back %v, namespace %q before, %q after", name, back, before, after)
		}
	}
	check()
}

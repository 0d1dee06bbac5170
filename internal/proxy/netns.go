package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/osthread"
)

// nsGetNSType is NS_GET_NSTYPE from linux/nsfs.h (_IO(0xb7, 0x3)), which
// golang.org/x/sys does not define: it returns the CLONE_NEW* flag of the
// namespace an nsfs file refers to.
const nsGetNSType = 0xb703

// openNetns opens and checks an instance's network namespace file. The
// forwarder keeps it open for its whole life, so the namespace it
// connects into is the one it was given even if the instance's init
// exits and its PID is reused.
func openNetns(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.NotFound("network namespace %s does not exist", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open network namespace: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat network namespace %s: %w", path, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		f.Close()
		return nil, errdefs.Invalid("%s is not a namespace file", path)
	}
	if t, err := unix.IoctlRetInt(int(f.Fd()), nsGetNSType); err != nil || t != unix.CLONE_NEWNET {
		f.Close()
		return nil, errdefs.Invalid("%s is not a network namespace", path)
	}
	return f, nil
}

// nsThreads bounds the threads locked for a socket in an instance's
// namespace at once: a burst of connections must not become a burst of
// OS threads (the runtime dies at 10000).
var nsThreads = make(chan struct{}, 16)

// socketIn creates a non-blocking socket in the network namespace nsfd
// refers to. A socket keeps the namespace it was made in for its whole
// life, so only socket(2) runs there, and the connect and every read and
// write after it run on ordinary threads.
//
// The socket is made on a locked thread that enters the namespace and
// goes back to its own at once, and is unlocked only once back: a thread
// that cannot go back ends with its goroutine, as osthread.Throwaway's
// do. A thread of its own for each connection (osthread.Throwaway)
// measured some 150µs a connection here; the two setns some 3µs each.
func socketIn(nsfd, family, sotype int) (int, error) {
	nsThreads <- struct{}{}
	defer func() { <-nsThreads }()
	type result struct {
		fd  int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var r result
		var back bool
		r.fd, back, r.err = socketFromHere(nsfd, family, sotype)
		if back {
			runtime.UnlockOSThread()
		}
		done <- r
	}()
	r := <-done
	return r.fd, r.err
}

// socketFromHere makes the socket from the calling locked thread, or
// from a thread of its own when that is the main thread: the main thread
// never changes namespace, even for a moment (see osthread). back tells
// whether the calling thread is in its own namespace again.
func socketFromHere(nsfd, family, sotype int) (fd int, back bool, err error) {
	if unix.Gettid() == unix.Getpid() {
		osthread.Throwaway(func() { fd, _, err = socketThere(nsfd, family, sotype) })
		return fd, true, err
	}
	return socketThere(nsfd, family, sotype)
}

// socketThere makes the socket from the calling locked thread: it enters
// the namespace, makes the socket and goes back to the namespace it came
// from. back is false when it could not go back: the thread must then
// never run anything else.
func socketThere(nsfd, family, sotype int) (fd int, back bool, err error) {
	home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, true, fmt.Errorf("open the thread's own network namespace: %w", err)
	}
	defer unix.Close(home)
	if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
		return -1, true, fmt.Errorf("enter the instance's network namespace: %w", err)
	}
	fd, err = unix.Socket(family, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		err = fmt.Errorf("socket in the instance's network namespace: %w", err)
	}
	if rerr := unix.Setns(home, unix.CLONE_NEWNET); rerr != nil {
		return fd, false, err
	}
	return fd, true, err
}

// dialIn connects to target from inside the network namespace nsfd
// refers to and returns the connection (*net.TCPConn or *net.UDPConn).
// The connect waits in the runtime's poller, not on a thread, so a target
// that never answers costs a goroutine, not a thread. track is called
// with the connection before the wait, so that closing it (Close of the
// forwarder) ends the wait; ctx bounds the wait too.
func dialIn(ctx context.Context, nsfd int, proto string, target netip.AddrPort, track func(net.Conn) bool) (net.Conn, error) {
	var family int
	var sa unix.Sockaddr
	if ip := target.Addr(); ip.Is4() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(target.Port()), Addr: ip.As4()}
	} else {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(target.Port()), Addr: ip.As16()}
	}
	sotype := unix.SOCK_STREAM
	if proto == "udp" {
		sotype = unix.SOCK_DGRAM
	}
	fd, err := socketIn(nsfd, family, sotype)
	if err != nil {
		return nil, err
	}
	// A non-blocking TCP connect returns EINPROGRESS and completes later;
	// a UDP connect only records the peer.
	cerr := unix.Connect(fd, sa)
	if cerr != nil && cerr != unix.EINPROGRESS {
		unix.Close(fd)
		return nil, fmt.Errorf("connect to %s: %w", target, cerr)
	}
	// net.FileConn duplicates the descriptor into the runtime's poller and
	// gives a *net.TCPConn, which io.Copy splices.
	file := os.NewFile(uintptr(fd), "proxy-connect")
	conn, err := net.FileConn(file)
	file.Close()
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	if cerr == nil {
		return conn, nil
	}
	if !track(conn) {
		conn.Close()
		return nil, fmt.Errorf("connect to %s: %w", target, net.ErrClosed)
	}
	if err := waitConnected(ctx, conn.(*net.TCPConn)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	return conn, nil
}

// waitConnected waits for a non-blocking connect to finish: the socket
// turns writable, and SO_ERROR tells how it went.
func waitConnected(ctx context.Context, c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok {
		c.SetWriteDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { c.SetWriteDeadline(aLongTimeAgo) })
	// rc.Write clears the poller's "writable" mark before its first call
	// of the function, so that call must look for itself: the connect
	// may have finished already, and no new wake-up would come.
	var soErr error
	werr := rc.Write(func(fd uintptr) bool {
		n, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			soErr = err
		case n == int(unix.EINPROGRESS) || n == int(unix.EALREADY) || n == int(unix.EINTR):
			return false
		case n != 0:
			soErr = unix.Errno(n)
		default:
			// No error: connected, or still connecting, which
			// getpeername tells.
			if _, err := unix.Getpeername(int(fd)); err == unix.ENOTCONN {
				return false
			}
		}
		return true
	})
	if !stop() {
		// The context ended: its deadline in the past is set, or about
		// to be, so the connection is of no use even if it connected.
		return ctx.Err()
	}
	if werr != nil {
		return werr
	}
	if soErr != nil {
		return soErr
	}
	return c.SetWriteDeadline(time.Time{})
}

// aLongTimeAgo is a deadline in the past: setting it wakes a waiter at
// once with a timeout.
var aLongTimeAgo = time.Unix(1, 0)

package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/revert"
)

// Timeouts of a forwarder; variables so that tests can shorten them.
var (
	// dialTimeout bounds a connect inside the instance. The kernel's own
	// SYN retries take minutes against a target that drops them.
	dialTimeout = 10 * time.Second
	// udpIdle ends a UDP session that has carried nothing either way for
	// this long, as conntrack forgets an idle UDP flow.
	udpIdle = 2 * time.Minute
)

// maxUDPSessions bounds the live UDP sessions of one listen port: each
// holds a socket and a buffer, and a UDP source address costs a sender
// nothing to forge. Datagrams from new clients past the bound are dropped.
const maxUDPSessions = 1024

// Forwarder forwards the listen ports of one proxy device, in the
// daemon's network namespace, to the connect ports inside an instance's
// network namespace.
type Forwarder struct {
	listen, connect Address
	ns              *os.File // the instance's network namespace, held open
	nsfd            int
	log             *slog.Logger
	udpIdle         time.Duration

	ctx    context.Context // done when Close starts: ends dials in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the forwarder started

	mu        sync.Mutex
	closed    bool
	listeners []io.Closer
	addrs     []net.Addr
	live      map[io.Closer]struct{} // connections and UDP sessions
	closeErr  error
	closeOnce sync.Once
}

// Start listens on every port of listen in the calling goroutine's (the
// daemon's) network namespace and forwards what arrives to connect inside
// the network namespace netnsPath names: an nsfs file, such as a bind
// mount of one or /proc/PID/ns/net. ctx bounds Start only; the forwarder
// runs until Close. A port that is taken is an errdefs.Conflict naming
// it. When Start fails nothing it opened is left open.
//
// A listen port of 0 picks a free port (tests use it; ParseAddress never
// returns one); Addrs tells which.
func Start(ctx context.Context, listen, connect Address, netnsPath string, log *slog.Logger) (*Forwarder, error) {
	if err := ValidatePair(listen, connect); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ns, err := openNetns(netnsPath)
	if err != nil {
		return nil, err
	}
	r := revert.New()
	defer r.Fail()
	r.Add(func() { ns.Close() })

	f := &Forwarder{
		listen:  listen,
		connect: connect,
		ns:      ns,
		nsfd:    int(ns.Fd()),
		log:     log.With("listen", listen.String(), "connect", connect.String()),
		udpIdle: udpIdle,
		live:    map[io.Closer]struct{}{},
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	r.Add(f.cancel)

	var lc net.ListenConfig
	network := listen.Proto
	switch {
	case !listen.Addr.IsValid():
	case listen.Addr.Is4():
		network += "4"
	default:
		// Also keeps [::] to IPv6, so that tcp:0.0.0.0:80 and
		// tcp:[::]:80 can be two devices.
		network += "6"
	}
	for i := range listen.Ports {
		addr, hostport := listen.endpoint(i), listen.hostport(i)
		var l io.Closer
		var err error
		if listen.Proto == "tcp" {
			l, err = lc.Listen(ctx, network, hostport)
		} else {
			l, err = lc.ListenPacket(ctx, network, hostport)
		}
		if err != nil {
			return nil, listenError(addr, err)
		}
		r.Add(func() { l.Close() })
		f.listeners = append(f.listeners, l)
	}
	for i, l := range f.listeners {
		target := connect.target(i)
		f.wg.Add(1)
		switch l := l.(type) {
		case *net.TCPListener:
			f.addrs = append(f.addrs, l.Addr())
			go f.acceptLoop(l, target)
		case *net.UDPConn:
			f.addrs = append(f.addrs, l.LocalAddr())
			go f.udpLoop(l, target)
		}
	}
	r.Success()
	f.log.Debug("proxy started", "netns", netnsPath)
	return f, nil
}

// listenError names the address and says, as a kind, why it cannot be
// listened on.
func listenError(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return errdefs.Conflict("listen on %s: the address is already in use", addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return errdefs.Invalid("listen on %s: the address is not one of the host's", addr)
	}
	return fmt.Errorf("listen on %s: %w", addr, err)
}

// target is where the i-th listen port goes: the i-th connect port, or
// the only one. An empty connect host is the instance's loopback.
func (a Address) target(i int) netip.AddrPort {
	ip := a.Addr
	if !ip.IsValid() {
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if len(a.Ports) == 1 {
		i = 0
	}
	return netip.AddrPortFrom(ip, a.Ports[i])
}

// Addrs returns the addresses listened on, one per listen port.
func (f *Forwarder) Addrs() []net.Addr {
	return append([]net.Addr(nil), f.addrs...)
}

// track registers a live connection or session so that Close ends it; it
// returns false, and the caller must close c, once Close has started.
func (f *Forwarder) track(c io.Closer) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.live[c] = struct{}{}
	return true
}

func (f *Forwarder) untrack(c io.Closer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.live, c)
}

// Close stops the listeners and ends every live connection and session,
// and returns once every goroutine of the forwarder has. It is safe to
// call more than once.
func (f *Forwarder) Close() error {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.closed = true
		f.cancel()
		var errs []error
		for _, l := range f.listeners {
			if err := l.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		for c := range f.live {
			c.Close()
		}
		f.live = nil
		f.mu.Unlock()
		f.wg.Wait()
		if err := f.ns.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			f.closeErr = fmt.Errorf("close proxy %s: %w", f.listen, err)
		}
		f.log.Debug("proxy stopped")
	})
	return f.closeErr
}

// dial connects to target inside the instance, registered with the
// forwarder until the caller's untrack.
func (f *Forwarder) dial(target netip.AddrPort) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(f.ctx, dialTimeout)
	defer cancel()
	var pending net.Conn
	c, err := dialIn(ctx, f.nsfd, f.connect.Proto, target, func(c net.Conn) bool {
		pending = c
		return f.track(c)
	})
	if err != nil {
		if pending != nil {
			f.untrack(pending)
		}
		return nil, err
	}
	// A TCP connect in progress was tracked before its wait; tracking
	// again is harmless and covers the UDP and immediate cases.
	if !f.track(c) {
		c.Close()
		return nil, fmt.Errorf("connect to %s: %w", target, net.ErrClosed)
	}
	return c, nil
}

// closing reports whether Close has started.
func (f *Forwarder) closing() bool { return f.ctx.Err() != nil }

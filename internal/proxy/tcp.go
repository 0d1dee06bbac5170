package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"time"
)

// acceptLoop accepts on one TCP listen port until Close and serves each
// connection in a goroutine of its own.
func (f *Forwarder) acceptLoop(l *net.TCPListener, target netip.AddrPort) {
	defer f.wg.Done()
	var b backoff
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			if f.closing() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: retrying at once would
			// spin, so wait for connections to end.
			f.log.Warn("proxy accept failed", "error", err)
			if !b.wait(f) {
				return
			}
			continue
		}
		b.reset()
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go f.serveTCP(c, target)
	}
}

// serveTCP connects client to target inside the instance and copies both
// ways until both are done.
func (f *Forwarder) serveTCP(client *net.TCPConn, target netip.AddrPort) {
	defer f.wg.Done()
	defer func() {
		f.untrack(client)
		client.Close()
	}()
	c, err := f.dial(target)
	if err != nil {
		// The client sees its connection closed, as with LXD's forkproxy.
		// Debug: a stopped server in the instance would otherwise log a
		// line for every attempt.
		if !f.closing() {
			f.log.Debug("proxy connect failed", "client", client.RemoteAddr().String(), "error", err)
		}
		return
	}
	server := c.(*net.TCPConn)
	defer func() {
		f.untrack(server)
		server.Close()
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyHalf(server, client)
	}()
	copyHalf(client, server)
	<-done
}

// copyHalf copies src to dst until src's end, then half-closes dst so
// its peer sees the end too while the other direction goes on. Between
// two *net.TCPConn, io.Copy splices in the kernel. An error (a reset, a
// Close) ends both directions.
func copyHalf(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		src.Close()
		dst.Close()
		return
	}
	dst.CloseWrite()
}

// backoff spaces the retries of a loop whose syscall keeps failing.
type backoff struct{ d time.Duration }

func (b *backoff) reset() { b.d = 0 }

// wait sleeps for the next delay, 5ms doubling up to 1s, and returns
// false if the forwarder closed meanwhile.
func (b *backoff) wait(f *Forwarder) bool {
	b.d = min(max(2*b.d, 5*time.Millisecond), time.Second)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-f.ctx.Done():
		return false
	}
}

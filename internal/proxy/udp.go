package proxy

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxDatagram holds any UDP payload.
const maxDatagram = 64 << 10

// udpSession is one client address's flow: datagrams from the client go
// out of a socket of its own inside the instance, and what comes back to
// that socket goes back to the client from the listen port.
type udpSession struct {
	client netip.AddrPort
	conn   *net.UDPConn
	last   atomic.Int64 // time of the last datagram either way, as ns since the table's epoch
}

// udpTable holds one listen port's sessions. The listen loop adds; each
// session's reply loop removes its own.
type udpTable struct {
	epoch    time.Time // a monotonic base for last
	idle     time.Duration
	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession
}

func (t *udpTable) touch(s *udpSession) { s.last.Store(int64(time.Since(t.epoch))) }

// lookup returns the client's session, marked as just used so that it
// does not expire while the caller writes to it.
func (t *udpTable) lookup(client netip.AddrPort) *udpSession {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sessions[client]
	if s != nil {
		t.touch(s)
	}
	return s
}

// expired removes s if it carried nothing for the idle time, and tells
// whether it did. The check and the removal are one step under the lock,
// so a session lookup just renewed is never removed.
func (t *udpTable) expired(s *udpSession) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.epoch)-time.Duration(s.last.Load()) < t.idle {
		return false
	}
	t.remove(s)
	return true
}

// remove forgets s; the caller holds mu.
func (t *udpTable) remove(s *udpSession) {
	if t.sessions[s.client] == s {
		delete(t.sessions, s.client)
	}
}

// udpLoop reads the datagrams of one UDP listen port until Close and
// sends each on its client's session, made on the client's first one.
func (f *Forwarder) udpLoop(l *net.UDPConn, target netip.AddrPort) {
	defer f.wg.Done()
	t := &udpTable{epoch: time.Now(), idle: f.udpIdle, sessions: map[netip.AddrPort]*udpSession{}}
	buf := make([]byte, maxDatagram)
	var b backoff
	for {
		n, from, err := l.ReadFromUDPAddrPort(buf)
		if err != nil {
			if f.closing() || errors.Is(err, net.ErrClosed) {
				return
			}
			f.log.Warn("proxy receive failed", "error", err)
			if !b.wait(f) {
				return
			}
			continue
		}
		b.reset()
		s := t.lookup(from)
		if s == nil {
			if s = f.newSession(l, t, from, target); s == nil {
				continue
			}
		}
		// A failed send is that datagram's loss, as on the wire.
		s.conn.Write(buf[:n])
	}
}

// newSession opens client's flow to target and starts its reply loop; it
// returns nil, and the datagram is dropped, when it cannot.
func (f *Forwarder) newSession(l *net.UDPConn, t *udpTable, client, target netip.AddrPort) *udpSession {
	t.mu.Lock()
	full := len(t.sessions) >= maxUDPSessions
	t.mu.Unlock()
	if full {
		f.log.Debug("proxy drops a datagram: too many UDP clients", "client", client.String(), "max", maxUDPSessions)
		return nil
	}
	c, err := f.dial(target)
	if err != nil {
		if !f.closing() {
			f.log.Debug("proxy connect failed", "client", client.String(), "error", err)
		}
		return nil
	}
	s := &udpSession{client: client, conn: c.(*net.UDPConn)}
	t.mu.Lock()
	t.touch(s)
	t.sessions[client] = s
	t.mu.Unlock()
	f.wg.Add(1)
	go f.udpReplies(l, t, s)
	return s
}

// udpReplies sends what the instance answers on s back to s's client
// from the listen port, until s is idle for the table's idle time or
// closed.
func (f *Forwarder) udpReplies(l *net.UDPConn, t *udpTable, s *udpSession) {
	defer f.wg.Done()
	defer func() {
		f.untrack(s.conn)
		s.conn.Close()
	}()
	buf := make([]byte, maxDatagram)
	for {
		s.conn.SetReadDeadline(t.epoch.Add(time.Duration(s.last.Load()) + t.idle))
		n, err := s.conn.Read(buf)
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				if t.expired(s) {
					return
				}
			case errors.Is(err, syscall.ECONNREFUSED):
				// An ICMP "port unreachable" from the instance for an
				// earlier datagram: its server may be up for the next.
			default:
				t.mu.Lock()
				t.remove(s)
				t.mu.Unlock()
				return
			}
			continue
		}
		t.touch(s)
		l.WriteToUDPAddrPort(buf[:n], s.client)
	}
}

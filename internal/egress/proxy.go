package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure a Proxy.
type Options struct {
	Resolver Resolver
	CA       *CA
	// RootCAs verify upstream servers when the proxy terminates TLS; nil
	// is the host's roots (Go reads SSL_CERT_FILE and SSL_CERT_DIR).
	RootCAs *x509.CertPool
	// LookupHost resolves a plain-HTTP request's Host before a secret is
	// sent to it (nil: the host's resolver).
	LookupHost func(ctx context.Context, host string) ([]netip.Addr, error)
	// OriginalDst recovers where a connection was going (nil: the
	// kernel's SO_ORIGINAL_DST). Unit tests without NAT replace it.
	OriginalDst func(*net.TCPConn) (netip.AddrPort, error)
	// Dial connects to a destination (nil: a net.Dialer). Tests that run
	// the proxy in another network namespace dial from there.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	Log  *slog.Logger
}

// Timeouts of the proxy's own steps; a connection that is set up has
// none (long polls and streams last as long as both ends want).
const (
	dialTimeout      = 10 * time.Second
	handshakeTimeout = 15 * time.Second
)

// Proxy is the egress proxy: it takes connections the firewall redirected
// from instances and sends them on to where they were going, setting the
// headers of the instance's credentials on requests to the hosts they
// name.
type Proxy struct {
	o Options

	mu     sync.Mutex
	lns    []net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New makes a proxy; Serve runs it on a listener.
func New(o Options) *Proxy {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.OriginalDst == nil {
		o.OriginalDst = OriginalDst
	}
	if o.LookupHost == nil {
		o.LookupHost = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if o.Dial == nil {
		d := &net.Dialer{}
		o.Dial = d.DialContext
	}
	return &Proxy{o: o, conns: map[net.Conn]struct{}{}}
}

// dial connects to dst within dialTimeout.
func (p *Proxy) dial(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	return p.o.Dial(ctx, "tcp", dst.String())
}

// Serve accepts connections on ln until Close; it returns nil then.
func (p *Proxy) Serve(ln net.Listener) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ln.Close()
		return nil
	}
	p.lns = append(p.lns, ln)
	p.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("egress proxy: accept: %w", err)
		}
		if !p.track(c, true) {
			c.Close()
			return nil
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.track(c, false)
			defer c.Close()
			p.handle(c)
		}()
	}
}

func (p *Proxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.closed {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

// Close stops the listeners, ends every connection and waits for their
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for _, ln := range p.lns {
		ln.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// handle serves one redirected connection. Whatever fails, the instance
// sees its connection close: it never reaches its destination another
// way.
func (p *Proxy) handle(c net.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	src := netip.MustParseAddrPort(c.RemoteAddr().String())
	log := p.o.Log.With("src", src)
	pol, ok, err := p.o.Resolver.Policy(ctx, src.Addr().Unmap())
	if err != nil {
		log.Warn("egress: no policy", "err", err)
		return
	}
	if !ok {
		// Not an instance with egress: the port was reached directly.
		log.Debug("egress: connection from an unknown source refused")
		return
	}
	log = log.With("instance", pol.Instance)
	dst, err := p.o.OriginalDst(tc)
	if err != nil {
		log.Warn("egress: no original destination", "err", err)
		return
	}
	if local := netip.MustParseAddrPort(c.LocalAddr().String()); dst == local || dst.Addr().Unmap() == local.Addr().Unmap() && dst.Port() == local.Port() {
		log.Debug("egress: connection not redirected")
		return
	}
	log = log.With("dst", dst)
	if len(pol.Rules) == 0 {
		p.splice(ctx, log, c, nil, dst)
		return
	}
	br := bufio.NewReaderSize(c, maxHelloRecord)
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	if first[0] == recordTypeHandshake {
		p.handleTLS(ctx, log, c, br, dst, pol)
		return
	}
	p.serveHTTP(ctx, log, c, br, dst, func(req *http.Request) []Rule {
		host := hostOnly(req.Host)
		rules := pol.For(host)
		if len(rules) > 0 && !p.resolvesTo(ctx, host, dst.Addr()) {
			// The Host header is the guest's word only: a secret goes
			// in clear text to an address its name resolves to, never
			// to one the guest picked.
			log.Warn("egress: credential host does not resolve to the destination; not injected", "host", host)
			return nil
		}
		return rules
	}, nil)
}

func (p *Proxy) resolvesTo(ctx context.Context, host string, addr netip.Addr) bool {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	addrs, err := p.o.LookupHost(ctx, host)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(addrs, func(a netip.Addr) bool { return a.Unmap() == addr.Unmap() })
}

// hostOnly drops a port from a Host header.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.Trim(h, "[]")
}

// handleTLS reads the ClientHello's server name: a host a credential
// names is intercepted (TLS terminated with a leaf of the daemon's CA,
// then TLS again to the destination, verified for that name); any other,
// or none, is spliced through untouched.
func (p *Proxy) handleTLS(ctx context.Context, log *slog.Logger, c net.Conn, br *bufio.Reader, dst netip.AddrPort, pol Policy) {
	_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	sni, err := peekServerName(br)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		log.Debug("egress: not a TLS ClientHello", "err", err)
		return
	}
	if sni == "" || !pol.Names(sni) {
		p.splice(ctx, log, c, br, dst)
		return
	}
	log = log.With("sni", sni)
	// The destination first: an upstream that fails verification never
	// sees a byte of the guest's, and the guest gets no certificate of
	// ours for it.
	raw, err := p.dial(ctx, dst)
	if err != nil {
		log.Warn("egress: dial", "err", err)
		return
	}
	up := tls.Client(raw, &tls.Config{
		ServerName: sni, RootCAs: p.o.RootCAs, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12,
	})
	defer up.Close()
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	err = up.HandshakeContext(hctx)
	cancel()
	if err != nil {
		log.Warn("egress: upstream TLS", "err", err)
		return
	}
	leaf, err := p.o.CA.Leaf(sni)
	if err != nil {
		log.Error("egress: leaf certificate", "err", err)
		return
	}
	tc := tls.Server(&bufferedConn{Conn: c, r: br}, &tls.Config{
		Certificates: []tls.Certificate{*leaf}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12,
	})
	hctx, cancel = context.WithTimeout(ctx, handshakeTimeout)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		log.Debug("egress: guest TLS handshake", "err", err)
		return
	}
	defer tc.Close()
	// The upstream proved it is sni: the rules of that name apply,
	// whatever Host the guest writes.
	rules := pol.For(sni)
	p.serveHTTP(ctx, log, tc, bufio.NewReader(tc), dst, func(*http.Request) []Rule { return rules }, up)
}

// serveHTTP relays HTTP/1.x requests from the guest to dst (over up when
// given, else a TCP connection made at the first request), setting the
// headers rulesFor returns on each; bodies stream both ways. A 101
// answer (a WebSocket upgrade) turns the connection into a splice.
func (p *Proxy) serveHTTP(ctx context.Context, log *slog.Logger, client net.Conn, br *bufio.Reader, dst netip.AddrPort, rulesFor func(*http.Request) []Rule, up net.Conn) {
	var ubr *bufio.Reader
	defer func() {
		if up != nil {
			up.Close()
		}
	}()
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				log.Debug("egress: reading a request", "err", err)
			}
			return
		}
		for _, r := range rulesFor(req) {
			req.Header.Set(r.Header, r.Value)
		}
		if _, has := req.Header["User-Agent"]; !has {
			req.Header["User-Agent"] = []string{""} // Request.Write adds Go's otherwise
		}
		if up == nil {
			if up, err = p.dial(ctx, dst); err != nil {
				log.Warn("egress: dial", "err", err)
				writeBadGateway(client)
				return
			}
		}
		if ubr == nil {
			ubr = bufio.NewReader(up)
		}
		if err := req.Write(up); err != nil {
			log.Debug("egress: writing a request upstream", "err", err)
			return
		}
		for {
			resp, err := http.ReadResponse(ubr, req)
			if err != nil {
				log.Debug("egress: reading a response", "err", err)
				return
			}
			if resp.StatusCode == http.StatusSwitchingProtocols {
				if err := resp.Write(client); err != nil {
					return
				}
				p.pipe(client, br, up, ubr)
				return
			}
			if err := resp.Write(client); err != nil {
				resp.Body.Close()
				return
			}
			resp.Body.Close()
			if resp.StatusCode >= 200 || resp.StatusCode < 100 {
				if resp.Close || req.Close {
					return
				}
				break
			}
			// 1xx: the final answer follows.
		}
	}
}

func writeBadGateway(c net.Conn) {
	_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

// splice connects the guest to dst untouched: what was read already (in
// br) goes first.
func (p *Proxy) splice(ctx context.Context, log *slog.Logger, c net.Conn, br *bufio.Reader, dst netip.AddrPort) {
	up, err := p.dial(ctx, dst)
	if err != nil {
		log.Debug("egress: dial", "err", err)
		return
	}
	defer up.Close()
	var r io.Reader = c
	if br != nil {
		r = br
	}
	p.pipe(c, r, up, up)
}

// pipe copies both ways until both are done, passing half-closes on.
func (p *Proxy) pipe(client net.Conn, fromClient io.Reader, up net.Conn, fromUp io.Reader) {
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(up, fromClient)
		closeWrite(up)
		done <- struct{}{}
	}()
	_, _ = io.Copy(client, fromUp)
	closeWrite(client)
	<-done
}

func closeWrite(c net.Conn) {
	type cw interface{ CloseWrite() error }
	if w, ok := c.(cw); ok {
		_ = w.CloseWrite()
		return
	}
	c.Close()
}

// bufferedConn reads through r (which holds what was peeked) and writes
// to the connection.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

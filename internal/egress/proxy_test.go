package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// fakeResolver hands one policy to one source address.
type fakeResolver struct {
	src netip.Addr
	pol Policy
}

func (f fakeResolver) Policy(_ context.Context, src netip.Addr) (Policy, bool, error) {
	if src != f.src {
		return Policy{}, false, nil
	}
	return f.pol, true, nil
}

// upstream is a test server that records what it was sent.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func (u *upstream) handler(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	h := r.Header.Clone()
	h.Set("X-Host", r.Host)
	u.seen = append(u.seen, h)
	u.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(body))
}

func (u *upstream) last(t *testing.T) http.Header {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("upstream saw no request")
	}
	return u.seen[len(u.seen)-1]
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// proxyEnv is a proxy on loopback whose only "instance" is 127.0.0.1 and
// whose every connection was "redirected" from dst (no NAT on loopback:
// OriginalDst is faked).
type proxyEnv struct {
	addr       string
	ca         *CA
	upstreamCA *CA
	plain, tls *upstream
	dst        netip.AddrPort // where connections "were going"
	mu         sync.Mutex
}

func newProxyEnv(t *testing.T, pol Policy, lookup map[string]netip.Addr) *proxyEnv {
	t.Helper()
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	upCA, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &proxyEnv{ca: ca, upstreamCA: upCA, plain: &upstream{}, tls: &upstream{}}
	e.plain.srv = httptest.NewServer(http.HandlerFunc(e.plain.handler))
	t.Cleanup(e.plain.srv.Close)
	e.tls.srv = httptest.NewUnstartedServer(http.HandlerFunc(e.tls.handler))
	e.tls.srv.TLS = &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		return upCA.Leaf(h.ServerName)
	}}
	e.tls.srv.StartTLS()
	t.Cleanup(e.tls.srv.Close)

	roots := x509.NewCertPool()
	roots.AddCert(upCA.Certificate())
	p := New(Options{
		Resolver: fakeResolver{src: netip.MustParseAddr("127.0.0.1"), pol: pol},
		CA:       ca,
		RootCAs:  roots,
		LookupHost: func(_ context.Context, host string) ([]netip.Addr, error) {
			if a, ok := lookup[host]; ok {
				return []netip.Addr{a}, nil
			}
			return nil, errors.New("no such host")
		},
		OriginalDst: func(*net.TCPConn) (netip.AddrPort, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.dst, nil
		},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	t.Cleanup(func() {
		p.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return e
}

func (e *proxyEnv) redirectTo(s *httptest.Server) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dst = netip.MustParseAddrPort(s.Listener.Addr().String())
}

// client goes through the proxy whatever the URL says, trusting roots.
func (e *proxyEnv) client(roots ...*CA) *http.Client {
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r.Certificate())
	}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", e.addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
}

var testPolicy = Policy{Instance: "default/c1", Rules: []Rule{
	{Hosts: []string{"api.test"}, Header: "Authorization", Value: "Bearer real-secret"},
	{Hosts: []string{"*.svc.test"}, Header: "X-Api-Key", Value: "k=real-secret;again=real-secret"},
	// elsewhere.test resolves to an address the test servers do not
	// have: a guest naming it to reach another server gets no secret.
	{Hosts: []string{"elsewhere.test"}, Header: "Authorization", Value: "Bearer real-secret"},
}}

var testLookup = map[string]netip.Addr{
	"api.test": netip.MustParseAddr("127.0.0.1"), "a.svc.test": netip.MustParseAddr("127.0.0.1"),
	"elsewhere.test": netip.MustParseAddr("192.0.2.1"),
}

func get(t *testing.T, c *http.Client, url string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestHTTPInjection: plain HTTP to a named host gets the real header
// (replacing what the guest sent); other hosts, and a named host that
// does not resolve to the destination, get nothing.
func TestHTTPInjection(t *testing.T) {
	e := newProxyEnv(t, testPolicy, testLookup)
	e.redirectTo(e.plain.srv)
	c := e.client()
	port := e.plain.srv.Listener.Addr().(*net.TCPAddr).Port
	cases := []struct {
		name, url, header, want string
		sent                    http.Header
	}{
		{"named host", "http://api.test/x", "Authorization", "Bearer real-secret", nil},
		{"named host with a port", fmt.Sprintf("http://api.test:%d/x", port), "Authorization", "Bearer real-secret", nil},
		{"the guest's placeholder is replaced", "http://api.test/x", "Authorization", "Bearer real-secret",
			http.Header{"Authorization": {"Bearer hgr-cred-placeholder"}}},
		{"wildcard, value twice in the format", "http://a.svc.test/", "X-Api-Key", "k=real-secret;again=real-secret", nil},
		{"wildcard does not match its suffix itself", "http://svc.test/", "X-Api-Key", "", nil},
		{"other host", "http://other.test/", "Authorization", "", nil},
		{"named host resolving elsewhere: not injected", "http://elsewhere.test/", "Authorization", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := get(t, c, tc.url, tc.sent)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := e.plain.last(t).Get(tc.header); got != tc.want && !(tc.want == "" && got == tc.sent.Get(tc.header)) {
				t.Fatalf("upstream saw %s %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}

// TestHTTPKeepAliveAndBodies: several requests on one connection, each
// injected, with a streamed chunked upload and a body in the answer.
func TestHTTPKeepAliveAndBodies(t *testing.T) {
	e := newProxyEnv(t, testPolicy, testLookup)
	e.redirectTo(e.plain.srv)
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := range 3 {
		body := strings.Repeat("x", 100000*i)
		req, _ := http.NewRequest(http.MethodPost, "http://api.test/up", io.NopCloser(strings.NewReader(body)))
		req.ContentLength = -1 // chunked
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("POST /up %d", len(body)); string(got) != want {
			t.Fatalf("request %d: answer %q, want %q", i, got, want)
		}
		if a := e.plain.last(t).Get("Authorization"); a != "Bearer real-secret" {
			t.Fatalf("request %d: Authorization %q", i, a)
		}
	}
	if n := e.plain.count(); n != 3 {
		t.Fatalf("upstream saw %d requests, want 3", n)
	}
}

// TestHTTPSInterception: TLS to a named host is terminated with a leaf of
// the daemon's CA and re-encrypted to the upstream (verified against its
// own CA); the upstream receives the real header.
func TestHTTPSInterception(t *testing.T) {
	e := newProxyEnv(t, testPolicy, testLookup)
	e.redirectTo(e.tls.srv)
	resp := get(t, e.client(e.ca), "https://api.test/secret", http.Header{"Authorization": {"Bearer hgr-cred-x"}})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := e.tls.last(t).Get("Authorization"); got != "Bearer real-secret" {
		t.Fatalf("upstream saw Authorization %q", got)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if err := leaf.CheckSignatureFrom(e.ca.Certificate()); err != nil {
		t.Fatalf("the guest's certificate is not the daemon CA's: %v", err)
	}
	if err := leaf.VerifyHostname("api.test"); err != nil {
		t.Fatal(err)
	}

	// Trusting only the upstream's CA, the guest refuses the proxy:
	// interception is visible, never silent.
	req, _ := http.NewRequest(http.MethodGet, "https://api.test/", nil)
	if _, err := e.client(e.upstreamCA).Do(req); err == nil {
		t.Fatal("a client that does not trust the daemon CA accepted the intercepted connection")
	}
}

// TestHTTPSUpstreamUnverified: an upstream whose certificate the host
// does not trust gets nothing: the connection closes before the guest's
// handshake ends.
func TestHTTPSUpstreamUnverified(t *testing.T) {
	e := newProxyEnv(t, testPolicy, testLookup)
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("an unverified upstream got a request with Authorization %q", r.Header.Get("Authorization"))
	}))
	defer other.Close()
	e.redirectTo(other)
	req, _ := http.NewRequest(http.MethodGet, "https://api.test/", nil)
	if resp, err := e.client(e.ca).Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("request through an unverified upstream succeeded")
	}
}

// TestTLSPassthrough: TLS to a host no credential names, or without a
// server name, is spliced: the guest sees the upstream's own certificate
// and the upstream no injected header.
func TestTLSPassthrough(t *testing.T) {
	e := newProxyEnv(t, testPolicy, testLookup)
	e.redirectTo(e.tls.srv)
	resp := get(t, e.client(e.upstreamCA), "https://other.test/", nil)
	if err := resp.TLS.PeerCertificates[0].CheckSignatureFrom(e.upstreamCA.Certificate()); err != nil {
		t.Fatalf("passthrough: not the upstream's certificate: %v", err)
	}
	if got := e.tls.last(t).Get("Authorization"); got != "" {
		t.Fatalf("passthrough: upstream saw Authorization %q", got)
	}

	// No SNI (an IP literal as the name sends none).
	c, err := tls.Dial("tcp", e.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := c.ConnectionState().PeerCertificates[0]
	// Without SNI the upstream answers with httptest's default certificate.
	if !peer.Equal(e.tls.srv.Certificate()) {
		t.Fatalf("no SNI: certificate %q, want the upstream's own", peer.Subject)
	}
}

// TestBadConnections: garbage after a TLS record header, a truncated
// record and an unknown source all end in a closed connection with no
// byte sent upstream.
func TestBadConnections(t *testing.T) {
	e := newProxyEnv(t, testPolicy, testLookup)
	e.redirectTo(e.tls.srv)
	cases := []struct {
		name string
		data []byte
	}{
		{"garbage in a handshake record", append([]byte{0x16, 3, 1, 0, 8}, "garbage!"...)},
		{"zero-length record", []byte{0x16, 3, 1, 0, 0}},
		{"oversized record", []byte{0x16, 3, 1, 0xff, 0xff}},
		{"not TLS version 3", append([]byte{0x16, 2, 0, 0, 3}, 1, 2, 3)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(tc.data)
			c.(*net.TCPConn).CloseWrite()
			got, _ := io.ReadAll(c)
			if len(got) != 0 {
				t.Fatalf("got %q back", got)
			}
		})
	}
	if n := e.tls.count(); n != 0 {
		t.Fatalf("upstream saw %d requests", n)
	}

	// A source no instance holds: 127.0.0.2 is not the policy's.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n")
	if got, _ := io.ReadAll(c); len(got) != 0 {
		t.Fatalf("unknown source: got %q", got)
	}
	if n := e.plain.count() + e.tls.count(); n != 0 {
		t.Fatalf("unknown source reached an upstream (%d requests)", n)
	}
}

// TestPolicyWithoutRules: an instance with egress but no credential is
// spliced both ways, HTTP included.
func TestPolicyWithoutRules(t *testing.T) {
	e := newProxyEnv(t, Policy{Instance: "default/c2"}, testLookup)
	e.redirectTo(e.plain.srv)
	get(t, e.client(), "http://api.test/", http.Header{"Authorization": {"Bearer mine"}})
	if got := e.plain.last(t).Get("Authorization"); got != "Bearer mine" {
		t.Fatalf("upstream saw %q", got)
	}
}

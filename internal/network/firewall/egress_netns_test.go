package firewall

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hangar-dev/hangar/internal/egress"
	"github.com/hangar-dev/hangar/internal/osthread"
)

type egressResolver struct {
	src netip.Addr
	pol egress.Policy
}

func (r egressResolver) Policy(_ context.Context, src netip.Addr) (egress.Policy, bool, error) {
	return r.pol, src == r.src, nil
}

// dialerIn dials from a throwaway thread in ns: the socket is ns's.
func dialerIn(ns netns.NsHandle) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		var err error
		var d net.Dialer
		osthread.Throwaway(func() {
			if err = netns.Set(ns); err == nil {
				c, err = d.DialContext(ctx, network, addr)
			}
		})
		return c, err
	}
}

// upstreamServer records the Authorization header of what it serves.
type upstreamServer struct {
	mu   sync.Mutex
	auth []string
}

func (u *upstreamServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.auth = append(u.auth, r.Header.Get("Authorization"))
	u.mu.Unlock()
	fmt.Fprint(w, "upstream ", r.Host)
}

func (u *upstreamServer) last() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.auth) == 0 {
		return "<none>"
	}
	return u.auth[len(u.auth)-1]
}

// TestEgressRedirect: an "instance" namespace on a bridge of the "host"
// namespace reaches an "internet" namespace's servers on 80 and 443
// through the egress proxy, which the host's redirect sends it to and
// which recovers the destination with SO_ORIGINAL_DST; mode all refuses
// its other TCP, http_https_only lets it through; the proxy's port is not
// reachable directly.
func TestEgressRedirect(t *testing.T) {
	host, inst, inet := newNetNS(t), newNetNS(t), newNetNS(t)
	hnl := nlHandle(t, host)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "hgrbr0"}}
	if err := hnl.LinkAdd(br); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	addAddrs(t, hnl, "hgrbr0", "10.77.0.1/24")
	veth(t, host, "hi0", inst, "eth0")
	if err := hnl.LinkSetMaster(link(t, hnl, "hi0"), br); err != nil {
		t.Fatal(err)
	}
	inl := nlHandle(t, inst)
	addAddrs(t, inl, "eth0", "10.77.0.2/24")
	if err := inl.RouteAdd(&netlink.Route{LinkIndex: link(t, inl, "eth0").Attrs().Index, Gw: net.ParseIP("10.77.0.1")}); err != nil {
		t.Fatalf("default route: %v", err)
	}
	veth(t, host, "hn0", inet, "eth0")
	addAddrs(t, hnl, "hn0", "10.78.0.1/24")
	addAddrs(t, nlHandle(t, inet), "eth0", "10.78.0.2/24")

	// The "internet": HTTP on 80, HTTPS on 443 (a certificate for
	// api.test and other.test from its own CA), a plain service on 8080.
	upCA, err := egress.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	up := &upstreamServer{}
	listenIn := func(ns netns.NsHandle, addr string) net.Listener {
		var l net.Listener
		var err error
		inNS(t, ns, func() { l, err = net.Listen("tcp", addr) })
		if err != nil {
			t.Fatalf("listen %s: %v", addr, err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	for _, s := range []*http.Server{
		{Handler: up},
		{Handler: up, TLSConfig: &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return upCA.Leaf(h.ServerName)
		}}},
	} {
		t.Cleanup(func() { s.Close() })
		if s.TLSConfig == nil {
			go s.Serve(listenIn(inet, "10.78.0.2:80"))
		} else {
			go s.Serve(tls.NewListener(listenIn(inet, "10.78.0.2:443"), s.TLSConfig))
		}
	}
	whoamiTCP(t, inet, "10.78.0.2:8080")

	// The host: the daemon's CA, its proxy on every address.
	ca, err := egress.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(upCA.Certificate())
	pol := egress.Policy{Instance: "test/i1", Rules: []egress.Rule{
		{Hosts: []string{"api.test"}, Header: "Authorization", Value: "Bearer real-secret"}}}
	p := egress.New(egress.Options{
		Resolver: egressResolver{src: netip.MustParseAddr("10.77.0.2"), pol: pol},
		CA:       ca, RootCAs: roots, Dial: dialerIn(host),
		LookupHost: func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("10.78.0.2")}, nil
		},
	})
	pln := listenIn(host, "0.0.0.0:0")
	go p.Serve(pln)
	t.Cleanup(func() { p.Close() })
	proxyPort := uint16(pln.Addr().(*net.TCPAddr).Port)

	f := openFirewall(t, host)
	if err := f.EnableForwarding(true, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Remove() })
	network := Network{Bridge: "hgrbr0", IPv4: netip.MustParsePrefix("10.77.0.1/24"), NAT4: true}
	st := func(mode EgressMode) State {
		return State{Networks: []Network{network}, Egress: []Egress{{
			Bridge: "hgrbr0", Sources: []netip.Addr{netip.MustParseAddr("10.77.0.2")},
			ProxyPort: proxyPort, Mode: mode, Comment: "test/i1"}}}
	}

	// The "instance"'s client: every name is the internet server.
	client := func(trust *egress.CA) *http.Client {
		pool := x509.NewCertPool()
		pool.AddCert(trust.Certificate())
		dial := dialerIn(inst)
		return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				return dial(ctx, network, net.JoinHostPort("10.78.0.2", port))
			},
			TLSClientConfig: &tls.Config{RootCAs: pool},
		}}
	}
	fetch := func(c *http.Client, url string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer hgr-cred-placeholder")
		resp, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}

	// Without the egress rules the guest reaches the servers directly and
	// its placeholder is all they see.
	if err := f.Apply(State{Networks: []Network{network}}); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(client(ca), "http://api.test/"); err != nil || up.last() != "Bearer hgr-cred-placeholder" {
		t.Fatalf("no egress: %v, upstream saw %q", err, up.last())
	}

	if err := f.Apply(st(EgressAll)); err != nil {
		t.Fatal(err)
	}
	t.Run("http injected", func(t *testing.T) {
		if _, err := fetch(client(ca), "http://api.test/"); err != nil {
			t.Fatal(err)
		}
		if got := up.last(); got != "Bearer real-secret" {
			t.Fatalf("upstream saw %q", got)
		}
	})
	t.Run("https intercepted and injected", func(t *testing.T) {
		resp, err := fetch(client(ca), "https://api.test/")
		if err != nil {
			t.Fatal(err)
		}
		if got := up.last(); got != "Bearer real-secret" {
			t.Fatalf("upstream saw %q", got)
		}
		if err := resp.TLS.PeerCertificates[0].CheckSignatureFrom(ca.Certificate()); err != nil {
			t.Fatalf("not the daemon CA's leaf: %v", err)
		}
	})
	t.Run("https passthrough", func(t *testing.T) {
		resp, err := fetch(client(upCA), "https://other.test/")
		if err != nil {
			t.Fatal(err)
		}
		if got := up.last(); got != "Bearer hgr-cred-placeholder" {
			t.Fatalf("upstream saw %q", got)
		}
		if err := resp.TLS.PeerCertificates[0].CheckSignatureFrom(upCA.Certificate()); err != nil {
			t.Fatalf("not the upstream's own certificate: %v", err)
		}
	})
	t.Run("mode all refuses other tcp", func(t *testing.T) {
		if _, err := ask(t, inst, "tcp", "10.78.0.2:8080"); err == nil {
			t.Fatal("direct TCP to 8080 got through in mode all")
		}
		if _, err := ask(t, inst, "tcp", "10.77.0.1:22"); err == nil {
			t.Fatal("direct TCP to the host got through in mode all")
		}
	})
	t.Run("proxy port closed to direct connections", func(t *testing.T) {
		// Dropped, not refused: nothing answers within the timeout.
		if err := dial(t, inet, fmt.Sprintf("10.78.0.1:%d", proxyPort), time.Second); err == nil {
			t.Fatal("the proxy's port answered a direct connection")
		}
	})
	t.Run("http_https_only lets other tcp through", func(t *testing.T) {
		if err := f.Apply(st(EgressHTTPOnly)); err != nil {
			t.Fatal(err)
		}
		if got, err := ask(t, inst, "tcp", "10.78.0.2:8080"); err != nil || got != "10.78.0.1" {
			t.Fatalf("8080: %q, %v; want an answer (masqueraded)", got, err)
		}
		if _, err := fetch(client(ca), "https://api.test/"); err != nil || up.last() != "Bearer real-secret" {
			t.Fatalf("https in http_https_only: %v, upstream saw %q", err, up.last())
		}
	})
}

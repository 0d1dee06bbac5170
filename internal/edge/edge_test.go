package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/store"
	"github.com/hangar-dev/hangar/internal/trust"
)

type fakeTrust map[string]auth.Identity

func (f fakeTrust) Identify(fp string) (auth.Identity, bool) { id, ok := f[fp]; return id, ok }

func TestIdentify(t *testing.T) {
	known, unknown := []byte("known-der"), []byte("unknown-der")
	a := &Authenticator{Trust: fakeTrust{trust.Fingerprint(known): {Kind: auth.KindCertificate, Name: "bob"}}}
	unixCtx := context.WithValue(context.Background(), http.LocalAddrContextKey, &net.UnixAddr{Name: "/s", Net: "unix"})
	tcpCtx := context.WithValue(context.Background(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443})
	withCert := func(der []byte) *tls.ConnectionState {
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Raw: der}}}
	}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		tls  *tls.ConnectionState
		want auth.Identity
	}{
		{"unix socket", unixCtx, nil, Root},
		{"plain TCP", tcpCtx, nil, Untrusted},
		{"TLS without a certificate", tcpCtx, &tls.ConnectionState{}, Untrusted},
		{"TLS with an unknown certificate", tcpCtx, withCert(unknown), Untrusted},
		{"TLS with a trusted certificate", tcpCtx, withCert(known), auth.Identity{Kind: auth.KindCertificate, Name: "bob"}},
		{"no listener address", context.Background(), nil, Untrusted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/1.0", nil).WithContext(tc.ctx)
			r.TLS = tc.tls
			if got := a.Identify(r); got.Kind != tc.want.Kind || got.Name != tc.want.Name {
				t.Errorf("identity %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAudit(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		status         int
		logged         bool
		want           []string
	}{
		{"GET", "/1.0/instances", 200, false, nil},
		{"GET", "/1.0/instances", 403, true, []string{"level=WARN", "status=403", "identity=bob", "method=GET"}},
		{"GET", "/1.0", 401, true, []string{"status=401"}},
		{"POST", "/1.0/instances?project=p1", 202, true, []string{"level=INFO", "project=p1", "method=POST", "path=/1.0/instances", "status=202", "logger=audit"}},
		{"DELETE", "/1.0/instances/c1", 404, true, []string{"project=default", "status=404"}},
		{"PATCH", "/1.0", 0, true, []string{"status=200"}}, // nothing written: 200
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			var buf bytes.Buffer
			log := AuditLogger(slog.New(slog.NewTextHandler(&buf, nil)))
			h := Audit(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.status != 0 {
					w.WriteHeader(tc.status)
				}
			}))
			r := httptest.NewRequest(tc.method, tc.target, nil)
			r = r.WithContext(auth.WithIdentity(r.Context(), auth.Identity{Kind: auth.KindCertificate, Name: "bob"}))
			h.ServeHTTP(httptest.NewRecorder(), r)
			out := buf.String()
			if (out != "") != tc.logged {
				t.Fatalf("logged %q, want logged=%v", out, tc.logged)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("audit line %q lacks %q", out, w)
				}
			}
		})
	}
}

// TestIdentifyBearer runs the real token service on a real store: every
// way a bearer token can fail is untrusted and logged, on the socket as
// over TLS, and a good one is the token whatever the transport.
func TestIdentifyBearer(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "hangar.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	tokens := &trust.APITokens{DB: st, Now: func() time.Time { return now }}
	_, viewer, err := tokens.Create(ctx, "v", "", "viewer", "")
	if err != nil {
		t.Fatal(err)
	}
	_, short, err := tokens.Create(ctx, "short", "", "operator", "1H")
	if err != nil {
		t.Fatal(err)
	}
	_, revoked, err := tokens.Create(ctx, "gone", "", "operator", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tokens.Revoke(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	// The clock moves past short's expiry; viewer never expires.
	now = now.Add(2 * time.Hour)

	known := []byte("known-der")
	var logBuf bytes.Buffer
	a := &Authenticator{
		Trust:  fakeTrust{trust.Fingerprint(known): {Kind: auth.KindCertificate, Name: "bob"}},
		Tokens: tokens,
		Log:    slog.New(slog.NewTextHandler(&logBuf, nil)),
	}
	unixCtx := context.WithValue(ctx, http.LocalAddrContextKey, &net.UnixAddr{Name: "/s", Net: "unix"})
	tcpCtx := context.WithValue(ctx, http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443})
	certTLS := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Raw: known}}}
	wrongSecret := viewer[:len(viewer)-2] + "AA"
	if wrongSecret == viewer {
		wrongSecret = viewer[:len(viewer)-2] + "BB"
	}
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		tls    *tls.ConnectionState
		header string
		want   auth.Identity
		logged bool
	}{
		{"unix, viewer token", unixCtx, nil, "Bearer " + viewer, auth.Identity{Kind: auth.KindToken, Name: "v"}, false},
		{"unix, lower-case scheme", unixCtx, nil, "bearer " + viewer, auth.Identity{Kind: auth.KindToken, Name: "v"}, false},
		{"TLS, token wins over the certificate", tcpCtx, certTLS, "Bearer " + viewer, auth.Identity{Kind: auth.KindToken, Name: "v"}, false},
		{"TLS without a certificate, token", tcpCtx, &tls.ConnectionState{}, "Bearer " + viewer, auth.Identity{Kind: auth.KindToken, Name: "v"}, false},
		{"unix, other scheme ignored", unixCtx, nil, "Basic dTpw", Root, false},
		{"unix, wrong secret", unixCtx, nil, "Bearer " + wrongSecret, Untrusted, true},
		{"unix, expired", unixCtx, nil, "Bearer " + short, Untrusted, true},
		{"TLS, revoked", tcpCtx, certTLS, "Bearer " + revoked, Untrusted, true},
		{"unix, malformed", unixCtx, nil, "Bearer not-a-token", Untrusted, true},
		{"unix, empty bearer", unixCtx, nil, "Bearer ", Untrusted, true},
		{"unix, unknown id", unixCtx, nil, "Bearer hgr_4242_abc", Untrusted, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logBuf.Reset()
			r := httptest.NewRequest("GET", "/1.0", nil).WithContext(tc.ctx)
			r.TLS = tc.tls
			r.Header.Set("Authorization", tc.header)
			got := a.Identify(r)
			if got.Kind != tc.want.Kind || got.Name != tc.want.Name {
				t.Errorf("identity %+v, want %+v", got, tc.want)
			}
			logged := strings.Contains(logBuf.String(), "bearer token refused")
			if logged != tc.logged {
				t.Errorf("logged %q, want logged=%v", logBuf.String(), tc.logged)
			}
			if strings.Contains(logBuf.String(), tc.header[len("Bearer "):]) && len(tc.header) > len("Bearer ") {
				t.Errorf("the log shows the token: %q", logBuf.String())
			}
		})
	}

	// Without a token service a bearer header is untrusted, even on the
	// socket.
	r := httptest.NewRequest("GET", "/1.0", nil).WithContext(unixCtx)
	r.Header.Set("Authorization", "Bearer "+viewer)
	if got := (&Authenticator{}).Identify(r); got.Kind != auth.KindUntrusted {
		t.Errorf("no token service: %+v", got)
	}
}

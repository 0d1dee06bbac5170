package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
)

func TestNormalizeAddr(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"10.0.0.1", "10.0.0.1:8443", ""},
		{"10.0.0.1:9443", "10.0.0.1:9443", ""},
		{"https://10.0.0.1:9443/", "10.0.0.1:9443", ""},
		{"https://host.example", "host.example:8443", ""},
		{"[::1]", "[::1]:8443", ""},
		{"[::1]:1", "[::1]:1", ""},
		{"::1", "[::1]:8443", ""},
		{"http://10.0.0.1", "", "only https://"},
		{"https://h/path", "", "want HOST[:PORT]"},
		{"", "", "want HOST[:PORT]"},
		{":8443", "", "has no host"},
		{"a:b:c", "", "want HOST[:PORT]"},
	}
	for _, tt := range tests {
		got, err := NormalizeAddr(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("NormalizeAddr(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeAddr(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseToken(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fp := strings.Repeat("ab", 32)
	good := api.CertificateAddToken{ClientName: "bob", Fingerprint: fp, Addresses: []string{"10.0.0.1:8443"}, Secret: "s"}
	expired := good
	expired.ExpiresAt = now.Add(-time.Second)
	later := good
	later.ExpiresAt = now.Add(time.Hour)
	noAddr := good
	noAddr.Addresses = nil
	shortFP := good
	shortFP.Fingerprint = "abcd"
	notHex := good
	notHex.Fingerprint = strings.Repeat("zz", 32)
	tests := []struct {
		name, in, err string
	}{
		{"good", good.String(), ""},
		{"good with spaces", "  " + good.String() + "\n", ""},
		{"expires later", later.String(), ""},
		{"expired", expired.String(), "trust token expired"},
		{"no address", noAddr.String(), "names no server address"},
		{"short fingerprint", shortFP.String(), "not a SHA-256"},
		{"fingerprint not hex", notHex.String(), "not a SHA-256"},
		{"not base64", "not a token!", "token is not base64"},
		{"not JSON", "aGVsbG8=", "token is not JSON"},
		{"no secret", "e30=", "token has no secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := ParseToken(tt.in, now)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || tok.ClientName != "bob" || tok.Fingerprint != fp {
				t.Fatalf("ParseToken = %+v, %v", tok, err)
			}
		})
	}
}

func TestCertificateDER(t *testing.T) {
	certPEM, keyPEM, err := GenerateClientCertificate("me")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCertificatePEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "me" || len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("generated certificate: CN %q, usage %v", cert.Subject.CommonName, cert.ExtKeyUsage)
	}
	tests := []struct {
		name string
		in   []byte
		err  string
	}{
		{"PEM", certPEM, ""},
		{"PEM after the key", append(append([]byte{}, keyPEM...), certPEM...), ""},
		{"DER", cert.Raw, ""},
		{"key alone", keyPEM, "no PEM certificate"},
		{"garbage", []byte("hello"), "not an X.509 certificate"},
		{"empty", nil, "not an X.509 certificate"},
	}
	for _, tt := range tests {
		der, err := CertificateDER(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || string(der) != string(cert.Raw) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// fakeRemote is an HTTPS server answering GET /1.0 with whether the
// client's certificate is trusted and POST /1.0/certificates by trusting
// it when the password is right, as hangard does.
type fakeRemote struct {
	srv      *httptest.Server
	password string
	mu       sync.Mutex
	trusted  map[string]bool
	posts    []string // passwords received
}

func newFakeRemote(t *testing.T, password string, conf *tls.Config) *fakeRemote {
	t.Helper()
	f := &fakeRemote{password: password, trusted: map[string]bool{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	// Refused handshakes are what some tests want: not log noise.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.TLS = conf
	if f.srv.TLS == nil {
		f.srv.TLS = &tls.Config{}
	}
	f.srv.TLS.ClientAuth = tls.RequestClientCert
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRemote) addr() string { return strings.TrimPrefix(f.srv.URL, "https://") }

func (f *fakeRemote) certPEM() []byte { return EncodeCertificatePEM(f.srv.Certificate().Raw) }

func (f *fakeRemote) serve(w http.ResponseWriter, r *http.Request) {
	fp := ""
	if len(r.TLS.PeerCertificates) > 0 {
		fp = CertificateFingerprint(r.TLS.PeerCertificates[0].Raw)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == "GET" && r.URL.Path == "/1.0":
		auth := "untrusted"
		if f.trusted[fp] {
			auth = "trusted"
		}
		fakeSync(w, api.ServerUntrusted{Auth: auth}, "")
	case r.Method == "POST" && r.URL.Path == "/1.0/certificates":
		var req api.CertificatesPost
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.posts = append(f.posts, req.Password)
		if fp == "" || req.Password != f.password {
			fakeError(w, http.StatusForbidden, "wrong trust password")
			return
		}
		f.trusted[fp] = true
		fakeSync(w, map[string]any{}, "")
	default:
		fakeError(w, http.StatusForbidden, "not authorized")
	}
}

func TestConnectHTTPSPinning(t *testing.T) {
	f := newFakeRemote(t, "pw", nil)
	certPEM, keyPEM, err := GenerateClientCertificate("me")
	if err != nil {
		t.Fatal(err)
	}
	// Every httptest server has the same certificate: another one is
	// made here.
	otherPEM, _, err := GenerateClientCertificate("other server")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	c, err := ConnectHTTPS("https://"+f.addr(), certPEM, keyPEM, f.certPEM())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, err := c.IsTrusted(ctx); err != nil || ok {
		t.Fatalf("IsTrusted before redeeming: %v, %v", ok, err)
	}
	var se *Error
	if err := c.RedeemTrust(ctx, "wrong"); !errors.As(err, &se) || se.StatusCode != http.StatusForbidden || se.Message != "wrong trust password" {
		t.Fatalf("RedeemTrust with a wrong password: %v", err)
	}
	if err := c.RedeemTrust(ctx, "pw"); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.IsTrusted(ctx); err != nil || !ok {
		t.Fatalf("IsTrusted after redeeming: %v, %v", ok, err)
	}

	// Pinned to another server's certificate: refused before any request.
	bad, err := ConnectHTTPS(f.addr(), certPEM, keyPEM, otherPEM)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	var mismatch *CertificateMismatchError
	if _, _, err := bad.GetServer(ctx); !errors.As(err, &mismatch) || mismatch.Found != CertificateFingerprint(f.srv.Certificate().Raw) {
		t.Fatalf("GetServer pinned to another certificate: %v", err)
	}

	// No pin: the system's roots, which do not know a self-signed server.
	roots, err := ConnectHTTPS(f.addr(), certPEM, keyPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer roots.Close()
	if _, _, err := roots.GetServer(ctx); err == nil {
		t.Fatal("a self-signed server passed the system roots' check")
	}

	for _, tt := range []struct {
		name                  string
		cert, key, serverCert []byte
		err                   string
	}{
		{"bad client key", certPEM, []byte("x"), f.certPEM(), "load client certificate"},
		{"bad server certificate", certPEM, keyPEM, []byte("x"), "server certificate"},
		{"bad address", certPEM, keyPEM, f.certPEM(), "only https://"},
	} {
		addr := f.addr()
		if tt.name == "bad address" {
			addr = "http://" + addr
		}
		if _, err := ConnectHTTPS(addr, tt.cert, tt.key, tt.serverCert); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
		}
	}
}

func TestConnectHTTPSRefusesOldTLS(t *testing.T) {
	f := newFakeRemote(t, "pw", &tls.Config{MaxVersion: tls.VersionTLS11})
	c, err := ConnectHTTPS(f.addr(), nil, nil, f.certPEM())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.GetServer(context.Background()); err == nil {
		t.Fatal("a TLS 1.1 server was talked to")
	}
	if _, err := GetServerCertificate(context.Background(), f.addr()); err == nil {
		t.Fatal("GetServerCertificate accepted TLS 1.1")
	}
}

func TestAddRemoteWithToken(t *testing.T) {
	certPEM, keyPEM, err := GenerateClientCertificate("me")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f := newFakeRemote(t, "", nil)
	fp := CertificateFingerprint(f.srv.Certificate().Raw)
	tok := api.CertificateAddToken{ClientName: "me", Fingerprint: fp, Addresses: []string{"127.0.0.1:1", f.addr()}, Secret: "s3"}
	// The fake takes the whole token text as its password, as hangard
	// decodes the token from it.
	f.password = tok.String()

	t.Run("wrong fingerprint", func(t *testing.T) {
		forged := tok
		forged.Addresses = []string{f.addr()}
		forged.Fingerprint = strings.Repeat("0", 64)
		var mismatch *CertificateMismatchError
		if _, err := AddRemoteWithToken(ctx, forged.String(), certPEM, keyPEM); !errors.As(err, &mismatch) {
			t.Fatalf("error %v, want a certificate mismatch", err)
		}
		if len(f.posts) != 0 {
			t.Fatalf("the token was sent to a server of another fingerprint: %q", f.posts)
		}
	})
	t.Run("good", func(t *testing.T) {
		// The first address answers nothing: the next one is tried.
		r, err := AddRemoteWithToken(ctx, tok.String(), certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Client.Close()
		if r.Addr != f.addr() || string(r.ServerCertPEM) != string(f.certPEM()) {
			t.Errorf("remote %s, cert %q", r.Addr, r.ServerCertPEM)
		}
		if len(f.posts) != 1 || f.posts[0] != tok.String() {
			t.Errorf("server got %q, want the token text once", f.posts)
		}
	})
	t.Run("already trusted", func(t *testing.T) {
		r, err := AddRemoteWithToken(ctx, tok.String(), certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		r.Client.Close()
		if len(f.posts) != 1 {
			t.Errorf("a token was spent on a server that trusts the client already: %q", f.posts)
		}
	})
	t.Run("no server answers", func(t *testing.T) {
		dead := tok
		dead.Addresses = []string{"127.0.0.1:1"}
		if _, err := AddRemoteWithToken(ctx, dead.String(), certPEM, keyPEM); err == nil || !strings.Contains(err.Error(), "no server of the token") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestAddRemoteWithPassword(t *testing.T) {
	certPEM, keyPEM, err := GenerateClientCertificate("me")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f := newFakeRemote(t, "pw", nil)
	cert, err := GetServerCertificate(ctx, f.addr())
	if err != nil {
		t.Fatal(err)
	}
	if string(EncodeCertificatePEM(cert.Raw)) != string(f.certPEM()) {
		t.Fatal("GetServerCertificate returned another certificate")
	}
	if _, err := AddRemoteWithPassword(ctx, f.addr(), "", certPEM, keyPEM, f.certPEM()); err == nil || !strings.Contains(err.Error(), "give a trust token or the trust password") {
		t.Errorf("no password: %v", err)
	}
	if _, err := AddRemoteWithPassword(ctx, f.addr(), "nope", certPEM, keyPEM, f.certPEM()); err == nil || !strings.Contains(err.Error(), "wrong trust password") {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := AddRemoteWithPassword(ctx, f.addr(), "pw", certPEM, keyPEM, nil); err == nil {
		t.Error("no certificate to pin: accepted")
	}
	r, err := AddRemoteWithPassword(ctx, f.addr(), "pw", certPEM, keyPEM, f.certPEM())
	if err != nil {
		t.Fatal(err)
	}
	r.Client.Close()
}

func TestTokens(t *testing.T) {
	fp := strings.Repeat("cd", 32)
	var cancelled []string
	c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenOp := func(id, name string, status api.StatusCode) api.Operation {
			return api.Operation{ID: id, Class: api.OperationClassToken, StatusCode: status, Metadata: map[string]any{
				"secret": "sec-" + id, "fingerprint": fp, "addresses": []any{"127.0.0.1:8443"},
				"request": map[string]any{"name": name},
			}}
		}
		switch {
		case r.Method == "POST" && r.URL.Path == "/1.0/certificates":
			var req api.CertificatesPost
			_ = json.NewDecoder(r.Body).Decode(&req)
			if !req.Token || req.Name != "bob" || !req.Restricted || strings.Join(req.Projects, ",") != "p1" || r.URL.Query().Has("project") {
				fakeError(w, 400, "unexpected request")
				return
			}
			fakeAsync(w, tokenOp("op1", "bob", api.Running))
		case r.Method == "GET" && r.URL.Path == "/1.0/operations":
			fakeSync(w, map[string][]api.Operation{
				"running": {tokenOp("op1", "bob", api.Running), tokenOp("op2", "bob", api.Running), tokenOp("op3", "ann", api.Running),
					{ID: "op4", Class: api.OperationClassTask, StatusCode: api.Running}},
				"cancelled": {tokenOp("op5", "bob", api.Cancelled)},
			}, "")
		case r.Method == "DELETE" && strings.HasPrefix(r.URL.Path, "/1.0/operations/"):
			cancelled = append(cancelled, strings.TrimPrefix(r.URL.Path, "/1.0/operations/"))
			fakeSync(w, map[string]any{}, "")
		default:
			fakeError(w, 404, "not found")
		}
	})).UseProject("p9")
	ctx := context.Background()
	tok, err := c.CreateToken(ctx, TokenRequest{Name: "bob", Restricted: true, Projects: []string{"p1"}})
	if err != nil {
		t.Fatal(err)
	}
	back, err := api.DecodeCertificateAddToken(tok.String())
	if err != nil || back.Secret != "sec-op1" || back.Fingerprint != fp || back.ClientName != "bob" || tok.OperationID != "op1" {
		t.Fatalf("token %+v (%v)", back, err)
	}
	if _, err := c.CreateToken(ctx, TokenRequest{}); err == nil {
		t.Error("a token without a name was asked for")
	}
	toks, err := c.GetTokens(ctx)
	if err != nil || len(toks) != 3 {
		t.Fatalf("GetTokens: %v, %v", toks, err)
	}
	if n, err := c.RevokeToken(ctx, "bob"); err != nil || n != 2 || strings.Join(cancelled, ",") != "op1,op2" {
		t.Errorf("RevokeToken(bob) = %d, %v; cancelled %v", n, err, cancelled)
	}
	if _, err := c.RevokeToken(ctx, "zed"); !IsNotFound(err) {
		t.Errorf("RevokeToken(zed): %v", err)
	}
}

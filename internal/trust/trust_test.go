package trust

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/operation"
	"github.com/hangar-dev/hangar/internal/store"
)

// clock is a settable time for the service and the limiter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newService(t *testing.T, password string) (*Service, *clock, *operation.Registry) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hangar.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ops := operation.New(nil, time.Minute)
	t.Cleanup(ops.Close)
	cert, err := LoadServerCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hash := ""
	if password != "" {
		// A low count: the scheme is what is tested, not the work factor.
		if hash, err = hashPassword(password, 1000); err != nil {
			t.Fatal(err)
		}
	}
	clk := &clock{t: time.Now()}
	s, err := New(context.Background(), Config{
		DB: st, Ops: ops, Cert: cert,
		Password:  func() string { return hash },
		Addresses: func() []string { return []string{"127.0.0.1:8443"} },
		Now:       clk.now,
		Log:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, clk, ops
}

func clientDER(t *testing.T, cn string, notBefore, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func wantErr(t *testing.T, err, kind error, msg string) {
	t.Helper()
	switch {
	case kind == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case kind != nil && !errors.Is(err, kind):
		t.Fatalf("error %v, want kind %v", err, kind)
	case msg != "" && (err == nil || !strings.Contains(err.Error(), msg)):
		t.Fatalf("error %v, want one saying %q", err, msg)
	}
}

func TestAdd(t *testing.T) {
	now := time.Now()
	good := func(t *testing.T) []byte { return clientDER(t, "alice@host", now.Add(-time.Hour), now.Add(time.Hour)) }
	for _, tc := range []struct {
		name string
		der  func(t *testing.T) []byte
		put  Put
		kind error
		msg  string
	}{
		{name: "client", der: good, put: Put{Name: "alice"}},
		{name: "name from the common name", der: good, put: Put{}},
		{name: "metrics", der: good, put: Put{Name: "prom", Type: "metrics"}},
		{name: "restricted to default", der: good, put: Put{Name: "r", Restricted: true, Projects: []string{"default"}}},
		{name: "not X.509", der: func(*testing.T) []byte { return []byte("hello") }, put: Put{Name: "x"}, kind: errdefs.ErrInvalidArgument, msg: "not an X.509 certificate"},
		{name: "expired certificate", der: func(t *testing.T) []byte { return clientDER(t, "old", now.Add(-2*time.Hour), now.Add(-time.Hour)) }, put: Put{Name: "x"}, kind: errdefs.ErrInvalidArgument, msg: "expired"},
		{name: "not yet valid", der: func(t *testing.T) []byte { return clientDER(t, "new", now.Add(time.Hour), now.Add(2*time.Hour)) }, put: Put{Name: "x"}, kind: errdefs.ErrInvalidArgument, msg: "not valid before"},
		{name: "bad type", der: good, put: Put{Name: "x", Type: "server"}, kind: errdefs.ErrInvalidArgument, msg: `type "server"`},
		{name: "unknown project", der: good, put: Put{Name: "x", Restricted: true, Projects: []string{"nope"}}, kind: errdefs.ErrInvalidArgument, msg: `no project "nope"`},
		{name: "empty project", der: good, put: Put{Name: "x", Projects: []string{""}}, kind: errdefs.ErrInvalidArgument, msg: "empty project"},
		{name: "blank name", der: good, put: Put{Name: "  "}, kind: errdefs.ErrInvalidArgument, msg: "name must not be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _ := newService(t, "")
			der := tc.der(t)
			c, err := s.Add(context.Background(), der, tc.put)
			wantErr(t, err, tc.kind, tc.msg)
			id, trusted := s.Identify(Fingerprint(der))
			if tc.kind != nil {
				if trusted {
					t.Fatal("a refused certificate is trusted")
				}
				return
			}
			if !trusted || id.Name != c.Name || id.Fingerprint != c.Fingerprint || id.Type != c.Type || id.Restricted != tc.put.Restricted {
				t.Fatalf("identity %+v for %+v (trusted %v)", id, c, trusted)
			}
			if _, err := s.Add(context.Background(), der, tc.put); !errors.Is(err, errdefs.ErrConflict) {
				t.Fatalf("adding twice: %v, want a conflict", err)
			}
		})
	}
}

func TestUpdateDelete(t *testing.T) {
	s, _, _ := newService(t, "")
	ctx := context.Background()
	now := time.Now()
	der := clientDER(t, "a", now.Add(-time.Hour), now.Add(time.Hour))
	c, err := s.Add(ctx, der, Put{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		prefix string
		put    Put
		kind   error
	}{
		{"rename by prefix", c.Fingerprint[:8], Put{Name: "b", Restricted: true, Projects: []string{"default"}}, nil},
		{"unknown prefix", "ffffffffffff", Put{Name: "b"}, errdefs.ErrNotFound},
		{"not hex", "zz", Put{Name: "b"}, errdefs.ErrNotFound},
		{"like wildcard", "%", Put{Name: "b"}, errdefs.ErrNotFound},
		{"empty name", c.Fingerprint, Put{}, errdefs.ErrInvalidArgument},
		{"bad type", c.Fingerprint, Put{Name: "b", Type: "admin"}, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Update(ctx, tc.prefix, tc.put, "")
			wantErr(t, err, tc.kind, "")
		})
	}
	if id, ok := s.Identify(c.Fingerprint); !ok || id.Name != "b" || !id.Restricted || len(id.Projects) != 1 {
		t.Fatalf("identity after update: %+v %v", id, ok)
	}
	if _, err := s.Update(ctx, c.Fingerprint, Put{Name: "b"}, "not pem"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("update with a bad certificate: %v", err)
	}
	if _, err := s.Delete(ctx, c.Fingerprint[:6]); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Identify(c.Fingerprint); ok {
		t.Fatal("a deleted certificate is still trusted")
	}
	if _, err := s.Delete(ctx, c.Fingerprint); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestRedeem(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	type step struct {
		secret func(s *Service, tok string) string
		kind   error
		msg    string
	}
	tokenOf := func(s *Service, tok string) string { return tok }
	for _, tc := range []struct {
		name   string
		expiry time.Duration // 0: the token never expires
		wait   time.Duration // clock moved before redeeming
		revoke bool
		steps  []step
	}{
		{name: "token once", steps: []step{{secret: tokenOf}, {secret: tokenOf, kind: errdefs.ErrForbidden, msg: "already been used"}}},
		{name: "expired token", expiry: time.Minute, wait: 2 * time.Minute, steps: []step{{secret: tokenOf, kind: errdefs.ErrForbidden, msg: "expired"}}},
		{name: "token within its expiry", expiry: time.Minute, wait: 30 * time.Second, steps: []step{{secret: tokenOf}}},
		{name: "revoked token", revoke: true, steps: []step{{secret: tokenOf, kind: errdefs.ErrForbidden, msg: "revoked"}}},
		{name: "unknown token", steps: []step{{secret: func(s *Service, _ string) string {
			return api.CertificateAddToken{ClientName: "x", Secret: "nope", Fingerprint: s.cfg.Cert.Fingerprint}.String()
		}, kind: errdefs.ErrForbidden, msg: "no such trust token"}}},
		{name: "right password", steps: []step{{secret: func(*Service, string) string { return "s3cret" }}}},
		{name: "wrong password", steps: []step{{secret: func(*Service, string) string { return "guess" }, kind: errdefs.ErrForbidden, msg: "wrong trust password"}}},
		{name: "nothing", steps: []step{{secret: func(*Service, string) string { return "" }, kind: errdefs.ErrForbidden, msg: "no trust token or password"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clk, ops := newService(t, "s3cret")
			if tc.expiry > 0 {
				exp := tc.expiry
				s.cfg.TokenExpiry = func() string { return strings.TrimSuffix(exp.String(), "m0s") + "M" }
			}
			op, err := s.IssueToken(ctx, Put{Name: "bob", Restricted: true, Projects: []string{"default"}})
			if err != nil {
				t.Fatal(err)
			}
			snap := op.Snapshot()
			at, err := api.CertificateAddTokenFromOperation(snap)
			if err != nil || snap.Class != api.OperationClassToken || at.ClientName != "bob" || at.Fingerprint != s.cfg.Cert.Fingerprint || len(at.Addresses) != 1 {
				t.Fatalf("token operation %+v: %+v, %v", snap, at, err)
			}
			if tc.revoke {
				if err := ops.Cancel(op.ID()); err != nil {
					t.Fatal(err)
				}
				<-op.Done()
			}
			clk.add(tc.wait)
			for i, st := range tc.steps {
				der := clientDER(t, "client", now.Add(-time.Hour), now.Add(time.Hour))
				c, err := s.RedeemAndAdd(ctx, "192.0.2.1:1234", st.secret(s, at.String()), der)
				if tc.name == "token once" && i == 0 && err == nil {
					if c.Name != "bob" || !c.Restricted || len(c.Projects) != 1 {
						t.Errorf("the token granted %+v, want what it was issued for", c)
					}
					<-op.Done()
					if got := op.Snapshot().StatusCode; got != api.Cancelled {
						t.Errorf("redeemed token's operation is %v, want cancelled", got)
					}
				}
				wantErr(t, err, st.kind, st.msg)
			}
		})
	}
}

func TestTokenValidation(t *testing.T) {
	s, _, _ := newService(t, "")
	for _, tc := range []struct {
		name string
		put  Put
		msg  string
	}{
		{"metrics", Put{Name: "m", Type: "metrics"}, "client certificates"},
		{"unknown project", Put{Name: "m", Projects: []string{"ghost"}}, "ghost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.IssueToken(context.Background(), tc.put)
			wantErr(t, err, errdefs.ErrInvalidArgument, tc.msg)
		})
	}
	s.cfg.Addresses = func() []string { return nil }
	_, err := s.IssueToken(context.Background(), Put{Name: "x"})
	wantErr(t, err, errdefs.ErrInvalidArgument, "core.https_address")
}

func TestRedeemRateLimit(t *testing.T) {
	s, clk, _ := newService(t, "s3cret")
	// The default limiter: 5 at once, then 2 a second, per source host.
	for i := range 5 {
		if _, err := s.Redeem("192.0.2.1:1000", "guess"); err == nil || strings.Contains(err.Error(), "too many") {
			t.Fatalf("attempt %d: %v, want a wrong password", i+1, err)
		}
	}
	_, err := s.Redeem("192.0.2.1:2000", "s3cret") // another port, same host
	wantErr(t, err, errdefs.ErrForbidden, "too many trust attempts from 192.0.2.1")
	if _, err := s.Redeem("192.0.2.2:1000", "s3cret"); err != nil {
		t.Fatalf("another host is limited too: %v", err)
	}
	clk.add(500 * time.Millisecond)
	if _, err := s.Redeem("192.0.2.1:1000", "s3cret"); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
}

func TestLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name  string
		at    []time.Duration // attempt times after t0
		allow []bool
	}{
		{"burst", []time.Duration{0, 0, 0, 0}, []bool{true, true, true, false}},
		{"refill", []time.Duration{0, 0, 0, time.Second}, []bool{true, true, true, true}},
		{"half refill", []time.Duration{0, 0, 0, 400 * time.Millisecond, 500 * time.Millisecond}, []bool{true, true, true, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &Limiter{Rate: 2, Burst: 3}
			for i, at := range tc.at {
				if ok, _ := l.Allow("h", t0.Add(at)); ok != tc.allow[i] {
					t.Errorf("attempt %d at %v: allowed %v, want %v", i, at, ok, tc.allow[i])
				}
			}
		})
	}
}

func TestPassword(t *testing.T) {
	hash, err := hashPassword("pw", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hash, "pw") && !strings.HasPrefix(hash, passwordScheme) {
		t.Fatalf("hash %q", hash)
	}
	other, _ := hashPassword("pw", 1000)
	if other == hash {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		name, stored, pw string
		kind             error
	}{
		{"right", hash, "pw", nil},
		{"wrong", hash, "pW", errdefs.ErrForbidden},
		{"none set", "", "pw", errdefs.ErrForbidden},
		{"stored in clear", "pw", "pw", nil}, // not a hash: an internal error, never a match
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPassword(tc.stored, tc.pw)
			if tc.name == "stored in clear" {
				if err == nil {
					t.Fatal("a clear stored password matched")
				}
				return
			}
			wantErr(t, err, tc.kind, "")
		})
	}
	if _, err := HashPassword(""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("empty password: %v", err)
	}
}

func TestParseExpiry(t *testing.T) {
	t0 := time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "", want: time.Time{}},
		{in: "30M", want: t0.Add(30 * time.Minute)},
		{in: "1H 30M", want: t0.Add(90 * time.Minute)},
		{in: "2d", want: t0.AddDate(0, 0, 2)},
		{in: "1w 10S", want: t0.AddDate(0, 0, 7).Add(10 * time.Second)},
		{in: "1y", want: t0.AddDate(1, 0, 0)},
		{in: "1x", bad: true},
		{in: "M", bad: true},
		{in: "1H 2H", bad: true},
		{in: "-1H", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseExpiry(t0, tc.in)
			if (err != nil) != tc.bad || (!tc.bad && !got.Equal(tc.want)) {
				t.Fatalf("ParseExpiry(%q) = %v, %v; want %v (bad %v)", tc.in, got, err, tc.want, tc.bad)
			}
		})
	}
}

func TestServerCert(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadServerCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "server.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("server.key: %v %v, want mode 0600", fi.Mode(), err)
	}
	x, err := x509.ParseCertificate(a.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := x.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
		t.Errorf("server key is %T, want ECDSA P-384", x.PublicKey)
	}
	b, err := LoadServerCert(dir)
	if err != nil || b.Fingerprint != a.Fingerprint {
		t.Fatalf("second load: %v, fingerprint %s then %s: the identity must not change", err, a.Fingerprint, b.Fingerprint)
	}
	// Half a pair is refused rather than silently replaced.
	if err := os.Remove(filepath.Join(dir, "server.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadServerCert(dir); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
}

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	wire "github.com/hangar-dev/hangar/api/instances"
	"github.com/hangar-dev/hangar/client/instances"
	"github.com/hangar-dev/hangar/internal/driver"
)

// The credential of TestCredentialsEgress, as a client sends it.
const credentialsCreate = `{
	"name": "cred1",
	"image": "%s",
	"size": "256MB",
	"vcpus": 1,
	"env": {"REAL_KEY": "real-secret"},
	"credentials": {"API_KEY": {
		"source": {"env": "REAL_KEY"},
		"inject": [{"hosts": ["api.test"], "as": {"header": "Authorization", "format": "Bearer ${value}"}}]
	}}
}`

// TestCredentialsEgress: seed 002's credentials end to end, with one
// real VM (TCG) made through the instances API. An HTTPS upstream on the
// test's internet (its own CA, a certificate for api.test and
// other.test) is what hangard's egress proxy trusts (SSL_CERT_FILE). In
// the guest, a static Go client that trusts only the system roots:
//   - reaches https://api.test/ (SNI api.test) through the redirect: it
//     verifies the proxy's leaf, so the guest trusts the daemon's CA,
//     which the agent put in /etc/ssl/certs (the busybox image had none);
//     the upstream receives "Bearer real-secret";
//   - the guest's environment, the workload's included, and the
//     instance as both APIs show it hold the placeholder only;
//   - PATCH env rotates the value live: the next request carries it;
//   - other.test, named by no credential, passes untouched: the guest
//     sees the upstream's own certificate (it does not verify without
//     -insecure) and the upstream receives the placeholder.
func TestCredentialsEgress(t *testing.T) {
	requireVM(t)
	caPEM, leaf := upstreamCertificate(t, "api.test", "other.test")
	caFile := filepath.Join(t.TempDir(), "upstream-ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	ns := newNetns(t)
	far := internet(t, ns)
	up := serveUpstream(t, far, leaf)
	d := startDaemonInEnv(t, ns, "SSL_CERT_FILE="+caFile)
	ref := credentialsImage(t, d.netns)
	ctx := context.Background()
	api, err := instances.New("http://unix/instances-api/", instances.WithUnixSocket(d.socket))
	if err != nil {
		t.Fatal(err)
	}

	var p wire.InstanceNewParams
	if err := json.Unmarshal(fmt.Appendf(nil, credentialsCreate, ref), &p); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	vm, err := api.New(ctx, p)
	if err != nil {
		t.Fatalf("create: %v\n%s", err, d.logText())
	}
	t.Cleanup(func() {
		if err := api.Delete(context.Background(), vm.ID); err != nil && instances.StatusOf(err) != 404 {
			t.Errorf("delete: %v", err)
		}
	})
	if w, err := api.Wait(ctx, vm.ID, wire.StateRunning, "3m"); err != nil || w.TimedOut || w.State != wire.StateRunning {
		t.Fatalf("wait Running: %+v %v\n%s", w, err, d.logText())
	}
	t.Logf("create to Running: %v", time.Since(start))

	// fetch runs the client in the guest; it fails the test unless
	// wantOK says it should fail.
	fetch := func(t *testing.T, host, path string, insecure, wantOK bool) string {
		t.Helper()
		d := d.on(t)
		args := []string{"exec", "cred1", "--", "/app/egressclient", "-dial", internetServer + ":443", "-name", host, "-path", path}
		if insecure {
			args = append(args, "-insecure")
		}
		out, errOut, code := d.hangar(args...)
		if (code == 0) != wantOK {
			t.Fatalf("egressclient %s%s: exit %d: %s%s", host, path, code, out, errOut)
		}
		return out + errOut
	}

	var placeholder string
	ok := t.Run("the guest sees the placeholder only", func(t *testing.T) {
		d := d.on(t)
		env := d.must("exec", "cred1", "--", "env")
		for _, l := range strings.Split(env, "\n") {
			if v, ok := strings.CutPrefix(l, "API_KEY="); ok {
				placeholder = v
			}
		}
		if !strings.HasPrefix(placeholder, "hgr-cred-") {
			t.Fatalf("API_KEY in the guest's exec environment = %q, want a placeholder:\n%s", placeholder, env)
		}
		// Every process's environment, the workload (PID 1's child) and the
		// agent included.
		environ := d.must("exec", "cred1", "--", "sh", "-c", `cat /proc/[0-9]*/environ | tr '\0' '\n'`)
		if !strings.Contains(environ, "API_KEY="+placeholder) {
			t.Errorf("no process holds the placeholder:\n%s", environ)
		}
		for _, secret := range []string{"real-secret", "REAL_KEY"} {
			if strings.Contains(env+environ, secret) {
				t.Errorf("%q is in the guest's environment:\n%s\n%s", secret, env, environ)
			}
		}
	})
	if !ok {
		t.FailNow() // the other checks need the placeholder
	}

	t.Run("the guest trusts the egress CA, not its key", func(t *testing.T) {
		d := d.on(t)
		daemonCA := readFile(t, filepath.Join(d.dir, "egress", "ca.crt"))
		if got := d.must("exec", "cred1", "--", "cat", driver.GuestCAFile); got != daemonCA {
			t.Fatalf("%s = %q, want the daemon's ca.crt", driver.GuestCAFile, got)
		}
		bundle := d.must("exec", "cred1", "--", "cat", driver.GuestCABundle)
		if strings.Count(bundle, daemonCA) != 1 {
			t.Fatalf("%s holds the daemon's CA %d times:\n%s", driver.GuestCABundle, strings.Count(bundle, daemonCA), bundle)
		}
		if out, _, code := d.hangar("exec", "cred1", "--", "grep", "-r", "PRIVATE KEY", "/etc/ssl"); code == 0 {
			t.Fatalf("a private key in the guest's /etc/ssl:\n%s", out)
		}
	})

	t.Run("the upstream receives the real value", func(t *testing.T) {
		out := fetch(t, "api.test", "/first", false, true)
		if !strings.Contains(out, "status=200") || !strings.Contains(out, `issuer="hangar egress CA"`) {
			t.Fatalf("guest client: %s", out)
		}
		if r := up.last(t, "/first"); r.sni != "api.test" || r.host != "api.test" || r.auth != "Bearer real-secret" {
			t.Fatalf("upstream saw %+v, want api.test with Bearer real-secret", r)
		}
		if strings.Contains(out, "real-secret") {
			t.Fatalf("the secret came back to the guest: %s", out)
		}
	})

	t.Run("no API shows the secret", func(t *testing.T) {
		d := d.on(t)
		got, err := api.Get(ctx, vm.ID)
		if err != nil {
			t.Fatal(err)
		}
		wireJSON, _ := json.Marshal(got)
		list, err := api.List(ctx, instances.ListParams{})
		if err != nil {
			t.Fatal(err)
		}
		listJSON, _ := json.Marshal(list)
		lxd := d.must("query", "/1.0/instances/cred1?recursion=1")
		lxdList := d.must("query", "/1.0/instances?recursion=2")
		for what, body := range map[string]string{"instances API get": string(wireJSON), "instances API list": string(listJSON),
			"LXD API get": lxd, "LXD API list": lxdList} {
			if strings.Contains(body, "real-secret") {
				t.Errorf("%s shows the secret: %s", what, body)
			}
			if !strings.Contains(body, placeholder) {
				t.Errorf("%s does not show the placeholder %s: %s", what, placeholder, body)
			}
		}
		if got.Env["API_KEY"] != placeholder {
			t.Errorf("instances API env = %v, want API_KEY=%s", got.Env, placeholder)
		}
		if strings.Contains(d.logText(), "real-secret") {
			t.Error("hangard logged the secret")
		}
	})

	t.Run("PATCH rotates the value live", func(t *testing.T) {
		d := d.on(t)
		if _, err := api.Update(ctx, vm.ID, wire.InstanceUpdateParams{Env: map[string]string{"NOT_A_SOURCE": "x"}}); instances.StatusOf(err) != 400 {
			t.Fatalf("PATCH of a key no credential names: %v, want 400", err)
		}
		if _, err := api.Update(ctx, vm.ID, wire.InstanceUpdateParams{Env: map[string]string{"REAL_KEY": "rotated"}}); err != nil {
			t.Fatal(err)
		}
		out := fetch(t, "api.test", "/second", false, true)
		if !strings.Contains(out, "status=200") {
			t.Fatalf("guest client: %s", out)
		}
		if r := up.last(t, "/second"); r.auth != "Bearer rotated" {
			t.Fatalf("after PATCH the upstream saw %q, want Bearer rotated", r.auth)
		}
		if strings.Contains(d.must("exec", "cred1", "--", "env"), "rotated") {
			t.Fatal("the rotated value is in the guest's environment")
		}
	})

	t.Run("other hosts pass untouched", func(t *testing.T) {
		// The guest does not trust the upstream's CA: verification fails,
		// which it would not if the proxy had intercepted.
		if out := fetch(t, "other.test", "/verify", false, false); !strings.Contains(out, "certificate signed by unknown authority") {
			t.Fatalf("guest client to other.test: %s", out)
		}
		out := fetch(t, "other.test", "/third", true, true)
		if !strings.Contains(out, "status=200") || !strings.Contains(out, `issuer="e2e upstream CA"`) {
			t.Fatalf("guest client: %s", out)
		}
		if r := up.last(t, "/third"); r.sni != "other.test" || r.auth != "Bearer "+placeholder {
			t.Fatalf("upstream saw %+v, want other.test with the placeholder", r)
		}
	})

	if err := api.Delete(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	if names := d.instanceNames(); len(names) != 0 {
		t.Fatalf("instances left after delete: %v", names)
	}
}

// upstreamCertificate makes a CA of the test's own ("e2e upstream CA")
// and a server certificate it signs for names. It returns the CA (PEM)
// and the server's certificate.
func upstreamCertificate(t *testing.T, names ...string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e upstream CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}
}

// upstreamRequest is what the upstream saw of one request.
type upstreamRequest struct{ sni, host, path, auth string }

type upstream struct {
	mu   sync.Mutex
	seen []upstreamRequest
}

// last is the request the upstream saw for path.
func (u *upstream) last(t *testing.T, path string) upstreamRequest {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := len(u.seen) - 1; i >= 0; i-- {
		if u.seen[i].path == path {
			return u.seen[i]
		}
	}
	t.Fatalf("the upstream saw no request for %s: %+v", path, u.seen)
	return upstreamRequest{}
}

// serveUpstream serves HTTPS (HTTP/1.1) with cert on the internet's
// address, port 443, in netns far, until the test ends. It keeps what it
// saw and answers "ok": it never echoes a header back to the guest.
func serveUpstream(t *testing.T, far string, cert tls.Certificate) *upstream {
	t.Helper()
	u := &upstream{}
	l, err := listenIn(far, internetServer+":443")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u.mu.Lock()
			u.seen = append(u.seen, upstreamRequest{sni: r.TLS.ServerName, host: r.Host, path: r.URL.Path, auth: r.Header.Get("Authorization")})
			u.mu.Unlock()
			io.WriteString(w, "ok")
		}),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}},
		// The guest's refusal of this certificate is one of the checks.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return u
}

// credentialsImage serves the app image of serveAppImage (an entrypoint
// that prints and sleeps) with one more layer: the static guest client
// at /app/egressclient. It returns the reference.
func credentialsImage(t *testing.T, netns string) string {
	t.Helper()
	ref, img := serveAppImage(t, netns, "test/vm:1",
		"#!/bin/sh\necho \"vm-entrypoint API_KEY=$API_KEY\"\nexec sleep 2147483647\n")
	bin := filepath.Join(t.TempDir(), "egressclient")
	build := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, "github.com/hangar-dev/hangar/e2e/testdata/egressclient")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the guest client: %v: %s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "app/egressclient", Mode: 0o755, Size: int64(len(b)), ModTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tw.Write(b)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		t.Fatal(err)
	}
	ref = strings.TrimSuffix(ref, "test/vm:1") + "test/credentials:1"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithTransport(transportIn(netns))); err != nil {
		t.Fatal(err)
	}
	return ref
}

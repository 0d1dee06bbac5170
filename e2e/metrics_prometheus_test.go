package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// A real Prometheus scrapes hangard's /1.0/metrics over HTTPS with a
// metrics certificate, as LXD's documentation sets it up: the target is
// up and lxd_procs_total of the running container is in its database.
func TestMetricsPrometheus(t *testing.T) {
	requireE2E(t)
	prom := lookPath("prometheus")
	if prom == "" {
		t.Skip("prometheus is not installed (scripts/deps.sh installs it)")
	}
	d := startDaemon(t, "")
	if exts := d.apiExtensions(); !slices.Contains(exts, "certificate_update") {
		t.Skip("this hangard has no remote API with certificates yet")
	}
	d.importImages()
	d.must("launch", "sleeper", "c1")

	// Ports in hangard's network namespace, where Prometheus runs too.
	httpsAddr, promAddr := freePortIn(t, d.netns), freePortIn(t, d.netns)
	cfg, _ := json.Marshal(map[string]any{"config": map[string]string{"core.https_address": httpsAddr}})
	if code, out := d.unixRequest("PATCH", "/1.0", cfg); code != http.StatusOK {
		t.Fatalf("PATCH /1.0 core.https_address: %d %s", code, out)
	}

	dir := t.TempDir()
	certFile, keyFile, der := writeClientCert(t, dir, "prometheus")
	body, _ := json.Marshal(map[string]any{"type": "metrics", "name": "prometheus", "certificate": base64.StdEncoding.EncodeToString(der)})
	if code, out := d.unixRequest("POST", "/1.0/certificates", body); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("POST /1.0/certificates: %d %s", code, out)
	}

	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: hangard
    metrics_path: /1.0/metrics
    scheme: https
    tls_config:
      cert_file: %s
      key_file: %s
      insecure_skip_verify: true
    static_configs:
      - targets: ["%s"]
`, certFile, keyFile, httpsAddr)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", "--net="+d.netns, "--", prom,
		"--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	promLog := func() string { b, _ := os.ReadFile(logf.Name()); return string(b) }

	hc := &http.Client{Transport: transportIn(d.netns), Timeout: 5 * time.Second}
	query := func(q string) []promSample {
		resp, err := hc.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil // not listening yet
		}
		defer resp.Body.Close()
		var r struct {
			Status string `json:"status"`
			Data   struct {
				Result []promSample `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
			return nil
		}
		return r.Data.Result
	}
	var up, procs []promSample
	deadline := time.Now().Add(90 * time.Second)
	for {
		up = query(`up{job="hangard"}`)
		procs = query(`lxd_procs_total{name="c1",project="default",type="container"}`)
		if len(up) == 1 && up[0].value() == 1 && len(procs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s: up %v, lxd_procs_total %v\nprometheus log:\n%s", up, procs, promLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := procs[0].value(); n < 1 {
		t.Errorf("lxd_procs_total of c1 = %v in Prometheus, want at least 1", n)
	}
	// That the certificate reads nothing else is the authorization
	// table test's to check.
}

// promSample is one sample of a Prometheus instant query.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"` // [timestamp, "value"]
}

func (s promSample) value() float64 {
	if len(s.Value) != 2 {
		return -1
	}
	str, _ := s.Value[1].(string)
	var v float64
	if _, err := fmt.Sscan(str, &v); err != nil {
		return -1
	}
	return v
}

// freePortIn is a free 127.0.0.1 address in a network namespace.
func freePortIn(t *testing.T, netns string) string {
	t.Helper()
	l, err := listenIn(netns, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// writeClientCert writes a self-signed ECDSA client certificate and its
// key as PEM files, and returns their paths and the certificate's DER.
func writeClientCert(t *testing.T, dir, cn string) (certFile, keyFile string, der []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, cn+".crt"), filepath.Join(dir, cn+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, der
}

// unixRequest sends a request over the unix socket and returns the
// status and body.
func (d *daemon) unixRequest(method, path string, body []byte) (int, string) {
	d.t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(method, "http://hangard"+path, bytes.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// apiExtensions are the extensions GET /1.0 lists.
func (d *daemon) apiExtensions() []string {
	d.t.Helper()
	code, body := d.unixRequest("GET", "/1.0", nil)
	var r struct {
		Metadata struct {
			APIExtensions []string `json:"api_extensions"`
		} `json:"metadata"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil {
		d.t.Fatalf("GET /1.0: %d %s", code, body)
	}
	return r.Metadata.APIExtensions
}

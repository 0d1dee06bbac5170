package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The speed figures issue 14 (projects, the remote HTTPS API with trust,
// one authorization core, metrics) sets targets for, in one run (bench/run
// --issue14), hangard beside LXD 5.0, both up at once:
//
//   - `lxc list REMOTE:` over TLS: each daemon listens on a loopback port
//     (core.https_address) with a trust password, and the real lxc, with a
//     HOME of its own, has added it as a remote with that password; the
//     same number of running busybox containers on each; rounds of random
//     order.
//   - GET /1.0/metrics at --running running containers on each, over the
//     unix socket (root) and over HTTPS with a certificate of type
//     "metrics" added to each daemon (what a Prometheus scraper holds).
//     LXD keeps what it gathered for 8 s (its metricsCache), so its figure
//     is taken twice: after the cache expired (what a Prometheus scraping
//     every 15 s or more gets) and within it.
//   - The Go benchmarks of the authorization, in rounds of random order:
//     BenchmarkListAuthzChecks (internal/api/lxd: the questions one
//     GET /1.0/instances?recursion=2 at 100 instances asks, replayed
//     against the real authorizer: the authorization's whole cost per
//     list), BenchmarkListAuthz (the whole list, without an authorizer, as
//     root, as a group-based viewer: the share's denominator), and
//     BenchmarkCheck (internal/auth).
//
// hangard runs in its own network namespace, as in every bench mode
// (hangard.go): its HTTPS listener is on 127.0.0.1 there, and lxc reaches
// it through `nsenter --net=FILE`; lxc for LXD runs through nsenter too
// (into its own namespace), so that both pay the same.

// Row keys of the issue-14 report.
const (
	r14List         = "list-tls"
	r14ListMany     = "list-tls-many"
	r14LXCFloor     = "lxc-version"
	r14ListAPI      = "list-api-tls"
	r14MetricsUnix  = "metrics-unix"
	r14MetricsTLS   = "metrics-tls"
	r14MetricsCold  = "metrics-cold"
	r14AuthzNone    = "authz-none"
	r14AuthzAdmin   = "authz-admin"
	r14AuthzViewer  = "authz-viewer"
	r14OverAdmin    = "authz-over-admin"
	r14OverViewer   = "authz-over-viewer"
	r14DeltaAdmin   = "authz-delta-admin"
	r14DeltaViewer  = "authz-delta-viewer"
	r14BestAdmin    = "authz-best-admin"
	r14BestViewer   = "authz-best-viewer"
	r14BestDAdmin   = "authz-best-delta-admin"
	r14BestDViewer  = "authz-best-delta-viewer"
	r14ChecksAdmin  = "authz-checks-admin"
	r14ChecksViewer = "authz-checks-viewer"
	r14ShareAdmin   = "authz-share-admin"
	r14ShareViewer  = "authz-share-viewer"
	r14CheckAllowed = "check-allowed"
	r14CheckDenied  = "check-denied"
	r14CheckAdmin   = "check-admin"
)

const (
	// listInstances14 running containers on each daemon for the lxc
	// list figure.
	listInstances14 = 10
	// hangardHTTPS14 is hangard's HTTPS address, in its own network
	// namespace (no port of the machine's is taken).
	hangardHTTPS14 = "127.0.0.1:8443"
	// metricsRounds14 rounds of the metrics figures: each one waits
	// until LXD's cache expired, takes LXD's scrape then (uncached),
	// then metricsPerRound14 times every other scrape in random order.
	metricsRounds14   = 10
	metricsPerRound14 = 3
	// lxdMetricsCache is how long LXD 5.0 keeps the metrics it gathered
	// (lxd/metrics.go: expiry 8 s after the fetch), with a margin.
	lxdMetricsCache = 8*time.Second + 700*time.Millisecond
	// lxdMetricsWarm is how long after its last full fetch LXD's
	// scrapes still count as cached, with a margin the other way.
	lxdMetricsWarm = 7 * time.Second
	// authzRounds14 rounds of BenchmarkListAuthz's three cases and
	// BenchmarkListAuthzChecks's two, each round in random order, each
	// case its own run of the test binary.
	authzRounds14 = 10
	// checkCount14 is -count of BenchmarkCheck.
	checkCount14 = 5
)

// authzCase is one sub-benchmark of the authorization's rounds: its
// figures go to row in ms (a whole list) or µs (its checks).
type authzCase struct {
	bench, sub, row string
	perUnit         float64 // ns in the row's unit
}

const (
	benchListAuthz       = "BenchmarkListAuthz"
	benchListAuthzChecks = "BenchmarkListAuthzChecks"
)

var authzCases = []authzCase{
	{benchListAuthz, "none", r14AuthzNone, 1e6},
	{benchListAuthz, "admin", r14AuthzAdmin, 1e6},
	{benchListAuthz, "group-viewer", r14AuthzViewer, 1e6},
	{benchListAuthzChecks, "admin", r14ChecksAdmin, 1e3},
	{benchListAuthzChecks, "group-viewer", r14ChecksViewer, 1e3},
}

// authzShares pairs each identity's checks with its whole list: the
// share the authorization takes of the list.
var authzShares = []struct{ checks, list, share string }{
	{r14ChecksAdmin, r14AuthzAdmin, r14ShareAdmin},
	{r14ChecksViewer, r14AuthzViewer, r14ShareViewer},
}

// checkCases are BenchmarkCheck's sub-benchmarks, by row.
var checkCases = map[string]string{
	"allowed":         r14CheckAllowed,
	"denied-notfound": r14CheckDenied,
	"admin":           r14CheckAdmin,
}

// side14 is one daemon of the run: its API on the unix socket, and its
// remote over TLS once HTTPS is on.
type side14 struct {
	peer string
	api  *lxdAPI
	rm   *remote14
	// scale is how many containers ran for the metrics figures.
	scale int
}

// remote14 is a client HOME of its own holding one remote: the real lxc
// over TLS to a daemon, an HTTP client with the same client certificate
// (the request alone), and one with a metrics certificate for
// /1.0/metrics over HTTPS.
type remote14 struct {
	name string // the remote's name in lxc
	addr string // host:port of the daemon's HTTPS listener
	home string
	// netns is the daemon's network namespace ("" for the machine's):
	// lxc runs in it, the HTTP client dials from it.
	netns string
	// tlsConf (lxc's client certificate) makes fresh connections
	// (fresh); metrics keeps its connection, with the metrics
	// certificate (addMetricsCert).
	tlsConf *tls.Config
	pinned  []byte
	metrics *http.Client
}

func (rm *remote14) conf() string { return filepath.Join(rm.home, ".config", "lxc") }

// lxc runs the real lxc with this HOME, in the daemon's network
// namespace through nsenter (for the machine's own namespace too, so that
// both daemons' figures carry the same nsenter).
func (rm *remote14) lxc(ctx context.Context, args ...string) (float64, error) {
	ns := rm.netns
	if ns == "" {
		ns = "/proc/self/ns/net"
	}
	env := []string{"HOME=" + rm.home, "LXD_CONF=" + rm.conf()}
	return command{env: env}.timed(ctx, "nsenter", append([]string{"--net=" + ns, "--", "lxc"}, args...)...)
}

// add adds the remote with the trust password, then makes the HTTP client
// from the certificate lxc generated and the server certificate it
// accepted.
func (rm *remote14) add(ctx context.Context, password string) error {
	if err := os.MkdirAll(rm.conf(), 0o700); err != nil {
		return err
	}
	if _, err := rm.lxc(ctx, "remote", "add", rm.name, "https://"+rm.addr, "--password", password, "--accept-certificate"); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(rm.conf(), "client.crt"), filepath.Join(rm.conf(), "client.key"))
	if err != nil {
		return fmt.Errorf("the client certificate lxc made: %w", err)
	}
	rm.pinned, err = readPEMCert(filepath.Join(rm.conf(), "servercerts", rm.name+".crt"))
	if err != nil {
		return fmt.Errorf("the server certificate lxc accepted: %w", err)
	}
	rm.tlsConf = rm.pinnedTLS(cert)
	return nil
}

// pinnedTLS presents cert to the daemon and accepts only the server
// certificate lxc accepted: self-signed, as lxc sees it, so pinned
// instead of checked against a CA.
func (rm *remote14) pinnedTLS(cert tls.Certificate) *tls.Config {
	pinned := rm.pinned
	return &tls.Config{
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], pinned) {
				return errors.New("the server's certificate is not the one lxc accepted")
			}
			return nil
		},
	}
}

// addMetricsCert makes a client certificate, adds it to the daemon as
// type "metrics" (over the unix socket, as root: `lxc config trust add
// --type=metrics`), checks the daemon holds it as such, and makes the
// HTTP client that scrapes with it. It returns the status GET
// /1.0/instances gets with it (a metrics certificate reads metrics only).
func (rm *remote14) addMetricsCert(ctx context.Context, a *lxdAPI) (int, error) {
	cert, fp, err := newClientCert("pb-metrics")
	if err != nil {
		return 0, err
	}
	if err := apiDo(ctx, a.c, http.MethodPost, "/1.0/certificates", map[string]any{
		"name": "pb-metrics", "type": "metrics", "certificate": base64.StdEncoding.EncodeToString(cert.Certificate[0]),
	}); err != nil {
		return 0, err
	}
	resp, _, err := a.c.Query(ctx, http.MethodGet, "/1.0/certificates/"+fp, nil, "")
	if err != nil {
		return 0, fmt.Errorf("the metrics certificate added: %w", err)
	}
	var got struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(resp.Metadata, &got); err != nil || got.Type != "metrics" {
		return 0, fmt.Errorf("the metrics certificate added is held as type %q (%v)", got.Type, err)
	}
	rm.metrics = &http.Client{Transport: &http.Transport{TLSClientConfig: rm.pinnedTLS(cert), DialContext: rm.dial, MaxIdleConnsPerHost: 4}}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+rm.addr+"/1.0/instances", nil)
	if err != nil {
		return 0, err
	}
	r, err := rm.metrics.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return r.StatusCode, nil
}

// newClientCert is a self-signed ECDSA P-384 client certificate (as lxc
// makes its own) and its SHA-256 fingerprint.
func newClientCert(cn string) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("client certificate: %w", err)
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, hex.EncodeToString(sum[:]), nil
}

// dial connects from the daemon's network namespace.
func (rm *remote14) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(rm.netns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// fresh is a client that makes a new TLS connection for its request, as
// each lxc process does.
func (rm *remote14) fresh() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: rm.tlsConf, DialContext: rm.dial, DisableKeepAlives: true}}
}

// readPEMCert reads the DER bytes of the first certificate in a PEM file.
func readPEMCert(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return block.Bytes, nil
}

// enableHTTPS has the daemon listen on addr with the trust password, one
// PATCH of /1.0 (what `lxc config set` does, in one request).
func enableHTTPS(ctx context.Context, a *lxdAPI, addr, password string) error {
	return apiDo(ctx, a.c, http.MethodPatch, "/1.0", map[string]any{"config": map[string]string{
		"core.https_address":  addr,
		"core.trust_password": password,
	}})
}

// freeLoopbackAddr is a 127.0.0.1 address with a port nothing listens on
// now (the kernel's pick; LXD binds it a moment later).
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// measureIssue14 takes the issue-14 figures.
func measureIssue14(ctx context.Context, cfg *config, res *results, r *issue10Results, tarball, bins string) {
	xcfg := *cfg
	xcfg.scratch = filepath.Join(cfg.scratch, "issue14")
	if err := os.MkdirAll(xcfg.scratch, 0o711); err != nil {
		r.note("scratch: %v", err)
		return
	}
	watch := startLoadWatch()
	defer func() { r.load = watch.stop() }()

	// The Go benchmarks first, while no daemon of ours runs.
	issue14GoBench(ctx, cfg, r, filepath.Join(xcfg.scratch, "gobench"))
	if ctx.Err() != nil {
		return
	}

	h := newHangardPeer(&xcfg, tarball, bins)
	peers := []peer{h}
	var lx *lxdPeer
	if slices.Contains(cfg.peers, peerLXD) && res.skipped[peerLXD] == "" {
		lx = newLXDPeer(&xcfg, tarball)
		peers = append(peers, lx)
	} else if reason := res.skipped[peerLXD]; reason != "" {
		r.note("LXD: %s", reason)
	}
	var tried []peer
	var sides []*side14
	defer func() {
		for _, p := range slices.Backward(tried) {
			logf("issue 14: %s: tearing down", p.name())
			tctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			p.teardown(tctx)
			cancel()
		}
		// The remotes live in their HOMEs: nothing of them is left
		// in the machine's own lxc configuration.
		for _, s := range sides {
			if s.rm != nil {
				if err := os.RemoveAll(s.rm.home); err != nil {
					logf("issue 14: %v", err)
				}
			}
		}
	}()
	up := setUpPeers(ctx, "issue 14", peers, r, res, &tried)
	if ctx.Err() != nil {
		return
	}
	password := randomHex(16)
	if up[peerHangard] {
		sides = append(sides, &side14{peer: peerHangard, api: &h.lxdAPI,
			rm: &remote14{name: "pbhangard", addr: hangardHTTPS14, home: filepath.Join(xcfg.scratch, "home-hangard"), netns: h.netns}})
	}
	if lx != nil && up[peerLXD] {
		addr, err := freeLoopbackAddr()
		if err != nil {
			r.note("LXD: no free loopback port: %v", err)
		} else {
			sides = append(sides, &side14{peer: peerLXD, api: &lx.lxdAPI,
				rm: &remote14{name: "pblxd", addr: addr, home: filepath.Join(xcfg.scratch, "home-lxd")}})
		}
	}
	for _, s := range sides {
		logf("issue 14: %s: HTTPS on %s, trust password, lxc remote add %s", s.peer, s.rm.addr, s.rm.name)
		if err := enableHTTPS(ctx, s.api, s.rm.addr, password); err != nil {
			r.note("%s: HTTPS could not be turned on: %v", s.peer, err)
			s.rm = nil
			continue
		}
		if err := s.rm.add(ctx, password); err != nil {
			r.note("%s: lxc remote add with the trust password failed: %v", s.peer, err)
			s.rm = nil
			continue
		}
		code, err := s.rm.addMetricsCert(ctx, s.api)
		if err != nil {
			r.note("%s: no metrics certificate, no metrics figure over HTTPS: %v", s.peer, err)
			continue
		}
		r.note("%s: the metrics certificate (type \"metrics\", added over the unix socket) is answered %d %s on `GET /1.0/instances`", s.peer, code, http.StatusText(code))
	}
	if ctx.Err() != nil {
		return
	}

	// The lxc list figure at listInstances14 running on each.
	grow14(ctx, r, sides, listInstances14)
	issue14List(ctx, cfg, r, sides, r14List, true)
	if ctx.Err() != nil {
		return
	}
	// The metrics figures at cfg.running running on each.
	grow14(ctx, r, sides, cfg.running)
	if ctx.Err() != nil {
		return
	}
	issue14List(ctx, cfg, r, sides, r14ListMany, false)
	issue14Metrics(ctx, r, sides)
}

// grow14 starts containers on every daemon at once until n run on each
// (pb-t0001...); a daemon that cannot reach n keeps what it has, noted.
func grow14(ctx context.Context, r *issue10Results, sides []*side14, n int) {
	logf("issue 14: starting containers until %d run on each daemon", n)
	t0 := time.Now()
	_ = parallel(ctx, len(sides), sides, func(ctx context.Context, s *side14) error {
		_, running, err := s.api.count(ctx)
		if err == nil && running < n {
			err = s.api.createMany(ctx, names("pb-t", running, n), true)
		}
		if err != nil {
			r.note("%s: starting %d containers: %v", s.peer, n, err)
		}
		s.scale, _, _ = s.api.count(context.WithoutCancel(ctx))
		if s.scale < n {
			r.note("%s: %d containers run where %d were asked for; its figures at %d are taken at %d", s.peer, s.scale, n, n, s.scale)
		}
		return nil
	})
	logf("issue 14: %s (%.0fs)", strings.Join(scales14(sides), ", "), time.Since(t0).Seconds())
}

func scales14(sides []*side14) []string {
	var out []string
	for _, s := range sides {
		out = append(out, fmt.Sprintf("%s: %d running", s.peer, s.scale))
	}
	return out
}

// issue14List times `lxc list REMOTE:` (default columns: a table with the
// state of every instance, one recursion=2 request) on every daemon,
// execWarmRounds unrecorded rounds then cfg.listRuns recorded ones, each
// in a fresh random order. With parts, the rounds also time what it is
// made of: `lxc --version` the same way (the client's own cost), and the
// request alone over a new TLS connection from this harness.
func issue14List(ctx context.Context, cfg *config, r *issue10Results, sides []*side14, row string, parts bool) {
	type variant func(rec *issue10Results)
	var variants []variant
	for _, s := range sides {
		if s.rm == nil {
			continue
		}
		variants = append(variants, func(rec *issue10Results) {
			ms, err := s.rm.lxc(ctx, "list", s.rm.name+":")
			record11(rec, row, s.peer, ms, err)
		})
		if !parts {
			continue
		}
		variants = append(variants, func(rec *issue10Results) {
			ms, err := s.rm.lxc(ctx, "--version")
			record11(rec, r14LXCFloor, s.peer, ms, err)
		}, func(rec *issue10Results) {
			t0 := time.Now()
			err := httpGet(ctx, s.rm.fresh(), "https://"+s.rm.addr+"/1.0/instances?recursion=2")
			record11(rec, r14ListAPI, s.peer, msSince(t0), err)
		})
	}
	if len(variants) == 0 {
		return
	}
	randomRounds(ctx, "issue 14", "lxc list over TLS ("+row+")", execWarmRounds, cfg.listRuns, len(variants), func(rec *issue10Results, _, i int) {
		variants[i](rec)
	}, r)
}

// scrape14 is one way of getting a daemon's metrics.
type scrape14 struct {
	peer, row string
	hc        *http.Client
	url       string
}

// issue14Metrics times GET /1.0/metrics: metricsRounds14 rounds (after
// one unrecorded), each waiting until LXD's cache of its last full fetch
// expired, then LXD's scrape over HTTPS (the uncached figure), then
// metricsPerRound14 times every other scrape (each daemon over its unix
// socket and over HTTPS; LXD's within its cache) in random order.
func issue14Metrics(ctx context.Context, r *issue10Results, sides []*side14) {
	var cold *scrape14
	var warm []*scrape14
	for _, s := range sides {
		warm = append(warm, &scrape14{peer: s.peer, row: r14MetricsUnix, hc: s.api.hc, url: "http://unix/1.0/metrics"})
		if s.rm == nil || s.rm.metrics == nil {
			continue
		}
		overTLS := &scrape14{peer: s.peer, row: r14MetricsTLS, hc: s.rm.metrics, url: "https://" + s.rm.addr + "/1.0/metrics"}
		warm = append(warm, overTLS)
		if s.peer == peerLXD {
			c := *overTLS
			c.row = r14MetricsCold
			cold = &c
		}
	}
	// What each answered first: how many instances its series cover,
	// and the size of a scrape.
	for _, sc := range append(slices.Clone(warm), cold) {
		if sc == nil {
			continue
		}
		_, inst, size, err := getMetrics(ctx, sc.hc, sc.url)
		if err != nil {
			record11(r, sc.row, sc.peer, 0, err)
			continue
		}
		if sc.row != r14MetricsCold {
			r.note("metrics, %s, %s: the scrape has series (`lxd_procs_total`) for %d instances, %.0f KiB", sc.peer, sc.row, inst, float64(size)/1024)
		}
	}
	logf("issue 14: metrics, %d rounds of at least %s (LXD's cache)", metricsRounds14+1, lxdMetricsCache)
	warmRes := newIssue10Results()
	var lastCold time.Time
	for round := range metricsRounds14 + 1 {
		rec := r
		if round == 0 {
			rec = warmRes
		}
		if cold != nil {
			// The previous scrape of the round filled LXD's cache: wait
			// until it expired.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(lastCold.Add(lxdMetricsCache))):
			}
			ms, _, _, err := getMetrics(ctx, cold.hc, cold.url)
			record11(rec, cold.row, cold.peer, ms, err)
			lastCold = time.Now()
		}
		for range metricsPerRound14 {
			for _, i := range mrand.Perm(len(warm)) {
				if ctx.Err() != nil {
					return
				}
				sc := warm[i]
				t0 := time.Now()
				ms, _, _, err := getMetrics(ctx, sc.hc, sc.url)
				if sc.peer == peerLXD && cold != nil && t0.Sub(lastCold) > lxdMetricsWarm {
					// LXD's cache may have expired under this one:
					// neither figure, dropped.
					continue
				}
				record11(rec, sc.row, sc.peer, ms, err)
			}
		}
	}
	for row, cols := range warmRes.errs {
		for col, e := range cols {
			logf("issue 14: warm-up: %s %s: %s", col, row, e)
		}
	}
}

// getMetrics GETs url with hc and reads the whole answer: its time in ms
// (what the scraper waits), the instances its series cover and its size.
func getMetrics(ctx context.Context, hc *http.Client, url string) (float64, int, int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("GET %s: %w", url, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	ms := msSince(t0)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, 0, fmt.Errorf("GET %s: %s: %s", url, resp.Status, tail(string(body), 200))
	}
	return ms, metricsInstances(string(body)), len(body), nil
}

// metricsInstances counts the instances a scrape in the Prometheus text
// format has series for: the distinct (project, name) labels of
// lxd_procs_total, one series per running instance in LXD's and
// hangard's metrics alike.
func metricsInstances(text string) int {
	seen := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, "lxd_procs_total{")
		if !ok {
			continue
		}
		labels, _, ok := strings.Cut(rest, "}")
		if !ok {
			continue
		}
		name, project := promLabel(labels, "name"), promLabel(labels, "project")
		if name == "" {
			continue
		}
		seen[project+"/"+name] = true
	}
	return len(seen)
}

// promLabel is the value of key in a label list (`a="x",b="y"`), "" when
// absent. Values with escaped quotes are not needed here: instance and
// project names hold none.
func promLabel(labels, key string) string {
	for _, kv := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.TrimSpace(k) == key {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// issue14GoBench builds the test binaries of internal/api/lxd and
// internal/auth and runs BenchmarkListAuthz's and
// BenchmarkListAuthzChecks's cases, each alone, in authzRounds14 rounds of
// random order, then BenchmarkCheck.
func issue14GoBench(ctx context.Context, cfg *config, r *issue10Results, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.note("Go benchmarks: %v", err)
		return
	}
	build := command{dir: cfg.repo, timeout: 10 * time.Minute}
	lxdTest, authTest := filepath.Join(dir, "lxd.test"), filepath.Join(dir, "auth.test")
	logf("issue 14: building the test binaries of internal/api/lxd and internal/auth")
	for _, b := range []struct{ bin, pkg string }{{lxdTest, "./internal/api/lxd"}, {authTest, "./internal/auth"}} {
		if err := build.run(ctx, "go", "test", "-c", "-o", b.bin, b.pkg); err != nil {
			r.note("Go benchmarks: go test -c %s: %v", b.pkg, err)
			return
		}
	}
	// A test binary runs in its package's directory, as go test runs it.
	lxdRun := command{dir: filepath.Join(cfg.repo, "internal", "api", "lxd"), timeout: 10 * time.Minute}
	authRun := command{dir: filepath.Join(cfg.repo, "internal", "auth"), timeout: 10 * time.Minute}

	logf("issue 14: %s and %s, %d rounds of their %d cases in random order, -benchtime %s", benchListAuthz, benchListAuthzChecks, authzRounds14, len(authzCases), cfg.benchtime)
	checksPerList := map[string][]float64{}
	for round := range authzRounds14 {
		got := map[string]float64{}
		for _, i := range mrand.Perm(len(authzCases)) {
			if ctx.Err() != nil {
				return
			}
			c := authzCases[i]
			out, err := lxdRun.output(ctx, lxdTest, "-test.run", "^$", "-test.bench", "^"+c.bench+"$/^"+c.sub+"$",
				"-test.benchtime", cfg.benchtime, "-test.count", "1")
			b, err := benchResult(out, err, c.bench+"/"+c.sub)
			if err != nil {
				record11(r, c.row, peerHangard, 0, err)
				continue
			}
			record11(r, c.row, peerHangard, b.ns[0]/c.perUnit, nil)
			got[c.row] = b.ns[0]
			if n := b.extra["checks/list"]; len(n) > 0 {
				checksPerList[c.sub] = append(checksPerList[c.sub], n...)
			}
		}
		// The round's own figures, taken seconds apart: the share the
		// checks take of the list, and (for reference) what the whole
		// list gains with the authorizer over the one without.
		for _, p := range authzShares {
			checks, ok1 := got[p.checks]
			list, ok2 := got[p.list]
			if ok1 && ok2 && list > 0 {
				r.add(p.share, peerHangard, checks/list*100, nil)
			}
		}
		if none, ok := got[r14AuthzNone]; ok {
			for _, p := range []struct{ with, over, delta string }{{r14AuthzAdmin, r14OverAdmin, r14DeltaAdmin}, {r14AuthzViewer, r14OverViewer, r14DeltaViewer}} {
				if with, ok := got[p.with]; ok {
					over, delta := overhead(none, with)
					r.add(p.over, peerHangard, over, nil)
					r.add(p.delta, peerHangard, delta, nil)
				}
			}
		}
		logf("issue 14: authorization benchmarks, round %d/%d", round+1, authzRounds14)
	}
	for _, sub := range []string{"admin", "group-viewer"} {
		if n := checksPerList[sub]; len(n) > 0 {
			r.note("%s/%s replayed %s authorization questions per list (its `checks/list`, from a real list of 100 instances)", benchListAuthzChecks, sub, figure(slices.Min(n)))
			if slices.Min(n) != slices.Max(n) {
				r.note("%s/%s: `checks/list` varied between runs: %s to %s", benchListAuthzChecks, sub, figure(slices.Min(n)), figure(slices.Max(n)))
			}
		}
	}
	// The whole lists' difference from each case's fastest run, for
	// reference: the machine's other work only ever adds time, so the
	// fastest runs are the ones it disturbed least.
	best := func(row string) float64 {
		v := r.vals[row][peerHangard]
		if len(v) == 0 {
			return math.NaN()
		}
		return slices.Min(v) * 1e6
	}
	if none := best(r14AuthzNone); !math.IsNaN(none) {
		for _, p := range []struct{ with, over, delta string }{{r14AuthzAdmin, r14BestAdmin, r14BestDAdmin}, {r14AuthzViewer, r14BestViewer, r14BestDViewer}} {
			if with := best(p.with); !math.IsNaN(with) {
				over, delta := overhead(none, with)
				r.add(p.over, peerHangard, over, nil)
				r.add(p.delta, peerHangard, delta, nil)
			}
		}
	}

	logf("issue 14: BenchmarkCheck, -benchtime %s -count %d", cfg.benchtime, checkCount14)
	out, err := authRun.output(ctx, authTest, "-test.run", "^$", "-test.bench", "^BenchmarkCheck$",
		"-test.benchtime", cfg.benchtime, "-test.count", fmt.Sprint(checkCount14))
	if err != nil {
		record11(r, r14CheckAllowed, peerHangard, 0, err)
		return
	}
	found := 0
	for _, b := range parseGoBench(out) {
		sub, _ := strings.CutPrefix(b.name, "BenchmarkCheck/")
		row, ok := checkCases[sub]
		if !ok {
			continue
		}
		found++
		for _, ns := range b.ns {
			record11(r, row, peerHangard, ns/1e3, nil)
		}
	}
	if found == 0 {
		record11(r, r14CheckAllowed, peerHangard, 0, fmt.Errorf("no BenchmarkCheck figure in: %s", tail(out, 300)))
	}
}

// benchResult is benchmark name's result in a test binary's output (at
// least one ns/op figure).
func benchResult(out string, err error, name string) (goBenchResult, error) {
	if err != nil {
		return goBenchResult{}, err
	}
	for _, b := range parseGoBench(out) {
		if b.name == name && len(b.ns) > 0 {
			return b, nil
		}
	}
	return goBenchResult{}, fmt.Errorf("no %s figure in: %s", name, tail(out, 300))
}

// overhead is what with adds to none: in percent, and in µs (both in ns
// per request).
func overhead(none, with float64) (pct, us float64) {
	if none <= 0 {
		return math.NaN(), math.NaN()
	}
	return (with/none - 1) * 100, (with - none) / 1e3
}

// runIssue14 is the whole issue-14 run after the builds.
func runIssue14(ctx context.Context, cfg *config, res *results, tarball, bins string, start time.Time) error {
	r := newIssue10Results()
	measureIssue14(ctx, cfg, res, r, tarball, bins)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted; everything created was torn down, no report written")
	}
	res.elapsed = time.Since(start)
	md := renderIssue14(cfg, res, r)
	if err := writeFile(cfg.out, []byte(md)); err != nil {
		return err
	}
	fmt.Print(md)
	logf("report written to %s", cfg.out)
	return nil
}

package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseFlagsIssue14(t *testing.T) {
	parse := func(args ...string) (*config, error) {
		t.Helper()
		old := os.Args
		defer func() { os.Args = old }()
		os.Args = append([]string{"peerbench", "--repo", t.TempDir()}, args...)
		return parseFlags()
	}
	for _, tc := range []struct {
		name      string
		args      []string
		peers     []string
		listRuns  int
		running   int
		benchtime string
		wantErr   string
	}{
		{name: "defaults", args: []string{"--issue14"}, peers: []string{peerHangard, peerLXD}, listRuns: 20, running: 100, benchtime: "1s"},
		{name: "given", args: []string{"--issue14", "--list-runs", "30", "--running", "50", "--benchtime", "2s"}, peers: []string{peerHangard, peerLXD}, listRuns: 30, running: 50, benchtime: "2s"},
		{name: "runc and podman dropped", args: []string{"--issue14", "--peers", "runc,podman,lxd"}, peers: []string{peerHangard, peerLXD}, listRuns: 20, running: 100, benchtime: "1s"},
		{name: "hangard alone", args: []string{"--issue14", "--peers", "hangard"}, peers: []string{peerHangard}, listRuns: 20, running: 100, benchtime: "1s"},
		{name: "with issue13", args: []string{"--issue14", "--issue13"}, wantErr: "--issue14 goes with none of"},
		{name: "with issue11", args: []string{"--issue11", "--issue14"}, wantErr: "--issue14 goes with none of"},
		{name: "with only", args: []string{"--issue14", "--only", "exec"}, wantErr: "--issue14 goes with none of"},
		{name: "with quick", args: []string{"--issue14", "--quick"}, wantErr: "--issue14 goes with none of"},
		{name: "too few list runs", args: []string{"--issue14", "--list-runs", "3"}, wantErr: "at least 5 runs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse(tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !cfg.issue14 || cfg.issue13 || cfg.only != nil || !slices.Equal(cfg.peers, tc.peers) || cfg.listRuns != tc.listRuns || cfg.running != tc.running || cfg.benchtime != tc.benchtime {
				t.Errorf("issue14 %v issue13 %v only %v peers %v list-runs %d running %d benchtime %s, want peers %v list-runs %d running %d benchtime %s",
					cfg.issue14, cfg.issue13, cfg.only, cfg.peers, cfg.listRuns, cfg.running, cfg.benchtime, tc.peers, tc.listRuns, tc.running, tc.benchtime)
			}
			if cfg.goBench || !strings.HasSuffix(cfg.out, "bench/ISSUE14.md") {
				t.Errorf("issue-14 defaults: goBench %v out %s", cfg.goBench, cfg.out)
			}
		})
	}
}

func TestMetricsInstances(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       int
	}{
		{name: "empty", text: "", want: 0},
		{name: "LXD's form", text: `# HELP lxd_procs_total The number of running processes.
# TYPE lxd_procs_total gauge
lxd_procs_total{name="c1",project="default",type="container"} 2
lxd_procs_total{name="c2",project="default",type="container"} 3
lxd_cpu_seconds_total{cpu="0",mode="user",name="c1",project="default",type="container"} 0.1
`, want: 2},
		{name: "same name, two projects", text: `lxd_procs_total{project="p1",name="c1",type="container"} 1
lxd_procs_total{project="p2",name="c1",type="container"} 1
`, want: 2},
		{name: "a series twice", text: "lxd_procs_total{name=\"c1\",project=\"default\"} 1\nlxd_procs_total{name=\"c1\",project=\"default\"} 1\n", want: 1},
		{name: "no name label", text: `lxd_procs_total{project="default"} 1`, want: 0},
		{name: "other metrics only", text: `hangar_api_requests_total{method="GET"} 5
lxd_procs_totally{name="x"} 1
`, want: 0},
		{name: "label that ends in name", text: `lxd_procs_total{hostname="h",project="default"} 1`, want: 0},
		{name: "unterminated", text: `lxd_procs_total{name="c1"`, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := metricsInstances(tc.text); got != tc.want {
				t.Errorf("metricsInstances = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestOverhead(t *testing.T) {
	for _, tc := range []struct {
		name            string
		none, with      float64
		wantPct, wantUS float64
	}{
		{name: "1% of 5 ms", none: 5e6, with: 5.05e6, wantPct: 1, wantUS: 50},
		{name: "faster with (noise)", none: 5e6, with: 4.9e6, wantPct: -2, wantUS: -100},
		{name: "equal", none: 1e6, with: 1e6, wantPct: 0, wantUS: 0},
		{name: "no base", none: 0, with: 1e6, wantPct: math.NaN(), wantUS: math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pct, us := overhead(tc.none, tc.with)
			near := func(a, b float64) bool {
				return math.IsNaN(a) && math.IsNaN(b) || math.Abs(a-b) < 1e-9
			}
			if !near(pct, tc.wantPct) || !near(us, tc.wantUS) {
				t.Errorf("overhead(%g, %g) = %g%%, %g µs; want %g%%, %g µs", tc.none, tc.with, pct, us, tc.wantPct, tc.wantUS)
			}
		})
	}
}

func TestBenchResult(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/hangar-dev/hangar/internal/api/lxd
cpu: AMD EPYC
BenchmarkListAuthz/group-viewer-2 	      67	   5098315 ns/op	  498951 B/op	    7451 allocs/op
BenchmarkListAuthzChecks/group-viewer-2         	   47833	     23870 ns/op	       200.0 checks/list
PASS
`
	for _, tc := range []struct {
		name, out, bench string
		err              error
		want             float64
		wantChecks       float64
		wantErr          string
	}{
		{name: "found", out: out, bench: "BenchmarkListAuthz/group-viewer", want: 5098315},
		{name: "with its checks per list", out: out, bench: "BenchmarkListAuthzChecks/group-viewer", want: 23870, wantChecks: 200},
		{name: "a prefix of another is not it", out: out, bench: "BenchmarkListAuthzCheck/group-viewer", wantErr: "no BenchmarkListAuthzCheck/group-viewer figure"},
		{name: "another case", out: out, bench: "BenchmarkListAuthz/none", wantErr: "no BenchmarkListAuthz/none figure"},
		{name: "failed run", out: "", bench: "BenchmarkListAuthz/none", err: errors.New("exit status 1"), wantErr: "exit status 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := benchResult(tc.out, tc.err, tc.bench)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.ns[0] != tc.want {
				t.Fatalf("benchResult = %v, %v; want %g ns/op", got.ns, err, tc.want)
			}
			if checks := got.extra["checks/list"]; tc.wantChecks != 0 && (len(checks) != 1 || checks[0] != tc.wantChecks) {
				t.Errorf("checks/list %v, want %g", checks, tc.wantChecks)
			}
		})
	}
}

func TestTarget14Line(t *testing.T) {
	r := newIssue10Results()
	for _, v := range []float64{100, 110, 120} {
		r.add(r14List, peerLXD, v, nil)
	}
	for _, v := range []float64{20, 22, 24} {
		r.add(r14List, peerHangard, v, nil)
	}
	for _, v := range []float64{10, 12, 30} {
		r.add(r14MetricsUnix, peerHangard, v, nil)
	}
	r.add(r14OverAdmin, peerHangard, -5, nil)
	r.add(r14OverViewer, peerHangard, -1, nil)
	r.add(r14LXCFloor, peerHangard, 12, nil)
	r.add(r14LXCFloor, peerLXD, 10, nil)
	for _, v := range []float64{9, 10, 40} {
		r.add(r14ChecksAdmin, peerHangard, v, nil)
	}
	for _, v := range []float64{4, 5, 6} {
		r.add(r14AuthzAdmin, peerHangard, v, nil)
	}
	r.add(r14ChecksViewer, peerHangard, 150, nil)
	r.add(r14AuthzViewer, peerHangard, 5, nil)
	for _, tc := range []struct {
		name        string
		t           target14
		wantFig     string
		wantLimit   string
		wantVerdict string
	}{
		{name: "5x faster, met", t: target14{num: cellRef{r14List, peerLXD}, den: cellRef{r14List, peerHangard}, limit: 5, atLeast: true, judged: true},
			wantFig: "5.00× (110 / 22.0 ms)", wantLimit: "≥ 5.00×", wantVerdict: "**PASS**"},
		{name: "6x faster, missed", t: target14{num: cellRef{r14List, peerLXD}, den: cellRef{r14List, peerHangard}, limit: 6, atLeast: true, judged: true},
			wantLimit: "≥ 6.00×", wantVerdict: "**MISS**"},
		{name: "at most, met", t: target14{num: cellRef{r14MetricsUnix, peerHangard}, unit: "ms", limit: 20, judged: true},
			wantFig: "12.0 ms (p90 30.0)", wantLimit: "≤ 20.0 ms", wantVerdict: "**PASS**"},
		{name: "at most, missed", t: target14{num: cellRef{r14MetricsUnix, peerHangard}, unit: "ms", limit: 11, judged: true},
			wantVerdict: "**MISS**"},
		{name: "less the client's floor", t: target14{num: cellRef{r14List, peerLXD}, numLess: cellRef{r14LXCFloor, peerLXD}, den: cellRef{r14List, peerHangard}, denLess: cellRef{r14LXCFloor, peerHangard}, limit: 10, atLeast: true, judged: true},
			wantFig: "10× (100 / 10.0 ms)", wantLimit: "≥ 10.0×", wantVerdict: "**PASS**"},
		{name: "share of the list, met", t: target14{num: cellRef{r14ChecksAdmin, peerHangard}, den: cellRef{r14AuthzAdmin, peerHangard}, share: true, unit: "%", limit: 2, judged: true},
			wantFig: "0.200 % (10.0 µs / 5.00 ms)", wantLimit: "≤ 2.00 %", wantVerdict: "**PASS**"},
		{name: "share of the list, missed", t: target14{num: cellRef{r14ChecksViewer, peerHangard}, den: cellRef{r14AuthzViewer, peerHangard}, share: true, unit: "%", limit: 2, judged: true},
			wantFig: "3.00 % (150 µs / 5.00 ms)", wantVerdict: "**MISS**"},
		{name: "share without a list", t: target14{num: cellRef{r14ChecksAdmin, peerHangard}, den: cellRef{r14AuthzNone, peerHangard}, share: true, unit: "%", limit: 2, judged: true},
			wantFig: "-", wantVerdict: "no figure"},
		{name: "per list, at most 50 µs", t: target14{num: cellRef{r14ChecksAdmin, peerHangard}, unit: "µs", limit: 50, judged: true},
			wantFig: "10.0 µs (p90 40.0)", wantLimit: "≤ 50.0 µs", wantVerdict: "**PASS**"},
		{name: "negative overhead, for reference", t: target14{num: cellRef{r14OverAdmin, peerHangard}, unit: "%", limit: 2},
			wantFig: "-5.00 % (p90 -5.00)", wantVerdict: ""},
		{name: "no figure", t: target14{num: cellRef{r14MetricsCold, peerLXD}, unit: "ms", limit: 20, judged: true},
			wantFig: "-", wantVerdict: "no figure"},
		{name: "ratio without a denominator", t: target14{num: cellRef{r14List, peerLXD}, den: cellRef{r14MetricsTLS, peerHangard}, limit: 5, atLeast: true, judged: true},
			wantFig: "-", wantVerdict: "no figure"},
		{name: "reference only", t: target14{num: cellRef{r14MetricsUnix, peerHangard}, unit: "ms"},
			wantLimit: "-", wantVerdict: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fig, limit, verdict := tc.t.line(r)
			if tc.wantFig != "" && fig != tc.wantFig {
				t.Errorf("figure %q, want %q", fig, tc.wantFig)
			}
			if tc.wantLimit != "" && limit != tc.wantLimit {
				t.Errorf("limit %q, want %q", limit, tc.wantLimit)
			}
			if verdict != tc.wantVerdict {
				t.Errorf("verdict %q, want %q", verdict, tc.wantVerdict)
			}
		})
	}
}

func TestNewClientCert(t *testing.T) {
	cert, fp, err := newClientCert("pb-metrics")
	if err != nil {
		t.Fatal(err)
	}
	x, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	if fp != hex.EncodeToString(sum[:]) || len(fp) != 64 {
		t.Errorf("fingerprint %s is not the SHA-256 of the DER", fp)
	}
	if x.Subject.CommonName != "pb-metrics" || !slices.Contains(x.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("CN %q, ext key usage %v: want pb-metrics, client auth", x.Subject.CommonName, x.ExtKeyUsage)
	}
	if err := x.CheckSignature(x.SignatureAlgorithm, x.RawTBSCertificate, x.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if _, fp2, err := newClientCert("pb-metrics"); err != nil || fp2 == fp {
		t.Errorf("a second certificate has the same fingerprint (%v)", err)
	}
}

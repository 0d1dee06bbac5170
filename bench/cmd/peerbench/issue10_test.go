package main

import (
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseFlagsIssue10(t *testing.T) {
	parse := func(args ...string) (*config, error) {
		t.Helper()
		old := os.Args
		defer func() { os.Args = old }()
		os.Args = append([]string{"peerbench", "--repo", t.TempDir()}, args...)
		return parseFlags()
	}
	for _, tc := range []struct {
		name    string
		args    []string
		only    []string
		peers   []string
		wantErr string
	}{
		{name: "all parts", args: []string{"--issue10"}, only: issue10Parts, peers: []string{peerHangard, peerLXD}},
		{name: "only implies issue10", args: []string{"--only", "events"}, only: []string{partEvents}, peers: []string{peerHangard, peerLXD}},
		{name: "several, spaces", args: []string{"--only", "patch, list"}, only: []string{partPatch, partList}, peers: []string{peerHangard, peerLXD}},
		{name: "hangard alone", args: []string{"--issue10", "--peers", "hangard,runc"}, only: issue10Parts, peers: []string{peerHangard}},
		{name: "unknown part", args: []string{"--only", "exec,speed"}, wantErr: `unknown part "speed"`},
		{name: "empty part", args: []string{"--only", "exec,"}, wantErr: `unknown part ""`},
		{name: "with quick", args: []string{"--issue10", "--quick"}, wantErr: "neither --exec-only nor --quick"},
		{name: "with exec-only", args: []string{"--only", "exec", "--exec-only"}, wantErr: "neither --exec-only nor --quick"},
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
			if !slices.Equal(cfg.only, tc.only) || !slices.Equal(cfg.peers, tc.peers) {
				t.Errorf("only %v peers %v, want %v %v", cfg.only, cfg.peers, tc.only, tc.peers)
			}
			if cfg.goBench || cfg.execRuns != 60 || cfg.runs != 5 || cfg.listRuns != 10 || !strings.HasSuffix(cfg.out, "bench/out/issue10.md") {
				t.Errorf("issue-10 defaults: goBench %v execRuns %d runs %d listRuns %d out %s", cfg.goBench, cfg.execRuns, cfg.runs, cfg.listRuns, cfg.out)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, unsorted
	}
	for _, tc := range []struct {
		vals []float64
		p    float64
		want float64
	}{
		{hundred, 99, 99},
		{hundred, 50, 50},
		{hundred, 100, 100},
		{[]float64{3, 1, 2}, 99, 3},
		{[]float64{7}, 1, 7},
	} {
		if got := percentile(tc.vals, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.vals, tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 99); !math.IsNaN(got) {
		t.Errorf("percentile of nothing = %v, want NaN", got)
	}
}

func TestRenderIssue10(t *testing.T) {
	cfg := &config{only: issue10Parts, runs: 5, execRuns: 5, listRuns: 5, triggers: 100, benchtime: "300ms"}
	res := newResults(cfg)
	r := newIssue10Results()
	for _, v := range []float64{3, 3, 4, 5, 9} {
		r.add(r10Version, peerHangard, v, nil)
		r.add(r10Version, peerHello, v/2, nil) // 2×: missed
		r.add(r10Exec, peerHangard, v, nil)
		r.add(r10Exec, peerLXD, 10*v, nil) // 0.1×: met
		r.add(r10Freeze, peerHangard, v, nil)
		r.add(r10Events, peerHangard, 100*v, nil)
	}
	r.add(r10Freeze, peerLXD, 0, errors.New("freeze pb-exec: boom"))
	r.add(r10Events, peerLXD, 0, errors.New("subscribe: refused")) // no reference
	for i := range 200 {
		r.add(r10Patch, peerHangard, float64(i+1), nil) // p99 198: missed
	}
	r.count(r10Patch, peerHangard, 201, 1)
	r.add(r10ListYAML, peerHangard, 40, nil)
	md := renderIssue10(cfg, res, r)
	for _, want := range []string{
		"| ms | **4.00**, 9.00 (3.00–9.00) | - | **2.00**, 4.50 (1.50–4.50) | 2.00× | ≤ 1.50× Go hello-world: **missed** |",
		"| 0.10× | ≤ 0.350× lxc exec (LXD): **met** |",
		"| ms | **4.00**, 9.00 (3.00–9.00) | failed | - | - | ≤ 5.00 ms: **met** |",
		"| events/s | **400**, 900 (300–900) | failed | - | - | ≥ 1× LXD: no reference |",
		"| ms | **198**, p50 100, max 200; 201 requests, 1 errors | - | - | - | ≤ 100 ms p99: **missed** |",
		"| ms | **40.0** | - | - | - | ≤ 50.0 ms: **met** |",
		"- LXD, freeze: freeze pb-exec: boom",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, absent := range []string{"| unfreeze, one API call", "| its peak RSS"} {
		if strings.Contains(md, absent) {
			t.Errorf("report has a row %q with no figures:\n%s", absent, md)
		}
	}
}

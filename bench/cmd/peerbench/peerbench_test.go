package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestStats(t *testing.T) {
	for _, c := range []struct {
		in                 []float64
		med, p90, min, max float64
	}{
		{[]float64{5, 1, 3}, 3, 5, 1, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 4, 1, 4},
		{[]float64{7}, 7, 7, 7, 7},
		{[]float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 5.5, 9, 1, 10},
		{[]float64{11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 6, 10, 1, 11},
	} {
		s := stats(c.in)
		if s.med != c.med || s.p90 != c.p90 || s.min != c.min || s.max != c.max || s.n != len(c.in) {
			t.Errorf("stats(%v) = %+v, want med %v p90 %v min %v max %v", c.in, s, c.med, c.p90, c.min, c.max)
		}
	}
}

func TestExecSection(t *testing.T) {
	cfg := &config{scales: []int{1}, running: 100, runs: 5, execRuns: 5, listRuns: 5, peers: []string{peerHangard, peerRunc, peerLXD}}
	res := newResults(cfg)
	res.xDone = true
	for _, v := range []float64{30, 35, 38, 45, 90} {
		res.xAdd([]string{xExecCLI}, peerHangard, v, nil)
		res.xAdd([]string{xExecCLI, xExecLXC}, peerLXD, 2*v, nil)
		res.xAdd([]string{xExecAPI}, peerHangard, v, nil)
		res.xAdd([]string{xLXCList}, peerHangard, v, nil)
		res.xAdd([]string{xLXCList}, peerLXD, 4*v, nil)
	}
	res.xFailed(peerRunc, errors.New("set-up failed: boom"))
	md := renderExecSection(cfg, res)
	for _, want := range []string{
		"| exec `true`, its CLI included: `hangar exec`, `runc exec`, `podman exec`, `lxc exec` | **38.0**, 90.0 (30.0–90.0) | skipped | **76.0**, 180 (60.0–180) | 0.50× | hangard ≤ 40 ms median: **met** |",
		"| **76.0**, 180 (60.0–180) | - |  |",
		"hangard ≤ 30 ms median: **missed** |",
		"hangard ≥ 5× faster than LXD: **missed** (4.0×) |",
		"- runc: set-up failed: boom",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("section lacks %q:\n%s", want, md)
		}
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
pkg: github.com/hangar-dev/hangar/internal/event
BenchmarkFanout10-2   	  386392	      3122 ns/op	     256 B/op	       5 allocs/op	    320312 events/s
BenchmarkFanout10-2   	  386392	      3000 ns/op	     256 B/op	       5 allocs/op	    330000 events/s
pkg: github.com/hangar-dev/hangar/internal/cli
BenchmarkRenderInstances/table-2         	      18	  11145697 ns/op	 2231928 B/op	   28051 allocs/op
PASS
`
	res := parseGoBench(out)
	if len(res) != 2 {
		t.Fatalf("got %d results, want 2: %+v", len(res), res)
	}
	f := res[0]
	if f.pkg != "internal/event" || f.name != "BenchmarkFanout10" || len(f.ns) != 2 || len(f.extra["events/s"]) != 2 {
		t.Errorf("fan-out parsed as %+v", f)
	}
	if len(f.extraUnits) != 1 || f.extraUnits[0] != "events/s" {
		t.Errorf("extra units %v, want [events/s]", f.extraUnits)
	}
	if r := res[1]; r.pkg != "internal/cli" || r.name != "BenchmarkRenderInstances/table" || r.ns[0] != 11145697 {
		t.Errorf("render parsed as %+v", r)
	}
}

func TestParseFlags(t *testing.T) {
	parse := func(args ...string) *config {
		t.Helper()
		old := os.Args
		defer func() { os.Args = old }()
		os.Args = append([]string{"peerbench", "--repo", t.TempDir()}, args...)
		cfg, err := parseFlags()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	full := parse()
	if full.quick || !full.goBench || full.runs != 7 || full.running != 100 || len(full.scales) != 3 || !strings.HasSuffix(full.out, "bench/RESULTS.md") || !strings.HasSuffix(full.chart, "bench/results.png") {
		t.Errorf("full run defaults: %+v", full)
	}
	quick := parse("--quick")
	if quick.goBench || quick.runs != 5 || quick.running != 10 || !strings.HasSuffix(quick.chart, "bench/out/quick.png") {
		t.Errorf("quick defaults: %+v", quick)
	}
	if c := parse("--quick", "--go-bench"); !c.goBench {
		t.Error("--go-bench ignored with --quick")
	}
	if c := parse("--scales", "1,20", "--peers", "lxd"); c.running != 20 || len(c.peers) != 2 {
		t.Errorf("--scales 1,20 --peers lxd: running %d, peers %v", c.running, c.peers)
	}
}

func TestNoInstallSkipsMissingPeer(t *testing.T) {
	for _, b := range []string{"runc", "busybox", "tar"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed", b)
		}
	}
	old := requirements
	defer func() { requirements = old }()
	requirements = []requirement{{peerPodman, []string{"no-such-binary-peerbench"}, []string{"no-such-package"}}}
	cfg := &config{noInstall: true, peers: []string{peerHangard, peerPodman}}
	res := newResults(&config{scales: []int{1}, running: 1})
	if err := ensureInstalled(context.Background(), cfg, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.skipped[peerPodman], "no-such-binary-peerbench not installed") {
		t.Errorf("skip line %q", res.skipped[peerPodman])
	}
}

func TestReport(t *testing.T) {
	cfg := &config{scales: []int{1}, running: 1, runs: 5, peers: []string{peerHangard, peerRunc, peerLXD}, chart: "/x/results.png"}
	res := newResults(cfg)
	res.skipped[peerLXD] = "skipped: lxd not installed"
	for _, v := range []float64{10, 12, 11, 9, 30} {
		res.add("launch", peerHangard, v, nil)
		res.add("launch", peerRunc, v/2, nil)
	}
	res.add("exec", peerHangard, 0, notApplicable("n/a (not implemented)"))
	res.add("stop", peerRunc, 0, errors.New("boom"))
	md := renderMarkdown(cfg, res, true)
	for _, want := range []string{
		"| launch (create + start) | ms | 11.0 (9.00–30.0) | 5.50 (4.50–15.0) | skipped | 2.00× | - |",
		"| exec `true` | ms | n/a (not implemented) |",
		"runc, stop --force: boom",
		"LXD: skipped: lxd not installed",
		"hangard: n/a (not implemented): exec `true`",
		"![hangard beside its peers](results.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestDescendsFrom(t *testing.T) {
	procs := map[int]procCPU{
		10: {pid: 10, ppid: 1, comm: "peerbench"},
		11: {pid: 11, ppid: 10, comm: "hangard"},
		12: {pid: 12, ppid: 11, comm: "nsenter"},
		20: {pid: 20, ppid: 1, comm: "conmon"},
		21: {pid: 21, ppid: 20, comm: "runc"},
		30: {pid: 30, ppid: 1, comm: "qemu-system-x86"},
		31: {pid: 31, ppid: 30, comm: "sh"},
	}
	for _, c := range []struct {
		pid  int
		want bool
	}{{10, true}, {12, true}, {21, true}, {30, false}, {31, false}, {99, false}} {
		if got := descendsFrom(procs, c.pid, 10); got != c.want {
			t.Errorf("descendsFrom(%d) = %v, want %v", c.pid, got, c.want)
		}
	}
}

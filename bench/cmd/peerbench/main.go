// Command peerbench measures hangard beside its peers in one run: bare runc
// (the floor), podman and LXD, all from the same busybox root filesystem, and
// writes a Markdown report with a PNG chart next to it. bench/run builds and
// runs it; see bench/README.md.
//
// Each peer is set up, measured and torn down in turn, so that no two share
// the machine while measured: runc, hangard, podman, LXD. Every figure is the
// median of at least five runs, with min and max.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Peer names, in the order they are measured.
const (
	peerRunc    = "runc"
	peerHangard = "hangard"
	peerPodman  = "podman"
	peerLXD     = "LXD"
)

// columns is the report's column order: hangard first, the floor next.
var columns = []string{peerHangard, peerRunc, peerPodman, peerLXD}

var measureOrder = []string{peerRunc, peerHangard, peerPodman, peerLXD}

type config struct {
	repo      string
	quick     bool
	noInstall bool
	goBench   bool
	benchtime string
	peers     []string
	runs      int
	scales    []int
	running   int
	triggers  int // events triggered per run, per worker
	out       string
	chart     string
	keep      bool
	scratch   string

	// execRuns and listRuns are the recorded rounds of the exec and lxc
	// list comparison (0: no such phase); execOnly runs that phase alone.
	execRuns int
	listRuns int
	execOnly bool

	// only, when set, are the parts of the issue-10 run (issue10.go) to
	// measure instead of everything else.
	only []string
	// issue11: run the networking figures of issue 11 (issue11.go) and
	// nothing else.
	issue11 bool
	// issue12: run the storage figures of issue 12 (issue12.go) and
	// nothing else.
	issue12 bool
	// issue13: run the snapshot, copy, fork and backup figures of issue
	// 13 (issue13.go) and nothing else.
	issue13 bool
	// issue14: run the remote-API, metrics and authorization figures of
	// issue 14 (issue14.go) and nothing else.
	issue14 bool
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(1)
	}
}

func parseFlags() (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("bench/run", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: bench/run [flags]

Measures hangard (built from this tree), bare runc, podman 4.3 and LXD 5.0 in
one run, from the same busybox root filesystem, and writes a Markdown report
with a PNG chart next to it (the same name in lower case, .png). Run as root.

`)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.repo, "repo", ".", "the hangar checkout to build hangard from")
	fs.BoolVar(&cfg.quick, "quick", false, "smoke comparison: 5 runs, lists at 1 and 10 instances, fewer events (under 5 minutes)")
	fs.BoolVar(&cfg.noInstall, "no-install", false, "skip peers that are not installed instead of installing them with apt")
	goBench := fs.Bool("go-bench", false, "also run the Go benchmarks of the hot paths (default: on in a full run, off with --quick)")
	fs.StringVar(&cfg.benchtime, "benchtime", "", "go test -benchtime for --go-bench (default 300ms, 50ms with --quick)")
	peers := fs.String("peers", "hangard,runc,podman,lxd", "peers to measure (hangard is always measured)")
	fs.IntVar(&cfg.runs, "runs", 0, "runs per figure, at least 5 (default 7, 5 with --quick)")
	scales := fs.String("scales", "", "instance counts to list at (default 1,100,1000; 1,10 with --quick)")
	fs.IntVar(&cfg.running, "running", 0, "how many instances run at once for the RSS and memory figures and the larger lists (default 100, 10 with --quick)")
	fs.StringVar(&cfg.out, "out", "", "report path (default bench/RESULTS.md; bench/out/quick.md with --quick)")
	fs.BoolVar(&cfg.keep, "keep-scratch", false, "keep the scratch directory (logs) after the run")
	fs.IntVar(&cfg.execRuns, "exec-runs", 0, "rounds of the exec comparison, every peer up at once and interleaved (default 100, 20 with --quick; 0 skips it and the lxc list comparison)")
	fs.IntVar(&cfg.listRuns, "list-runs", 0, "rounds of the lxc list comparison at --running instances (default 30, 10 with --quick)")
	fs.BoolVar(&cfg.execOnly, "exec-only", false, "run only the exec and lxc list comparison (report: bench/out/exec.md unless --out)")
	issue10 := fs.Bool("issue10", false, "run only the figures issue 10 sets targets for, hangard beside LXD, about 5-10 minutes (report: bench/out/issue10.md unless --out): "+
		"--version beside a Go hello-world, exec, freeze/unfreeze per API call, freeze/unfreeze events/s to 10 subscribers, PATCH p99 under 200 clients with freeze/unfreeze mixed in, hangar list --format yaml at 1000 instances")
	fs.BoolVar(&cfg.issue11, "issue11", false, "run only issue 11's networking figures, hangard (with and without a NIC) beside podman on its default bridge and LXD with its bridge NIC, about 5-10 minutes (report: bench/ISSUE11.md unless --out): "+
		"launch until reachable, start until the first TCP connect, GET /1.0/instances?recursion=2 at --running containers with NICs, throughput through proxy devices (nat=false, nat=true) beside a direct connection; --runs rounds (default 20), --list-runs requests (default 50)")
	fs.BoolVar(&cfg.issue12, "issue12", false, "run only issue 12's storage figures, hangard on its dir pool and a btrfs pool beside LXD 5.0 on the same two kinds and a baseline by hand with bare runc, about 3 minutes (report: bench/ISSUE12.md unless --out): "+
		"launch (no NIC) per pool, a custom volume created and attached to a running container until mounted, delete of a stopped instance beside `runc delete` + the root's removal by hand; --runs rounds (default 30)")
	fs.BoolVar(&cfg.issue13, "issue13", false, "run only issue 13's figures, hangard on its dir pool and a btrfs pool beside LXD 5.0 on the same two kinds, 5-6 minutes (report: bench/ISSUE13.md unless --out): "+
		"snapshot and copy of a stopped container holding 1 GiB, fork of a running 512 MiB VM to agent-ready (hangard, TCG when there is no KVM), export/import of the 1 GiB container beside `tar | zstd` of the same tree; --runs rounds of snapshot and copy (default 5), 5 of fork and of export/import")
	fs.BoolVar(&cfg.issue14, "issue14", false, "run only issue 14's figures, hangard beside LXD 5.0, about 10 minutes (report: bench/ISSUE14.md unless --out): "+
		"`lxc list REMOTE:` over TLS (trust password, a client HOME of its own) at 10 running containers on each, GET /1.0/metrics at --running (default 100) running containers on each over the unix socket and over HTTPS, "+
		"and the Go benchmarks BenchmarkListAuthz (internal/api/lxd) and BenchmarkCheck (internal/auth); --list-runs rounds of lxc list (default 20), --benchtime per benchmark run (default 1s)")
	only := fs.String("only", "", "with --issue10 (implied), only these of its parts, comma-separated: "+strings.Join(issue10Parts, ","))
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	if cfg.issue14 && (*only != "" || *issue10 || cfg.execOnly || cfg.quick || cfg.issue11 || cfg.issue12 || cfg.issue13) {
		return nil, errors.New("--issue14 goes with none of --issue10, --issue11, --issue12, --issue13, --only, --exec-only, --quick")
	}
	if cfg.issue11 && (*only != "" || *issue10 || cfg.execOnly || cfg.quick || cfg.issue12 || cfg.issue13) {
		return nil, errors.New("--issue11 goes with none of --issue10, --issue12, --issue13, --only, --exec-only, --quick")
	}
	if cfg.issue12 && (*only != "" || *issue10 || cfg.execOnly || cfg.quick || cfg.issue13) {
		return nil, errors.New("--issue12 goes with none of --issue10, --issue11, --issue13, --only, --exec-only, --quick")
	}
	if cfg.issue13 && (*only != "" || *issue10 || cfg.execOnly || cfg.quick) {
		return nil, errors.New("--issue13 goes with none of --issue10, --issue11, --issue12, --only, --exec-only, --quick")
	}
	if *only != "" || *issue10 {
		if cfg.execOnly || cfg.quick {
			return nil, errors.New("--issue10 and --only go with neither --exec-only nor --quick")
		}
		cfg.only = issue10Parts
		if *only != "" {
			cfg.only = nil
			for _, p := range strings.Split(*only, ",") {
				p = strings.TrimSpace(p)
				if !slices.Contains(issue10Parts, p) {
					return nil, fmt.Errorf("--only: unknown part %q (%s)", p, strings.Join(issue10Parts, ", "))
				}
				cfg.only = append(cfg.only, p)
			}
		}
	}
	cfg.goBench = !cfg.quick && !cfg.execOnly && cfg.only == nil && !cfg.issue11 && !cfg.issue12 && !cfg.issue13 && !cfg.issue14
	execRunsSet := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "go-bench":
			cfg.goBench = *goBench
		case "exec-runs":
			execRunsSet = true
		}
	})
	if cfg.benchtime == "" {
		cfg.benchtime = "300ms"
		if cfg.quick {
			cfg.benchtime = "50ms"
		}
		if cfg.issue14 {
			// The authorization's 2% is a small difference of
			// figures of some ms: longer runs, fewer of them noisy.
			cfg.benchtime = "1s"
		}
	}
	if cfg.runs == 0 {
		cfg.runs = 7
		if cfg.quick || cfg.only != nil {
			cfg.runs = 5
		}
		if cfg.issue11 {
			cfg.runs = 20
		}
		if cfg.issue12 {
			cfg.runs = 30
		}
		if cfg.issue13 {
			// A round copies 1 GiB four times on the dir pools.
			cfg.runs = 5
		}
	}
	if cfg.runs < 5 {
		return nil, fmt.Errorf("--runs %d: at least 5 runs make a median with min and max", cfg.runs)
	}
	if !execRunsSet {
		cfg.execRuns = 100
		switch {
		case cfg.quick:
			cfg.execRuns = 20
		case cfg.only != nil:
			cfg.execRuns = 60
		}
	}
	if cfg.listRuns == 0 {
		cfg.listRuns = 30
		if cfg.quick || cfg.only != nil {
			cfg.listRuns = 10
		}
		if cfg.issue11 {
			cfg.listRuns = 50
		}
		if cfg.issue14 {
			cfg.listRuns = 20
		}
	}
	if cfg.execOnly && cfg.execRuns == 0 {
		return nil, errors.New("--exec-only with --exec-runs 0 measures nothing")
	}
	if cfg.execRuns != 0 && (cfg.execRuns < 5 || cfg.listRuns < 5) {
		return nil, fmt.Errorf("--exec-runs %d, --list-runs %d: at least 5 runs make a median with p90", cfg.execRuns, cfg.listRuns)
	}
	if cfg.running == 0 {
		cfg.running = 100
		if cfg.quick {
			cfg.running = 10
		}
	}
	if *scales == "" {
		*scales = "1,100,1000"
		if cfg.quick {
			*scales = "1,10"
		}
	}
	for _, s := range strings.Split(*scales, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--scales: %q is not a positive count", s)
		}
		cfg.scales = append(cfg.scales, n)
	}
	slices.Sort(cfg.scales)
	cfg.scales = slices.Compact(cfg.scales)
	// The memory figures are taken when cfg.running instances run, which
	// happens on the way to the largest scale.
	cfg.running = min(cfg.running, cfg.scales[len(cfg.scales)-1])
	cfg.triggers = 100
	switch {
	case cfg.quick:
		cfg.triggers = 25
	case cfg.only != nil:
		cfg.triggers = 200
	}
	cfg.peers = []string{peerHangard}
	for _, p := range strings.Split(*peers, ",") {
		switch strings.ToLower(strings.TrimSpace(p)) {
		case "hangard", "":
		case "runc":
			cfg.peers = append(cfg.peers, peerRunc)
		case "podman":
			cfg.peers = append(cfg.peers, peerPodman)
		case "lxd":
			cfg.peers = append(cfg.peers, peerLXD)
		default:
			return nil, fmt.Errorf("--peers: unknown peer %q (hangard, runc, podman, lxd)", p)
		}
	}
	if cfg.only != nil {
		// Issue 10's figures are hangard's beside LXD's.
		cfg.peers = slices.DeleteFunc(cfg.peers, func(p string) bool { return p != peerHangard && p != peerLXD })
	}
	if cfg.issue11 {
		// Issue 11's are hangard's beside podman's and LXD's.
		cfg.peers = slices.DeleteFunc(cfg.peers, func(p string) bool { return p == peerRunc })
	}
	if cfg.issue12 {
		// Issue 12's are hangard's beside LXD's and runc's (the baseline).
		cfg.peers = slices.DeleteFunc(cfg.peers, func(p string) bool { return p == peerPodman })
	}
	if cfg.issue13 || cfg.issue14 {
		// Issue 13's are hangard's beside LXD's (the by-hand baseline,
		// tar | zstd, needs no peer), and so are issue 14's.
		cfg.peers = slices.DeleteFunc(cfg.peers, func(p string) bool { return p != peerHangard && p != peerLXD })
	}
	repo, err := filepath.Abs(cfg.repo)
	if err != nil {
		return nil, err
	}
	cfg.repo = repo
	if cfg.out == "" {
		cfg.out = filepath.Join(repo, "bench", "RESULTS.md")
		if cfg.quick {
			cfg.out = filepath.Join(repo, "bench", "out", "quick.md")
		}
		if cfg.execOnly {
			cfg.out = filepath.Join(repo, "bench", "out", "exec.md")
		}
		if cfg.only != nil {
			cfg.out = filepath.Join(repo, "bench", "out", "issue10.md")
		}
		if cfg.issue11 {
			cfg.out = filepath.Join(repo, "bench", "ISSUE11.md")
		}
		if cfg.issue12 {
			cfg.out = filepath.Join(repo, "bench", "ISSUE12.md")
		}
		if cfg.issue13 {
			cfg.out = filepath.Join(repo, "bench", "ISSUE13.md")
		}
		if cfg.issue14 {
			cfg.out = filepath.Join(repo, "bench", "ISSUE14.md")
		}
	}
	if cfg.out, err = filepath.Abs(cfg.out); err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(filepath.Base(cfg.out), filepath.Ext(cfg.out))
	cfg.chart = filepath.Join(filepath.Dir(cfg.out), strings.ToLower(base)+".png")
	return cfg, nil
}

func run(ctx context.Context, cfg *config) error {
	start := time.Now()
	if os.Geteuid() != 0 {
		return errors.New("run as root: the peers start daemons and containers")
	}
	scratch, err := os.MkdirTemp("", "peerbench.")
	if err != nil {
		return err
	}
	// Unprivileged container roots (hangard's, LXD's) must traverse it.
	if err := os.Chmod(scratch, 0o711); err != nil {
		return err
	}
	cfg.scratch = scratch
	defer func() {
		// Mounts go even when the files stay: podman leaves its storage
		// mounted after its teardown.
		unmountUnder(scratch)
		if cfg.keep {
			logf("scratch directory kept: %s", scratch)
			return
		}
		if err := os.RemoveAll(scratch); err != nil {
			logf("remove %s: %v", scratch, err)
		}
	}()
	logf("scratch directory %s; report will go to %s", scratch, cfg.out)

	res := newResults(cfg)
	res.machine = describeMachine(cfg.repo)

	if err := ensureInstalled(ctx, cfg, res); err != nil {
		return err
	}

	if cfg.goBench {
		phase := time.Now()
		logf("go benchmarks (-benchtime %s -count 5)", cfg.benchtime)
		gb, err := runGoBench(ctx, cfg)
		if err != nil {
			res.note("Go benchmarks failed: %v", err)
		}
		res.goBench = gb
		res.timings = append(res.timings, timing{"Go benchmarks", time.Since(phase)})
	}

	phase := time.Now()
	tarball, err := buildRootfs(ctx, cfg)
	if err != nil {
		return err
	}
	bins, err := buildHangard(ctx, cfg)
	if err != nil {
		return err
	}
	res.timings = append(res.timings, timing{"build hangard and the busybox root filesystem", time.Since(phase)})

	if cfg.issue11 {
		return runIssue11(ctx, cfg, res, tarball, bins, start)
	}
	if cfg.issue12 {
		return runIssue12(ctx, cfg, res, tarball, bins, start)
	}
	if cfg.issue13 {
		return runIssue13(ctx, cfg, res, tarball, bins, start)
	}
	if cfg.issue14 {
		return runIssue14(ctx, cfg, res, tarball, bins, start)
	}
	if cfg.only != nil {
		r := newIssue10Results()
		measureIssue10(ctx, cfg, res, r, tarball, bins)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted; everything created was torn down, no report written")
		}
		res.elapsed = time.Since(start)
		md := renderIssue10(cfg, res, r)
		if err := writeFile(cfg.out, []byte(md)); err != nil {
			return err
		}
		fmt.Print(md)
		logf("report written to %s", cfg.out)
		return nil
	}
	for _, name := range measureOrder {
		if cfg.execOnly || !slices.Contains(cfg.peers, name) {
			continue
		}
		if reason := res.skipped[name]; reason != "" {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		var p peer
		switch name {
		case peerRunc:
			p = newRuncPeer(cfg, tarball)
		case peerHangard:
			p = newHangardPeer(cfg, tarball, bins)
		case peerPodman:
			p = newPodmanPeer(cfg, tarball)
		case peerLXD:
			p = newLXDPeer(cfg, tarball)
		}
		phase := time.Now()
		measurePeer(ctx, cfg, res, p)
		res.timings = append(res.timings, timing{name, time.Since(phase)})
	}
	if cfg.execRuns > 0 && ctx.Err() == nil {
		phase := time.Now()
		measureExecAndList(ctx, cfg, res, tarball, bins)
		res.timings = append(res.timings, timing{"exec and lxc list, all peers at once", time.Since(phase)})
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted; everything created was torn down, no report written")
	}
	res.elapsed = time.Since(start)
	return writeReport(ctx, cfg, res)
}

// logf prints progress on stderr; the report goes to its file and stdout.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

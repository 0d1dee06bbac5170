package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// issue14Cols are the report's columns, in order.
var issue14Cols = []string{peerHangard, peerLXD}

// issue14Rows are the figures table's lines; N is replaced by --running.
var issue14Rows = []issue10Row{
	{key: r14List, label: fmt.Sprintf("`lxc list REMOTE:` over TLS, %d running containers on each (default columns: one `GET /1.0/instances?recursion=2`), from exec to exit", listInstances14), unit: "ms"},
	{key: r14ListMany, label: "the same at N running containers on each (for reference)", unit: "ms"},
	{key: r14LXCFloor, label: "`lxc --version` the same way (same HOME, same nsenter), in the same rounds: the client's own cost, which every lxc command pays", unit: "ms"},
	{key: r14ListAPI, label: fmt.Sprintf("the request alone, in the same rounds: `GET /1.0/instances?recursion=2` over HTTPS from this harness with a new TLS connection (handshake with the client certificate included, as each lxc process makes one), %d running", listInstances14), unit: "ms"},
	{key: r14MetricsUnix, label: "`GET /1.0/metrics` over the unix socket at N running containers, whole answer read (LXD: within its 8 s cache)", unit: "ms"},
	{key: r14MetricsTLS, label: "`GET /1.0/metrics` over HTTPS with a certificate of type `metrics`, warm connection (LXD: within its 8 s cache)", unit: "ms"},
	{key: r14MetricsCold, label: "`GET /1.0/metrics` over HTTPS, LXD's cache expired (at least 8.7 s after its last full fetch: what a scrape every 15 s or more gets)", unit: "ms"},
	{key: r14ChecksAdmin, label: "Go benchmark `BenchmarkListAuthzChecks/admin`: the authorization's whole cost in one `GET /1.0/instances?recursion=2` at 100 instances (the questions a real list asks, recorded, replayed against the real authorizer), as the unix socket's root", unit: "µs"},
	{key: r14ChecksViewer, label: "`BenchmarkListAuthzChecks/group-viewer`: the same as a restricted certificate that can view through a group (built-in rules, then its group, for the list and each instance)", unit: "µs"},
	{key: r14AuthzNone, label: "Go benchmark `BenchmarkListAuthz/none`: the whole `GET /1.0/instances?recursion=2` at 100 instances through the edge's handler, no authorizer", unit: "ms"},
	{key: r14AuthzAdmin, label: "`BenchmarkListAuthz/admin`: the same with the authorizer, as the unix socket's root", unit: "ms"},
	{key: r14AuthzViewer, label: "`BenchmarkListAuthz/group-viewer`: the same as the group viewer", unit: "ms"},
	{key: r14ShareAdmin, label: "the authorization's share of the list, root: `BenchmarkListAuthzChecks/admin` ÷ `BenchmarkListAuthz/admin`, round by round", unit: "%"},
	{key: r14ShareViewer, label: "the same, group viewer: `BenchmarkListAuthzChecks/group-viewer` ÷ `BenchmarkListAuthz/group-viewer`, round by round", unit: "%"},
	{key: r14OverAdmin, label: "for reference, the whole lists' difference, root: `BenchmarkListAuthz` admin ÷ none − 1, round by round", unit: "%"},
	{key: r14OverViewer, label: "the same, group viewer: group-viewer ÷ none − 1, round by round", unit: "%"},
	{key: r14DeltaAdmin, label: "the same per request, root: admin − none, round by round", unit: "µs"},
	{key: r14DeltaViewer, label: "the same per request, group viewer: group-viewer − none, round by round", unit: "µs"},
	{key: r14BestAdmin, label: "the same, root, from each case's fastest run: min(admin) ÷ min(none) − 1", unit: "%"},
	{key: r14BestViewer, label: "the same, group viewer, fastest runs: min(group-viewer) ÷ min(none) − 1", unit: "%"},
	{key: r14BestDAdmin, label: "the same per request, root: min(admin) − min(none)", unit: "µs"},
	{key: r14BestDViewer, label: "the same per request, group viewer: min(group-viewer) − min(none)", unit: "µs"},
	{key: r14CheckAllowed, label: "Go benchmark `BenchmarkCheck/allowed`: one check, 50 groups of 20 permissions, the answer in the last group", unit: "µs"},
	{key: r14CheckDenied, label: "`BenchmarkCheck/denied-notfound`: one check that denies (every group searched)", unit: "µs"},
	{key: r14CheckAdmin, label: "`BenchmarkCheck/admin`: one check as the unix socket's root", unit: "µs"},
}

// target14 is one line of the targets table: the median of num alone
// (den.row == "") or num's median ÷ den's, against limit.
type target14 struct {
	label    string
	num, den cellRef
	// numLess and denLess, when set, are taken off num and den (medians).
	numLess, denLess cellRef
	unit             string // of num alone
	limit            float64
	// atLeast: the figure must be at least limit (else at most).
	atLeast bool
	// judged: a target of the issue (else shown for reference).
	judged bool
	// share: num (µs) as a percentage of den (ms), the limit in %.
	share bool
}

func issue14Targets(running int) []target14 {
	return []target14{
		{label: fmt.Sprintf("`lxc list` over TLS at %d running containers: LXD ÷ hangard (hangard at least 5× faster)", listInstances14), num: cellRef{r14List, peerLXD}, den: cellRef{r14List, peerHangard}, limit: 5, atLeast: true, judged: true},
		{label: fmt.Sprintf("the daemons' share of it: (LXD's `lxc list` − its `lxc --version`) ÷ (hangard's − its), at %d running (for reference)", listInstances14), num: cellRef{r14List, peerLXD}, numLess: cellRef{r14LXCFloor, peerLXD}, den: cellRef{r14List, peerHangard}, denLess: cellRef{r14LXCFloor, peerHangard}, limit: 5, atLeast: true},
		{label: fmt.Sprintf("the request alone over a new TLS connection: LXD ÷ hangard, at %d running (for reference)", listInstances14), num: cellRef{r14ListAPI, peerLXD}, den: cellRef{r14ListAPI, peerHangard}, limit: 5, atLeast: true},
		{label: fmt.Sprintf("`lxc list` over TLS at %d running: LXD ÷ hangard (for reference)", running), num: cellRef{r14ListMany, peerLXD}, den: cellRef{r14ListMany, peerHangard}, limit: 5, atLeast: true},
		{label: fmt.Sprintf("`GET /1.0/metrics` at %d running containers, hangard, unix socket", running), num: cellRef{r14MetricsUnix, peerHangard}, unit: "ms", limit: 20, judged: true},
		{label: fmt.Sprintf("`GET /1.0/metrics` at %d running, hangard, over HTTPS (for reference)", running), num: cellRef{r14MetricsTLS, peerHangard}, unit: "ms", limit: 20},
		{label: fmt.Sprintf("`GET /1.0/metrics` at %d running, LXD, over HTTPS, its cache expired (measured in the same run)", running), num: cellRef{r14MetricsCold, peerLXD}, unit: "ms"},
		{label: fmt.Sprintf("`GET /1.0/metrics` at %d running, LXD, unix socket, within its cache (measured in the same run)", running), num: cellRef{r14MetricsUnix, peerLXD}, unit: "ms"},
		{label: "`GET /1.0/metrics` over HTTPS: LXD uncached ÷ hangard (for reference)", num: cellRef{r14MetricsCold, peerLXD}, den: cellRef{r14MetricsTLS, peerHangard}},
		{label: "the authorization's whole cost per `GET /1.0/instances?recursion=2` at 100 instances (`BenchmarkListAuthzChecks`: the list's questions replayed against the real authorizer), group viewer (the slowest path)", num: cellRef{r14ChecksViewer, peerHangard}, unit: "µs", limit: 50, judged: true},
		{label: "the same, the unix socket's root", num: cellRef{r14ChecksAdmin, peerHangard}, unit: "µs", limit: 50, judged: true},
		{label: "its share of the list, group viewer: `BenchmarkListAuthzChecks` ÷ `BenchmarkListAuthz`, same identity (medians)", num: cellRef{r14ChecksViewer, peerHangard}, den: cellRef{r14AuthzViewer, peerHangard}, share: true, unit: "%", limit: 2, judged: true},
		{label: "the same, root", num: cellRef{r14ChecksAdmin, peerHangard}, den: cellRef{r14AuthzAdmin, peerHangard}, share: true, unit: "%", limit: 2, judged: true},
		{label: "for reference, not judged: the whole lists' difference, `BenchmarkListAuthz` group-viewer ÷ none − 1, from each case's fastest run (two whole requests of several ms: their noise is larger than the 2% looked for)", num: cellRef{r14BestViewer, peerHangard}, unit: "%", limit: 2},
		{label: "the same, root, fastest runs (for reference)", num: cellRef{r14BestAdmin, peerHangard}, unit: "%", limit: 2},
		{label: "the same per request, group viewer, fastest runs (for reference)", num: cellRef{r14BestDViewer, peerHangard}, unit: "µs", limit: 50},
		{label: "the same per request, root, fastest runs (for reference)", num: cellRef{r14BestDAdmin, peerHangard}, unit: "µs", limit: 50},
		{label: "the same, group viewer, median of the rounds' own ratios (for reference)", num: cellRef{r14OverViewer, peerHangard}, unit: "%", limit: 2},
		{label: "the same, root, median of the rounds' own ratios (for reference)", num: cellRef{r14OverAdmin, peerHangard}, unit: "%", limit: 2},
		{label: "one check (`BenchmarkCheck/allowed`)", num: cellRef{r14CheckAllowed, peerHangard}, unit: "µs", limit: 50, judged: true},
		{label: "one check that denies (`BenchmarkCheck/denied-notfound`)", num: cellRef{r14CheckDenied, peerHangard}, unit: "µs", limit: 50, judged: true},
	}
}

// line is a target's figure, limit and verdict cells.
func (t target14) line(r *issue10Results) (fig, limit, verdict string) {
	n := r.median(t.num)
	if t.numLess.row != "" {
		n -= r.median(t.numLess)
	}
	v := n
	fig = "-"
	if t.den.row == "" {
		if !math.IsNaN(n) {
			fig = fmt.Sprintf("%s %s (p90 %s)", figure(n), t.unit, figure(stats(r.vals[t.num.row][t.num.col]).p90))
		}
	} else {
		d := r.median(t.den)
		if t.denLess.row != "" {
			d -= r.median(t.denLess)
		}
		v = n / d
		switch {
		case math.IsNaN(v) || d <= 0:
			v = math.NaN()
		case t.share:
			v = n / (d * 1e3) * 100
			fig = fmt.Sprintf("%s %% (%s µs / %s ms)", figure(v), figure(n), figure(d))
		default:
			fig = fmt.Sprintf("%s× (%s / %s ms)", ratio(v), figure(n), figure(d))
		}
	}
	limit = "-"
	if t.limit > 0 {
		op, unit := "≤", " "+t.unit
		if t.atLeast {
			op = "≥"
		}
		if t.den.row != "" && !t.share {
			unit = "×"
		}
		limit = fmt.Sprintf("%s %s%s", op, figure(t.limit), unit)
	}
	switch {
	case !t.judged:
		verdict = ""
	case math.IsNaN(v) || math.IsInf(v, 0):
		verdict = "no figure"
	case t.atLeast && v >= t.limit, !t.atLeast && v <= t.limit:
		verdict = "**PASS**"
	default:
		verdict = "**MISS**"
	}
	return fig, limit, verdict
}

// renderIssue14 is the issue-14 report.
func renderIssue14(cfg *config, res *results, r *issue10Results) string {
	var b strings.Builder
	b.WriteString("# Issue 14: remote API, metrics and authorization speed figures, hangard beside LXD\n\n")
	fmt.Fprintf(&b, "`bench/run --issue14 --list-runs %d --running %d --benchtime %s` on %s, commit %s.\n\n", cfg.listRuns, cfg.running, cfg.benchtime, time.Now().UTC().Format("2006-01-02 15:04 MST"), res.machine.commit)
	fmt.Fprintf(&b, "- Machine: %s\n", res.machine.summary())
	var versions []string
	for _, p := range []string{peerHangard, peerLXD} {
		if v := res.versions[p]; v != "" {
			versions = append(versions, v)
		}
	}
	fmt.Fprintf(&b, "- Peers: %s, up at the same time, each with the same busybox image and the same number of running containers.\n", strings.Join(versions, ", "))
	if r.load.took > 0 {
		fmt.Fprintf(&b, "- Machine load: %s\n", r.load.summary())
	}
	fmt.Fprintf(&b, "- The whole run took %s.\n\n", roundDuration(res.elapsed))

	b.WriteString("## Targets\n\n| target (issue 14) | figure | limit | verdict |\n|---|---|---|---|\n")
	for _, t := range issue14Targets(cfg.running) {
		fig, limit, verdict := t.line(r)
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cellEscape(t.label), fig, limit, verdict)
	}

	b.WriteString("\n## Figures\n\n| measurement | unit |")
	for _, c := range issue14Cols {
		fmt.Fprintf(&b, " %s |", c)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(issue14Cols)) + "\n")
	var errs []string
	for _, rw := range issue14Rows {
		if !r.hasRow(rw.key) {
			continue
		}
		label := strings.ReplaceAll(rw.label, "N running", fmt.Sprintf("%d running", cfg.running))
		fmt.Fprintf(&b, "| %s | %s |", cellEscape(label), rw.unit)
		for _, c := range issue14Cols {
			text := r.cellText(rw, c, &errs)
			if n := r.counts[rw.key][c]; n[1] > 0 && len(r.vals[rw.key][c]) > 0 {
				text += fmt.Sprintf("; %d of %d failed", n[1], n[0])
			}
			fmt.Fprintf(&b, " %s |", text)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nEach cell: **median**, p90 (min–max) of the runs that gave a figure, and how many failed if any did (the first error of each is listed below).\n\n## How these are taken\n\n")
	b.WriteString("- Both daemons run on the scratch directory with the bench's busybox image (busybox init as PID 1, unprivileged containers, each daemon's default profile with a NIC: hangard's on its bridge in its own network namespace, LXD's on a bridge without NAT or DHCP), and the containers are started through the API, a few at a time, before the figures that need them.\n")
	fmt.Fprintf(&b, "- Remote API: each daemon is given `core.https_address` (hangard: %s in its own network namespace; LXD: a free port on the machine's 127.0.0.1) and `core.trust_password` in one `PATCH /1.0`; then the real `lxc` (%s), with `HOME` and `LXD_CONF` in a directory of its own, runs `lxc remote add NAME https://ADDR --password PW --accept-certificate`. `lxc list NAME:` runs through `nsenter --net=NETNS --` for both (hangard's namespace; for LXD the harness's own), timed from exec to exit, %d unrecorded rounds then %d recorded, each round both daemons in a fresh random order; first at %d running containers on each, then at %d.\n", hangardHTTPS14, "lxc 5.0.2 from Debian", execWarmRounds, cfg.listRuns, listInstances14, cfg.running)
	fmt.Fprintf(&b, "- Metrics: `GET /1.0/metrics` from this harness (Go net/http, a warm connection, the whole answer read), over each daemon's unix socket (root, which may read metrics) and over HTTPS with a certificate of type `metrics` (made by the harness and added to each daemon with `POST /1.0/certificates` over the unix socket, as `lxc config trust add --type=metrics` does: what a Prometheus scraper holds; hangard's route requires `can_view_metrics`, which that type holds and nothing else), the server's certificate pinned to the one lxc accepted. LXD keeps the metrics it gathered for 8 s per project and serves them again (lxd/metrics.go, `metricsCache`); hangard keeps none and reads every container's figures at each scrape. So %d rounds after one unrecorded, each waiting until %s after LXD's last full fetch, then LXD's scrape over HTTPS (its uncached figure), then %d times each of the others (hangard unix, hangard HTTPS, LXD unix, LXD HTTPS, LXD's within its cache: any taken more than %s after the full fetch is dropped) in a fresh random order.\n", metricsRounds14, lxdMetricsCache, metricsPerRound14, lxdMetricsWarm)
	fmt.Fprintf(&b, "- Authorization: the test binaries of internal/api/lxd and internal/auth built once (`go test -c`), then `BenchmarkListAuthzChecks`'s two cases and `BenchmarkListAuthz`'s three, each alone (`-test.run '^$' -test.bench '^BENCH$/^CASE$' -test.benchtime %s -test.count 1`, in the package's directory as `go test` runs it), %d rounds, each in a fresh random order. The targets are judged on `BenchmarkListAuthzChecks`: it records the exact authorization questions one `GET /1.0/instances?recursion=2` at 100 instances asks and replays them against the real authorizer, so its ns/op is the authorization's whole cost per list, free of the rest of the request; its share is its median ÷ the median of `BenchmarkListAuthz` for the same identity. The difference of `BenchmarkListAuthz` with and without the authorizer is shown for reference only: it subtracts two whole requests of several ms whose run-to-run noise on this shared machine is larger than the 2%% looked for (the previous run of this report read it as negative). `BenchmarkCheck` with `-test.benchtime %s -test.count %d`. They run first, before either daemon starts.\n", cfg.benchtime, authzRounds14, cfg.benchtime, checkCount14)
	for _, n := range r.notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, e := range errs {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	b.WriteString("\n")
	return b.String()
}

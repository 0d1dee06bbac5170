package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// issue10Row is one line of the issue-10 table.
type issue10Row struct {
	key, label, unit string
	// ref is the column hangard is compared with ("" for none).
	ref string
	// p99 rows show the 99th percentile of all requests of all runs
	// instead of the median.
	p99 bool
	// relative: the target is a ratio to ref, which must have a figure.
	relative bool
	// target judges hangard's figure h against the reference's r (NaN
	// when there is none): the target's text and whether it is met.
	target func(h, r float64) (string, bool)
}

func atMost(limit float64, unit string) func(h, _ float64) (string, bool) {
	return func(h, _ float64) (string, bool) {
		return fmt.Sprintf("≤ %s %s", figure(limit), unit), h <= limit
	}
}

func ratioAtMost(limit float64, of string) func(h, r float64) (string, bool) {
	return func(h, r float64) (string, bool) {
		return fmt.Sprintf("≤ %s× %s", figure(limit), of), h <= limit*r
	}
}

var issue10Rows = []issue10Row{
	{key: r10Version, label: "CLI start-up: `hangar --version` (LXD: `lxc --version`; Go hello-world: `fmt.Println`, built the same way, CGO_ENABLED=0)", unit: "ms", ref: peerHello, relative: true,
		target: ratioAtMost(1.5, "Go hello-world")},
	{key: r10Exec, label: "`hangar exec pb-exec -- true` vs `lxc exec pb-exec -- true`, CLI included", unit: "ms", ref: peerLXD, relative: true,
		target: ratioAtMost(0.35, "lxc exec (LXD)")},
	{key: r10Freeze, label: "freeze, one API call (PUT state, wait for the operation), idle daemon", unit: "ms", ref: peerLXD, target: atMost(5, "ms")},
	{key: r10Unfreeze, label: "unfreeze, one API call, idle daemon", unit: "ms", ref: peerLXD, target: atMost(5, "ms")},
	{key: r10Events, label: "freeze/unfreeze events/s delivered to 10 subscribers", unit: "events/s", ref: peerLXD, relative: true,
		target: func(h, r float64) (string, bool) { return "≥ 1× LXD", h >= r }},
	{key: r10Patch, label: fmt.Sprintf("PATCH `user.*` latency, **p99**, under %d concurrent clients with freeze/unfreeze mixed in", patchClients), unit: "ms", ref: peerLXD, p99: true,
		target: atMost(100, "ms p99")},
	{key: r10LoadFreeze, label: "freeze/unfreeze latency, **p99**, in that same load", unit: "ms", ref: peerLXD, p99: true},
	{key: r10ListYAML, label: "`hangar list --format yaml` at 1000 instances (1 running), CLI", unit: "ms", target: atMost(50, "ms")},
	{key: r10ListRSS, label: "its peak RSS (getrusage)", unit: "MiB"},
	{key: r10RenderTime, label: "Go benchmark: rendering 1000 instances as yaml (internal/cli), time per run", unit: "ms"},
	{key: r10RenderAllocs, label: "the same: allocated per run (B/op)", unit: "MB", target: atMost(20, "MB")},
}

// renderIssue10 is the issue-10 report.
func renderIssue10(cfg *config, res *results, r *issue10Results) string {
	var b strings.Builder
	b.WriteString("# Issue 10: speed figures, hangard beside LXD\n\n")
	fmt.Fprintf(&b, "`bench/run --only %s` on %s, commit %s.\n\n", strings.Join(cfg.only, ","), time.Now().UTC().Format("2006-01-02 15:04 MST"), res.machine.commit)
	fmt.Fprintf(&b, "- Machine: %s\n", res.machine.summary())
	var versions []string
	for _, p := range []string{peerHangard, peerLXD} {
		if v := res.versions[p]; v != "" {
			versions = append(versions, v)
		}
	}
	fmt.Fprintf(&b, "- Peers: %s, up at the same time, each with the busybox image and one running instance, pb-exec.\n", strings.Join(versions, ", "))
	fmt.Fprintf(&b, "- The whole run took %s.\n\n", roundDuration(res.elapsed))

	cols := []string{peerHangard, peerLXD, peerHello}
	b.WriteString("| measurement | unit | hangard | LXD | Go hello-world | hangard / reference | target (issue 10) |\n|---|---|---|---|---|---|---|\n")
	var errs []string
	for _, rw := range issue10Rows {
		if !r.hasRow(rw.key) {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s |", rw.label, rw.unit)
		for _, c := range cols {
			fmt.Fprintf(&b, " %s |", r.cellText(rw, c, &errs))
		}
		h, ref := r.figureOf(rw, peerHangard), math.NaN()
		if rw.ref != "" {
			ref = r.figureOf(rw, rw.ref)
		}
		if !math.IsNaN(h) && !math.IsNaN(ref) && ref > 0 {
			fmt.Fprintf(&b, " %s× |", ratio(h/ref))
		} else {
			b.WriteString(" - |")
		}
		if rw.target == nil {
			b.WriteString("  |\n")
			continue
		}
		text, ok := rw.target(h, ref)
		verdict := "**missed**"
		switch {
		case math.IsNaN(h):
			verdict = "no figure"
		case rw.relative && math.IsNaN(ref):
			verdict = "no reference"
		case ok:
			verdict = "**met**"
		}
		fmt.Fprintf(&b, " %s: %s |\n", text, verdict)
	}
	b.WriteString("\nEach cell: **median**, p90 (min–max), unless the row says p99: then **p99**, p50, max over every request of every run, with the request and error counts.\n\n")
	b.WriteString("How these are taken:\n\n")
	if cfg.wants(partVersion) || cfg.wants(partExec) || cfg.wants(partFreeze) {
		fmt.Fprintf(&b, "- Short measurements (CLI start-up, exec, freeze/unfreeze at rest): %d rounds after %d unrecorded warm-up rounds, each round running every one of them once, for both daemons, in a fresh random order, so that other work on the shared machine weighs on both alike. CLIs are timed from exec to exit by this harness (Go os/exec), output discarded.\n", cfg.execRuns, execWarmRounds)
	}
	if cfg.wants(partFreeze) {
		b.WriteString("- freeze/unfreeze at rest: hangar's Go SDK in this harness's process with a warm connection: `UpdateInstanceState` (PUT /1.0/instances/pb-exec/state) then the operation's wait, timed together, as a client sees one call. The same SDK call runs against LXD's socket.\n")
	}
	if cfg.wants(partEvents) {
		fmt.Fprintf(&b, "- Events: %d runs per daemon, alternating; 10 websocket subscribers to lifecycle events, 2 workers each alternating freeze and unfreeze of its own running instance, %d state changes per run in all; events/s = events delivered to all subscribers together / time from the first trigger to the last delivery.\n", cfg.runs, max(2, cfg.triggers/2&^1)*pauseWorkers)
	}
	if cfg.wants(partPatch) {
		fmt.Fprintf(&b, "- PATCH load: %d runs per daemon, alternating, each cut at %s; %d running instances; %d SDK clients, each with its own connection, released at once; %d of them (one per instance) alternate freeze and unfreeze, the other %d PATCH `user.pbN` config of the instances in turn; %d requests per client.\n",
			patchRuns, patchRunTimeout, patchInstances, patchClients, patchInstances, patchClients-patchInstances, patchOps)
		b.WriteString("- LXD 5.0 refuses a PATCH of an instance while another update of it is under way (\"Failed to create instance update operation: A matching non-reusable operation has now succeeded\"), so most of its PATCHes in this load fail at once: its figures are over the requests it accepted, its error count is those refusals.\n")
	}
	if cfg.wants(partList) {
		fmt.Fprintf(&b, "- List: hangard only (its target is absolute; 1000 instances on LXD's dir pool would take most of the run): pb-exec running and 999 stopped instances created through the API, then %d runs of the CLI after %d warm-up runs; peak RSS from getrusage. The Go benchmark is `go test -bench '^BenchmarkWriteYAMLListJSON$' -benchmem -benchtime %s -count 5 ./internal/cli`: the daemon's JSON for 1000 instances written as YAML, the path the command takes.\n", cfg.listRuns, execWarmRounds, cfg.benchtime)
	}
	if r.load.took > 0 {
		fmt.Fprintf(&b, "- What else ran: %s\n", r.load.summary())
	}
	for _, n := range r.notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, e := range errs {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	b.WriteString("\n")
	return b.String()
}

func (r *issue10Results) hasRow(key string) bool {
	return len(r.vals[key]) > 0 || len(r.errs[key]) > 0
}

// figureOf is the figure a row judges: the median, or the p99.
func (r *issue10Results) figureOf(rw issue10Row, col string) float64 {
	vals := r.vals[rw.key][col]
	if len(vals) == 0 {
		return math.NaN()
	}
	if rw.p99 {
		return percentile(vals, 99)
	}
	return stats(vals).med
}

func (r *issue10Results) cellText(rw issue10Row, col string, errs *[]string) string {
	if e := r.errs[rw.key][col]; e != "" {
		*errs = append(*errs, fmt.Sprintf("%s, %s: %s", col, rw.key, e))
	}
	vals := r.vals[rw.key][col]
	if len(vals) == 0 {
		if r.errs[rw.key][col] != "" {
			return "failed"
		}
		return "-"
	}
	if rw.p99 {
		c := r.counts[rw.key][col]
		return fmt.Sprintf("**%s**, p50 %s, max %s; %d requests, %d errors", figure(percentile(vals, 99)), figure(percentile(vals, 50)), figure(slices.Max(vals)), c[0], c[1])
	}
	s := stats(vals)
	if s.n == 1 {
		return fmt.Sprintf("**%s**", figure(s.med))
	}
	return fmt.Sprintf("**%s**, %s (%s–%s)", figure(s.med), figure(s.p90), figure(s.min), figure(s.max))
}

package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func writeReport(ctx context.Context, cfg *config, res *results) error {
	chartOK := false
	// The chart draws the per-peer phase, which --exec-only skips.
	if !cfg.execOnly {
		if _, err := exec.LookPath("gnuplot"); err != nil {
			res.note("No chart: gnuplot is not installed (bench/run installs gnuplot-nox unless --no-install).")
		} else if err := drawChart(ctx, cfg, res); err != nil {
			res.note("No chart: %v", err)
		} else {
			chartOK = true
		}
	}
	md := renderMarkdown(cfg, res, chartOK)
	if err := writeFile(cfg.out, []byte(md)); err != nil {
		return err
	}
	fmt.Print(md)
	logf("report written to %s", cfg.out)
	if chartOK {
		logf("chart written to %s", cfg.chart)
	}
	return nil
}

func renderMarkdown(cfg *config, res *results, chartOK bool) string {
	var b strings.Builder
	m := res.machine
	mode := "Full run"
	if cfg.quick {
		mode = "Quick run (`--quick`, a smoke comparison)"
	}
	fmt.Fprintf(&b, "# hangard beside its peers\n\n")
	fmt.Fprintf(&b, "%s of `bench/run` on %s, commit %s.\n\n", mode, time.Now().UTC().Format("2006-01-02 15:04 MST"), m.commit)
	fmt.Fprintf(&b, "- Machine: %s\n", m.summary())
	var peers []string
	for _, p := range columns {
		if v := res.versions[p]; v != "" {
			peers = append(peers, v)
		}
	}
	fmt.Fprintf(&b, "- Peers: %s; all from the same busybox root filesystem (`scripts/busybox-rootfs.sh`).\n", strings.Join(peers, ", "))
	if cfg.execOnly {
		fmt.Fprintf(&b, "- Only the exec and lxc list comparison (`--exec-only`); it took %s.\n\n", roundDuration(res.elapsed))
		b.WriteString(renderExecSection(cfg, res))
		return b.String()
	}
	fmt.Fprintf(&b, "- Each cell: median (min–max) of %d runs (memory: %d samples). Ratio: hangard's median over the peer's; below 1× hangard is faster or smaller, except for events/s where above 1× hangard delivers more.\n", cfg.runs, cfg.runs)
	fmt.Fprintf(&b, "- The whole run took %s. The machine is shared: other work on it adds noise, the ratios hold better than the absolute figures.\n\n", roundDuration(res.elapsed))

	present := []string{}
	for _, p := range columns {
		if p == peerHangard || slices.Contains(cfg.peers, p) {
			present = append(present, p)
		}
	}
	b.WriteString("| operation | unit |")
	for _, p := range present {
		fmt.Fprintf(&b, " %s |", p)
	}
	for _, p := range present[1:] {
		fmt.Fprintf(&b, " hangard / %s |", p)
	}
	b.WriteString("\n|---|---|")
	for range len(present)*2 - 1 {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	var errs []string
	for _, rw := range res.rows {
		fmt.Fprintf(&b, "| %s | %s |", rw.label, rw.unit)
		for _, p := range present {
			fmt.Fprintf(&b, " %s |", res.cellText(rw, p, &errs))
		}
		h := res.median(rw.key, peerHangard)
		for _, p := range present[1:] {
			pm := res.median(rw.key, p)
			if math.IsNaN(h) || math.IsNaN(pm) || pm <= 0 || h <= 0 {
				b.WriteString(" - |")
				continue
			}
			fmt.Fprintf(&b, " %s× |", ratio(h/pm))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	if chartOK {
		fmt.Fprintf(&b, "![hangard beside its peers](%s)\n\n", filepath.Base(cfg.chart))
	}

	b.WriteString("## How the figures are taken\n\n")
	b.WriteString("- Each peer is set up, warmed (one instance launched and deleted), measured and torn down in turn: no two run at the same time. Order: runc, hangard, podman, LXD.\n")
	b.WriteString("- Lifecycle: per run a fresh instance goes launch → exec `true` → stop --force → start → stop --force → delete; each step is its CLI command, timed from exec to exit.\n")
	fmt.Fprintf(&b, "- Lists: at each scale the first %d instances run and the rest are created stopped; the CLI lists everything (`--format csv` where there is one), REST is one GET on the daemon's unix socket with keep-alive, timed until the body is read.\n", cfg.running)
	b.WriteString("- Events: 10 websocket subscribers (lifecycle events) on one socket; PATCH: 4 workers each PATCH `user.*` config of its own stopped instance; freeze/unfreeze: 2 workers each alternate freeze and unfreeze of its own running instance. Events/s = events delivered to all subscribers together / time from the first trigger to the last delivery.\n")
	fmt.Fprintf(&b, "- Memory: daemon RSS is VmRSS of the daemon process; host memory per running instance is the rise of MemTotal − MemAvailable from before the scale phase to %d running instances (after 3 s to settle), divided by %d. It covers everything a running instance costs the host (the container's processes, per-instance helpers such as LXD's monitor and podman's conmon, kernel memory), but on a shared machine it also moves with everything else running there. The next row is steadier, as it counts only what belongs to the peer: the memory charged to the instances' cgroups (their processes, kernel memory and page cache), plus the PSS of the per-instance helper processes (LXD's `[lxc monitor]`, podman's conmon: forked by their daemon, they are mostly charged to its cgroup), plus the daemon's RSS growth over the same span, divided by %d.\n", cfg.running, cfg.running, cfg.running)
	for _, p := range present {
		for _, n := range res.peerNotes[p] {
			fmt.Fprintf(&b, "- %s: %s\n", p, n)
		}
	}
	b.WriteString("\n")

	if cfg.execRuns > 0 {
		b.WriteString(renderExecSection(cfg, res))
	}

	var missing []string
	for _, p := range columns {
		if reason := res.skipped[p]; reason != "" {
			missing = append(missing, fmt.Sprintf("%s: %s", p, reason))
		}
	}
	// One line per peer and reason: "runc: n/a (no daemon): daemon RSS, idle; ...".
	for _, p := range present {
		var order []string
		rowsByNote := map[string][]string{}
		for _, rw := range res.rows {
			c := res.cells[rw.key][p]
			if c == nil || c.note == "" || c.note == "-" || len(c.vals) > 0 || c.err != "" {
				continue
			}
			if _, seen := rowsByNote[c.note]; !seen {
				order = append(order, c.note)
			}
			rowsByNote[c.note] = append(rowsByNote[c.note], rw.label)
		}
		for _, note := range order {
			missing = append(missing, fmt.Sprintf("%s: %s: %s", p, note, strings.Join(rowsByNote[note], "; ")))
		}
	}
	missing = append(missing, errs...)
	for _, p := range present {
		if m := res.median("mem-per", p); !math.IsNaN(m) && m <= 0 {
			missing = append(missing, fmt.Sprintf("%s, host memory per running instance: MemAvailable rose while its instances started (other work on the shared machine freed memory meanwhile), so that figure is noise; the next row holds.", p))
		}
	}
	missing = append(missing, res.notes...)
	if len(missing) > 0 {
		b.WriteString("## Not measured, errors and notes\n\n")
		for _, s := range missing {
			fmt.Fprintf(&b, "- %s\n", s)
		}
		b.WriteString("\n")
	}

	if len(res.goBench) > 0 {
		fmt.Fprintf(&b, "## Go benchmarks of the hot paths\n\n`go test -run '^$' -bench . -benchtime %s -count 5` in %s; median (min–max) of the 5 counts.\n\n", cfg.benchtime, strings.Join(goBenchPackages, ", "))
		b.WriteString("| package | benchmark | ns/op | B/op | allocs/op | other |\n|---|---|---|---|---|---|\n")
		for _, g := range res.goBench {
			s := stats(g.ns)
			var other []string
			for _, unit := range g.extraUnits {
				other = append(other, fmt.Sprintf("%s %s", figure(stats(g.extra[unit]).med), unit))
			}
			fmt.Fprintf(&b, "| %s | %s | %s (%s–%s) | %s | %s | %s |\n", g.pkg, g.name,
				figure(s.med), figure(s.min), figure(s.max),
				figureOrDash(g.extra, "B/op"), figureOrDash(g.extra, "allocs/op"), strings.Join(other, ", "))
		}
		b.WriteString("\n")
	}

	b.WriteString("## Time taken\n\n| phase | time |\n|---|---|\n")
	for _, t := range res.timings {
		fmt.Fprintf(&b, "| %s | %s |\n", t.what, roundDuration(t.took))
	}
	fmt.Fprintf(&b, "| total | %s |\n", roundDuration(res.elapsed))
	return b.String()
}

// cellText renders a peer's cell; errors are numbered into errs.
func (r *results) cellText(rw row, p string, errs *[]string) string {
	if reason := r.skipped[p]; reason != "" {
		return "skipped"
	}
	c := r.cells[rw.key][p]
	if c == nil {
		return "-"
	}
	if len(c.vals) > 0 {
		s := stats(c.vals)
		text := fmt.Sprintf("%s (%s–%s)", figure(s.med), figure(s.min), figure(s.max))
		if c.err != "" {
			*errs = append(*errs, fmt.Sprintf("%s, %s: only %d values; then: %s", p, rw.label, s.n, c.err))
			text += " ⚠"
		}
		return text
	}
	if c.err != "" {
		*errs = append(*errs, fmt.Sprintf("%s, %s: %s", p, rw.label, c.err))
		return "error"
	}
	if c.note != "" {
		return c.note
	}
	return "-"
}

// median is the median of a cell, NaN when it has no value.
func (r *results) median(key, p string) float64 {
	if r.skipped[p] != "" {
		return math.NaN()
	}
	c := r.cells[key][p]
	if c == nil || len(c.vals) == 0 {
		return math.NaN()
	}
	return stats(c.vals).med
}

func ratio(v float64) string {
	switch {
	case v >= 10:
		return fmt.Sprintf("%.0f", v)
	case v >= 0.1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func figureOrDash(m map[string][]float64, unit string) string {
	if v, ok := m[unit]; ok && len(v) > 0 {
		return figure(stats(v).med)
	}
	return "-"
}

func roundDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= time.Minute {
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}

// chartLabel is a row's short name under its bars.
func chartLabel(cfg *config, rw row) string {
	switch rw.key {
	case "launch":
		return "launch"
	case "start":
		return "start"
	case "stop":
		return "stop -f"
	case "delete":
		return "delete"
	case "exec":
		return "exec true"
	case "events-" + eventsPatch:
		return "PATCH user.*"
	case "events-" + eventsPause:
		return "freeze/unfreeze"
	case "rss-idle":
		return "daemon RSS idle"
	case "rss-running":
		return fmt.Sprintf("daemon RSS, %d running", cfg.running)
	case "mem-per":
		return "host memory / instance"
	case "mem-cg":
		return "cgroup + helpers / instance"
	}
	var kind string
	var n int
	if _, err := fmt.Sscanf(strings.Replace(rw.key, "/", " ", 1), "list-%s %d", &kind, &n); err == nil {
		switch kind {
		case "cli":
			return fmt.Sprintf("%d, CLI", n)
		case restRec1:
			return fmt.Sprintf("%d, REST r=1", n)
		case restRec2:
			return fmt.Sprintf("%d, REST r=2", n)
		}
	}
	return rw.key
}

// drawChart writes cfg.chart with gnuplot: one panel per group, bars per
// operation, one bar per peer, log scale.
func drawChart(ctx context.Context, cfg *config, res *results) error {
	dir := filepath.Join(cfg.scratch, "chart")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	groups := []string{groupLifecycle, groupList, groupEvents, groupMemory}
	colors := map[string]string{peerHangard: "#d62728", peerRunc: "#7f7f7f", peerPodman: "#1f77b4", peerLXD: "#ff7f0e"}
	var script strings.Builder
	fmt.Fprintf(&script, "set terminal pngcairo size 1800,1300 font 'DejaVu Sans,11'\n")
	fmt.Fprintf(&script, "set output '%s'\n", cfg.chart)
	fmt.Fprintf(&script, "set datafile missing '?'\nset style data histogram\nset style histogram cluster gap 1\n")
	fmt.Fprintf(&script, "set style fill solid 0.9 border -1\nset boxwidth 0.9\nset logscale y\nset grid ytics mytics\n")
	fmt.Fprintf(&script, "set key top left\nset xtics rotate by 30 right nomirror\nset format y '%%g'\n")
	title := fmt.Sprintf("hangard beside its peers (medians; %s, commit %s)", time.Now().UTC().Format("2006-01-02"), res.machine.commitShort)
	fmt.Fprintf(&script, "set multiplot layout 2,2 title \"%s\" font ',14'\n", title)
	for gi, g := range groups {
		lo := math.Inf(1)
		hi := math.Inf(-1)
		var data strings.Builder
		for _, rw := range res.rows {
			if rw.group != g {
				continue
			}
			fmt.Fprintf(&data, "%q", chartLabel(cfg, rw))
			for _, p := range columns {
				v := res.median(rw.key, p)
				if math.IsNaN(v) || v <= 0 {
					data.WriteString(" ?")
					continue
				}
				lo, hi = min(lo, v), max(hi, v)
				fmt.Fprintf(&data, " %g", v)
			}
			data.WriteString("\n")
		}
		file := filepath.Join(dir, fmt.Sprintf("group%d.dat", gi))
		if err := os.WriteFile(file, []byte(data.String()), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&script, "set title \"%s\"\n", g)
		if math.IsInf(lo, 1) {
			fmt.Fprintf(&script, "unset logscale y\nset yrange [0:1]\nplot 0 notitle\nset logscale y\n")
			continue
		}
		// Whole decades around the data, so bars start at the axis.
		fmt.Fprintf(&script, "set yrange [%g:%g]\n", math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi*1.5))))
		var plots []string
		for i, p := range columns {
			using := fmt.Sprintf("%d", i+2)
			if i == 0 {
				using += ":xtic(1)"
			}
			plots = append(plots, fmt.Sprintf("'%s' using %s title '%s' lc rgb '%s'", file, using, p, colors[p]))
		}
		fmt.Fprintf(&script, "plot %s\n", strings.Join(plots, ", "))
	}
	script.WriteString("unset multiplot\n")
	scriptPath := filepath.Join(dir, "chart.gp")
	if err := os.WriteFile(scriptPath, []byte(script.String()), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.chart), 0o755); err != nil {
		return err
	}
	return command{}.run(ctx, "gnuplot", scriptPath)
}

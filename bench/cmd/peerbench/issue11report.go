package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// issue11Cols are the report's columns, in order.
var issue11Cols = []string{peerHangard, col11NoNIC, peerPodman, peerLXD}

// issue11Rows are the figures table's lines (the cells: median, p90,
// min–max; targets are judged in their own table).
var issue11Rows = []issue10Row{
	{key: r11Launch, label: "launch (create + start), until the command returns: `hangar launch busybox NAME` (no NIC: `--no-profiles`), `podman run -d`, `lxc launch`", unit: "ms"},
	{key: r11LaunchReach, label: "launch, until a TCP connect from the host side to the container's port succeeds (the address read from the API after the command returns)", unit: "ms"},
	{key: r11Start, label: "start of a stopped container, until the command returns: `hangar start`, `podman start`", unit: "ms"},
	{key: r11StartReach, label: "start, until the first successful TCP connect from the host side to the container's port at its address, connecting from the same instant (podman: its address changes at every start)", unit: "ms"},
	{key: r11StartReachPort, label: fmt.Sprintf("start, until the first successful TCP connect to the container's port forwarded from 127.0.0.1:%d of the host, connecting from the same instant (hangard: proxy device, nat=false; podman: `-p 127.0.0.1:%d:%d`)", probeHostPort, probeHostPort, probePort), unit: "ms"},
	{key: r11List1, label: "`GET /1.0/instances?recursion=2`, 1 running container with a NIC", unit: "ms"},
	{key: r11ListN, label: "`GET /1.0/instances?recursion=2`, N running containers with NICs", unit: "ms"},
	{key: r11TputDirect, label: "throughput, one TCP connection from the host side straight to the container's address", unit: "MB/s"},
	{key: r11TputProxy, label: "throughput through a proxy device, nat=false (hangard's forwarder, into the container's loopback)", unit: "MB/s"},
	{key: r11TputNAT, label: "throughput through a proxy device, nat=true (nftables DNAT, listening on the bridge's address)", unit: "MB/s"},
}

// target11 is one line of the targets table: the median of num, alone
// (den.row == "") or as a ratio to the median of den.
type target11 struct {
	label    string
	num, den cellRef
	limit    float64
	// judged: a target of the issue (else shown for reference).
	judged bool
}

type cellRef struct{ row, col string }

func issue11Targets(running int) []target11 {
	return []target11{
		{label: "launch with a NIC, until reachable ÷ hangard's launch without a NIC", num: cellRef{r11LaunchReach, peerHangard}, den: cellRef{r11Launch, col11NoNIC}, limit: 1.25, judged: true},
		{label: "launch with a NIC, until the command returns ÷ without a NIC (for reference)", num: cellRef{r11Launch, peerHangard}, den: cellRef{r11Launch, col11NoNIC}, limit: 1.25},
		{label: "launch with a NIC, until reachable ÷ `podman run -d` on its default bridge (until it returns)", num: cellRef{r11LaunchReach, peerHangard}, den: cellRef{r11Launch, peerPodman}, limit: 0.5, judged: true},
		{label: "launch until reachable, hangard ÷ podman (for reference)", num: cellRef{r11LaunchReach, peerHangard}, den: cellRef{r11LaunchReach, peerPodman}, limit: 0.5},
		{label: "start until the first TCP connect through a port on the host's 127.0.0.1, hangard ÷ podman (no target: reported beside podman)", num: cellRef{r11StartReachPort, peerHangard}, den: cellRef{r11StartReachPort, peerPodman}},
		{label: "start until the first TCP connect, hangard at the container's address ÷ podman through its published port (no target)", num: cellRef{r11StartReach, peerHangard}, den: cellRef{r11StartReachPort, peerPodman}},
		{label: fmt.Sprintf("`GET /1.0/instances?recursion=2` at %d running with NICs, median", running), num: cellRef{r11ListN, peerHangard}, limit: 10, judged: true},
	}
}

// median of a cell, NaN when it has no figure.
func (r *issue10Results) median(c cellRef) float64 {
	vals := r.vals[c.row][c.col]
	if len(vals) == 0 {
		return math.NaN()
	}
	return stats(vals).med
}

// targetLine is a target's figure, limit and verdict cells.
func (r *issue10Results) targetLine(t target11) (fig, limit, verdict string) {
	n := r.median(t.num)
	if t.den.row == "" {
		fig, limit = "-", "-"
		if !math.IsNaN(n) {
			fig = fmt.Sprintf("%s ms (p90 %s)", figure(n), figure(stats(r.vals[t.num.row][t.num.col]).p90))
		}
		if t.limit > 0 {
			limit = fmt.Sprintf("≤ %s ms", figure(t.limit))
		}
		return fig, limit, r.verdict(t, n, n <= t.limit)
	}
	d := r.median(t.den)
	fig = "-"
	v := n / d
	if !math.IsNaN(v) && d > 0 {
		fig = fmt.Sprintf("%s× (%s / %s ms)", ratio(v), figure(n), figure(d))
	}
	limit = "-"
	if t.limit > 0 {
		limit = fmt.Sprintf("≤ %s×", figure(t.limit))
	}
	return fig, limit, r.verdict(t, v, v <= t.limit)
}

func (r *issue10Results) verdict(t target11, v float64, ok bool) string {
	switch {
	case !t.judged:
		return ""
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "no figure"
	case ok:
		return "**met**"
	}
	return "**missed**"
}

// renderIssue11 is the issue-11 report.
func renderIssue11(cfg *config, res *results, r *issue10Results) string {
	var b strings.Builder
	b.WriteString("# Issue 11: networking speed figures, hangard beside podman and LXD\n\n")
	fmt.Fprintf(&b, "`bench/run --issue11 --runs %d --list-runs %d --running %d` on %s, commit %s.\n\n", cfg.runs, cfg.listRuns, cfg.running, time.Now().UTC().Format("2006-01-02 15:04 MST"), res.machine.commit)
	fmt.Fprintf(&b, "- Machine: %s\n", res.machine.summary())
	var versions []string
	for _, p := range []string{peerHangard, peerPodman, peerLXD} {
		if v := res.versions[p]; v != "" {
			versions = append(versions, v)
		}
	}
	fmt.Fprintf(&b, "- Peers: %s, up at the same time for the launch and start rounds.\n", strings.Join(versions, ", "))
	if r.load.took > 0 {
		fmt.Fprintf(&b, "- Machine load: %s\n", r.load.summary())
	}
	fmt.Fprintf(&b, "- The whole run took %s.\n\n", roundDuration(res.elapsed))

	b.WriteString("## Targets\n\n| target (issue 11) | figure | limit | verdict |\n|---|---|---|---|\n")
	for _, t := range issue11Targets(cfg.running) {
		fig, limit, verdict := r.targetLine(t)
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.label, fig, limit, verdict)
	}

	b.WriteString("\n## Figures\n\n| measurement | unit | hangard | hangard, no NIC | podman | LXD |\n|---|---|---|---|---|---|\n")
	var errs []string
	for _, rw := range issue11Rows {
		if !r.hasRow(rw.key) {
			continue
		}
		label := strings.ReplaceAll(rw.label, "N running", fmt.Sprintf("%d running", cfg.running))
		fmt.Fprintf(&b, "| %s | %s |", label, rw.unit)
		for _, c := range issue11Cols {
			text := r.cellText(rw, c, &errs)
			if n := r.counts[rw.key][c]; n[1] > 0 && len(r.vals[rw.key][c]) > 0 {
				text += fmt.Sprintf("; %d of %d failed", n[1], n[0])
			}
			fmt.Fprintf(&b, " %s |", text)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nEach cell: **median**, p90 (min–max) of the runs that gave a figure, and how many failed if any did (the first error of each is listed below).\n\n## How these are taken\n\n")
	fmt.Fprintf(&b, "- Every container runs `netsink` (bench/cmd/netsink, a static Go binary) from the image's init: the bench's busybox root filesystem with `/bin/netsink` added and `%s` in `/etc/inittab`. On port %d it writes one byte and closes (the probe: a TCP connect that reads it is \"reachable\"); on port %d it reads to the end and answers with the byte count (the sink).\n", strings.TrimSpace(inittabLine), probePort, sinkPort)
	b.WriteString("- hangard runs in a network namespace of the harness's own (`unshare --net=FILE`, loopback up, `nsenter --net=FILE -- hangard ...`): its bridge hangarbr0 (NAT, DHCP and DNS by its dnsmasq), nftables table and veths live there, and the host side of its containers is that namespace: the harness connects from a thread that entered it. Its containers get the default profile's `eth0` on hangarbr0; \"no NIC\" is `--no-profiles`.\n")
	b.WriteString("- podman: its default network (`podman`, bridge podman0, netavark with iptables-nft) in the machine's own namespace; runtime runc, cgroupfs, its own storage in the scratch directory. LXD: `lxd init --preseed` with a dir pool and a bridge with NAT, DHCP and LXD's firewall on, IPv4 only (the busybox image runs no DHCP client, so LXD's containers get no address: LXD has the launch figure only).\n")
	fmt.Fprintf(&b, "- Launch rounds: %d recorded after %d unrecorded, each round launching one container per column in a fresh random order and deleting it (untimed) after its measurement; `%s` runs on hangard and podman meanwhile, so their bridges are in use. CLIs are timed from exec to exit. \"Until reachable\" runs from the launch command's exec to the first successful TCP connect to the probe port, after the address was read from the API (hangard: `GET /1.0/instances/NAME/state`; podman: `GET /libpod/containers/NAME/json` on `podman system service`).\n", cfg.runs, execWarmRounds, startInstance)
	fmt.Fprintf(&b, "- Start rounds: %d recorded after %d unrecorded, on `%s`, each round every way once in a fresh random order: stopped (untimed: `hangar stop --force`, `podman stop -t 0`), then started while five pollers, 10 ms apart, connect to its probe port from the same instant (a refused connect retried after 2 ms, one with no answer given up after 50 ms; a connect counts when it reads netsink's byte, so that a forwarder that accepts before the container answers does not count). hangard twice: at the container's address (kept across restarts) and through a proxy device `listen=tcp:127.0.0.1:%d connect=tcp:127.0.0.1:%d`; podman through its port published on 127.0.0.1 (`-p 127.0.0.1:%d:%d`), as its address changes at every start.\n", cfg.runs, execWarmRounds, startInstance, probeHostPort, probePort, probeHostPort, probePort)
	fmt.Fprintf(&b, "- Throughput (hangard alone, podman and LXD torn down): the load generator in this harness opens one TCP connection from hangard's namespace and writes %d KiB chunks for %s, then closes its side and waits for the sink's byte count; MB/s = 10^6 bytes / time from connect to that count. Three paths in random order, %d recorded rounds after one unrecorded: straight to the container's address, through a proxy device `listen=tcp:127.0.0.1:%d connect=tcp:127.0.0.1:%d` (nat=false) and through one `listen=tcp:BRIDGE-ADDRESS:%d connect=tcp:0.0.0.0:%d nat=true`.\n", tputChunk>>10, tputTime, tputRuns, proxyPort, sinkPort, natPort, sinkPort)
	fmt.Fprintf(&b, "- List: raw HTTP GET of `/1.0/instances?recursion=2` on hangard's socket, response read whole, %d requests after %d unrecorded, first with `%s` alone running, then after %d more containers were started with the default NIC (%d running).\n", cfg.listRuns, execWarmRounds, startInstance, cfg.running-1, cfg.running)
	for _, n := range r.notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, e := range errs {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	b.WriteString("\n")
	return b.String()
}

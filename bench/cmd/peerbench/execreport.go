package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// renderExecSection is the report's "exec and lxc list (issue 3)" section.
func renderExecSection(cfg *config, res *results) string {
	var b strings.Builder
	b.WriteString("## exec and lxc list (issue 3)\n\n")
	if !res.xDone {
		b.WriteString("Interrupted or not run: no figures.\n\n")
		return b.String()
	}
	var present []string
	for _, p := range columns {
		if p == peerHangard || slices.Contains(cfg.peers, p) {
			present = append(present, p)
		}
	}
	fmt.Fprintf(&b, "All peers up at the same time and warm; %d rounds for the execs and %d for the lists, each round running every measurement of the table once in a fresh random order (after %d unrecorded warm-up rounds), so that the other work on the shared machine weighs on every peer alike. Each cell: **median**, p90 (min–max), in ms.\n\n",
		cfg.execRuns, cfg.listRuns, execWarmRounds)
	b.WriteString("| measurement |")
	for _, p := range present {
		fmt.Fprintf(&b, " %s |", p)
	}
	lxd := slices.Contains(present, peerLXD)
	if lxd {
		b.WriteString(" hangard / LXD |")
	}
	b.WriteString(" target (issue 3) |\n|---|")
	for range present {
		b.WriteString("---|")
	}
	if lxd {
		b.WriteString("---|")
	}
	b.WriteString("---|\n")
	var errs []string
	for _, rw := range res.xrows {
		fmt.Fprintf(&b, "| %s |", rw.label)
		for _, p := range present {
			fmt.Fprintf(&b, " %s |", res.xCellText(rw, p, &errs))
		}
		h := res.xMedian(rw.key, peerHangard)
		if lxd {
			if l := res.xMedian(rw.key, peerLXD); !math.IsNaN(h) && !math.IsNaN(l) && l > 0 {
				fmt.Fprintf(&b, " %s× |", ratio(h/l))
			} else {
				b.WriteString(" - |")
			}
		}
		fmt.Fprintf(&b, " %s |\n", res.xTarget(rw.key))
	}
	b.WriteString("\n")
	b.WriteString("How these are taken:\n\n")
	fmt.Fprintf(&b, "- Every peer has one running instance, %s, launched by its CLI after the peer's set-up (image imported, one instance launched and deleted); every exec runs `true` in it, no terminal, stdin /dev/null.\n", execInstance)
	b.WriteString("- CLI rows: the command from exec to exit, started by this harness (Go os/exec), output discarded: `hangar --socket S exec pb-exec -- true`, `runc --root R exec pb-exec true`, `podman exec pb-exec true`, `lxc exec pb-exec -- true`. The `lxc exec` row runs the real lxc client against hangard too (`LXD_SOCKET=S`); for LXD it is the same run as the CLI row.\n")
	b.WriteString("- API row: in this harness's process, with a warm client (keep-alive connection open): `client.ExecInstance` (POST /1.0/instances/pb-exec/exec with wait-for-websocket, the control websocket, then 0, 1 and 2 at once) then `Exec.Wait` (GET /1.0/operations/ID/wait, the output streams drained, the return code read). LXD speaks the same API, so the same SDK call runs against its socket.\n")
	b.WriteString("- nsenter row: `nsenter -t PID1 -a true` with PID1 the instance's PID 1 as its peer reports it: the cost of entering the namespaces and starting `true`, with no cgroup, capability or seccomp set-up: the floor for an exec.\n")
	fmt.Fprintf(&b, "- Lists: hangard and LXD only (runc and podman are torn down first); each gets %d running instances (%s and %d more, started through the API), then the rounds alternate `lxc list` against hangard (`LXD_SOCKET`) and against LXD, and `hangar list`. `lxc list`'s default columns (name, state, IPv4, IPv6, type, snapshots) need every instance's state: recursion=2. LXD's instances have a veth NIC each (its default profile), hangard's have none.\n", cfg.running, execInstance, cfg.running-1)
	b.WriteString("- Where hangard's exec time goes (CLI start-up, HTTP and websockets, the daemon's preparation, nsenter, the command) and what would cut it: [EXEC.md](EXEC.md).\n")
	if res.xLoad.took > 0 {
		fmt.Fprintf(&b, "- What else ran: %s\n", res.xLoad.summary())
	}
	for _, p := range columns {
		if reason := res.xSkipped[p]; reason != "" && res.skipped[p] == "" {
			fmt.Fprintf(&b, "- %s: %s\n", p, reason)
		}
	}
	for _, e := range errs {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	b.WriteString("\n")
	return b.String()
}

func (r *results) xSkippedReason(p string) string {
	if reason := r.skipped[p]; reason != "" {
		return reason
	}
	return r.xSkipped[p]
}

// xCellText is "median, p90 (min–max)", or why there is none.
func (r *results) xCellText(rw row, p string, errs *[]string) string {
	if r.xSkippedReason(p) != "" {
		return "skipped"
	}
	c := r.cells[rw.key][p]
	if c == nil {
		return "-"
	}
	if len(c.vals) > 0 {
		s := stats(c.vals)
		text := fmt.Sprintf("**%s**, %s (%s–%s)", figure(s.med), figure(s.p90), figure(s.min), figure(s.max))
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
	return "-"
}

func (r *results) xMedian(key, p string) float64 {
	if r.xSkippedReason(p) != "" {
		return math.NaN()
	}
	return r.median(key, p)
}

// xTarget says whether hangard meets the target on a row.
func (r *results) xTarget(key string) string {
	h := r.xMedian(key, peerHangard)
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**missed**"
	}
	switch key {
	case xExecCLI:
		if math.IsNaN(h) {
			return "hangard ≤ 40 ms median"
		}
		return fmt.Sprintf("hangard ≤ 40 ms median: %s", verdict(h <= 40))
	case xExecAPI:
		if math.IsNaN(h) {
			return "hangard ≤ 30 ms median"
		}
		return fmt.Sprintf("hangard ≤ 30 ms median: %s", verdict(h <= 30))
	case xLXCList:
		l := r.xMedian(key, peerLXD)
		if math.IsNaN(h) || math.IsNaN(l) || h <= 0 {
			return "hangard ≥ 5× faster than LXD"
		}
		return fmt.Sprintf("hangard ≥ 5× faster than LXD: %s (%.1f×)", verdict(l/h >= 5), l/h)
	}
	return ""
}

package main

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// row is one line of the report.
type row struct {
	key   string
	label string
	unit  string
	// group is the chart panel the row is drawn in ("" for none).
	group        string
	higherBetter bool
}

// cell is one peer's figure for one row.
type cell struct {
	vals []float64
	note string // why there is no figure ("n/a (...)")
	err  string // the first error met
}

type timing struct {
	what string
	took time.Duration
}

type results struct {
	mu        sync.Mutex
	rows      []row
	cells     map[string]map[string]*cell
	versions  map[string]string
	skipped   map[string]string
	peerNotes map[string][]string
	notes     []string
	goBench   []goBenchResult
	machine   machineInfo
	timings   []timing
	elapsed   time.Duration
	cfg       *config

	// The exec and lxc list section (execlist.go): its rows, the peers
	// that could not take part and why, what else ran meanwhile.
	xrows    []row
	xSkipped map[string]string
	xLoad    loadReport
	xDone    bool
}

// Chart panels.
const (
	groupLifecycle = "Lifecycle through the CLI (ms, log scale, lower is better)"
	groupList      = "Listing (ms, log scale, lower is better)"
	groupEvents    = "Events delivered per second to 10 subscribers (log scale, higher is better)"
	groupMemory    = "Memory (MiB, log scale, lower is better)"
)

func newResults(cfg *config) *results {
	r := &results{
		cells:     map[string]map[string]*cell{},
		versions:  map[string]string{},
		skipped:   map[string]string{},
		peerNotes: map[string][]string{},
		xSkipped:  map[string]string{},
		cfg:       cfg,
	}
	r.rows = []row{
		{key: "launch", label: "launch (create + start)", unit: "ms", group: groupLifecycle},
		{key: "start", label: "start (stopped instance)", unit: "ms", group: groupLifecycle},
		{key: "stop", label: "stop --force", unit: "ms", group: groupLifecycle},
		{key: "delete", label: "delete (stopped instance)", unit: "ms", group: groupLifecycle},
		{key: "exec", label: "exec `true`", unit: "ms", group: groupLifecycle},
	}
	for _, n := range cfg.scales {
		r.rows = append(r.rows,
			row{key: listKey("cli", n), label: fmt.Sprintf("list %s, CLI", scaleLabel(cfg, n)), unit: "ms", group: groupList},
			row{key: listKey(restRec1, n), label: fmt.Sprintf("list %s, REST (recursion=1; podman: libpod json)", scaleLabel(cfg, n)), unit: "ms", group: groupList},
			row{key: listKey(restRec2, n), label: fmt.Sprintf("list %s, REST (recursion=2)", scaleLabel(cfg, n)), unit: "ms", group: groupList},
		)
	}
	r.rows = append(r.rows,
		row{key: "events-" + eventsPatch, label: "events/s to 10 subscribers, trigger: PATCH user.* config", unit: "events/s", group: groupEvents, higherBetter: true},
		row{key: "events-" + eventsPause, label: "events/s to 10 subscribers, trigger: freeze/unfreeze", unit: "events/s", group: groupEvents, higherBetter: true},
		row{key: "rss-idle", label: "daemon RSS, idle", unit: "MiB", group: groupMemory},
		row{key: "rss-running", label: fmt.Sprintf("daemon RSS, %d instances running", cfg.running), unit: "MiB", group: groupMemory},
		row{key: "mem-per", label: fmt.Sprintf("host memory per running instance (MemAvailable drop at %d running)", cfg.running), unit: "MiB", group: groupMemory},
		row{key: "mem-cg", label: fmt.Sprintf("memory per running instance: its cgroup + helpers' PSS + daemon growth (at %d)", cfg.running), unit: "MiB", group: groupMemory},
	)
	r.xrows = []row{
		{key: xExecCLI, label: "exec `true`, its CLI included: `hangar exec`, `runc exec`, `podman exec`, `lxc exec`", unit: "ms"},
		{key: xExecLXC, label: "exec `true` with the real `lxc exec` (5.0.2; hangard through LXD_SOCKET)", unit: "ms"},
		{key: xExecAPI, label: "exec `true`, API call alone (Go SDK `ExecInstance`: POST exec with wait-for-websocket, 4 websockets, return code)", unit: "ms"},
		{key: xNsenter, label: "`nsenter -t PID1 -a true` into the same instance (floor: entering its namespaces by hand)", unit: "ms"},
		{key: xCLIStart, label: "the CLI alone: `--version` (process start, no request)", unit: "ms"},
		{key: xLXCList, label: fmt.Sprintf("`lxc list` (5.0.2, default columns), %d running", cfg.running), unit: "ms"},
		{key: xHangarList, label: fmt.Sprintf("`hangar list` (default columns), %d running", cfg.running), unit: "ms"},
	}
	for _, rw := range append(slices.Clone(r.rows), r.xrows...) {
		r.cells[rw.key] = map[string]*cell{}
	}
	return r
}

// xAdd records one value (or error) of a run that feeds rows.
func (r *results) xAdd(rows []string, peer string, v float64, err error) {
	for _, key := range rows {
		r.add(key, peer, v, err)
	}
}

// xFailed records why peer has no figures in the exec and list section.
func (r *results) xFailed(peer string, err error) {
	logf("exec phase: %s: %v", peer, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.xSkipped[peer] = err.Error()
}

// scaleLabel names a scale: "100 instances (100 running)".
func scaleLabel(cfg *config, n int) string {
	run := min(n, cfg.running)
	switch {
	case n == 1:
		return "1 instance (running)"
	case run == n:
		return fmt.Sprintf("%d instances (all running)", n)
	default:
		return fmt.Sprintf("%d instances (%d running)", n, run)
	}
}

func (r *results) cell(key, peer string) *cell {
	cells, ok := r.cells[key]
	if !ok {
		panic("unknown row " + key)
	}
	c := cells[peer]
	if c == nil {
		c = &cell{}
		cells[peer] = c
	}
	return c
}

// add records one value of key for peer, or its error (only the first
// error is kept; a notApplicable error becomes the cell's note).
func (r *results) add(key, peer string, v float64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cell(key, peer)
	if err != nil {
		if na, ok := isNA(err); ok {
			c.note = na
			return
		}
		if c.err == "" {
			c.err = err.Error()
			logf("%s: %s: %v", peer, key, err)
		}
		return
	}
	c.vals = append(c.vals, v)
}

// record records several values at once.
func (r *results) record(key, peer string, vals []float64, err error) {
	if err != nil {
		r.add(key, peer, 0, err)
		return
	}
	for _, v := range vals {
		r.add(key, peer, v, nil)
	}
}

func (r *results) na(key, peer, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cell(key, peer).note = note
}

// failPeer marks every row of peer as failed with err.
func (r *results) failPeer(peer string, err error) {
	logf("%s: %v", peer, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.skipped[peer] = err.Error()
}

// scaleFailed records why the lists at scale n and above have no figure.
func (r *results) scaleFailed(peer string, n int, err error) {
	for _, m := range r.cfg.scales {
		if m < n {
			continue
		}
		for _, kind := range []string{"cli", restRec1, restRec2} {
			r.add(listKey(kind, m), peer, 0, err)
		}
	}
	if n <= r.cfg.running {
		r.add("mem-per", peer, 0, err)
		r.add("mem-cg", peer, 0, err)
		r.add("rss-running", peer, 0, err)
	}
}

func (r *results) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// stat is a figure: median, 90th percentile, min and max of n values.
type stat struct {
	med, p90, min, max float64
	n                  int
}

func stats(vals []float64) stat {
	if len(vals) == 0 {
		return stat{}
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	// Nearest rank: the smallest value at or above 90% of the values.
	p90 := s[int(math.Ceil(0.9*float64(n)))-1]
	return stat{med: med, p90: p90, min: s[0], max: s[n-1], n: n}
}

// figure formats a value with three significant digits or so.
func figure(v float64) string {
	a := v
	if a < 0 {
		a = -a
	}
	switch {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

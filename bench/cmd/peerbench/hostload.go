package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// loadWatch says what else ran on the machine while a phase was measured:
// the CPU the whole machine used, the share of it that was ours (this
// harness, the daemons and commands it started), and the other processes
// that used the most.
type loadWatch struct {
	start    time.Time
	busy0    float64 // busy CPU-seconds of the machine at start
	procs0   map[int]procCPU
	loadavg0 string
}

type procCPU struct {
	pid, ppid int
	comm, cmd string
	// secs is the CPU the process used, its waited-for children included
	// (what our processes cost: the CLIs this harness waits for, the
	// nsenter a daemon waits for); own is its own alone (what the others
	// are listed by: a shell that reaped a build is not the build).
	secs, own float64
}

// loadReport is the watch's result.
type loadReport struct {
	took      time.Duration
	cores     int
	busy      float64 // CPUs busy on average, the whole machine
	ours      float64 // of which this harness and its processes
	loadavg   [2]string
	topOthers []procCPU // secs: CPU used during the phase
}

func startLoadWatch() *loadWatch {
	return &loadWatch{start: time.Now(), busy0: machineBusySecs(), procs0: readProcs(), loadavg0: loadavg()}
}

func (w *loadWatch) stop() loadReport {
	r := loadReport{took: time.Since(w.start), loadavg: [2]string{w.loadavg0, loadavg()}, cores: numCPU()}
	secs := r.took.Seconds()
	r.busy = (machineBusySecs() - w.busy0) / secs
	procs := readProcs()
	self := os.Getpid()
	for pid, p := range procs {
		used, own := p.secs, p.own
		if before, ok := w.procs0[pid]; ok && before.comm == p.comm {
			used -= before.secs
			own -= before.own
		}
		if descendsFrom(procs, pid, self) {
			r.ours += max(0, used)
			continue
		}
		if own > 0 {
			p.secs = own
			r.topOthers = append(r.topOthers, p)
		}
	}
	r.ours /= secs
	slices.SortFunc(r.topOthers, func(a, b procCPU) int {
		switch {
		case a.secs > b.secs:
			return -1
		case a.secs < b.secs:
			return 1
		}
		return 0
	})
	if len(r.topOthers) > 5 {
		r.topOthers = r.topOthers[:5]
	}
	return r
}

// summary is one Markdown paragraph.
func (r loadReport) summary() string {
	var others []string
	for _, p := range r.topOthers {
		cmd := p.cmd
		if len(cmd) > 70 {
			cmd = cmd[:70] + "…"
		}
		others = append(others, fmt.Sprintf("`%s` %.0f%%", strings.ReplaceAll(cmd, "`", "'"), 100*p.secs/r.took.Seconds()))
	}
	top := "none measurable"
	if len(others) > 0 {
		top = strings.Join(others, ", ")
	}
	return fmt.Sprintf("Over the %s of this phase the machine's %d cores were %.0f%% busy on average, %.0f%% of one core of it ours (this harness, its daemons, CLIs and containers) and %.0f%% of one core everything else; load average %s at the start, %s at the end. Other processes that used the most CPU themselves meanwhile (share of one core; processes that started and ended within the phase, such as compilers and tests, are not listed but are in the busy figure): %s.",
		roundDuration(r.took), r.cores, 100*r.busy/float64(r.cores), 100*r.ours, 100*max(0, r.busy-r.ours), r.loadavg[0], r.loadavg[1], top)
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// machineBusySecs is the CPU time the machine has spent not idle, from
// /proc/stat, in seconds over all cores.
func machineBusySecs() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	// user nice system idle iowait irq softirq steal: idle and iowait are not busy.
	for i, v := range f[1:min(len(f), 9)] {
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / clockTicks
}

func numCPU() int {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "cpu") && !strings.HasPrefix(line, "cpu ") {
			n++
		}
	}
	return n
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// readProcs reads every process's CPU use (its own and its waited-for
// children's) and its parent.
func readProcs() map[int]procCPU {
	out := map[int]procCPU{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		// Fields after the command: state ppid ... utime(14) stime cutime cstime.
		f := strings.Fields(s[end+1:])
		if len(f) < 15 {
			continue
		}
		p := procCPU{pid: pid, comm: s[open+1 : end]}
		p.ppid, _ = strconv.Atoi(f[1])
		for _, i := range []int{11, 12, 13, 14} {
			n, _ := strconv.ParseFloat(f[i], 64)
			p.secs += n / clockTicks
			if i <= 12 {
				p.own += n / clockTicks
			}
		}
		if cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && len(cmd) > 0 {
			p.cmd = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		} else {
			p.cmd = "[" + p.comm + "]"
		}
		out[pid] = p
	}
	return out
}

// descendsFrom reports whether pid is root or one of its descendants.
// podman's conmon leaves the tree of the podman command that forked it
// (it double-forks), so a conmon and its children count as ours too:
// someone else's podman on the machine would be counted as ours.
func descendsFrom(procs map[int]procCPU, pid, root int) bool {
	for range 64 {
		if pid == root {
			return true
		}
		p, ok := procs[pid]
		if ok && p.comm == "conmon" {
			return true
		}
		if !ok || p.ppid <= 1 {
			return false
		}
		pid = p.ppid
	}
	return false
}

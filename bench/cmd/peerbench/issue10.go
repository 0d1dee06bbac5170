package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// The speed figures issue 10 sets targets for, hangard beside LXD in one
// run (bench/run --issue10, or --only PARTS for some of them). As in the
// exec comparison, both daemons are up at once and the short measurements
// are interleaved in rounds of random order, so that the other work on the
// shared machine weighs on both alike; the long ones (events, the PATCH
// load) alternate between the two, run by run.

// Parts of the issue-10 run, in the order they run.
const (
	partVersion = "version" // hangar --version beside a Go hello-world
	partExec    = "exec"    // hangar exec -- true beside lxc exec -- true
	partFreeze  = "freeze"  // freeze and unfreeze, one API call each
	partEvents  = "events"  // freeze/unfreeze events/s to 10 subscribers
	partPatch   = "patch"   // PATCH latency under 200 clients, freezes mixed in
	partList    = "list"    // hangar list --format yaml at 1000 instances
)

var issue10Parts = []string{partVersion, partExec, partFreeze, partEvents, partPatch, partList}

// Row keys of the issue-10 report.
const (
	r10Version      = "version"
	r10Exec         = "exec"
	r10Freeze       = "freeze"
	r10Unfreeze     = "unfreeze"
	r10Events       = "events"
	r10Patch        = "patch"
	r10LoadFreeze   = "load-freeze"
	r10ListYAML     = "list-yaml"
	r10ListRSS      = "list-rss"
	r10RenderTime   = "render-ms"
	r10RenderAllocs = "render-mb"
)

// peerHello is the reference column of the --version row.
const peerHello = "Go hello-world"

// The PATCH load: patchClients SDK clients, each with its own connection,
// start together; the first patchInstances of them freeze and unfreeze one
// running instance each, the others PATCH user.* config of those instances,
// patchOps requests per client. Bounded: patchRunTimeout cuts a run short.
const (
	patchClients    = 200
	patchInstances  = 10
	patchOps        = 20
	patchRuns       = 3
	patchRunTimeout = 2 * time.Minute
)

// issue10Results holds the figures by row and column (peer).
type issue10Results struct {
	mu     sync.Mutex
	vals   map[string]map[string][]float64
	errs   map[string]map[string]string
	counts map[string]map[string][2]int // row, peer: requests, errors (PATCH load)
	notes  []string
	load   loadReport
}

func newIssue10Results() *issue10Results {
	return &issue10Results{
		vals:   map[string]map[string][]float64{},
		errs:   map[string]map[string]string{},
		counts: map[string]map[string][2]int{},
	}
}

func (r *issue10Results) add(row, col string, v float64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.errs[row] == nil {
			r.errs[row] = map[string]string{}
		}
		if r.errs[row][col] == "" {
			r.errs[row][col] = err.Error()
		}
		return
	}
	if r.vals[row] == nil {
		r.vals[row] = map[string][]float64{}
	}
	r.vals[row][col] = append(r.vals[row][col], v)
}

func (r *issue10Results) count(row, col string, requests, errs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts[row] == nil {
		r.counts[row] = map[string][2]int{}
	}
	c := r.counts[row][col]
	r.counts[row][col] = [2]int{c[0] + requests, c[1] + errs}
}

func (r *issue10Results) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// issue10Peer is hangard or LXD: both speak the LXD API, which the SDK
// drives for the API figures.
type issue10Peer interface {
	peer
	sdk() *lxdAPI
	cliStart(ctx context.Context) (float64, error)
}

func (a *lxdAPI) sdk() *lxdAPI { return a }

func (cfg *config) wants(part string) bool { return slices.Contains(cfg.only, part) }

// measureIssue10 sets hangard and LXD up side by side and takes the
// figures of the chosen parts.
func measureIssue10(ctx context.Context, cfg *config, res *results, r *issue10Results, tarball, bins string) {
	xcfg := *cfg
	xcfg.scratch = filepath.Join(cfg.scratch, "issue10")
	var peers []issue10Peer
	peers = append(peers, newHangardPeer(&xcfg, tarball, bins))
	if slices.Contains(cfg.peers, peerLXD) && res.skipped[peerLXD] == "" {
		peers = append(peers, newLXDPeer(&xcfg, tarball))
	} else if reason := res.skipped[peerLXD]; reason != "" {
		r.note("LXD: %s", reason)
	}
	up, teardown := bringUp(ctx, "issue 10", peers, execInstance, res.versions, func(peer string, err error) {
		r.note("%s: %v", peer, err)
	})
	defer teardown()
	if len(up) == 0 {
		return
	}
	watch := startLoadWatch()
	defer func() { r.load = watch.stop() }()

	var hello string
	if cfg.wants(partVersion) {
		var err error
		if hello, err = buildHello(ctx, cfg); err != nil {
			r.note("Go hello-world: build failed: %v", err)
		}
	}
	if cfg.wants(partVersion) || cfg.wants(partExec) || cfg.wants(partFreeze) {
		issue10Rounds(ctx, cfg, r, up, hello)
	}
	if cfg.wants(partEvents) && ctx.Err() == nil {
		issue10Events(ctx, cfg, r, up)
	}
	if cfg.wants(partPatch) && ctx.Err() == nil {
		issue10Patch(ctx, r, up)
	}
	if cfg.wants(partList) && ctx.Err() == nil {
		// hangard only: its target is absolute, and 1000 instances
		// on LXD's dir pool would take most of the run.
		if h, ok := up[0].(*hangardPeer); ok {
			issue10List(ctx, cfg, r, h)
		}
		issue10RenderBench(ctx, cfg, r)
	}
}

// issue10Rounds runs the short measurements, each round every one of them
// once in a fresh random order; the warm-up rounds record into a throw-away
// result.
func issue10Rounds(ctx context.Context, cfg *config, r *issue10Results, up []issue10Peer, hello string) {
	type variant func(ctx context.Context, rec *issue10Results)
	var variants []variant
	for _, p := range up {
		name, a := p.name(), p.sdk()
		if cfg.wants(partVersion) {
			variants = append(variants, func(ctx context.Context, rec *issue10Results) {
				ms, err := p.cliStart(ctx)
				rec.add(r10Version, name, ms, err)
			})
		}
		if cfg.wants(partExec) {
			variants = append(variants, func(ctx context.Context, rec *issue10Results) {
				ms, err := p.exec(ctx, execInstance)
				rec.add(r10Exec, name, ms, err)
			})
		}
		if cfg.wants(partFreeze) {
			// One variant: the instance must end each round running.
			variants = append(variants, func(ctx context.Context, rec *issue10Results) {
				ms, err := stateCall(ctx, a.c, execInstance, "freeze")
				rec.add(r10Freeze, name, ms, err)
				if err != nil {
					return
				}
				ms, err = stateCall(ctx, a.c, execInstance, "unfreeze")
				rec.add(r10Unfreeze, name, ms, err)
			})
		}
	}
	if hello != "" {
		variants = append(variants, func(ctx context.Context, rec *issue10Results) {
			ms, err := command{}.timed(ctx, hello)
			rec.add(r10Version, peerHello, ms, err)
		})
	}
	rounds := cfg.execRuns
	logf("issue 10: %d variants, %d warm-up and %d recorded rounds", len(variants), execWarmRounds, rounds)
	warm := newIssue10Results()
	for round := range execWarmRounds + rounds {
		if ctx.Err() != nil {
			return
		}
		rec := r
		if round < execWarmRounds {
			rec = warm
		} else if (round-execWarmRounds)%20 == 0 {
			logf("issue 10: round %d/%d", round-execWarmRounds, rounds)
		}
		for _, i := range rand.Perm(len(variants)) {
			variants[i](ctx, rec)
		}
	}
	for row, cols := range warm.errs {
		for col, e := range cols {
			logf("issue 10: warm-up: %s %s: %s", col, row, e)
		}
	}
}

// stateCall changes an instance's state through the API as a client sees
// it: the PUT of the state, then the wait for its operation.
func stateCall(ctx context.Context, c *client.Client, name, action string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	t0 := time.Now()
	op, err := c.UpdateInstanceState(ctx, name, api.InstanceStatePut{Action: action, Timeout: -1})
	if err == nil {
		err = op.Wait(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", action, name, err)
	}
	return msSince(t0), nil
}

// buildHello builds a Go hello-world the way bench/run builds hangar (the
// same go command and toolchain, CGO_ENABLED=0, default flags) and returns
// its path.
func buildHello(ctx context.Context, cfg *config) (string, error) {
	dir := filepath.Join(cfg.scratch, "hello")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	gomod, err := os.ReadFile(filepath.Join(cfg.repo, "go.mod"))
	if err != nil {
		return "", err
	}
	// The same go and toolchain lines as the tree, so that GOTOOLCHAIN
	// picks the same compiler.
	mod := "module hello\n"
	for _, line := range strings.Split(string(gomod), "\n") {
		if strings.HasPrefix(line, "go ") || strings.HasPrefix(line, "toolchain ") {
			mod += "\n" + line + "\n"
		}
	}
	src := "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello, world\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "hello")
	if err := (command{dir: dir, env: []string{"CGO_ENABLED=0"}, timeout: 5 * time.Minute}).run(ctx, "go", "build", "-o", bin, "."); err != nil {
		return "", err
	}
	return bin, nil
}

// issue10Events takes the freeze/unfreeze events/s to 10 subscribers,
// alternating the peers run by run.
func issue10Events(ctx context.Context, cfg *config, r *issue10Results, up []issue10Peer) {
	var ready []issue10Peer
	for _, p := range up {
		if err := p.eventsPrepare(ctx, eventsPause); err != nil {
			r.add(r10Events, p.name(), 0, err)
			p.eventsCleanup(ctx, eventsPause)
			continue
		}
		ready = append(ready, p)
	}
	defer func() {
		for _, p := range ready {
			p.eventsCleanup(ctx, eventsPause)
		}
	}()
	logf("issue 10: events, %d runs each", cfg.runs)
	for i := range cfg.runs {
		for _, j := range rand.Perm(len(ready)) {
			if ctx.Err() != nil {
				return
			}
			p := ready[j]
			rate, err := p.events(ctx, eventsPause, eventSubscribers, cfg.triggers)
			r.add(r10Events, p.name(), rate, err)
			if err != nil {
				logf("issue 10: %s: events run %d: %v", p.name(), i+1, err)
			}
		}
	}
}

// issue10Patch runs the PATCH load on each peer, patchRuns times,
// alternating.
func issue10Patch(ctx context.Context, r *issue10Results, up []issue10Peer) {
	insts := names("pb-ld", 0, patchInstances)
	var ready []issue10Peer
	for _, p := range up {
		logf("issue 10: %s: starting %d instances for the PATCH load", p.name(), patchInstances)
		if err := p.createMany(ctx, insts, true); err != nil {
			r.add(r10Patch, p.name(), 0, err)
			continue
		}
		ready = append(ready, p)
	}
	defer func() {
		for _, p := range up {
			if err := p.sdk().deleteNames(ctx, insts); err != nil {
				logf("issue 10: %s: %v", p.name(), err)
			}
		}
	}()
	for run := range patchRuns {
		for _, j := range rand.Perm(len(ready)) {
			if ctx.Err() != nil {
				return
			}
			p := ready[j]
			logf("issue 10: %s: PATCH load run %d/%d (%d clients)", p.name(), run+1, patchRuns, patchClients)
			patchLoad(ctx, r, p.name(), p.sdk().socket, insts)
		}
	}
}

// patchLoad is one run of the PATCH load against socket.
func patchLoad(ctx context.Context, r *issue10Results, peer, socket string, insts []string) {
	ctx, cancel := context.WithTimeout(ctx, patchRunTimeout)
	defer cancel()
	clients := make([]*client.Client, patchClients)
	for i := range clients {
		c, err := client.Connect(socket)
		if err != nil {
			r.add(r10Patch, peer, 0, err)
			return
		}
		c.UserAgent = "peerbench"
		defer c.Close()
		clients[i] = c
	}
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		mu    sync.Mutex
		first error
		nerr  [2]int
		nreq  [2]int
	)
	record := func(row int, key string, ms float64, err error) {
		mu.Lock()
		nreq[row]++
		if err != nil {
			nerr[row]++
			if first == nil {
				first = err
			}
		}
		mu.Unlock()
		if err == nil {
			r.add(key, peer, ms, nil)
		}
	}
	for i, c := range clients {
		inst := insts[i%len(insts)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for j := range patchOps {
				if ctx.Err() != nil {
					return
				}
				if i < len(insts) {
					// A freezer: its instance ends running (patchOps
					// is even).
					action := "freeze"
					if j%2 == 1 {
						action = "unfreeze"
					}
					ms, err := stateCall(ctx, c, inst, action)
					record(1, r10LoadFreeze, ms, err)
					continue
				}
				patch := map[string]any{"config": map[string]string{fmt.Sprintf("user.pb%d", i): strconv.Itoa(j)}}
				t0 := time.Now()
				err := c.PatchInstance(ctx, inst, patch, "")
				if err != nil {
					err = fmt.Errorf("PATCH %s: %w", inst, err)
				}
				record(0, r10Patch, msSince(t0), err)
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(t0)
	r.count(r10Patch, peer, nreq[0], nerr[0])
	r.count(r10LoadFreeze, peer, nreq[1], nerr[1])
	if first != nil {
		r.add(r10Patch, peer, 0, first)
		logf("issue 10: %s: %d PATCH and %d freeze errors, the first: %v", peer, nerr[0], nerr[1], first)
	}
	if ctx.Err() != nil {
		r.note("%s: a PATCH load run was cut at %s, %d of %d PATCH requests done", peer, patchRunTimeout, nreq[0], (patchClients-len(insts))*patchOps)
	}
	logf("issue 10: %s: %d requests in %.1fs", peer, nreq[0]+nreq[1], took.Seconds())
}

// issue10List times hangar list --format yaml at 1000 instances (the
// running pb-exec and 999 stopped ones), with the CLI's peak RSS.
func issue10List(ctx context.Context, cfg *config, r *issue10Results, h *hangardPeer) {
	const scale = 1000
	total, _, err := h.count(ctx)
	if err != nil {
		r.add(r10ListYAML, peerHangard, 0, err)
		return
	}
	logf("issue 10: hangard: creating %d stopped instances", scale-total)
	t0 := time.Now()
	if err := h.createMany(ctx, names("pb-s", 0, scale-total), false); err != nil {
		r.add(r10ListYAML, peerHangard, 0, err)
		return
	}
	logf("issue 10: hangard: %d instances (%.1fs)", scale, time.Since(t0).Seconds())
	if n, _, err := h.count(ctx); err != nil || n != scale {
		r.add(r10ListYAML, peerHangard, 0, fmt.Errorf("%d instances where %d were made (%v)", n, scale, err))
		return
	}
	bin := filepath.Join(h.bins, "hangar")
	for i := range execWarmRounds + cfg.listRuns {
		ms, rss, err := timedRSS(ctx, bin, "--socket", h.socket, "list", "--format", "yaml")
		if i < execWarmRounds {
			continue
		}
		r.add(r10ListYAML, peerHangard, ms, err)
		r.add(r10ListRSS, peerHangard, rss, err)
		if err != nil {
			return
		}
	}
}

// timedRSS runs a command with its output discarded and returns its time
// in ms and its peak RSS in MiB.
func timedRSS(ctx context.Context, name string, args ...string) (float64, float64, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	ms := msSince(t0)
	if err != nil {
		return 0, 0, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, tail(string(out), 300))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, errors.New("no rusage")
	}
	return ms, float64(ru.Maxrss) / 1024, nil
}

// issue10RenderBench runs the Go benchmark of the yaml list's rendering at
// 1000 instances, the path `hangar list --format yaml` takes (the daemon's
// JSON written as YAML), and keeps time and bytes allocated per run.
func issue10RenderBench(ctx context.Context, cfg *config, r *issue10Results) {
	logf("issue 10: go test -bench WriteYAMLListJSON ./internal/cli")
	args := []string{"test", "-run", "^$", "-bench", "^BenchmarkWriteYAMLListJSON$", "-benchmem", "-benchtime", cfg.benchtime, "-count", "5", "./internal/cli"}
	out, err := command{dir: cfg.repo, timeout: 10 * time.Minute}.output(ctx, "go", args...)
	if err != nil {
		r.add(r10RenderTime, peerHangard, 0, err)
		return
	}
	benches := parseGoBench(out)
	if len(benches) == 0 {
		r.add(r10RenderTime, peerHangard, 0, fmt.Errorf("no benchmark in the output of go %s", strings.Join(args, " ")))
		return
	}
	b := benches[0]
	for _, ns := range b.ns {
		r.add(r10RenderTime, peerHangard, ns/1e6, nil)
	}
	for _, bytes := range b.extra["B/op"] {
		r.add(r10RenderAllocs, peerHangard, bytes/1e6, nil)
	}
	r.note("Render benchmark: %s in %s.", b.name, b.pkg)
}

// percentile is the nearest-rank p-th percentile of vals.
func percentile(vals []float64, p float64) float64 {
	if len(vals) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// setUpPeers sets up each peer in turn, recording every one it tried in
// *tried (the caller tears those down, last first) and the version of
// each that came up; a peer that fails is noted and left out. It stops
// when ctx ends. It returns the names of the peers that are up.
func setUpPeers(ctx context.Context, phase string, peers []peer, r *issue10Results, res *results, tried *[]peer) map[string]bool {
	up := map[string]bool{}
	for _, p := range peers {
		if ctx.Err() != nil {
			break
		}
		logf("%s: %s: setting up", phase, p.name())
		*tried = append(*tried, p)
		if err := p.setup(ctx); err != nil {
			r.note("%s: set-up failed: %v", p.name(), err)
			continue
		}
		up[p.name()] = true
		res.versions[p.name()] = p.version(ctx)
	}
	return up
}

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"
)

// The exec and lxc list comparison (issue 3). Unlike the lifecycle phase,
// where each peer has the machine to itself in turn, here every peer is up
// at once and the measurements are interleaved: each round runs every
// variant once, in a fresh random order, so that whatever else runs on the
// shared machine weighs on every peer alike. The daemons are warm (set up,
// an instance launched and deleted, then warm-up rounds that are not
// recorded).

// Rows of the exec and lxc list section.
const (
	xExecCLI    = "x-exec-cli"
	xExecLXC    = "x-exec-lxc"
	xExecAPI    = "x-exec-api"
	xNsenter    = "x-nsenter"
	xCLIStart   = "x-cli-start"
	xLXCList    = "x-lxc-list"
	xHangarList = "x-hangar-list"
)

// execWarmRounds are run before the recorded rounds, unrecorded.
const execWarmRounds = 3

// execInstance is the instance every peer execs in.
const execInstance = "pb-exec"

// execPeer is what the comparison needs of every peer.
type execPeer interface {
	peer
	// pid1 is the host PID of the instance's PID 1.
	pid1(ctx context.Context, name string) (int, error)
	// cliStart starts and ends the peer's CLI with no request (--version).
	cliStart(ctx context.Context) (float64, error)
}

// lxcPeer is a peer the real lxc client talks to (hangard and LXD).
type lxcPeer interface {
	lxcExec(ctx context.Context, name string) (float64, error)
	lxcList(ctx context.Context) (float64, error)
	execAPI(ctx context.Context, name string) (float64, error)
}

// variant is one measurement of a round: its rows (one run can feed two
// rows, as LXD's lxc exec is both its CLI exec and its lxc exec) and peer.
type variant struct {
	rows []string
	peer string
	run  func(ctx context.Context) (float64, error)
}

func measureExecAndList(ctx context.Context, cfg *config, res *results, tarball, bins string) {
	// Own directories: the per-peer phase's are torn down but not removed.
	xcfg := *cfg
	xcfg.scratch = filepath.Join(cfg.scratch, "exec-phase")
	var peers []execPeer
	for _, name := range measureOrder {
		if !slices.Contains(cfg.peers, name) || res.skipped[name] != "" {
			continue
		}
		switch name {
		case peerRunc:
			peers = append(peers, newRuncPeer(&xcfg, tarball))
		case peerHangard:
			peers = append(peers, newHangardPeer(&xcfg, tarball, bins))
		case peerPodman:
			peers = append(peers, newPodmanPeer(&xcfg, tarball))
		case peerLXD:
			peers = append(peers, newLXDPeer(&xcfg, tarball))
		}
	}
	up, teardown := bringUp(ctx, "exec phase", peers, execInstance, res.versions, res.xFailed)
	defer teardown()

	watch := startLoadWatch()
	var variants []variant
	for _, p := range up {
		if res.xSkipped[p.name()] != "" {
			continue
		}
		pid, err := p.pid1(ctx, execInstance)
		if err != nil {
			res.xFailed(p.name(), fmt.Errorf("PID 1 of %s: %w", execInstance, err))
			continue
		}
		name := p.name()
		cliRows := []string{xExecCLI}
		if name == peerLXD {
			cliRows = append(cliRows, xExecLXC)
		}
		variants = append(variants,
			variant{cliRows, name, func(ctx context.Context) (float64, error) { return p.exec(ctx, execInstance) }},
			variant{[]string{xNsenter}, name, func(ctx context.Context) (float64, error) {
				return command{}.timed(ctx, "nsenter", "-t", fmt.Sprint(pid), "-a", "true")
			}},
			variant{[]string{xCLIStart}, name, p.cliStart},
		)
		if lp, ok := p.(lxcPeer); ok {
			variants = append(variants, variant{[]string{xExecAPI}, name, func(ctx context.Context) (float64, error) { return lp.execAPI(ctx, execInstance) }})
			if name != peerLXD {
				variants = append(variants, variant{[]string{xExecLXC}, name, func(ctx context.Context) (float64, error) { return lp.lxcExec(ctx, execInstance) }})
			}
		}
	}
	logf("exec phase: %d variants, %d warm-up and %d recorded rounds", len(variants), execWarmRounds, cfg.execRuns)
	runRounds(ctx, res, variants, execWarmRounds, cfg.execRuns)
	if ctx.Err() != nil {
		return
	}

	// lxc list at cfg.running running instances, hangard and LXD only: the
	// others leave the machine first.
	var listers []execPeer
	for _, p := range up {
		if _, ok := p.(lxcPeer); ok && res.xSkipped[p.name()] == "" {
			listers = append(listers, p)
			continue
		}
		logf("exec phase: %s: tearing down (not in the lxc list comparison)", p.name())
		tctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		p.teardown(tctx)
		cancel()
	}
	up = listers
	variants = nil
	for _, p := range listers {
		if ctx.Err() != nil {
			return
		}
		name := p.name()
		logf("exec phase: %s: starting %d instances", name, cfg.running-1)
		t0 := time.Now()
		if err := p.createMany(ctx, names("pb-r", 0, cfg.running-1), true); err != nil {
			res.xAdd([]string{xLXCList, xHangarList}, name, 0, fmt.Errorf("starting %d instances: %w", cfg.running-1, err))
			continue
		}
		if all, run, err := p.count(ctx); err != nil || all != cfg.running || run != cfg.running {
			if err == nil {
				err = fmt.Errorf("%d instances (%d running) where %d running were made", all, run, cfg.running)
			}
			res.xAdd([]string{xLXCList, xHangarList}, name, 0, err)
			continue
		}
		logf("exec phase: %s: %d running (%.1fs)", name, cfg.running, time.Since(t0).Seconds())
		lp := p.(lxcPeer)
		variants = append(variants, variant{[]string{xLXCList}, name, lp.lxcList})
		if h, ok := p.(*hangardPeer); ok {
			variants = append(variants, variant{[]string{xHangarList}, name, h.ownList})
		}
	}
	// The new instances settle (LXD's start up their network) before
	// the clock runs.
	time.Sleep(3 * time.Second)
	logf("exec phase: lists at %d running, %d warm-up and %d recorded rounds", cfg.running, execWarmRounds, cfg.listRuns)
	runRounds(ctx, res, variants, execWarmRounds, cfg.listRuns)
	res.xLoad = watch.stop()
	res.xDone = true
}

// runRounds runs warm rounds unrecorded, then runs rounds recorded, each
// round every variant once in a random order.
func runRounds(ctx context.Context, res *results, variants []variant, warm, runs int) {
	failed := map[int]int{}
	for round := range warm + runs {
		if ctx.Err() != nil {
			return
		}
		if round >= warm && (round-warm)%20 == 0 {
			logf("exec phase: round %d/%d", round-warm, runs)
		}
		for _, i := range rand.Perm(len(variants)) {
			if failed[i] >= 3 {
				continue
			}
			v := variants[i]
			ms, err := v.run(ctx)
			if round < warm {
				if err != nil {
					logf("exec phase: warm-up: %s %v: %v", v.peer, v.rows, err)
				}
				continue
			}
			if err != nil {
				failed[i]++
			}
			res.xAdd(v.rows, v.peer, ms, err)
		}
	}
}

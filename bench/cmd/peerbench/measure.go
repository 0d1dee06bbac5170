package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// peer is one system under measurement. Every timed method returns the
// milliseconds the operation took as its user sees it (a CLI command from
// exec to exit, unless the peer's notes say otherwise).
type peer interface {
	name() string
	version(ctx context.Context) string
	// setup brings the peer up with the busybox image imported and warm
	// (one instance launched and deleted).
	setup(ctx context.Context) error
	// teardown removes everything setup and the measurements created:
	// instances, images, networks, daemons, mounts, cgroups. Best effort.
	teardown(ctx context.Context)

	launch(ctx context.Context, name string) (float64, error)
	start(ctx context.Context, name string) (float64, error)
	stop(ctx context.Context, name string) (float64, error)
	remove(ctx context.Context, name string) (float64, error)
	exec(ctx context.Context, name string) (float64, error)
	listCLI(ctx context.Context) (float64, error)
	// rest lists the REST listings the peer has, by row (restRec1 or
	// restRec2), with the client to fetch them.
	rest() (map[string]string, *http.Client)

	// createMany creates instances (running when start) as fast as the
	// peer allows; it is set-up work, not measured.
	createMany(ctx context.Context, names []string, start bool) error
	// count returns how many instances exist and how many run.
	count(ctx context.Context) (total, running int, err error)
	// deleteAll force-deletes every instance.
	deleteAll(ctx context.Context) error
	// daemonPID is the peer's daemon, 0 when it has none.
	daemonPID() int
	// memCgroups names, once the scale instances run, the cgroups (paths
	// under the memory hierarchy) that hold the instances (payload) and
	// those that hold per-instance helper processes (helpers: LXD's
	// monitors, podman's conmons).
	memCgroups(ctx context.Context) (payload, helpers []string, err error)
	// events measures the events delivered per second to subs
	// subscribers of one run, with the trigger kind (eventsPatch or
	// eventsPause); notApplicable when the peer has no such thing.
	events(ctx context.Context, kind string, subs, triggers int) (float64, error)
	// eventsPrepare and eventsCleanup bracket the runs of one kind.
	eventsPrepare(ctx context.Context, kind string) error
	eventsCleanup(ctx context.Context, kind string)
	// notes say how the peer's figures are taken.
	notes() []string
}

// notApplicable is the answer of an operation the peer does not have; its
// text goes into the report's cell.
type notApplicable string

func (n notApplicable) Error() string { return string(n) }

const (
	restRec1 = "rest1"
	restRec2 = "rest2"

	eventsPatch = "patch"
	eventsPause = "pause"

	eventSubscribers = 10
)

func measurePeer(ctx context.Context, cfg *config, res *results, p peer) {
	name := p.name()
	logf("%s: setting up", name)
	defer func() {
		logf("%s: tearing down", name)
		tctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		p.teardown(tctx)
	}()
	t0 := time.Now()
	if err := p.setup(ctx); err != nil {
		res.failPeer(name, fmt.Errorf("set-up failed: %w", err))
		return
	}
	logf("%s: up in %.1fs", name, time.Since(t0).Seconds())
	res.versions[name] = p.version(ctx)
	res.peerNotes[name] = p.notes()

	if pid := p.daemonPID(); pid != 0 {
		vals, err := sample(cfg.runs, func() (float64, error) { return rssMB(pid) })
		res.record("rss-idle", name, vals, err)
	} else {
		res.na("rss-idle", name, "n/a (no daemon)")
		res.na("rss-running", name, "n/a (no daemon)")
	}

	measureCycles(ctx, cfg, res, p)
	if ctx.Err() != nil {
		return
	}
	measureEvents(ctx, cfg, res, p)
	if ctx.Err() != nil {
		return
	}
	measureScale(ctx, cfg, res, p)
}

// measureCycles runs launch, exec, stop --force, start, stop --force, delete
// on a fresh instance, cfg.runs times.
func measureCycles(ctx context.Context, cfg *config, res *results, p peer) {
	name := p.name()
	failures := 0
	for i := range cfg.runs {
		if ctx.Err() != nil || failures >= 2 {
			return
		}
		logf("%s: lifecycle run %d/%d", name, i+1, cfg.runs)
		inst := fmt.Sprintf("pb-op%d", i+1)
		ms, err := p.launch(ctx, inst)
		res.add("launch", name, ms, err)
		if err != nil {
			failures++
			_ = p.deleteAll(ctx)
			continue
		}
		ms, err = p.exec(ctx, inst)
		res.add("exec", name, ms, err)
		ms, err = p.stop(ctx, inst)
		res.add("stop", name, ms, err)
		ms, err = p.start(ctx, inst)
		res.add("start", name, ms, err)
		if _, err := p.stop(ctx, inst); err != nil {
			logf("%s: stop after start: %v", name, err)
		}
		ms, err = p.remove(ctx, inst)
		res.add("delete", name, ms, err)
		if err != nil {
			failures++
			_ = p.deleteAll(ctx)
		}
	}
}

func measureEvents(ctx context.Context, cfg *config, res *results, p peer) {
	name := p.name()
	for _, kind := range []string{eventsPatch, eventsPause} {
		key := "events-" + kind
		if err := p.eventsPrepare(ctx, kind); err != nil {
			res.add(key, name, 0, err)
			p.eventsCleanup(ctx, kind)
			continue
		}
		logf("%s: events (%s), %d runs", name, kind, cfg.runs)
		for range cfg.runs {
			rate, err := p.events(ctx, kind, eventSubscribers, cfg.triggers)
			res.add(key, name, rate, err)
			if err != nil {
				break
			}
		}
		p.eventsCleanup(ctx, kind)
	}
}

// measureScale lists at every scale: the first cfg.running instances run,
// the others are created stopped. When cfg.running run, it also takes the
// daemon's RSS and the host's memory per running instance.
func measureScale(ctx context.Context, cfg *config, res *results, p peer) {
	name := p.name()
	defer func() {
		logf("%s: deleting the scale instances", name)
		if err := p.deleteAll(ctx); err != nil {
			logf("%s: %v", name, err)
		}
	}()
	time.Sleep(2 * time.Second) // let the deletes of the phases before settle
	base, err := sample(cfg.runs, hostUsedMB)
	if err != nil {
		res.add("mem-per", name, 0, err)
	}
	daemonBase := 0.0
	if pid := p.daemonPID(); pid != 0 {
		if v, err := rssMB(pid); err == nil {
			daemonBase = v
		}
	}
	running, total := 0, 0
	for _, n := range cfg.scales {
		if ctx.Err() != nil {
			return
		}
		if want := min(n, cfg.running); want > running {
			logf("%s: starting instances %d..%d", name, running+1, want)
			t0 := time.Now()
			if err := p.createMany(ctx, names("pb-r", running, want), true); err != nil {
				res.scaleFailed(name, n, fmt.Errorf("starting %d instances: %w", want, err))
				return
			}
			logf("%s: %d running (%.1fs)", name, want, time.Since(t0).Seconds())
			total += want - running
			running = want
			if running == cfg.running {
				time.Sleep(3 * time.Second) // let the new instances settle
				if base != nil {
					after, err := sample(cfg.runs, hostUsedMB)
					med := stats(base).med
					per := make([]float64, len(after))
					for i, v := range after {
						per[i] = (v - med) / float64(running)
					}
					res.record("mem-per", name, per, err)
				}
				if pid := p.daemonPID(); pid != 0 {
					vals, err := sample(cfg.runs, func() (float64, error) { return rssMB(pid) })
					res.record("rss-running", name, vals, err)
				}
				vals, err := chargedPerInstance(ctx, cfg, p, daemonBase, running)
				res.record("mem-cg", name, vals, err)
			}
		}
		if n > total {
			logf("%s: creating stopped instances %d..%d", name, total-running+1, n-running)
			t0 := time.Now()
			if err := p.createMany(ctx, names("pb-s", total-running, n-running), false); err != nil {
				res.scaleFailed(name, n, fmt.Errorf("creating %d stopped instances: %w", n-running, err))
				return
			}
			logf("%s: %d instances (%.1fs)", name, n, time.Since(t0).Seconds())
			total = n
		}
		// The lists must see what the row says they see.
		if all, run, err := p.count(ctx); err != nil || all != n || run != min(n, cfg.running) {
			if err == nil {
				err = fmt.Errorf("%d instances (%d running) where %d (%d running) were made", all, run, n, min(n, cfg.running))
			}
			res.scaleFailed(name, n, err)
			return
		}
		logf("%s: listing %d instances", name, n)
		for range cfg.runs {
			ms, err := p.listCLI(ctx)
			res.add(listKey("cli", n), name, ms, err)
			if err != nil {
				break
			}
		}
		urls, client := p.rest()
		for _, row := range []string{restRec1, restRec2} {
			url, ok := urls[row]
			if !ok {
				res.na(listKey(row, n), name, "-")
				continue
			}
			for range cfg.runs {
				t0 := time.Now()
				err := httpGet(ctx, client, url)
				res.add(listKey(row, n), name, msSince(t0), err)
				if err != nil {
					break
				}
			}
		}
	}
}

// chargedPerInstance samples, per running instance, the memory charged to
// the instances' cgroups, plus the PSS of the per-instance helpers (a
// helper forked by its daemon is mostly charged to the daemon's cgroup), plus
// the daemon's growth since daemonBase.
func chargedPerInstance(ctx context.Context, cfg *config, p peer, daemonBase float64, running int) ([]float64, error) {
	payload, helpers, err := p.memCgroups(ctx)
	if err != nil {
		return nil, err
	}
	if len(payload) == 0 {
		return nil, fmt.Errorf("no instance cgroups found")
	}
	return sample(cfg.runs, func() (float64, error) {
		total, err := cgroupMemMB(payload)
		if err != nil {
			return 0, err
		}
		for _, pid := range cgroupProcs(helpers) {
			if pss, err := pssMB(pid); err == nil {
				total += pss
			}
		}
		if pid := p.daemonPID(); pid != 0 {
			rss, err := rssMB(pid)
			if err != nil {
				return 0, err
			}
			total += rss - daemonBase
		}
		return total / float64(running), nil
	})
}

func listKey(kind string, n int) string { return fmt.Sprintf("list-%s/%d", kind, n) }

// names returns prefix0001.. for the indexes (from, to].
func names(prefix string, from, to int) []string {
	var out []string
	for i := from + 1; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%04d", prefix, i))
	}
	return out
}

// isNA reports whether err says the operation does not exist for the peer.
func isNA(err error) (string, bool) {
	var na notApplicable
	if errors.As(err, &na) {
		return string(na), true
	}
	return "", false
}

// bringUp sets each peer up in turn, records its version, and launches
// the instance name in it, for phases where all peers run side by side.
// It returns the peers that were set up and a teardown for every peer it
// tried (in reverse order); failed hears of a peer that did not set up,
// or could not launch name.
func bringUp[P peer](ctx context.Context, phase string, peers []P, name string, versions map[string]string, failed func(peer string, err error)) (ready []P, teardown func()) {
	var tried []P
	teardown = func() {
		for _, p := range slices.Backward(tried) {
			logf("%s: %s: tearing down", phase, p.name())
			tctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			p.teardown(tctx)
			cancel()
		}
	}
	for _, p := range peers {
		if ctx.Err() != nil {
			break
		}
		logf("%s: %s: setting up", phase, p.name())
		tried = append(tried, p)
		if err := p.setup(ctx); err != nil {
			failed(p.name(), fmt.Errorf("set-up failed: %w", err))
			continue
		}
		ready = append(ready, p)
		if versions[p.name()] == "" {
			versions[p.name()] = p.version(ctx)
		}
		if _, err := p.launch(ctx, name); err != nil {
			failed(p.name(), fmt.Errorf("launch %s: %w", name, err))
		}
	}
	return ready, teardown
}

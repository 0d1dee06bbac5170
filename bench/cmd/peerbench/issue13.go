package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// The speed figures issue 13 (snapshots, copy, backups, live fork) sets
// targets for, in one run (bench/run --issue13): hangard on its dir pool
// and on a loop-backed btrfs pool it made through the API, beside LXD 5.0
// on its dir pool and a loop-backed btrfs pool (`lxc storage create`),
// both up at once. On every pool a stopped container holds 1 GiB (1024
// files of 1 MiB of random bytes, written once by an exec of dd inside
// it); its snapshot and its copy are timed in rounds of random order.
// Then, hangard alone: the live fork of a running 512 MiB VM to the
// fork's first exec (TCG without KVM), and the export and import of the
// 1 GiB container beside `tar | zstd` of the same tree by hand.
//
// hangard runs in its own network namespace, as in every bench mode
// (hangard.go); the containers have no NIC (no profile, a root disk device
// only), nor have LXD's; the VM has the default profile's NIC.

// Columns of the issue-13 report: a peer on a pool, and the by-hand
// baseline of the export/import figures.
const (
	col13Hand = "by hand (tar, zstd)"
)

// Row keys of the issue-13 report.
const (
	r13Fill       = "fill"
	r13Snapshot   = "snapshot"
	r13Copy       = "copy"
	r13VMLaunch   = "vm-launch"
	r13ForkOp     = "fork-op"
	r13ForkPause  = "fork-pause"
	r13ForkReady  = "fork-ready"
	r13ForkSave   = "fork-save"
	r13ForkStart  = "fork-start"
	r13BackupMake = "backup-create"
	r13BackupGet  = "backup-download"
	r13Export     = "export"
	r13Import     = "import"
	r13RoundTrip  = "export-import"
	r13Size       = "tarball-size"
)

const (
	// fillFiles files of 1 MiB of random bytes go in fillDir of each
	// pool's source container: 1 GiB.
	fillFiles = 1024
	fillDir   = "/pbdata"
	// heavyRuns13 are the recorded rounds of the fork and of the
	// export/import: each takes seconds.
	heavyRuns13 = 5
	// vm13 is the VM the forks are made of, booted once.
	vm13       = "pb-vm"
	vmMemory13 = "512MiB"
	// forkReadyTimeout bounds the wait for a fork's first exec.
	forkReadyTimeout = 3 * time.Minute
	// fillTimeout bounds the writing of 1 GiB inside a container.
	fillTimeout = 10 * time.Minute
)

// pool13 is a daemon's pool with its 1 GiB source container.
type pool13 struct {
	*pool12
	src string
}

// measureIssue13 sets the peers up side by side and takes the figures.
func measureIssue13(ctx context.Context, cfg *config, res *results, r *issue10Results, tarball, bins string) {
	xcfg := *cfg
	xcfg.scratch = filepath.Join(cfg.scratch, "issue13")
	if err := os.MkdirAll(xcfg.scratch, 0o711); err != nil {
		r.note("scratch: %v", err)
		return
	}
	// Whatever a failed teardown left backed by a file of ours.
	defer detachLoopsUnder(xcfg.scratch)

	h := newHangardPeer(&xcfg, tarball, bins)
	// Its info lines time a fork's steps (issue13Fork); it logs no line
	// per request at that level.
	h.logLevel = "info"
	var lx *lxdPeer
	peers := []peer{h}
	if slices.Contains(cfg.peers, peerLXD) && res.skipped[peerLXD] == "" {
		lx = newLXDPeer(&xcfg, tarball)
		peers = append(peers, lx)
	} else if reason := res.skipped[peerLXD]; reason != "" {
		r.note("LXD: %s", reason)
	}

	var tried []peer
	var pools []*pool13
	defer func() {
		for _, p := range slices.Backward(tried) {
			logf("issue 13: %s: tearing down", p.name())
			tctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			// The instances and the btrfs pool go before the daemon: a
			// pool's loop device and mount are the daemon's to undo.
			for _, pl := range pools {
				if strings.HasPrefix(pl.col, p.name()+", ") {
					pl.cleanup(tctx)
				}
			}
			p.teardown(tctx)
			cancel()
		}
	}()
	up := setUpPeers(ctx, "issue 13", peers, r, res, &tried)
	if ctx.Err() != nil {
		return
	}

	// The pools, then their source containers, filled all at once (the
	// writing is the longest part of the set-up).
	add := func(pl *pool12, mk func() error) {
		if mk != nil {
			if err := mk(); err != nil {
				record11(r, r13Fill, pl.col, 0, fmt.Errorf("create pool %s: %w", pl.pool, err))
				return
			}
		}
		pools = append(pools, &pool13{pool12: pl, src: "pb-src-" + pl.driver[:1]})
	}
	if up[peerHangard] {
		add(&pool12{col: col12HDir, driver: "dir", pool: dirPool, c: h.c, startInCreate: true}, nil)
		add(&pool12{col: col12HBtrfs, driver: "btrfs", pool: btrfsPool, c: h.c, startInCreate: true}, func() error {
			return apiDo(ctx, h.c, http.MethodPost, "/1.0/storage-pools", map[string]any{
				"name": btrfsPool, "driver": "btrfs", "config": map[string]string{"size": btrfsPoolSize},
			})
		})
	}
	if lx != nil && up[peerLXD] {
		add(&pool12{col: col12LDir, driver: "dir", pool: dirPool, c: lx.c, lxc: lx.lxc}, nil)
		add(&pool12{col: col12LBtrfs, driver: "btrfs", pool: btrfsPool, c: lx.c, lxc: lx.lxc}, func() error {
			_, err := lx.lxc(ctx, "storage", "create", btrfsPool, "btrfs", "size="+btrfsPoolSize)
			return err
		})
	}
	logf("issue 13: writing %d MiB into a container on each of %d pools", fillFiles, len(pools))
	_ = parallel(ctx, len(pools)+1, pools, func(ctx context.Context, p *pool13) error {
		ms, err := p.prepareSource(ctx)
		record11(r, r13Fill, p.col, ms, err)
		if err != nil {
			p.src = ""
		}
		return nil
	})
	if ctx.Err() != nil {
		return
	}
	watch := startLoadWatch()
	defer func() { r.load = watch.stop() }()

	issue13SnapCopy(ctx, cfg, r, pools)
	if ctx.Err() == nil && up[peerHangard] {
		issue13Fork(ctx, r, h)
	}
	if ctx.Err() == nil && up[peerHangard] {
		var src *pool13
		for _, p := range pools {
			if p.col == col12HDir && p.src != "" {
				src = p
			}
		}
		if src == nil {
			r.note("export/import: no source container on hangard's dir pool; not measured")
			return
		}
		issue13Backups(ctx, r, h, src, tarball, filepath.Join(xcfg.scratch, "backups"))
	}
}

// prepareSource launches the pool's source container, writes fillFiles
// files of 1 MiB of random bytes into its root with dd inside it, and
// stops it; it returns the time of the writing (from the exec to its
// end, sync included).
func (p *pool13) prepareSource(ctx context.Context) (float64, error) {
	if _, err := p.launch(ctx, p.src); err != nil {
		return 0, err
	}
	script := fmt.Sprintf(`set -e; mkdir -p %[1]s; i=0
while [ $i -lt %[2]d ]; do dd if=/dev/urandom of=%[1]s/f$i bs=1048576 count=1 2>/dev/null; i=$((i+1)); done
sync; du -sk %[1]s`, fillDir, fillFiles)
	ctx, cancel := context.WithTimeout(ctx, fillTimeout)
	defer cancel()
	var out, stderr bytes.Buffer
	t0 := time.Now()
	e, err := p.c.ExecInstance(ctx, p.src, api.InstanceExecPost{Command: []string{"sh", "-c", script}}, client.ExecStreams{Stdout: &out, Stderr: &stderr})
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", p.src, err)
	}
	code, err := e.Wait(ctx)
	ms := msSince(t0)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", p.src, err)
	}
	if code != 0 {
		return 0, fmt.Errorf("writing %s in %s: exit code %d: %s", fillDir, p.src, code, tail(stderr.String(), 200))
	}
	if err := checkFilled(out.String()); err != nil {
		return 0, fmt.Errorf("%s: %w", p.src, err)
	}
	if err := p.state(ctx, p.src, api.InstanceStatePut{Action: api.ActionStop, Force: true, Timeout: -1}); err != nil {
		return 0, err
	}
	return ms, nil
}

// checkFilled reads `du -sk` of the filled directory: it must hold at
// least the fillFiles MiB written.
func checkFilled(du string) error {
	f := strings.Fields(du)
	if len(f) == 0 {
		return fmt.Errorf("du printed nothing")
	}
	kib, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return fmt.Errorf("du printed %q: %w", strings.TrimSpace(du), err)
	}
	if kib < fillFiles*1024 {
		return fmt.Errorf("%s holds %d KiB, want at least %d", fillDir, kib, fillFiles*1024)
	}
	return nil
}

// issue13SnapCopy runs the snapshot and copy rounds: each round, in a
// fresh random order, on every pool a snapshot of the stopped source
// (timed until its operation ends, then deleted untimed) and a copy of it
// within the pool, instance only (timed, then deleted untimed).
func issue13SnapCopy(ctx context.Context, cfg *config, r *issue10Results, pools []*pool13) {
	type variant func(ctx context.Context, rec *issue10Results, round int)
	var variants []variant
	for _, p := range pools {
		if p.src == "" {
			continue
		}
		variants = append(variants,
			func(ctx context.Context, rec *issue10Results, round int) { p.snapshotRound(ctx, rec, round) },
			func(ctx context.Context, rec *issue10Results, round int) { p.copyRound(ctx, rec, round) })
	}
	if len(variants) == 0 {
		return
	}
	randomRounds(ctx, "issue 13", "snapshot and copy", 1, cfg.runs, len(variants), func(rec *issue10Results, round, i int) {
		variants[i](ctx, rec, round)
	}, r)
}

func (p *pool13) snapshotsPath() string {
	return "/1.0/instances/" + url.PathEscape(p.src) + "/snapshots"
}

// snapshotRound takes a snapshot of the source (timed) and deletes it.
func (p *pool13) snapshotRound(ctx context.Context, rec *issue10Results, round int) {
	snap := fmt.Sprintf("pbs%04d", round)
	t0 := time.Now()
	_, err := apiOp(ctx, p.c, http.MethodPost, p.snapshotsPath(), map[string]any{"name": snap})
	record11(rec, r13Snapshot, p.col, msSince(t0), err)
	if err != nil && notAvailable(err) {
		return
	}
	// Deleted even when the create said it failed: it may have been made.
	if err := apiDo(ctx, p.c, http.MethodDelete, p.snapshotsPath()+"/"+url.PathEscape(snap), nil); err != nil && !client.IsNotFound(err) {
		logf("issue 13: %s: %v", p.col, err)
	}
}

// copyRound copies the source within its pool, instance only (timed
// until the operation ends), and deletes the copy.
func (p *pool13) copyRound(ctx context.Context, rec *issue10Results, round int) {
	name := fmt.Sprintf("pb-c%s%04d", p.driver[:1], round)
	t0 := time.Now()
	op, err := p.c.CopyInstance(ctx, p.src, true, api.InstancesPost{Name: name})
	if err == nil {
		err = op.Wait(ctx)
	}
	if err != nil {
		err = fmt.Errorf("copy %s to %s: %w", p.src, name, err)
	}
	record11(rec, r13Copy, p.col, msSince(t0), err)
	if _, err := p.remove(ctx, name); err != nil && !strings.Contains(err.Error(), "not found") {
		logf("issue 13: %s: %v", p.col, err)
	}
}

// notAvailable: the daemon has no such route (404 from the router) or
// says the feature is not implemented.
func notAvailable(err error) bool {
	c := client.StatusCodeOf(err)
	return c == http.StatusNotImplemented || c == http.StatusNotFound
}

// vmMissing says what the VM figures lack on this machine, "" when
// nothing (the e2e tests' requireVM checks the same).
func vmMissing() string {
	if miss := missingBinaries([]string{"qemu-system-x86_64", "qemu-img", "mkfs.ext4"}); len(miss) > 0 {
		return strings.Join(miss, ", ") + " not installed (scripts/deps.sh installs them)"
	}
	if k, _ := filepath.Glob("/boot/vmlinuz-*"); len(k) == 0 {
		return "no guest kernel in /boot (apt-get install linux-image-amd64)"
	}
	return ""
}

// issue13Fork boots the VM once (`hangar launch busybox pb-vm --vm`, timed
// to the end of the command: the agent answered), then forks it
// heavyRuns13 times: each fork timed until its operation ends and until it
// answers an exec of `true` (its agent ready), with the pause the source
// saw (the operation's pause_ms); the fork is deleted untimed.
func issue13Fork(ctx context.Context, r *issue10Results, h *hangardPeer) {
	if why := vmMissing(); why != "" {
		r.note("fork of a running VM: not measured: %s", why)
		return
	}
	logf("issue 13: booting the %s VM %s", vmMemory13, vm13)
	ms, err := command{timeout: 10 * time.Minute}.timed(ctx, filepath.Join(h.bins, "hangar"), "--socket", h.socket,
		"launch", "busybox", vm13, "--vm", "-c", "limits.memory="+vmMemory13, "-c", "limits.cpu=1")
	record11(r, r13VMLaunch, col12HDir, ms, err)
	if err != nil {
		return
	}
	defer func() {
		if err := h.deleteNames(context.WithoutCancel(ctx), []string{vm13}); err != nil {
			logf("issue 13: delete %s: %v", vm13, err)
		}
	}()
	noProcs := 0
	randomRounds(ctx, "issue 13", "fork", 0, heavyRuns13, 1, func(rec *issue10Results, round, _ int) {
		name := fmt.Sprintf("pb-fork%04d", round)
		m, err := forkRound(ctx, h.c, vm13, name)
		record11(rec, r13ForkOp, col12HDir, m.op, err)
		if err == nil {
			record11(rec, r13ForkPause, col12HDir, m.pause, nil)
			record11(rec, r13ForkReady, col12HDir, m.ready, m.readyErr)
			if !m.processes {
				noProcs++
			}
		}
		if err := h.deleteNames(ctx, []string{name}); err != nil {
			logf("issue 13: delete %s: %v", name, err)
		}
	}, r)
	if noProcs > 0 {
		r.note("fork: %d of the forks said they do not run the source's processes (metadata processes: false)", noProcs)
	}
	// The steps, from the daemon's log: every checkpoint and every
	// forked start in it are the recorded forks' (the VM's boot is not
	// forked, and no fork ran before).
	data, err := os.ReadFile(h.logPath())
	if err != nil {
		r.note("fork: the daemon's log: %v", err)
		return
	}
	steps := forkSteps(string(data))
	for _, v := range steps.save {
		record11(r, r13ForkSave, col12HDir, v, nil)
	}
	for _, v := range steps.start {
		record11(r, r13ForkStart, col12HDir, v, nil)
	}
}

// forkLog is what hangard's log says of forks, in ms.
type forkLog struct {
	// save: a checkpoint's pre-copy save of RAM and devices to the
	// state file ("vm checkpointed" save=).
	save []float64
	// start: a fork's QEMU start from the state file until its agent
	// answered and took the new identity ("vm started" forked=true
	// total=).
	start []float64
}

// forkSteps reads hangard's log (log/slog's text lines) for forks.
func forkSteps(log string) forkLog {
	var f forkLog
	for _, line := range strings.Split(log, "\n") {
		switch {
		case strings.Contains(line, `msg="vm checkpointed"`):
			if d, ok := logDuration(line, "save"); ok {
				f.save = append(f.save, d)
			}
		case strings.Contains(line, `msg="vm started"`) && logField(line, "forked") == "true":
			if d, ok := logDuration(line, "total"); ok {
				f.start = append(f.start, d)
			}
		}
	}
	return f
}

// logField is the unquoted value of key in a log/slog text line.
func logField(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}

// logDuration is key's value in a log line as a duration in ms.
func logDuration(line, key string) (float64, bool) {
	d, err := time.ParseDuration(logField(line, key))
	if err != nil {
		return 0, false
	}
	return float64(d.Microseconds()) / 1000, true
}

// forkTimes are one fork's figures in ms.
type forkTimes struct {
	op, pause, ready float64
	processes        bool
	// readyErr: the fork was made but never answered an exec.
	readyErr error
}

// forkRound forks src into name and waits for the fork to answer an exec.
func forkRound(ctx context.Context, c *client.Client, src, name string) (m forkTimes, err error) {
	t0 := time.Now()
	op, err := c.ForkInstance(ctx, src, name)
	if err == nil {
		err = op.Wait(ctx)
	}
	if err != nil {
		return m, fmt.Errorf("fork %s to %s: %w", src, name, err)
	}
	m.op = msSince(t0)
	var md api.InstanceFork
	if raw, err := json.Marshal(op.Get().Metadata); err == nil {
		err = json.Unmarshal(raw, &md)
		if err != nil {
			return m, fmt.Errorf("fork %s: metadata: %w", name, err)
		}
	}
	m.pause, m.processes = md.PauseMS, md.Processes
	deadline := time.Now().Add(forkReadyTimeout)
	for {
		_, err := execTrue(ctx, c, name)
		if err == nil {
			m.ready = msSince(t0)
			return m, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			m.readyErr = fmt.Errorf("fork %s answered no exec within %s: %w", name, forkReadyTimeout, err)
			return m, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// backup13 is the export/import phase: hangard's backups of the 1 GiB
// container on its dir pool, beside tar | zstd of the same tree by hand,
// all in dir (ext4, the scratch directory's filesystem).
type backup13 struct {
	h    *hangardPeer
	src  *pool13
	dir  string
	tree string // the by-hand baseline's tree
}

func (b *backup13) backupsPath() string {
	return "/1.0/instances/" + url.PathEscape(b.src.src) + "/backups"
}

// issue13Backups runs the export/import rounds: one unrecorded export
// first (its tree, unpacked, is the baseline's: the container's own),
// then heavyRuns13 rounds of, in random order, hangard's export + import
// and the baseline's compress + decompress.
func issue13Backups(ctx context.Context, r *issue10Results, h *hangardPeer, src *pool13, tarball, dir string) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		r.note("export/import: %v", err)
		return
	}
	b := &backup13{h: h, src: src, dir: dir}
	defer os.RemoveAll(dir)
	avail := true
	first := filepath.Join(dir, "first.tar.zst")
	if _, err := b.export(ctx, "pbb-first", first); err != nil {
		avail = false
		if notAvailable(err) {
			r.note("export/import: hangard's backups are not available in this tree (%v); only the by-hand baseline is measured, on a tree of the harness's own: the busybox tree and %d files of 1 MiB of random bytes", err, fillFiles)
		} else {
			r.note("export/import: the first export failed (%v); the by-hand baseline runs on a tree of the harness's own", err)
			record11(r, r13Export, col12HDir, 0, err)
		}
	}
	tree, how, err := b.makeTree(ctx, first, tarball, avail)
	if err != nil {
		r.note("export/import: the baseline's tree: %v", err)
		return
	}
	b.tree = tree
	os.Remove(first)
	r.note("export/import: the by-hand baseline's tree is %s", how)

	variants := []func(ctx context.Context, rec *issue10Results, round int){b.handRound}
	if avail {
		variants = append(variants, b.hangardRound)
	}
	randomRounds(ctx, "issue 13", "export and import", 0, heavyRuns13, len(variants), func(rec *issue10Results, round, i int) {
		variants[i](ctx, rec, round)
	}, r)
}

// export makes backup name (zstd, instance only) and downloads it to
// file: the time of each step in ms, and the file's size in MiB.
func (b *backup13) export(ctx context.Context, name, file string) (m exportTimes, err error) {
	c := b.h.c
	t0 := time.Now()
	_, err = apiOp(ctx, c, http.MethodPost, b.backupsPath(), map[string]any{
		"name": name, "compression_algorithm": "zstd", "instance_only": true, "optimized_storage": false,
	})
	if err != nil {
		return m, err
	}
	m.create = msSince(t0)
	defer func() {
		if err := apiDo(context.WithoutCancel(ctx), c, http.MethodDelete, b.backupsPath()+"/"+url.PathEscape(name), nil); err != nil {
			logf("issue 13: delete backup %s: %v", name, err)
		}
	}()
	t1 := time.Now()
	n, err := download(ctx, b.h.hc, b.backupsPath()+"/"+url.PathEscape(name)+"/export", file)
	if err != nil {
		return m, err
	}
	m.download = msSince(t1)
	m.total = msSince(t0)
	m.sizeMiB = float64(n) / (1 << 20)
	return m, nil
}

type exportTimes struct {
	create, download, total, sizeMiB float64
}

// download GETs p on the daemon's socket into file.
func download(ctx context.Context, hc *http.Client, p, file string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://unix"+p, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", p, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("GET %s: %s: %s", p, resp.Status, tail(string(body), 200))
	}
	f, err := os.Create(file)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("GET %s: %w", p, err)
	}
	return n, nil
}

// importBackup creates instance name from the backup file: POST
// /1.0/instances with the tarball as an application/octet-stream body, as
// `lxc import` sends it, until its operation ends.
func (b *backup13) importBackup(ctx context.Context, file, name string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://unix/1.0/instances", f)
	if err != nil {
		return err
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-LXD-name", name)
	req.Header.Set("X-LXD-pool", b.src.pool)
	resp, err := b.h.hc.Do(req)
	if err != nil {
		return fmt.Errorf("POST /1.0/instances (backup): %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("POST /1.0/instances (backup): %w", err)
	}
	var ans api.Response
	if err := json.Unmarshal(body, &ans); err != nil || resp.StatusCode >= 400 {
		return fmt.Errorf("POST /1.0/instances (backup): %s: %s", resp.Status, tail(string(body), 200))
	}
	_, err = waitAsync(ctx, b.h.c, "POST /1.0/instances (backup)", &ans)
	return err
}

// hangardRound exports the source (backup create + download, timed) and
// imports the file as a new instance (timed); the backup, the file and
// the new instance go untimed.
func (b *backup13) hangardRound(ctx context.Context, rec *issue10Results, round int) {
	file := filepath.Join(b.dir, fmt.Sprintf("export%04d.tar.zst", round))
	defer os.Remove(file)
	m, err := b.export(ctx, fmt.Sprintf("pbb%04d", round), file)
	record11(rec, r13Export, col12HDir, m.total, err)
	if err != nil {
		return
	}
	record11(rec, r13BackupMake, col12HDir, m.create, nil)
	record11(rec, r13BackupGet, col12HDir, m.download, nil)
	record11(rec, r13Size, col12HDir, m.sizeMiB, nil)
	name := fmt.Sprintf("pb-imp%04d", round)
	t0 := time.Now()
	err = b.importBackup(ctx, file, name)
	imp := msSince(t0)
	record11(rec, r13Import, col12HDir, imp, err)
	if err == nil {
		record11(rec, r13RoundTrip, col12HDir, m.total+imp, nil)
	}
	if _, err := b.src.remove(context.WithoutCancel(ctx), name); err != nil && !strings.Contains(err.Error(), "not found") {
		logf("issue 13: %v", err)
	}
}

// handRound is the baseline: `tar -C TREE -cf - . | zstd -T0 -q > F`
// (timed), then `zstd -dc F | tar -C DST -xf -` into an empty directory
// (timed); both go untimed.
func (b *backup13) handRound(ctx context.Context, rec *issue10Results, round int) {
	file := filepath.Join(b.dir, fmt.Sprintf("hand%04d.tar.zst", round))
	dst := filepath.Join(b.dir, fmt.Sprintf("hand%04d", round))
	defer os.Remove(file)
	defer os.RemoveAll(dst)
	sh := command{timeout: 10 * time.Minute}
	pack, err := sh.timed(ctx, "bash", "-c", "set -o pipefail; tar -C "+shellQuote(b.tree)+" -cf - . | zstd -T0 -q > "+shellQuote(file))
	record11(rec, r13Export, col13Hand, pack, err)
	if err != nil {
		return
	}
	if st, err := os.Stat(file); err == nil {
		record11(rec, r13Size, col13Hand, float64(st.Size())/(1<<20), nil)
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		record11(rec, r13Import, col13Hand, 0, err)
		return
	}
	unpack, err := sh.timed(ctx, "bash", "-c", "set -o pipefail; zstd -dc "+shellQuote(file)+" | tar -C "+shellQuote(dst)+" -xf -")
	record11(rec, r13Import, col13Hand, unpack, err)
	if err == nil {
		record11(rec, r13RoundTrip, col13Hand, pack+unpack, nil)
	}
}

// makeTree makes the baseline's tree: the rootfs of the first export,
// unpacked (the container's own tree), or when there is none a tree of
// the harness's own of the same make (the busybox tree and fillFiles
// files of 1 MiB of random bytes). It returns the tree and how it was
// made.
func (b *backup13) makeTree(ctx context.Context, export, tarball string, fromExport bool) (string, string, error) {
	dir := filepath.Join(b.dir, "tree")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	if fromExport {
		err := (command{timeout: 10 * time.Minute}).run(ctx, "bash", "-c", "set -o pipefail; zstd -dc "+shellQuote(export)+" | tar -C "+shellQuote(dir)+" -xf -")
		root := filepath.Join(dir, "backup", "container", "rootfs")
		if err == nil && fileExists(filepath.Join(root, strings.TrimPrefix(fillDir, "/"), "f0")) {
			return root, "the rootfs of hangard's first (unrecorded) export of the container, unpacked with `zstd -dc | tar -x` into the scratch directory: the container's own tree", nil
		}
		logf("issue 13: the export holds no backup/container/rootfs%s (%v); the baseline makes its own tree", fillDir, err)
		if err := os.RemoveAll(dir); err != nil {
			return "", "", err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", "", err
		}
	}
	if err := (command{}).run(ctx, "tar", "-C", dir, "-xzf", tarball); err != nil {
		return "", "", err
	}
	if err := writeRandomFiles(filepath.Join(dir, strings.TrimPrefix(fillDir, "/")), fillFiles, 1<<20); err != nil {
		return "", "", err
	}
	return dir, fmt.Sprintf("the harness's own in the scratch directory: the busybox tree and %d files of 1 MiB of random bytes in %s, as the containers hold", fillFiles, fillDir), nil
}

// writeRandomFiles writes n files of size random bytes in dir.
func writeRandomFiles(dir string, n, size int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rand.Uint32())
	}
	rng := rand.NewChaCha8(seed)
	buf := make([]byte, size)
	for i := range n {
		_, _ = rng.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), buf, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// shellQuote quotes s for bash.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runIssue13 is the whole issue-13 run after the builds.
func runIssue13(ctx context.Context, cfg *config, res *results, tarball, bins string, start time.Time) error {
	if err := ensureBtrfsTools(ctx, cfg); err != nil {
		return err
	}
	if miss := missingBinaries([]string{"zstd"}); len(miss) > 0 {
		if cfg.noInstall {
			return errors.New("issue 13 needs zstd (apt-get install zstd), not installed and --no-install given")
		}
		if err := (command{timeout: 10 * time.Minute}).run(ctx, "apt-get", "install", "-y", "zstd"); err != nil {
			return err
		}
	}
	r := newIssue10Results()
	measureIssue13(ctx, cfg, res, r, tarball, bins)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted; everything created was torn down, no report written")
	}
	res.elapsed = time.Since(start)
	md := renderIssue13(cfg, res, r)
	if err := writeFile(cfg.out, []byte(md)); err != nil {
		return err
	}
	fmt.Print(md)
	logf("report written to %s", cfg.out)
	return nil
}

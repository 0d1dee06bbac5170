package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// The speed figures issue 12 (storage pools) sets targets for, in one run
// (bench/run --issue12): hangard on its dir pool and on a loop-backed
// btrfs pool it made through the API, LXD 5.0 on its dir pool and on a
// loop-backed btrfs pool (`lxc storage create`), and a baseline done by
// hand with bare runc (an overlayfs root on ext4, a btrfs snapshot on a
// loop-backed btrfs of the harness's own). Every peer is up at once and
// the measurements are interleaved in rounds of random order, so that
// other work on the shared machine weighs on all alike.
//
// hangard runs in its own network namespace, as in every bench mode
// (hangard.go); its instances here have no NIC (no profile, a root disk
// device only), nor have LXD's.

// Columns of the issue-12 report: a peer on a pool.
const (
	col12HDir   = "hangard, dir"
	col12HBtrfs = "hangard, btrfs"
	col12LDir   = "LXD, dir"
	col12LBtrfs = "LXD, btrfs"
	col12BDir   = "baseline, dir"
	col12BBtrfs = "baseline, btrfs"
)

// Row keys of the issue-12 report.
const (
	r12First      = "first-launch"
	r12Launch     = "launch"
	r12VolCreate  = "vol-create"
	r12VolAttach  = "vol-attach"
	r12VolMounted = "vol-mounted"
	r12VolCLI     = "vol-cli"
	r12Delete     = "delete"
	r12DelRunc    = "delete-runc"
	r12DelRemove  = "delete-remove"
)

// The pools: each daemon's dir pool is its default one; the btrfs pools
// are made by the run, loop-backed files of btrfsPoolSize.
const (
	dirPool       = "default"
	btrfsPool     = "pbbtrfs"
	btrfsPoolSize = "4GiB"
	volSize       = "1GiB"
	// volPath is where a custom volume is attached in the container.
	volPath = "/data"
	// volDevice is the name of its disk device.
	volDevice = "pbdata"
)

// mountTimeout bounds the wait for an attached volume to show in the
// container's mount table.
const mountTimeout = 10 * time.Second

// pool12 is one daemon's pool, driven through the LXD API (hangar's Go
// SDK on the daemon's socket).
type pool12 struct {
	col    string
	driver string // dir or btrfs
	pool   string
	c      *client.Client
	// startInCreate: the daemon starts an instance created with "start":
	// true (hangard); LXD needs a second request.
	startInCreate bool
	// lxc runs the real lxc client against the daemon (LXD only here).
	lxc func(ctx context.Context, args ...string) (float64, error)
	// vol is the running container the volumes are attached to, and its
	// PID 1 (to read its mount table).
	vol    string
	volPID int
	// seq numbers the replacements of vol.
	seq int
}

// measureIssue12 sets the peers up side by side and takes the figures.
func measureIssue12(ctx context.Context, cfg *config, res *results, r *issue10Results, tarball, bins string) {
	xcfg := *cfg
	xcfg.scratch = filepath.Join(cfg.scratch, "issue12")
	if err := os.MkdirAll(xcfg.scratch, 0o711); err != nil {
		r.note("scratch: %v", err)
		return
	}
	// Whatever a failed teardown left backed by a file of ours.
	defer detachLoopsUnder(xcfg.scratch)

	h := newHangardPeer(&xcfg, tarball, bins)
	var lx *lxdPeer
	var rc *runcPeer
	var bb *btrfsBaseline
	peers := []peer{h}
	if slices.Contains(cfg.peers, peerLXD) && res.skipped[peerLXD] == "" {
		lx = newLXDPeer(&xcfg, tarball)
		peers = append(peers, lx)
	} else if reason := res.skipped[peerLXD]; reason != "" {
		r.note("LXD: %s", reason)
	}
	if slices.Contains(cfg.peers, peerRunc) && res.skipped[peerRunc] == "" {
		rc = newRuncPeer(&xcfg, tarball)
		peers = append(peers, rc)
	} else if reason := res.skipped[peerRunc]; reason != "" {
		r.note("runc: %s", reason)
	}

	down := map[string]bool{}
	var tried []peer
	var pools []*pool12
	tearDown := func(p peer) {
		if down[p.name()] {
			return
		}
		down[p.name()] = true
		logf("issue 12: %s: tearing down", p.name())
		tctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		// The custom volumes and the btrfs pool go before the daemon:
		// a pool's loop device and mount are the daemon's to undo.
		for _, pl := range pools {
			if strings.HasPrefix(pl.col, p.name()+", ") {
				pl.cleanup(tctx)
			}
		}
		p.teardown(tctx)
	}
	defer func() {
		if bb != nil {
			bb.teardown()
		}
		for _, p := range slices.Backward(tried) {
			tearDown(p)
		}
	}()
	up := setUpPeers(ctx, "issue 12", peers, r, res, &tried)
	if ctx.Err() != nil {
		return
	}

	// The pools, each warmed by a first launch (it caches the image in
	// the pool), recorded on its own row.
	add := func(pl *pool12, mk func() error) {
		if mk != nil {
			if err := mk(); err != nil {
				record11(r, r12First, pl.col, 0, fmt.Errorf("create pool %s: %w", pl.pool, err))
				return
			}
		}
		pools = append(pools, pl)
		name := "pb-first-" + pl.driver
		ms, err := pl.launch(ctx, name)
		record11(r, r12First, pl.col, ms, err)
		if err == nil {
			if err := pl.stopDelete(ctx, name); err != nil {
				logf("issue 12: %s: %v", pl.col, err)
			}
		}
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
	var bases []*baseline12
	if rc != nil && up[peerRunc] {
		bases = append(bases, &baseline12{col: col12BDir, rc: rc})
		b, err := newBtrfsBaseline(ctx, xcfg.scratch, tarball)
		if err != nil {
			record11(r, r12Delete, col12BBtrfs, 0, fmt.Errorf("btrfs for the baseline: %w", err))
		} else {
			bb = b
			bases = append(bases, &baseline12{col: col12BBtrfs, rc: rc, btrfs: b})
		}
	}
	if ctx.Err() != nil {
		return
	}
	watch := startLoadWatch()
	defer func() { r.load = watch.stop() }()

	issue12Launches(ctx, cfg, r, pools, bases)
	if ctx.Err() == nil {
		issue12Volumes(ctx, cfg, r, pools)
	}
}

// launch creates and starts name on the pool (profiles: none; devices:
// the root disk on the pool) and returns the time until the daemon says
// it runs.
func (p *pool12) launch(ctx context.Context, name string) (float64, error) {
	t0 := time.Now()
	op, err := p.c.CreateInstance(ctx, api.InstancesPost{
		InstancePut: api.InstancePut{
			Profiles: []string{},
			Devices:  map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": p.pool}},
		},
		Name:   name,
		Type:   "container",
		Source: api.InstanceSource{Type: "image", Alias: "busybox"},
		Start:  p.startInCreate,
	})
	if err == nil {
		err = op.Wait(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("create %s on %s: %w", name, p.pool, err)
	}
	if !p.startInCreate {
		if err := p.state(ctx, name, api.InstanceStatePut{Action: api.ActionStart, Timeout: -1}); err != nil {
			return 0, err
		}
	}
	return msSince(t0), nil
}

func (p *pool12) state(ctx context.Context, name string, req api.InstanceStatePut) error {
	op, err := p.c.UpdateInstanceState(ctx, name, req)
	if err == nil {
		err = op.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Action, name, err)
	}
	return nil
}

// remove deletes a stopped instance and returns the time until the
// daemon says it is gone.
func (p *pool12) remove(ctx context.Context, name string) (float64, error) {
	t0 := time.Now()
	op, err := p.c.DeleteInstance(ctx, name)
	if err == nil {
		err = op.Wait(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("delete %s: %w", name, err)
	}
	return msSince(t0), nil
}

// stopDelete forces name to stop and deletes it, untimed.
func (p *pool12) stopDelete(ctx context.Context, name string) error {
	if err := p.state(ctx, name, api.InstanceStatePut{Action: api.ActionStop, Force: true, Timeout: -1}); err != nil {
		return err
	}
	_, err := p.remove(ctx, name)
	return err
}

// apiDo sends one request through the SDK and, when the daemon answers
// with an operation, waits for it to end: the call as a client sees it.
func apiDo(ctx context.Context, c *client.Client, method, p string, body any) error {
	_, err := apiOp(ctx, c, method, p, body)
	return err
}

// apiOp is apiDo returning the finished operation (zero when the answer
// was synchronous), for its metadata.
func apiOp(ctx context.Context, c *client.Client, method, p string, body any) (api.Operation, error) {
	resp, _, err := c.Query(ctx, method, p, body, "")
	if err != nil {
		return api.Operation{}, fmt.Errorf("%s %s: %w", method, p, err)
	}
	return waitAsync(ctx, c, method+" "+p, resp)
}

// waitAsync waits for the operation an asynchronous answer names.
func waitAsync(ctx context.Context, c *client.Client, what string, resp *api.Response) (api.Operation, error) {
	if resp.Type != api.AsyncResponse {
		return api.Operation{}, nil
	}
	id := path.Base(resp.Operation)
	for {
		op, err := c.WaitOperation(ctx, id, -1)
		if err != nil {
			return api.Operation{}, fmt.Errorf("%s: wait for operation %s: %w", what, id, err)
		}
		if !op.StatusCode.IsFinal() {
			continue
		}
		if op.StatusCode != api.Success {
			return *op, fmt.Errorf("%s: operation %s: %s", what, op.Status, op.Err)
		}
		return *op, nil
	}
}

// baseline12 is what a delete must at least do, by hand: `runc delete`
// of a stopped container, then the removal of its root as the pool's
// driver has it (dir: the overlay's upper and work directories; btrfs:
// the snapshot the root is).
type baseline12 struct {
	col   string
	rc    *runcPeer
	btrfs *btrfsBaseline // nil: dir
}

// baselineTimes are a baseline delete's figures in ms.
type baselineTimes struct {
	runcDelete, removal float64
}

// deleteRound prepares a stopped container name (untimed: its root, runc
// create and start, kill, and on dir the unmount of the overlay, which a
// stopped instance no longer has mounted) and times its deletion.
func (b *baseline12) deleteRound(ctx context.Context, name string) (m baselineTimes, err error) {
	rc := b.rc
	bundle := rc.bundle(name)
	defer os.RemoveAll(bundle)
	var root string
	if b.btrfs == nil {
		if _, err := rc.launch(ctx, name); err != nil {
			return m, err
		}
		root = filepath.Join(bundle, "rootfs")
	} else {
		root, err = b.btrfs.snapshot(ctx, name)
		if err != nil {
			return m, err
		}
		defer b.btrfs.forget(name)
		if err := os.MkdirAll(bundle, 0o755); err != nil {
			return m, err
		}
		if err := rc.writeSpec(name, root, false); err != nil {
			return m, err
		}
		if _, err := rc.start(ctx, name); err != nil {
			return m, err
		}
	}
	if err := rc.kill(ctx, name); err != nil {
		_, _ = rc.runc(ctx, "delete", "--force", name)
		return m, err
	}
	if b.btrfs == nil {
		if err := unix.Unmount(root, 0); err != nil {
			_, _ = rc.runc(ctx, "delete", name)
			return m, fmt.Errorf("unmount %s: %w", root, err)
		}
	}

	t0 := time.Now()
	if _, err := rc.runc(ctx, "delete", name); err != nil {
		return m, err
	}
	m.runcDelete = msSince(t0)
	t1 := time.Now()
	if b.btrfs == nil {
		for _, d := range []string{"upper", "work"} {
			if err := os.RemoveAll(filepath.Join(bundle, d)); err != nil {
				return m, err
			}
		}
	} else if err := b.btrfs.remove(ctx, name); err != nil {
		return m, err
	}
	m.removal = msSince(t1)
	return m, nil
}

// btrfsBaseline is a btrfs of the harness's own, on a loop-backed file in
// the scratch directory (mount -o loop, which detaches the loop device at
// the unmount), with the image unpacked into a subvolume "base"; a root is
// a snapshot of it.
type btrfsBaseline struct {
	file, mnt string
	made      map[string]bool
}

func newBtrfsBaseline(ctx context.Context, scratch, tarball string) (*btrfsBaseline, error) {
	b := &btrfsBaseline{file: filepath.Join(scratch, "baseline-btrfs.img"), mnt: filepath.Join(scratch, "baseline-btrfs"), made: map[string]bool{}}
	f, err := os.Create(b.file)
	if err != nil {
		return nil, err
	}
	err = f.Truncate(1 << 30)
	f.Close()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(b.mnt, 0o711); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"mkfs.btrfs", "-q", b.file},
		{"mount", "-o", "loop", b.file, b.mnt},
		{"btrfs", "-q", "subvolume", "create", filepath.Join(b.mnt, "base")},
		{"tar", "-C", filepath.Join(b.mnt, "base"), "-xzf", tarball},
	} {
		if err := (command{}).run(ctx, args[0], args[1:]...); err != nil {
			b.teardown()
			return nil, err
		}
	}
	return b, nil
}

func (b *btrfsBaseline) path(name string) string { return filepath.Join(b.mnt, name) }

// snapshot makes name's root, a writable snapshot of base.
func (b *btrfsBaseline) snapshot(ctx context.Context, name string) (string, error) {
	if err := (command{}).run(ctx, "btrfs", "-q", "subvolume", "snapshot", filepath.Join(b.mnt, "base"), b.path(name)); err != nil {
		return "", err
	}
	b.made[name] = true
	return b.path(name), nil
}

// remove is the timed removal: `btrfs subvolume delete` of the snapshot.
func (b *btrfsBaseline) remove(ctx context.Context, name string) error {
	if err := (command{}).run(ctx, "btrfs", "-q", "subvolume", "delete", b.path(name)); err != nil {
		return err
	}
	delete(b.made, name)
	return nil
}

// forget removes name's snapshot if a round failed before its removal.
func (b *btrfsBaseline) forget(name string) {
	if !b.made[name] {
		return
	}
	if err := b.remove(context.Background(), name); err != nil {
		logf("issue 12: baseline btrfs: %v", err)
	}
}

func (b *btrfsBaseline) teardown() {
	if mountedAs(b.mnt, "btrfs") {
		if err := unix.Unmount(b.mnt, 0); err != nil {
			logf("issue 12: unmount %s: %v", b.mnt, err)
			_ = unix.Unmount(b.mnt, unix.MNT_DETACH)
		}
	}
	if err := os.Remove(b.file); err != nil && !errors.Is(err, os.ErrNotExist) {
		logf("issue 12: %v", err)
	}
}

// issue12Launches runs the launch and delete rounds: each round, in a
// fresh random order, every pool launches a container (timed), which is
// then stopped (untimed) and deleted (timed), and every baseline deletes
// a stopped runc container by hand (timed).
func issue12Launches(ctx context.Context, cfg *config, r *issue10Results, pools []*pool12, bases []*baseline12) {
	type variant func(ctx context.Context, rec *issue10Results, round int)
	var variants []variant
	for _, p := range pools {
		variants = append(variants, func(ctx context.Context, rec *issue10Results, round int) {
			name := fmt.Sprintf("pb-l%s%04d", p.driver[:1], round)
			ms, err := p.launch(ctx, name)
			record11(rec, r12Launch, p.col, ms, err)
			if err != nil {
				// Whatever is left of it goes untimed.
				_ = p.stopDelete(ctx, name)
				return
			}
			if err := p.state(ctx, name, api.InstanceStatePut{Action: api.ActionStop, Force: true, Timeout: -1}); err != nil {
				record11(rec, r12Delete, p.col, 0, err)
				return
			}
			ms, err = p.remove(ctx, name)
			record11(rec, r12Delete, p.col, ms, err)
		})
	}
	for _, b := range bases {
		variants = append(variants, func(ctx context.Context, rec *issue10Results, round int) {
			name := fmt.Sprintf("pb-d%s%04d", strings.TrimPrefix(b.col, "baseline, ")[:1], round)
			m, err := b.deleteRound(ctx, name)
			record11(rec, r12Delete, b.col, m.runcDelete+m.removal, err)
			if err == nil {
				record11(rec, r12DelRunc, b.col, m.runcDelete, nil)
				record11(rec, r12DelRemove, b.col, m.removal, nil)
			}
		})
	}
	rounds(ctx, "launch and delete", cfg.runs, len(variants), func(rec *issue10Results, round, i int) {
		variants[i](ctx, rec, round)
	}, r)
}

// rounds runs issue 12's warm-up rounds, then its recorded ones.
func rounds(ctx context.Context, what string, runs, variants int, do func(rec *issue10Results, round, i int), r *issue10Results) {
	randomRounds(ctx, "issue 12", what, warm12, runs, variants, do, r)
}

// randomRounds runs warm rounds, then runs recorded ones, each calling do
// once per variant in a fresh random order; warm-up figures go to a
// throw-away result set whose errors are logged.
func randomRounds(ctx context.Context, prefix, what string, warm, runs, variants int, do func(rec *issue10Results, round, i int), r *issue10Results) {
	logf("%s: %s, %d variants, %d warm-up and %d recorded rounds", prefix, what, variants, warm, runs)
	warmRes := newIssue10Results()
	for round := range warm + runs {
		if ctx.Err() != nil {
			return
		}
		rec := r
		if round < warm {
			rec = warmRes
		} else if (round-warm)%5 == 0 {
			logf("%s: %s round %d/%d", prefix, what, round-warm, runs)
		}
		for _, i := range rand.Perm(variants) {
			if ctx.Err() != nil {
				return
			}
			do(rec, round, i)
		}
	}
	for row, cols := range warmRes.errs {
		for col, e := range cols {
			logf("%s: warm-up: %s %s: %s", prefix, col, row, e)
		}
	}
}

// warm12 is the unrecorded rounds before each phase's recorded ones (the
// pools' first launches were made already).
const warm12 = 1

// issue12Volumes runs the volume rounds: on every pool, a running
// container (no NIC) gets a custom volume made and attached at /data,
// timed until /data is in its mount table; then the volume is detached
// and deleted (untimed). On LXD's pools the same again through the real
// lxc client (`lxc storage volume create` and `attach`).
func issue12Volumes(ctx context.Context, cfg *config, r *issue10Results, pools []*pool12) {
	type variant struct {
		p   *pool12
		cli bool
	}
	var variants []variant
	for _, p := range pools {
		if err := p.newVolContainer(ctx); err != nil {
			record11(r, r12VolMounted, p.col, 0, err)
			continue
		}
		variants = append(variants, variant{p: p})
		if p.lxc != nil {
			variants = append(variants, variant{p: p, cli: true})
		}
	}
	rounds(ctx, "custom volumes", cfg.runs, len(variants), func(rec *issue10Results, round, i int) {
		v := variants[i]
		vol := fmt.Sprintf("pbv%04d", round)
		if v.cli {
			vol = fmt.Sprintf("pbc%04d", round)
		}
		v.p.volumeRound(ctx, rec, vol, v.cli)
	}, r)
}

// newVolContainer launches a fresh running container for the volume
// rounds and reads its PID 1.
func (p *pool12) newVolContainer(ctx context.Context) error {
	p.seq++
	p.vol = fmt.Sprintf("pb-v%s%d", p.driver[:1], p.seq)
	if _, err := p.launch(ctx, p.vol); err != nil {
		return err
	}
	st, err := p.c.GetInstanceState(ctx, p.vol)
	if err != nil {
		return fmt.Errorf("state of %s: %w", p.vol, err)
	}
	if st.Pid <= 0 {
		return fmt.Errorf("%s runs with no PID (%d)", p.vol, st.Pid)
	}
	p.volPID = int(st.Pid)
	return nil
}

// volConfig is a new volume's config: a size where the pool can limit a
// filesystem volume (btrfs: a qgroup); hangard refuses a size on dir
// here (no project quotas) and LXD ignores it, so dir gets none.
func (p *pool12) volConfig() map[string]string {
	if p.driver == "btrfs" {
		return map[string]string{"size": volSize}
	}
	return map[string]string{}
}

// volumeRound makes vol, attaches it to p.vol at /data and waits for the
// mount inside (timed), then detaches and deletes it (untimed). cli: the
// same through `lxc storage volume create` and `attach`.
func (p *pool12) volumeRound(ctx context.Context, rec *issue10Results, vol string, cli bool) {
	t0 := time.Now()
	if cli {
		args := []string{"storage", "volume", "create", p.pool, vol}
		if s := p.volConfig()["size"]; s != "" {
			args = append(args, "size="+s)
		}
		_, err := p.lxc(ctx, args...)
		if err == nil {
			_, err = p.lxc(ctx, "storage", "volume", "attach", p.pool, vol, p.vol, volPath)
		}
		if err == nil {
			err = waitMounted(ctx, p.volPID, volPath)
		}
		record11(rec, r12VolCLI, p.col, msSince(t0), err)
	} else {
		err := apiDo(ctx, p.c, http.MethodPost, "/1.0/storage-pools/"+url.PathEscape(p.pool)+"/volumes/custom", map[string]any{
			"name": vol, "type": "custom", "content_type": "filesystem", "config": p.volConfig(),
		})
		record11(rec, r12VolCreate, p.col, msSince(t0), err)
		if err != nil {
			record11(rec, r12VolMounted, p.col, 0, err)
			return
		}
		t1 := time.Now()
		err = p.c.PatchInstance(ctx, p.vol, map[string]any{"devices": map[string]map[string]string{
			volDevice: {"type": "disk", "pool": p.pool, "source": vol, "path": volPath},
		}}, "")
		if err != nil {
			err = fmt.Errorf("PATCH %s devices (attach %s): %w", p.vol, vol, err)
		}
		record11(rec, r12VolAttach, p.col, msSince(t1), err)
		if err == nil {
			err = waitMounted(ctx, p.volPID, volPath)
		}
		record11(rec, r12VolMounted, p.col, msSince(t0), err)
	}
	p.dropVolume(ctx, vol)
}

// dropVolume detaches vol from p.vol (PUT without its device, as lxc
// storage volume detach does) and deletes it; when the detach fails the
// container is replaced, so that the next round finds /data free.
func (p *pool12) dropVolume(ctx context.Context, vol string) {
	if err := p.detach(ctx, vol); err != nil {
		logf("issue 12: %s: detach %s from %s: %v; replacing the container", p.col, vol, p.vol, err)
		if err := p.stopDelete(ctx, p.vol); err != nil {
			logf("issue 12: %s: %v", p.col, err)
		}
		if err := p.newVolContainer(ctx); err != nil {
			logf("issue 12: %s: %v", p.col, err)
		}
	}
	err := apiDo(ctx, p.c, http.MethodDelete, "/1.0/storage-pools/"+url.PathEscape(p.pool)+"/volumes/custom/"+url.PathEscape(vol), nil)
	if err != nil && !strings.Contains(err.Error(), "not found") {
		logf("issue 12: %s: %v", p.col, err)
	}
}

// detach removes whichever device of p.vol has vol as its source.
func (p *pool12) detach(ctx context.Context, vol string) error {
	inst, etag, err := p.c.GetInstance(ctx, p.vol)
	if err != nil {
		return err
	}
	put := inst.InstancePut
	found := false
	for name, d := range put.Devices {
		if d["type"] == "disk" && d["source"] == vol {
			delete(put.Devices, name)
			found = true
		}
	}
	if !found {
		return nil
	}
	op, err := p.c.UpdateInstance(ctx, p.vol, put, etag)
	if err == nil {
		err = op.Wait(ctx)
	}
	return err
}

// cleanup deletes the pool's instances and custom volumes, then the pool
// itself unless it is the daemon's default.
func (p *pool12) cleanup(ctx context.Context) {
	insts, err := p.c.GetInstances(ctx)
	if err != nil {
		logf("issue 12: %s: %v", p.col, err)
		return
	}
	for _, inst := range insts {
		if inst.ExpandedDevices["root"]["pool"] != p.pool && inst.Devices["root"]["pool"] != p.pool {
			continue
		}
		if inst.StatusCode != api.Stopped {
			_ = p.state(ctx, inst.Name, api.InstanceStatePut{Action: api.ActionStop, Force: true, Timeout: -1})
		}
		if _, err := p.remove(ctx, inst.Name); err != nil {
			logf("issue 12: %s: %v", p.col, err)
		}
	}
	var vols []string
	resp, _, err := p.c.Query(ctx, http.MethodGet, "/1.0/storage-pools/"+url.PathEscape(p.pool)+"/volumes/custom", nil, "")
	if err == nil {
		err = json.Unmarshal(resp.Metadata, &vols)
	}
	if err != nil {
		logf("issue 12: %s: custom volumes: %v", p.col, err)
	}
	for _, v := range vols {
		if err := apiDo(ctx, p.c, http.MethodDelete, v, nil); err != nil {
			logf("issue 12: %s: %v", p.col, err)
		}
	}
	if p.pool == dirPool {
		return
	}
	if err := apiDo(ctx, p.c, http.MethodDelete, "/1.0/storage-pools/"+url.PathEscape(p.pool), nil); err != nil {
		logf("issue 12: %s: %v", p.col, err)
	}
}

// waitMounted polls pid's mount table until a mount sits at mp.
func waitMounted(ctx context.Context, pid int, mp string) error {
	deadline := time.Now().Add(mountTimeout)
	for {
		f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
		if err != nil {
			return fmt.Errorf("mount table of PID %d: %w", pid, err)
		}
		ok, err := hasMountPoint(f, mp)
		f.Close()
		if err != nil {
			return fmt.Errorf("mount table of PID %d: %w", pid, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no mount at %s in PID %d's mount table within %s", mp, pid, mountTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Microsecond):
		}
	}
}

// hasMountPoint reports whether a mountinfo table lists a mount at mp
// (the fifth field, as the reading process's root sees it).
func hasMountPoint(r io.Reader, mp string) (bool, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && unescapeMount(fields[4]) == mp {
			return true, nil
		}
	}
	return false, sc.Err()
}

// detachLoopsUnder detaches the loop devices whose backing file lies
// under dir: those a daemon or a mount of ours could not undo.
func detachLoopsUnder(dir string) {
	devs, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	backing := map[string]string{}
	for _, f := range devs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		backing["/dev/"+filepath.Base(filepath.Dir(filepath.Dir(f)))] = string(b)
	}
	for _, dev := range loopsUnder(backing, dir) {
		logf("issue 12: detaching left-over loop device %s (%s)", dev, strings.TrimSpace(backing[dev]))
		if err := exec.Command("losetup", "-d", dev).Run(); err != nil {
			logf("issue 12: losetup -d %s: %v", dev, err)
		}
	}
}

// loopsUnder picks, from loop devices and their backing files (as
// /sys/block/loopN/loop/backing_file gives them: a newline, maybe
// " (deleted)"), the devices whose file lies under dir, sorted.
func loopsUnder(backing map[string]string, dir string) []string {
	dir = filepath.Clean(dir)
	var out []string
	for dev, f := range backing {
		f = strings.TrimSuffix(strings.TrimSpace(f), " (deleted)")
		if strings.HasPrefix(f, dir+"/") {
			out = append(out, dev)
		}
	}
	slices.Sort(out)
	return out
}

// ensureBtrfsTools installs btrfs-progs when its tools are missing: the
// baseline and LXD's btrfs pool need them.
func ensureBtrfsTools(ctx context.Context, cfg *config) error {
	miss := missingBinaries([]string{"btrfs", "mkfs.btrfs", "losetup"})
	if len(miss) == 0 {
		return nil
	}
	if cfg.noInstall {
		return fmt.Errorf("issue 12 needs %s (apt-get install btrfs-progs util-linux), not installed and --no-install given", strings.Join(miss, ", "))
	}
	logf("installing btrfs-progs")
	return (command{timeout: 10 * time.Minute}).run(ctx, "apt-get", "install", "-y", "btrfs-progs")
}

// runIssue12 is the whole issue-12 run after the builds.
func runIssue12(ctx context.Context, cfg *config, res *results, tarball, bins string, start time.Time) error {
	if err := ensureBtrfsTools(ctx, cfg); err != nil {
		return err
	}
	r := newIssue10Results()
	measureIssue12(ctx, cfg, res, r, tarball, bins)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted; everything created was torn down, no report written")
	}
	res.elapsed = time.Since(start)
	md := renderIssue12(cfg, res, r)
	if err := writeFile(cfg.out, []byte(md)); err != nil {
		return err
	}
	fmt.Print(md)
	logf("report written to %s", cfg.out)
	return nil
}

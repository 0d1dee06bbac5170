package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// The speed figures issue 11 (networking) sets targets for, in one run
// (bench/run --issue11): hangard with its default NIC beside hangard with
// none, podman on its default bridge network (netavark) and LXD 5.0 with
// its bridge NIC. As in the issue-10 run, every peer is up at once and the
// launch and start measurements are interleaved in rounds of random order,
// so that other work on the shared machine weighs on all alike.
//
// hangard runs in a network namespace of the harness's own (hangard.go):
// its "host side" is that namespace, and the harness's connections to its
// containers start there. podman and LXD use bridges in the machine's own
// namespace, as a user has them.
//
// Every container runs netsink (bench/cmd/netsink), started by the image's
// init: a TCP connect to its probe port is "reachable", its sink port
// takes the load generator's bytes.

// Columns of the issue-11 report.
const col11NoNIC = "hangard, no NIC"

// Row keys of the issue-11 report.
const (
	r11Launch         = "launch"
	r11LaunchReach    = "launch-reach"
	r11Start          = "start"
	r11StartReach     = "start-reach"
	r11StartReachPort = "start-reach-port"
	r11List1          = "list-1"
	r11ListN          = "list-n"
	r11TputDirect     = "tput-direct"
	r11TputProxy      = "tput-proxy"
	r11TputNAT        = "tput-nat"
)

// The ports netsink listens on in every container, and the host-side ports
// of the forwards in front of them.
const (
	probePort     = 8080
	sinkPort      = 5001
	probeHostPort = 18080 // pb-st's probe port on the host's 127.0.0.1: podman's published port, hangard's proxy device
	proxyPort     = 15001 // hangard proxy device, nat=false, on 127.0.0.1
	natPort       = 15002 // hangard proxy device, nat=true, on the bridge's address
)

// startInstance is the container of the start rounds and the throughput
// figures, on hangard and podman.
const startInstance = "pb-st"

// Throughput: tputRuns recorded rounds (after one unrecorded) of the three
// paths in random order, each one connection pushing bytes for tputTime.
const (
	tputRuns  = 5
	tputTime  = 2 * time.Second
	tputChunk = 256 << 10
)

// reachTimeout bounds the wait for a container's port.
const reachTimeout = 30 * time.Second

// measureIssue11 sets the peers up side by side and takes the figures.
func measureIssue11(ctx context.Context, cfg *config, res *results, r *issue10Results, tarball, bins string) {
	xcfg := *cfg
	xcfg.scratch = filepath.Join(cfg.scratch, "issue11")
	if err := os.MkdirAll(xcfg.scratch, 0o711); err != nil {
		r.note("scratch: %v", err)
		return
	}
	h := newHangardPeer(&xcfg, tarball, bins)
	var pm *podmanPeer
	var lx *lxdPeer
	peers := []peer{h}
	if slices.Contains(cfg.peers, peerPodman) && res.skipped[peerPodman] == "" {
		pm = newPodmanPeer(&xcfg, tarball)
		pm.network = "" // podman's default bridge network, netavark
		peers = append(peers, pm)
	} else if reason := res.skipped[peerPodman]; reason != "" {
		r.note("podman: %s", reason)
	}
	if slices.Contains(cfg.peers, peerLXD) && res.skipped[peerLXD] == "" {
		lx = newLXDPeer(&xcfg, tarball)
		lx.userBridge = true
		peers = append(peers, lx)
	} else if reason := res.skipped[peerLXD]; reason != "" {
		r.note("LXD: %s", reason)
	}

	// Set up every peer; each is torn down once, last set up first.
	down := map[string]bool{}
	var tried []peer
	tearDown := func(p peer) {
		if down[p.name()] {
			return
		}
		down[p.name()] = true
		logf("issue 11: %s: tearing down", p.name())
		tctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		p.teardown(tctx)
		cancel()
	}
	defer func() {
		for _, p := range slices.Backward(tried) {
			tearDown(p)
		}
	}()
	up := setUpPeers(ctx, "issue 11", peers, r, res, &tried)
	if ctx.Err() != nil {
		return
	}
	if !up[peerHangard] {
		return
	}
	watch := startLoadWatch()
	defer func() { r.load = watch.stop() }()

	// pb-st runs on hangard and podman from here on: the start rounds'
	// container, and one running container on each bridge during the
	// launch rounds, as on a machine in use.
	var ways []startWay
	hst, hport, err := h.prepareStart(ctx)
	if err != nil {
		record11(r, r11StartReach, peerHangard, 0, err)
	} else {
		ways = append(ways,
			startWay{col: peerHangard, netns: h.netns, addr: hst, retRow: r11Start, reachRow: r11StartReach, stop: h.stop, start: h.start},
			startWay{col: peerHangard, netns: h.netns, addr: hport, reachRow: r11StartReachPort, stop: h.stop, start: h.start})
	}
	if pm != nil && up[peerPodman] {
		if pport, err := pm.prepareStart(ctx); err != nil {
			record11(r, r11StartReachPort, peerPodman, 0, err)
		} else {
			ways = append(ways, startWay{col: peerPodman, addr: pport, retRow: r11Start, reachRow: r11StartReachPort, stop: pm.stop, start: pm.start})
		}
	}

	issue11Launches(ctx, cfg, r, h, pick(up[peerPodman], pm), pick(up[peerLXD], lx))
	if ctx.Err() == nil {
		issue11Starts(ctx, cfg, r, ways)
	}
	// The rest is hangard's alone: the others leave the machine.
	for _, p := range slices.Backward(tried) {
		if p.name() != peerHangard {
			tearDown(p)
		}
	}
	if ctx.Err() == nil && hst != "" {
		issue11Throughput(ctx, r, h, hst)
	}
	if ctx.Err() == nil {
		issue11List(ctx, cfg, r, h)
	}
}

// pick is p when ok, else nil: a peer that is not up takes no part.
func pick[P any](ok bool, p *P) *P {
	if !ok {
		return nil
	}
	return p
}

// issue11Launches runs the launch rounds: each round launches one
// container per variant in a fresh random order, waits for its port where
// the variant has an address, and deletes it (untimed).
func issue11Launches(ctx context.Context, cfg *config, r *issue10Results, h *hangardPeer, pm *podmanPeer, lx *lxdPeer) {
	type variant func(ctx context.Context, rec *issue10Results, name string)
	variants := []variant{
		func(ctx context.Context, rec *issue10Results, name string) {
			m := h.launchReach(ctx, name)
			record11(rec, r11Launch, peerHangard, m.ret, m.err)
			if m.err == nil {
				record11(rec, r11LaunchReach, peerHangard, m.reach, m.reachErr)
			}
			h.forget(ctx, name)
		},
		func(ctx context.Context, rec *issue10Results, name string) {
			// Its own name: the NIC variant's container of this round
			// may have just gone.
			name = "pb-x" + strings.TrimPrefix(name, "pb-l")
			ms, err := h.cli(ctx, "launch", "busybox", name, "--no-profiles")
			record11(rec, r11Launch, col11NoNIC, ms, err)
			h.forget(ctx, name)
		},
	}
	if pm != nil {
		variants = append(variants, func(ctx context.Context, rec *issue10Results, name string) {
			m := pm.launchReach(ctx, name)
			record11(rec, r11Launch, peerPodman, m.ret, m.err)
			if m.err == nil {
				record11(rec, r11LaunchReach, peerPodman, m.reach, m.reachErr)
			}
			if _, err := pm.podman(ctx, "rm", "-f", "-t", "0", name); err != nil {
				logf("issue 11: %v", err)
			}
		})
	}
	if lx != nil {
		variants = append(variants, func(ctx context.Context, rec *issue10Results, name string) {
			ms, err := lx.launch(ctx, name)
			record11(rec, r11Launch, peerLXD, ms, err)
			if _, err := lx.lxc(ctx, "delete", "--force", name); err != nil {
				logf("issue 11: %v", err)
			}
		})
	}
	logf("issue 11: launches, %d variants, %d warm-up and %d recorded rounds", len(variants), execWarmRounds, cfg.runs)
	warm := newIssue10Results()
	for round := range execWarmRounds + cfg.runs {
		if ctx.Err() != nil {
			return
		}
		rec := r
		if round < execWarmRounds {
			rec = warm
		} else if (round-execWarmRounds)%5 == 0 {
			logf("issue 11: launch round %d/%d", round-execWarmRounds, cfg.runs)
		}
		name := fmt.Sprintf("pb-l%04d", round)
		for _, i := range rand.Perm(len(variants)) {
			variants[i](ctx, rec, name)
		}
	}
	logWarmErrors(warm)
}

// startWay is one way to take the start figures: a peer's start of pb-st
// and the address its port is reached at from the host side.
type startWay struct {
	col      string
	netns    string // where to connect from ("": the machine's namespace)
	addr     string
	reachRow string
	retRow   string // "": the command's time is not recorded
	stop     func(context.Context, string) (float64, error)
	start    func(context.Context, string) (float64, error)
}

// issue11Starts runs the start rounds on pb-st: stop it (untimed), then
// start it while connecting to its port from the host side, from the same
// instant, until a connect succeeds.
func issue11Starts(ctx context.Context, cfg *config, r *issue10Results, ways []startWay) {
	if len(ways) == 0 {
		return
	}
	logf("issue 11: starts, %d variants, %d warm-up and %d recorded rounds", len(ways), execWarmRounds, cfg.runs)
	warm := newIssue10Results()
	for round := range execWarmRounds + cfg.runs {
		if ctx.Err() != nil {
			return
		}
		rec := r
		if round < execWarmRounds {
			rec = warm
		}
		for _, i := range rand.Perm(len(ways)) {
			w := ways[i]
			if _, err := w.stop(ctx, startInstance); err != nil {
				record11(rec, w.reachRow, w.col, 0, err)
				continue
			}
			m := startReach(ctx, w.netns, w.addr, func(ctx context.Context) (float64, error) { return w.start(ctx, startInstance) })
			if w.retRow != "" {
				record11(rec, w.retRow, w.col, m.ret, m.err)
			}
			if m.err == nil {
				record11(rec, w.reachRow, w.col, m.reach, m.reachErr)
			} else {
				record11(rec, w.reachRow, w.col, 0, m.err)
			}
		}
	}
	logWarmErrors(warm)
}

func logWarmErrors(warm *issue10Results) {
	for row, cols := range warm.errs {
		for col, e := range cols {
			logf("issue 11: warm-up: %s %s: %s", col, row, e)
		}
	}
}

// startReach runs start and, from the same instant, connects to addr from
// the namespace netns until a connect succeeds: the command's time and
// the time to the first connect, in ms.
func startReach(ctx context.Context, netns, addr string, start func(context.Context) (float64, error)) (m reachTimes) {
	t0 := time.Now()
	type result struct {
		at  time.Time
		err error
	}
	done := make(chan result, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		at, err := waitConnect(wctx, netns, addr, reachTimeout)
		done <- result{at, err}
	}()
	if m.ret, m.err = start(ctx); m.err != nil {
		cancel()
		<-done
		return m
	}
	res := <-done
	m.reach, m.reachErr = float64(res.at.Sub(t0).Microseconds())/1000, res.err
	return m
}

// reachTimes are a launch's figures in ms: the command's time (err: it
// failed) and the time to the first connect to the container's port
// (reachErr: none came).
type reachTimes struct {
	ret, reach    float64
	err, reachErr error
}

// launchReach launches name with the default profile's NIC, then reads its
// address from the API and connects to its probe port from the host side.
func (h *hangardPeer) launchReach(ctx context.Context, name string) (m reachTimes) {
	t0 := time.Now()
	if m.ret, m.err = h.launch(ctx, name); m.err != nil {
		return m
	}
	var ip string
	for ip == "" {
		if ip, m.reachErr = h.address(ctx, name); m.reachErr != nil {
			return m
		}
		if ip == "" {
			if time.Since(t0) > reachTimeout {
				m.reachErr = fmt.Errorf("%s: no IPv4 address on eth0 within %s", name, reachTimeout)
				return m
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	at, err := waitConnect(ctx, h.netns, net.JoinHostPort(ip, fmt.Sprint(probePort)), reachTimeout)
	m.reach, m.reachErr = float64(at.Sub(t0).Microseconds())/1000, err
	return m
}

// address is an instance's global IPv4 address on eth0 from the API, ""
// when it has none (yet).
func (h *hangardPeer) address(ctx context.Context, name string) (string, error) {
	st, err := h.c.GetInstanceState(ctx, name)
	if err != nil {
		return "", fmt.Errorf("state of %s: %w", name, err)
	}
	for _, a := range st.Network["eth0"].Addresses {
		if a.Family == "inet" && a.Scope == "global" {
			return a.Address, nil
		}
	}
	return "", nil
}

// forget deletes an instance of a round, untimed.
func (h *hangardPeer) forget(ctx context.Context, name string) {
	if _, err := h.cli(ctx, "delete", "--force", name); err != nil {
		logf("issue 11: %v", err)
	}
}

// prepareStart launches pb-st with a proxy device (nat=false) from
// 127.0.0.1:18080 to its probe port, and returns the two addresses its
// probe port answers on from the host side: its own (its lease keeps it
// across restarts) and the proxy's.
func (h *hangardPeer) prepareStart(ctx context.Context) (direct, proxied string, err error) {
	if _, err := h.launch(ctx, startInstance); err != nil {
		return "", "", err
	}
	ip, err := h.address(ctx, startInstance)
	if err == nil && ip == "" {
		err = fmt.Errorf("%s has no IPv4 address on eth0", startInstance)
	}
	if err != nil {
		return "", "", err
	}
	if _, err := h.cli(ctx, "config", "device", "add", startInstance, "pbprobe", "proxy",
		fmt.Sprintf("listen=tcp:127.0.0.1:%d", probeHostPort), fmt.Sprintf("connect=tcp:127.0.0.1:%d", probePort)); err != nil {
		return "", "", err
	}
	direct = net.JoinHostPort(ip, fmt.Sprint(probePort))
	proxied = net.JoinHostPort("127.0.0.1", fmt.Sprint(probeHostPort))
	for _, a := range []string{direct, proxied} {
		if _, err := waitConnect(ctx, h.netns, a, reachTimeout); err != nil {
			return "", "", err
		}
	}
	return direct, proxied, nil
}

// launchReach runs podman run -d, then reads the container's address from
// the REST service (as hangard's is read from its API) and connects to its
// probe port.
func (p *podmanPeer) launchReach(ctx context.Context, name string) (m reachTimes) {
	t0 := time.Now()
	if m.ret, m.err = p.launch(ctx, name); m.err != nil {
		return m
	}
	var ip string
	if ip, m.reachErr = p.address(ctx, name); m.reachErr != nil {
		return m
	}
	at, err := waitConnect(ctx, "", net.JoinHostPort(ip, fmt.Sprint(probePort)), reachTimeout)
	m.reach, m.reachErr = float64(at.Sub(t0).Microseconds())/1000, err
	return m
}

// address is a container's IPv4 address from the libpod REST API.
func (p *podmanPeer) address(ctx context.Context, name string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, podmanAPI+"/containers/"+name+"/json", nil)
	if err != nil {
		return "", err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("inspect %s: %s: %s", name, resp.Status, tail(string(body), 200))
	}
	return podmanAddress(body)
}

// podmanAddress reads the IPv4 address out of a libpod container inspect:
// the first network's that has one.
func podmanAddress(body []byte) (string, error) {
	var in struct {
		NetworkSettings struct {
			IPAddress string
			Networks  map[string]struct{ IPAddress string }
		}
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return "", fmt.Errorf("inspect: %w", err)
	}
	names := make([]string, 0, len(in.NetworkSettings.Networks))
	for n := range in.NetworkSettings.Networks {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if ip := in.NetworkSettings.Networks[n].IPAddress; ip != "" {
			return ip, nil
		}
	}
	if ip := in.NetworkSettings.IPAddress; ip != "" {
		return ip, nil
	}
	return "", errors.New("inspect: the container has no IPv4 address")
}

// prepareStart runs pb-st with its probe port published on 127.0.0.1 (the
// way to reach a podman container's port across restarts: its address
// changes at every start) and returns that address.
func (p *podmanPeer) prepareStart(ctx context.Context) (string, error) {
	args := slices.Concat([]string{"run", "-d", "--pull=never"}, p.networkArgs(),
		[]string{"-p", fmt.Sprintf("127.0.0.1:%d:%d", probeHostPort, probePort), "--name", startInstance, podmanImage})
	if _, err := p.podman(ctx, args...); err != nil {
		return "", err
	}
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(probeHostPort))
	if _, err := waitConnect(ctx, "", addr, reachTimeout); err != nil {
		return "", err
	}
	return addr, nil
}

// issue11Throughput pushes bytes into pb-st's sink three ways from the
// host side (hangard's namespace): straight to its address, through a
// proxy device with nat=false (hangard's forwarder, into the container's
// loopback) and through one with nat=true (nftables DNAT, on the bridge's
// address).
func issue11Throughput(ctx context.Context, r *issue10Results, h *hangardPeer, probeAddr string) {
	ip, _, _ := net.SplitHostPort(probeAddr)
	brp, _, err := h.c.GetNetwork(ctx, "hangarbr0")
	if err != nil {
		record11(r, r11TputNAT, peerHangard, 0, err)
		return
	}
	gw, _, _ := strings.Cut(brp.Config["ipv4.address"], "/")
	if gw == "" {
		record11(r, r11TputNAT, peerHangard, 0, fmt.Errorf("hangarbr0 has no ipv4.address: %v", brp.Config))
		return
	}
	paths := []struct{ row, addr, dev string }{
		{r11TputDirect, net.JoinHostPort(ip, fmt.Sprint(sinkPort)), ""},
		{r11TputProxy, net.JoinHostPort("127.0.0.1", fmt.Sprint(proxyPort)),
			fmt.Sprintf("listen=tcp:127.0.0.1:%d connect=tcp:127.0.0.1:%d", proxyPort, sinkPort)},
		{r11TputNAT, net.JoinHostPort(gw, fmt.Sprint(natPort)),
			fmt.Sprintf("listen=tcp:%s:%d connect=tcp:0.0.0.0:%d nat=true", gw, natPort, sinkPort)},
	}
	var ready []int
	for i, p := range paths {
		if p.dev != "" {
			args := append([]string{"config", "device", "add", startInstance, "pb" + p.row, "proxy"}, strings.Fields(p.dev)...)
			if _, err := h.cli(ctx, args...); err != nil {
				record11(r, p.row, peerHangard, 0, err)
				continue
			}
		}
		ready = append(ready, i)
	}
	logf("issue 11: throughput, %d paths, 1 warm-up and %d recorded rounds of %s each", len(ready), tputRuns, tputTime)
	for round := range 1 + tputRuns {
		for _, j := range rand.Perm(len(ready)) {
			if ctx.Err() != nil {
				return
			}
			p := paths[ready[j]]
			mbs, err := push(ctx, h.netns, p.addr, tputTime)
			if round > 0 {
				record11(r, p.row, peerHangard, mbs, err)
			} else if err != nil {
				logf("issue 11: warm-up: %s: %v", p.row, err)
			}
		}
	}
}

// push is the load generator: one TCP connection from the namespace netns
// to a netsink sink at addr, written to for d, then closed for writing;
// the sink answers with the bytes it read. It returns MB/s (10^6 bytes)
// over the time from the connect to that answer.
func push(ctx context.Context, netns, addr string, d time.Duration) (float64, error) {
	var conn net.Conn
	err := inNetns(netns, func() (err error) {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err = (&net.Dialer{}).DialContext(dctx, "tcp", addr)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("push to %s: %w", addr, err)
	}
	defer conn.Close()
	buf := make([]byte, tputChunk)
	t0 := time.Now()
	var sent int64
	for time.Since(t0) < d {
		n, err := conn.Write(buf)
		sent += int64(n)
		if err != nil {
			return 0, fmt.Errorf("push to %s: %w", addr, err)
		}
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, fmt.Errorf("push to %s: %w", addr, err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got [8]byte
	if _, err := io.ReadFull(conn, got[:]); err != nil {
		return 0, fmt.Errorf("push to %s: no byte count from the sink: %w", addr, err)
	}
	secs := time.Since(t0).Seconds()
	if n := int64(binary.BigEndian.Uint64(got[:])); n != sent {
		return 0, fmt.Errorf("push to %s: sent %d bytes, the sink read %d", addr, sent, n)
	}
	return float64(sent) / 1e6 / secs, nil
}

// issue11List times GET /1.0/instances?recursion=2 with pb-st running,
// then with cfg.running running containers with NICs.
func issue11List(ctx context.Context, cfg *config, r *issue10Results, h *hangardPeer) {
	get := func(row string) {
		urls, hc := h.rest()
		url := urls[restRec2]
		for i := range execWarmRounds + cfg.listRuns {
			if ctx.Err() != nil {
				return
			}
			t0 := time.Now()
			err := httpGet(ctx, hc, url)
			if i >= execWarmRounds {
				record11(r, row, peerHangard, msSince(t0), err)
			}
			if err != nil {
				return
			}
		}
	}
	if _, running, err := h.count(ctx); err != nil || running != 1 {
		record11(r, r11List1, peerHangard, 0, fmt.Errorf("%d running where 1 was expected (%v)", running, err))
	} else {
		get(r11List1)
	}
	_, running, err := h.count(ctx)
	if err != nil {
		record11(r, r11ListN, peerHangard, 0, err)
		return
	}
	logf("issue 11: hangard: starting %d instances", cfg.running-running)
	t0 := time.Now()
	if err := h.createMany(ctx, names("pb-r", 0, cfg.running-running), true); err != nil {
		record11(r, r11ListN, peerHangard, 0, fmt.Errorf("starting %d instances: %w", cfg.running-running, err))
		return
	}
	if all, run, err := h.count(ctx); err != nil || all != cfg.running || run != cfg.running {
		record11(r, r11ListN, peerHangard, 0, fmt.Errorf("%d instances (%d running) where %d running were made (%v)", all, run, cfg.running, err))
		return
	}
	logf("issue 11: hangard: %d running (%.1fs)", cfg.running, time.Since(t0).Seconds())
	get(r11ListN)
}

// buildNetsink builds bench/cmd/netsink static (CGO_ENABLED=0: the
// containers have no libc) and returns its path.
func buildNetsink(ctx context.Context, cfg *config) (string, error) {
	bin := filepath.Join(cfg.scratch, "netsink")
	if err := (command{dir: cfg.repo, env: []string{"CGO_ENABLED=0"}, timeout: 5 * time.Minute}).run(ctx, "go", "build", "-o", bin, "./bench/cmd/netsink"); err != nil {
		return "", err
	}
	return bin, nil
}

// withNetsink writes to dst a copy of the root filesystem tarball src with
// netsink as /bin/netsink and a line in /etc/inittab that keeps it running.
func withNetsink(src, dst, sinkBin string) error {
	sink, err := os.ReadFile(sinkBin)
	if err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if err := addNetsink(in, out, sink); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", src, err)
	}
	return out.Close()
}

// inittabLine starts netsink at boot and again if it ends.
const inittabLine = "::respawn:/bin/netsink\n"

// addNetsink copies the gzipped tarball r to w, adding bin/netsink (sink)
// and inittabLine to etc/inittab, which must be there.
func addNetsink(r io.Reader, w io.Writer, sink []byte) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	prefix := ""
	sawInittab := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if strings.HasPrefix(hdr.Name, "./") {
			prefix = "./"
		}
		switch {
		case name == "bin/netsink":
			return errors.New("bin/netsink is already there")
		case name == "etc/inittab" && hdr.Typeflag == tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			if len(data) > 0 && data[len(data)-1] != '\n' {
				data = append(data, '\n')
			}
			data = append(data, inittabLine...)
			hdr.Size = int64(len(data))
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if _, err := tw.Write(data); err != nil {
				return err
			}
			sawInittab = true
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	if !sawInittab {
		return errors.New("no etc/inittab to start netsink from")
	}
	hdr := &tar.Header{Name: prefix + "bin/netsink", Mode: 0o755, Size: int64(len(sink)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := tw.Write(sink); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// waitConnect connects to addr (TCP) from the namespace netns ("" for
// ours) until a connect succeeds and reads netsink's probe byte, and
// returns when it did. Five pollers,
// started 10 ms apart, each try in a loop: a refused or unreachable
// attempt is retried after 2 ms; an attempt with no answer (a SYN to an
// address that is not up yet, which the kernel would resend only after a
// second) is given up after 50 ms. So a new attempt starts at least every
// 10 ms or so whatever the failures look like, while a slow but working
// connect on a loaded machine still has 50 ms to finish.
func waitConnect(ctx context.Context, netns, addr string, timeout time.Duration) (time.Time, error) {
	const (
		pollers = 5
		stagger = 10 * time.Millisecond
		attempt = 50 * time.Millisecond
	)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		mu   sync.Mutex
		at   time.Time
		last error
		wg   sync.WaitGroup
	)
	for i := range pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := inNetns(netns, func() error {
				select {
				case <-time.After(time.Duration(i) * stagger):
				case <-ctx.Done():
					return nil
				}
				for ctx.Err() == nil {
					actx, acancel := context.WithTimeout(ctx, attempt)
					c, err := (&net.Dialer{}).DialContext(actx, "tcp", addr)
					timedOut := actx.Err() != nil
					acancel()
					if err == nil {
						err = readProbe(c)
					}
					if err == nil {
						now := time.Now()
						mu.Lock()
						if at.IsZero() || now.Before(at) {
							at = now
						}
						mu.Unlock()
						cancel()
						return nil
					}
					mu.Lock()
					last = err
					mu.Unlock()
					if !timedOut {
						time.Sleep(2 * time.Millisecond)
					}
				}
				return nil
			})
			if err != nil {
				mu.Lock()
				last = err
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if at.IsZero() {
		return at, fmt.Errorf("no TCP connect to %s within %s: %v", addr, timeout, last)
	}
	return at, nil
}

// runIssue11 is the whole issue-11 run after the builds: the image with
// netsink, the measurements, the report.
func runIssue11(ctx context.Context, cfg *config, res *results, tarball, bins string, start time.Time) error {
	sink, err := buildNetsink(ctx, cfg)
	if err != nil {
		return err
	}
	web := filepath.Join(cfg.scratch, "busybox-netsink.tar.gz")
	if err := withNetsink(tarball, web, sink); err != nil {
		return err
	}
	r := newIssue10Results()
	measureIssue11(ctx, cfg, res, r, web, bins)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted; everything created was torn down, no report written")
	}
	res.elapsed = time.Since(start)
	md := renderIssue11(cfg, res, r)
	if err := writeFile(cfg.out, []byte(md)); err != nil {
		return err
	}
	fmt.Print(md)
	logf("report written to %s", cfg.out)
	return nil
}

// readProbe reads netsink's probe byte from c and closes c: a forwarder
// accepts before it knows whether the container answers, and closes with
// nothing when it does not.
func readProbe(c net.Conn) error {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if b[0] != '!' {
		return fmt.Errorf("probe: read %q, want %q", b[0], '!')
	}
	return nil
}

// record11 adds a figure (or its failure) and counts it, so that the
// report can say how many of a cell's runs failed.
func record11(r *issue10Results, row, col string, v float64, err error) {
	r.add(row, col, v, err)
	failed := 0
	if err != nil {
		failed = 1
	}
	r.count(row, col, 1, failed)
}

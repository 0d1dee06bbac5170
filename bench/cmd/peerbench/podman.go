package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const podmanImage = "localhost/pbench-busybox:latest"

// podmanAPI is the libpod REST API's path prefix; the service accepts any
// 4.x version here.
const podmanAPI = "http://d/v4.0.0/libpod"

// podmanPeer is podman 4.3 from Debian with its own configuration and
// storage in the scratch directory: runtime runc, cgroupfs, no network.
type podmanPeer struct {
	cfg      *config
	tarball  string
	dir      string
	sock     string
	env      []string
	svc      *daemon
	hc       *http.Client
	evNames  []string
	cgBefore []string
	// network is the --network of its containers: "none" unless a run
	// wants podman's default bridge (netavark), "".
	network string
	// tablesBefore are the nftables tables there were before set-up: the
	// ones netavark leaves behind (its iptables-nft chains) go at the end.
	tablesBefore []string
}

func newPodmanPeer(cfg *config, tarball string) *podmanPeer {
	dir := filepath.Join(cfg.scratch, "podman")
	return &podmanPeer{cfg: cfg, tarball: tarball, dir: dir, sock: filepath.Join(dir, "podman.sock"), network: "none"}
}

// networkArgs are the podman run and create flags for p.network.
func (p *podmanPeer) networkArgs() []string {
	if p.network == "" {
		return nil
	}
	return []string{"--network", p.network}
}

func (p *podmanPeer) name() string { return peerPodman }

func (p *podmanPeer) version(ctx context.Context) string {
	out, err := p.cmd().output(ctx, "podman", "--version")
	if err != nil {
		return "podman"
	}
	return strings.TrimSpace(strings.Replace(out, " version ", " ", 1))
}

func (p *podmanPeer) notes() []string {
	return []string{
		"own containers.conf and storage.conf in the scratch directory: runtime runc, cgroup_manager cgroupfs, events_logger file, log_driver k8s-file, default_ulimits nofile=20000:20000 and nproc=32768:32768 (the host forbids raising limits); overlay storage; containers run as root without a user namespace, `--network none`, PID 1 busybox init.",
		"launch = `podman run -d`; start = `podman start`; stop --force = `podman stop -t 0`; delete = `podman rm`; exec = `podman exec`; list = `podman ps -a`; REST list = `GET /libpod/containers/json?all=true` on `podman system service` (started for the REST and events figures).",
		"no daemon: the RSS rows say so; its per-container conmon is in the host memory per instance. Events: 10 streams of `GET /libpod/events?stream=true`, triggered by pause/unpause (podman has no config PATCH).",
	}
}

func (p *podmanPeer) cmd() command { return command{env: p.env} }

func (p *podmanPeer) podman(ctx context.Context, args ...string) (float64, error) {
	return p.cmd().timed(ctx, "podman", args...)
}

func (p *podmanPeer) setup(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(p.dir, "tmp"), 0o700); err != nil {
		return err
	}
	conf := fmt.Sprintf(`[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = %q
[network]
network_config_dir = %q
`, filepath.Join(p.dir, "tmp"), filepath.Join(p.dir, "networks"))
	storage := fmt.Sprintf("[storage]\ndriver = \"overlay\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(p.dir, "storage"), filepath.Join(p.dir, "run"))
	if err := os.WriteFile(filepath.Join(p.dir, "containers.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.dir, "storage.conf"), []byte(storage), 0o644); err != nil {
		return err
	}
	p.env = []string{
		"CONTAINERS_CONF=" + filepath.Join(p.dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(p.dir, "storage.conf"),
	}
	p.cgBefore = cgroupDirs("libpod_parent")
	p.tablesBefore = nftTables(ctx)
	if err := p.cmd().run(ctx, "podman", "import", "--change", `CMD ["/sbin/init"]`, p.tarball, podmanImage); err != nil {
		return err
	}
	svc, err := startDaemon("podman system service", p.env, filepath.Join(p.dir, "service.log"),
		"podman", "system", "service", "--time=0", "unix://"+p.sock)
	if err != nil {
		return err
	}
	p.svc = svc
	p.hc = unixHTTP(p.sock)
	if !waitFor(ctx, 20*time.Second, func() bool { return httpGet(ctx, p.hc, podmanAPI+"/_ping") == nil || svc.exited() }) || svc.exited() {
		return fmt.Errorf("podman system service did not answer (log: %s)", filepath.Join(p.dir, "service.log"))
	}
	if _, err := p.launch(ctx, "pb-warm"); err != nil {
		return err
	}
	_, err = p.podman(ctx, "rm", "-f", "-t", "0", "pb-warm")
	return err
}

func (p *podmanPeer) launch(ctx context.Context, name string) (float64, error) {
	return p.podman(ctx, slices.Concat([]string{"run", "-d", "--pull=never"}, p.networkArgs(), []string{"--name", name, podmanImage})...)
}

func (p *podmanPeer) start(ctx context.Context, name string) (float64, error) {
	return p.podman(ctx, "start", name)
}

func (p *podmanPeer) stop(ctx context.Context, name string) (float64, error) {
	return p.podman(ctx, "stop", "-t", "0", name)
}

func (p *podmanPeer) remove(ctx context.Context, name string) (float64, error) {
	return p.podman(ctx, "rm", name)
}

func (p *podmanPeer) exec(ctx context.Context, name string) (float64, error) {
	return p.podman(ctx, "exec", name, "true")
}

func (p *podmanPeer) pid1(ctx context.Context, name string) (int, error) {
	out, err := p.cmd().output(ctx, "podman", "inspect", "--format", "{{.State.Pid}}", name)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("podman inspect %s: no PID in %q", name, out)
	}
	return pid, nil
}

func (p *podmanPeer) cliStart(ctx context.Context) (float64, error) {
	return p.podman(ctx, "--version")
}

func (p *podmanPeer) listCLI(ctx context.Context) (float64, error) {
	return p.podman(ctx, "ps", "-a")
}

func (p *podmanPeer) rest() (map[string]string, *http.Client) {
	return map[string]string{restRec1: podmanAPI + "/containers/json?all=true"}, p.hc
}

func (p *podmanPeer) createMany(ctx context.Context, names []string, start bool) error {
	return parallel(ctx, 4, names, func(ctx context.Context, name string) error {
		if start {
			_, err := p.launch(ctx, name)
			return err
		}
		_, err := p.podman(ctx, slices.Concat([]string{"create", "--pull=never"}, p.networkArgs(), []string{"--name", name, podmanImage})...)
		return err
	})
}

func (p *podmanPeer) count(ctx context.Context) (int, int, error) {
	out, err := p.cmd().output(ctx, "podman", "ps", "-a", "--format", "json")
	if err != nil {
		return 0, 0, err
	}
	var list []struct{ State string }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return 0, 0, fmt.Errorf("podman ps: %w", err)
	}
	running := 0
	for _, c := range list {
		if c.State == "running" {
			running++
		}
	}
	return len(list), running, nil
}

func (p *podmanPeer) deleteAll(ctx context.Context) error {
	_, err := p.podman(ctx, "rm", "-a", "-f", "-t", "0")
	return err
}

func (p *podmanPeer) daemonPID() int { return 0 }

// memCgroups: with cgroupfs, podman puts each container in
// /libpod_parent/libpod-ID and every conmon in /libpod_parent/conmon.
func (p *podmanPeer) memCgroups(context.Context) ([]string, []string, error) {
	m, _ := filepath.Glob(filepath.Join(memHierarchy(), "libpod_parent", "libpod-*"))
	var payload []string
	for _, d := range m {
		payload = append(payload, "/libpod_parent/"+filepath.Base(d))
	}
	return payload, []string{"/libpod_parent/conmon"}, nil
}

func (p *podmanPeer) eventsPrepare(ctx context.Context, kind string) error {
	if kind != eventsPause {
		return notApplicable("n/a (no config PATCH)")
	}
	p.evNames = names("pb-evf", 0, pauseWorkers)
	return p.createMany(ctx, p.evNames, true)
}

func (p *podmanPeer) eventsCleanup(ctx context.Context, _ string) {
	for _, n := range p.evNames {
		if _, err := p.podman(ctx, "rm", "-f", "-t", "0", n); err != nil {
			logf("podman: %v", err)
		}
	}
	p.evNames = nil
}

func (p *podmanPeer) post(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, podmanAPI+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("POST %s: %s", path, resp.Status)
	}
	return nil
}

// events: subs streams of the libpod events endpoint; the workers pause and
// unpause their containers through the same service.
func (p *podmanPeer) events(ctx context.Context, kind string, subs, triggers int) (float64, error) {
	if kind != eventsPause {
		return 0, notApplicable("n/a (no config PATCH)")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	perWorker := max(2, triggers/2&^1)
	expected := perWorker * len(p.evNames)

	streamCtx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	var (
		mu   sync.Mutex
		last time.Time
		wg   sync.WaitGroup
	)
	counts := make([]atomic.Int64, subs)
	for i := range subs {
		req, err := http.NewRequestWithContext(streamCtx, http.MethodGet, podmanAPI+"/events?stream=true", nil)
		if err != nil {
			return 0, err
		}
		// Own connections: a stream holds its connection for good.
		resp, err := unixHTTP(p.sock).Do(req)
		if err != nil {
			return 0, fmt.Errorf("subscribe: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return 0, fmt.Errorf("subscribe: %s", resp.Status)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var ev struct {
					Type   string
					Action string
					Actor  struct{ Attributes map[string]string }
				}
				if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Type != "container" ||
					(ev.Action != "pause" && ev.Action != "unpause") ||
					!strings.HasPrefix(ev.Actor.Attributes["name"], "pb-evf") {
					continue
				}
				if counts[i].Add(1) == int64(expected) {
					mu.Lock()
					if t := time.Now(); t.After(last) {
						last = t
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	// The file event logger is tailed from its end: let every stream open it.
	time.Sleep(time.Second)

	start := time.Now()
	err := parallel(ctx, len(p.evNames), p.evNames, func(ctx context.Context, name string) error {
		for j := range perWorker {
			action := "pause"
			if j%2 == 1 {
				action = "unpause"
			}
			if err := p.post(ctx, "/containers/"+name+"/"+action); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		var total int64
		for i := range counts {
			total += counts[i].Load()
		}
		return 0, fmt.Errorf("only %d of %d events delivered within 30s of the last trigger", total, subs*expected)
	}
	secs := last.Sub(start).Seconds()
	if secs <= 0 {
		return 0, fmt.Errorf("no time elapsed")
	}
	return float64(subs*expected) / secs, nil
}

func (p *podmanPeer) teardown(ctx context.Context) {
	if p.env != nil {
		if err := p.deleteAll(ctx); err != nil {
			logf("podman: %v", err)
		}
		if err := p.cmd().run(ctx, "podman", "rmi", "-a", "-f"); err != nil {
			logf("podman: %v", err)
		}
	}
	p.svc.stop(10 * time.Second)
	unmountUnder(p.dir)
	removeCgroups("libpod_parent", p.cgBefore)
	if p.tablesBefore != nil {
		// netavark removes its bridge with the last container but leaves
		// its chains (iptables-nft) in the machine's ruleset.
		for _, t := range nftTables(ctx) {
			if slices.Contains(p.tablesBefore, t) {
				continue
			}
			out, err := command{}.output(ctx, "nft", append([]string{"list", "table"}, strings.Fields(t)...)...)
			if err != nil || !strings.Contains(out, "NETAVARK") {
				continue
			}
			if err := (command{}).run(ctx, "nft", append([]string{"delete", "table"}, strings.Fields(t)...)...); err != nil {
				logf("podman: %v", err)
			}
		}
	}
}

// nftTables lists the machine's nftables tables as "family name" (nil when
// nft is missing: nothing to compare, nothing removed).
func nftTables(ctx context.Context) []string {
	out, err := command{}.output(ctx, "nft", "list", "tables")
	if err != nil {
		return nil
	}
	tables := []string{}
	for _, line := range strings.Split(out, "\n") {
		if t, ok := strings.CutPrefix(strings.TrimSpace(line), "table "); ok {
			tables = append(tables, t)
		}
	}
	return tables
}

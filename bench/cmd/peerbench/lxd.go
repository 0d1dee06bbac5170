package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const lxcfsDir = "/var/lib/lxcfs"

// lxdPeer is LXD 5.0 from Debian, started by hand as on a machine without
// systemd: lxcfs, `lxd --group root` with its state in the scratch
// directory (LXD_DIR), `lxd init --preseed` with a dir pool and a bridge on
// an explicit subnet (`lxd init --auto` cannot pick one here).
type lxdPeer struct {
	lxdAPI
	cfg       *config
	tarball   string
	dir       string
	env       []string
	lxcfs     *daemon
	lxd       *daemon
	bridge    string
	subnet    string
	cgBefore  []string
	nftBefore bool
	inited    bool
	// userBridge makes the bridge as `lxd init` makes lxdbr0 for a user:
	// NAT, DHCP and LXD's firewall rules on (IPv4 only: the subnet is
	// still given, as `lxd init --auto` cannot pick one here).
	userBridge bool
}

func newLXDPeer(cfg *config, tarball string) *lxdPeer {
	dir := filepath.Join(cfg.scratch, "lxd")
	return &lxdPeer{
		lxdAPI:  lxdAPI{socket: filepath.Join(dir, "var", "unix.socket")},
		cfg:     cfg,
		tarball: tarball,
		dir:     dir,
	}
}

func (l *lxdPeer) name() string { return peerLXD }

func (l *lxdPeer) version(ctx context.Context) string {
	out, err := l.cmd().output(ctx, "lxd", "--version")
	if err != nil {
		return "LXD"
	}
	return "LXD " + strings.TrimSpace(out)
}

func (l *lxdPeer) notes() []string {
	return []string{
		fmt.Sprintf("started by hand: lxcfs on %s, `lxd --group root` with LXD_DIR in the scratch directory, `lxd init --preseed` with a dir storage pool and the bridge %s on %s (no NAT, no DHCP, no IPv6). Its HTTP proxy points at 127.0.0.1:9, so that its built-in downloads (instance types) never leave the machine.", lxcfsDir, l.bridgeName(), l.subnetName()),
		"instances are LXD's default: unprivileged (user namespace), a veth NIC on the bridge (LXD's default profile; podman runs with `--network none` and hangard has no network yet), the root a full copy of the image on the dir pool, a `[lxc monitor]` process each, PID 1 busybox init.",
		"launch = `lxc launch`; start = `lxc start`; stop --force = `lxc stop --force`; delete = `lxc delete`; exec = `lxc exec -- true`; list = `lxc list --format csv`; REST and events through hangar's Go SDK on LXD's socket (same API).",
	}
}

func (l *lxdPeer) bridgeName() string {
	if l.bridge == "" {
		return "pbenchbr0"
	}
	return l.bridge
}

func (l *lxdPeer) subnetName() string {
	if l.subnet == "" {
		return "10.123.45.1/24"
	}
	return l.subnet
}

// cmd is the environment of the lxc and lxd commands: LXD_DIR points them
// at our daemon, LXD_CONF keeps the client's config out of $HOME.
func (l *lxdPeer) cmd() command { return command{env: l.env} }

func (l *lxdPeer) lxc(ctx context.Context, args ...string) (float64, error) {
	return l.cmd().timed(ctx, "lxc", args...)
}

func (l *lxdPeer) setup(ctx context.Context) error {
	if pid, ok := processRunning("lxd"); ok {
		return fmt.Errorf("an LXD daemon already runs on this machine (pid %d); not starting a second one beside it", pid)
	}
	for _, d := range []string{filepath.Join(l.dir, "var"), filepath.Join(l.dir, "pool"), filepath.Join(l.dir, "conf"), filepath.Join(l.dir, "image", "rootfs")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return err
		}
	}
	l.env = []string{"LXD_DIR=" + filepath.Join(l.dir, "var"), "LXD_CONF=" + filepath.Join(l.dir, "conf")}
	l.cgBefore, _ = filepath.Glob("/sys/fs/cgroup/*/lxc.*")
	l.nftBefore = l.cmd().run(ctx, "nft", "list", "table", "inet", "lxd") == nil

	if !mountedAs(lxcfsDir, "fuse.lxcfs") {
		if err := os.MkdirAll(lxcfsDir, 0o755); err != nil {
			return err
		}
		d, err := startDaemon("lxcfs", nil, filepath.Join(l.dir, "lxcfs.log"), "lxcfs", lxcfsDir)
		if err != nil {
			return err
		}
		l.lxcfs = d
		if !waitFor(ctx, 10*time.Second, func() bool { return mountedAs(lxcfsDir, "fuse.lxcfs") || d.exited() }) || d.exited() {
			return fmt.Errorf("lxcfs did not mount %s (log: %s)", lxcfsDir, filepath.Join(l.dir, "lxcfs.log"))
		}
	}

	proxy := "http://127.0.0.1:9"
	env := append([]string{"http_proxy=" + proxy, "https_proxy=" + proxy, "HTTP_PROXY=" + proxy, "HTTPS_PROXY=" + proxy, "no_proxy=", "NO_PROXY="}, l.env...)
	d, err := startDaemon("lxd", env, filepath.Join(l.dir, "lxd.out"), "lxd", "--group", "root", "--logfile", filepath.Join(l.dir, "lxd.log"))
	if err != nil {
		return err
	}
	l.lxd = d
	if err := l.cmd().run(ctx, "lxd", "waitready", "--timeout=60"); err != nil {
		return fmt.Errorf("%w (log: %s)", err, filepath.Join(l.dir, "lxd.log"))
	}

	if l.bridge, l.subnet, err = freeBridge(); err != nil {
		return err
	}
	bridgeConfig := `    ipv4.nat: "false"
    ipv4.dhcp: "false"
    ipv4.firewall: "false"
`
	if l.userBridge {
		bridgeConfig = `    ipv4.nat: "true"
    ipv4.dhcp: "true"
`
	}
	preseed := fmt.Sprintf(`config:
  images.auto_update_interval: "0"
storage_pools:
- name: default
  driver: dir
  config:
    source: %s
networks:
- name: %s
  type: bridge
  config:
    ipv4.address: %s
%s    ipv6.address: none
profiles:
- name: default
  devices:
    root: {path: /, pool: default, type: disk}
    eth0: {name: eth0, network: %s, type: nic}
`, filepath.Join(l.dir, "pool"), l.bridge, l.subnet, bridgeConfig, l.bridge)
	init := l.cmd()
	init.stdin = preseed
	l.inited = true
	if err := init.run(ctx, "lxd", "init", "--preseed"); err != nil {
		return err
	}

	// A unified image: metadata.yaml and rootfs/ in one tarball.
	img := filepath.Join(l.dir, "image")
	if err := (command{}).run(ctx, "tar", "-C", filepath.Join(img, "rootfs"), "-xzf", l.tarball); err != nil {
		return err
	}
	meta := fmt.Sprintf("architecture: x86_64\ncreation_date: %d\nproperties:\n  description: busybox\n  os: busybox\n  release: bench\ntemplates: {}\n", time.Now().Unix())
	if err := os.WriteFile(filepath.Join(img, "metadata.yaml"), []byte(meta), 0o644); err != nil {
		return err
	}
	tarball := filepath.Join(l.dir, "busybox-lxd.tar.gz")
	if err := (command{}).run(ctx, "tar", "-C", img, "--numeric-owner", "-czf", tarball, "metadata.yaml", "rootfs"); err != nil {
		return err
	}
	if _, err := l.lxc(ctx, "image", "import", tarball, "--alias", "busybox"); err != nil {
		return err
	}
	if err := l.connect(); err != nil {
		return err
	}
	if err := l.waitReady(ctx, 10*time.Second, d); err != nil {
		return err
	}
	// Warm: the first launch unpacks the image and shifts it.
	if _, err := l.launch(ctx, "pb-warm"); err != nil {
		return err
	}
	_, err = l.lxc(ctx, "delete", "--force", "pb-warm")
	return err
}

func (l *lxdPeer) launch(ctx context.Context, name string) (float64, error) {
	return l.lxc(ctx, "launch", "busybox", name)
}

func (l *lxdPeer) start(ctx context.Context, name string) (float64, error) {
	return l.lxc(ctx, "start", name)
}

func (l *lxdPeer) stop(ctx context.Context, name string) (float64, error) {
	return l.lxc(ctx, "stop", "--force", name)
}

func (l *lxdPeer) remove(ctx context.Context, name string) (float64, error) {
	return l.lxc(ctx, "delete", name)
}

func (l *lxdPeer) exec(ctx context.Context, name string) (float64, error) {
	return l.lxc(ctx, "exec", name, "--", "true")
}

func (l *lxdPeer) lxcExec(ctx context.Context, name string) (float64, error) {
	return l.exec(ctx, name)
}

// lxcList is lxc list with its default columns (a table, IPv4 and IPv6
// included, which needs every instance's state).
func (l *lxdPeer) lxcList(ctx context.Context) (float64, error) { return l.lxc(ctx, "list") }

func (l *lxdPeer) cliStart(ctx context.Context) (float64, error) { return l.lxc(ctx, "--version") }

func (l *lxdPeer) listCLI(ctx context.Context) (float64, error) {
	return l.lxc(ctx, "list", "--format", "csv")
}

func (l *lxdPeer) daemonPID() int { return l.lxd.pid() }

// memCgroups are LXD's per-instance cgroups: the container's payload and
// its monitor's, each at the top of the hierarchy.
func (l *lxdPeer) memCgroups(ctx context.Context) ([]string, []string, error) {
	st, err := l.c.GetInstanceState(ctx, "pb-r0001")
	if err != nil {
		return nil, nil, err
	}
	cg, err := memCgroupOf(int(st.Pid))
	if err != nil {
		return nil, nil, err
	}
	// cg is /lxc.payload.pb-r0001 (maybe with a sub-cgroup inside).
	top := strings.Split(strings.TrimPrefix(cg, "/"), "/")[0]
	prefix := strings.TrimSuffix(top, "pb-r0001")
	if prefix == top {
		return nil, nil, fmt.Errorf("unexpected cgroup %s for pb-r0001", cg)
	}
	glob := func(prefix string) []string {
		m, _ := filepath.Glob(filepath.Join(memHierarchy(), prefix+"pb-r*"))
		var out []string
		for _, d := range m {
			out = append(out, "/"+filepath.Base(d))
		}
		return out
	}
	return glob(prefix), glob(strings.Replace(prefix, "payload", "monitor", 1)), nil
}

func (l *lxdPeer) teardown(ctx context.Context) {
	if l.lxd != nil && !l.lxd.exited() {
		if l.c != nil {
			if err := l.deleteAll(ctx); err != nil {
				logf("LXD: delete instances: %v", err)
			}
		}
		if l.inited {
			for _, args := range [][]string{
				{"image", "delete", "busybox"},
				{"profile", "device", "remove", "default", "eth0"},
				{"profile", "device", "remove", "default", "root"},
				{"network", "delete", l.bridgeName()},
				{"storage", "delete", "default"},
			} {
				if _, err := l.lxc(ctx, args...); err != nil {
					logf("LXD: %v", err)
				}
			}
		}
		if err := l.cmd().run(ctx, "lxd", "shutdown", "--timeout=120"); err != nil {
			logf("LXD: %v", err)
		}
		if !l.lxd.wait(30 * time.Second) {
			l.lxd.stop(10 * time.Second)
		}
	}
	if l.lxcfs != nil {
		if err := (command{}).run(ctx, "fusermount", "-u", lxcfsDir); err != nil {
			logf("lxcfs: %v", err)
		}
		l.lxcfs.stop(10 * time.Second)
	}
	// LXD's own leftovers, if it could not clean up.
	if l.bridge != "" && fileExists("/sys/class/net/"+l.bridge) {
		_ = (command{}).run(ctx, "ip", "link", "delete", l.bridge)
	}
	if !l.nftBefore && l.cmd().run(ctx, "nft", "list", "table", "inet", "lxd") == nil {
		_ = (command{}).run(ctx, "nft", "delete", "table", "inet", "lxd")
	}
	unmountUnder(l.dir)
	after, _ := filepath.Glob("/sys/fs/cgroup/*/lxc.*")
	for _, dir := range after {
		if !containsString(l.cgBefore, dir) {
			removeCgroups(filepath.Base(dir), nil)
		}
	}
}

// freeBridge picks a bridge name and a /24 that nothing on the host uses.
func freeBridge() (string, string, error) {
	name := ""
	for i := range 10 {
		n := fmt.Sprintf("pbenchbr%d", i)
		if !fileExists("/sys/class/net/" + n) {
			name = n
			break
		}
	}
	if name == "" {
		return "", "", fmt.Errorf("no free bridge name pbenchbr0..9")
	}
	used := ""
	if out, err := (command{}).output(context.Background(), "ip", "-o", "-4", "addr"); err == nil {
		used += out
	}
	if out, err := (command{}).output(context.Background(), "ip", "-o", "-4", "route"); err == nil {
		used += out
	}
	for third := 45; third < 100; third++ {
		prefix := fmt.Sprintf("10.123.%d.", third)
		if !strings.Contains(used, prefix) {
			return name, prefix + "1/24", nil
		}
	}
	return "", "", fmt.Errorf("no free 10.123.x.0/24 subnet")
}

// mountedAs reports whether dir is a mount point of filesystem type fstype.
func mountedAs(dir, fstype string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) < 5 || unescapeMount(fields[4]) != dir {
			continue
		}
		if _, after, ok := strings.Cut(line, " - "); ok && strings.HasPrefix(after, fstype+" ") {
			return true
		}
	}
	return false
}

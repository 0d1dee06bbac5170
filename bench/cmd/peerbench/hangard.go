package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// hangardPeer is hangard built from the tree, on a fresh data directory in
// the scratch directory, driven by hangar (the CLI) and the Go SDK.
type hangardPeer struct {
	lxdAPI
	cfg     *config
	tarball string
	bins    string
	dir     string
	d       *daemon
	// netns is the network namespace hangard runs in (a bound file in
	// the scratch directory): the host side of its containers' NICs.
	netns string
	// logLevel is hangard's --log-level ("": warn).
	logLevel string
}

func newHangardPeer(cfg *config, tarball, bins string) *hangardPeer {
	dir := filepath.Join(cfg.scratch, "hangard")
	return &hangardPeer{
		lxdAPI:  lxdAPI{socket: filepath.Join(dir, "unix.socket"), startInCreate: true},
		cfg:     cfg,
		tarball: tarball,
		bins:    bins,
		dir:     dir,
	}
}

func (h *hangardPeer) name() string { return peerHangard }

// logPath is the daemon's log (its stderr).
func (h *hangardPeer) logPath() string { return filepath.Join(h.cfg.scratch, "hangard.log") }

func (h *hangardPeer) version(ctx context.Context) string {
	out, err := command{}.output(ctx, filepath.Join(h.bins, "hangard"), "--version")
	if err != nil {
		return "hangard (this tree)"
	}
	return fmt.Sprintf("hangard %s (this tree)", strings.TrimSpace(out))
}

func (h *hangardPeer) notes() []string {
	return []string{
		"built from this tree, on a fresh data directory, in a network namespace of the harness's own (so that its bridge hangarbr0, its nftables table and its dnsmasq never touch the machine's network); unprivileged containers (user namespace, shifted image tree), overlayfs root over the image, the default profile's NIC on hangarbr0 (address configured by hangard), PID 1 is busybox init.",
		"exec = `hangar exec NAME -- true` (the LXD exec protocol through the Go SDK: POST exec with wait-for-websocket, four websockets).",
	}
}

// cli runs hangar with args and returns its time.
func (h *hangardPeer) cli(ctx context.Context, args ...string) (float64, error) {
	return command{}.timed(ctx, filepath.Join(h.bins, "hangar"), append([]string{"--socket", h.socket}, args...)...)
}

func (h *hangardPeer) setup(ctx context.Context) error {
	if err := os.MkdirAll(h.dir, 0o711); err != nil {
		return err
	}
	netns := filepath.Join(h.cfg.scratch, "hangard.netns")
	if err := makeNetns(ctx, netns); err != nil {
		return err
	}
	h.netns = netns
	level := h.logLevel
	if level == "" {
		level = "warn"
	}
	// nsenter execs hangard in the namespace: the pid is hangard's.
	d, err := startDaemon("hangard", nil, h.logPath(),
		"nsenter", "--net="+netns, "--", filepath.Join(h.bins, "hangard"), "--data-dir", h.dir, "--log-level", level)
	if err != nil {
		return err
	}
	h.d = d
	if err := h.connect(); err != nil {
		return err
	}
	if err := h.waitReady(ctx, 20*time.Second, d); err != nil {
		return fmt.Errorf("hangard: %w (log: %s)", err, h.logPath())
	}
	if _, err := h.cli(ctx, "image", "import", h.tarball, "--alias", "busybox"); err != nil {
		return err
	}
	// Warm the shifted image tree and the daemon's caches.
	if _, err := h.launch(ctx, "pb-warm"); err != nil {
		return err
	}
	_, err = h.cli(ctx, "delete", "--force", "pb-warm")
	return err
}

func (h *hangardPeer) launch(ctx context.Context, name string) (float64, error) {
	return h.cli(ctx, "launch", "busybox", name)
}

func (h *hangardPeer) start(ctx context.Context, name string) (float64, error) {
	return h.cli(ctx, "start", name)
}

func (h *hangardPeer) stop(ctx context.Context, name string) (float64, error) {
	return h.cli(ctx, "stop", "--force", name)
}

func (h *hangardPeer) remove(ctx context.Context, name string) (float64, error) {
	return h.cli(ctx, "delete", name)
}

func (h *hangardPeer) exec(ctx context.Context, name string) (float64, error) {
	return h.cli(ctx, "exec", name, "--", "true")
}

// lxc runs the real lxc client against hangard's socket (LXD_SOCKET), with
// its configuration in the scratch directory.
func (h *hangardPeer) lxc(ctx context.Context, args ...string) (float64, error) {
	env := []string{"LXD_SOCKET=" + h.socket, "LXD_CONF=" + filepath.Join(h.dir, "lxc-conf")}
	return command{env: env}.timed(ctx, "lxc", args...)
}

func (h *hangardPeer) lxcExec(ctx context.Context, name string) (float64, error) {
	return h.lxc(ctx, "exec", name, "--", "true")
}

func (h *hangardPeer) lxcList(ctx context.Context) (float64, error) { return h.lxc(ctx, "list") }

// ownList is hangar list with its default columns, the table lxc list
// draws.
func (h *hangardPeer) ownList(ctx context.Context) (float64, error) { return h.cli(ctx, "list") }

func (h *hangardPeer) cliStart(ctx context.Context) (float64, error) {
	return command{}.timed(ctx, filepath.Join(h.bins, "hangar"), "--version")
}

func (h *hangardPeer) listCLI(ctx context.Context) (float64, error) {
	return h.cli(ctx, "list", "--format", "csv")
}

func (h *hangardPeer) daemonPID() int { return h.d.pid() }

// memCgroups is the cgroup parent hangard puts its containers under, found
// from the first scale instance's PID 1.
func (h *hangardPeer) memCgroups(ctx context.Context) ([]string, []string, error) {
	st, err := h.c.GetInstanceState(ctx, "pb-r0001")
	if err != nil {
		return nil, nil, err
	}
	cg, err := memCgroupOf(int(st.Pid))
	if err != nil {
		return nil, nil, err
	}
	return []string{filepath.Dir(cg)}, nil, nil
}

func (h *hangardPeer) teardown(ctx context.Context) {
	if h.d != nil && !h.d.exited() && h.c != nil {
		if err := h.deleteAll(ctx); err != nil {
			logf("hangard: delete instances: %v", err)
		}
	}
	h.d.stop(30 * time.Second)
	// Whatever the daemon could not delete still runs under its runc root.
	runcCleanup(ctx, filepath.Join(h.dir, "containers", ".runc"))
	unmountUnder(h.dir)
	// Its bridge, veths, nftables table and dnsmasq go with the namespace.
	removeNetns(h.netns)
	h.netns = ""
}

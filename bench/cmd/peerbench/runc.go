package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// runcPeer is bare runc, the floor: an instance is a bundle (config.json
// and an overlayfs root over the shared busybox tree), running when runc
// has a container for it.
type runcPeer struct {
	cfg      *config
	tarball  string
	dir      string
	root     string // runc --root
	lower    string // the shared, unpacked busybox tree
	spec     []byte // the base config.json
	cgParent string
	cgBefore []string
}

func newRuncPeer(cfg *config, tarball string) *runcPeer {
	dir := filepath.Join(cfg.scratch, "runc")
	return &runcPeer{
		cfg:      cfg,
		tarball:  tarball,
		dir:      dir,
		root:     filepath.Join(dir, "state"),
		lower:    filepath.Join(dir, "rootfs"),
		cgParent: fmt.Sprintf("peerbench-runc-%d", os.Getpid()),
	}
}

func (r *runcPeer) name() string { return peerRunc }

func (r *runcPeer) version(ctx context.Context) string {
	out, err := command{}.output(ctx, "runc", "--version")
	if err != nil {
		return "runc"
	}
	return strings.Split(strings.TrimSpace(out), "\n")[0]
}

func (r *runcPeer) notes() []string {
	return []string{
		"the floor: `runc spec`'s default container (no user namespace, default capabilities), PID 1 busybox init, no network device, cgroupfs.",
		"launch = overlayfs mount of the shared tree + config.json + `runc create` + `runc start`; start = `runc create` + `runc start` on the existing bundle (runc keeps no stopped containers to start again); stop --force = `runc kill` KILL, wait for the exit on a pidfd, `runc delete`; delete = unmount and remove the bundle; exec = `runc exec`; list = `runc list`.",
		"stopped instances in the lists are containers killed after `runc create`, which `runc list` shows as stopped.",
	}
}

func (r *runcPeer) runc(ctx context.Context, args ...string) (float64, error) {
	return command{}.timed(ctx, "runc", append([]string{"--root", r.root}, args...)...)
}

func (r *runcPeer) setup(ctx context.Context) error {
	for _, d := range []string{r.root, r.lower, filepath.Join(r.dir, "bundles")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return err
		}
	}
	if err := (command{}).run(ctx, "tar", "-C", r.lower, "-xzf", r.tarball); err != nil {
		return err
	}
	tmp := filepath.Join(r.dir, "spec")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := (command{}).run(ctx, "runc", "spec", "--bundle", tmp); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(tmp, "config.json"))
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		return err
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/sbin/init"}
	if r.spec, err = json.Marshal(spec); err != nil {
		return err
	}
	r.cgBefore = cgroupDirs(r.cgParent)
	if _, err := r.launch(ctx, "pb-warm"); err != nil {
		return err
	}
	if _, err := r.stop(ctx, "pb-warm"); err != nil {
		return err
	}
	_, err = r.remove(ctx, "pb-warm")
	return err
}

func (r *runcPeer) bundle(name string) string { return filepath.Join(r.dir, "bundles", name) }

// writeSpec writes name's config.json with its root at rootPath.
func (r *runcPeer) writeSpec(name, rootPath string, readonly bool) error {
	var spec map[string]any
	if err := json.Unmarshal(r.spec, &spec); err != nil {
		return err
	}
	spec["root"] = map[string]any{"path": rootPath, "readonly": readonly}
	spec["hostname"] = name
	spec["linux"].(map[string]any)["cgroupsPath"] = "/" + r.cgParent + "/" + name
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.bundle(name), "config.json"), data, 0o644)
}

func (r *runcPeer) launch(ctx context.Context, name string) (float64, error) {
	t0 := time.Now()
	b := r.bundle(name)
	for _, d := range []string{"rootfs", "upper", "work"} {
		if err := os.MkdirAll(filepath.Join(b, d), 0o755); err != nil {
			return 0, err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", r.lower, filepath.Join(b, "upper"), filepath.Join(b, "work"))
	if err := unix.Mount("overlay", filepath.Join(b, "rootfs"), "overlay", 0, opts); err != nil {
		return 0, fmt.Errorf("mount overlay: %w", err)
	}
	if err := r.writeSpec(name, "rootfs", false); err != nil {
		return 0, err
	}
	if _, err := r.start(ctx, name); err != nil {
		return 0, err
	}
	return msSince(t0), nil
}

func (r *runcPeer) start(ctx context.Context, name string) (float64, error) {
	t0 := time.Now()
	if _, err := r.runc(ctx, "create", "--bundle", r.bundle(name), name); err != nil {
		return 0, err
	}
	if _, err := r.runc(ctx, "start", name); err != nil {
		return 0, err
	}
	return msSince(t0), nil
}

// stop is what a manager that knows its container's PID does: open a pidfd
// on it, `runc kill` KILL, wait for the exit on the pidfd, `runc delete`.
// (`runc delete --force` alone polls every 100ms and takes 120ms here.)
func (r *runcPeer) stop(ctx context.Context, name string) (float64, error) {
	t0 := time.Now()
	if err := r.kill(ctx, name); err != nil {
		return 0, err
	}
	if _, err := r.runc(ctx, "delete", name); err != nil {
		return 0, err
	}
	return msSince(t0), nil
}

// kill is `runc kill` KILL and the wait for the exit on a pidfd: the
// container is then stopped, not yet deleted.
func (r *runcPeer) kill(ctx context.Context, name string) error {
	pid, err := r.pid1(ctx, name)
	if err != nil {
		return err
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err == nil {
		defer unix.Close(fd)
	}
	if _, err := r.runc(ctx, "kill", name, "KILL"); err != nil {
		return err
	}
	if fd >= 0 {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, 10000)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n == 0 {
				return fmt.Errorf("wait for %s to exit: %v", name, err)
			}
			break
		}
	}
	return nil
}

func (r *runcPeer) remove(_ context.Context, name string) (float64, error) {
	t0 := time.Now()
	b := r.bundle(name)
	if err := unix.Unmount(filepath.Join(b, "rootfs"), 0); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return 0, fmt.Errorf("unmount %s: %w", name, err)
	}
	if err := os.RemoveAll(b); err != nil {
		return 0, err
	}
	return msSince(t0), nil
}

func (r *runcPeer) exec(ctx context.Context, name string) (float64, error) {
	return r.runc(ctx, "exec", name, "true")
}

func (r *runcPeer) pid1(_ context.Context, name string) (int, error) {
	data, err := os.ReadFile(filepath.Join(r.root, name, "state.json"))
	if err != nil {
		return 0, err
	}
	var st struct {
		Pid int `json:"init_process_pid"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return 0, fmt.Errorf("runc state of %s: %w", name, err)
	}
	return st.Pid, nil
}

func (r *runcPeer) cliStart(ctx context.Context) (float64, error) {
	return command{}.timed(ctx, "runc", "--version")
}

func (r *runcPeer) listCLI(ctx context.Context) (float64, error) {
	return r.runc(ctx, "list")
}

func (r *runcPeer) rest() (map[string]string, *http.Client) { return nil, nil }

func (r *runcPeer) createMany(ctx context.Context, names []string, start bool) error {
	return parallel(ctx, 2, names, func(ctx context.Context, name string) error {
		if start {
			_, err := r.launch(ctx, name)
			return err
		}
		if err := os.MkdirAll(r.bundle(name), 0o755); err != nil {
			return err
		}
		if err := r.writeSpec(name, r.lower, true); err != nil {
			return err
		}
		if _, err := r.runc(ctx, "create", "--bundle", r.bundle(name), name); err != nil {
			return err
		}
		_, err := r.runc(ctx, "kill", name, "KILL")
		return err
	})
}

func (r *runcPeer) count(ctx context.Context) (int, int, error) {
	out, err := command{}.output(ctx, "runc", "--root", r.root, "list", "--format", "json")
	if err != nil {
		return 0, 0, err
	}
	var list []struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return 0, 0, err
	}
	running := 0
	for _, c := range list {
		if c.Status == "running" {
			running++
		}
	}
	return len(list), running, nil
}

func (r *runcPeer) deleteAll(ctx context.Context) error {
	runcCleanup(ctx, r.root)
	entries, _ := os.ReadDir(filepath.Join(r.dir, "bundles"))
	var first error
	for _, e := range entries {
		if _, err := r.remove(ctx, e.Name()); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (r *runcPeer) daemonPID() int { return 0 }

func (r *runcPeer) memCgroups(context.Context) ([]string, []string, error) {
	return []string{"/" + r.cgParent}, nil, nil
}

func (r *runcPeer) eventsPrepare(context.Context, string) error {
	return notApplicable("n/a (no event stream)")
}

func (r *runcPeer) eventsCleanup(context.Context, string) {}

func (r *runcPeer) events(context.Context, string, int, int) (float64, error) {
	return 0, notApplicable("n/a (no event stream)")
}

func (r *runcPeer) teardown(ctx context.Context) {
	if err := r.deleteAll(ctx); err != nil {
		logf("runc: %v", err)
	}
	unmountUnder(r.dir)
	removeCgroups(r.cgParent, r.cgBefore)
}

// runcCleanup force-deletes every container under a runc root.
func runcCleanup(ctx context.Context, root string) {
	if _, err := os.Stat(root); err != nil {
		return
	}
	out, err := command{}.output(ctx, "runc", "--root", root, "list", "-q")
	if err != nil {
		logf("runc list in %s: %v", root, err)
		return
	}
	ids := strings.Fields(out)
	_ = parallel(ctx, 4, ids, func(ctx context.Context, id string) error {
		if err := (command{}).run(ctx, "runc", "--root", root, "delete", "--force", id); err != nil {
			logf("%v", err)
		}
		return nil
	})
}

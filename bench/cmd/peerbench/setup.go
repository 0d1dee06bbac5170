package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// requirement is what a peer needs on the machine.
type requirement struct {
	peer     string
	binaries []string
	packages []string // Debian packages that bring them
}

var requirements = []requirement{
	{peerRunc, []string{"runc"}, []string{"runc"}},
	{peerPodman, []string{"podman", "conmon", "runc"}, []string{"podman", "runc"}},
	{peerLXD, []string{"lxd", "lxc", "lxcfs"}, []string{"lxd"}},
}

func missingBinaries(bins []string) []string {
	var out []string
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			out = append(out, b)
		}
	}
	return out
}

// ensureInstalled installs what the chosen peers and the chart need with
// apt, or, with --no-install, marks the peers that lack something skipped.
func ensureInstalled(ctx context.Context, cfg *config, res *results) error {
	// hangard itself: runc and busybox, through the project's own script.
	if miss := missingBinaries([]string{"runc", "busybox", "tar"}); len(miss) > 0 {
		if cfg.noInstall {
			return fmt.Errorf("hangard needs %s, not installed (run without --no-install, or bash scripts/deps.sh)", strings.Join(miss, ", "))
		}
		logf("installing what hangard needs (scripts/deps.sh)")
		if err := (command{dir: cfg.repo, timeout: 20 * time.Minute}).run(ctx, "bash", "scripts/deps.sh"); err != nil {
			return err
		}
	}
	var pkgs []string
	need := map[string][]string{}
	for _, r := range requirements {
		if !slices.Contains(cfg.peers, r.peer) {
			continue
		}
		miss := missingBinaries(r.binaries)
		if len(miss) == 0 {
			continue
		}
		if cfg.noInstall {
			res.skipped[r.peer] = fmt.Sprintf("skipped: %s not installed and --no-install given (bench/run installs it with apt: apt-get install %s)",
				strings.Join(miss, ", "), strings.Join(r.packages, " "))
			logf("%s: %s", r.peer, res.skipped[r.peer])
			continue
		}
		need[r.peer] = r.packages
		for _, p := range r.packages {
			if !slices.Contains(pkgs, p) {
				pkgs = append(pkgs, p)
			}
		}
	}
	if _, err := exec.LookPath("gnuplot"); err != nil && !cfg.noInstall {
		pkgs = append(pkgs, "gnuplot-nox")
	}
	if len(pkgs) == 0 {
		return nil
	}
	t0 := time.Now()
	logf("installing with apt: %s (LXD alone takes 4-5 minutes)", strings.Join(pkgs, " "))
	env := command{env: []string{"DEBIAN_FRONTEND=noninteractive"}, timeout: 20 * time.Minute}
	err := env.run(ctx, "apt-get", "update", "-qq")
	if err == nil {
		err = env.run(ctx, "apt-get", append([]string{"install", "-y", "-qq", "-o", "Dpkg::Options::=--force-confold"}, pkgs...)...)
	}
	res.timings = append(res.timings, timing{"apt-get install " + strings.Join(pkgs, " "), time.Since(t0)})
	if err != nil {
		logf("apt failed: %v", err)
	}
	for peer := range need {
		for _, r := range requirements {
			if r.peer == peer {
				if miss := missingBinaries(r.binaries); len(miss) > 0 {
					res.skipped[peer] = fmt.Sprintf("skipped: %s still missing after apt-get install %s", strings.Join(miss, ", "), strings.Join(r.packages, " "))
				}
			}
		}
	}
	return nil
}

// buildRootfs makes the busybox root filesystem every peer runs, with the
// project's own script, and moves it into the scratch directory.
func buildRootfs(ctx context.Context, cfg *config) (string, error) {
	out, err := command{dir: cfg.repo}.output(ctx, "bash", "scripts/busybox-rootfs.sh")
	if err != nil {
		return "", err
	}
	src := strings.TrimSpace(out)
	dst := filepath.Join(cfg.scratch, "busybox-rootfs.tar.gz")
	if err := os.Rename(src, dst); err != nil {
		data, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return "", err
		}
		os.Remove(src)
	}
	return dst, nil
}

// buildHangard builds hangard and hangar from the tree into the scratch
// directory and returns that directory. Issue 13's run boots a VM: the
// guest agent goes beside hangard, where the daemon looks for it.
func buildHangard(ctx context.Context, cfg *config) (string, error) {
	dir := filepath.Join(cfg.scratch, "bin")
	pkgs := []string{"./cmd/hangard", "./cmd/hangar"}
	if cfg.issue13 {
		pkgs = append(pkgs, "./cmd/hangar-agent")
	}
	logf("building %s", strings.Join(pkgs, ", "))
	if err := (command{dir: cfg.repo, timeout: 10 * time.Minute, env: []string{"CGO_ENABLED=0"}}).run(ctx, "go", append([]string{"build", "-o", dir + "/"}, pkgs...)...); err != nil {
		return "", err
	}
	return dir, nil
}

type machineInfo struct {
	cpu, kernel, os, cgroups string
	cores                    int
	memGiB                   float64
	kvm                      bool
	commit, commitShort      string
}

func (m machineInfo) summary() string {
	kvm := "no KVM"
	if m.kvm {
		kvm = "KVM"
	}
	return fmt.Sprintf("%s, %d cores, %.1f GiB RAM, %s, kernel %s, %s, %s", m.cpu, m.cores, m.memGiB, m.os, m.kernel, m.cgroups, kvm)
}

func describeMachine(repo string) machineInfo {
	m := machineInfo{cores: runtime.NumCPU(), cpu: "unknown CPU", os: "unknown OS"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.cpu = strings.Join(strings.Fields(strings.TrimLeft(v, " \t:")), " ")
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.os = strings.Trim(v, `"`)
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(string(data), "MemTotal: %f kB", &kb)
		m.memGiB = kb / (1 << 20)
	}
	switch {
	case fileExists("/sys/fs/cgroup/cgroup.controllers"):
		m.cgroups = "cgroup v2"
	case fileExists("/sys/fs/cgroup/unified"):
		m.cgroups = "cgroup v1 (hybrid)"
	default:
		m.cgroups = "cgroup v1"
	}
	// /dev/kvm alone may be kvm_pvm's, which QEMU cannot use for a
	// normal guest: KVM also needs the CPU's vmx or svm.
	m.kvm = fileExists("/dev/kvm") && cpuHasVirt()
	git := command{dir: repo}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m.commitShort = "unknown"
	if out, err := git.output(ctx, "git", "rev-parse", "--short", "HEAD"); err == nil {
		m.commitShort = strings.TrimSpace(out)
	}
	m.commit = "`" + m.commitShort + "`"
	if out, err := git.output(ctx, "git", "status", "--porcelain", "--untracked-files=no"); err == nil && strings.TrimSpace(out) != "" {
		m.commit += " with uncommitted changes"
	}
	return m
}

// cpuHasVirt reports whether the CPU flags name hardware virtualisation.
func cpuHasVirt() bool {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "flags"); ok {
			f := strings.Fields(strings.TrimLeft(v, " \t:"))
			return slices.Contains(f, "vmx") || slices.Contains(f, "svm")
		}
	}
	return false
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

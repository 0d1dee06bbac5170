package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cmdTimeout bounds any one command the harness runs.
const cmdTimeout = 3 * time.Minute

// command builds a command with env added to ours, stdin and stdout on
// /dev/null (a container started by it inherits them: a pipe would keep
// Wait blocked until the container exits) and stderr in a temporary file.
type command struct {
	env []string
	dir string
	// timeout bounds the command; zero means cmdTimeout.
	timeout time.Duration
	// stdin, when set, is the command's input.
	stdin string
}

// run runs name args, discarding stdout; the error carries stderr's tail.
func (c command) run(ctx context.Context, name string, args ...string) error {
	_, _, err := c.exec(ctx, false, name, args...)
	return err
}

// timed runs name args like run and returns how long the command took, in
// milliseconds, from its start to its exit.
func (c command) timed(ctx context.Context, name string, args ...string) (float64, error) {
	_, ms, err := c.exec(ctx, false, name, args...)
	return ms, err
}

// output runs name args and returns its stdout.
func (c command) output(ctx context.Context, name string, args ...string) (string, error) {
	out, _, err := c.exec(ctx, true, name, args...)
	return out, err
}

func (c command) exec(ctx context.Context, capture bool, name string, args ...string) (string, float64, error) {
	timeout := c.timeout
	if timeout == 0 {
		timeout = cmdTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Dir = c.dir
	stderr, err := os.CreateTemp("", "peerbench-stderr.")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(stderr.Name())
	defer stderr.Close()
	cmd.Stderr = stderr
	var out *os.File
	if capture {
		if out, err = os.CreateTemp("", "peerbench-stdout."); err != nil {
			return "", 0, err
		}
		defer os.Remove(out.Name())
		defer out.Close()
		cmd.Stdout = out
	}
	// Stdin (unless given) and Stdout (without capture) stay nil: /dev/null.
	if c.stdin != "" {
		cmd.Stdin = strings.NewReader(c.stdin)
	}
	t0 := time.Now()
	err = cmd.Run()
	ms := msSince(t0)
	stdout := ""
	if capture {
		data, _ := os.ReadFile(out.Name())
		stdout = string(data)
	}
	if err != nil {
		msg, _ := os.ReadFile(stderr.Name())
		return stdout, ms, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, tail(string(msg), 300))
	}
	return stdout, ms, nil
}

// tail returns the last n bytes of s on one line.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return strings.ReplaceAll(s, "\n", " | ")
}

// daemon is a long-running process the harness started and must stop.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// startDaemon starts a background process in its own process group (so that
// a Ctrl-C reaches only the harness, which then tears it down in order),
// with its output in logPath.
func startDaemon(name string, env []string, logPath string, bin string, args ...string) (*daemon, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(d.done)
	}()
	return d, nil
}

func (d *daemon) pid() int {
	if d == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then kills.
func (d *daemon) stop(grace time.Duration) {
	if d == nil || d.exited() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return
	case <-time.After(grace):
	}
	logf("%s did not stop within %s: killing it", d.name, grace)
	_ = d.cmd.Process.Kill()
	<-d.done
}

// wait waits up to timeout for the process to exit by itself.
func (d *daemon) wait(timeout time.Duration) bool {
	if d == nil {
		return true
	}
	select {
	case <-d.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// unixHTTP is an HTTP client whose every request goes to socket.
func unixHTTP(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 16,
	}}
}

// httpGet fetches url and reads the whole body: the time a client waits.
func httpGet(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s (%d bytes)", url, resp.Status, n)
	}
	return nil
}

// waitFor polls ok every 50ms until it returns true or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// parallel runs f on every item with at most n at once and returns the
// first error (the others still run to the end).
func parallel[T any](ctx context.Context, n int, items []T, f func(context.Context, T) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, n)
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(ctx, it); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// mountPoints lists the mount points under dir, deepest first.
func mountPoints(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount left under dir.
func unmountUnder(dir string) {
	for _, mp := range mountPoints(dir) {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
			logf("unmount %s: %v", mp, err)
		}
	}
}

// rssMB is a process's resident set in MiB.
func rssMB(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, err
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// hostUsedMB is MemTotal - MemAvailable in MiB: what the host cannot give
// to a newcomer without reclaiming.
func hostUsedMB() (float64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	var total, avail float64
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "MemTotal:":
			total = v
		case "MemAvailable:":
			avail = v
		}
	}
	if total == 0 {
		return 0, fmt.Errorf("no MemTotal in /proc/meminfo")
	}
	return (total - avail) / 1024, nil
}

// sample calls f n times, 200ms apart.
func sample(n int, f func() (float64, error)) ([]float64, error) {
	var out []float64
	for i := range n {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		v, err := f()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// msSince is the time since t in milliseconds.
func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// writeFile writes data, making parent directories.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// processRunning reports whether a process whose comm is name runs, and its pid.
func processRunning(name string) (int, bool) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		if string(bytes.TrimSpace(comm)) != name {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue // a zombie is not running
		}
		return pid, true
	}
	return 0, false
}

// cgroupDirs lists /sys/fs/cgroup/*/name that exist.
func cgroupDirs(name string) []string {
	m, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", name))
	return m
}

// removeCgroups removes the empty cgroup trees named name (in every
// hierarchy) that did not exist before (before holds what did). Processes
// that were just killed may hold a cgroup for a moment: it retries for 5s.
func removeCgroups(name string, before []string) {
	for range 50 {
		left := 0
		for _, dir := range cgroupDirs(name) {
			if slices.Contains(before, dir) {
				continue
			}
			var dirs []string
			_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				_ = unix.Rmdir(dirs[i])
			}
			if fileExists(dir) {
				left++
			}
		}
		if left == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	logf("cgroup %s: could not remove it everywhere (still in use)", name)
}

// cgroupMemMB sums the memory charged to cgroups (paths relative to the
// memory hierarchy: memory.usage_in_bytes on cgroup v1, memory.current on
// v2), in MiB.
func cgroupMemMB(dirs []string) (float64, error) {
	var total float64
	for _, d := range dirs {
		file := filepath.Join(memHierarchy(), d, "memory.usage_in_bytes")
		if !fileExists(file) {
			file = filepath.Join(memHierarchy(), d, "memory.current")
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return 0, err
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
		if err != nil {
			return 0, err
		}
		total += v / (1 << 20)
	}
	return total, nil
}

// memHierarchy is where the memory cgroups are mounted.
func memHierarchy() string {
	if fileExists("/sys/fs/cgroup/memory") {
		return "/sys/fs/cgroup/memory"
	}
	return "/sys/fs/cgroup"
}

// cgroupProcs lists the processes in cgroups (memory hierarchy paths) and
// their descendants.
func cgroupProcs(dirs []string) []int {
	var pids []int
	for _, d := range dirs {
		_ = filepath.WalkDir(filepath.Join(memHierarchy(), d), func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// pssMB is a process's proportional set size in MiB.
func pssMB(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, err
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no Pss for pid %d", pid)
}

// memCgroupOf is the memory cgroup of a process, relative to the hierarchy.
func memCgroupOf(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	v2 := ""
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			v2 = f[2]
		}
		for _, c := range strings.Split(f[1], ",") {
			if c == "memory" {
				return f[2], nil
			}
		}
	}
	if v2 != "" {
		return v2, nil
	}
	return "", fmt.Errorf("no memory cgroup for pid %d", pid)
}

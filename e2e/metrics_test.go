package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricsText GETs /1.0/metrics over the unix socket.
func (d *daemon) metricsText(query string) (string, http.Header) {
	d.t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://hangard/1.0/metrics" + query)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("GET /1.0/metrics%s: %s: %s", query, resp.Status, b)
	}
	return string(b), resp.Header
}

// parseSeries maps each sample line's "name{labels}" to its value.
func parseSeries(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// seriesWith returns the samples of metric whose labels include every one
// of labels (`name="c1"`).
func seriesWith(all map[string]float64, metric string, labels ...string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range all {
		if !strings.HasPrefix(k, metric+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(k, l)
		}
		if ok {
			out[k] = v
		}
	}
	return out
}

// A running container and a running VM report LXD's series with their
// labels and believable values; a stopped instance reports none; the text
// passes promtool.
func TestMetrics(t *testing.T) {
	requireVM(t)
	promtool := lookPath("promtool")
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "busybox", "c1")
	// A write limit on the root disk: the kernel's blk-throttle keeps a
	// cgroup's per-device I/O statistics (blkio.throttle.*, v1) only for
	// devices it throttles.
	d.must("config", "device", "override", "c1", "root", "limits.write=1GB")
	// A second project's container, for the labels and ?project=.
	d.must("project", "create", "p2", "features.images=false", "features.profiles=false")
	d.must("--project", "p2", "launch", "busybox", "c2")
	// The harness's clean-up deletes the default project's instances only.
	t.Cleanup(func() { d.hangar("--project", "p2", "delete", "c2", "--force") })
	d.must("init", "busybox", "stopped1")
	d.must("launch", "busybox", "v1", "--vm", "-c", "limits.memory=256MiB", "-c", "limits.cpu=1")
	// Traffic on c1's loopback, so its counters move.
	d.hangar("exec", "c1", "--", "nc", "-w", "1", "127.0.0.1", "1")
	// Direct writes: cgroup v1 charges buffered writeback to the flusher,
	// not to the container. A root that refuses O_DIRECT skips the check.
	_, ddErr, ddCode := d.hangar("exec", "c1", "--", "dd", "if=/dev/zero", "of=/root/blob", "bs=64k", "count=16", "oflag=direct")
	t.Logf("dd oflag=direct: exit %d %s", ddCode, ddErr)

	c1 := []string{`name="c1"`, `project="default"`, `type="container"`}
	v1 := []string{`name="v1"`, `project="default"`, `type="virtual-machine"`}
	var text string
	var all map[string]float64
	// The VM's interface counters come from its agent once it answers.
	waitFor(t, "the VM's interface counters", 2*time.Minute, func() bool {
		text, _ = d.metricsText("")
		all = parseSeries(t, text)
		return len(seriesWith(all, "lxd_network_receive_bytes_total", append(v1, `device="lo"`)...)) == 1
	})
	_, hdr := d.metricsText("")
	if ct := hdr.Get("Content-Type"); ct != "application/openmetrics-text; version=1.0.0; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if !strings.HasSuffix(text, "# EOF\n") {
		t.Errorf("the text does not end with # EOF")
	}

	one := func(metric string, labels ...string) float64 {
		t.Helper()
		s := seriesWith(all, metric, labels...)
		if len(s) != 1 {
			t.Errorf("%s%v: %d series, want 1: %v", metric, labels, len(s), s)
			return -1
		}
		for _, v := range s {
			return v
		}
		return -1
	}
	t.Run("container", func(t *testing.T) {
		if n := one("lxd_procs_total", c1...); n < 2 { // busybox init and its sleep
			t.Errorf("lxd_procs_total = %v, want at least 2", n)
		}
		cpu := seriesWith(all, "lxd_cpu_seconds_total", c1...)
		if len(cpu) == 0 {
			t.Error("no lxd_cpu_seconds_total for c1")
		}
		var total float64
		for k, v := range cpu {
			if !strings.Contains(k, `mode="user"`) && !strings.Contains(k, `mode="system"`) {
				t.Errorf("%s: mode neither user nor system", k)
			}
			total += v
		}
		if total <= 0 || total > 600 {
			t.Errorf("c1 used %v CPU seconds", total)
		}
		memTotal := one("lxd_memory_MemTotal_bytes", c1...)
		rss := one("lxd_memory_RSS_bytes", c1...)
		free := one("lxd_memory_MemFree_bytes", c1...)
		if rss <= 0 || memTotal <= rss || free <= 0 || free >= memTotal {
			t.Errorf("memory: total %v rss %v free %v", memTotal, rss, free)
		}
		one("lxd_memory_OOM_kills_total", c1...)
		one("lxd_memory_Cached_bytes", c1...)
		if one("lxd_network_receive_packets_total", append(c1, `device="lo"`)...) == 0 {
			t.Error("c1's loopback received no packets")
		}
		one("lxd_network_transmit_bytes_total", append(c1, `device="eth0"`)...)
		size := one("lxd_filesystem_size_bytes", append(c1, `device="root"`, `mountpoint="/"`)...)
		avail := one("lxd_filesystem_avail_bytes", append(c1, `device="root"`, `mountpoint="/"`)...)
		if size <= 0 || avail <= 0 || avail > size {
			t.Errorf("root filesystem: size %v avail %v", size, avail)
		}
		if n := one("lxd_cpu_effective_total", c1...); n < 1 {
			t.Errorf("lxd_cpu_effective_total = %v", n)
		}
		// 1 MiB written directly: the writes reached a block device (on
		// a host with the blkio controller).
		var written float64
		for _, v := range seriesWith(all, "lxd_disk_written_bytes_total", c1...) {
			written += v
		}
		if _, err := exec.Command("sh", "-c", "grep -qw blkio /proc/self/mountinfo").CombinedOutput(); err == nil && ddCode == 0 && written < 1<<20 {
			t.Errorf("c1 wrote %v bytes to its block devices, want at least 1 MiB", written)
		}
	})
	t.Run("virtual machine", func(t *testing.T) {
		if n := one("lxd_memory_MemTotal_bytes", v1...); n != 256<<20 {
			t.Errorf("lxd_memory_MemTotal_bytes = %v, want 256 MiB", n)
		}
		if n := one("lxd_memory_RSS_bytes", v1...); n <= 0 {
			t.Errorf("lxd_memory_RSS_bytes = %v", n)
		}
		var cpu float64
		for _, v := range seriesWith(all, "lxd_cpu_seconds_total", v1...) {
			cpu += v
		}
		if cpu <= 0 {
			t.Errorf("v1 used %v CPU seconds", cpu)
		}
		if n := one("lxd_disk_read_bytes_total", append(v1, `device="root"`)...); n <= 0 {
			t.Errorf("v1 read %v bytes from its root disk while booting", n)
		}
		if n := one("lxd_disk_reads_completed_total", append(v1, `device="root"`)...); n <= 0 {
			t.Errorf("v1 completed %v reads", n)
		}
		if n := one("lxd_network_receive_packets_total", append(v1, `device="lo"`)...); n < 0 {
			t.Errorf("v1 lo packets %v", n)
		}
		if s := seriesWith(all, "lxd_procs_total", v1...); len(s) != 0 {
			t.Errorf("a VM's processes are the guest's, which the host cannot count: %v", s)
		}
	})
	t.Run("only running instances", func(t *testing.T) {
		if strings.Contains(text, `name="stopped1"`) {
			t.Error("the stopped instance has series")
		}
		d.must("stop", "c1", "--force")
		after, _ := d.metricsText("")
		if strings.Contains(after, `name="c1"`) {
			t.Error("c1 still has series once stopped")
		}
		d.must("start", "c1")
	})
	t.Run("own metrics", func(t *testing.T) {
		for _, want := range []string{
			`hangar_api_request_duration_seconds_count{method="POST",route="POST /1.0/instances"}`,
			`hangar_operations_created_total{class="task"}`,
			`hangar_events_published_total`,
			"go_goroutines", "process_resident_memory_bytes",
		} {
			if _, ok := all[want]; !ok {
				t.Errorf("no %s", want)
			}
		}
		for k := range all {
			if strings.Contains(k, "/1.0/instances/c1") || strings.Contains(k, "/1.0/operations/") && !strings.Contains(k, "{id}") {
				t.Errorf("a raw path as a route: %s", k)
			}
		}
	})
	t.Run("project filter", func(t *testing.T) {
		c2 := []string{`name="c2"`, `project="p2"`, `type="container"`}
		if len(seriesWith(all, "lxd_procs_total", c2...)) != 1 {
			t.Error("the unfiltered scrape lacks p2's c2")
		}
		for _, tc := range []struct {
			project    string
			has, hasnt []string
		}{
			{"default", c1, c2},
			{"p2", c2, c1},
		} {
			text, _ := d.metricsText("?project=" + tc.project)
			s := parseSeries(t, text)
			if len(seriesWith(s, "lxd_procs_total", tc.has...)) != 1 {
				t.Errorf("?project=%s lacks %v", tc.project, tc.has)
			}
			if len(seriesWith(s, "lxd_procs_total", tc.hasnt...)) != 0 {
				t.Errorf("?project=%s shows %v", tc.project, tc.hasnt)
			}
			if strings.Contains(text, "hangar_") || strings.Contains(text, "go_goroutines") {
				t.Errorf("?project=%s shows the daemon's own series", tc.project)
			}
		}
	})
	t.Run("promtool", func(t *testing.T) {
		if promtool == "" {
			t.Skip("promtool is not installed (scripts/deps.sh installs prometheus)")
		}
		if err := promtoolCheck(promtool, text); err != nil {
			t.Error(err)
		}
	})
}

// lxdLintFindings are what promtool's linter says of LXD's own metric
// names, which hangard keeps for compatibility (dashboards, alerts):
// /proc/meminfo's CamelCase, and gauges named _total.
var lxdLintFindings = []string{
	`metric names should be written in 'snake_case' not 'camelCase'`,
	`lxd_procs_total non-counter metrics should not have "_total" suffix`,
	`lxd_cpu_effective_total non-counter metrics should not have "_total" suffix`,
}

// promtoolCheck runs `promtool check metrics` on text. promtool exits 1
// for a text it cannot parse and 3 for lint findings; findings other than
// those LXD's names cause are errors.
func promtoolCheck(promtool, text string) error {
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		return fmt.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		known := false
		for _, f := range lxdLintFindings {
			known = known || strings.Contains(line, f)
		}
		if !known {
			return fmt.Errorf("promtool check metrics: %s\n(all of it: %s)", line, out.String())
		}
	}
	return nil
}

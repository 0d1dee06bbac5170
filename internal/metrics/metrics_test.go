package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/operation"
)

// fakeInstances serves canned figures; an instance without figures has
// stopped (driver.ErrNotRunning), one with a failure fails to read.
type fakeInstances struct {
	running []instance.Running
	figures map[string]driver.Metrics
	fail    map[string]error
	mu      sync.Mutex
	reads   int
}

func (f *fakeInstances) Running(ctx context.Context) []instance.Running { return f.running }

func (f *fakeInstances) Metrics(ctx context.Context, r instance.Running) (driver.Metrics, error) {
	f.mu.Lock()
	f.reads++
	f.mu.Unlock()
	if err := f.fail[r.Name]; err != nil {
		return driver.Metrics{}, err
	}
	m, ok := f.figures[r.Name]
	if !ok {
		return driver.Metrics{}, fmt.Errorf("metrics of %s: %w", r.Name, driver.ErrNotRunning)
	}
	return m, nil
}

func running(name, project string, typ instance.Type) instance.Running {
	return instance.Running{Name: name, Project: project, Type: typ}
}

// containerFigures is what a container on a cgroup v1 host reports.
func containerFigures() driver.Metrics {
	return driver.Metrics{
		CPU:       []driver.CPUTime{{CPU: "0", User: 1.5, System: 0.25}, {CPU: "1", User: 2, System: 0.5}},
		CPUs:      2,
		Memory:    []driver.MemoryFigure{{Kind: driver.MemTotal, Value: 1 << 30}, {Kind: driver.MemRSS, Value: 4096}, {Kind: driver.MemOOMKills, Value: 3}},
		Disk:      map[string]driver.DiskIO{"sda": {ReadBytes: 512, ReadsCompleted: 1, WrittenBytes: 1024, WritesCompleted: 2}},
		Network:   map[string]driver.NetCounters{"eth0": {ReceiveBytes: 100, TransmitPackets: 7}},
		Processes: 4,
		Filesystem: []driver.Filesystem{{Device: "root", Type: "overlay", Mountpoint: "/",
			Size: 10 << 30, Free: 5 << 30, Avail: 4 << 30}},
	}
}

// series parses an OpenMetrics text into "name{labels}" -> value.
func series(t *testing.T, text string) map[string]float64 {
	t.Helper()
	if !strings.HasSuffix(text, "# EOF\n") {
		t.Fatalf("no # EOF at the end:\n%s", text)
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	// The classic parser checks the names, labels and escaping.
	parser := expfmt.NewTextParser(model.LegacyValidation)
	if _, err := parser.TextToMetricFamilies(strings.NewReader(strings.TrimSuffix(text, "# EOF\n"))); err != nil {
		t.Fatalf("does not parse: %v\n%s", err, text)
	}
	return out
}

func gather(t *testing.T, r *Registry, project string) map[string]float64 {
	t.Helper()
	var b bytes.Buffer
	var only []string
	if project != "" {
		only = []string{project}
	}
	if err := r.Write(context.Background(), &b, only); err != nil {
		t.Fatal(err)
	}
	return series(t, b.String())
}

func TestInstanceSeries(t *testing.T) {
	vm := driver.Metrics{
		CPU:       []driver.CPUTime{{User: 3, System: 1}}, // one thread for every vCPU
		Memory:    []driver.MemoryFigure{{Kind: driver.MemTotal, Value: 256 << 20}},
		Disk:      map[string]driver.DiskIO{"root": {ReadBytes: 9}},
		Processes: -1, // the guest's: unknown
	}
	src := &fakeInstances{
		running: []instance.Running{
			running("c1", "default", instance.TypeContainer),
			running("gone", "default", instance.TypeContainer), // stops between list and read
			running("broken", "default", instance.TypeContainer),
			running("v1", "p2", instance.TypeVM),
			running("bare", "default", instance.TypeContainer), // every cgroup file missing
		},
		figures: map[string]driver.Metrics{"c1": containerFigures(), "v1": vm, "bare": {Processes: -1}},
		fail:    map[string]error{"broken": errors.New("read /sys/fs/cgroup/x: permission denied")},
	}
	c1 := `name="c1",project="default",type="container"`
	v1 := `name="v1",project="p2",type="virtual-machine"`
	tests := []struct {
		name    string
		project string
		want    map[string]float64 // series that must be there, with values
		absent  []string           // substrings no series may hold
	}{{
		name:    "every project",
		project: "",
		want: map[string]float64{
			`lxd_cpu_seconds_total{cpu="0",mode="user",` + c1 + `}`:                                     1.5,
			`lxd_cpu_seconds_total{cpu="1",mode="system",` + c1 + `}`:                                   0.5,
			`lxd_cpu_effective_total{` + c1 + `}`:                                                       2,
			`lxd_memory_MemTotal_bytes{` + c1 + `}`:                                                     1 << 30,
			`lxd_memory_RSS_bytes{` + c1 + `}`:                                                          4096,
			`lxd_memory_OOM_kills_total{` + c1 + `}`:                                                    3,
			`lxd_disk_written_bytes_total{device="sda",` + c1 + `}`:                                     1024,
			`lxd_disk_writes_completed_total{device="sda",` + c1 + `}`:                                  2,
			`lxd_network_receive_bytes_total{device="eth0",` + c1 + `}`:                                 100,
			`lxd_network_transmit_packets_total{device="eth0",` + c1 + `}`:                              7,
			`lxd_filesystem_avail_bytes{device="root",fstype="overlay",mountpoint="/",` + c1 + `}`:      4 << 30,
			`lxd_filesystem_size_bytes{device="root",fstype="overlay",mountpoint="/",` + c1 + `}`:       10 << 30,
			`lxd_procs_total{` + c1 + `}`:                                                               4,
			`lxd_cpu_seconds_total{cpu="",mode="user",` + v1 + `}`:                                      3,
			`lxd_memory_MemTotal_bytes{` + v1 + `}`:                                                     256 << 20,
			`lxd_disk_read_bytes_total{device="root",` + v1 + `}`:                                       9,
			`hangar_events_published_total`:                                                             42,
			`hangar_operations_created_total{class="task"}`:                                             5,
			`hangar_operations{class="task",status="Running"}`:                                          1,
			`hangar_api_request_duration_seconds_count{method="GET",route="GET /1.0/instances/{name}"}`: 1,
		},
		absent: []string{`name="gone"`, `name="broken"`, `lxd_procs_total{` + v1, `lxd_procs_total{name="bare"`},
	}, {
		name:    "one project",
		project: "p2",
		want:    map[string]float64{`lxd_memory_MemTotal_bytes{` + v1 + `}`: 256 << 20},
		absent:  []string{`name="c1"`, "hangar_", "go_", "process_"},
	}, {
		name:    "a project with no running instance",
		project: "empty",
		absent:  []string{"lxd_", "hangar_"},
	}}
	r := New(Config{
		Instances: src,
		Operations: func() operation.Stats {
			return operation.Stats{Created: map[string]uint64{"task": 5},
				Current: map[operation.ClassStatus]int{{Class: "task", Status: "Running"}: 1}}
		},
		Events: func() event.Stats { return event.Stats{Published: 42, Delivered: 40} },
	})
	r.ObserveRequest("GET", "GET /1.0/instances/{name}", 3*time.Millisecond)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := gather(t, r, tc.project)
			for k, v := range tc.want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
				}
			}
			for k := range got {
				for _, a := range tc.absent {
					if strings.Contains(k, a) {
						t.Errorf("series %s should not be there (%q)", k, a)
					}
				}
			}
		})
	}
}

// Every series name is LXD's, and the format is what Prometheus reads.
func TestFormat(t *testing.T) {
	src := &fakeInstances{
		running: []instance.Running{running("c1", "default", instance.TypeContainer)},
		figures: map[string]driver.Metrics{"c1": containerFigures()},
	}
	var b bytes.Buffer
	if err := New(Config{Instances: src}).Write(context.Background(), &b, nil); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"# TYPE lxd_cpu_seconds_total counter\n",
		"# TYPE lxd_procs_total gauge\n",
		"# TYPE lxd_memory_MemTotal_bytes gauge\n",
		"# TYPE go_goroutines gauge\n",
		"# TYPE process_cpu_seconds_total counter\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		if !model.LegacyValidation.IsValidMetricName(name) {
			t.Errorf("metric name %q is not valid", name)
		}
	}
}

// promtool, where installed, parses the text; its only findings are those
// LXD's own names cause (CamelCase from /proc/meminfo, gauges named
// _total), which hangard keeps for compatibility.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (scripts/deps.sh installs prometheus)")
	}
	src := &fakeInstances{
		running: []instance.Running{running("c1", "default", instance.TypeContainer), running("v1", "default", instance.TypeVM)},
		figures: map[string]driver.Metrics{"c1": containerFigures(), "v1": {CPU: []driver.CPUTime{{User: 1}}, Processes: -1}},
	}
	r := New(Config{Instances: src, Events: func() event.Stats { return event.Stats{} }})
	r.ObserveRequest("GET", "GET /1.0", time.Millisecond)
	var b bytes.Buffer
	if err := r.Write(context.Background(), &b, nil); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &b
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 3) {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	allowed := []string{
		`lxd_memory_MemTotal_bytes metric names should be written in 'snake_case' not 'camelCase'`,
		`lxd_procs_total non-counter metrics should not have "_total" suffix`,
		`lxd_cpu_effective_total non-counter metrics should not have "_total" suffix`,
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if line != "" && !slices.Contains(allowed, line) {
			t.Errorf("promtool: %s", line)
		}
	}
}

func BenchmarkGather(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			src := &fakeInstances{figures: map[string]driver.Metrics{}}
			for i := range n {
				name := fmt.Sprintf("c%d", i)
				src.running = append(src.running, running(name, "default", instance.TypeContainer))
				m := containerFigures()
				m.Network["lo"] = driver.NetCounters{ReceiveBytes: 1}
				src.figures[name] = m
			}
			r := New(Config{Instances: src})
			var buf bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				if err := r.Write(context.Background(), &buf, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(buf.Len()), "bytes/scrape")
		})
	}
}

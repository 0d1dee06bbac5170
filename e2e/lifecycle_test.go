package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// instanceJSON reads one instance through `hangar list --format json`.
func (d *daemon) instance(name string) api.InstanceFull {
	d.t.Helper()
	var list []api.InstanceFull
	if err := json.Unmarshal([]byte(d.must("list", "--format", "json")), &list); err != nil {
		d.t.Fatalf("decode list: %v", err)
	}
	for _, in := range list {
		if in.Name == name {
			return in
		}
	}
	d.t.Fatalf("instance %s not in list", name)
	return api.InstanceFull{}
}

func (d *daemon) pid(name string) int {
	d.t.Helper()
	in := d.instance(name)
	if in.State == nil || in.State.Pid == 0 {
		d.t.Fatalf("%s has no pid (status %s)", name, in.Status)
	}
	return int(in.State.Pid)
}

// cgroupFile reads a cgroup file of a process's cgroup for a v1
// controller (or the unified hierarchy when the host is cgroup v2).
func cgroupFile(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	for _, line := range strings.Split(readFile(t, fmt.Sprintf("/proc/%d/cgroup", pid)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return strings.TrimSpace(readFile(t, filepath.Join("/sys/fs/cgroup", controller, parts[2], file)))
			}
		}
		if parts[0] == "0" && parts[1] == "" {
			if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", parts[2], file)); err == nil {
				return strings.TrimSpace(string(b))
			}
		}
	}
	t.Fatalf("no %s cgroup for pid %d", controller, pid)
	return ""
}

func TestContainerLifecycle(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()

	out := d.must("launch", "busybox", "c1",
		"-c", "limits.memory=64MiB", "-c", "limits.processes=50", "-c", "limits.cpu=1",
		"-c", "environment.GREETING=hello world")
	if !strings.Contains(out, "c1") {
		t.Errorf("launch output %q does not name c1", out)
	}
	in := d.instance("c1")
	if in.Status != "Running" || in.Type != "container" {
		t.Fatalf("after launch: %s %s", in.Status, in.Type)
	}
	pid := d.pid("c1")

	t.Run("environment seen by PID 1", func(t *testing.T) {
		env := strings.Split(readFile(t, fmt.Sprintf("/proc/%d/environ", pid)), "\x00")
		found := false
		for _, kv := range env {
			found = found || kv == "GREETING=hello world"
		}
		if !found {
			t.Fatalf("PID 1 environment %q lacks GREETING", env)
		}
	})
	t.Run("limits in the cgroup", func(t *testing.T) {
		if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); got != strconv.Itoa(64<<20) {
			t.Errorf("memory limit %s, want %d", got, 64<<20)
		}
		if got := cgroupFile(t, pid, "pids", "pids.max"); got != "50" {
			t.Errorf("pids.max %s, want 50", got)
		}
		if got := cgroupFile(t, pid, "cpu", "cpu.cfs_quota_us"); got != "100000" {
			t.Errorf("cpu quota %s, want 100000 (one CPU)", got)
		}
		// Changed and removed limits reach the running container at once.
		d.must("config", "set", "c1", "limits.memory=96MiB")
		d.must("config", "unset", "c1", "limits.processes")
		if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); got != strconv.Itoa(96<<20) {
			t.Errorf("memory limit after config set %s, want %d", got, 96<<20)
		}
		if got := cgroupFile(t, pid, "pids", "pids.max"); got != "max" {
			t.Errorf("pids.max after unset %s, want max", got)
		}
	})
	t.Run("own namespaces, unprivileged", func(t *testing.T) {
		for _, ns := range []string{"mnt", "pid", "uts", "ipc", "net", "user"} {
			self, _ := os.Readlink("/proc/self/ns/" + ns)
			theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
			if err != nil || self == theirs {
				t.Errorf("namespace %s: container %q, host %q, %v", ns, theirs, self, err)
			}
		}
		uidMap := strings.Fields(readFile(t, fmt.Sprintf("/proc/%d/uid_map", pid)))
		if len(uidMap) != 3 || uidMap[0] != "0" || uidMap[1] != "1000000" {
			t.Errorf("uid_map %v, want 0 -> 1000000", uidMap)
		}
	})
	t.Run("freeze and unfreeze", func(t *testing.T) {
		d.must("freeze", "c1")
		if s := d.instance("c1").Status; s != "Frozen" {
			t.Fatalf("after freeze: %s", s)
		}
		if got := cgroupFile(t, pid, "freezer", "freezer.state"); got != "FROZEN" {
			t.Errorf("freezer.state %s", got)
		}
		d.must("unfreeze", "c1")
		if s := d.instance("c1").Status; s != "Running" {
			t.Fatalf("after unfreeze: %s", s)
		}
	})
	t.Run("graceful stop", func(t *testing.T) {
		// busybox init halts on the stop signal, well before the timeout.
		d.must("stop", "c1", "--timeout", "30")
		if s := d.instance("c1").Status; s != "Stopped" {
			t.Fatalf("after stop: %s", s)
		}
		if processAlive(pid) {
			t.Fatalf("PID 1 (%d) still alive after stop", pid)
		}
	})
	t.Run("start again keeps the writable layer", func(t *testing.T) {
		d.must("start", "c1")
		if s := d.instance("c1").Status; s != "Running" {
			t.Fatalf("after start: %s", s)
		}
		d.must("restart", "c1", "--force")
		if s := d.instance("c1").Status; s != "Running" {
			t.Fatalf("after restart: %s", s)
		}
	})
	t.Run("rename and delete", func(t *testing.T) {
		_, errOut, code := d.hangar("delete", "c1")
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Fatalf("delete of a running instance: exit %d, stderr %q (want one line, non-zero)", code, errOut)
		}
		d.must("rename", "c1", "c2")
		d.must("delete", "c2", "--force")
		if out := d.must("list", "--format", "json"); strings.TrimSpace(out) != "[]" {
			t.Fatalf("list after delete: %s", out)
		}
		entries, _ := os.ReadDir(filepath.Join(d.dir, "containers"))
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				t.Errorf("container dir %s left after delete", e.Name())
			}
		}
	})
}

func TestStopTimeoutVersusForce(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "sleeper", "s1")
	d.must("launch", "sleeper", "s2")
	pid1, pid2 := d.pid("s1"), d.pid("s2")

	// PID 1 ignores the stop signal: stop waits the whole timeout, then kills.
	start := time.Now()
	d.must("stop", "s1", "--timeout", "2")
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("stop --timeout 2 returned after %s: it did not wait for the timeout", took)
	}
	if processAlive(pid1) || d.instance("s1").Status != "Stopped" {
		t.Fatal("s1 still running after stop with timeout")
	}
	d.must("stop", "s2", "--force")
	if processAlive(pid2) || d.instance("s2").Status != "Stopped" {
		t.Fatal("s2 still running after stop --force")
	}

	// The console log kept what PID 1 printed.
	log := d.must("console", "s1", "--show-log")
	if !strings.Contains(log, "hello-from-init") {
		t.Errorf("console log %q lacks the init's output", log)
	}
}

func TestExitCodeRecorded(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	c := d.client()
	ctx := context.Background()
	op, err := c.CreateInstance(ctx, api.InstancesPost{Name: "e7", Source: api.InstanceSource{Type: "image", Alias: "exit7"}, Start: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = op.Wait(ctx) // the start may race the exit; either way it ends stopped
	waitFor(t, "e7 to stop by itself", 10*time.Second, func() bool {
		in, _, err := c.GetInstance(ctx, "e7")
		return err == nil && in.Status == "Stopped" && in.Config["volatile.last_state.exit_code"] != ""
	})
	in, _, _ := c.GetInstance(ctx, "e7")
	if got := in.Config["volatile.last_state.exit_code"]; got != "7" {
		t.Fatalf("exit code %q, want 7", got)
	}
}

func TestDaemonKill9KeepsContainers(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "busybox", "k1")
	d.must("init", "busybox", "auto1", "-c", "boot.autostart=true")
	pid := d.pid("k1")

	d.kill9()
	if !processAlive(pid) {
		t.Fatal("container died with the daemon")
	}
	d2 := &daemon{t: t, dir: d.dir, socket: d.socket, netns: d.netns}
	d2.start()
	if got := d2.pid("k1"); got != pid {
		t.Fatalf("after restart pid %d, want %d (reattached)", got, pid)
	}
	waitFor(t, "auto1 to autostart", 20*time.Second, func() bool { return d2.instance("auto1").Status == "Running" })
	d2.must("stop", "k1", "--force")
	if processAlive(pid) {
		t.Fatal("reattached container not stopped")
	}

	// A clean shutdown leaves containers running too.
	d2.must("start", "k1")
	pid = d2.pid("k1")
	_ = d2.cmd.Process.Signal(os.Interrupt)
	<-d2.exited
	if !processAlive(pid) {
		t.Fatal("clean shutdown stopped the container")
	}
	d3 := &daemon{t: t, dir: d.dir, socket: d.socket, netns: d.netns}
	d3.start()
	if got := d3.pid("k1"); got != pid {
		t.Fatalf("after clean restart pid %d, want %d", got, pid)
	}
}

func TestBadInputLeavesNothing(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	c := d.client()
	ctx := context.Background()
	d.must("launch", "busybox", "taken")
	create := func(name, alias string, config map[string]string) error {
		op, err := c.CreateInstance(ctx, api.InstancesPost{Name: name, Source: api.InstanceSource{Type: "image", Alias: alias}, InstancePut: api.InstancePut{Config: config}, Start: true})
		if err != nil {
			return err
		}
		return op.Wait(ctx)
	}
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"unknown key", create("x1", "busybox", map[string]string{"limits.cpus": "1"}), 400},
		{"bad memory", create("x2", "busybox", map[string]string{"limits.memory": "lots"}), 400},
		{"bad name", create("bad_name", "busybox", nil), 400},
		{"duplicate", create("taken", "busybox", nil), 409},
		{"missing image", create("x3", "nope", nil), 404},
	}
	for _, tt := range tests {
		if got := client.StatusCodeOf(tt.err); got != tt.status {
			t.Errorf("%s: status %d (%v), want %d", tt.name, got, tt.err, tt.status)
		}
	}
	// Through the CLI: one line on stderr, non-zero exit.
	_, errOut, code := d.hangar("launch", "busybox", "x4", "-c", "limits.memory=huge")
	if code == 0 || !strings.Contains(errOut, "limits.memory") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("CLI bad memory: exit %d, stderr %q", code, errOut)
	}
	// A launch that fails at start (an empty root: no init) leaves nothing.
	op, err := c.CreateInstance(ctx, api.InstancesPost{Name: "x5", Source: api.InstanceSource{Type: "none"}, Start: true})
	if err == nil {
		err = op.Wait(ctx)
	}
	if err == nil {
		t.Error("launch with no root filesystem succeeded")
	}
	names, _ := c.GetInstanceNames(ctx)
	if len(names) != 1 || names[0] != "taken" {
		t.Fatalf("instances after bad input: %v", names)
	}
	entries, _ := os.ReadDir(filepath.Join(d.dir, "containers"))
	if n := countVisible(entries); n != 1 {
		t.Errorf("%d container dirs, want 1", n)
	}
}

func countVisible(entries []os.DirEntry) int {
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

func TestParallelLaunches(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	c := d.client()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op, err := c.CreateInstance(ctx, api.InstancesPost{Name: fmt.Sprintf("p%d", i), Source: api.InstanceSource{Type: "image", Alias: "busybox"}, Start: true})
			if err == nil {
				err = op.Wait(ctx)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	list, err := c.GetInstancesFull(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, in := range list {
		if in.Status == "Running" && in.State != nil && processAlive(int(in.State.Pid)) {
			running++
		}
	}
	if running != 20 {
		t.Fatalf("%d of 20 running", running)
	}
}

func TestEventsReplaySince(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	c := d.client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	listener, err := c.GetEvents(ctx, []string{"lifecycle"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	d.must("launch", "busybox", "ev1")
	var first api.Event
	select {
	case first = <-listener.Events():
	case <-ctx.Done():
		t.Fatal("no lifecycle event")
	}
	listener.Close()
	// While no one listens, more happens.
	d.must("freeze", "ev1")
	d.must("unfreeze", "ev1")

	replay, err := c.GetEvents(ctx, []string{"lifecycle"}, first.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Close()
	var actions []string
	last := first.Sequence
	for len(actions) < 3 {
		select {
		case ev := <-replay.Events():
			if ev.Sequence <= last {
				t.Fatalf("sequence %d after %d: not increasing", ev.Sequence, last)
			}
			last = ev.Sequence
			var lc api.EventLifecycle
			_ = json.Unmarshal(ev.Metadata, &lc)
			actions = append(actions, lc.Action)
		case <-ctx.Done():
			t.Fatalf("replay gave only %v", actions)
		}
	}
	want := []string{"instance-started", "instance-paused", "instance-resumed"}
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Fatalf("replayed %v, want %v (first event was %s)", actions, want, first.Metadata)
	}
}

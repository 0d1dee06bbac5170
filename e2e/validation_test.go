package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// TestValuesCheckedBeforeTheKernel sends values that runc or the kernel
// would refuse through the CLI and the SDK: each is refused with a 400
// naming the key, the instance and the profiles keep what they had, and a
// bad value never reaches the default profile, so launches keep working.
func TestValuesCheckedBeforeTheKernel(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "sleeper", "v1", "-c", "limits.processes=100")
	pid := d.pid("v1")

	cli := []struct {
		args []string
		key  string
	}{
		{[]string{"launch", "sleeper", "v2", "-c", "limits.processes=5000000"}, "limits.processes"},
		{[]string{"launch", "sleeper", "v2", "-c", "limits.memory=2MiB"}, "limits.memory"},
		{[]string{"config", "set", "v1", "limits.processes=4194305"}, "limits.processes"},
		{[]string{"config", "set", "v1", "limits.cpu=0-999"}, "limits.cpu"},
		{[]string{"config", "set", "v1", "limits.cpu=9999"}, "limits.cpu"},
		{[]string{"config", "set", "v1", "limits.memory=99999TiB"}, "limits.memory"},
		{[]string{"config", "set", "v1", `oci.cmd=["sleep"]`, "oci.uid=4294967295"}, "oci.uid"},
		{[]string{"profile", "set", "default", "limits.cpu=0-999"}, "limits.cpu"},
		{[]string{"profile", "set", "default", "limits.processes=-1"}, "limits.processes"},
	}
	for _, c := range cli {
		d.mustFail(c.args, c.key)
	}

	sdk := d.client()
	ctx := context.Background()
	nul := map[string]string{"environment.A": "x\x00y"}
	errs := map[string]error{
		"PATCH instance": sdk.PatchInstance(ctx, "v1", map[string]any{"config": nul}, ""),
		"PUT profile":    sdk.UpdateProfile(ctx, "default", api.ProfilePut{Config: nul}, ""),
	}
	for what, err := range errs {
		if client.StatusCodeOf(err) != 400 || !strings.Contains(err.Error(), "environment.A") {
			t.Errorf("%s with a NUL byte: %v, want a 400 naming environment.A", what, err)
		}
	}

	if got := d.configGet("v1", "limits.processes"); got != "100" {
		t.Errorf("v1 limits.processes %q after refused changes, want 100", got)
	}
	if got := strings.TrimSpace(cgroupFile(t, pid, "pids", "pids.max")); got != "100" {
		t.Errorf("v1 pids.max %q, want 100", got)
	}
	p, _, err := sdk.GetProfile(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Config) != 0 {
		t.Errorf("default profile after refused changes: %v", p.Config)
	}
	d.must("launch", "sleeper", "v3")
	if st := d.instance("v3").Status; st != "Running" {
		t.Fatalf("launch after refused profile changes: %s", st)
	}

	// A rename to an invalid name is refused at once, not by an operation.
	if _, err := sdk.RenameInstance(ctx, "v1", "1bad"); client.StatusCodeOf(err) != 400 {
		t.Errorf("rename to 1bad: %v, want a 400 before any operation", err)
	}
	d.mustFail([]string{"rename", "v1", "bad_name"}, "bad_name")
	d.mustFail([]string{"rename", "v1", "v3"}, "already in use")
}

// TestStopSurvivesDaemonKill kills hangard -9 while a stop waits for a
// PID 1 that ignores the stop signal, and ends that PID 1 as the stop's
// kill would have: the restarted daemon must see an instance that was
// asked to stop, not one that vanished, and leave it stopped. A second
// instance that vanished without a stop is started again (autostart unset,
// as LXD does); it starts last, so once it runs, recovery is done.
func TestStopSurvivesDaemonKill(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "sleeper", "s1")
	d.must("launch", "sleeper", "s2", "-c", "boot.autostart.priority=-1")
	pid1, pid2 := d.pid("s1"), d.pid("s2")

	c := d.client()
	ctx := context.Background()
	if _, err := c.UpdateInstanceState(ctx, "s1", api.InstanceStatePut{Action: "stop", Timeout: 600}); err != nil {
		t.Fatal(err)
	}
	// Stopping: the stop has been recorded and the signal sent.
	waitFor(t, "s1 to be stopping", 20*time.Second, func() bool { return d.instance("s1").Status == "Stopping" })
	d.kill9()
	for _, pid := range []int{pid1, pid2} {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill PID 1 %d: %v", pid, err)
		}
	}
	waitFor(t, "both PID 1s to end", 20*time.Second, func() bool { return !processAlive(pid1) && !processAlive(pid2) })

	d2 := &daemon{t: t, dir: d.dir, socket: d.socket, netns: d.netns}
	d2.start()
	waitFor(t, "s2 to start again", 30*time.Second, func() bool { return d2.instance("s2").Status == "Running" })
	in := d2.instance("s1")
	if in.Status != "Stopped" {
		t.Fatalf("s1 is %s after the restart: a stop that reached the runtime was undone", in.Status)
	}
	if got := in.Config["volatile.last_state.power"]; got != "STOPPED" {
		t.Errorf("s1 volatile.last_state.power %q, want STOPPED", got)
	}
	for _, line := range strings.Split(d2.logText(), "\n") {
		if strings.Contains(line, "vanished while the daemon was down") && strings.Contains(line, "instance=s1") {
			t.Errorf("recovery took the stopped s1 for a vanished instance: %s", line)
		}
	}
}

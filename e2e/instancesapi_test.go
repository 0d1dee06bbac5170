package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	wire "github.com/hangar-dev/hangar/api/instances"
	"github.com/hangar-dev/hangar/client/instances"
	"github.com/hangar-dev/hangar/internal/cuid"
)

// TestInstancesAPI drives the instances API of seed 002 with the in-tree
// client against a real hangard and one real VM (TCG): over TCP with
// bearer tokens (its own listener) and over the unix socket under
// /instances-api/. Create, wait, get, list filters, stop, start with a
// cmd override, stat, stats, auto-standby status, snapshot schedule,
// standby and restore (plain and zstd: a guest process survives),
// snapshots, fork (both run), the same VM seen by the LXD API, delete; 401 without a token, 403 for a viewer's create; bad input
// answered 400 naming the field and leaving nothing.
func TestInstancesAPI(t *testing.T) {
	requireVM(t)
	var addr string
	d := startDaemonWithFreePort(t, &addr)
	ctx := context.Background()
	d.must("project", "create", "p1")
	opTok := strings.TrimSpace(d.must("token", "create", "api-op", "--project", "p1", "--role", "operator"))
	viewTok := strings.TrimSpace(d.must("token", "create", "api-view", "--project", "p1", "--role", "viewer"))
	hc := &http.Client{Transport: transportIn(d.netns)}
	base := "http://" + addr + "/"
	op, err := instances.New(base, instances.WithBearerToken(opTok), instances.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	viewer, _ := instances.New(base, instances.WithBearerToken(viewTok), instances.WithHTTPClient(hc))
	anon, _ := instances.New(base, instances.WithHTTPClient(hc))
	bad, _ := instances.New(base, instances.WithBearerToken("hgr_999_nope"), instances.WithHTTPClient(hc))
	sock, _ := instances.New("http://unix/instances-api/", instances.WithUnixSocket(d.socket))

	ref := ociVMImage(t, d.netns)
	good := func(name string) wire.InstanceNewParams {
		size, vcpus := "256MB", int64(1)
		return wire.InstanceNewParams{Name: name, Image: ref, Size: &size, Vcpus: &vcpus, Tags: map[string]string{"team": "api"}}
	}

	t.Run("auth", func(t *testing.T) {
		if _, err := anon.List(ctx, instances.ListParams{}); instances.StatusOf(err) != 401 {
			t.Fatalf("no token: %v", err)
		}
		if _, err := bad.List(ctx, instances.ListParams{}); instances.StatusOf(err) != 401 {
			t.Fatalf("bad token: %v", err)
		}
		if _, err := viewer.New(ctx, good("nope")); instances.StatusOf(err) != 403 {
			t.Fatalf("viewer create: %v", err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		str := func(s string) *string { return &s }
		zero := int64(0)
		for _, tc := range []struct {
			field string
			edit  func(p *wire.InstanceNewParams)
		}{
			{"name", func(p *wire.InstanceNewParams) { p.Name = "Bad_Name" }},
			{"image", func(p *wire.InstanceNewParams) { p.Image = "" }},
			{"size", func(p *wire.InstanceNewParams) { p.Size = str("big") }},
			{"vcpus", func(p *wire.InstanceNewParams) { p.Vcpus = &zero }},
			{"hypervisor firecracker is not available on this host (it has: qemu)", func(p *wire.InstanceNewParams) { p.Hypervisor = "firecracker" }},
			{"devices", func(p *wire.InstanceNewParams) { p.Devices = []string{"gpu0"} }},
			{"env.1X", func(p *wire.InstanceNewParams) { p.Env = map[string]string{"1X": "y"} }},
			{"tags", func(p *wire.InstanceNewParams) { p.Tags = map[string]string{"a b": "c"} }},
			{"disk_io_bps", func(p *wire.InstanceNewParams) { p.DiskIoBps = str("fast") }},
			{"network.bandwidth_upload", func(p *wire.InstanceNewParams) {
				p.Network = &wire.InstanceNewParamsNetwork{BandwidthUpload: str("1Gbpx")}
			}},
			{"auto_standby.idle_timeout", func(p *wire.InstanceNewParams) {
				p.AutoStandby = &wire.AutoStandbyPolicyParams{IdleTimeout: str("soon")}
			}},
		} {
			p := good("badinput")
			tc.edit(&p)
			_, err := op.New(ctx, p)
			if instances.StatusOf(err) != 400 || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("%s: %v, want 400 naming it", tc.field, err)
			}
		}
		if got, err := sock.List(ctx, instances.ListParams{}); err != nil || len(got) != 0 {
			t.Fatalf("bad input left instances: %v %v", got, err)
		}
		if names := d.instanceNames(); len(names) != 0 {
			t.Fatalf("bad input left instances: %v", names)
		}
	})

	start := time.Now()
	vm, err := op.New(ctx, good("api1"))
	if err != nil {
		t.Fatalf("create: %v\n%s", err, d.logText())
	}
	t.Logf("create answered after %v in state %s", time.Since(start), vm.State)
	if !cuid.Valid(vm.ID) || vm.Hypervisor != wire.HypervisorQEMU || vm.Size != "256MB" || vm.Vcpus != 1 || vm.Tags["team"] != "api" {
		t.Fatalf("created %+v", vm)
	}
	waitState := func(c *instances.Client, want wire.State) {
		t.Helper()
		w, err := c.Wait(ctx, vm.ID, want, "2m")
		if err != nil || w.TimedOut || w.State != want {
			t.Fatalf("wait %s: %+v %v", want, w, err)
		}
	}
	waitState(op, wire.StateRunning)

	t.Run("get and list", func(t *testing.T) {
		got, err := op.Get(ctx, vm.ID)
		if err != nil || got.Name != "api1" || got.State != wire.StateRunning || got.StartedAt == nil {
			t.Fatalf("get %+v %v", got, err)
		}
		byName, err := op.Get(ctx, "api1")
		if err != nil || byName.ID != vm.ID {
			t.Fatalf("get by name %+v %v", byName, err)
		}
		for _, tc := range []struct {
			p    instances.ListParams
			want int
		}{
			{instances.ListParams{}, 1},
			{instances.ListParams{Tags: map[string]string{"team": "api"}}, 1},
			{instances.ListParams{Tags: map[string]string{"team": "other"}}, 0},
			{instances.ListParams{State: wire.StateRunning, Tags: map[string]string{"team": "api"}}, 1},
			{instances.ListParams{State: wire.StateStopped}, 0},
		} {
			list, err := op.List(ctx, tc.p)
			if err != nil || len(list) != tc.want {
				t.Errorf("list %+v: %d %v, want %d", tc.p, len(list), err, tc.want)
			}
		}
		// The socket acts as root in the default project: p1's VM is not there.
		if list, err := sock.List(ctx, instances.ListParams{}); err != nil || len(list) != 0 {
			t.Errorf("socket list in default: %v %v", list, err)
		}
		// The LXD API sees the same VM in the token's project.
		if in := d.instanceIn("p1", "api1"); in.Status != "Running" || in.Type != api.InstanceTypeVM {
			t.Errorf("hangar list: %s %s", in.Status, in.Type)
		}
	})

	t.Run("stop and start with cmd", func(t *testing.T) {
		if _, err := op.Stop(ctx, vm.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := op.Get(ctx, vm.ID); got.State != wire.StateStopped {
			t.Fatalf("after stop: %s", got.State)
		}
		if _, err := op.Standby(ctx, vm.ID, wire.InstanceStandbyParams{}); instances.StatusOf(err) != 409 {
			t.Fatalf("standby of a stopped VM: %v", err)
		}
		if _, err := op.Restore(ctx, vm.ID); instances.StatusOf(err) != 409 {
			t.Fatalf("restore of a stopped VM: %v", err)
		}
		if _, err := op.Start(ctx, vm.ID, wire.InstanceStartParams{Cmd: []string{"second-arg"}}); err != nil {
			t.Fatal(err)
		}
		waitState(op, wire.StateRunning)
		waitFor(t, "the overridden cmd in the console", time.Minute, func() bool {
			return strings.Contains(d.must("console", "api1", "--project", "p1", "--show-log"), "vm-entrypoint args=second-arg")
		})
	})

	t.Run("logs", func(t *testing.T) {
		read := func(lp instances.LogsParams, want string) {
			t.Helper()
			lctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			ls, err := op.Logs(lctx, vm.ID, lp)
			if err != nil {
				t.Fatalf("logs %+v: %v", lp, err)
			}
			defer ls.Close()
			var got []string
			for ls.Next() {
				if got = append(got, ls.Line()); strings.Contains(ls.Line(), want) {
					return
				}
			}
			t.Fatalf("logs %+v: no line with %q in %q (%v)", lp, want, got, ls.Err())
		}
		ten := 10
		read(instances.LogsParams{Tail: &ten}, "vm-entrypoint args=second-arg")
		read(instances.LogsParams{Source: "hypeman", Tail: &ten}, " started")
		// QEMU's own log holds what QEMU said: often nothing at all.
		if ls, err := op.Logs(ctx, vm.ID, instances.LogsParams{Source: "vmm", Tail: &ten}); err != nil {
			t.Fatalf("vmm log: %v", err)
		} else {
			for ls.Next() {
			}
			if err := ls.Err(); err != nil {
				t.Fatalf("vmm log: %v", err)
			}
			ls.Close()
		}
		if _, err := op.Logs(ctx, vm.ID, instances.LogsParams{Source: "kernel"}); instances.StatusOf(err) != 400 {
			t.Fatalf("unknown source: %v", err)
		}
		// Follow: a line written after the stream opened arrives.
		zero := 0
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		ls, err := op.Logs(lctx, vm.ID, instances.LogsParams{Follow: true, Tail: &zero})
		if err != nil {
			t.Fatal(err)
		}
		defer ls.Close()
		d.must("exec", "api1", "--project", "p1", "--", "sh", "-c", "echo follow-marker-42 >/dev/console")
		for ls.Next() {
			if strings.Contains(ls.Line(), "follow-marker-42") {
				return
			}
		}
		t.Fatalf("follow ended without the marker: %v", ls.Err())
	})

	t.Run("stat and stats", func(t *testing.T) {
		for _, tc := range []struct {
			path               string
			exists, dir, file  bool
			symlink, following bool
		}{
			{path: "/app/run.sh", exists: true, file: true},
			{path: "/app", exists: true, dir: true},
			{path: "/bin/sh", exists: true, symlink: true},
			{path: "/bin/sh", exists: true, file: true, following: true},
			{path: "/no/such/path"},
		} {
			pi, err := op.Stat(ctx, vm.ID, tc.path, tc.following)
			if err != nil || pi.Exists != tc.exists || pi.IsDir != tc.dir || pi.IsFile != tc.file || pi.IsSymlink != tc.symlink {
				t.Errorf("stat %s (follow %v): %+v %v", tc.path, tc.following, pi, err)
			}
		}
		if _, err := op.Stat(ctx, vm.ID, "relative", false); instances.StatusOf(err) != 400 {
			t.Errorf("stat of a relative path: %v", err)
		}
		st, err := op.Stats(ctx, vm.ID)
		if err != nil || st.InstanceID != vm.ID || st.InstanceName != "api1" || st.AllocatedVcpus != 1 ||
			st.AllocatedMemoryBytes != 256<<20 || st.CPUSeconds <= 0 || st.MemoryRssBytes <= 0 || st.MemoryVmsBytes < st.MemoryRssBytes {
			t.Fatalf("stats %+v %v", st, err)
		}
	})

	t.Run("update", func(t *testing.T) {
		// No credential names KEY: real values are all PATCH may change.
		if _, err := op.Update(ctx, vm.ID, wire.InstanceUpdateParams{Env: map[string]string{"KEY": "v"}}); instances.StatusOf(err) != 400 {
			t.Fatalf("update of an env key no credential names: %v", err)
		}
	})

	t.Run("auto-standby status", func(t *testing.T) {
		st, err := op.AutoStandby.Status(ctx, vm.ID)
		if err != nil || st.Configured || st.Reason != "policy_missing" || st.TrackingMode == "" {
			t.Fatalf("status without a policy: %+v %v", st, err)
		}
		if _, err := op.AutoStandby.Hold(ctx, vm.ID); instances.StatusOf(err) != 400 {
			t.Fatalf("hold without a policy: %v", err)
		}
	})

	t.Run("snapshot schedule", func(t *testing.T) {
		if _, err := op.SnapshotSchedule.Get(ctx, vm.ID); instances.StatusOf(err) != 404 {
			t.Fatalf("schedule before any: %v", err)
		}
		two, prefix := int64(2), "nightly"
		before := time.Now()
		sch, err := op.SnapshotSchedule.Update(ctx, vm.ID, wire.SetSnapshotScheduleRequest{Interval: "1h",
			Retention: &wire.SnapshotScheduleRetentionParams{MaxCount: &two}, NamePrefix: &prefix, Metadata: map[string]string{"by": "e2e"}})
		if err != nil || sch.Interval != "1h0m0s" && sch.Interval != "1h" || sch.Retention.MaxCount != 2 || sch.InstanceID != vm.ID ||
			sch.NextRunAt.Before(before.Add(59*time.Minute)) || sch.Metadata["by"] != "e2e" {
			t.Fatalf("set schedule: %+v %v", sch, err)
		}
		if got, err := op.SnapshotSchedule.Get(ctx, vm.ID); err != nil || !got.NextRunAt.Equal(sch.NextRunAt) {
			t.Fatalf("get schedule: %+v %v", got, err)
		}
		if _, err := op.SnapshotSchedule.Update(ctx, vm.ID, wire.SetSnapshotScheduleRequest{Interval: "10s",
			Retention: &wire.SnapshotScheduleRetentionParams{MaxCount: &two}}); instances.StatusOf(err) != 400 {
			t.Fatalf("interval under 1m: %v", err)
		}
		if err := op.SnapshotSchedule.Delete(ctx, vm.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := op.SnapshotSchedule.Get(ctx, vm.ID); instances.StatusOf(err) != 404 {
			t.Fatalf("schedule after delete: %v", err)
		}
	})

	// bgProcess starts a process in the guest that outlives the exec and
	// returns its pid: alive after a restore means the memory came back.
	bgProcess := func(t *testing.T, name string) string {
		t.Helper()
		return strings.TrimSpace(d.must("exec", name, "--project", "p1", "--", "sh", "-c", "sleep 100000 </dev/null >/dev/null 2>&1 & echo $!"))
	}

	t.Run("standby and restore", func(t *testing.T) {
		bg := bgProcess(t, "api1")
		sb, err := op.Standby(ctx, vm.ID, wire.InstanceStandbyParams{})
		if err != nil || sb.State != wire.StateStandby || !sb.HasSnapshot {
			t.Fatalf("standby: %+v %v", sb, err)
		}
		if in := d.instanceIn("p1", "api1"); in.Status != "Stopped" || !in.Stateful {
			t.Fatalf("LXD view after standby: %s stateful=%v", in.Status, in.Stateful)
		}
		if _, err := op.Start(ctx, vm.ID, wire.InstanceStartParams{}); instances.StatusOf(err) != 409 {
			t.Fatalf("start of a standby VM: %v", err)
		}
		rs, err := op.Restore(ctx, vm.ID)
		if err != nil || rs.HasSnapshot {
			t.Fatalf("restore: %+v %v", rs, err)
		}
		waitState(op, wire.StateRunning)
		d.must("exec", "api1", "--project", "p1", "--", "kill", "-0", bg)
		// Compressed, per call: the memory comes back the same.
		on, lvl := true, int64(3)
		if _, err := op.Standby(ctx, vm.ID, wire.InstanceStandbyParams{Compression: &wire.SnapshotCompressionConfigParams{Enabled: &on, Algorithm: "zstd", Level: &lvl}}); err != nil {
			t.Fatalf("standby with zstd: %v", err)
		}
		if _, err := op.Restore(ctx, vm.ID); err != nil {
			t.Fatalf("restore from zstd: %v", err)
		}
		waitState(op, wire.StateRunning)
		d.must("exec", "api1", "--project", "p1", "--", "kill", "-0", bg)
	})

	// One instance, two APIs: a change through either shows in the other,
	// in the LXD event stream (with the token as requestor) and in the
	// daemon's action log of the instance (logs?source=hypeman).
	t.Run("both APIs and their events", func(t *testing.T) {
		ectx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		l, err := d.client().UseProject("p1").GetEvents(ectx, []string{"lifecycle"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if _, err := op.Standby(ctx, vm.ID, wire.InstanceStandbyParams{}); err != nil {
			t.Fatal(err)
		}
		ev := nextLifecycle(t, ectx, l, "instance-stopped")
		var lc api.EventLifecycle
		if err := json.Unmarshal(ev.Metadata, &lc); err != nil || lc.Source != "/1.0/instances/api1?project=p1" || ev.Project != "p1" ||
			lc.Requestor == nil || lc.Requestor.Username != "api-op" {
			t.Errorf("the LXD event of a standby through the instances API: %+v (requestor %+v) %s %v", lc, lc.Requestor, ev.Project, err)
		}
		if _, err := op.Restore(ctx, vm.ID); err != nil {
			t.Fatal(err)
		}
		nextLifecycle(t, ectx, l, "instance-started")
		// Through the LXD API: a tag set there is the instance's tag here.
		d.must("config", "set", "api1", "user.tag.owner=lxd", "--project", "p1")
		if got, err := op.Get(ctx, vm.ID); err != nil || got.Tags["owner"] != "lxd" {
			t.Fatalf("a tag set through the LXD API: %+v %v", got.Tags, err)
		}
		twenty := 20
		lctx, lcancel := context.WithTimeout(ctx, time.Minute)
		defer lcancel()
		ls, err := op.Logs(lctx, vm.ID, instances.LogsParams{Source: "hypeman", Tail: &twenty})
		if err != nil {
			t.Fatal(err)
		}
		defer ls.Close()
		var lines []string
		for ls.Next() {
			lines = append(lines, ls.Line())
		}
		if all := strings.Join(lines, "\n"); !strings.Contains(all, "standby") || !strings.Contains(all, "updated") {
			t.Fatalf("the daemon's action log lacks the standby or the LXD API's update:\n%s", all)
		}
		waitState(op, wire.StateRunning)
	})

	t.Run("snapshots", func(t *testing.T) {
		name := "snap-e2e"
		sn, err := op.Snapshots.New(ctx, vm.ID, wire.InstanceSnapshotNewParams{Kind: "Standby", Name: &name, Tags: map[string]string{"why": "test"}})
		if err != nil || sn.Kind != "Standby" || sn.ID != name || sn.Tags["why"] != "test" || sn.SourceInstanceID != vm.ID {
			t.Fatalf("snapshot: %+v %v", sn, err)
		}
		if out := d.must("snapshot", "list", "api1", "--project", "p1"); !strings.Contains(out, name) {
			t.Fatalf("the LXD API lacks the snapshot:\n%s", out)
		}
		if _, err := op.Snapshots.New(ctx, vm.ID, wire.InstanceSnapshotNewParams{Kind: "Standby", Name: &name}); instances.StatusOf(err) != 409 {
			t.Fatalf("a second snapshot of that name: %v", err)
		}
		rs, err := op.Snapshots.Restore(ctx, vm.ID, name, wire.InstanceSnapshotRestoreParams{})
		if err != nil || rs.State == wire.StateStopped || rs.State == wire.StateStandby {
			t.Fatalf("restore of a Standby snapshot: %+v %v", rs, err)
		}
		waitState(op, wire.StateRunning)
	})

	t.Run("fork", func(t *testing.T) {
		if _, err := op.Fork(ctx, vm.ID, wire.InstanceForkParams{Name: "api1-fork"}); instances.StatusOf(err) != 409 {
			t.Fatalf("fork of a running VM without from_running: %v", err)
		}
		yes := true
		fk, err := op.Fork(ctx, vm.ID, wire.InstanceForkParams{Name: "api1-fork", FromRunning: &yes})
		if err != nil || fk.ID == vm.ID || !cuid.Valid(fk.ID) || fk.Name != "api1-fork" {
			t.Fatalf("fork: %+v %v", fk, err)
		}
		if w, err := op.Wait(ctx, fk.ID, wire.StateRunning, "2m"); err != nil || w.State != wire.StateRunning {
			t.Fatalf("the fork: %+v %v", w, err)
		}
		waitState(op, wire.StateRunning)
		// Both run: each answers an exec, with its own hostname.
		for _, n := range []string{"api1", "api1-fork"} {
			if out := strings.TrimSpace(d.must("exec", n, "--project", "p1", "--", "hostname")); out != n {
				t.Errorf("hostname of %s: %q", n, out)
			}
		}
		if list, err := op.List(ctx, instances.ListParams{State: wire.StateRunning}); err != nil || len(list) != 2 {
			t.Errorf("running after the fork: %d %v", len(list), err)
		}
		if err := op.Delete(ctx, fk.ID); err != nil {
			t.Fatal(err)
		}
	})

	// Auto-standby through this API: a VM serving HTTP, idle for its
	// timeout, goes to standby; a connection to it wakes it and is
	// answered.
	t.Run("auto-standby", func(t *testing.T) {
		webRef, _ := serveAppImage(t, d.netns, "test/apiweb:1",
			"#!/bin/sh\n# api-web-serves-this\nexec busybox httpd -f -p 8080 -h /app\n")
		on, idle := true, "3s"
		p := good("api-web")
		p.Image = webRef
		p.AutoStandby = &wire.AutoStandbyPolicyParams{Enabled: &on, IdleTimeout: &idle}
		web, err := op.New(ctx, p)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		defer func() {
			if err := op.Delete(ctx, web.ID); err != nil {
				t.Errorf("delete: %v", err)
			}
		}()
		if !web.AutoStandby.Enabled || web.AutoStandby.IdleTimeout != "3s" {
			t.Fatalf("created with policy %+v", web.AutoStandby)
		}
		if w, err := op.Wait(ctx, web.ID, wire.StateStandby, "2m"); err != nil || w.State != wire.StateStandby {
			st, serr := op.AutoStandby.Status(ctx, web.ID)
			cfg, _, _ := d.hangar("config", "show", "api-web", "--project", "p1", "--expanded")
			t.Fatalf("wait for the auto-standby: %+v %v; status %+v %v\n%s\n%s", w, err, st, serr, cfg, tailLog(d.logText(), 30))
		}
		st, err := op.AutoStandby.Status(ctx, web.ID)
		if err != nil || !st.Configured || !st.Enabled || !st.Supported || st.Reason != "instance_not_running" {
			t.Fatalf("status in standby: %+v %v", st, err)
		}
		if _, err := op.AutoStandby.Hold(ctx, web.ID); instances.StatusOf(err) != 409 {
			t.Fatalf("hold of a standby VM: %v", err)
		}
		got, err := op.Get(ctx, web.ID)
		if err != nil || got.Network.IP == nil {
			t.Fatalf("the standby VM's address: %+v %v", got, err)
		}
		c := &http.Client{Transport: transportIn(d.netns), Timeout: 2 * time.Minute}
		defer c.CloseIdleConnections()
		start := time.Now()
		resp, err := c.Get("http://" + *got.Network.IP + ":8080/run.sh")
		if err != nil {
			t.Fatalf("connect to the standby VM: %v\n%s", err, tailLog(d.logText(), 30))
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "api-web-serves-this") {
			t.Fatalf("answer %q", body)
		}
		t.Logf("connect to a standby VM until answered: %v", time.Since(start))
		if w, err := op.Wait(ctx, web.ID, wire.StateRunning, "1m"); err != nil || w.State != wire.StateRunning {
			t.Fatalf("after the wake: %+v %v", w, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := op.Delete(ctx, vm.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := op.Get(ctx, vm.ID); instances.StatusOf(err) != 404 {
			t.Fatalf("get after delete: %v", err)
		}
		var list []api.InstanceFull
		if err := json.Unmarshal([]byte(d.must("list", "--project", "p1", "--format", "json")), &list); err != nil || len(list) != 0 {
			t.Fatalf("hangar list after delete: %v %v", list, err)
		}
	})
}

// startDaemonWithFreePort starts hangard with --instances-api on a free
// port of its network namespace, written to *addr.
func startDaemonWithFreePort(t *testing.T, addr *string) *daemon {
	t.Helper()
	ns := newNetns(t)
	l, err := listenIn(ns, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	*addr = l.Addr().String()
	l.Close()
	dir, err := os.MkdirTemp("", "hangard-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove data dir: %v", err)
		}
	})
	d := &daemon{t: t, dir: dir, socket: filepath.Join(dir, "unix.socket"), netns: ns, args: []string{"--instances-api", *addr}}
	d.start()
	return d
}

// instanceIn is an instance of project p as the LXD API shows it.
func (d *daemon) instanceIn(p, name string) api.InstanceFull {
	d.t.Helper()
	var list []api.InstanceFull
	if err := json.Unmarshal([]byte(d.must("list", "--project", p, "--format", "json")), &list); err != nil {
		d.t.Fatalf("decode list: %v", err)
	}
	for _, in := range list {
		if in.Name == name {
			return in
		}
	}
	d.t.Fatalf("instance %s not in project %s", name, p)
	return api.InstanceFull{}
}

package e2e

import (
	"context"
	"encoding/json"
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
// cmd override, standby and restore, the same VM seen by the LXD API,
// delete; 401 without a token, 403 for a viewer's create; bad input
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

	t.Run("standby and restore", func(t *testing.T) {
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

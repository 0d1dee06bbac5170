package virt

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	virtclient "github.com/hangar-dev/hangar/client/virt"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/edge"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/operation"
)

// untrustedOnly makes every websocket prove itself with a login.
type untrustedOnly struct{}

func (untrustedOnly) Identify(*http.Request) auth.Identity { return edge.Untrusted }

func newTestServer(t *testing.T) (*Server, *fakeCore, string) {
	t.Helper()
	hub := event.New(0, "")
	core := newFakeCore(hub)
	ops := operation.New(hub, time.Minute)
	s := &Server{Core: core, Images: fakeImages{}, Ops: ops, Events: hub, Authz: fakeAuthz{}, Authn: untrustedOnly{},
		Tokens: fakeTokens{
			"hgr_1_op":   {Kind: auth.KindToken, Name: "operator", Type: "operator"},
			"hgr_2_view": {Kind: auth.KindToken, Name: "viewer", Type: "viewer"},
		}}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { ts.Close(); s.Close(); ops.Close(); hub.Close() })
	return s, core, "ws" + strings.TrimPrefix(ts.URL, "http") + Path
}

func dial(t *testing.T, url, key string) *virtclient.Client {
	t.Helper()
	ctx := context.Background()
	c, err := virtclient.Dial(ctx, url, virtclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if key != "" {
		var ok bool
		if err := c.Call(ctx, &ok, "auth.login_with_api_key", key); err != nil || !ok {
			t.Fatalf("login: %v %v", ok, err)
		}
	}
	return c
}

func rpcErr(t *testing.T, err error) *virtclient.Error {
	t.Helper()
	var e *virtclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a JSON-RPC error, got %v", err)
	}
	return e
}

func TestEdgeAuthAndRoles(t *testing.T) {
	_, _, url := newTestServer(t)
	ctx := context.Background()
	anon := dial(t, url, "")
	e := rpcErr(t, anon.Call(ctx, nil, "virt.instance.device_list", "x"))
	if e.Code != codeCallError || e.Data.Errname != "ENOTAUTHENTICATED" {
		t.Fatalf("unauthenticated: %+v", e)
	}
	var ok bool
	if err := anon.Call(ctx, &ok, "auth.login_with_api_key", "hgr_9_nope"); err != nil || ok {
		t.Fatalf("bad key: %v %v", ok, err)
	}
	viewer := dial(t, url, "hgr_2_view")
	e = rpcErr(t, viewer.Call(ctx, nil, "virt.instance.start", "x"))
	if e.Data.Errname != "EACCES" {
		t.Fatalf("viewer start: %+v", e)
	}
	if _, err := viewer.Subscribe(ctx, "virt.instance.query"); err != nil {
		t.Fatalf("viewer subscribe: %v", err)
	}
	var res map[string]any
	if err := viewer.Call(ctx, &res, "auth.login_ex", map[string]any{"mechanism": "API_KEY_PLAIN", "username": "", "api_key": "hgr_1_op"}); err != nil || res["response_type"] != "SUCCESS" {
		t.Fatalf("login_ex: %v %v", res, err)
	}
	e = rpcErr(t, viewer.Call(ctx, nil, "no.such"))
	if e.Code != codeNoMethod {
		t.Fatalf("no method: %+v", e)
	}
}

func TestEdgeValidation(t *testing.T) {
	_, _, url := newTestServer(t)
	ctx := context.Background()
	c := dial(t, url, "hgr_1_op")
	tests := []struct {
		name string
		arg  map[string]any
		attr string
	}{
		{"missing name", map[string]any{"image": "busybox"}, "virt.instance.create.name"},
		{"name type", map[string]any{"name": 3, "image": "busybox"}, "virt.instance.create.name"},
		{"name too long", map[string]any{"name": strings.Repeat("a", 201), "image": "busybox"}, "virt.instance.create.name"},
		{"extra", map[string]any{"name": "a", "image": "busybox", "bogus": 1}, "virt.instance.create.bogus"},
		{"const remote", map[string]any{"name": "a", "image": "busybox", "remote": "X"}, "virt.instance.create.remote"},
		{"const source", map[string]any{"name": "a", "image": "busybox", "source_type": "ZVOL"}, "virt.instance.create.source_type"},
		{"enum type", map[string]any{"name": "a", "image": "busybox", "instance_type": "JAIL"}, "virt.instance.create.instance_type"},
		{"enum bus", map[string]any{"name": "a", "image": "busybox", "root_disk_io_bus": "IDE"}, "virt.instance.create.root_disk_io_bus"},
		{"range size", map[string]any{"name": "a", "image": "busybox", "root_disk_size": 4}, "virt.instance.create.root_disk_size"},
		{"int type", map[string]any{"name": "a", "image": "busybox", "memory": 1.5}, "virt.instance.create.memory"},
		{"bool type", map[string]any{"name": "a", "image": "busybox", "autostart": "yes"}, "virt.instance.create.autostart"},
		{"env value", map[string]any{"name": "a", "image": "busybox", "environment": map[string]any{"A": 1}}, "virt.instance.create.environment.A"},
		{"null not allowed", map[string]any{"name": "a", "image": "busybox", "privileged_mode": nil}, "virt.instance.create.privileged_mode"},
		{"unknown image", map[string]any{"name": "a", "image": "nope"}, "virt.instance.create.image"},
		{"devices type", map[string]any{"name": "a", "image": "busybox", "devices": "x"}, "virt.instance.create.devices"},
		{"dev_type", map[string]any{"name": "a", "image": "busybox", "devices": []any{map[string]any{"dev_type": "FLOPPY"}}}, "virt.instance.create.devices.0.dev_type"},
		{"port range", map[string]any{"name": "a", "image": "busybox", "devices": []any{map[string]any{"dev_type": "PROXY", "source_proto": "TCP", "source_port": 0, "dest_proto": "TCP", "dest_port": 80}}}, "virt.instance.create.devices.0.source_port"},
		{"proto enum", map[string]any{"name": "a", "image": "busybox", "devices": []any{map[string]any{"dev_type": "PROXY", "source_proto": "SCTP", "source_port": 1, "dest_proto": "TCP", "dest_port": 80}}}, "virt.instance.create.devices.0.source_proto"},
		{"device extra", map[string]any{"name": "a", "image": "busybox", "devices": []any{map[string]any{"dev_type": "TPM", "x": 1}}}, "virt.instance.create.devices.0.x"},
		{"gpu gid", map[string]any{"name": "a", "image": "busybox", "devices": []any{map[string]any{"dev_type": "GPU", "gpu_type": "PHYSICAL", "gid": 90000001}}}, "virt.instance.create.devices.0.gid"},
		{"pci required", map[string]any{"name": "a", "image": "busybox", "devices": []any{map[string]any{"dev_type": "PCI"}}}, "virt.instance.create.devices.0.address"},
		{"cdrom on container", map[string]any{"name": "a", "image": "busybox", "devices": []any{map[string]any{"dev_type": "CDROM", "source": "/x.iso"}}}, "virt.instance.create.devices.0.dev_type"},
		{"vnc on container", map[string]any{"name": "a", "image": "busybox", "vnc_enabled": true}, "virt.instance.create.vnc_enabled"},
		{"vnc port range", map[string]any{"name": "a", "image": "busybox", "instance_type": "VM", "vnc_enabled": true, "vnc_port": 80}, "virt.instance.create.vnc_port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := rpcErr(t, c.Call(ctx, nil, "virt.instance.create", tc.arg))
			if e.Code != codeInvalidParams || !slices.Contains(e.Attrs(), tc.attr) {
				t.Fatalf("want %s named, got %+v %v", tc.attr, e.Data, e.Attrs())
			}
		})
	}
	e := rpcErr(t, c.Call(ctx, nil, "virt.instance.stop", "a", map[string]any{"force": "yes"}))
	if !slices.Contains(e.Attrs(), "virt.instance.stop.stop_args.force") {
		t.Fatalf("stop args: %v", e.Attrs())
	}
}

func TestEdgeJobsAndEvents(t *testing.T) {
	_, core, url := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dial(t, url, "hgr_1_op")
	watch := dial(t, url, "hgr_2_view")
	subID, err := watch.Subscribe(ctx, "virt.instance.query")
	if err != nil {
		t.Fatal(err)
	}
	var entry map[string]any
	err = c.Job(ctx, &entry, "virt.instance.create", map[string]any{
		"name": "c1", "image": "busybox", "cpu": "1", "memory": 268435456, "environment": map[string]any{"A": "b"},
		"devices": []any{map[string]any{"dev_type": "PROXY", "source_proto": "TCP", "source_port": 8080, "dest_proto": "TCP", "dest_port": 80}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if entry["name"] != "c1" || entry["status"] != "STOPPED" || entry["cpu"] != "1" || entry["memory"] != float64(268435456) {
		t.Fatalf("entry: %v", entry)
	}
	want := func(msg string, check func(virtclient.Update) bool) {
		t.Helper()
		for {
			select {
			case u := <-watch.Updates():
				if u.Msg == msg && u.ID == "c1" && check(u) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %s event", msg)
			}
		}
	}
	want("added", func(u virtclient.Update) bool { return u.Fields["name"] == "c1" })
	var ok bool
	if err := c.Job(ctx, &ok, "virt.instance.start", "c1"); err != nil || !ok {
		t.Fatalf("start: %v", err)
	}
	want("changed", func(u virtclient.Update) bool { return u.Fields["status"] == "RUNNING" && u.Fields["name"] == nil })
	// A change made by another API (the core directly) is seen too.
	if err := core.Stop(ctx, "c1", instance.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	want("changed", func(u virtclient.Update) bool { return u.Fields["status"] == "STOPPED" })
	if err := c.Call(ctx, &ok, "virt.instance.device_add", "c1", map[string]any{"dev_type": "DISK", "source": "/srv", "destination": "/data", "name": "data"}); err != nil {
		t.Fatal(err)
	}
	var devs []map[string]any
	if err := c.Call(ctx, &devs, "virt.instance.device_list", "c1"); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, d := range devs {
		names = append(names, d["name"].(string))
	}
	if !slices.Contains(names, "data") || !slices.Contains(names, "proxy0") || !slices.Contains(names, "eth0") {
		t.Fatalf("devices: %v", names)
	}
	if err := c.Call(ctx, &ok, "virt.instance.device_delete", "c1", "data"); err != nil {
		t.Fatal(err)
	}
	e := rpcErr(t, c.Call(ctx, nil, "virt.instance.device_delete", "c1", "eth0"))
	if !slices.Contains(e.Attrs(), "virt.instance.device_delete.device") {
		t.Fatalf("profile device delete: %+v", e.Data)
	}
	if err := c.Job(ctx, &entry, "virt.instance.update", "c1", map[string]any{"cpu": "2", "autostart": false}); err != nil {
		t.Fatal(err)
	}
	if entry["cpu"] != "2" || entry["autostart"] != false {
		t.Fatalf("updated: %v", entry)
	}
	if err := c.Job(ctx, &ok, "virt.instance.delete", "c1"); err != nil {
		t.Fatal(err)
	}
	want("removed", func(virtclient.Update) bool { return true })
	// Unsubscribed, the watcher gets no more instance events; job events
	// (which follow the instance's own on the same hub) still come.
	if _, err := watch.Subscribe(ctx, "core.get_jobs"); err != nil {
		t.Fatal(err)
	}
	if err := watch.Unsubscribe(ctx, subID); err != nil {
		t.Fatal(err)
	}
	var jobID int64
	if err := c.Call(ctx, &jobID, "virt.instance.create", map[string]any{"name": "c2", "image": "busybox"}); err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		select {
		case u := <-watch.Updates():
			if u.Collection == "virt.instance.query" {
				t.Fatalf("instance event after unsubscribe: %+v", u)
			}
			if u.Collection == "core.get_jobs" && u.Fields["id"] == float64(jobID) && u.Fields["state"] == "SUCCESS" {
				done = true
			}
		case <-ctx.Done():
			t.Fatal("no job event")
		}
	}
	// A failed job: start of an instance the core no longer has.
	core.put(instance.Full{Instance: instance.Instance{Name: "gone", Project: "default", Type: instance.TypeContainer, Config: map[string]string{}, Devices: instance.Devices{}, Status: instance.StatusStopped}})
	var id int64
	if err := c.Call(ctx, &id, "virt.instance.start", "gone"); err != nil {
		t.Fatal(err)
	}
	_ = core.Delete(ctx, "gone")
	if err := c.Call(ctx, nil, "core.job_wait", id); err == nil {
		// The job may have run before the delete: then it succeeded.
		t.Log("start ran before the delete")
	} else if e := rpcErr(t, err); e.Data.Errname != "ENOENT" {
		t.Fatalf("failed job: %+v", e.Data)
	}
}

// fakeUsers logs in alice with "pw"; a name in revoked was deleted or had
// its password changed after every login.
type fakeUsers struct{ revoked *sync.Map }

func (fakeUsers) Login(_ context.Context, name, password, _ string) (auth.Identity, error) {
	if name != "alice" || password != "pw" {
		return auth.Identity{}, errors.New("invalid username or password")
	}
	return auth.Identity{Kind: auth.KindUser, Name: name}, nil
}

func (f fakeUsers) SessionValid(name string, _ time.Time) bool {
	_, gone := f.revoked.Load(name)
	return !gone
}

// A user's session ends when the user is deleted or its password
// changes: the next call is ENOTAUTHENTICATED.
func TestEdgeUserSessionRevoked(t *testing.T) {
	s, _, url := newTestServer(t)
	users := fakeUsers{revoked: &sync.Map{}}
	s.Users = users
	ctx := context.Background()
	c := dial(t, url, "")
	var ok bool
	if err := c.Call(ctx, &ok, "auth.login", "alice", "wrong"); err != nil || ok {
		t.Fatalf("wrong password: %v %v", ok, err)
	}
	if err := c.Call(ctx, &ok, "auth.login", "alice", "pw"); err != nil || !ok {
		t.Fatalf("login: %v %v", ok, err)
	}
	var me map[string]any
	if err := c.Call(ctx, &me, "auth.me"); err != nil {
		t.Fatalf("auth.me as alice: %v", err)
	}
	users.revoked.Store("alice", true)
	e := rpcErr(t, c.Call(ctx, nil, "auth.me"))
	if e.Data.Errname != "ENOTAUTHENTICATED" {
		t.Fatalf("auth.me after the user was revoked: %+v", e)
	}
}

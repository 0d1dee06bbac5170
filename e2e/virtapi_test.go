package e2e

import (
	"context"
	"crypto/des"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	virtclient "github.com/hangar-dev/hangar/client/virt"
)

// TestVirtAPI drives the virt JSON-RPC API (seeds 000/001) on the unix
// socket with the in-tree client: logins and roles, create/start/stop
// through jobs, devices, query over 50 instances, events for changes
// made here and through the LXD API, bad input.
func TestVirtAPI(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	viewerKey := strings.TrimSpace(d.must("token", "create", "watch", "--project", "default", "--role", "viewer"))
	opKey := strings.TrimSpace(d.must("token", "create", "ops", "--project", "default", "--role", "operator"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dial := func() *virtclient.Client {
		c, err := virtclient.Dial(ctx, "ws://unix/api/current", virtclient.Options{Socket: d.socket})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	login := func(c *virtclient.Client, key string) {
		t.Helper()
		var ok bool
		if err := c.Call(ctx, &ok, "auth.login_with_api_key", key); err != nil || !ok {
			t.Fatalf("login: %v %v", ok, err)
		}
	}
	rpcErr := func(err error) *virtclient.Error {
		t.Helper()
		var e *virtclient.Error
		if !errors.As(err, &e) {
			t.Fatalf("want a JSON-RPC error, got %v", err)
		}
		return e
	}
	c := dial()
	watcher := dial()
	login(watcher, viewerKey)
	if _, err := watcher.Subscribe(ctx, "virt.instance.query"); err != nil {
		t.Fatal(err)
	}
	await := func(what string, match func(virtclient.Update) bool) {
		t.Helper()
		for {
			select {
			case u, ok := <-watcher.Updates():
				if !ok {
					t.Fatalf("watcher closed waiting for %s", what)
				}
				if match(u) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no event: %s", what)
			}
		}
	}

	t.Run("auth", func(t *testing.T) {
		var ok bool
		if err := c.Call(ctx, &ok, "auth.logout"); err != nil {
			t.Fatal(err)
		}
		if e := rpcErr(c.Call(ctx, nil, "virt.instance.query")); e.Data.Errname != "ENOTAUTHENTICATED" {
			t.Fatalf("after logout: %+v", e.Data)
		}
		if err := c.Call(ctx, &ok, "auth.login_with_api_key", "hgr_999_wrong"); err != nil || ok {
			t.Fatalf("bad key: %v %v", ok, err)
		}
		login(c, viewerKey)
		if e := rpcErr(c.Call(ctx, nil, "virt.instance.create", map[string]any{"name": "x", "image": "busybox"})); e.Data.Errname != "EACCES" {
			t.Fatalf("viewer create: %+v", e.Data)
		}
		var conf map[string]any
		if err := c.Call(ctx, &conf, "virt.global.config"); err != nil || conf["pool"] != "default" {
			t.Fatalf("viewer read: %v %v", conf, err)
		}
		var res map[string]any
		if err := c.Call(ctx, &res, "auth.login_ex", map[string]any{"mechanism": "API_KEY_PLAIN", "username": "ops", "api_key": opKey}); err != nil || res["response_type"] != "SUCCESS" {
			t.Fatalf("login_ex: %v %v", res, err)
		}
		if err := c.Call(ctx, &ok, "auth.login", "nobody", "pw"); err != nil || ok {
			t.Fatalf("password login of an unknown user: %v %v", ok, err)
		}
		// A user holds what its groups grant: nothing, then READ, then
		// both roles.
		cmd := exec.Command(filepath.Join(binDir, "hangar"), "--socket", d.socket, "user", "create", "alice", "--password-stdin")
		cmd.Stdin = strings.NewReader("alice-Secret-1\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("hangar user create: %v %s", err, out)
		}
		u := dial()
		if err := u.Call(ctx, &ok, "auth.login", "alice", "wrong"); err != nil || ok {
			t.Fatalf("wrong password: %v %v", ok, err)
		}
		if err := u.Call(ctx, &ok, "auth.login", "alice", "alice-Secret-1"); err != nil || !ok {
			t.Fatalf("password login: %v %v", ok, err)
		}
		if e := rpcErr(u.Call(ctx, nil, "virt.instance.device_list", "x")); e.Data.Errname != "EACCES" {
			t.Fatalf("user without groups: %+v", e.Data)
		}
		d.must("auth", "group", "create", "virt-readers")
		d.must("auth", "group", "permission", "add", "virt-readers", "project", "default", "viewer")
		d.must("auth", "identity", "group", "add", "user/alice", "virt-readers")
		if err := u.Call(ctx, &ok, "auth.login", "alice", "alice-Secret-1"); err != nil || !ok {
			t.Fatalf("password login: %v %v", ok, err)
		}
		if _, err := u.Subscribe(ctx, "virt.instance.query"); err != nil {
			t.Fatalf("reader subscribe: %v", err)
		}
		if e := rpcErr(u.Call(ctx, nil, "virt.instance.start", "x")); e.Data.Errname != "EACCES" {
			t.Fatalf("reader start: %+v", e.Data)
		}
		d.must("auth", "group", "permission", "add", "virt-readers", "project", "default", "can_manage_instances")
		if e := rpcErr(u.Call(ctx, nil, "virt.instance.start", "x")); e.Data.Errname != "ENOENT" {
			t.Fatalf("writer start of a missing instance: %+v", e.Data)
		}
	})

	t.Run("container", func(t *testing.T) {
		var entry map[string]any
		err := c.Job(ctx, &entry, "virt.instance.create", map[string]any{
			"name": "c1", "image": "busybox", "cpu": "1", "memory": 134217728, "autostart": false,
			"environment": map[string]any{"MODE": "test"},
			"devices": []any{
				map[string]any{"dev_type": "PROXY", "source_proto": "TCP", "source_port": 18080, "dest_proto": "TCP", "dest_port": 80},
				map[string]any{"dev_type": "DISK", "source": d.dir, "destination": "/mnt/host", "readonly": true, "name": "hostdir"},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if entry["type"] != "CONTAINER" || entry["cpu"] != "1" || entry["memory"] != float64(134217728) || entry["storage_pool"] != "default" {
			t.Fatalf("entry: %v", entry)
		}
		if img, _ := entry["image"].(map[string]any); img["os"] != "busybox" || img["release"] != "1.35" {
			t.Fatalf("image: %v", entry["image"])
		}
		await("added c1", func(u virtclient.Update) bool { return u.Msg == "added" && u.ID == "c1" })
		var ok bool
		if err := c.Job(ctx, &ok, "virt.instance.start", "c1"); err != nil {
			t.Fatal(err)
		}
		await("c1 running", func(u virtclient.Update) bool {
			return u.Msg == "changed" && u.ID == "c1" && u.Fields["status"] == "RUNNING"
		})
		if err := c.Call(ctx, &entry, "virt.instance.get_instance", "c1"); err != nil {
			t.Fatal(err)
		}
		if entry["status"] != "RUNNING" || entry["idmap"] == nil || entry["privileged_mode"] != false {
			t.Fatalf("running entry: %v", entry)
		}
		// Through the LXD API: the event reaches this API's subscribers.
		d.must("config", "set", "c1", "limits.cpu=2")
		await("cpu changed through LXD", func(u virtclient.Update) bool { return u.Msg == "changed" && u.ID == "c1" && u.Fields["cpu"] == "2" })
		if err := c.Call(ctx, &ok, "virt.instance.device_add", "c1", map[string]any{"dev_type": "PROXY", "name": "p2", "source_proto": "TCP", "source_port": 18081, "dest_proto": "TCP", "dest_port": 81}); err != nil {
			t.Fatal(err)
		}
		var devs []map[string]any
		if err := c.Call(ctx, &devs, "virt.instance.device_list", "c1"); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, dv := range devs {
			names = append(names, fmt.Sprint(dv["name"]))
		}
		if !slices.Contains(names, "p2") || !slices.Contains(names, "hostdir") || !slices.Contains(names, "proxy0") {
			t.Fatalf("devices: %v", names)
		}
		if err := c.Call(ctx, &ok, "virt.instance.device_delete", "c1", "p2"); err != nil {
			t.Fatal(err)
		}
		if out := d.must("config", "device", "list", "c1"); strings.Contains(out, "p2") {
			t.Fatalf("p2 still there: %s", out)
		}
		if err := c.Job(ctx, &entry, "virt.instance.update", "c1", map[string]any{"environment": map[string]any{"MODE": "prod"}}); err != nil {
			t.Fatal(err)
		}
		if env, _ := entry["environment"].(map[string]any); env["MODE"] != "prod" {
			t.Fatalf("env: %v", entry["environment"])
		}
		if err := c.Job(ctx, &ok, "virt.instance.stop", "c1", map[string]any{"force": true, "timeout": 5}); err != nil {
			t.Fatal(err)
		}
		await("c1 stopped", func(u virtclient.Update) bool {
			return u.Msg == "changed" && u.ID == "c1" && u.Fields["status"] == "STOPPED"
		})
		var jobs []map[string]any
		if err := c.Call(ctx, &jobs, "core.get_jobs", []any{[]any{"method", "=", "virt.instance.stop"}}); err != nil {
			var e *virtclient.Error
			if errors.As(err, &e) && e.Data != nil && e.Data.Errname == "ENOTSUP" {
				t.Log("query engine not merged: core.get_jobs filters skipped")
			} else {
				t.Fatal(err)
			}
		} else if len(jobs) != 1 || jobs[0]["state"] != "SUCCESS" {
			t.Fatalf("jobs: %v", jobs)
		}
		d.must("delete", "c1", "--force")
		await("c1 removed", func(u virtclient.Update) bool { return u.Msg == "removed" && u.ID == "c1" })
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			method string
			params []any
			attr   string
		}{
			{"virt.instance.create", []any{map[string]any{"name": "", "image": "busybox"}}, "virt.instance.create.name"},
			{"virt.instance.create", []any{map[string]any{"name": "b", "image": "no-such-image"}}, "virt.instance.create.image"},
			{"virt.instance.create", []any{map[string]any{"name": "b", "image": "busybox", "storage_pool": "nope"}}, "virt.instance.create.storage_pool"},
			{"virt.instance.create", []any{map[string]any{"name": "b", "image": "busybox", "devices": []any{map[string]any{"dev_type": "PROXY", "source_proto": "TCP", "source_port": 70000, "dest_proto": "TCP", "dest_port": 1}}}}, "virt.instance.create.devices.0.source_port"},
			{"virt.instance.update", []any{"nope", map[string]any{"cpu": 2}}, "virt.instance.update.virt_instance_update.cpu"},
		} {
			e := rpcErr(c.Call(ctx, nil, tc.method, tc.params...))
			if !slices.Contains(e.Attrs(), tc.attr) {
				t.Errorf("%s %v: want %s named, got %+v", tc.method, tc.params, tc.attr, e.Data)
			}
		}
		// A USB device the host lacks: refused by the core (in the job).
		var e map[string]any
		if err := c.Job(ctx, &e, "virt.instance.create", map[string]any{"name": "b", "image": "busybox",
			"devices": []any{map[string]any{"dev_type": "USB", "bus": 1, "dev": 99}}}); err == nil {
			t.Fatal("a USB device the host lacks was accepted")
		} else {
			t.Logf("USB refused: %v", err)
		}
		// The host's devices, as the device calls may name them.
		for _, m := range [][]any{{"virt.device.usb_choices"}, {"virt.device.pci_choices"}, {"virt.device.gpu_choices", "PHYSICAL"}} {
			var choices map[string]any
			if err := c.Call(ctx, &choices, m[0].(string), m[1:]...); err != nil {
				t.Errorf("%s: %v", m[0], err)
			}
		}
		if e := rpcErr(c.Call(ctx, nil, "virt.device.gpu_choices", "VIRTUAL")); !slices.Contains(e.Attrs(), "virt.device.gpu_choices.gpu_type") {
			t.Errorf("gpu_choices VIRTUAL: %+v", e.Data)
		}
		if out := d.must("list", "--format", "csv"); strings.Contains(out, "b,") {
			t.Fatalf("a refused create left an instance: %s", out)
		}
	})

	t.Run("query 50", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		slots := make(chan struct{}, 8) // a session runs at most 20 calls at once
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				slots <- struct{}{}
				defer func() { <-slots }()
				var e map[string]any
				errs <- c.Job(ctx, &e, "virt.instance.create", map[string]any{"name": fmt.Sprintf("q%02d", i), "image": "busybox", "cpu": fmt.Sprint(i%2 + 1)})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var n int
		err := c.Call(ctx, &n, "virt.instance.query", []any{[]any{"name", "^", "q"}}, map[string]any{"count": true})
		if e := (*virtclient.Error)(nil); errors.As(err, &e) && e.Data != nil && e.Data.Errname == "ENOTSUP" {
			t.Skip("query engine not merged yet")
		}
		if err != nil || n != 50 {
			t.Fatalf("count: %d %v", n, err)
		}
		var sel []map[string]any
		if err := c.Call(ctx, &sel, "virt.instance.query", []any{[]any{"cpu", "=", "2"}, []any{"name", "$", "1"}},
			map[string]any{"select": []any{"name", "image.os"}, "order_by": []any{"-name"}, "limit": 2}); err != nil {
			t.Fatal(err)
		}
		if len(sel) != 2 || sel[0]["name"] != "q41" || sel[1]["name"] != "q31" || len(sel[0]) != 2 {
			t.Fatalf("select/order/limit: %v", sel)
		}
		var one map[string]any
		if err := c.Call(ctx, &one, "virt.instance.query", []any{[]any{"name", "=", "q07"}}, map[string]any{"get": true}); err != nil || one["name"] != "q07" {
			t.Fatalf("get: %v %v", one, err)
		}
	})

	t.Run("vm", func(t *testing.T) {
		requireEFI(t)
		tmp := t.TempDir()
		disk := filepath.Join(tmp, "empty.qcow2")
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", disk, "64M").CombinedOutput(); err != nil {
			t.Fatalf("qemu-img create: %v: %s", err, out)
		}
		d.must("image", "import", disk, "--alias", "efi")
		devices := []any{}
		if lookPath("swtpm") != "" {
			devices = append(devices, map[string]any{"dev_type": "TPM", "name": "tpm"})
		}
		if lookPath("xorriso") != "" {
			iso := filepath.Join(tmp, "data.iso")
			if out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-o", iso, disk).CombinedOutput(); err != nil {
				t.Fatalf("xorriso: %v: %s", err, out)
			}
			devices = append(devices, map[string]any{"dev_type": "CDROM", "name": "cd", "source": iso, "boot_priority": 1})
		}
		var e map[string]any
		err := c.Job(ctx, &e, "virt.instance.create", map[string]any{
			"name": "v1", "image": "efi", "instance_type": "VM", "vnc_enabled": true, "vnc_password": "s3cret",
			"secure_boot": false, "root_disk_io_bus": "VIRTIO-BLK", "cpu": "1", "memory": 268435456, "devices": devices,
		})
		if err != nil && strings.Contains(err.Error(), `unknown device type "display"`) {
			t.Skip("display devices are not built yet (the VM devices issue)")
		}
		if err != nil {
			t.Fatal(err)
		}
		if e["type"] != "VM" || e["vnc_enabled"] != true || e["vnc_password"] != "s3cret" || e["secure_boot"] != false ||
			e["root_disk_io_bus"] != "VIRTIO-BLK" || e["privileged_mode"] != nil {
			t.Fatalf("vm entry: %v", e)
		}
		var ok bool
		if err := c.Job(ctx, &ok, "virt.instance.start", "v1"); err != nil {
			t.Fatal(err)
		}
		if err := c.Call(ctx, &e, "virt.instance.get_instance", "v1"); err != nil {
			t.Fatal(err)
		}
		port, _ := e["vnc_port"].(float64)
		if e["status"] != "RUNNING" || port < 5900 {
			t.Fatalf("running vm: %v", e)
		}
		if !vncLogin(t, d.netns, int(port), "s3cret") {
			t.Fatal("VNC refused the password")
		}
		if vncLogin(t, d.netns, int(port), "wrong") {
			t.Fatal("VNC took a wrong password")
		}
		var devs []map[string]any
		if err := c.Call(ctx, &devs, "virt.instance.device_list", "v1"); err != nil {
			t.Fatal(err)
		}
		for _, want := range devices {
			w := want.(map[string]any)
			if !slices.ContainsFunc(devs, func(d map[string]any) bool { return d["name"] == w["name"] && d["dev_type"] == w["dev_type"] }) {
				t.Errorf("device %v not listed: %v", w, devs)
			}
		}
		if err := c.Job(ctx, &ok, "virt.instance.stop", "v1", map[string]any{"force": true}); err != nil {
			t.Fatal(err)
		}
		if err := c.Job(ctx, &ok, "virt.instance.delete", "v1"); err != nil {
			t.Fatal(err)
		}
	})
}

// vncLogin runs RFB 3.8 VNC authentication (security type 2: the
// challenge DES-encrypted with the password, each key byte's bits
// reversed) against 127.0.0.1:port in the daemon's netns.
func vncLogin(t *testing.T, netns string, port int, password string) bool {
	t.Helper()
	c, err := dialInNetns(netns, fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("dial VNC: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	banner := make([]byte, 12)
	if _, err := io.ReadFull(c, banner); err != nil || string(banner) != "RFB 003.008\n" {
		t.Fatalf("RFB banner %q: %v", banner, err)
	}
	if _, err := c.Write(banner); err != nil {
		t.Fatal(err)
	}
	n := make([]byte, 1)
	if _, err := io.ReadFull(c, n); err != nil || n[0] == 0 {
		t.Fatalf("security types: %v %v", n, err)
	}
	types := make([]byte, n[0])
	if _, err := io.ReadFull(c, types); err != nil || !slices.Contains(types, 2) {
		t.Fatalf("security types %v (want VNC authentication): %v", types, err)
	}
	if _, err := c.Write([]byte{2}); err != nil {
		t.Fatal(err)
	}
	challenge := make([]byte, 16)
	if _, err := io.ReadFull(c, challenge); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 8)
	copy(key, password)
	for i, b := range key {
		key[i] = bits.Reverse8(b)
	}
	block, err := des.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, 16)
	block.Encrypt(resp[:8], challenge[:8])
	block.Encrypt(resp[8:], challenge[8:])
	if _, err := c.Write(resp); err != nil {
		t.Fatal(err)
	}
	result := make([]byte, 4)
	if _, err := io.ReadFull(c, result); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint32(result) == 0
}

package instances

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	wire "github.com/hangar-dev/hangar/api/instances"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/instance"
)

func newTestServer(t *testing.T) (*fakeCore, http.Handler) {
	t.Helper()
	f := newFakeCore()
	f.add("web", instance.TypeVM, instance.StatusRunning, false, true)
	f.add("idle", instance.TypeVM, instance.StatusStopped, false, false)
	f.add("sleepy", instance.TypeVM, instance.StatusStopped, true, false)
	f.add("ctr", instance.TypeContainer, instance.StatusRunning, false, true)
	s := &Server{Core: f, Volumes: fakeVolumes{}, NICNetwork: "hangarbr0", Log: slog.New(slog.DiscardHandler)}
	return f, s.Handler()
}

func call(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func errorOf(t *testing.T, rec *httptest.ResponseRecorder) wire.Error {
	t.Helper()
	var e wire.Error
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" {
		t.Fatalf("error body %q: %v", rec.Body.String(), err)
	}
	return e
}

// Every field of a create is checked at the edge: a bad one is a 400
// whose message names it, and nothing reaches the core.
func TestCreateBadInput(t *testing.T) {
	ok := `"name":"vm1","image":"docker.io/library/alpine:3"`
	tests := []struct {
		name, body, field string
	}{
		{"no name", `{"image":"alpine"}`, "name"},
		{"bad name", `{"name":"-x","image":"alpine"}`, "name"},
		{"upper name", `{"name":"VM","image":"alpine"}`, "name"},
		{"long name", `{"name":"` + strings.Repeat("a", 64) + `","image":"alpine"}`, "name"},
		{"no image", `{"name":"vm1"}`, "image"},
		{"spaced image", `{"name":"vm1","image":"a b"}`, "image"},
		{"size", `{` + ok + `,"size":"lots"}`, "size"},
		{"size unit", `{` + ok + `,"size":"1XB"}`, "size"},
		{"size zero", `{` + ok + `,"size":"0"}`, "size"},
		{"hotplug", `{` + ok + `,"hotplug_size":"x"}`, "hotplug_size"},
		{"overlay", `{` + ok + `,"overlay_size":"-1G"}`, "overlay_size"},
		{"disk io", `{` + ok + `,"disk_io_bps":"100MB"}`, "disk_io_bps"},
		{"vcpus zero", `{` + ok + `,"vcpus":0}`, "vcpus"},
		{"vcpus negative", `{` + ok + `,"vcpus":-2}`, "vcpus"},
		{"vcpus type", `{` + ok + `,"vcpus":"two"}`, "vcpus"},
		{"firecracker", `{` + ok + `,"hypervisor":"firecracker"}`, "hypervisor firecracker is not available on this host (it has: qemu)"},
		{"cloud-hypervisor", `{` + ok + `,"hypervisor":"cloud-hypervisor"}`, "hypervisor cloud-hypervisor is not available"},
		{"vz", `{` + ok + `,"hypervisor":"vz"}`, "hypervisor vz is not available"},
		{"unknown hypervisor", `{` + ok + `,"hypervisor":"xen"}`, "hypervisor"},
		{"devices", `{` + ok + `,"devices":["gpu0"]}`, "devices: this host has no GPU/PCI devices"},
		{"gpu", `{` + ok + `,"gpu":{"profile":"L40S-1Q"}}`, "gpu.profile"},
		{"env key", `{` + ok + `,"env":{"1BAD":"x"}}`, "env.1BAD"},
		{"env dash", `{` + ok + `,"env":{"A-B":"x"}}`, "env.A-B"},
		{"env nul", `{` + ok + `,"env":{"A":"x\u0000"}}`, "env.A"},
		{"tag key", `{` + ok + `,"tags":{"bad key":"x"}}`, "tags"},
		{"tag value", `{` + ok + `,"tags":{"k":"` + strings.Repeat("v", 257) + `"}}`, "tags.k"},
		{"entrypoint nul", `{` + ok + `,"entrypoint":["a\u0000"]}`, "entrypoint[0]"},
		{"cmd nul", `{` + ok + `,"cmd":["ok","b\u0000"]}`, "cmd[1]"},
		{"idle timeout", `{` + ok + `,"auto_standby":{"enabled":true,"idle_timeout":"soon"}}`, "auto_standby.idle_timeout"},
		{"idle timeout zero", `{` + ok + `,"auto_standby":{"enabled":true,"idle_timeout":"0s"}}`, "auto_standby.idle_timeout"},
		{"idle timeout missing", `{` + ok + `,"auto_standby":{"enabled":true}}`, "auto_standby.idle_timeout"},
		{"port", `{` + ok + `,"auto_standby":{"ignore_destination_ports":[22,70000]}}`, "auto_standby.ignore_destination_ports[1]"},
		{"cidr", `{` + ok + `,"auto_standby":{"ignore_source_cidrs":["10.0.0.0/33"]}}`, "auto_standby.ignore_source_cidrs[0]"},
		{"compression enabled", `{` + ok + `,"snapshot_policy":{"compression":{}}}`, "snapshot_policy.compression.enabled"},
		{"compression algo", `{` + ok + `,"snapshot_policy":{"compression":{"enabled":true,"algorithm":"gzip"}}}`, "snapshot_policy.compression.algorithm"},
		{"zstd level", `{` + ok + `,"snapshot_policy":{"compression":{"enabled":true,"level":20}}}`, "snapshot_policy.compression.level"},
		{"lz4 level", `{` + ok + `,"snapshot_policy":{"compression":{"enabled":true,"algorithm":"lz4","level":10}}}`, "snapshot_policy.compression.level"},
		{"bandwidth down", `{` + ok + `,"network":{"bandwidth_download":"fast"}}`, "network.bandwidth_download"},
		{"bandwidth up", `{` + ok + `,"network":{"bandwidth_upload":"1Gbpx"}}`, "network.bandwidth_upload"},
		{"egress mode", `{` + ok + `,"network":{"egress":{"enabled":true,"enforcement":{"mode":"some"}}}}`, "network.egress.enforcement.mode"},
		{"disabled with limits", `{` + ok + `,"network":{"enabled":false,"bandwidth_upload":"1Gbps"}}`, "network.enabled"},
		{"credential source", `{` + ok + `,"env":{"REAL":"s"},"credentials":{"TOKEN":{"source":{"env":"NOPE"},"inject":[{"as":{"header":"Authorization","format":"Bearer ${value}"}}]}}}`, "credentials.TOKEN.source.env"},
		{"credential format", `{` + ok + `,"env":{"REAL":"s"},"credentials":{"TOKEN":{"source":{"env":"REAL"},"inject":[{"as":{"header":"Authorization","format":"Bearer"}}]}}}`, "credentials.TOKEN.inject[0].as.format"},
		{"credential header", `{` + ok + `,"env":{"REAL":"s"},"credentials":{"TOKEN":{"source":{"env":"REAL"},"inject":[{"as":{"header":"A B","format":"${value}"}}]}}}`, "credentials.TOKEN.inject[0].as.header"},
		{"credential host", `{` + ok + `,"env":{"REAL":"s"},"credentials":{"TOKEN":{"source":{"env":"REAL"},"inject":[{"hosts":["a..b"],"as":{"header":"X","format":"${value}"}}]}}}`, "credentials.TOKEN.inject[0].hosts[0]"},
		{"credential no inject", `{` + ok + `,"env":{"REAL":"s"},"credentials":{"TOKEN":{"source":{"env":"REAL"}}}}`, "credentials.TOKEN.inject"},
		{"volume id", `{` + ok + `,"volumes":[{"volume_id":"Bad","mount_path":"/data"}]}`, "volumes[0].volume_id"},
		{"volume path", `{` + ok + `,"volumes":[{"volume_id":"data","mount_path":"data"}]}`, "volumes[0].mount_path"},
		{"volume root", `{` + ok + `,"volumes":[{"volume_id":"data","mount_path":"/"}]}`, "volumes[0].mount_path"},
		{"volume overlay", `{` + ok + `,"volumes":[{"volume_id":"data","mount_path":"/d","readonly":true,"overlay":true,"overlay_size":"1GB"}]}`, "volumes[0].overlay"},
		{"volume twice", `{` + ok + `,"volumes":[{"volume_id":"data","mount_path":"/d"},{"volume_id":"data","mount_path":"/e"}]}`, "volumes[1].volume_id"},
		{"unknown field", `{` + ok + `,"memory":"1GB"}`, "memory: unknown field"},
		{"unknown nested", `{` + ok + `,"network":{"enabled":true,"speed":1}}`, "speed: unknown field"},
		{"trailing", `{` + ok + `} {}`, "body"},
		{"not json", `{name`, "body"},
		{"empty", ``, "body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, h := newTestServer(t)
			rec := call(h, "POST", "/instances", tc.body)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", rec.Code, rec.Body)
			}
			e := errorOf(t, rec)
			if e.Code != wire.CodeBadRequest || !strings.Contains(e.Message, tc.field) {
				t.Fatalf("error %+v: want bad_request naming %q", e, tc.field)
			}
			if len(f.creates) != 0 {
				t.Fatalf("a bad create reached the core: %+v", f.creates)
			}
		})
	}
}

// A good create maps every field to the core's keys and devices.
func TestCreateMapping(t *testing.T) {
	f, h := newTestServer(t)
	body := `{"name":"vm1","image":"127.0.0.1:5000/test/app:1","size":"512MB","vcpus":1,"hotplug_size":"1G",
		"overlay_size":"2GB","disk_io_bps":"100MB/s","skip_guest_agent":true,"skip_kernel_headers":true,"hypervisor":"qemu",
		"entrypoint":["/bin/sh"],"cmd":["-c","echo hi"],"env":{"A":"1","REAL":"secret"},"tags":{"team":"core"},
		"credentials":{"TOKEN":{"source":{"env":"REAL"},"inject":[{"hosts":["*.example.com"],"as":{"header":"Authorization","format":"Bearer ${value}"}}]}},
		"auto_standby":{"enabled":true,"idle_timeout":"5s","ignore_destination_ports":[22],"ignore_source_cidrs":["10.0.0.0/8"]},
		"snapshot_policy":{"compression":{"enabled":true,"algorithm":"lz4","level":3}},
		"network":{"bandwidth_download":"1Gbps","bandwidth_upload":"125MB/s","egress":{"enabled":true,"enforcement":{"mode":"http_https_only"}}},
		"volumes":[{"volume_id":"data","mount_path":"/data","readonly":true}]}`
	rec := call(h, "POST", "/instances", body)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	req := f.creates[0]
	wantCfg := map[string]string{
		"limits.memory": "536870912", "limits.cpu": "1", "limits.memory.hotplug": "1073741824", "agent.skip": "true",
		"oci.entrypoint": `["/bin/sh"]`, "oci.cmd": `["-c","echo hi"]`, "environment.A": "1", "user.tag.team": "core",
		"autostandby.enabled": "true", "autostandby.idle_timeout": "5s", "autostandby.ignore_destination_ports": "22",
		"autostandby.ignore_source_cidrs": "10.0.0.0/8", "snapshots.compression": "lz4:3",
		"egress.enabled": "true", "egress.mode": "http_https_only",
	}
	for k, v := range wantCfg {
		if req.Config[k] != v {
			t.Errorf("config %s = %q, want %q", k, req.Config[k], v)
		}
	}
	if _, leaked := req.Config["environment.REAL"]; leaked {
		t.Error("a credential's real value went into config")
	}
	if !strings.Contains(req.Config["credentials.TOKEN"], `"env":"REAL"`) || req.Secrets["REAL"] != "secret" {
		t.Errorf("credential %q, secrets %v", req.Config["credentials.TOKEN"], req.Secrets)
	}
	if req.Type != instance.TypeVM || !req.Start || req.Source.Protocol != "oci" || req.Source.Server != "http://127.0.0.1:5000" || req.Source.Alias != "test/app:1" {
		t.Errorf("request %+v", req)
	}
	root, nic, vol := req.Devices["root"], req.Devices["eth0"], req.Devices["volume-data"]
	if root["size"] != "2147483648" || root["limits.read"] != "104857600" || root["limits.write"] != "104857600" {
		t.Errorf("root %v", root)
	}
	if nic["limits.ingress"] != "1000000000bit" || nic["limits.egress"] != "1000000000bit" || nic["network"] != "hangarbr0" {
		t.Errorf("nic %v", nic)
	}
	if vol["pool"] != "default" || vol["source"] != "data" || vol["path"] != "/data" || vol["readonly"] != "true" {
		t.Errorf("volume %v", vol)
	}
	var got wire.Instance
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Size != "512MB" || got.Vcpus != 1 || got.HotplugSize != "1GB" || got.OverlaySize != "2GB" || got.DiskIoBps != "100MB/s" ||
		got.Network.BandwidthDownload != "1Gbps" || got.Network.BandwidthUpload != "1Gbps" || got.Tags["team"] != "core" ||
		got.Env["A"] != "1" || got.Hypervisor != "qemu" || len(got.Volumes) != 1 || !got.Volumes[0].Readonly ||
		got.SnapshotPolicy.Compression != (wire.SnapshotCompressionConfig{Enabled: true, Algorithm: "lz4", Level: 3}) ||
		!got.AutoStandby.Enabled || got.AutoStandby.IgnoreDestinationPorts[0] != 22 {
		t.Errorf("rendered %+v", got)
	}
	// Defaults and a disabled network.
	rec = call(h, "POST", "/instances", `{"name":"vm2","image":"alpine","network":{"enabled":false}}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	req = f.creates[1]
	if req.Config["limits.memory"] != "1073741824" || req.Config["limits.cpu"] != "2" || req.Devices["eth0"]["type"] != "none" ||
		req.Source.Server != "docker.io" || req.Source.Alias != "alpine" {
		t.Errorf("defaults %+v", req)
	}
	// A name taken is the core's 409.
	if rec := call(h, "POST", "/instances", `{"name":"web","image":"alpine"}`); rec.Code != http.StatusConflict {
		t.Errorf("duplicate: %d", rec.Code)
	}
}

// Every route, good and bad, answers with the dialect's statuses.
func TestRoutes(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string // in the body
	}{
		{"get", "GET", "/instances/web", "", 200, `"state":"Running"`},
		{"get by id", "GET", "/instances/aweb00000000000000000000", "", 200, `"name":"web"`},
		{"get missing", "GET", "/instances/nope", "", 404, `"code":"not_found"`},
		{"get container", "GET", "/instances/ctr", "", 404, "container"},
		{"get standby", "GET", "/instances/sleepy", "", 200, `"has_snapshot":true`},
		{"list", "GET", "/instances", "", 200, `"name":"idle"`},
		{"list state", "GET", "/instances?state=Standby", "", 200, `"name":"sleepy"`},
		{"list bad state", "GET", "/instances?state=Asleep", "", 400, "state"},
		{"list bad param", "GET", "/instances?color=red", "", 400, "color"},
		{"update", "PATCH", "/instances/web", `{"env":{"TOKEN":"new"}}`, 200, `"name":"web"`},
		{"update no env", "PATCH", "/instances/web", `{}`, 400, "env"},
		{"update bad key", "PATCH", "/instances/web", `{"env":{"1":"x"}}`, 400, "env.1"},
		{"update not credential", "PATCH", "/instances/web", `{"env":{"OTHER":"x"}}`, 400, "env"},
		{"stop", "POST", "/instances/web/stop", "", 200, `"state":"Stopped"`},
		{"stop stopped", "POST", "/instances/idle/stop", "", 409, `"code":"conflict"`},
		{"stop body", "POST", "/instances/web/stop", `{"force":true}`, 400, "force"},
		{"start", "POST", "/instances/idle/start", `{"cmd":["sleep","1"]}`, 200, `"state":"Running"`},
		{"start running", "POST", "/instances/web/start", "", 409, "already running"},
		{"start standby", "POST", "/instances/sleepy/start", "", 409, "restore"},
		{"start bad cmd", "POST", "/instances/idle/start", `{"cmd":"sleep"}`, 400, "cmd"},
		{"standby", "POST", "/instances/web/standby", "", 200, `"state":"Standby"`},
		{"standby bad level", "POST", "/instances/web/standby", `{"compression":{"enabled":true,"level":0}}`, 400, "compression.level"},
		{"standby stopped", "POST", "/instances/idle/standby", "", 409, "already stopped"},
		{"restore", "POST", "/instances/sleepy/restore", "", 200, `"state":"Running"`},
		{"restore stopped", "POST", "/instances/idle/restore", "", 409, "not in standby"},
		{"delete", "DELETE", "/instances/web", "", 204, ""},
		{"delete missing", "DELETE", "/instances/nope", "", 404, "not_found"},
		{"fork running", "POST", "/instances/web/fork", `{"name":"web2","from_running":true}`, 201, `"state":"Running"`},
		{"fork running target", "POST", "/instances/web/fork", `{"name":"web2","from_running":true,"target_state":"Stopped"}`, 201, `"state":"Stopped"`},
		{"fork stopped to standby", "POST", "/instances/idle/fork", `{"name":"i2","target_state":"Standby"}`, 201, `"state":"Standby"`},
		{"fork running without flag", "POST", "/instances/web/fork", `{"name":"web2"}`, 409, "from_running"},
		{"fork bad name", "POST", "/instances/web/fork", `{"name":"Web 2","from_running":true}`, 400, "name"},
		{"fork bad target", "POST", "/instances/web/fork", `{"name":"w2","from_running":true,"target_state":"Paused"}`, 400, "target_state"},
		{"logs", "GET", "/instances/web/logs?tail=5&follow=false&source=app", "", 200, "data: one\n\ndata: two\n\n"},
		{"logs hypeman", "GET", "/instances/web/logs?source=hypeman", "", 200, "data: one"},
		{"logs not built", "GET", "/instances/web/logs?source=vmm", "", 501, "not_implemented"},
		{"logs bad source", "GET", "/instances/web/logs?source=kernel", "", 400, "source"},
		{"logs bad tail", "GET", "/instances/web/logs?tail=-1", "", 400, "tail"},
		{"logs bad follow", "GET", "/instances/web/logs?follow=maybe", "", 400, "follow"},
		{"stat", "GET", "/instances/web/stat?path=/etc", "", 200, `"is_dir":true`},
		{"stat missing", "GET", "/instances/web/stat?path=/nope", "", 200, `"exists":false`},
		{"stat no path", "GET", "/instances/web/stat", "", 400, "path"},
		{"stat relative", "GET", "/instances/web/stat?path=etc", "", 400, "path"},
		{"stat bad follow", "GET", "/instances/web/stat?path=/etc&follow_links=2x", "", 400, "follow_links"},
		{"stats", "GET", "/instances/web/stats", "", 200, `"memory_utilization_ratio":0.5`},
		{"wait reached", "GET", "/instances/web/wait?state=Running", "", 200, `"timed_out":false`},
		{"wait timeout", "GET", "/instances/idle/wait?state=Running&timeout=1ms", "", 200, `"timed_out":true`},
		{"wait no state", "GET", "/instances/web/wait", "", 400, "state"},
		{"wait bad state", "GET", "/instances/web/wait?state=Up", "", 400, "state"},
		{"wait bad timeout", "GET", "/instances/web/wait?state=Running&timeout=soon", "", 400, "timeout"},
		{"wait negative timeout", "GET", "/instances/web/wait?state=Running&timeout=-1s", "", 400, "timeout"},
		{"autostandby status", "GET", "/instances/web/auto-standby/status", "", 501, "not_implemented"},
		{"autostandby hold", "POST", "/instances/web/auto-standby/hold", "", 501, "not_implemented"},
		{"snapshot", "POST", "/instances/web/snapshots", `{"kind":"Standby","name":"s1"}`, 201, `"kind":"Standby"`},
		{"snapshot no kind", "POST", "/instances/web/snapshots", `{}`, 400, "kind"},
		{"snapshot bad kind", "POST", "/instances/web/snapshots", `{"kind":"Paused"}`, 400, "kind"},
		{"snapshot bad name", "POST", "/instances/web/snapshots", `{"kind":"Stopped","name":"A"}`, 400, "name"},
		{"snapshot bad compression", "POST", "/instances/web/snapshots", `{"kind":"Stopped","compression":{"enabled":true,"algorithm":"xz"}}`, 400, "compression.algorithm"},
		{"snapshot bad tags", "POST", "/instances/web/snapshots", `{"kind":"Stopped","tags":{" ":"x"}}`, 400, "tags"},
		{"snapshot restore", "POST", "/instances/idle/snapshots/snap0/restore", "", 200, `"state":"Running"`},
		{"snapshot restore target", "POST", "/instances/idle/snapshots/snap0/restore", `{"target_state":"Stopped"}`, 200, `"state":"Stopped"`},
		{"snapshot restore missing", "POST", "/instances/idle/snapshots/nope/restore", "", 404, "nope"},
		{"snapshot restore hypervisor", "POST", "/instances/idle/snapshots/snap0/restore", `{"target_hypervisor":"firecracker"}`, 400, "target_hypervisor"},
		{"snapshot restore bad target", "POST", "/instances/idle/snapshots/snap0/restore", `{"target_state":"Gone"}`, 400, "target_state"},
		{"schedule get none", "GET", "/instances/web/snapshot-schedule", "", 404, "no snapshot schedule"},
		{"schedule put", "PUT", "/instances/web/snapshot-schedule", `{"interval":"1h","retention":{"max_count":3,"max_age":"24h"},"name_prefix":"auto","metadata":{"k":"v"}}`, 200, `"interval":"1h0m0s"`},
		{"schedule interval short", "PUT", "/instances/web/snapshot-schedule", `{"interval":"30s","retention":{"max_count":3}}`, 400, "interval"},
		{"schedule interval bad", "PUT", "/instances/web/snapshot-schedule", `{"interval":"daily","retention":{"max_count":3}}`, 400, "interval"},
		{"schedule no retention", "PUT", "/instances/web/snapshot-schedule", `{"interval":"1h"}`, 400, "retention"},
		{"schedule empty retention", "PUT", "/instances/web/snapshot-schedule", `{"interval":"1h","retention":{}}`, 400, "retention"},
		{"schedule negative count", "PUT", "/instances/web/snapshot-schedule", `{"interval":"1h","retention":{"max_count":-1}}`, 400, "retention.max_count"},
		{"schedule bad age", "PUT", "/instances/web/snapshot-schedule", `{"interval":"1h","retention":{"max_age":"old"}}`, 400, "retention.max_age"},
		{"schedule long prefix", "PUT", "/instances/web/snapshot-schedule", `{"interval":"1h","retention":{"max_count":1},"name_prefix":"` + strings.Repeat("a", 48) + `"}`, 400, "name_prefix"},
		{"schedule delete", "DELETE", "/instances/web/snapshot-schedule", "", 204, ""},
		{"attach", "POST", "/instances/idle/volumes/data", `{"mount_path":"/data","readonly":true}`, 200, `"volume_id":"data"`},
		{"attach missing volume", "POST", "/instances/idle/volumes/other", `{"mount_path":"/data"}`, 404, "other"},
		{"attach bad path", "POST", "/instances/idle/volumes/data", `{"mount_path":"data"}`, 400, "mount_path"},
		{"attach bad id", "POST", "/instances/idle/volumes/Data", `{"mount_path":"/data"}`, 400, "volume_id"},
		{"detach not attached", "DELETE", "/instances/idle/volumes/data", "", 404, "not attached"},
		{"no route", "GET", "/nothing", "", 404, "not_found"},
		{"wrong method", "PUT", "/instances/web", "", 404, "no route"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, h := newTestServer(t)
			f.logLines = [][]byte{[]byte("one"), []byte("two")}
			rec := call(h, tc.method, tc.path, tc.body)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("%s %s: %d %q, want %d with %q", tc.method, tc.path, rec.Code, rec.Body, tc.status, tc.want)
			}
			if tc.status >= 400 {
				errorOf(t, rec)
			}
		})
	}
}

// A standby's compression applies to that standby only: the core gets it
// with the stop, and the instance's policy stays as it was.
func TestStandbyCompression(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"compression":{"enabled":true,"algorithm":"zstd","level":3}}`, "zstd:3"},
		{`{"compression":{"enabled":true,"algorithm":"lz4"}}`, "lz4:0"},
		{`{"compression":{"enabled":false}}`, "none"},
		{`{}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.body, func(t *testing.T) {
			f, h := newTestServer(t)
			rec := call(h, "POST", "/instances/web/standby", tc.body)
			if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"state":"Standby"`) {
				t.Fatalf("standby: %d %s", rec.Code, rec.Body)
			}
			if len(f.stops) != 1 || !f.stops[0].Stateful || f.stops[0].Compression != tc.want {
				t.Fatalf("core stops %+v, want one stateful with compression %q", f.stops, tc.want)
			}
			if len(f.patches) != 0 {
				t.Fatalf("the standby changed the instance's config: %+v", f.patches)
			}
		})
	}
}

// A snapshot's tags and compression reach the core; a snapshot taken
// here never expires by the schedule's max_age.
func TestSnapshotCreateRequest(t *testing.T) {
	f, h := newTestServer(t)
	rec := call(h, "POST", "/instances/web/snapshots", `{"kind":"Standby","name":"s1","tags":{"team":"a"},"compression":{"enabled":true,"algorithm":"lz4","level":2}}`)
	if rec.Code != 201 || !strings.Contains(rec.Body.String(), `"tags":{"team":"a"}`) {
		t.Fatalf("snapshot: %d %s", rec.Code, rec.Body)
	}
	if len(f.snapReqs) != 1 {
		t.Fatalf("core snapshot requests: %+v", f.snapReqs)
	}
	req := f.snapReqs[0]
	if !req.Stateful || req.Compression != "lz4:2" || req.Metadata["team"] != "a" || req.ExpiresAt == nil || !req.ExpiresAt.IsZero() {
		t.Fatalf("core snapshot request %+v", req)
	}
}

// Attach then detach: the device comes and goes, the instance shows it.
func TestVolumeAttachDetach(t *testing.T) {
	f, h := newTestServer(t)
	if rec := call(h, "POST", "/instances/idle/volumes/data", `{"mount_path":"/data"}`); rec.Code != 200 {
		t.Fatalf("attach: %d %s", rec.Code, rec.Body)
	}
	if rec := call(h, "POST", "/instances/idle/volumes/data", `{"mount_path":"/data2"}`); rec.Code != 409 {
		t.Fatalf("attach twice: %d %s", rec.Code, rec.Body)
	}
	rec := call(h, "DELETE", "/instances/idle/volumes/data", "")
	if rec.Code != 200 || strings.Contains(rec.Body.String(), `"volume_id"`) {
		t.Fatalf("detach: %d %s", rec.Code, rec.Body)
	}
	if _, ok := f.byName["idle"].Devices["volume-data"]; ok {
		t.Fatal("the device stayed")
	}
}

// List filters by state and by every tag, ANDed; containers are not
// listed.
func TestListFilters(t *testing.T) {
	f, h := newTestServer(t)
	f.byName["web"].Config["user.tag.team"] = "a"
	f.byName["web"].Config["user.tag.env"] = "prod"
	f.byName["idle"].Config["user.tag.team"] = "a"
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"idle", "sleepy", "web"}},
		{"?tags[team]=a", []string{"idle", "web"}},
		{"?tags[team]=a&tags[env]=prod", []string{"web"}},
		{"?tags[team]=a&state=Stopped", []string{"idle"}},
		{"?tags[team]=b", nil},
	} {
		rec := call(h, "GET", "/instances"+tc.query, "")
		var got []wire.Instance
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 {
			t.Fatalf("%s: %d %v", tc.query, rec.Code, err)
		}
		var names []string
		for _, in := range got {
			names = append(names, in.Name)
		}
		if strings.Join(names, ",") != strings.Join(sortedCopy(tc.want), ",") && strings.Join(sortedCopy(names), ",") != strings.Join(sortedCopy(tc.want), ",") {
			t.Errorf("%s: %v, want %v", tc.query, names, tc.want)
		}
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestStateMapping(t *testing.T) {
	for _, tc := range []struct {
		status   instance.Status
		stateful bool
		workload bool
		want     wire.State
	}{
		{instance.StatusStarting, false, false, wire.StateCreated},
		{instance.StatusRunning, false, false, wire.StateInitializing},
		{instance.StatusRunning, false, true, wire.StateRunning},
		{instance.StatusFreezing, false, true, wire.StatePaused},
		{instance.StatusFrozen, false, true, wire.StatePaused},
		{instance.StatusStopping, false, true, wire.StateShutdown},
		{instance.StatusStopped, false, false, wire.StateStopped},
		{instance.StatusStopped, true, false, wire.StateStandby},
		{instance.StatusError, false, false, wire.StateUnknown},
	} {
		got, msg := stateOf(instance.Instance{Status: tc.status, Stateful: tc.stateful}, instance.State{WorkloadStarted: tc.workload})
		if got != tc.want || (got == wire.StateUnknown) != (msg != "") {
			t.Errorf("%v stateful=%v workload=%v: %s %q, want %s", tc.status, tc.stateful, tc.workload, got, msg, tc.want)
		}
	}
}

// fakeIdentifier is who every request is.
type fakeIdentifier struct{ id auth.Identity }

func (f fakeIdentifier) Identify(*http.Request) auth.Identity { return f.id }

// Without a valid token: 401 in the dialect's shape; a project token
// acts in its project.
func TestAuth(t *testing.T) {
	for _, tc := range []struct {
		name    string
		id      auth.Identity
		status  int
		project string
	}{
		{"untrusted", auth.Identity{Kind: auth.KindUntrusted}, 401, ""},
		{"none", auth.Identity{}, 401, ""},
		{"project token", auth.Identity{Kind: auth.KindToken, Name: "t", Restricted: true, Projects: []string{"p1"}}, 200, "p1"},
		{"admin token", auth.Identity{Kind: auth.KindToken, Name: "t"}, 200, "default"},
		{"many projects", auth.Identity{Kind: auth.KindCertificate, Restricted: true, Projects: []string{"a", "b"}}, 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCore()
			h := (&Server{Core: f, Authn: fakeIdentifier{tc.id}, Log: slog.New(slog.DiscardHandler)}).Handler()
			rec := call(h, "GET", "/instances", "")
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status == 401 && errorOf(t, rec).Code != wire.CodeUnauthorized {
				t.Fatalf("body %s", rec.Body)
			}
			if tc.project != "" && (len(f.projects) != 1 || f.projects[0] != tc.project) {
				t.Fatalf("core saw projects %v, want %s", f.projects, tc.project)
			}
		})
	}
}

func TestSizes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"1GB", 1 << 30}, {"512MB", 512 << 20}, {"2G", 2 << 30}, {"1024", 1024}, {"1.5GB", 3 << 29}, {"4kib", 4096}} {
		got, err := parseSize("size", tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want int64
	}{{"1Gbps", 1e9}, {"125MB/s", 1e9}, {"10Mbps", 1e7}} {
		got, err := parseBandwidth("b", tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseBandwidth(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	if formatSize(1<<30) != "1GB" || formatSize(1536<<20) != "1536MB" || formatBandwidth(1e9) != "1Gbps" {
		t.Error("formatting")
	}
}

// network.ip is the address the network assigned (kept in standby, when
// the guest reports none), else the guest's own.
func TestNetworkIP(t *testing.T) {
	live := instance.State{Network: map[string]instance.NetworkState{"eth0": {
		Addresses: []instance.NetworkAddress{{Family: "inet", Address: "10.0.0.9", Scope: "global"}}}}}
	for _, tc := range []struct {
		name  string
		state instance.State
		ips   map[string]string
		want  string // "" for null
	}{
		{"assigned, in standby", instance.State{}, map[string]string{"00:16:3e:00:00:01": "10.0.0.5"}, "10.0.0.5"},
		{"assigned wins over live", live, map[string]string{"00:16:3e:00:00:01": "10.0.0.5"}, "10.0.0.5"},
		{"live only", live, nil, "10.0.0.9"},
		{"another NIC's address", instance.State{}, map[string]string{"00:16:3e:00:00:02": "10.0.0.6"}, ""},
		{"none", instance.State{}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := instance.Instance{Type: instance.TypeVM, Status: instance.StatusStopped,
				Config:          map[string]string{"volatile.eth0.hwaddr": "00:16:3E:00:00:01"},
				ExpandedConfig:  map[string]string{},
				ExpandedDevices: instance.Devices{"eth0": {"type": "nic", "network": "hangarbr0"}}}
			got := render(instance.Full{Instance: in, State: tc.state}, tc.ips).Network.IP
			if (got == nil) != (tc.want == "") || got != nil && *got != tc.want {
				t.Fatalf("ip %v, want %q", got, tc.want)
			}
		})
	}
}

type fakeAddresses map[string]string

func (a fakeAddresses) AssignedIPv4(context.Context) (map[string]string, error) { return a, nil }

// An instance whose eth0 has an address from its network is answered
// without asking its guest (GetBrief); only one without asks (GetFull).
func TestAnswerAsksTheGuestOnlyWithoutIPAM(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ips   fakeAddresses
		fulls int
	}{
		{"assigned", fakeAddresses{"00:16:3e:00:00:01": "10.0.0.5"}, 0},
		{"not assigned", fakeAddresses{}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCore()
			f.add("web", instance.TypeVM, instance.StatusRunning, false, true)
			f.byName["web"].Config["volatile.eth0.hwaddr"] = "00:16:3e:00:00:01"
			h := (&Server{Core: f, Addresses: tc.ips, Log: slog.New(slog.DiscardHandler)}).Handler()
			if rec := call(h, "GET", "/instances/web", ""); rec.Code != 200 {
				t.Fatalf("get: %d %s", rec.Code, rec.Body)
			}
			if f.fulls != tc.fulls || f.briefs == 0 {
				t.Fatalf("GetFull %d times (want %d), GetBrief %d", f.fulls, tc.fulls, f.briefs)
			}
		})
	}
}

// Attached to the default network unless network.enabled is false,
// whatever the project's default profile holds.
func TestCreateNetworkDefault(t *testing.T) {
	for _, tc := range []struct {
		name, network string
		want          map[string]string
	}{
		{"no network object", ``, map[string]string{"type": "nic", "network": "hangarbr0", "name": "eth0"}},
		{"enabled", `,"network":{"enabled":true}`, map[string]string{"type": "nic", "network": "hangarbr0", "name": "eth0"}},
		{"disabled", `,"network":{"enabled":false}`, map[string]string{"type": "none"}},
		{"bandwidth", `,"network":{"bandwidth_upload":"1Gbps"}`, map[string]string{"type": "nic", "network": "hangarbr0", "name": "eth0", "limits.egress": "1000000000bit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, h := newTestServer(t)
			rec := call(h, "POST", "/instances", `{"name":"n1","image":"docker.io/library/alpine:3"`+tc.network+`}`)
			if rec.Code != 201 {
				t.Fatalf("create: %d %s", rec.Code, rec.Body)
			}
			if got := f.creates[len(f.creates)-1].Devices["eth0"]; !maps.Equal(got, tc.want) {
				t.Fatalf("eth0 %v, want %v", got, tc.want)
			}
		})
	}
}

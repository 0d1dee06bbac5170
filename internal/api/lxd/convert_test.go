package lxd

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/instance"
)

func TestStatusCodes(t *testing.T) {
	tests := []struct {
		in   instance.Status
		want api.StatusCode
	}{
		{instance.StatusStopped, api.Stopped},
		{instance.StatusStarting, api.Starting},
		{instance.StatusRunning, api.Running},
		{instance.StatusStopping, api.Stopping},
		{instance.StatusFreezing, api.Freezing},
		{instance.StatusFrozen, api.Frozen},
		{instance.StatusError, api.Error},
		{instance.Status(0), api.Error}, // no status is a bug: never 0 on the wire
	}
	for _, tt := range tests {
		t.Run(tt.in.String(), func(t *testing.T) {
			if got := statusCode(tt.in); got != tt.want {
				t.Fatalf("statusCode(%v) = %v, want %v", tt.in, got, tt.want)
			}
			if tt.in != 0 && tt.in.String() != tt.want.String() {
				t.Fatalf("core name %q, LXD name %q", tt.in.String(), tt.want.String())
			}
		})
	}
}

// TestInstanceJSON pins the wire form of an instance rendered from the
// core's type, byte for byte.
func TestInstanceJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		in   instance.Instance
		want string
	}{{
		name: "running container",
		in: instance.Instance{
			Name: "c1", Type: instance.TypeContainer, Architecture: "x86_64", Description: "d",
			Config: map[string]string{"limits.cpu": "1"}, Devices: instance.Devices{},
			ExpandedConfig: map[string]string{"limits.cpu": "1"}, ExpandedDevices: instance.Devices{"root": {"type": "disk"}},
			Profiles: []string{"default"}, Status: instance.StatusRunning, CreatedAt: at, LastUsedAt: at,
		},
		want: `{"architecture":"x86_64","config":{"limits.cpu":"1"},"devices":{},"ephemeral":false,"profiles":["default"],"stateful":false,"description":"d",` +
			`"created_at":"2026-01-02T03:04:05Z","expanded_config":{"limits.cpu":"1"},"expanded_devices":{"root":{"type":"disk"}},"name":"c1",` +
			`"status":"Running","status_code":103,"last_used_at":"2026-01-02T03:04:05Z","location":"none","type":"container","project":"default"}`,
	}, {
		name: "frozen ephemeral vm",
		in: instance.Instance{
			Name: "v1", Type: instance.TypeVM, Architecture: "x86_64",
			Config: map[string]string{}, Devices: instance.Devices{}, ExpandedConfig: map[string]string{}, ExpandedDevices: instance.Devices{},
			Profiles: []string{}, Ephemeral: true, Stateful: true, Status: instance.StatusFrozen, CreatedAt: at, LastUsedAt: at,
		},
		want: `{"architecture":"x86_64","config":{},"devices":{},"ephemeral":true,"profiles":[],"stateful":true,"description":"",` +
			`"created_at":"2026-01-02T03:04:05Z","expanded_config":{},"expanded_devices":{},"name":"v1",` +
			`"status":"Frozen","status_code":110,"last_used_at":"2026-01-02T03:04:05Z","location":"none","type":"virtual-machine","project":"default"}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(toAPIInstance(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Fatalf("JSON\n got %s\nwant %s", b, tt.want)
			}
		})
	}
}

func TestStateJSON(t *testing.T) {
	tests := []struct {
		name string
		in   instance.State
		want string
	}{{
		name: "stopped",
		in:   instance.State{Status: instance.StatusStopped},
		want: `{"status":"Stopped","status_code":102,"disk":{},"memory":{"usage":0,"usage_peak":0,"total":0,"swap_usage":0,"swap_usage_peak":0},"network":{},"pid":0,"processes":0,"cpu":{"usage":0}}`,
	}, {
		name: "running with loopback",
		in: instance.State{
			Status: instance.StatusRunning, Pid: 42, Processes: 3, CPUUsage: 7, MemoryUsage: 100, MemoryPeak: 200,
			Network: map[string]instance.NetworkState{"lo": {
				Addresses: []instance.NetworkAddress{{Family: "inet", Address: "127.0.0.1", Netmask: "8", Scope: "local"}},
				Counters: instance.NetworkCounters{BytesReceived: 1, BytesSent: 2, PacketsReceived: 3, PacketsSent: 4,
					ErrorsReceived: 5, ErrorsSent: 6, PacketsDroppedInbound: 7, PacketsDroppedOutbound: 8},
				MTU: 65536, State: "up", Type: "loopback",
			}},
		},
		want: `{"status":"Running","status_code":103,"disk":{},"memory":{"usage":100,"usage_peak":200,"total":0,"swap_usage":0,"swap_usage_peak":0},` +
			`"network":{"lo":{"addresses":[{"family":"inet","address":"127.0.0.1","netmask":"8","scope":"local"}],` +
			`"counters":{"bytes_received":1,"bytes_sent":2,"packets_received":3,"packets_sent":4,"errors_received":5,"errors_sent":6,"packets_dropped_outbound":8,"packets_dropped_inbound":7},"hwaddr":"","host_name":"","mtu":65536,"state":"up","type":"loopback"}},` +
			`"pid":42,"processes":3,"cpu":{"usage":7}}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(toAPIState(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Fatalf("JSON\n got %s\nwant %s", b, tt.want)
			}
		})
	}
}

func TestProfileJSON(t *testing.T) {
	p := instance.Profile{Name: "small", Description: "s", Config: map[string]string{"limits.memory": "1GiB"}, Devices: instance.Devices{}, UsedBy: []instance.Ref{{Project: "default", Name: "a"}, {Project: "p1", Name: "b"}}, Project: "default"}
	b, err := json.Marshal(toAPIProfile(p))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"config":{"limits.memory":"1GiB"},"description":"s","devices":{},"name":"small","used_by":["/1.0/instances/a","/1.0/instances/b?project=p1"],"project":"default"}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
}

func TestFromWire(t *testing.T) {
	post := api.InstancesPost{
		InstancePut: api.InstancePut{Architecture: "x86_64", Config: map[string]string{"a": "b"}, Profiles: []string{"p"}, Ephemeral: true, Description: "d"},
		Name:        "c1", Type: "virtual-machine", InstanceType: "t2.micro", Start: true,
		Source: api.InstanceSource{Type: "image", Alias: "alpine", Server: "docker.io", Protocol: "oci", Secret: "ignored"},
	}
	want := instance.CreateRequest{
		Name: "c1", Type: instance.TypeVM, Architecture: "x86_64", Description: "d", Config: map[string]string{"a": "b"},
		Profiles: []string{"p"}, Ephemeral: true, Start: true, Preset: "t2.micro",
		Source: instance.Source{Type: instance.SourceImage, Alias: "alpine", Server: "docker.io", Protocol: "oci"},
	}
	if diff := cmp.Diff(want, fromInstancesPost(post)); diff != "" {
		t.Errorf("create request (-want +got):\n%s", diff)
	}
	put := api.InstancePut{Architecture: "x86_64", Config: map[string]string{"k": "v"}, Devices: map[string]map[string]string{"d": {}}, Profiles: []string{}, Stateful: true, Restore: "snap0"}
	wantPut := instance.Put{Architecture: "x86_64", Config: map[string]string{"k": "v"}, Devices: instance.Devices{"d": {}}, Profiles: []string{}, Stateful: true, Restore: "snap0"}
	if diff := cmp.Diff(wantPut, fromInstancePut(put)); diff != "" {
		t.Errorf("put (-want +got):\n%s", diff)
	}
	var patch instancePatch
	if err := json.Unmarshal([]byte(`{"config":{"x":"1"},"description":"new"}`), &patch); err != nil {
		t.Fatal(err)
	}
	desc := "new"
	if diff := cmp.Diff(instance.Patch{Config: map[string]string{"x": "1"}, Description: &desc}, patch.core()); diff != "" {
		t.Errorf("patch (-want +got):\n%s", diff)
	}
}

func TestEntityURL(t *testing.T) {
	tests := []struct {
		in   event.Entity
		want string
	}{
		{event.Entity{Kind: event.EntityInstance, Name: "c1"}, "/1.0/instances/c1"},
		{event.Entity{Kind: event.EntityInstanceSnapshot, Name: "c1/snap0"}, "/1.0/instances/c1/snapshots/snap0"},
		{event.Entity{Kind: event.EntityStorageVolumeSnapshot, Name: "p/custom/v/s"}, "/1.0/storage-pools/p/volumes/custom/v/snapshots/s"},
		{event.Entity{Kind: event.EntityProfile, Name: "default"}, "/1.0/profiles/default"},
		{event.Entity{Kind: event.EntityImage, Name: "abc"}, "/1.0/images/abc"},
		{event.Entity{Kind: event.EntityImageAlias, Name: "deb/12"}, "/1.0/images/aliases/deb/12"},
	}
	for _, tt := range tests {
		if got := entityURL(tt.in); got != tt.want {
			t.Errorf("entityURL(%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestEventJSON pins a lifecycle event as LXD clients read it: the
// entity as its URL, an absent context left out.
func TestEventJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		in   event.Event
		want string
	}{{
		name: "lifecycle with context",
		in: event.Event{Type: "lifecycle", Timestamp: at, Sequence: 9, Location: "none",
			Lifecycle: &event.Lifecycle{Action: "instance-renamed", Entity: event.Entity{Kind: event.EntityInstance, Name: "b"}, Context: json.RawMessage(`{"old_name":"a"}`)}},
		want: `{"type":"lifecycle","timestamp":"2026-01-02T03:04:05Z","metadata":{"action":"instance-renamed","source":"/1.0/instances/b","context":{"old_name":"a"}},"location":"none","sequence":9}`,
	}, {
		name: "lifecycle without context",
		in: event.Event{Type: "lifecycle", Timestamp: at, Sequence: 1, Location: "none",
			Lifecycle: &event.Lifecycle{Action: "profile-deleted", Entity: event.Entity{Kind: event.EntityProfile, Name: "p"}}},
		want: `{"type":"lifecycle","timestamp":"2026-01-02T03:04:05Z","metadata":{"action":"profile-deleted","source":"/1.0/profiles/p"},"location":"none","sequence":1}`,
	}, {
		name: "operation passes its metadata through",
		in:   event.Event{Type: "operation", Timestamp: at, Sequence: 2, Location: "none", Metadata: json.RawMessage(`{"id":"x"}`)},
		want: `{"type":"operation","timestamp":"2026-01-02T03:04:05Z","metadata":{"id":"x"},"location":"none","sequence":2}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := toAPIEvent(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Fatalf("JSON\n got %s\nwant %s", b, tt.want)
			}
		})
	}
}

func TestPreconditions(t *testing.T) {
	in := instance.Instance{Name: "c1", Architecture: "x86_64", Config: map[string]string{"a": "1"}, Devices: instance.Devices{}, Profiles: []string{"default"}}
	etag := instanceETag(in)
	changed := in
	changed.Config = map[string]string{"a": "2"}
	tests := []struct {
		name  string
		etag  string
		cur   instance.Instance
		fails bool
	}{
		{"no If-Match checks nothing", "", changed, false},
		{"matching", etag, in, false},
		{"changed since read", etag, changed, true},
		{"garbage", "nope", in, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pre := instanceMatch(tt.etag)
			var err error
			if pre != nil {
				err = pre(tt.cur)
			}
			if tt.fails != (err != nil) || (err != nil && !errors.Is(err, errdefs.ErrPreconditionFailed)) {
				t.Fatalf("precondition: %v, want failure %v", err, tt.fails)
			}
		})
	}
	p := instance.Profile{Name: "p", Config: map[string]string{}}
	if err := profileMatch(profileETag(p))(p); err != nil {
		t.Fatalf("matching profile: %v", err)
	}
	if err := profileMatch("nope")(p); !errors.Is(err, errdefs.ErrPreconditionFailed) {
		t.Fatalf("stale profile etag: %v", err)
	}
}

// BenchmarkLifecycleEvent is the per-subscriber cost of rendering a
// lifecycle event as LXD's JSON (the hub keeps the entity, not the URL).
func BenchmarkLifecycleEvent(b *testing.B) {
	ev := event.Event{Type: "lifecycle", Timestamp: time.Now(), Sequence: 1, Location: "none",
		Lifecycle: &event.Lifecycle{Action: "instance-paused", Entity: event.Entity{Kind: event.EntityInstance, Name: "c1"}}}
	b.ReportAllocs()
	for b.Loop() {
		out, err := toAPIEvent(ev)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(out); err != nil {
			b.Fatal(err)
		}
	}
}

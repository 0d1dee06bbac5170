package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"

	"github.com/hangar-dev/hangar/api"
)

func TestMain(m *testing.M) {
	// Golden outputs are written in UTC.
	displayLocation = time.UTC
	// Never the user's own CLI config (a default remote there would send
	// the tests' requests to it); tests that need one make their own.
	dir, err := os.MkdirTemp("", "hangar-cli-test-")
	if err != nil {
		panic(err)
	}
	os.Setenv(ConfigEnv, dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	t0 = time.Date(2025, 3, 4, 15, 6, 0, 0, time.UTC)

	runningInst = api.InstanceFull{
		Instance: api.Instance{
			InstancePut: api.InstancePut{Architecture: "x86_64", Profiles: []string{"default"},
				Config: map[string]string{"limits.memory": "512MiB"}},
			ExpandedConfig: map[string]string{"limits.memory": "512MiB", "user.role": "web"},
			Name:           "web1", Status: "Running", StatusCode: api.Running, Type: "container", CreatedAt: t0,
		},
		State: &api.InstanceState{
			Status: "Running", Pid: 4242,
			Network: map[string]api.InstanceStateNetwork{
				"lo": {Type: "loopback", Addresses: []api.InstanceStateNetworkAddress{{Family: "inet", Address: "127.0.0.1", Scope: "local"}}},
				"eth0": {Type: "broadcast", Addresses: []api.InstanceStateNetworkAddress{
					{Family: "inet", Address: "10.0.3.5", Netmask: "24", Scope: "global"},
					{Family: "inet", Address: "10.0.3.50", Netmask: "24", Scope: "global"},
					{Family: "inet6", Address: "fd42::5", Netmask: "64", Scope: "global"},
					{Family: "inet6", Address: "fe80::1", Netmask: "64", Scope: "link"},
				}},
			},
		},
		Snapshots: []api.InstanceSnapshot{},
	}
	stoppedInst = api.InstanceFull{
		Instance: api.Instance{
			InstancePut: api.InstancePut{Ephemeral: true, Profiles: []string{}},
			Name:        "db", Status: "Stopped", StatusCode: api.Stopped, Type: "container", CreatedAt: t0,
		},
	}
)

func TestRenderInstancesTable(t *testing.T) {
	tests := []struct {
		name  string
		insts []api.InstanceFull
		want  string
	}{
		{
			name:  "empty",
			insts: nil,
			want: `+------+-------+------+------+------+-----------+
| NAME | STATE | IPV4 | IPV6 | TYPE | SNAPSHOTS |
+------+-------+------+------+------+-----------+
`,
		},
		{
			name:  "sorted, multi-line cells",
			insts: []api.InstanceFull{runningInst, stoppedInst},
			want: `+------+---------+------------------+----------------+-----------------------+-----------+
| NAME |  STATE  |       IPV4       |      IPV6      |         TYPE          | SNAPSHOTS |
+------+---------+------------------+----------------+-----------------------+-----------+
| db   | STOPPED |                  |                | CONTAINER (EPHEMERAL) | 0         |
+------+---------+------------------+----------------+-----------------------+-----------+
| web1 | RUNNING | 10.0.3.50 (eth0) | fd42::5 (eth0) | CONTAINER             | 0         |
|      |         | 10.0.3.5 (eth0)  |                |                       |           |
+------+---------+------------------+----------------+-----------------------+-----------+
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := instanceListing.render(&buf, formatTable, tt.insts); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, buf.String()); diff != "" {
				t.Errorf("table mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderInstancesCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := instanceListing.render(&buf, formatCSV, []api.InstanceFull{runningInst, stoppedInst}); err != nil {
		t.Fatal(err)
	}
	want := "db,STOPPED,,,CONTAINER (EPHEMERAL),0\n" +
		"web1,RUNNING,\"10.0.3.50 (eth0)\n10.0.3.5 (eth0)\",fd42::5 (eth0),CONTAINER,0\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("csv mismatch (-want +got):\n%s", diff)
	}
}

func TestRenderInstancesJSONAndYAMLRoundTrip(t *testing.T) {
	in := []api.InstanceFull{runningInst, stoppedInst}
	for _, format := range []string{formatJSON, formatYAML} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := instanceListing.render(&buf, format, in); err != nil {
				t.Fatal(err)
			}
			var got []api.InstanceFull
			var err error
			if format == formatJSON {
				if n := strings.Count(buf.String(), "\n"); n != 1 {
					t.Errorf("json spans %d lines, want 1", n)
				}
				err = json.Unmarshal(buf.Bytes(), &got)
			} else {
				err = yaml.Unmarshal(buf.Bytes(), &got)
				if !strings.Contains(buf.String(), "\n  name: db\n") && !strings.Contains(buf.String(), "- name: db\n") {
					t.Errorf("yaml lacks inlined name field:\n%s", buf.String())
				}
			}
			if err != nil {
				t.Fatalf("output does not parse back: %v\n%s", err, buf.String())
			}
			// Sorted by name: db first.
			want := []api.InstanceFull{stoppedInst, runningInst}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderEmptyListsAsEmptyArrays(t *testing.T) {
	tests := []struct {
		format string
		want   string
	}{
		{formatJSON, "[]\n"},
		{formatYAML, "[]\n"},
		{formatCSV, ""},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := imageListing.render(&buf, tt.format, nil); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tt.want {
			t.Errorf("%s: %q, want %q", tt.format, buf.String(), tt.want)
		}
	}
}

var (
	imgAlpine = api.Image{
		ImagePut:     api.ImagePut{Public: true, Properties: map[string]string{"description": "Alpine 3.20", "os": "Alpine"}},
		Aliases:      []api.ImageAlias{{Name: "alpine/3.20"}, {Name: "alpine"}},
		Architecture: "x86_64", Fingerprint: "0123456789abcdef0123456789abcdef", Size: 3 << 20,
		Type: "container", UploadedAt: t0, CreatedAt: t0,
	}
	imgBare = api.Image{
		Architecture: "aarch64", Fingerprint: "ffeeddccbbaa99887766", Size: 1536, UploadedAt: t0.Add(24 * time.Hour),
	}
)

func TestRenderImages(t *testing.T) {
	tests := []struct {
		format string
		want   string
	}{
		{formatTable, `+-----------------+--------------+--------+-------------+--------------+-----------+---------+-----------------------------+
|      ALIAS      | FINGERPRINT  | PUBLIC | DESCRIPTION | ARCHITECTURE |   TYPE    |  SIZE   |         UPLOAD DATE         |
+-----------------+--------------+--------+-------------+--------------+-----------+---------+-----------------------------+
| alpine (1 more) | 0123456789ab | yes    | Alpine 3.20 | x86_64       | CONTAINER | 3.00MiB | Mar 4, 2025 at 3:06pm (UTC) |
+-----------------+--------------+--------+-------------+--------------+-----------+---------+-----------------------------+
|                 | ffeeddccbbaa | no     |             | aarch64      | CONTAINER | 1.50KiB | Mar 5, 2025 at 3:06pm (UTC) |
+-----------------+--------------+--------+-------------+--------------+-----------+---------+-----------------------------+
`},
		{formatCSV, "alpine (1 more),0123456789ab,yes,Alpine 3.20,x86_64,CONTAINER,3.00MiB,\"Mar 4, 2025 at 3:06pm (UTC)\"\n" +
			",ffeeddccbbaa,no,,aarch64,CONTAINER,1.50KiB,\"Mar 5, 2025 at 3:06pm (UTC)\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := imageListing.render(&buf, tt.format, []api.Image{imgBare, imgAlpine}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, buf.String()); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderImagesJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := imageListing.render(&buf, formatJSON, []api.Image{imgAlpine}); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got[0]["fingerprint"] != imgAlpine.Fingerprint || got[0]["public"] != true {
		t.Errorf("json lacks API fields: %s", buf.String())
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0B"},
		{1023, "1023B"},
		{1024, "1.00KiB"},
		{1536, "1.50KiB"},
		{5 << 20, "5.00MiB"},
		{2580000, "2.46MiB"},
		{3 << 30, "3.00GiB"},
	}
	for _, tt := range tests {
		if got := formatBytes(tt.n); got != tt.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestFormatTime(t *testing.T) {
	if got := formatTime(t0); got != "2025/03/04 15:06 UTC" {
		t.Errorf("formatTime = %q", got)
	}
	if got := formatTime(time.Time{}); got != "" {
		t.Errorf("zero time = %q", got)
	}
	if got := formatTime(time.Unix(0, 0)); got != "" {
		t.Errorf("epoch = %q", got)
	}
}

func TestRenderInfo(t *testing.T) {
	inst := runningInst.Instance
	inst.LastUsedAt = t0.Add(time.Hour)
	st := *runningInst.State
	st.Processes = 7
	st.CPU.Usage = 12_500_000_000
	st.Memory = api.InstanceStateMemory{Usage: 5 << 20, UsagePeak: 8 << 20}
	st.Network = map[string]api.InstanceStateNetwork{"eth0": {
		Type: "broadcast", State: "up", HostName: "veth1", Hwaddr: "00:16:3e:00:00:01", Mtu: 1500,
		Counters:  api.InstanceStateNetworkCounters{BytesReceived: 2048, BytesSent: 100, PacketsReceived: 3, PacketsSent: 2},
		Addresses: []api.InstanceStateNetworkAddress{{Family: "inet", Address: "10.0.3.5", Netmask: "24", Scope: "global"}},
	}}
	var buf bytes.Buffer
	if err := renderInfo(&buf, &inst, &st); err != nil {
		t.Fatal(err)
	}
	want := `Name: web1
Status: RUNNING
Type: container
Architecture: x86_64
PID: 4242
Created: 2025/03/04 15:06 UTC
Last Used: 2025/03/04 16:06 UTC
Profiles: default

Resources:
  Processes: 7
  CPU usage:
    CPU usage (in seconds): 12
  Memory usage:
    Memory (current): 5.00MiB
    Memory (peak): 8.00MiB
  Network usage:
    eth0:
      Type: broadcast
      State: UP
      Host interface: veth1
      MAC address: 00:16:3e:00:00:01
      MTU: 1500
      Bytes received: 2.00KiB
      Bytes sent: 100B
      Packets received: 3
      Packets sent: 2
      IP addresses:
        inet:   10.0.3.5/24 (global)
`
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("info mismatch (-want +got):\n%s", diff)
	}

	buf.Reset()
	stopped := stoppedInst.Instance
	if err := renderInfo(&buf, &stopped, &api.InstanceState{Status: "Stopped"}); err != nil {
		t.Fatal(err)
	}
	want = "Name: db\nStatus: STOPPED\nType: container (ephemeral)\nArchitecture: \nCreated: 2025/03/04 15:06 UTC\nProfiles: \n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("stopped info mismatch (-want +got):\n%s", diff)
	}
}

func TestPrintEvent(t *testing.T) {
	ev := api.Event{
		Type: "lifecycle", Timestamp: t0, Sequence: 7,
		Metadata: json.RawMessage(`{"action":"instance-started","source":"/1.0/instances/c1","context":{"pid":1234567}}`),
	}
	var buf bytes.Buffer
	if err := printEvent(&buf, formatYAML, ev); err != nil {
		t.Fatal(err)
	}
	want := `type: lifecycle
timestamp: 2025-03-04T15:06:00Z
metadata:
  action: instance-started
  context:
    pid: 1234567
  source: /1.0/instances/c1
sequence: 7

`
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("yaml event mismatch (-want +got):\n%s", diff)
	}
	buf.Reset()
	if err := printEvent(&buf, formatJSON, ev); err != nil {
		t.Fatal(err)
	}
	var back api.Event
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.Sequence != 7 || strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("json event %q (%v)", buf.String(), err)
	}
}

package cli

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
)

var (
	devEth0  = map[string]string{"type": "nic", "network": "hangarbr0", "name": "eth0"}
	devRoot  = map[string]string{"type": "disk", "path": "/", "pool": "default"}
	devEth1  = map[string]string{"type": "nic", "network": "hangarbr0", "name": "eth1"}
	devProxy = map[string]string{"type": "proxy", "listen": "tcp:0.0.0.0:8080", "connect": "tcp:127.0.0.1:80"}

	// devInst has eth1 and web of its own, and eth0 and root from the
	// default profile.
	devInst = api.Instance{Name: "c1", Status: "Running", StatusCode: api.Running,
		InstancePut:     api.InstancePut{Profiles: []string{"default"}, Devices: devices{"eth1": devEth1, "web": devProxy}},
		ExpandedDevices: devices{"eth0": devEth0, "root": devRoot, "eth1": devEth1, "web": devProxy}}
	devBare    = api.Instance{Name: "c0", Status: "Stopped", StatusCode: api.Stopped, InstancePut: api.InstancePut{Profiles: []string{}}}
	devDefault = api.Profile{Name: "default", ProfilePut: api.ProfilePut{Description: "Default", Devices: devices{"eth0": devEth0, "root": devRoot}}}
	devBig     = api.Profile{Name: "big", ProfilePut: api.ProfilePut{Devices: devices{"eth0": {"type": "nic", "network": "lan", "name": "eth0"}}}}
	devEmpty   = api.Profile{Name: "empty"}
)

// The JSON of the devices in the fixtures, to write the expected bodies
// with (encoding/json sorts map keys).
const (
	jsonEth0  = `{"name":"eth0","network":"hangarbr0","type":"nic"}`
	jsonRoot  = `{"path":"/","pool":"default","type":"disk"}`
	jsonEth1  = `{"name":"eth1","network":"hangarbr0","type":"nic"}`
	jsonProxy = `{"connect":"tcp:127.0.0.1:80","listen":"tcp:0.0.0.0:8080","type":"proxy"}`
)

// instPut is the PUT body of devInst with devices d (JSON).
func instPut(d string) string {
	return `{"architecture":"","config":null,"devices":` + d + `,"ephemeral":false,"profiles":["default"],"stateful":false,"description":""}`
}

// profPut is the PUT body of devDefault with devices d (JSON).
func profPut(d string) string {
	return `{"config":null,"description":"Default","devices":` + d + `}`
}

var (
	getC1      = "GET /1.0/instances/c1"
	putC1      = []string{"GET /1.0/instances/c1", "PUT /1.0/instances/c1", "GET /1.0/operations/u/wait?timeout=-1"}
	getDefault = "GET /1.0/profiles/default"
	putDefault = []string{"GET /1.0/profiles/default", "PUT /1.0/profiles/default"}
)

// TestDeviceCommands runs every `config device` and `profile device`
// command against a fake daemon: the output, the requests sent in order,
// and the exact body and If-Match of the change; bad input sends no change.
func TestDeviceCommands(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantOut   string
		wantErr   string
		wantCalls []string
		wantBody  string // of the change (a PUT), "" = none
	}{
		// add
		{
			name: "add nic", args: []string{"config", "device", "add", "c1", "eth2", "nic", "network=hangarbr0", "name=eth2", "ipv4.address=10.0.3.9"},
			wantOut: "Device eth2 added to c1\n", wantCalls: putC1,
			wantBody: instPut(`{"eth1":` + jsonEth1 + `,"eth2":{"ipv4.address":"10.0.3.9","name":"eth2","network":"hangarbr0","type":"nic"},"web":` + jsonProxy + `}`),
		},
		{
			name: "add with no keys", args: []string{"config", "device", "add", "c0", "n", "none"},
			wantOut: "Device n added to c0\n", wantCalls: []string{"GET /1.0/instances/c0", "PUT /1.0/instances/c0", "GET /1.0/operations/u/wait?timeout=-1"},
			wantBody: `{"architecture":"","config":null,"devices":{"n":{"type":"none"}},"ephemeral":false,"profiles":[],"stateful":false,"description":""}`,
		},
		{
			// A local device may shadow a profile's, as in lxc.
			name: "add shadowing a profile device", args: []string{"config", "device", "add", "c1", "eth0", "none"},
			wantOut: "Device eth0 added to c1\n", wantCalls: putC1,
			wantBody: instPut(`{"eth0":{"type":"none"},"eth1":` + jsonEth1 + `,"web":` + jsonProxy + `}`),
		},
		{
			name: "add existing", args: []string{"config", "device", "add", "c1", "web", "proxy", "listen=tcp:0.0.0.0:9090"}, wantCode: 1,
			wantErr: "Error: The device already exists\n", wantCalls: []string{getC1},
		},
		{
			name: "add to unknown instance", args: []string{"config", "device", "add", "nope", "eth2", "nic"}, wantCode: 1,
			wantErr: "Error: Instance not found\n", wantCalls: []string{"GET /1.0/instances/nope"},
		},
		{
			name: "add malformed key", args: []string{"config", "device", "add", "c1", "eth2", "nic", "network"}, wantCode: 1,
			wantErr: "Error: invalid setting \"network\": expected key=value\nUsage: hangar config device add INSTANCE DEVICE TYPE [KEY=VALUE...] [flags]\n",
		},
		{
			name: "add without type", args: []string{"config", "device", "add", "c1", "eth2"}, wantCode: 1,
			wantErr: "Error: missing arguments: expected at least 3, got 2\nUsage: hangar config device add INSTANCE DEVICE TYPE [KEY=VALUE...] [flags]\n",
		},
		{
			name: "add to profile", args: []string{"profile", "device", "add", "default", "web", "proxy", "listen=tcp:0.0.0.0:8080", "connect=tcp:127.0.0.1:80"},
			wantOut: "Device web added to default\n", wantCalls: putDefault,
			wantBody: profPut(`{"eth0":` + jsonEth0 + `,"root":` + jsonRoot + `,"web":` + jsonProxy + `}`),
		},
		{
			name: "add to profile without devices", args: []string{"profile", "device", "add", "empty", "eth0", "nic", "network=hangarbr0"},
			wantOut: "Device eth0 added to empty\n", wantCalls: []string{"GET /1.0/profiles/empty", "PUT /1.0/profiles/empty"},
			wantBody: `{"config":null,"description":"","devices":{"eth0":{"network":"hangarbr0","type":"nic"}}}`,
		},
		{
			name: "add existing to profile", args: []string{"profile", "device", "add", "default", "eth0", "nic"}, wantCode: 1,
			wantErr: "Error: The device already exists\n", wantCalls: []string{getDefault},
		},
		{
			name: "add to unknown profile", args: []string{"profile", "device", "add", "nope", "eth0", "nic"}, wantCode: 1,
			wantErr: "Error: Profile not found\n", wantCalls: []string{"GET /1.0/profiles/nope"},
		},

		// remove
		{
			name: "remove several", args: []string{"config", "device", "remove", "c1", "eth1", "web"},
			wantOut: "Device eth1, web removed from c1\n", wantCalls: putC1, wantBody: instPut(`{}`),
		},
		{
			name: "remove missing", args: []string{"config", "device", "rm", "c1", "eth1", "eth9"}, wantCode: 1,
			wantErr: "Error: Device doesn't exist\n", wantCalls: []string{getC1},
		},
		{
			name: "remove profile device from instance", args: []string{"config", "device", "remove", "c1", "eth0"}, wantCode: 1,
			wantErr:   "Error: Device from profile(s) cannot be removed from individual instance. Override device or modify profile instead\n",
			wantCalls: []string{getC1},
		},
		{
			name: "remove from profile", args: []string{"profile", "device", "remove", "default", "eth0"},
			wantOut: "Device eth0 removed from default\n", wantCalls: putDefault, wantBody: profPut(`{"root":` + jsonRoot + `}`),
		},
		{
			name: "remove missing from profile", args: []string{"profile", "device", "remove", "default", "web"}, wantCode: 1,
			wantErr: "Error: Device doesn't exist\n", wantCalls: []string{getDefault},
		},

		// set, unset
		{
			name: "set key=value", args: []string{"config", "device", "set", "c1", "eth1", "ipv4.address=10.0.3.50", "mtu=1400", "name="},
			wantCalls: putC1,
			wantBody:  instPut(`{"eth1":{"ipv4.address":"10.0.3.50","mtu":"1400","network":"hangarbr0","type":"nic"},"web":` + jsonProxy + `}`),
		},
		{
			name: "set key value", args: []string{"config", "device", "set", "c1", "web", "listen", "tcp:0.0.0.0:9090"},
			wantCalls: putC1,
			wantBody:  instPut(`{"eth1":` + jsonEth1 + `,"web":{"connect":"tcp:127.0.0.1:80","listen":"tcp:0.0.0.0:9090","type":"proxy"}}`),
		},
		{
			name: "set profile device on instance", args: []string{"config", "device", "set", "c1", "eth0", "mtu=1400"}, wantCode: 1,
			wantErr:   "Error: Device from profile(s) cannot be modified for individual instance. Override device or modify profile instead\n",
			wantCalls: []string{getC1},
		},
		{
			name: "set missing device", args: []string{"config", "device", "set", "c1", "eth9", "mtu=1400"}, wantCode: 1,
			wantErr: "Error: Device doesn't exist\n", wantCalls: []string{getC1},
		},
		{
			name: "set malformed", args: []string{"config", "device", "set", "c1", "eth1", "mtu=1", "name"}, wantCode: 1,
			wantErr: "Error: invalid setting \"name\": expected key=value\nUsage: hangar config device set INSTANCE DEVICE KEY=VALUE...|KEY VALUE [flags]\n",
		},
		{
			name: "set empty key", args: []string{"profile", "device", "set", "default", "eth0", "=1"}, wantCode: 1,
			wantErr: "Error: invalid setting \"=1\": empty key\nUsage: hangar profile device set PROFILE DEVICE KEY=VALUE...|KEY VALUE [flags]\n",
		},
		{
			name: "set on profile", args: []string{"profile", "device", "set", "default", "eth0", "ipv4.address", "10.0.3.7"},
			wantCalls: putDefault,
			wantBody:  profPut(`{"eth0":{"ipv4.address":"10.0.3.7","name":"eth0","network":"hangarbr0","type":"nic"},"root":` + jsonRoot + `}`),
		},
		{
			name: "unset", args: []string{"config", "device", "unset", "c1", "eth1", "name"},
			wantCalls: putC1,
			wantBody:  instPut(`{"eth1":{"network":"hangarbr0","type":"nic"},"web":` + jsonProxy + `}`),
		},
		{
			name: "unset on profile", args: []string{"profile", "device", "unset", "default", "root", "pool"},
			wantCalls: putDefault,
			wantBody:  profPut(`{"eth0":` + jsonEth0 + `,"root":{"path":"/","type":"disk"}}`),
		},
		{
			name: "unset profile device on instance", args: []string{"config", "device", "unset", "c1", "root", "pool"}, wantCode: 1,
			wantErr:   "Error: Device from profile(s) cannot be modified for individual instance. Override device or modify profile instead\n",
			wantCalls: []string{getC1},
		},
		{
			name: "unset needs a key", args: []string{"config", "device", "unset", "c1", "eth1"}, wantCode: 1,
			wantErr: "Error: wrong number of arguments: expected 3, got 2\nUsage: hangar config device unset INSTANCE DEVICE KEY [flags]\n",
		},

		// get, show, list
		{name: "get", args: []string{"config", "device", "get", "c1", "web", "listen"}, wantOut: "tcp:0.0.0.0:8080\n", wantCalls: []string{getC1}},
		{name: "get unset key", args: []string{"config", "device", "get", "c1", "web", "nat"}, wantOut: "\n", wantCalls: []string{getC1}},
		{
			name: "get profile device on instance", args: []string{"config", "device", "get", "c1", "eth0", "name"}, wantCode: 1,
			wantErr: "Error: Device from profile(s) cannot be retrieved for individual instance\n", wantCalls: []string{getC1},
		},
		{
			name: "get missing device", args: []string{"profile", "device", "get", "default", "eth9", "name"}, wantCode: 1,
			wantErr: "Error: Device doesn't exist\n", wantCalls: []string{getDefault},
		},
		{name: "get on profile", args: []string{"profile", "device", "get", "default", "eth0", "network"}, wantOut: "hangarbr0\n", wantCalls: []string{getDefault}},
		{
			name: "show", args: []string{"config", "device", "show", "c1"},
			wantOut: "eth1:\n  name: eth1\n  network: hangarbr0\n  type: nic\n" +
				"web:\n  connect: tcp:127.0.0.1:80\n  listen: tcp:0.0.0.0:8080\n  type: proxy\n",
			wantCalls: []string{getC1},
		},
		{name: "show none", args: []string{"config", "device", "show", "c0"}, wantOut: "{}\n", wantCalls: []string{"GET /1.0/instances/c0"}},
		{
			name: "show profile", args: []string{"profile", "device", "show", "default"},
			wantOut:   "eth0:\n  name: eth0\n  network: hangarbr0\n  type: nic\nroot:\n  path: /\n  pool: default\n  type: disk\n",
			wantCalls: []string{getDefault},
		},
		{name: "list", args: []string{"config", "device", "list", "c1"}, wantOut: "eth1\nweb\n", wantCalls: []string{getC1}},
		{name: "list none", args: []string{"config", "device", "ls", "c0"}, wantOut: "", wantCalls: []string{"GET /1.0/instances/c0"}},
		{name: "list profile", args: []string{"profile", "device", "list", "default"}, wantOut: "eth0\nroot\n", wantCalls: []string{getDefault}},
		{
			name: "list unknown instance", args: []string{"config", "device", "list", "nope"}, wantCode: 1,
			wantErr: "Error: Instance not found\n", wantCalls: []string{"GET /1.0/instances/nope"},
		},

		// override
		{
			name: "override", args: []string{"config", "device", "override", "c1", "eth0", "ipv4.address=10.0.3.50", "name="},
			wantOut: "Device eth0 overridden for c1\n", wantCalls: putC1,
			wantBody: instPut(`{"eth0":{"ipv4.address":"10.0.3.50","network":"hangarbr0","type":"nic"},"eth1":` + jsonEth1 + `,"web":` + jsonProxy + `}`),
		},
		{
			name: "override without changes", args: []string{"config", "device", "override", "c1", "root"},
			wantOut: "Device root overridden for c1\n", wantCalls: putC1,
			wantBody: instPut(`{"eth1":` + jsonEth1 + `,"root":` + jsonRoot + `,"web":` + jsonProxy + `}`),
		},
		{
			name: "override local device", args: []string{"config", "device", "override", "c1", "eth1", "mtu=1400"}, wantCode: 1,
			wantErr: "Error: The device already exists\n", wantCalls: []string{getC1},
		},
		{
			name: "override missing device", args: []string{"config", "device", "override", "c1", "eth9"}, wantCode: 1,
			wantErr: "Error: The profile device doesn't exist\n", wantCalls: []string{getC1},
		},
		{
			name: "override malformed", args: []string{"config", "device", "override", "c1", "eth0", "mtu"}, wantCode: 1,
			wantErr: "Error: invalid setting \"mtu\": expected key=value\nUsage: hangar config device override INSTANCE DEVICE [KEY=VALUE...] [flags]\n",
		},
		{
			// Profiles have no profiles to override devices of.
			name: "no override for profiles", args: []string{"profile", "device", "override", "default", "eth0"}, wantCode: 1,
			wantErr: "Error: unknown command \"override\" for \"hangar profile device\"\nRun 'hangar profile device --help' for the list of commands.\n",
		},

		// A concurrent change between the read and the write: the daemon
		// refuses the stale ETag and the user sees why.
		{
			name: "concurrent change", args: []string{"config", "device", "add", "c2", "eth2", "none"}, wantCode: 1,
			wantErr:   "Error: instance \"c2\" changed since it was read (ETag mismatch)\n",
			wantCalls: []string{"GET /1.0/instances/c2", "PUT /1.0/instances/c2"},
			wantBody:  `{"architecture":"","config":null,"devices":{"eth1":` + jsonEth1 + `,"eth2":{"type":"none"},"web":` + jsonProxy + `},"ephemeral":false,"profiles":["default"],"stateful":false,"description":""}`,
		},
		{
			name: "concurrent change to profile", args: []string{"profile", "device", "remove", "big", "eth0"}, wantCode: 1,
			wantErr:   "Error: profile \"big\" changed since it was read (ETag mismatch)\n",
			wantCalls: []string{"GET /1.0/profiles/big", "PUT /1.0/profiles/big"},
			wantBody:  `{"config":null,"description":"","devices":{}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c2 := devInst
			c2.Name = "c2"
			f := newFakeHangard(t, map[string]http.HandlerFunc{
				"GET /1.0/instances/c1":      fakeOK(devInst, `"etag-c1"`),
				"PUT /1.0/instances/c1":      fakeOp("u", nil),
				"GET /1.0/instances/c0":      fakeOK(devBare, `"etag-c0"`),
				"PUT /1.0/instances/c0":      fakeOp("u", nil),
				"GET /1.0/operations/u/wait": fakeOpDone("u", api.Success, "", nil),
				"GET /1.0/instances/nope":    fakeFail(404, "Instance not found"),
				"GET /1.0/instances/c2":      fakeOK(c2, `"etag-c2"`),
				"PUT /1.0/instances/c2":      fakeFail(412, `instance "c2" changed since it was read (ETag mismatch)`),
				"GET /1.0/profiles/default":  fakeOK(devDefault, `"etag-default"`),
				"PUT /1.0/profiles/default":  fakeOK(nil, ""),
				"GET /1.0/profiles/empty":    fakeOK(devEmpty, `"etag-empty"`),
				"PUT /1.0/profiles/empty":    fakeOK(nil, ""),
				"GET /1.0/profiles/big":      fakeOK(devBig, `"etag-big"`),
				"PUT /1.0/profiles/big":      fakeFail(412, `profile "big" changed since it was read (ETag mismatch)`),
				"GET /1.0/profiles/nope":     fakeFail(404, "Profile not found"),
			})
			code, out, errOut := runCLI(t, f.socket, "", tt.args...)
			if code != tt.wantCode || out != tt.wantOut || errOut != tt.wantErr {
				t.Errorf("got code %d out %q err %q\nwant %d %q %q", code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantCalls, f.calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			var put *fakeRequest
			for i, r := range f.reqs {
				if r.Method != http.MethodGet {
					put = &f.reqs[i]
				}
			}
			if put == nil {
				if tt.wantBody != "" {
					t.Errorf("no change sent, want %s", tt.wantBody)
				}
				return
			}
			if put.Body != tt.wantBody {
				t.Errorf("%s body\n got %s\nwant %s", put.Method, put.Body, tt.wantBody)
			}
			// The change carries the ETag of the read it was made from.
			name := put.URI[strings.LastIndex(put.URI, "/")+1:]
			if want := `"etag-` + name + `"`; put.IfMatch != want {
				t.Errorf("If-Match %q, want %q", put.IfMatch, want)
			}
		})
	}
}

// TestDeviceArgumentErrors: mistakes in how a device command is called
// never reach the daemon (there is none: a request would fail to connect).
func TestDeviceArgumentErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"config", "device", "remove", "c1"}, "Error: missing arguments: expected at least 2, got 1\nUsage: hangar config device remove INSTANCE DEVICE... [flags]\n"},
		{[]string{"config", "device", "get", "c1", "eth0"}, "Error: wrong number of arguments: expected 3, got 2\nUsage: hangar config device get INSTANCE DEVICE KEY [flags]\n"},
		{[]string{"config", "device", "show"}, "Error: wrong number of arguments: expected 1, got 0\nUsage: hangar config device show INSTANCE [flags]\n"},
		{[]string{"profile", "device", "list", "a", "b"}, "Error: wrong number of arguments: expected 1, got 2\nUsage: hangar profile device list PROFILE [flags]\n"},
		{[]string{"profile", "device", "add", "p", "d", "nic", "=x"}, "Error: invalid setting \"=x\": empty key\nUsage: hangar profile device add PROFILE DEVICE TYPE [KEY=VALUE...] [flags]\n"},
		{[]string{"config", "device", "set", "c1", "eth0"}, "Error: missing arguments: expected at least 3, got 2\nUsage: hangar config device set INSTANCE DEVICE KEY=VALUE...|KEY VALUE [flags]\n"},
		{[]string{"config", "device", "frob"}, "Error: unknown command \"frob\" for \"hangar config device\"\nRun 'hangar config device --help' for the list of commands.\n"},
		{[]string{"launch", "busybox", "-d", "eth0"}, "Error: bad device override \"eth0\": expected DEVICE,KEY=VALUE[,KEY=VALUE...]\nUsage: hangar launch [REMOTE:]IMAGE [[REMOTE:]NAME] [flags]\n"},
	}
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, sock, "", tt.args...)
			if code != 1 || out != "" || errOut != tt.wantErr {
				t.Errorf("code %d out %q err\n got %q\nwant %q", code, out, errOut, tt.wantErr)
			}
		})
	}
}

func TestParseDeviceOverrides(t *testing.T) {
	tests := []struct {
		name    string
		flags   []string
		want    devices
		wantErr string
	}{
		{name: "none", want: devices{}},
		{name: "one key", flags: []string{"eth0,ipv4.address=10.0.3.50"}, want: devices{"eth0": {"ipv4.address": "10.0.3.50"}}},
		{
			name: "several keys and flags", flags: []string{"eth0,mtu=1400,name=lan0", "web,type=proxy,listen=tcp:0.0.0.0:80", "eth0,mtu=1500"},
			want: devices{"eth0": {"mtu": "1500", "name": "lan0"}, "web": {"type": "proxy", "listen": "tcp:0.0.0.0:80"}},
		},
		{
			name: "a list value keeps its commas", flags: []string{"eth0,ipv4.routes=10.1.0.0/24,10.2.0.0/24,mtu=1400"},
			want: devices{"eth0": {"ipv4.routes": "10.1.0.0/24,10.2.0.0/24", "mtu": "1400"}},
		},
		{name: "value with =", flags: []string{"eth0,user.x=a=b"}, want: devices{"eth0": {"user.x": "a=b"}}},
		{name: "empty value", flags: []string{"eth0,ipv4.address="}, want: devices{"eth0": {"ipv4.address": ""}}},
		{name: "no key", flags: []string{"eth0"}, wantErr: `bad device override "eth0": expected DEVICE,KEY=VALUE[,KEY=VALUE...]`},
		{name: "no device", flags: []string{"mtu=1400"}, wantErr: `bad device override "mtu=1400": expected DEVICE,KEY=VALUE[,KEY=VALUE...]`},
		{name: "empty device", flags: []string{",mtu=1400"}, wantErr: `bad device override ",mtu=1400": expected DEVICE,KEY=VALUE[,KEY=VALUE...]`},
		{name: "bare key", flags: []string{"eth0,mtu"}, wantErr: `bad device override "eth0,mtu": expected DEVICE,KEY=VALUE[,KEY=VALUE...]`},
		{name: "empty key", flags: []string{"eth0,mtu=1,=2"}, wantErr: `bad device override "eth0,mtu=1,=2": empty key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDeviceOverrides(tt.flags)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLaunchDeviceOverrides runs launch and init with --device: the
// profiles read, and the devices of the request, or the error and no
// request at all.
func TestLaunchDeviceOverrides(t *testing.T) {
	const post = "POST /1.0/instances"
	tests := []struct {
		name        string
		args        []string
		wantCode    int
		wantErr     string
		wantCalls   []string // up to the POST, whose wait follows on success
		wantDevices string   // "devices" of the POST body
	}{
		{
			name: "override a default profile device", args: []string{"launch", "busybox", "c1", "-d", "eth0,ipv4.address=10.0.3.50"},
			wantCalls:   []string{getDefault, post},
			wantDevices: `{"eth0":{"ipv4.address":"10.0.3.50","name":"eth0","network":"hangarbr0","type":"nic"}}`,
		},
		{
			// The last profile with the device wins, as the daemon
			// expands them; list values keep their commas.
			name: "override from the profiles given", args: []string{"init", "busybox", "c1", "-p", "default", "-p", "big", "-d", "eth0,mtu=1400,ipv4.routes=10.1.0.0/24,10.2.0.0/24"},
			wantCalls:   []string{getDefault, "GET /1.0/profiles/big", post},
			wantDevices: `{"eth0":{"ipv4.routes":"10.1.0.0/24,10.2.0.0/24","mtu":"1400","name":"eth0","network":"lan","type":"nic"}}`,
		},
		{
			name: "new device and unset key", args: []string{"create", "busybox", "c1", "-d", "web,type=proxy,listen=tcp:0.0.0.0:8080,connect=tcp:127.0.0.1:80", "-d", "eth0,name="},
			wantCalls:   []string{getDefault, post},
			wantDevices: `{"eth0":{"network":"hangarbr0","type":"nic"},"web":` + jsonProxy + `}`,
		},
		{
			name: "new device without profiles", args: []string{"launch", "busybox", "c1", "--no-profiles", "-d", "n,type=none"},
			wantCalls: []string{post}, wantDevices: `{"n":{"type":"none"}}`,
		},
		{
			name: "unknown device", args: []string{"launch", "busybox", "c1", "-d", "eth9,mtu=1400"}, wantCode: 1,
			wantErr:   "Error: cannot override device \"eth9\": no such device in profiles default; give type= to add a new device\n",
			wantCalls: []string{getDefault},
		},
		{
			name: "unknown device without profiles", args: []string{"launch", "busybox", "c1", "--no-profiles", "-d", "eth0,mtu=1400"}, wantCode: 1,
			wantErr: "Error: cannot override device \"eth0\": the instance has no profiles; give type= to add a new device\n",
		},
		{
			name: "unknown profile", args: []string{"launch", "busybox", "c1", "-p", "nope", "-d", "eth0,mtu=1400"}, wantCode: 1,
			wantErr:   "Error: load profile \"nope\" for device override: Profile not found\n",
			wantCalls: []string{"GET /1.0/profiles/nope"},
		},
		{
			name: "no override, no profile read", args: []string{"launch", "busybox", "c1"},
			wantCalls: []string{post}, wantDevices: `null`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHangard(t, map[string]http.HandlerFunc{
				"GET /1.0/profiles/default":    fakeOK(devDefault, `"e"`),
				"GET /1.0/profiles/big":        fakeOK(devBig, `"e"`),
				"GET /1.0/profiles/nope":       fakeFail(404, "Profile not found"),
				"POST /1.0/instances":          fakeOp("op1", map[string][]string{"instances": {"/1.0/instances/c1"}}),
				"GET /1.0/operations/op1/wait": fakeOpDone("op1", api.Success, "", nil),
			})
			code, _, errOut := runCLI(t, f.socket, "", tt.args...)
			if code != tt.wantCode || errOut != tt.wantErr {
				t.Errorf("code %d err %q, want %d %q", code, errOut, tt.wantCode, tt.wantErr)
			}
			want := tt.wantCalls
			if tt.wantCode == 0 {
				want = append(want, "GET /1.0/operations/op1/wait?timeout=-1")
			}
			if diff := cmp.Diff(want, f.calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if tt.wantDevices == "" {
				return
			}
			body := f.request(t, "POST", "/1.0/instances").Body
			i := strings.Index(body, `"devices":`)
			j := strings.Index(body, `,"ephemeral":`)
			if i < 0 || j < i {
				t.Fatalf("body %s", body)
			}
			if got := body[i+len(`"devices":`) : j]; got != tt.wantDevices {
				t.Errorf("devices\n got %s\nwant %s", got, tt.wantDevices)
			}
		})
	}
}

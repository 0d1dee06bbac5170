package cli

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
)

var (
	netBridge = api.Network{Name: "hangarbr0", Type: "bridge", Managed: true, Status: "Created",
		NetworkPut: api.NetworkPut{Description: "default", Config: map[string]string{"ipv4.address": "10.0.3.1/24", "ipv6.address": "fd42::1/64"}},
		UsedBy:     []string{"/1.0/instances/c1", "/1.0/profiles/default"}, Locations: []string{"none"}}
	netHostNIC    = api.Network{Name: "eth0", Type: "physical", UsedBy: []string{}}
	netHostBridge = api.Network{Name: "br9", Type: "bridge", UsedBy: []string{}}
	netLoopback   = api.Network{Name: "lo", Type: "loopback"}
	netState      = api.NetworkState{
		Addresses: []api.NetworkStateAddress{{Family: "inet", Address: "10.0.3.1", Netmask: "24", Scope: "global"},
			{Family: "inet6", Address: "fd42::1", Netmask: "64", Scope: "global"}},
		Counters: api.NetworkStateCounters{BytesReceived: 2048, BytesSent: 100, PacketsReceived: 3, PacketsSent: 4},
		Hwaddr:   "00:16:3e:00:00:01", Mtu: 1500, State: "up", Type: "bridge",
		Bridge: &api.NetworkStateBridge{UpperDevices: []string{"hgr1", "hgr2"}},
	}
	netLeases = []api.NetworkLease{
		{Hostname: "web", Hwaddr: "00:16:3e:00:00:03", Address: "10.0.3.7", Type: "static", Location: "none"},
		{Hostname: "c1", Hwaddr: "00:16:3e:00:00:02", Address: "10.0.3.5", Type: "dynamic", Location: "none"},
	}
	netForward = api.NetworkForward{ListenAddress: "192.0.2.1", Location: "none", NetworkForwardPut: api.NetworkForwardPut{
		Description: "web", Config: map[string]string{"target_address": "10.0.3.5"},
		Ports: []api.NetworkForwardPort{
			{Protocol: "tcp", ListenPort: "80", TargetAddress: "10.0.3.5", TargetPort: "8080"},
			{Protocol: "tcp", ListenPort: "443", TargetAddress: "10.0.3.5"},
		}}}
	instWithNIC = api.Instance{Name: "c1", Status: "Running", StatusCode: api.Running, InstancePut: api.InstancePut{
		Profiles: []string{"default"},
		Devices: map[string]map[string]string{
			"eth1": {"type": "nic", "network": "hangarbr0", "name": "eth1"},
			"data": {"type": "disk", "path": "/data", "source": "/srv"},
		}}}
)

// TestNetworkCommands runs every network command against a fake daemon:
// its output, the requests it sends in order, and the body and If-Match
// of the change it makes.
func TestNetworkCommands(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		stdin       string
		wantCode    int
		wantOut     string
		wantErr     string
		wantCalls   []string
		wantBody    string // of the last change (a request other than GET)
		wantIfMatch string // of the last change
	}{
		{
			name: "list", args: []string{"network", "list"},
			wantOut: "" +
				"+-----------+----------+---------+-------------+------------+-------------+---------+---------+\n" +
				"|   NAME    |   TYPE   | MANAGED |    IPV4     |    IPV6    | DESCRIPTION | USED BY |  STATE  |\n" +
				"+-----------+----------+---------+-------------+------------+-------------+---------+---------+\n" +
				"| br9       | bridge   | NO      |             |            |             | 0       |         |\n" +
				"+-----------+----------+---------+-------------+------------+-------------+---------+---------+\n" +
				"| eth0      | physical | NO      |             |            |             | 0       |         |\n" +
				"+-----------+----------+---------+-------------+------------+-------------+---------+---------+\n" +
				"| hangarbr0 | bridge   | YES     | 10.0.3.1/24 | fd42::1/64 | default     | 2       | CREATED |\n" +
				"+-----------+----------+---------+-------------+------------+-------------+---------+---------+\n",
			wantCalls: []string{"GET /1.0/networks?recursion=1"},
		},
		{
			name: "list csv", args: []string{"network", "ls", "-f", "csv"},
			wantOut:   "br9,bridge,NO,,,,0,\neth0,physical,NO,,,,0,\nhangarbr0,bridge,YES,10.0.3.1/24,fd42::1/64,default,2,CREATED\n",
			wantCalls: []string{"GET /1.0/networks?recursion=1"},
		},
		{
			name: "list takes no argument", args: []string{"network", "list", "x"}, wantCode: 1,
			wantErr: "Error: wrong number of arguments: expected 0, got 1\nUsage: hangar network list [flags]\n",
		},
		{
			name: "show", args: []string{"network", "show", "eth0"},
			wantOut:   "config: {}\ndescription: \"\"\nname: eth0\ntype: physical\nused_by: []\nmanaged: false\nstatus: \"\"\nlocations: []\n",
			wantCalls: []string{"GET /1.0/networks/eth0"},
		},
		{
			name: "create", args: []string{"network", "create", "mv0", "--type", "macvlan", "parent=eth0", "mtu=1400", "--description", "lan"},
			wantOut:   "Network mv0 created\n",
			wantCalls: []string{"POST /1.0/networks"},
			wantBody:  `{"config":{"mtu":"1400","parent":"eth0"},"description":"lan","name":"mv0","type":"macvlan"}`,
		},
		{
			name: "create from stdin", args: []string{"network", "create", "br1", "ipv6.address=none"},
			stdin:     "description: test\nconfig:\n  ipv4.address: 10.9.0.1/24\n",
			wantOut:   "Network br1 created\n",
			wantCalls: []string{"POST /1.0/networks"},
			wantBody:  `{"config":{"ipv4.address":"10.9.0.1/24","ipv6.address":"none"},"description":"test","name":"br1","type":""}`,
		},
		{
			name: "create bad setting", args: []string{"network", "create", "br1", "ipv4.nat"}, wantCode: 1,
			wantErr: "Error: invalid setting \"ipv4.nat\": expected key=value\nUsage: hangar network create NAME [KEY=VALUE...] [flags]\n",
		},
		{
			name: "create refused", args: []string{"network", "create", "bad", "bogus=1"}, wantCode: 1,
			wantErr:   "Error: invalid network config key \"bogus\" for type bridge\n",
			wantCalls: []string{"POST /1.0/networks"},
			wantBody:  `{"config":{"bogus":"1"},"description":"","name":"bad","type":""}`,
		},
		{
			name: "set", args: []string{"network", "set", "hangarbr0", "ipv4.nat=true", "ipv6.address="},
			wantCalls:   []string{"GET /1.0/networks/hangarbr0", "PUT /1.0/networks/hangarbr0"},
			wantBody:    `{"config":{"ipv4.address":"10.0.3.1/24","ipv4.nat":"true"},"description":"default"}`,
			wantIfMatch: `"net-etag"`,
		},
		{
			name: "set on a host interface", args: []string{"network", "set", "eth0", "mtu=9000"}, wantCode: 1,
			wantErr:   "Error: only managed networks can be modified (eth0 is a host interface)\n",
			wantCalls: []string{"GET /1.0/networks/eth0"},
		},
		{
			name: "unset", args: []string{"network", "unset", "hangarbr0", "ipv6.address"},
			wantCalls:   []string{"GET /1.0/networks/hangarbr0", "PUT /1.0/networks/hangarbr0"},
			wantBody:    `{"config":{"ipv4.address":"10.0.3.1/24"},"description":"default"}`,
			wantIfMatch: `"net-etag"`,
		},
		{
			name: "unset missing key", args: []string{"network", "unset", "hangarbr0", "dns.domain"}, wantCode: 1,
			wantErr:   "Error: can't unset key 'dns.domain', it's not currently set\n",
			wantCalls: []string{"GET /1.0/networks/hangarbr0"},
		},
		{
			name: "get", args: []string{"network", "get", "hangarbr0", "ipv4.address"}, wantOut: "10.0.3.1/24\n",
			wantCalls: []string{"GET /1.0/networks/hangarbr0"},
		},
		{
			name: "edit from stdin", args: []string{"network", "edit", "hangarbr0"},
			stdin:       "description: new\nconfig:\n  ipv4.address: auto\nname: ignored\n",
			wantCalls:   []string{"GET /1.0/networks/hangarbr0", "PUT /1.0/networks/hangarbr0"},
			wantBody:    `{"config":{"ipv4.address":"auto"},"description":"new"}`,
			wantIfMatch: `"net-etag"`,
		},
		{
			name: "delete", args: []string{"network", "delete", "spare"}, wantOut: "Network spare deleted\n",
			wantCalls: []string{"DELETE /1.0/networks/spare"},
		},
		{
			name: "delete in use", args: []string{"network", "rm", "hangarbr0"}, wantCode: 1,
			wantErr:   "Error: network \"hangarbr0\" is in use by instances/c1, profiles/default and cannot be deleted\n",
			wantCalls: []string{"DELETE /1.0/networks/hangarbr0"},
		},
		{
			name: "rename", args: []string{"network", "rename", "spare", "lan"}, wantOut: "Network spare renamed to lan\n",
			wantCalls: []string{"POST /1.0/networks/spare"},
			wantBody:  `{"name":"lan"}`,
		},
		{
			name: "info", args: []string{"network", "info", "hangarbr0"},
			wantOut: "Name: hangarbr0\nMAC address: 00:16:3e:00:00:01\nMTU: 1500\nState: up\nType: bridge\n" +
				"\nIP addresses:\n  inet\t10.0.3.1/24 (global)\n  inet6\tfd42::1/64 (global)\n" +
				"\nNetwork usage:\n  Bytes received: 2.00KiB\n  Bytes sent: 100B\n  Packets received: 3\n  Packets sent: 4\n" +
				"\nBridge:\n  ID: \n  STP: false\n  Forward delay: 0\n  Default VLAN ID: 0\n  VLAN filtering: false\n  Upper devices: hgr1, hgr2\n",
			wantCalls: []string{"GET /1.0/networks/hangarbr0/state"},
		},
		{
			name: "info of missing network", args: []string{"network", "info", "ghost"}, wantCode: 1,
			wantErr:   "Error: not found: GET /1.0/networks/ghost/state\n",
			wantCalls: []string{"GET /1.0/networks/ghost/state"},
		},
		{
			name: "list-leases", args: []string{"network", "list-leases", "hangarbr0", "--format", "csv"},
			wantOut:   "c1,00:16:3e:00:00:02,10.0.3.5,DYNAMIC\nweb,00:16:3e:00:00:03,10.0.3.7,STATIC\n",
			wantCalls: []string{"GET /1.0/networks/hangarbr0/leases"},
		},
		{
			name: "list-leases needs a network", args: []string{"network", "list-leases"}, wantCode: 1,
			wantErr: "Error: wrong number of arguments: expected 1, got 0\nUsage: hangar network list-leases NETWORK [flags]\n",
		},
		{
			name: "attach managed", args: []string{"network", "attach", "hangarbr0", "c1", "eth2", "eth2"},
			wantCalls:   []string{"GET /1.0/networks/hangarbr0", "GET /1.0/instances/c1", "PATCH /1.0/instances/c1"},
			wantBody:    `{"devices":{"eth2":{"name":"eth2","network":"hangarbr0","type":"nic"}}}`,
			wantIfMatch: `"etag-1"`,
		},
		{
			name: "attach names the device after the network", args: []string{"network", "attach", "hangarbr0", "c1"},
			wantCalls:   []string{"GET /1.0/networks/hangarbr0", "GET /1.0/instances/c1", "PATCH /1.0/instances/c1"},
			wantBody:    `{"devices":{"hangarbr0":{"network":"hangarbr0","type":"nic"}}}`,
			wantIfMatch: `"etag-1"`,
		},
		{
			name: "attach host bridge", args: []string{"network", "attach", "br9", "c1", "lan"},
			wantCalls:   []string{"GET /1.0/networks/br9", "GET /1.0/instances/c1", "PATCH /1.0/instances/c1"},
			wantBody:    `{"devices":{"lan":{"nictype":"bridged","parent":"br9","type":"nic"}}}`,
			wantIfMatch: `"etag-1"`,
		},
		{
			name: "attach host interface", args: []string{"network", "attach", "eth0", "c1", "mv"},
			wantCalls:   []string{"GET /1.0/networks/eth0", "GET /1.0/instances/c1", "PATCH /1.0/instances/c1"},
			wantBody:    `{"devices":{"mv":{"nictype":"macvlan","parent":"eth0","type":"nic"}}}`,
			wantIfMatch: `"etag-1"`,
		},
		{
			name: "attach over an existing device", args: []string{"network", "attach", "hangarbr0", "c1", "eth1"}, wantCode: 1,
			wantErr:   "Error: instance c1 already has a device named eth1\n",
			wantCalls: []string{"GET /1.0/networks/hangarbr0", "GET /1.0/instances/c1"},
		},
		{
			name: "attach missing network", args: []string{"network", "attach", "ghost", "c1"}, wantCode: 1,
			wantErr:   "Error: not found: GET /1.0/networks/ghost\n",
			wantCalls: []string{"GET /1.0/networks/ghost"},
		},
		{
			name: "detach", args: []string{"network", "detach", "hangarbr0", "c1"},
			wantCalls: []string{"GET /1.0/instances/c1", "PUT /1.0/instances/c1", "GET /1.0/operations/u/wait?timeout=-1"},
			wantBody: `{"architecture":"","config":null,"devices":{"data":{"path":"/data","source":"/srv","type":"disk"}},` +
				`"ephemeral":false,"profiles":["default"],"stateful":false,"description":""}`,
			wantIfMatch: `"etag-1"`,
		},
		{
			name: "detach a device not on the network", args: []string{"network", "detach", "hangarbr0", "c1", "data"}, wantCode: 1,
			wantErr:   "Error: device data is not a nic on network hangarbr0\n",
			wantCalls: []string{"GET /1.0/instances/c1"},
		},
		{
			name: "detach with no device on the network", args: []string{"network", "detach", "eth0", "c1"}, wantCode: 1,
			wantErr:   "Error: no device of the instance is on network eth0\n",
			wantCalls: []string{"GET /1.0/instances/c1"},
		},
		{
			name: "forward list", args: []string{"network", "forward", "list", "hangarbr0", "-f", "csv"},
			wantOut:   "192.0.2.1,web,10.0.3.5,2\n",
			wantCalls: []string{"GET /1.0/networks/hangarbr0/forwards?recursion=1"},
		},
		{
			name: "forward show", args: []string{"network", "forward", "show", "hangarbr0", "192.0.2.1"},
			wantOut: "description: web\nconfig:\n  target_address: 10.0.3.5\nports:\n" +
				"  - description: \"\"\n    protocol: tcp\n    listen_port: \"80\"\n    target_port: \"8080\"\n    target_address: 10.0.3.5\n" +
				"  - description: \"\"\n    protocol: tcp\n    listen_port: \"443\"\n    target_port: \"\"\n    target_address: 10.0.3.5\n" +
				"listen_address: 192.0.2.1\nlocation: none\n",
			wantCalls: []string{"GET /1.0/networks/hangarbr0/forwards/192.0.2.1"},
		},
		{
			name: "forward create", args: []string{"network", "forward", "create", "hangarbr0", "192.0.2.2", "target_address=10.0.3.9"},
			wantOut:   "Network forward 192.0.2.2 created\n",
			wantCalls: []string{"POST /1.0/networks/hangarbr0/forwards"},
			wantBody:  `{"description":"","config":{"target_address":"10.0.3.9"},"ports":null,"listen_address":"192.0.2.2"}`,
		},
		{
			name: "forward create needs a listen address", args: []string{"network", "forward", "create", "hangarbr0"}, wantCode: 1,
			wantErr: "Error: missing arguments: expected at least 2, got 1\nUsage: hangar network forward create NETWORK LISTEN_ADDRESS [KEY=VALUE...] [flags]\n",
		},
		{
			name: "forward delete", args: []string{"network", "forward", "delete", "hangarbr0", "192.0.2.1"},
			wantOut:   "Network forward 192.0.2.1 deleted\n",
			wantCalls: []string{"DELETE /1.0/networks/hangarbr0/forwards/192.0.2.1"},
		},
		{
			name: "forward port add", args: []string{"network", "forward", "port", "add", "hangarbr0", "192.0.2.1", "udp", "53", "10.0.3.6"},
			wantCalls: []string{"GET /1.0/networks/hangarbr0/forwards/192.0.2.1", "PUT /1.0/networks/hangarbr0/forwards/192.0.2.1"},
			wantBody: `{"description":"web","config":{"target_address":"10.0.3.5"},"ports":[` +
				`{"description":"","protocol":"tcp","listen_port":"80","target_port":"8080","target_address":"10.0.3.5"},` +
				`{"description":"","protocol":"tcp","listen_port":"443","target_port":"","target_address":"10.0.3.5"},` +
				`{"description":"","protocol":"udp","listen_port":"53","target_port":"","target_address":"10.0.3.6"}]}`,
			wantIfMatch: `"fwd-etag"`,
		},
		{
			name: "forward port add too few arguments", args: []string{"network", "forward", "port", "add", "hangarbr0", "192.0.2.1", "udp", "53"}, wantCode: 1,
			wantErr: "Error: missing arguments: expected at least 5, got 4\n" +
				"Usage: hangar network forward port add NETWORK LISTEN_ADDRESS PROTOCOL LISTEN_PORTS TARGET_ADDRESS [TARGET_PORTS] [flags]\n",
		},
		{
			name: "forward port remove one", args: []string{"network", "forward", "port", "remove", "hangarbr0", "192.0.2.1", "tcp", "443"},
			wantCalls: []string{"GET /1.0/networks/hangarbr0/forwards/192.0.2.1", "PUT /1.0/networks/hangarbr0/forwards/192.0.2.1"},
			wantBody: `{"description":"web","config":{"target_address":"10.0.3.5"},"ports":[` +
				`{"description":"","protocol":"tcp","listen_port":"80","target_port":"8080","target_address":"10.0.3.5"}]}`,
			wantIfMatch: `"fwd-etag"`,
		},
		{
			name: "forward port remove ambiguous", args: []string{"network", "forward", "port", "remove", "hangarbr0", "192.0.2.1", "tcp"}, wantCode: 1,
			wantErr:   "Error: 2 port rules match: use --force to remove them all\n",
			wantCalls: []string{"GET /1.0/networks/hangarbr0/forwards/192.0.2.1"},
		},
		{
			name: "forward port remove all", args: []string{"network", "forward", "port", "remove", "hangarbr0", "192.0.2.1", "--force"},
			wantCalls:   []string{"GET /1.0/networks/hangarbr0/forwards/192.0.2.1", "PUT /1.0/networks/hangarbr0/forwards/192.0.2.1"},
			wantBody:    `{"description":"web","config":{"target_address":"10.0.3.5"},"ports":[]}`,
			wantIfMatch: `"fwd-etag"`,
		},
		{
			name: "forward port remove no match", args: []string{"network", "forward", "port", "remove", "hangarbr0", "192.0.2.1", "udp"}, wantCode: 1,
			wantErr:   "Error: no matching port rule found\n",
			wantCalls: []string{"GET /1.0/networks/hangarbr0/forwards/192.0.2.1"},
		},
		{
			name: "unknown sub-command", args: []string{"network", "infoo"}, wantCode: 1,
			wantErr: "Error: unknown command \"infoo\" for \"hangar network\"; did you mean \"info\"?\nRun 'hangar network --help' for the list of commands.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHangard(t, map[string]http.HandlerFunc{
				"GET /1.0/networks":           fakeOK([]api.Network{netBridge, netHostNIC, netHostBridge, netLoopback}, ""),
				"POST /1.0/networks":          createNetworkHandler,
				"GET /1.0/networks/hangarbr0": fakeOK(netBridge, `"net-etag"`),
				"GET /1.0/networks/eth0":      fakeOK(netHostNIC, `"eth-etag"`),
				"GET /1.0/networks/br9":       fakeOK(netHostBridge, `"br-etag"`),
				"PUT /1.0/networks/hangarbr0": fakeOK(nil, ""),
				"DELETE /1.0/networks/spare":  fakeOK(nil, ""),
				"DELETE /1.0/networks/hangarbr0": fakeFail(http.StatusConflict,
					`network "hangarbr0" is in use by instances/c1, profiles/default and cannot be deleted`),
				"POST /1.0/networks/spare":                          fakeOK(nil, ""),
				"GET /1.0/networks/hangarbr0/state":                 fakeOK(netState, ""),
				"GET /1.0/networks/hangarbr0/leases":                fakeOK(netLeases, ""),
				"GET /1.0/networks/hangarbr0/forwards":              fakeOK([]api.NetworkForward{netForward}, ""),
				"POST /1.0/networks/hangarbr0/forwards":             fakeOK(nil, ""),
				"GET /1.0/networks/hangarbr0/forwards/192.0.2.1":    fakeOK(netForward, `"fwd-etag"`),
				"PUT /1.0/networks/hangarbr0/forwards/192.0.2.1":    fakeOK(nil, ""),
				"DELETE /1.0/networks/hangarbr0/forwards/192.0.2.1": fakeOK(nil, ""),
				"GET /1.0/instances/c1":                             fakeOK(instWithNIC, `"etag-1"`),
				"PATCH /1.0/instances/c1":                           fakeOK(nil, ""),
				"PUT /1.0/instances/c1":                             fakeOp("u", nil),
				"GET /1.0/operations/u/wait":                        fakeOpDone("u", api.Success, "", nil),
			})
			code, out, errOut := runCLI(t, f.socket, tt.stdin, tt.args...)
			if code != tt.wantCode || out != tt.wantOut || errOut != tt.wantErr {
				t.Errorf("got code %d\nout %q\nerr %q\nwant %d\nout %q\nerr %q", code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if d := cmp.Diff(tt.wantCalls, f.calls()); d != "" {
				t.Fatalf("calls (-want +got):\n%s", d)
			}
			var last fakeRequest
			for _, r := range f.reqs {
				if r.Method != http.MethodGet {
					last = r
				}
			}
			if last.Body != tt.wantBody {
				t.Errorf("body\n got %s\nwant %s", last.Body, tt.wantBody)
			}
			if last.IfMatch != tt.wantIfMatch {
				t.Errorf("If-Match %q, want %q", last.IfMatch, tt.wantIfMatch)
			}
		})
	}
}

// createNetworkHandler answers POST /1.0/networks as the daemon would a
// key it does not know.
func createNetworkHandler(w http.ResponseWriter, r *http.Request) {
	var req api.NetworksPost
	_ = json.NewDecoder(r.Body).Decode(&req)
	if _, ok := req.Config["bogus"]; ok {
		fakeErr(w, http.StatusBadRequest, `invalid network config key "bogus" for type bridge`)
		return
	}
	fakeOK(nil, "")(w, r)
}

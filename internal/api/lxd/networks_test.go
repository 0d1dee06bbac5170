package lxd

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/network"
)

// fakeNetworks is an in-memory network manager with the manager's kinds
// of errors: the edge's shapes, URLs, status codes and ETags are under
// test here; the manager's rules are in package network's tests.
type fakeNetworks struct {
	mu     sync.Mutex
	nets   map[string]network.Network
	state  map[string]network.Interface
	leases map[string][]network.Lease
	fwds   map[string][]network.Forward

	// What the last change was asked to do.
	created  network.CreateRequest
	updated  network.Put // by Update
	patched  network.Put // by Patch
	putFwd   network.Forward
	replaced bool
}

func newFakeNetworks() *fakeNetworks {
	return &fakeNetworks{
		nets: map[string]network.Network{
			"hangarbr0": {Name: "hangarbr0", Type: "bridge", Managed: true, Status: "Created", Description: "default",
				Config: map[string]string{"ipv4.address": "10.0.3.1/24", "ipv4.nat": "true"},
				UsedBy: []string{"instances/c1", "profiles/default"}},
			"spare": {Name: "spare", Type: "bridge", Managed: true, Status: "Created",
				Config: map[string]string{"ipv4.address": "10.0.4.1/24"}, UsedBy: []string{}},
			"eth0": {Name: "eth0", Type: "physical", Config: map[string]string{}, UsedBy: []string{}},
			"lo":   {Name: "lo", Type: "loopback", Config: map[string]string{}, UsedBy: []string{}},
		},
		state: map[string]network.Interface{
			"hangarbr0": {Name: "hangarbr0", Type: "bridge", Up: true, MTU: 1500, Hwaddr: "00:16:3e:00:00:01",
				Addresses: []network.Address{{Family: "inet", Address: "10.0.3.1", Netmask: "24", Scope: "global"}},
				Counters:  network.Counters{BytesReceived: 10, BytesSent: 20, PacketsReceived: 1, PacketsSent: 2},
				Members:   []string{"hgr1a2b3c"}},
			"eth0": {Name: "eth0", Type: "physical", MTU: 9000},
		},
		leases: map[string][]network.Lease{
			"hangarbr0": {{Hostname: "c1", Hwaddr: "00:16:3e:aa:bb:cc", Address: "10.0.3.5", Type: "static"}},
		},
		fwds: map[string][]network.Forward{
			"hangarbr0": {{Network: "hangarbr0", ListenAddress: "192.0.2.1", Description: "web",
				Config: map[string]string{"target_address": "10.0.3.5"},
				Ports:  []network.ForwardPort{{Protocol: "tcp", ListenPort: "80", TargetPort: "8080", TargetAddress: "10.0.3.5"}}}},
		},
	}
}

func (f *fakeNetworks) List(context.Context) ([]network.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Collect(maps.Values(f.nets))
	slices.SortFunc(out, func(a, b network.Network) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (f *fakeNetworks) Get(_ context.Context, name string) (network.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nets[name]
	if !ok {
		return network.Network{}, errdefs.NotFound("network %q not found", name)
	}
	return n, nil
}

// managed returns a managed network, with the manager's errors for a
// missing one or a host interface. Called with f.mu held.
func (f *fakeNetworks) managed(name string) (network.Network, error) {
	n, ok := f.nets[name]
	switch {
	case !ok:
		return n, errdefs.NotFound("network %q not found", name)
	case !n.Managed:
		return n, errdefs.Invalid("network %q is not managed by hangard", name)
	}
	return n, nil
}

func (f *fakeNetworks) Create(_ context.Context, req network.CreateRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = req
	if _, ok := f.nets[req.Name]; ok {
		return errdefs.Conflict("network %q already exists", req.Name)
	}
	if req.Type != "" && req.Type != "bridge" && req.Type != "macvlan" {
		return errdefs.Invalid("network type %q is not supported (bridge, macvlan)", req.Type)
	}
	for k := range req.Config {
		if k == "bogus.key" {
			return errdefs.Invalid("invalid network config key %q for type bridge", k)
		}
	}
	f.nets[req.Name] = network.Network{Name: req.Name, Type: req.Type, Managed: true, Status: "Created",
		Description: req.Description, Config: req.Config, UsedBy: []string{}}
	return nil
}

func (f *fakeNetworks) Update(_ context.Context, name string, put network.Put) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.managed(name)
	if err != nil {
		return err
	}
	f.updated = put
	n.Description, n.Config = put.Description, put.Config
	f.nets[name] = n
	return nil
}

func (f *fakeNetworks) Patch(_ context.Context, name string, put network.Put) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.managed(name)
	if err != nil {
		return err
	}
	f.patched = put
	n.Config = maps.Clone(n.Config)
	for k, v := range put.Config {
		if v == "" {
			delete(n.Config, k)
		} else {
			n.Config[k] = v
		}
	}
	if put.Description != "" {
		n.Description = put.Description
	}
	f.nets[name] = n
	return nil
}

func (f *fakeNetworks) Rename(_ context.Context, name, newName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.managed(name)
	if err != nil {
		return err
	}
	if len(n.UsedBy) > 0 {
		return errdefs.Conflict("network %q is in use by %s and cannot be renamed", name, strings.Join(n.UsedBy, ", "))
	}
	if _, ok := f.nets[newName]; ok {
		return errdefs.Conflict("network %q already exists", newName)
	}
	delete(f.nets, name)
	n.Name = newName
	f.nets[newName] = n
	return nil
}

func (f *fakeNetworks) Delete(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.managed(name)
	if err != nil {
		return err
	}
	if len(n.UsedBy) > 0 {
		return errdefs.Conflict("network %q is in use by %s and cannot be deleted", name, strings.Join(n.UsedBy, ", "))
	}
	delete(f.nets, name)
	return nil
}

func (f *fakeNetworks) State(_ context.Context, name string) (network.Interface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.state[name]
	if !ok {
		return network.Interface{}, errdefs.NotFound("network %q not found", name)
	}
	return i, nil
}

func (f *fakeNetworks) Leases(_ context.Context, name string) ([]network.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.managed(name); err != nil {
		return nil, err
	}
	return f.leases[name], nil
}

func (f *fakeNetworks) Forwards(_ context.Context, name string) ([]network.Forward, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.managed(name); err != nil {
		return nil, err
	}
	return slices.Clone(f.fwds[name]), nil
}

func (f *fakeNetworks) GetForward(ctx context.Context, name, listen string) (network.Forward, error) {
	fs, err := f.Forwards(ctx, name)
	if err != nil {
		return network.Forward{}, err
	}
	for _, fw := range fs {
		if fw.ListenAddress == listen {
			return fw, nil
		}
	}
	return network.Forward{}, errdefs.NotFound("network forward %q not found", listen)
}

func (f *fakeNetworks) PutForward(_ context.Context, fw network.Forward, replace bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.putFwd, f.replaced = fw, replace
	if _, err := f.managed(fw.Network); err != nil {
		return err
	}
	i := slices.IndexFunc(f.fwds[fw.Network], func(o network.Forward) bool { return o.ListenAddress == fw.ListenAddress })
	switch {
	case i >= 0 && !replace:
		return errdefs.Conflict("a forward for %s already exists on network %q", fw.ListenAddress, fw.Network)
	case i < 0 && replace:
		return errdefs.NotFound("network forward %q not found", fw.ListenAddress)
	case i >= 0:
		f.fwds[fw.Network][i] = fw
	default:
		f.fwds[fw.Network] = append(f.fwds[fw.Network], fw)
	}
	return nil
}

func (f *fakeNetworks) DeleteForward(_ context.Context, name, listen string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.managed(name); err != nil {
		return err
	}
	fs := f.fwds[name]
	i := slices.IndexFunc(fs, func(o network.Forward) bool { return o.ListenAddress == listen })
	if i < 0 {
		return errdefs.NotFound("network forward %q not found", listen)
	}
	f.fwds[name] = slices.Delete(fs, i, i+1)
	return nil
}

// fresh, as an If-Match value in the tables below, is replaced by the
// ETag a GET of the same path answers just before.
const fresh = "fresh"

// TestNetworkEndpoints drives every network endpoint against a fresh fake
// manager per row: status, error message, headers and what the manager
// was asked.
func TestNetworkEndpoints(t *testing.T) {
	ts, srv := newServer(t, &fakeDriver{running: map[string]int{}})
	type check func(t *testing.T, f *fakeNetworks, resp *http.Response, env api.Response)
	metadata := func(want string) check {
		return func(t *testing.T, _ *fakeNetworks, _ *http.Response, env api.Response) {
			t.Helper()
			var got, exp any
			if err := json.Unmarshal(env.Metadata, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(want), &exp); err != nil {
				t.Fatalf("bad want %s: %v", want, err)
			}
			if d := cmp.Diff(exp, got); d != "" {
				t.Errorf("metadata (-want +got):\n%s", d)
			}
		}
	}
	location := func(want string) check {
		return func(t *testing.T, _ *fakeNetworks, resp *http.Response, _ api.Response) {
			t.Helper()
			if got := resp.Header.Get("Location"); got != want {
				t.Errorf("Location %q, want %q", got, want)
			}
		}
	}
	hasETag := func(t *testing.T, _ *fakeNetworks, resp *http.Response, _ api.Response) {
		t.Helper()
		if e := resp.Header.Get("ETag"); len(e) != 66 { // quoted sha256
			t.Errorf("ETag %q", e)
		}
	}
	tests := []struct {
		name, method, path, body, ifMatch string
		status                            int
		errHas                            string
		checks                            []check
	}{
		// Collection.
		{name: "list urls", method: "GET", path: "/1.0/networks", status: 200, checks: []check{
			metadata(`["/1.0/networks/eth0","/1.0/networks/hangarbr0","/1.0/networks/lo","/1.0/networks/spare"]`)}},
		{name: "list objects", method: "GET", path: "/1.0/networks?recursion=1&filter=", status: 200, checks: []check{
			func(t *testing.T, _ *fakeNetworks, _ *http.Response, env api.Response) {
				var nets []api.Network
				_ = json.Unmarshal(env.Metadata, &nets)
				if len(nets) != 4 || nets[1].Name != "hangarbr0" || nets[0].Managed || nets[0].Locations != nil {
					t.Fatalf("networks %+v", nets)
				}
				if strings.Join(nets[1].UsedBy, ",") != "/1.0/instances/c1,/1.0/profiles/default" {
					t.Errorf("used_by %v", nets[1].UsedBy)
				}
			}}},
		{name: "create", method: "POST", path: "/1.0/networks", body: `{"name":"mv0","type":"macvlan","description":"d","config":{"parent":"eth0"},"unknown":1}`, status: 200, checks: []check{
			location("/1.0/networks/mv0"),
			func(t *testing.T, f *fakeNetworks, _ *http.Response, _ api.Response) {
				want := network.CreateRequest{Name: "mv0", Type: "macvlan", Description: "d", Config: map[string]string{"parent": "eth0"}}
				if d := cmp.Diff(want, f.created); d != "" {
					t.Errorf("create request (-want +got):\n%s", d)
				}
			}}},
		{name: "create without name", method: "POST", path: "/1.0/networks", body: `{"type":"bridge"}`, status: 400, errHas: `"name"`},
		{name: "create config not strings", method: "POST", path: "/1.0/networks", body: `{"name":"n1","config":{"ipv4.nat":true}}`, status: 400, errHas: `"config`},
		{name: "create not JSON", method: "POST", path: "/1.0/networks", body: `{"name":`, status: 400, errHas: "JSON"},
		{name: "create empty body", method: "POST", path: "/1.0/networks", status: 400, errHas: "empty"},
		{name: "create unknown key", method: "POST", path: "/1.0/networks", body: `{"name":"n1","config":{"bogus.key":"1"}}`, status: 400, errHas: `"bogus.key"`},
		{name: "create bad type", method: "POST", path: "/1.0/networks", body: `{"name":"n1","type":"ovn"}`, status: 400, errHas: `"ovn"`},
		{name: "create existing", method: "POST", path: "/1.0/networks", body: `{"name":"spare"}`, status: 409, errHas: "already exists"},
		{name: "collection PUT", method: "PUT", path: "/1.0/networks", body: `{}`, status: 501, errHas: "not implemented"},

		// One network.
		{name: "get managed", method: "GET", path: "/1.0/networks/hangarbr0", status: 200, checks: []check{hasETag, metadata(`{
			"name":"hangarbr0","description":"default","type":"bridge","managed":true,"status":"Created",
			"config":{"ipv4.address":"10.0.3.1/24","ipv4.nat":"true"},
			"used_by":["/1.0/instances/c1","/1.0/profiles/default"],"locations":["none"]}`)}},
		{name: "get host interface", method: "GET", path: "/1.0/networks/eth0", status: 200, checks: []check{metadata(`{
			"name":"eth0","description":"","type":"physical","managed":false,"status":"",
			"config":{},"used_by":[],"locations":null}`)}},
		{name: "get missing", method: "GET", path: "/1.0/networks/ghost", status: 404, errHas: `"ghost"`},
		{name: "put", method: "PUT", path: "/1.0/networks/spare", body: `{"description":"x","config":{"ipv4.address":"10.0.9.1/24"}}`, status: 200, checks: []check{
			func(t *testing.T, f *fakeNetworks, _ *http.Response, _ api.Response) {
				want := network.Put{Description: "x", Config: map[string]string{"ipv4.address": "10.0.9.1/24"}}
				if d := cmp.Diff(want, f.updated); d != "" {
					t.Errorf("put (-want +got):\n%s", d)
				}
			}}},
		{name: "put fresh ETag", method: "PUT", path: "/1.0/networks/spare", ifMatch: fresh, body: `{"config":{}}`, status: 200},
		{name: "put stale ETag", method: "PUT", path: "/1.0/networks/spare", ifMatch: `"0123"`, body: `{"config":{}}`, status: 412, errHas: "ETag"},
		{name: "put host interface", method: "PUT", path: "/1.0/networks/eth0", body: `{"config":{}}`, status: 400, errHas: "not managed"},
		{name: "put missing", method: "PUT", path: "/1.0/networks/ghost", body: `{"config":{}}`, status: 404, errHas: `"ghost"`},
		{name: "put description not string", method: "PUT", path: "/1.0/networks/spare", body: `{"description":5}`, status: 400, errHas: `"description"`},
		{name: "patch merges", method: "PATCH", path: "/1.0/networks/hangarbr0", body: `{"config":{"ipv4.nat":"","dns.domain":"lan"}}`, status: 200, checks: []check{
			func(t *testing.T, f *fakeNetworks, _ *http.Response, _ api.Response) {
				want := network.Put{Config: map[string]string{"ipv4.nat": "", "dns.domain": "lan"}}
				if d := cmp.Diff(want, f.patched); d != "" {
					t.Errorf("patch (-want +got):\n%s", d)
				}
				got := f.nets["hangarbr0"]
				if got.Description != "default" || got.Config["dns.domain"] != "lan" || got.Config["ipv4.nat"] != "" {
					t.Errorf("network after patch %+v", got)
				}
			}}},
		{name: "patch clears description", method: "PATCH", path: "/1.0/networks/hangarbr0", ifMatch: fresh, body: `{"description":"","config":{"ipv4.nat":"false"}}`, status: 200, checks: []check{
			func(t *testing.T, f *fakeNetworks, _ *http.Response, _ api.Response) {
				want := network.Put{Config: map[string]string{"ipv4.address": "10.0.3.1/24", "ipv4.nat": "false"}}
				if d := cmp.Diff(want, f.updated); d != "" {
					t.Errorf("update (-want +got):\n%s", d)
				}
			}}},
		{name: "patch stale ETag", method: "PATCH", path: "/1.0/networks/hangarbr0", ifMatch: `"0123"`, body: `{"config":{}}`, status: 412, errHas: "ETag"},
		{name: "patch config not object", method: "PATCH", path: "/1.0/networks/hangarbr0", body: `{"config":["a"]}`, status: 400, errHas: `"config"`},
		{name: "patch missing", method: "PATCH", path: "/1.0/networks/ghost", body: `{}`, status: 404},
		{name: "rename", method: "POST", path: "/1.0/networks/spare", body: `{"name":"spare2"}`, status: 200, checks: []check{
			location("/1.0/networks/spare2"),
			func(t *testing.T, f *fakeNetworks, _ *http.Response, _ api.Response) {
				if _, ok := f.nets["spare2"]; !ok {
					t.Error("not renamed")
				}
			}}},
		{name: "rename without name", method: "POST", path: "/1.0/networks/spare", body: `{}`, status: 400, errHas: `"name"`},
		{name: "rename in use", method: "POST", path: "/1.0/networks/hangarbr0", body: `{"name":"x"}`, status: 409, errHas: "instances/c1"},
		{name: "rename onto existing", method: "POST", path: "/1.0/networks/spare", body: `{"name":"hangarbr0"}`, status: 409, errHas: "already exists"},
		{name: "rename name not string", method: "POST", path: "/1.0/networks/spare", body: `{"name":1}`, status: 400, errHas: `"name"`},
		{name: "delete", method: "DELETE", path: "/1.0/networks/spare", status: 200, checks: []check{
			func(t *testing.T, f *fakeNetworks, _ *http.Response, _ api.Response) {
				if _, ok := f.nets["spare"]; ok {
					t.Error("not deleted")
				}
			}}},
		{name: "delete in use names users", method: "DELETE", path: "/1.0/networks/hangarbr0", status: 409, errHas: "instances/c1, profiles/default"},
		{name: "delete missing", method: "DELETE", path: "/1.0/networks/ghost", status: 404},
		{name: "delete host interface", method: "DELETE", path: "/1.0/networks/eth0", status: 400, errHas: "not managed"},

		// State and leases.
		{name: "state", method: "GET", path: "/1.0/networks/hangarbr0/state", status: 200, checks: []check{metadata(`{
			"addresses":[{"family":"inet","address":"10.0.3.1","netmask":"24","scope":"global"}],
			"counters":{"bytes_received":10,"bytes_sent":20,"packets_received":1,"packets_sent":2},
			"hwaddr":"00:16:3e:00:00:01","mtu":1500,"state":"up","type":"bridge",
			"bond":null,"vlan":null,
			"bridge":{"id":"","stp":false,"forward_delay":0,"vlan_default":0,"vlan_filtering":false,"upper_devices":["hgr1a2b3c"]}}`)}},
		{name: "state of a down host interface", method: "GET", path: "/1.0/networks/eth0/state", status: 200, checks: []check{metadata(`{
			"addresses":[],"counters":{"bytes_received":0,"bytes_sent":0,"packets_received":0,"packets_sent":0},
			"hwaddr":"","mtu":9000,"state":"down","type":"physical","bond":null,"bridge":null,"vlan":null}`)}},
		{name: "state missing", method: "GET", path: "/1.0/networks/ghost/state", status: 404},
		{name: "leases", method: "GET", path: "/1.0/networks/hangarbr0/leases", status: 200, checks: []check{metadata(`[
			{"hostname":"c1","hwaddr":"00:16:3e:aa:bb:cc","address":"10.0.3.5","type":"static","location":"none"}]`)}},
		{name: "no leases is []", method: "GET", path: "/1.0/networks/spare/leases", status: 200, checks: []check{metadata(`[]`)}},
		{name: "leases of host interface", method: "GET", path: "/1.0/networks/eth0/leases", status: 400, errHas: "not managed"},
		{name: "leases missing", method: "GET", path: "/1.0/networks/ghost/leases", status: 404},
		{name: "unknown sub-resource", method: "GET", path: "/1.0/networks/hangarbr0/peers", status: 404, errHas: "not found"},
		{name: "state is read-only", method: "PUT", path: "/1.0/networks/hangarbr0/state", body: `{}`, status: 501},

		// Forwards.
		{name: "forward urls", method: "GET", path: "/1.0/networks/hangarbr0/forwards", status: 200, checks: []check{
			metadata(`["/1.0/networks/hangarbr0/forwards/192.0.2.1"]`)}},
		{name: "forward objects", method: "GET", path: "/1.0/networks/hangarbr0/forwards?recursion=1", status: 200, checks: []check{metadata(`[{
			"listen_address":"192.0.2.1","description":"web","config":{"target_address":"10.0.3.5"},"location":"none",
			"ports":[{"description":"","protocol":"tcp","listen_port":"80","target_port":"8080","target_address":"10.0.3.5"}]}]`)}},
		{name: "no forwards is []", method: "GET", path: "/1.0/networks/spare/forwards?recursion=1", status: 200, checks: []check{metadata(`[]`)}},
		{name: "forwards of missing network", method: "GET", path: "/1.0/networks/ghost/forwards", status: 404},
		{name: "forward create normalises", method: "POST", path: "/1.0/networks/hangarbr0/forwards",
			body:   `{"listen_address":" FD00:0::0001 ","description":" d ","ports":[{"protocol":" tcp","listen_port":"80, 443","target_address":"FD42::0005"}],"extra":true}`,
			status: 200, checks: []check{
				location("/1.0/networks/hangarbr0/forwards/fd00::1"),
				func(t *testing.T, f *fakeNetworks, _ *http.Response, _ api.Response) {
					want := network.Forward{Network: "hangarbr0", ListenAddress: "fd00::1", Description: "d", Config: map[string]string{},
						Ports: []network.ForwardPort{{Protocol: "tcp", ListenPort: "80,443", TargetAddress: "fd42::5"}}}
					if d := cmp.Diff(want, f.putFwd); d != "" || f.replaced {
						t.Errorf("forward (-want +got):\n%s replace %v", d, f.replaced)
					}
				}}},
		{name: "forward create without listen address", method: "POST", path: "/1.0/networks/hangarbr0/forwards", body: `{"ports":[]}`, status: 400, errHas: `"listen_address"`},
		{name: "forward create ports not a list", method: "POST", path: "/1.0/networks/hangarbr0/forwards", body: `{"listen_address":"192.0.2.2","ports":{"a":1}}`, status: 400, errHas: `"ports"`},
		{name: "forward create port field type", method: "POST", path: "/1.0/networks/hangarbr0/forwards", body: `{"listen_address":"192.0.2.2","ports":[{"listen_port":80}]}`, status: 400, errHas: `"ports.listen_port"`},
		{name: "forward create existing", method: "POST", path: "/1.0/networks/hangarbr0/forwards", body: `{"listen_address":"192.0.2.1"}`, status: 409, errHas: "already exists"},
		{name: "forward create on host interface", method: "POST", path: "/1.0/networks/eth0/forwards", body: `{"listen_address":"192.0.2.2"}`, status: 400, errHas: "not managed"},
		{name: "forward get", method: "GET", path: "/1.0/networks/hangarbr0/forwards/192.0.2.1", status: 200, checks: []check{hasETag}},
		{name: "forward get missing", method: "GET", path: "/1.0/networks/hangarbr0/forwards/192.0.2.9", status: 404, errHas: "192.0.2.9"},
		{name: "forward put", method: "PUT", path: "/1.0/networks/hangarbr0/forwards/192.0.2.1", ifMatch: fresh,
			body: `{"description":"new","ports":[{"protocol":"udp","listen_port":"53","target_address":"10.0.3.6"}]}`, status: 200, checks: []check{
				func(t *testing.T, f *fakeNetworks, _ *http.Response, _ api.Response) {
					want := network.Forward{Network: "hangarbr0", ListenAddress: "192.0.2.1", Description: "new", Config: map[string]string{},
						Ports: []network.ForwardPort{{Protocol: "udp", ListenPort: "53", TargetAddress: "10.0.3.6"}}}
					if d := cmp.Diff(want, f.putFwd); d != "" || !f.replaced {
						t.Errorf("forward (-want +got):\n%s replace %v", d, f.replaced)
					}
				}}},
		{name: "forward put stale ETag", method: "PUT", path: "/1.0/networks/hangarbr0/forwards/192.0.2.1", ifMatch: `"0123"`, body: `{}`, status: 412, errHas: "ETag"},
		{name: "forward put missing", method: "PUT", path: "/1.0/networks/hangarbr0/forwards/192.0.2.9", body: `{}`, status: 404},
		{name: "forward put bad config", method: "PUT", path: "/1.0/networks/hangarbr0/forwards/192.0.2.1", body: `{"config":"x"}`, status: 400, errHas: `"config"`},
		{name: "forward patch keeps ports", method: "PATCH", path: "/1.0/networks/hangarbr0/forwards/192.0.2.1", ifMatch: fresh,
			body: `{"config":{"target_address":"","user.x":"1"}}`, status: 200, checks: []check{
				func(t *testing.T, f *fakeNetworks, _ *http.Response, _ api.Response) {
					want := network.Forward{Network: "hangarbr0", ListenAddress: "192.0.2.1", Description: "web", Config: map[string]string{"user.x": "1"},
						Ports: []network.ForwardPort{{Protocol: "tcp", ListenPort: "80", TargetPort: "8080", TargetAddress: "10.0.3.5"}}}
					if d := cmp.Diff(want, f.putFwd); d != "" || !f.replaced {
						t.Errorf("forward (-want +got):\n%s replace %v", d, f.replaced)
					}
				}}},
		{name: "forward patch replaces ports", method: "PATCH", path: "/1.0/networks/hangarbr0/forwards/192.0.2.1",
			body: `{"ports":[],"description":""}`, status: 200, checks: []check{
				func(t *testing.T, f *fakeNetworks, _ *http.Response, _ api.Response) {
					if len(f.putFwd.Ports) != 0 || f.putFwd.Description != "" || f.putFwd.Config["target_address"] != "10.0.3.5" {
						t.Errorf("forward %+v", f.putFwd)
					}
				}}},
		{name: "forward patch stale ETag", method: "PATCH", path: "/1.0/networks/hangarbr0/forwards/192.0.2.1", ifMatch: `"0123"`, body: `{}`, status: 412},
		{name: "forward delete", method: "DELETE", path: "/1.0/networks/hangarbr0/forwards/192.0.2.1", status: 200, checks: []check{
			func(t *testing.T, f *fakeNetworks, _ *http.Response, _ api.Response) {
				if len(f.fwds["hangarbr0"]) != 0 {
					t.Errorf("forwards left %+v", f.fwds["hangarbr0"])
				}
			}}},
		{name: "forward delete missing", method: "DELETE", path: "/1.0/networks/hangarbr0/forwards/192.0.2.9", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeNetworks()
			srv.Networks = f
			header := map[string]string{}
			switch tt.ifMatch {
			case "":
			case fresh:
				resp, _ := call(t, ts, "GET", tt.path, "", nil)
				if header["If-Match"] = resp.Header.Get("ETag"); header["If-Match"] == "" {
					t.Fatalf("no ETag on GET %s", tt.path)
				}
			default:
				header["If-Match"] = tt.ifMatch
			}
			resp, env := call(t, ts, tt.method, tt.path, tt.body, header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tt.status, env)
			}
			if tt.status >= 400 {
				if env.Type != api.ErrorResponse || env.ErrorCode != tt.status || !strings.Contains(env.Error, tt.errHas) {
					t.Fatalf("error envelope %+v, want code %d containing %q", env, tt.status, tt.errHas)
				}
			} else if env.Type != api.SyncResponse {
				t.Fatalf("envelope %+v", env)
			}
			for _, c := range tt.checks {
				c(t, f, resp, env)
			}
		})
	}
}

// TestNetworkETags follows ETags through changes: a change makes the
// ETag read before it stale, for networks and forwards alike.
func TestNetworkETags(t *testing.T) {
	ts, srv := newServer(t, &fakeDriver{running: map[string]int{}})
	srv.Networks = newFakeNetworks()
	tests := []struct {
		path, method, body string
	}{
		{"/1.0/networks/spare", "PUT", `{"config":{"ipv4.address":"10.0.8.1/24"}}`},
		{"/1.0/networks/spare", "PATCH", `{"description":"changed"}`},
		{"/1.0/networks/hangarbr0/forwards/192.0.2.1", "PUT", `{"description":"changed"}`},
		{"/1.0/networks/hangarbr0/forwards/192.0.2.1", "PATCH", `{"config":{"user.a":"b"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			before, _ := call(t, ts, "GET", tt.path, "", nil)
			old := before.Header.Get("ETag")
			if resp, env := call(t, ts, tt.method, tt.path, tt.body, map[string]string{"If-Match": old}); resp.StatusCode != 200 {
				t.Fatalf("with the current ETag: %d %+v", resp.StatusCode, env)
			}
			after, _ := call(t, ts, "GET", tt.path, "", nil)
			if after.Header.Get("ETag") == old {
				t.Fatalf("ETag %s unchanged by the change", old)
			}
			if resp, _ := call(t, ts, tt.method, tt.path, tt.body, map[string]string{"If-Match": old}); resp.StatusCode != 412 {
				t.Fatalf("with the old ETag: %d, want 412", resp.StatusCode)
			}
			// Without If-Match nothing is checked.
			if resp, _ := call(t, ts, tt.method, tt.path, tt.body, nil); resp.StatusCode != 200 {
				t.Fatalf("without If-Match: %d", resp.StatusCode)
			}
		})
	}
}

// TestNoNetworkManager checks the answers of a daemon without a network
// manager: no networks, and no network extensions for lxc to rely on.
func TestNoNetworkManager(t *testing.T) {
	ts, srv := newServer(t, &fakeDriver{running: map[string]int{}})
	srv.Info = func() api.Server {
		return api.Server{ServerUntrusted: api.ServerUntrusted{APIExtensions: api.Extensions}}
	}
	tests := []struct {
		name, method, path string
		status             int
		errHas             string
	}{
		{"list", "GET", "/1.0/networks?recursion=1", 200, ""},
		{"get", "GET", "/1.0/networks/hangarbr0", 404, `"hangarbr0"`},
		{"state", "GET", "/1.0/networks/hangarbr0/state", 404, `"hangarbr0"`},
		{"create", "POST", "/1.0/networks", 501, "networks"},
		{"delete", "DELETE", "/1.0/networks/x", 501, "networks"},
		{"forward create", "POST", "/1.0/networks/x/forwards", 501, "networks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, env := call(t, ts, tt.method, tt.path, `{}`, nil)
			if resp.StatusCode != tt.status || !strings.Contains(env.Error, tt.errHas) {
				t.Fatalf("%d %+v, want %d containing %q", resp.StatusCode, env, tt.status, tt.errHas)
			}
			if tt.status == 200 && string(env.Metadata) != "[]" {
				t.Errorf("metadata %s", env.Metadata)
			}
		})
	}
	for _, withManager := range []bool{false, true} {
		srv.Networks = nil
		if withManager {
			srv.Networks = newFakeNetworks()
		}
		_, env := call(t, ts, "GET", "/1.0", "", nil)
		var info api.Server
		_ = json.Unmarshal(env.Metadata, &info)
		for _, ext := range api.NetworkExtensions {
			if got := slices.Contains(info.APIExtensions, ext); got != withManager {
				t.Errorf("manager %v: extension %s listed %v", withManager, ext, got)
			}
		}
		if !slices.Contains(info.APIExtensions, "instances") {
			t.Errorf("manager %v: other extensions lost: %v", withManager, info.APIExtensions)
		}
	}
}

// TestNetworkSDK drives the Go SDK's network calls through the edge over
// a unix socket.
func TestNetworkSDK(t *testing.T) {
	_, srv := newServer(t, &fakeDriver{running: map[string]int{}})
	f := newFakeNetworks()
	srv.Networks = f
	dir, err := os.MkdirTemp("", "hnet") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	c, err := client.Connect(filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := context.Background()

	steps := []struct {
		name string
		do   func() error
		want func(error) bool // nil: success
	}{
		{"names", func() error {
			names, err := c.GetNetworkNames(ctx)
			if err == nil && strings.Join(names, ",") != "eth0,hangarbr0,lo,spare" {
				t.Errorf("names %v", names)
			}
			return err
		}, nil},
		{"list", func() error {
			nets, err := c.GetNetworks(ctx)
			if err == nil && (len(nets) != 4 || !nets[1].Managed) {
				t.Errorf("networks %+v", nets)
			}
			return err
		}, nil},
		{"create", func() error {
			return c.CreateNetwork(ctx, api.NetworksPost{Name: "n1", Type: "bridge", NetworkPut: api.NetworkPut{Config: map[string]string{"ipv4.address": "auto"}}})
		}, nil},
		{"create again", func() error { return c.CreateNetwork(ctx, api.NetworksPost{Name: "n1"}) }, client.IsConflict},
		{"update with ETag", func() error {
			n, etag, err := c.GetNetwork(ctx, "n1")
			if err != nil {
				return err
			}
			n.Config["ipv4.nat"] = "true"
			return c.UpdateNetwork(ctx, "n1", n.NetworkPut, etag)
		}, nil},
		{"update with stale ETag", func() error { return c.UpdateNetwork(ctx, "n1", api.NetworkPut{}, "stale") }, client.IsPreconditionFailed},
		{"patch", func() error {
			return c.PatchNetwork(ctx, "n1", map[string]any{"config": map[string]string{"dns.domain": "lan"}}, "")
		}, nil},
		{"rename", func() error { return c.RenameNetwork(ctx, "n1", "n2") }, nil},
		{"get renamed", func() error {
			n, _, err := c.GetNetwork(ctx, "n2")
			if err == nil && (n.Config["ipv4.nat"] != "true" || n.Config["dns.domain"] != "lan") {
				t.Errorf("n2 %+v", n)
			}
			return err
		}, nil},
		{"state", func() error {
			st, err := c.GetNetworkState(ctx, "hangarbr0")
			if err == nil && (st.State != "up" || st.Addresses[0].Address != "10.0.3.1") {
				t.Errorf("state %+v", st)
			}
			return err
		}, nil},
		{"leases", func() error {
			ls, err := c.GetNetworkLeases(ctx, "hangarbr0")
			if err == nil && (len(ls) != 1 || ls[0].Hostname != "c1") {
				t.Errorf("leases %+v", ls)
			}
			return err
		}, nil},
		{"forward create", func() error {
			return c.CreateNetworkForward(ctx, "hangarbr0", api.NetworkForwardsPost{ListenAddress: "fd00::1",
				NetworkForwardPut: api.NetworkForwardPut{Ports: []api.NetworkForwardPort{{Protocol: "tcp", ListenPort: "80", TargetAddress: "fd42::5"}}}})
		}, nil},
		{"forward addresses", func() error {
			as, err := c.GetNetworkForwardAddresses(ctx, "hangarbr0")
			if err == nil && strings.Join(as, ",") != "192.0.2.1,fd00::1" {
				t.Errorf("addresses %v", as)
			}
			return err
		}, nil},
		{"forward update", func() error {
			fw, etag, err := c.GetNetworkForward(ctx, "hangarbr0", "fd00::1")
			if err != nil {
				return err
			}
			fw.Description = "v6"
			return c.UpdateNetworkForward(ctx, "hangarbr0", "fd00::1", fw.NetworkForwardPut, etag)
		}, nil},
		{"forward patch", func() error {
			return c.PatchNetworkForward(ctx, "hangarbr0", "fd00::1", map[string]any{"config": map[string]string{"user.a": "b"}}, "")
		}, nil},
		{"forwards", func() error {
			fs, err := c.GetNetworkForwards(ctx, "hangarbr0")
			if err == nil && (len(fs) != 2 || fs[1].Description != "v6" || fs[1].Config["user.a"] != "b") {
				t.Errorf("forwards %+v", fs)
			}
			return err
		}, nil},
		{"forward delete", func() error { return c.DeleteNetworkForward(ctx, "hangarbr0", "fd00::1") }, nil},
		{"forward delete again", func() error { return c.DeleteNetworkForward(ctx, "hangarbr0", "fd00::1") }, client.IsNotFound},
		{"delete in use", func() error { return c.DeleteNetwork(ctx, "hangarbr0") }, client.IsConflict},
		{"delete", func() error { return c.DeleteNetwork(ctx, "n2") }, nil},
		{"get deleted", func() error { _, _, err := c.GetNetwork(ctx, "n2"); return err }, client.IsNotFound},
	}
	for _, s := range steps {
		err := s.do()
		switch {
		case s.want == nil && err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case s.want != nil && !s.want(err):
			t.Fatalf("%s: error %v, not the one expected", s.name, err)
		}
	}
}

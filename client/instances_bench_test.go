package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/hangar-dev/hangar/api"
)

// BenchmarkGetInstancesFull is the client's half of `hangar list` at 1000
// instances with their state (recursion=2): the request and the decode,
// against a fake daemon serving a prepared answer.
func BenchmarkGetInstancesFull(b *testing.B) {
	c, size := fakeListDaemon(b)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		got, err := c.GetInstancesFull(context.Background(), "")
		if err != nil || len(got) != 1000 {
			b.Fatalf("%d instances, %v", len(got), err)
		}
	}
}

// fakeListDaemon serves the answer of a daemon with 1000 instances and
// their state, with its Content-Length, and returns its size.
func fakeListDaemon(b *testing.B) (*Client, int) {
	insts := make([]api.InstanceFull, 1000)
	for i := range insts {
		insts[i] = api.InstanceFull{
			Instance: api.Instance{
				InstancePut: api.InstancePut{Architecture: "x86_64", Profiles: []string{"default"},
					Config:  map[string]string{"image.os": "busybox", "volatile.uuid": "5b3c1b6e-8a4e-4f4e-9a57-0d2a0e1f2c3d"},
					Devices: map[string]map[string]string{}},
				ExpandedConfig: map[string]string{"image.os": "busybox", "limits.memory": "512MiB"},
				Name:           fmt.Sprintf("c%04d", i), Status: "Running", StatusCode: api.Running, Type: "container",
			},
			State: &api.InstanceState{Status: "Running", Pid: 4242, Network: map[string]api.InstanceStateNetwork{
				"lo": {Type: "loopback", Addresses: []api.InstanceStateNetworkAddress{{Family: "inet", Address: "127.0.0.1", Netmask: "8", Scope: "local"}}},
			}},
			Snapshots: []api.InstanceSnapshot{},
		}
	}
	rec := httptest.NewRecorder()
	fakeSync(rec, insts, "")
	body := rec.Body.Bytes()
	c := fakeDaemon(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	return c, len(body)
}

// BenchmarkGetInstancesFullJSON is BenchmarkGetInstancesFull without the
// decode, as `hangar list --format yaml` fetches the list.
func BenchmarkGetInstancesFullJSON(b *testing.B) {
	c, size := fakeListDaemon(b)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		raw, err := c.GetInstancesFullJSON(context.Background(), "")
		if err != nil || len(raw) == 0 {
			b.Fatalf("%d bytes, %v", len(raw), err)
		}
	}
}

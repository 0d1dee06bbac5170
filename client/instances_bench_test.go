package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hangar-dev/hangar/api"
)

// BenchmarkGetInstancesFull is the client's half of `hangar list` at 1000
// instances with their state (recursion=2): the request and the decode,
// against a fake daemon serving a prepared answer.
func BenchmarkGetInstancesFull(b *testing.B) {
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
			Snapshots: []any{},
		}
	}
	rec := httptest.NewRecorder()
	fakeSync(rec, insts, "")
	body := rec.Body.Bytes()
	c := fakeDaemon(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		got, err := c.GetInstancesFull(context.Background(), "")
		if err != nil || len(got) != len(insts) {
			b.Fatalf("%d instances, %v", len(got), err)
		}
	}
}

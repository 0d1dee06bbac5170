package virt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	virtclient "github.com/hangar-dev/hangar/client/virt"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
)

// BenchmarkQuery1000 is virt.instance.query with a filter and select
// over 1000 instances through the edge's handler path (entries from the
// core, the query engine), without the socket. The target is
// 20 ms.
func BenchmarkQuery1000(b *testing.B) {
	_, core, _ := newTestServer(&testing.T{})
	for i := range 1000 {
		core.put(instance.Full{Instance: instance.Instance{
			Name: fmt.Sprintf("c%04d", i), Project: "default", Type: instance.TypeContainer, Status: instance.StatusRunning,
			Config:  map[string]string{"limits.cpu": "1", "limits.memory": "256MiB", "environment.N": fmt.Sprint(i), "image.os": "busybox"},
			Devices: instance.Devices{"root": {"type": "disk", "path": "/", "pool": "default"}},
		}})
	}
	s := &Server{Core: core}
	a := &args{method: "virt.instance.query", params: []json.RawMessage{
		json.RawMessage(`[["status","=","RUNNING"],["name","^","c0"]]`),
		json.RawMessage(`{"select":["name","status","memory","image.os"],"order_by":["-name"]}`),
	}}
	if _, err := instanceQuery(context.Background(), &session{s: s}, a); errors.Is(err, errdefs.ErrNotImplemented) {
		b.Skip("query engine not merged yet:", err)
	} else if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := instanceQuery(context.Background(), &session{s: s}, a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvents10 sends change events to 10 subscribed sessions over
// real websockets on loopback and waits until each client received every
// one: events/s (each delivered to all 10) and that none is lost.
func BenchmarkEvents10(b *testing.B) {
	t := &testing.T{}
	s, core, url := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	core.put(instance.Full{Instance: instance.Instance{Name: "c", Project: "default", Type: instance.TypeContainer,
		Config: map[string]string{}, Devices: instance.Devices{}, Status: instance.StatusStopped}})
	var clients []*virtclient.Client
	for range 10 {
		c, err := virtclient.Dial(ctx, url, virtclient.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		var ok bool
		if err := c.Call(ctx, &ok, "auth.login_with_api_key", "hgr_2_view"); err != nil || !ok {
			b.Fatal(err)
		}
		if _, err := c.Subscribe(ctx, "virt.instance.query"); err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
	}
	w := s.watcher()
	w.refresh(entryKey{"default", "c"}) // the cache holds c
	done := make(chan error, len(clients))
	b.ResetTimer()
	start := time.Now()
	for _, c := range clients {
		go func(c *virtclient.Client) {
			for n := 0; n < b.N; {
				select {
				case u, ok := <-c.Updates():
					if !ok {
						done <- fmt.Errorf("connection closed after %d events", n)
						return
					}
					if u.Msg == "changed" && u.ID == "c" {
						n++
					}
				case <-ctx.Done():
					done <- fmt.Errorf("got %d of %d events", n, b.N)
					return
				}
			}
			done <- nil
		}(c)
	}
	for i := range b.N {
		// What the watcher does on each lifecycle event of c.
		e := map[string]any{"id": "c", "name": "c", "cpu": json.Number(fmt.Sprint(i))}
		w.set(entryKey{"default", "c"}, e)
	}
	for range clients {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

package event

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// benchMetadata is a typical lifecycle event: marshalling it is most of
// Publish's cost, so benchmarks include it rather than a pre-encoded blob.
var benchMetadata = api.EventLifecycle{
	Action:  "instance-started",
	Source:  "/1.0/instances/c1",
	Context: map[string]any{"project": "default"},
}

func reportRate(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkPublish is one publisher, no subscriber.
func BenchmarkPublish(b *testing.B) {
	h := New(DefaultRingSize, "")
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		h.Publish(api.EventTypeLifecycle, benchMetadata)
	}
	reportRate(b, start)
}

// BenchmarkPublishParallel is GOMAXPROCS publishers, no subscriber:
// marshalling happens outside the lock and so runs in parallel.
func BenchmarkPublishParallel(b *testing.B) {
	h := New(DefaultRingSize, "")
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Publish(api.EventTypeLifecycle, benchMetadata)
		}
	})
	reportRate(b, start)
}

// BenchmarkFanout10 publishes b.N events to 10 subscribers and stops the
// clock only when every subscriber has received all of them, so events/s is
// the delivered rate (each event reaching all 10).
//
// The publisher keeps within half a buffer of the slowest subscriber: a
// publisher in a tight loop outruns any consumer that has to be woken up
// (on a 2-vCPU VM a bare `for range C()` falls 1024 behind within a few
// milliseconds), and would measure the overflow path, which
// TestSlowSubscriberDropped covers. This measures sustained throughput.
func BenchmarkFanout10(b *testing.B) {
	const n = 10
	h := New(DefaultRingSize, "")
	c := newConsumers(b, h, n, nil, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		c.pace(i)
		h.Publish(api.EventTypeLifecycle, benchMetadata)
	}
	c.wait()
	b.StopTimer()
	reportRate(b, start)
}

// consumers drains subscriptions, counting what each received.
type consumers struct {
	b      *testing.B
	subs   []*Subscription
	counts []atomic.Int64
	wg     sync.WaitGroup
}

// newConsumers subscribes n consumers that each read want events.
func newConsumers(b *testing.B, h *Hub, n int, types []string, want int) *consumers {
	c := &consumers{b: b, counts: make([]atomic.Int64, n)}
	for i := range n {
		s, err := h.Subscribe(types, 0)
		if err != nil {
			b.Fatal(err)
		}
		c.subs = append(c.subs, s)
		c.wg.Go(func() {
			for got := 0; got < want; got++ {
				if _, ok := <-s.C(); !ok {
					b.Errorf("subscriber dropped after %d events: %v", got, s.Err())
					return
				}
				c.counts[i].Add(1)
			}
		})
	}
	b.Cleanup(func() {
		for _, s := range c.subs {
			s.Close()
		}
	})
	return c
}

// pace blocks, before publishing event i (from 0), until every consumer is
// within half a buffer; checking every 256 events keeps its cost negligible.
func (c *consumers) pace(i int) {
	if i%256 != 0 {
		return
	}
	for j := range c.counts {
		for int64(i)-c.counts[j].Load() > SubscriberBuffer/2 {
			if c.subs[j].Err() != nil {
				return
			}
			runtime.Gosched()
		}
	}
}

func (c *consumers) wait() { c.wg.Wait() }

// BenchmarkLogHandlerBaseline is slog with next alone, for comparison.
func BenchmarkLogHandlerBaseline(b *testing.B) {
	log := slog.New(discard{})
	b.ReportAllocs()
	for b.Loop() {
		log.Info("request", "method", "GET", "path", "/1.0/instances")
	}
}

// BenchmarkLogHandlerUnsubscribed is the cost the hub adds to every log
// record while nobody watches logging events (next discards).
func BenchmarkLogHandlerUnsubscribed(b *testing.B) {
	h := New(DefaultRingSize, "")
	log := slog.New(NewLogHandler(discard{}, h))
	b.ReportAllocs()
	for b.Loop() {
		log.Info("request", "method", "GET", "path", "/1.0/instances")
	}
}

// BenchmarkLogHandlerSubscribed is the same with a logging subscriber, and
// next writing text.
func BenchmarkLogHandlerSubscribed(b *testing.B) {
	h := New(DefaultRingSize, "")
	c := newConsumers(b, h, 1, []string{api.EventTypeLogging}, b.N)
	log := slog.New(NewLogHandler(slog.NewTextHandler(io.Discard, nil), h))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c.pace(i)
		log.Info("request", "method", "GET", "path", "/1.0/instances")
	}
	c.wait()
}

type discard struct{}

func (discard) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (discard) Handle(context.Context, slog.Record) error    { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler         { return d }
func (d discard) WithGroup(string) slog.Handler              { return d }

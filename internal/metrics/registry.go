package metrics

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/operation"
)

// ContentType is what GET /1.0/metrics answers with, as LXD does.
const ContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

// Config wires a Registry; nil fields leave their series out.
type Config struct {
	Instances  Instances
	Operations func() operation.Stats
	Events     func() event.Stats
	Log        *slog.Logger // slog.Default() when nil
}

// Registry gathers every series hangard serves. It is safe for concurrent
// use.
type Registry struct {
	instances Instances
	log       *slog.Logger
	// own holds hangard's own series (hangar_, go_, process_): what is not
	// scoped by project.
	own     *prometheus.Registry
	latency *prometheus.HistogramVec
}

// New returns a Registry.
func New(cfg Config) *Registry {
	r := &Registry{instances: cfg.Instances, log: cmp.Or(cfg.Log, slog.Default()), own: prometheus.NewRegistry()}
	r.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hangar_api_request_duration_seconds",
		Help: "Time to answer API requests, by method and route pattern.",
		// From 100 µs (a cached read) to 10 s (a synchronous create).
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
	}, []string{"method", "route"})
	r.own.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.latency,
	)
	if cfg.Operations != nil || cfg.Events != nil {
		r.own.MustRegister(&ownCollector{ops: cfg.Operations, events: cfg.Events})
	}
	return r
}

// ContentType is ContentType: what Write's output is.
func (r *Registry) ContentType() string { return ContentType }

// ObserveRequest records one API request's time. route is the pattern the
// router matched ("GET /1.0/instances/{name}"), never the raw path.
func (r *Registry) ObserveRequest(method, route string, d time.Duration) {
	r.latency.WithLabelValues(method, route).Observe(d.Seconds())
}

// Write gathers the series and writes them to w in the OpenMetrics text
// format. With projects given, only their instances' series are written
// (LXD's ?project=, or a certificate restricted to some projects);
// without, every instance's and hangard's own.
//
// The format is the text format's families and sample names ended by
// OpenMetrics' "# EOF": what LXD serves under the OpenMetrics content
// type, and what both of Prometheus' parsers and promtool read.
// client_golang's OpenMetrics encoder would name a counter's family
// without "_total", which collides with a gauge of that name
// (go_memstats_alloc_bytes) and fails promtool.
func (r *Registry) Write(ctx context.Context, w io.Writer, projects []string) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:0]
	if r.instances != nil {
		buf = appendInstances(buf, usable(readAll(ctx, r.instances, projects), r.log))
	}
	if len(projects) == 0 {
		mfs, err := r.own.Gather()
		if err != nil && len(mfs) == 0 {
			return fmt.Errorf("gather: %w", err)
		}
		// Gather returns what it could with an error: a scrape with a
		// figure missing beats none.
		out := bytes.NewBuffer(buf)
		enc := expfmt.NewEncoder(out, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return fmt.Errorf("encode %s: %w", mf.GetName(), err)
			}
		}
		buf = out.Bytes()
	}
	buf = append(buf, "# EOF\n"...)
	*bp = buf
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}

// bufPool holds scrape buffers: a scrape of 100 instances is ~300 KiB,
// which would otherwise be regrown from nothing every time.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// ownCollector reads the operation and event counters at each scrape.
type ownCollector struct {
	ops    func() operation.Stats
	events func() event.Stats
}

var (
	descOpsCreated = prometheus.NewDesc("hangar_operations_created_total",
		"Operations started since hangard started, by class.", []string{"class"}, nil)
	descOps = prometheus.NewDesc("hangar_operations",
		"Operations running or finished within the retention, by class and status.", []string{"class", "status"}, nil)
	descEventsPublished = prometheus.NewDesc("hangar_events_published_total",
		"Events published (the event sequence).", nil, nil)
	descEventsDelivered = prometheus.NewDesc("hangar_events_delivered_total",
		"Events handed to subscribers, one per subscriber.", nil, nil)
	descEventsDropped = prometheus.NewDesc("hangar_events_subscribers_dropped_total",
		"Event subscribers ended for falling behind.", nil, nil)
	descEventSubs = prometheus.NewDesc("hangar_events_subscribers",
		"Event subscribers now.", nil, nil)
)

func (c *ownCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOpsCreated, descOps, descEventsPublished, descEventsDelivered, descEventsDropped, descEventSubs} {
		ch <- d
	}
}

func (c *ownCollector) Collect(ch chan<- prometheus.Metric) {
	if c.ops != nil {
		st := c.ops()
		for class, n := range st.Created {
			ch <- prometheus.MustNewConstMetric(descOpsCreated, prometheus.CounterValue, float64(n), class)
		}
		for k, n := range st.Current {
			ch <- prometheus.MustNewConstMetric(descOps, prometheus.GaugeValue, float64(n), k.Class, k.Status)
		}
	}
	if c.events != nil {
		st := c.events()
		ch <- prometheus.MustNewConstMetric(descEventsPublished, prometheus.CounterValue, float64(st.Published))
		ch <- prometheus.MustNewConstMetric(descEventsDelivered, prometheus.CounterValue, float64(st.Delivered))
		ch <- prometheus.MustNewConstMetric(descEventsDropped, prometheus.CounterValue, float64(st.Dropped))
		ch <- prometheus.MustNewConstMetric(descEventSubs, prometheus.GaugeValue, float64(st.Subscribers))
	}
}
